"""What splitting an SFT step into micro-batches of similar length buys: the same steps, faster?

    python bench/sft_step_split.py --model CKPT --train T.jsonl [T2.jsonl ...] [--steps 60] [--splits 1 4] \
        [--threads 2] [--out sft_step_split.json]

Runs `accelerate launch open_r1_ext/sft.py --config recipes/sft_zoom_cpu.yaml` once per split G: each optimizer
step's rows (16: per-device batch x accumulation steps, drawn by the recipe's seeded sampler, so the same rows
at every G) as G micro-batches of 16/G rows, ordered by length (`sort_step_by_length`). With token averaging across
the step (`open_r1_ext.loss.TokenMeanSFTTrainer`) the gradient, so the logged losses, must not change with G;
`train_runtime` should fall with the padding. Prints each run's seconds, the speed-up over the first split and
the largest difference of the logged losses from it, and writes JSON. The runs are sequential: compare them only
on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from eval.records import write_json_atomic  # noqa: E402
from pixel_reasoner.zoom_task import commands  # noqa: E402


def step_rows(recipe: str = commands.SFT_RECIPE) -> int:
    """Rows per optimizer step in the recipe: per-device batch x accumulation steps (one process)."""
    import yaml

    with open(os.path.join(REPO, recipe), encoding="utf-8") as f:
        config = yaml.safe_load(f)
    return config["per_device_train_batch_size"] * config["gradient_accumulation_steps"]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory to train from (e.g. a warm-up checkpoint)")
    ap.add_argument("--train", nargs="+", required=True, help="trajectory JSONL files, weight 1 each")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--splits", type=int, nargs="+", default=[1, 4], help="micro-batches per step (divide its rows)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of the training process")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="sft_step_split.json")
    a = ap.parse_args(argv)
    rows = step_rows()
    bad = [g for g in a.splits if g < 1 or rows % g]
    if bad:
        raise SystemExit(f"--splits {bad}: each must divide the step's {rows} rows")

    work = os.path.join(os.path.dirname(os.path.abspath(a.out)), "sft_step_split_runs")
    os.makedirs(work, exist_ok=True)
    runs = []
    for split in a.splits:
        out = os.path.join(work, f"split{split}")
        argv_run = commands.sft(sys.executable, a.model, a.train, out, a.steps, a.seed, a.threads) + [
            "--per_device_train_batch_size", str(rows // split), "--gradient_accumulation_steps", str(split),
            "--lr_scheduler_type", commands.SHORT_RUN_SCHEDULE, "--logging_steps", "10"]
        shutil.rmtree(out, ignore_errors=True)  # a fresh run: the entry point would resume a checkpoint there
        commands.run(argv_run, os.path.join(work, f"split{split}.log"))
        with open(os.path.join(out, "trainer_state.json"), encoding="utf-8") as f:
            history = json.load(f)["log_history"]
        runs.append({"split": split, "micro_batch_rows": rows // split, "command": " ".join(argv_run),
                     "train_runtime": next(h["train_runtime"] for h in history if "train_runtime" in h),
                     "losses": [h["loss"] for h in history if "loss" in h]})
    first = runs[0]
    for r in runs:
        r["speedup"] = round(first["train_runtime"] / r["train_runtime"], 3)
        r["max_loss_diff"] = max(abs(x - y) for x, y in zip(r["losses"], first["losses"]))
        print(f"{r['split']} micro-batch(es) of {r['micro_batch_rows']} rows: {r['train_runtime']:.1f} s for "
              f"{a.steps} steps, speed-up x{r['speedup']:.2f} over {first['split']}, max |logged loss diff| "
              f"{r['max_loss_diff']:.2e}")
    result = {"command": " ".join(sys.argv), "steps": a.steps, "threads": a.threads, "runs": runs}
    write_json_atomic(a.out, result)
    return result


if __name__ == "__main__":
    main()

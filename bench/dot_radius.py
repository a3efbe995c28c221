"""Can the tiny model learn to count the dots, and does their size decide it? Count-only SFT from the random zoom
preset at each dot radius, scored on held-out counting questions (docs/learning.md, "Counting").

    python bench/dot_radius.py [--out out/bench/dot_radius] [--radii 14 22] [--steps 300] [--seeds 0] [--threads 1]

Per radius (`ZoomTaskConfig.dot_radius`, source pixels; the original is shown 4x smaller): `--train` counting
questions of the `train` split as seeds, their teacher trajectories (`python -m data_synthesis run`, text-only),
`--heldout` counting questions of the `eval` split in the TallyQA layout; then per batch-order seed `--steps` SFT
steps at a constant learning rate from the same random model (`accelerate launch open_r1_ext/sft.py`),
`python -m eval run` and `python -m eval.learning`. A pixel oracle counts the dots of every radius right in the
original (`python -m pixel_reasoner.zoom_task premise --dot-radius R`), so what differs is what the model learns.
Writes OUT/dot_radius.json (held-out count accuracy with its 95% CI, the first and last logged loss and SFT
seconds per run) and prints one line per run; a rerun into the same OUT keeps every finished run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from eval.learning import learning_metrics  # noqa: E402
from eval.records import write_json_atomic  # noqa: E402
from pixel_reasoner.zoom_task import commands  # noqa: E402
from pixel_reasoner.zoom_task.layouts import Mix, write_benchmarks, write_seeds  # noqa: E402
from pixel_reasoner.zoom_task.scene import ZoomTaskConfig  # noqa: E402


def first_and_last_loss(sft_dir: str) -> tuple[float | None, float | None]:
    """The run's first and last logged loss (None for a run shorter than the recipe's logging interval)."""
    with open(os.path.join(sft_dir, "trainer_state.json"), encoding="utf-8") as f:
        losses = [h["loss"] for h in json.load(f)["log_history"] if "loss" in h]
    return (losses[0], losses[-1]) if losses else (None, None)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/bench/dot_radius")
    ap.add_argument("--radii", type=int, nargs="+", default=[14, 22])
    ap.add_argument("--train", type=int, default=400, help="counting questions to train on (the main data has 400)")
    ap.add_argument("--heldout", type=int, default=100, help="held-out counting questions")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="batch-order seeds")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    out, py = os.path.abspath(a.out), sys.executable
    os.makedirs(out, exist_ok=True)
    log = os.path.join(out, "commands.log")
    model = os.path.join(out, "model")
    if not os.path.exists(os.path.join(model, "config.json")):
        commands.run(commands.model(py, model, 0), log)

    runs = {}
    for radius in a.radii:
        config, data = ZoomTaskConfig(dot_radius=radius), os.path.join(out, f"radius{radius}")
        trajectories = os.path.join(data, "synthesis", "trajectories.jsonl")
        if not os.path.exists(trajectories):
            seeds = write_seeds(os.path.join(data, "seeds"), Mix(count=a.train), 0, config)
            write_benchmarks(os.path.join(data, "bench"), Mix(count=a.heldout), 0, config)
            commands.run(commands.synthesis(py, seeds, os.path.dirname(trajectories), "qwen"), log)
        for seed in a.seeds:
            name = f"radius{radius}_seed{seed}"
            run_dir = os.path.join(data, f"seed{seed}")
            record = os.path.join(run_dir, "run.json")
            if not os.path.exists(record):
                sft = os.path.join(run_dir, "sft")
                seconds = commands.run(commands.sft(py, model, [trajectories], sft, a.steps, seed, a.threads)
                                       + ["--lr_scheduler_type", commands.SHORT_RUN_SCHEDULE], log)
                results = os.path.join(run_dir, "eval")
                commands.run(commands.evaluate(py, sft, commands.benchmarks(os.path.join(data, "bench")), results),
                             log)
                metrics = learning_metrics(results)
                first_loss, last_loss = first_and_last_loss(sft)
                write_json_atomic(record, {"radius": radius, "seed": seed, "accuracy_count": metrics["accuracy_coarse"],
                                           "first_loss": first_loss, "last_loss": last_loss,
                                           "sft_seconds": round(seconds, 1)})
            with open(record, encoding="utf-8") as f:
                runs[name] = json.load(f)
            acc, done = runs[name]["accuracy_count"], runs[name]
            loss = "n/a" if done["first_loss"] is None else f"{done['first_loss']:.3f} -> {done['last_loss']:.3f}"
            print(f"dot radius {radius} seed {seed}: held-out count accuracy {acc['value']:.0f}% "
                  f"[{acc['ci95'][0]:.0f}, {acc['ci95'][1]:.0f}] (n={acc['n']}, chance 25%), loss {loss}, "
                  f"SFT {done['sft_seconds']:.0f} s")
    report = {"runs": runs, "settings": vars(a), "commands": log, "cpus": os.cpu_count(),
              "load_average": os.getloadavg()}
    write_json_atomic(os.path.join(out, "dot_radius.json"), report)
    return report


if __name__ == "__main__":
    main()

"""Wrong crops that look like right ones: the zoom task's SFT with the re-crop trajectories' wrong crops drawn at
random (any box that misses the frame, the synthesis default and the task's) against wrong crops that are other
grid cells (`python -m pixel_reasoner.zoom_task seeds --wrong-boxes`), from one warm-up checkpoint, on the same
held-out questions (docs/learning.md, "After the first crop").

    python bench/wrong_crops.py [--out out/bench/wrong_crops] [--steps 600] [--seeds 0 1] [--train 3000]

Every step is a command a user runs (`pixel_reasoner.zoom_task.commands`, each line recorded in OUT/commands.log):
  1. the quickstart's model, data and close-up warm-up (task and model seed 0); the random arm's seeds are the same
     rows without `wrong_boxes`, so the two arms' trajectories differ only in where the wrong crops go;
  2. per arm and batch-order seed: `--steps` main SFT steps from the warm-up checkpoint at the quickstart's constant
     learning rate, `python -m eval run`, `python -m eval.learning`.
Writes OUT/wrong_crops.json (each run's eval.learning metrics and SFT seconds) and prints one line per run. A
rerun into the same OUT keeps every finished run. About 11 minutes per run with two threads on 2 idle cores.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from eval.learning import headline, learning_metrics  # noqa: E402
from eval.records import write_json_atomic  # noqa: E402
from pixel_reasoner.zoom_task import commands  # noqa: E402

ARMS = ("random", "cells")  # the seeds' wrong_boxes dropped / kept
SHOWN = ("accuracy_detail", "valid_call_rate", "first_crop_contains_target", "answered_after_missed_crop",
         "cropped_again_after_target", "crop_contains_target")


def without_wrong_boxes(seeds_jsonl: str, out_jsonl: str) -> None:
    """The same seed rows without `wrong_boxes`, next to them (their media paths stay valid)."""
    with open(seeds_jsonl, encoding="utf-8") as src, open(out_jsonl, "w", encoding="utf-8") as dst:
        for line in src:
            row = json.loads(line)
            row.pop("wrong_boxes", None)
            dst.write(json.dumps(row) + "\n")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/bench/wrong_crops")
    ap.add_argument("--train", type=int, default=3000, help="training image questions (26.7%% coarse)")
    ap.add_argument("--no-tools-rows", type=int, default=600)
    ap.add_argument("--steps", type=int, default=600, help="main SFT steps of each run (the quickstart's default)")
    ap.add_argument("--warmup-steps", type=int, default=commands.WARMUP_STEPS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="batch-order seeds of the main runs")
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS),
                    help="random: the seeds without wrong_boxes; cells: with them")
    ap.add_argument("--detail", type=int, default=100)
    ap.add_argument("--colour", type=int, default=50)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    out, py = os.path.abspath(a.out), sys.executable
    os.makedirs(out, exist_ok=True)
    log = os.path.join(out, "commands.log")
    warmup = os.path.join(out, "sft_warmup")
    seeds = os.path.join(out, "seeds", "seeds.jsonl")
    random_seeds = os.path.join(out, "seeds", "seeds_random_wrong_boxes.jsonl")
    cells_data, no_tools = commands.main_data_files(out)  # the seeds keep their wrong_boxes in task_data
    arm_data = {"cells": cells_data, "random": os.path.join(out, "synthesis_random", "trajectories.jsonl")}

    if not os.path.exists(os.path.join(warmup, "trainer_state.json")):
        commands.run(commands.model(py, os.path.join(out, "model"), 0), log)
        for argv in commands.task_data(py, out, a.train, a.no_tools_rows, a.detail, a.colour, a.count, 0,
                                       wrong_boxes=True):
            commands.run(argv, log)
        without_wrong_boxes(seeds, random_seeds)
        commands.run(commands.synthesis(py, random_seeds, os.path.dirname(arm_data["random"]), "qwen"), log)
        commands.run(commands.warmup_sft(py, os.path.join(out, "model"), commands.closeup_data_files(out), warmup,
                                         a.warmup_steps, 0, a.threads), log)
    bench = commands.benchmarks(os.path.join(out, "bench"))

    runs = {}
    for arm in a.arms:
        for seed in a.seeds:
            name = f"{arm}_seed{seed}"
            run_dir = os.path.join(out, name)
            record = os.path.join(run_dir, "run.json")
            if not os.path.exists(record):
                data = [arm_data[arm], no_tools]
                seconds = commands.run(commands.sft(py, warmup, data, os.path.join(run_dir, "sft"), a.steps, seed,
                                                    a.threads)
                                       + ["--lr_scheduler_type", commands.SHORT_RUN_SCHEDULE], log)
                results = os.path.join(run_dir, "eval")
                commands.run(commands.evaluate(py, os.path.join(run_dir, "sft"), bench, results), log)
                write_json_atomic(record, {"arm": arm, "seed": seed, "sft_seconds": round(seconds, 1),
                                           "metrics": learning_metrics(results)})
            with open(record, encoding="utf-8") as f:
                runs[name] = json.load(f)
            values = headline(runs[name]["metrics"])
            print(f"wrong crops {arm:6s} seed {seed}: " + ", ".join(
                f"{k} {'n/a' if values[k] is None else round(values[k])}" for k in SHOWN)
                + f"; SFT {runs[name]['sft_seconds']:.0f} s")
    report = {"runs": runs, "settings": vars(a), "commands": log, "cpus": os.cpu_count(),
              "load_average": os.getloadavg()}
    write_json_atomic(os.path.join(out, "wrong_crops.json"), report)
    return report


if __name__ == "__main__":
    main()

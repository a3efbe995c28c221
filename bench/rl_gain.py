"""Does RL improve a zoom-task SFT checkpoint (issue 14, item 1)? Held-out detail accuracy before and after the
toy RL recipe, paired on the same questions.

    python bench/rl_gain.py --model CKPT [--out out/rl_gain] [--steps 40] [--queries 4] [--group 8] [--seed 0]
        [--heldout-detail 100] [--rl-threads 1] [--lock FILE] [--record docs/learning/rl_gain.json]

Stages (each the command a user runs, recorded in the JSON):
  1. the held-out bench: `--heldout-detail` detail questions of task seed 1 (the `eval` split; training used seed
     0), as bench/learning_dynamics.py builds it;
  2. `python -m eval run` (greedy) of CKPT, the SFT checkpoint;
  3. RL from CKPT through `recipes/rl_toy_cpu.sh` (OpenRLHF's loop in CPU mode, no forced turns; the paper's
     reward with curiosity, SSR): `--steps` rollout steps of `--queries` prompts x `--group` samples;
  4. `eval run` of the final checkpoint, and the paired gain with its 95% CI (bootstrap over questions).
Writes OUT/rl_gain.json (`rl_gain`: sft_accuracy_detail, rl_accuracy_detail, gain, ci95, steps, wall_s, command;
`before`/`after`: held-out numbers, answer distributions included; `steps`: the run's per-step series) and a copy
at `--record`; prints a progress line per stage and a one-line summary. Resumable: a stage whose result exists
under OUT is not run again.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/rl_gain.py` from anywhere: the bench package

from bench.learning_dynamics import (DynamicsConfig, heldout, paired_gain, progress, rl_run,  # noqa: E402
                                     run_dir, step_series)
from bench.rl_runs import read_jsonl  # noqa: E402
from pixel_reasoner.zoom_task import commands  # noqa: E402
from pixel_reasoner.zoom_task.layouts import CHANCE_DETAIL  # noqa: E402

ARM = "curiosity"  # the recipe as a user runs it: the paper's reward defaults and SSR


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a zoom-task SFT checkpoint (a directory with config.json)")
    ap.add_argument("--out", default="out/rl_gain")
    ap.add_argument("--steps", type=int, default=40, help="rollout steps, one policy update each")
    ap.add_argument("--queries", type=int, default=4, help="prompts per step")
    ap.add_argument("--group", type=int, default=8, help="samples per prompt")
    ap.add_argument("--seed", type=int, default=0, help="--train.seed and --pr.ssr.seed of the run")
    ap.add_argument("--heldout-detail", type=int, default=100)
    ap.add_argument("--heldout-seed", type=int, default=1)
    ap.add_argument("--rl-threads", type=int, default=1)
    ap.add_argument("--lock", default=None, help="flock this file around each heavy command")
    ap.add_argument("--record", default=None, help="also write the result here (e.g. docs/learning/rl_gain.json)")
    a = ap.parse_args(argv)
    if not (pathlib.Path(a.model) / "config.json").is_file():
        ap.error(f"--model {a.model}: not a checkpoint directory (no config.json); train one first "
                 f"(docs/learning.md, or `bash recipes/quickstart_cpu.sh`, whose quickstart_out/sft is one)")
    return a


def main(argv: list[str] | None = None) -> dict:
    a = parse_args(argv)
    started = time.time()
    out = pathlib.Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = str(out / "commands.log")
    model = str(pathlib.Path(a.model).resolve())
    cfg = DynamicsConfig(out=str(out), steps=a.steps, queries=a.queries, group=a.group, seeds=[a.seed],
                         arms=[ARM], heldout_detail=a.heldout_detail, heldout_seed=a.heldout_seed,
                         rl_threads=a.rl_threads, heldout_arms=[ARM], gain_seed=a.seed, lock=a.lock)
    bench_dir = out / "bench"
    if not (bench_dir / "vstar" / "test_questions.jsonl").exists():
        progress(f"held-out bench: {a.heldout_detail} detail questions, task seed {a.heldout_seed}")
        commands.run(commands.bench(sys.executable, str(bench_dir), a.heldout_detail, 0, 0, a.heldout_seed), log)
    bench = commands.benchmarks(str(bench_dir))
    progress("held-out evaluation of the SFT checkpoint")
    before = heldout(cfg, model, bench, out / "sft", log)
    progress(f"SFT checkpoint: detail accuracy {before['accuracy_detail']:.0f}% (chance {CHANCE_DETAIL:.0f}%); "
             f"RL: {a.steps} steps of {a.queries} x {a.group}")
    run, work = rl_run(cfg, ARM, a.seed, model, out), run_dir(cfg, out, ARM, a.seed)
    steps = step_series(read_jsonl(work / "run" / "metrics.jsonl"), read_jsonl(work / "run" / "groups.jsonl"))
    progress(f"RL: {len(steps)} steps in {run['wall_s']:.0f} s; held-out evaluation of its checkpoint")
    after = heldout(cfg, run["checkpoint"], bench, work, log)
    gain = paired_gain(before.pop("correct"), after.pop("correct")) | {
        "steps": len(steps), "wall_s": run["wall_s"], "seed": a.seed, "model": model,
        "command": f"{run['command']}; {after['command']}"}
    report = {"rl_gain": gain, "before": before, "after": after, "steps": steps, "run": run, "args": vars(a),
              "command": " ".join([sys.executable, *sys.argv]), "wall_s_this_invocation": round(time.time() - started, 1)}
    text = json.dumps(report, indent=2)
    (out / "rl_gain.json").write_text(text)
    if a.record:
        pathlib.Path(a.record).write_text(text)
    lo, hi = gain["ci95"] or (float("nan"), float("nan"))
    progress(f"rl_gain: detail accuracy {gain['sft_accuracy_detail']:.0f}% -> {gain['rl_accuracy_detail']:.0f}% "
             f"({gain['gain']:+.0f} points, 95% CI {lo:+.0f} to {hi:+.0f}) after {len(steps)} steps, "
             f"{run['wall_s']:.0f} s of RL")
    return report


if __name__ == "__main__":
    main()

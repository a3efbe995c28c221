"""Run one CPU-mode RL recipe to the end and read its per-step records: the building block of the RL benches.

    from bench.rl_runs import run_recipe
    run = run_recipe(REPO / "recipes" / "rl_tiny_cpu.sh", "/tmp/work", extra_args=["--train.async_enable"])
    run.steps          # metrics.jsonl: one record per rollout step (upstream's metrics and ours)
    run.step_wall_s()  # wall time between consecutive step records, as the controller logged them

A recipe here is a shell script that takes `WORK` (its output directory) and `PYTHON` from the environment,
passes extra arguments to `python -m openrlhf_ext.train`, and writes its run records under `$WORK/run`
(`--pr.log.run_dir`), as `recipes/rl_tiny_cpu.sh` does. The recipe's launcher starts its own Ray on loopback.
The child's process tree is sampled every 0.5 s for its summed PSS, and can be killed mid-run (`stop_when`: the
resume test kills a run after a checkpoint). Heavy (~8 GiB): callers hold the shared lock.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

REPO = pathlib.Path(__file__).resolve().parents[1]


def tree_pss(root_pid: int) -> int:
    """Summed proportional set size of a process and its descendants (bytes)."""
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


def kill_tree(root_pid: int) -> None:
    """SIGKILL a process and every descendant (a crash, as a preempted node sees it), by PID, then reap them."""
    import psutil

    try:
        root = psutil.Process(root_pid)
        procs = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)


def read_jsonl(path: pathlib.Path) -> list[dict]:
    """The records of a JSONL file (none if it is missing; a last line cut short by a kill is left out)."""
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    records = [json.loads(line) for line in lines[:-1]]
    try:
        records += [json.loads(line) for line in lines[-1:]]
    except json.JSONDecodeError:
        pass
    return records


@dataclass
class RecipeRun:
    """What one run of a recipe produced (everything measured in that run)."""

    work: str
    command: list[str]
    log_path: str  # the run's stdout and stderr
    returncode: int
    wall_s: float
    peak_pss_bytes: int
    killed: bool  # stopped by `stop_when` (or the timeout) rather than ending by itself
    steps: list[dict] = field(default_factory=list)  # metrics.jsonl
    groups: list[dict] = field(default_factory=list)  # groups.jsonl

    def trained_steps(self) -> list[dict]:
        """Steps with a policy update (SSR may skip a step with nothing to learn from)."""
        return [s for s in self.steps if s.get("ssr/skipped_step", 0.0) == 0.0]

    def step_wall_s(self) -> list[float]:
        """Wall time from one step's record to the next (the first step, which includes start-up work inside the
        controller, has none): the time a step costs the run, whatever overlaps inside it."""
        times = [s["time_s"] for s in self.steps]
        return [b - a for a, b in zip(times, times[1:])]

    def series(self, key: str) -> list[float | None]:
        """One metric per step (None where a step did not log it)."""
        return [s.get(key) for s in self.steps]


def run_recipe(recipe: str | os.PathLike, work: str | os.PathLike, extra_args: Sequence[str] = (),
               env: dict | None = None, timeout_s: float | None = None,
               stop_when: Callable[[], bool] | None = None, log_name: str = "bench.log") -> RecipeRun:
    """Run `bash RECIPE EXTRA_ARGS` with WORK and PYTHON set (plus `env`); its output goes to `WORK/<log_name>`.
    It runs to its end, or until `stop_when()` (polled every 0.5 s) or `timeout_s`: then its whole process tree is
    killed. The launcher needs an OpenRLHF patched with our hooks: the installed one, or a patched copy of it (put
    first on PYTHONPATH here)."""
    from openrlhf_ext.upstream_patch import patched_copy

    work = pathlib.Path(work)
    work.mkdir(parents=True, exist_ok=True)
    paths = [patched_copy(str(REPO / ".cache" / "openrlhf_patched")), str(REPO), os.environ.get("PYTHONPATH", "")]
    child_env = dict(os.environ, WORK=str(work), PYTHON=sys.executable, RAY_DEDUP_LOGS="0",
                     PYTHONPATH=os.pathsep.join(p for p in paths if p), **(env or {}))
    command = ["bash", str(recipe), *extra_args]
    started = time.time()
    deadline = None if timeout_s is None else started + timeout_s
    peak, killed = 0, False
    with open(work / log_name, "w") as log:
        child = subprocess.Popen(command, env=child_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while child.poll() is None:
                peak = max(peak, tree_pss(child.pid))
                if (stop_when is not None and stop_when()) or (deadline is not None and time.time() > deadline):
                    killed = True
                    kill_tree(child.pid)
                    break
                time.sleep(0.5)
        finally:
            if child.poll() is None and not killed:  # interrupted (e.g. KeyboardInterrupt): leave nothing behind
                kill_tree(child.pid)
        rc = child.wait()
    run_dir = work / "run"
    return RecipeRun(work=str(work), command=command, log_path=str(work / log_name), returncode=rc,
                     wall_s=time.time() - started,
                     peak_pss_bytes=peak, killed=killed, steps=read_jsonl(run_dir / "metrics.jsonl"),
                     groups=read_jsonl(run_dir / "groups.jsonl"))

"""Shared fixtures. Heavy artefacts (the tiny model) are built once and cached under .cache/ in the repo."""
from __future__ import annotations

import functools
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import uuid
from types import SimpleNamespace

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_model_dir() -> str:
    """A tiny random Qwen2.5-VL (real Qwen vocabulary, our chat template), float32, built offline once."""
    from pixel_reasoner.testing.tiny_qwen import cached_build

    return cached_build(str(REPO / ".cache" / "tiny_models"))


@pytest.fixture(scope="session")
def tiny_processor(tiny_model_dir):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


@functools.lru_cache(maxsize=1)
def patched_openrlhf() -> str:
    """The directory of an OpenRLHF carrying our patch: the installed one when it is patched (scripts/install.sh
    does it), else a patched copy of it under .cache/ (the shared development venv is never changed)."""
    from openrlhf_ext.upstream_patch import patched_copy

    return patched_copy(str(REPO / ".cache" / "openrlhf_patched"))


# In-process tests use the OpenRLHF our RL stage runs on: patched (the installed one after scripts/install.sh,
# else a patched copy of it, first on sys.path before any test imports openrlhf).
sys.path.insert(0, patched_openrlhf())


def patched_env(**extra: str) -> dict:
    """Environment for a subprocess that runs our RL stage: the patched OpenRLHF and this checkout first."""
    env = dict(os.environ)
    paths = [patched_openrlhf(), str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update({"TOKENIZERS_PARALLELISM": "false", **extra})
    return env


@functools.lru_cache(maxsize=8)
def _dry_run(argv: tuple[str, ...]) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "openrlhf_ext.train", "--dry-run", *argv], env=patched_env(),
                          capture_output=True, text=True, timeout=600, cwd=str(REPO))
    return done.returncode, done.stdout, done.stderr


def launcher_dry_run(argv) -> tuple[int, str, dict | None]:
    """`python -m openrlhf_ext.train --dry-run ARGV` (the patched upstream CLI; cached per command line): exit
    status, stdout + stderr, and the resolved document it printed (None if it stopped before)."""
    code, out, err = _dry_run(tuple(argv))
    line = next((x for x in out.splitlines() if x.startswith("==> resolved (JSON): ")), None)
    return code, out + err, json.loads(line.split(": ", 1)[1]) if line else None


@pytest.fixture(scope="session")
def upstream_args():
    """argv -> upstream's post-processed namespace for that command line (from a real dry run; a fresh copy)."""
    def parse(argv):
        code, out, document = launcher_dry_run(argv)
        assert document is not None, out[-4000:]
        from openrlhf_ext.train import from_plain

        return from_plain(document["openrlhf"])
    return parse


@pytest.fixture(scope="session")
def dry_run():
    """`launcher_dry_run` for tests (conftest modules are not importable: OpenRLHF's wheel ships a `tests` package)."""
    return launcher_dry_run


@pytest.fixture(scope="session")
def rl_env():
    """`patched_env` for tests."""
    return patched_env


# -- the quickstart, run once per session -------------------------------------------------------------------------
# `bash recipes/quickstart_cpu.sh` (the README's first command) trains the zoom task end to end: model, teacher
# trajectories, SFT (warm-up, then the main data), RL, evaluations. Three test modules read that one run
# (tests/quickstart: the script and its outputs; tests/sft/test_learning.py: what the SFT learned;
# tests/rl/test_unforced_rl_cpu.py: RL through `ray job submit` from its SFT checkpoint), so CI trains once.
QUICKSTART_SCRIPT = REPO / "recipes" / "quickstart_cpu.sh"
QUICKSTART_MARKER = "PIXEL_REASONER_QUICKSTART_TEST"
# Fewer main SFT steps (200) and held-out questions (40/20/20) than the defaults (800; 100/50/50) to keep CI short.
QUICKSTART_KNOBS = {"SFT_STEPS": "200", "SFT_THREADS": "2", "EVAL_DETAIL": "40", "EVAL_COLOUR": "20",
                    "EVAL_COUNT": "20"}


def marked_processes(marker: str) -> dict[int, int]:
    """{pid: proportional set size in bytes (shared pages split between their users)} of the processes whose
    environment carries `QUICKSTART_MARKER=marker`."""
    needle = f"{QUICKSTART_MARKER}={marker}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/smaps_rollup") as f:
                pss = next(line for line in f if line.startswith("Pss:"))
            found[int(entry)] = int(pss.split()[1]) * 1024
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    return found


class ProcessWatch(threading.Thread):
    """Samples the marked processes every half second: how many distinct ones ran, and the peak of their summed
    proportional set size (the memory the run occupied; brief peaks between samples can be missed)."""

    def __init__(self, marker: str):
        super().__init__(daemon=True)
        self.marker, self.seen, self.peak_pss, self.stop = marker, set(), 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            found = marked_processes(self.marker)
            self.seen |= set(found)
            self.peak_pss = max(self.peak_pss, sum(found.values()))
            time.sleep(0.5)


def quickstart_env(out: pathlib.Path, marker: str) -> dict:
    """The script's environment with the test's knobs; its RL stage runs our launcher, which needs an OpenRLHF
    patched with our hooks (`patched_env`)."""
    return {**patched_env(), **QUICKSTART_KNOBS, "OUT": str(out), "PYTHON": sys.executable,
            QUICKSTART_MARKER: marker}


def run_quickstart(out: pathlib.Path, marker: str, timeout: int = 2700) -> subprocess.CompletedProcess:
    """The quickstart with the test's knobs. The timeout: in a clean-clone CI run on 2 cores, 1,500 s once ran out
    after the RL stage, ~1.5 min short of the end."""
    return subprocess.run(["bash", str(QUICKSTART_SCRIPT)], env=quickstart_env(out, marker), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def quickstart_harness():
    """The pieces above, for tests that run the script themselves (a rerun, Ctrl-C)."""
    return SimpleNamespace(run=run_quickstart, env=quickstart_env, marked=marked_processes, knobs=QUICKSTART_KNOBS,
                           script=QUICKSTART_SCRIPT)


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory) -> dict:
    """One run of the quickstart into a temporary directory, watched: its outputs, stdout, the processes it
    started, the survivors, its peak memory and wall time."""
    out = tmp_path_factory.mktemp("quickstart") / "quickstart_out"
    marker = uuid.uuid4().hex
    watch = ProcessWatch(marker)
    watch.start()
    started = time.time()
    try:
        result = run_quickstart(out, marker)
    finally:
        watch.stop.set()
        watch.join()
    seconds = time.time() - started
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    time.sleep(1)
    survivors = marked_processes(marker)
    print(f"\nquickstart: {seconds:.0f}s wall, {len(watch.seen)} processes started, peak memory (summed PSS) "
          f"{watch.peak_pss / 2**30:.1f} GiB; stage timings: {(out / 'timings.jsonl').read_text()}")
    print(json.dumps(json.loads((out / "metrics.json").read_text())["learning"]))
    return {"out": out, "stdout": result.stdout, "survivors": survivors, "seen": watch.seen, "marker": marker,
            "seconds": seconds, "peak_pss": watch.peak_pss}

"""Shared fixtures. Heavy artefacts (the tiny model) are built once and cached under .cache/ in the repo."""
from __future__ import annotations

import functools
import json
import os
import pathlib
import subprocess
import sys

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

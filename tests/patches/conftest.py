"""Upstream trees for the patch tests: the OpenRLHF 0.11.2 wheel from PyPI, and the Open-R1 snapshot if present.

The wheel is downloaded once into `<checkout>/.cache/patches/` (a few hundred KB; CI has PyPI access) and
unzipped fresh for every test that changes files. No upstream code is committed to this repository.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
OPENRLHF_VERSION = "0.11.2"
WHEEL_CACHE = REPO / ".cache" / "patches"
# any git repository (clone or bare) holding the commit the Open-R1 patches were checked against
OPEN_R1_MIRROR = pathlib.Path(os.environ.get("PIXEL_REASONER_OPEN_R1_REPO", "/work/.mirror/huggingface+open-r1/repo"))
OPEN_R1_COMMIT = "1416fa0cf21595d2083b399a2a0bbddd7f6e9563"


def run_tool(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in os.environ.get(
        "PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.run([sys.executable, "-m", "patches", *args], capture_output=True, text=True, env=env,
                          cwd=str(REPO), timeout=120)


@pytest.fixture(scope="session")
def patches_cli():
    """`python -m patches ARGS...` in a subprocess, as a user runs it."""
    return run_tool


@pytest.fixture(scope="session")
def openrlhf_wheel() -> pathlib.Path:
    found = sorted(WHEEL_CACHE.glob(f"openrlhf-{OPENRLHF_VERSION}-*.whl"))
    if not found:
        WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                               f"openrlhf=={OPENRLHF_VERSION}", "-d", str(WHEEL_CACHE)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"pip download openrlhf=={OPENRLHF_VERSION} failed (needs PyPI):\n{done.stderr}"
        found = sorted(WHEEL_CACHE.glob(f"openrlhf-{OPENRLHF_VERSION}-*.whl"))
    return found[0]


def unzip_wheel(wheel: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """The wheel's contents as they are (sources under openrlhf-<v>.data/purelib/, metadata in .dist-info)."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(dest)
    return dest


@pytest.fixture(scope="session")
def unzip_openrlhf(openrlhf_wheel):
    """dest -> a fresh unzipped copy of the OpenRLHF wheel at dest."""
    return lambda dest: unzip_wheel(openrlhf_wheel, dest)


@pytest.fixture
def wheel_tree(openrlhf_wheel, tmp_path) -> pathlib.Path:
    """A fresh unzipped copy of the wheel (tests may change it)."""
    return unzip_wheel(openrlhf_wheel, tmp_path / "openrlhf-wheel")


@pytest.fixture(scope="module")
def patched_openrlhf(openrlhf_wheel, tmp_path_factory) -> pathlib.Path:
    """The wheel's sources with our patches applied by the tool; the directory to put on PYTHONPATH."""
    tree = unzip_wheel(openrlhf_wheel, tmp_path_factory.mktemp("patched") / "openrlhf-wheel")
    done = run_tool("apply", "--target", str(tree))
    assert done.returncode == 0, done.stdout + done.stderr
    return tree / f"openrlhf-{OPENRLHF_VERSION}.data" / "purelib"


@pytest.fixture(scope="session")
def open_r1_archive(tmp_path_factory) -> pathlib.Path:
    """Open-R1 at the commit the patches were checked against, from the local snapshot (not on PyPI)."""
    if not (OPEN_R1_MIRROR / "HEAD").exists() and not (OPEN_R1_MIRROR / ".git").exists():
        pytest.skip(f"no Open-R1 repository at {OPEN_R1_MIRROR} (Open-R1 is not on PyPI; set "
                    f"PIXEL_REASONER_OPEN_R1_REPO to a clone holding commit {OPEN_R1_COMMIT}, see docs/patches.md)")
    dest = tmp_path_factory.mktemp("open_r1") / "open-r1"
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(OPEN_R1_MIRROR), "archive", OPEN_R1_COMMIT], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"the Open-R1 snapshot does not hold commit {OPEN_R1_COMMIT}: {archive.stderr.decode()[-300:]}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


@pytest.fixture(scope="session")
def rl_inputs(tmp_path_factory, tiny_model_dir) -> dict:
    """Tiny model, toy RL prompts and the rollout config that fits the tiny processor (openrlhf_ext.cpu_demo)."""
    from openrlhf_ext.cpu_demo import prepare

    return prepare(str(tmp_path_factory.mktemp("rl_inputs")), model_cache=str(pathlib.Path(tiny_model_dir).parent))

"""Which upstream project and version a directory holds, and which of our patch sets fits it.

OpenRLHF (RL, `patches/openrlhf/<version>/`):
- a git checkout (or source archive) has `version.txt` (read by its setup.py) next to `openrlhf/`;
- an installed copy or the unpacked wheel source has `openrlhf-<version>.dist-info/METADATA`; a wheel unzipped
  as is keeps its sources under `openrlhf-<version>.data/purelib/`, which is then the root the patch paths are
  relative to. (`openrlhf/__init__.py` carries no version in 0.11.2; a `__version__` there is read too.)
Open-R1 (SFT, `patches/open-r1/`): `src/open_r1/` next to a setup.py with `name="open-r1"`. Open-R1 never bumps
its version (`0.1.0.dev0`), so its patches record the commit they were checked against instead; a git
checkout at another commit is reported, and whether every hunk applies decides.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field

from patches.patchfile import PatchFile, read_patch

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class TargetError(RuntimeError):
    """The target directory is not a checkout this tool can patch (or its version does not match)."""


@dataclass(frozen=True)
class PatchSetSpec:
    upstream: str
    version: str
    directory: str  # below the package directory
    checked_commit: str | None = None  # for upstreams without meaningful versions
    description: str = ""


PATCH_SETS = (
    PatchSetSpec("openrlhf", "0.11.2", "openrlhf/0.11.2",
                 description="RL: --pr.* flags, our agent by default, curiosity reward and selective sample "
                             "replay in python -m openrlhf.cli.train_ppo_ray"),
    PatchSetSpec("open-r1", "0.1.0.dev0", "open-r1", checked_commit="1416fa0cf21595d2083b399a2a0bbddd7f6e9563",
                 description="SFT: Qwen2.5-VL with our data, chat template and loss masking in src/open_r1/sft.py, "
                             "a recipe, and the port to trl 1.16 / transformers 5.19"),
)


@dataclass(frozen=True)
class PatchSet:
    spec: PatchSetSpec
    patches: tuple[PatchFile, ...]

    @property
    def directory(self) -> str:
        return os.path.join(PACKAGE_DIR, self.spec.directory)


def load_patch_set(spec: PatchSetSpec) -> PatchSet:
    """The set's .patch files in name order; each upstream file belongs to exactly one of them, so the state
    of every patch (applied or not) can be checked on its own."""
    paths = sorted(glob.glob(os.path.join(PACKAGE_DIR, spec.directory, "*.patch")))
    if not paths:
        raise TargetError(f"no .patch files in {os.path.join(PACKAGE_DIR, spec.directory)} (broken installation?)")
    patches = tuple(read_patch(p) for p in paths)
    owner: dict[str, str] = {}
    for patch in patches:
        for path in patch.files:
            if path in owner:
                raise TargetError(f"{patch.name} and {owner[path]} both change {path}: one file, one patch")
            owner[path] = patch.name
    return PatchSet(spec, patches)


@dataclass(frozen=True)
class Checkout:
    upstream: str
    version: str | None
    root: str  # the directory the patch paths are relative to
    evidence: list[str] = field(default_factory=list)  # where the version was read
    commit: str | None = None  # HEAD when the root is a git work tree

    def describe(self) -> str:
        where = "; ".join(self.evidence) or "no version information found"
        commit = f", git commit {self.commit}" if self.commit else ""
        return f"{self.upstream} {self.version or '(unknown version)'} at {self.root} ({where}{commit})"


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _dist_info_version(directory: str, distribution: str) -> tuple[str | None, str | None]:
    found = sorted(glob.glob(os.path.join(directory, f"{distribution}-*.dist-info", "METADATA")))
    if len(found) > 1:
        raise TargetError(f"{directory} holds several {distribution} installations: {found}")
    if not found:
        return None, None
    match = re.search(r"^Version:\s*(\S+)", _read(found[0]), re.MULTILINE)
    return (match.group(1) if match else None), os.path.relpath(found[0], directory)


def git_head(root: str) -> str | None:
    """HEAD of the git work tree whose top level is `root` (None for a plain directory)."""
    if not os.path.exists(os.path.join(root, ".git")) or shutil.which("git") is None:
        return None
    done = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def _openrlhf(target: str) -> Checkout | None:
    wheel_roots = sorted(glob.glob(os.path.join(target, "openrlhf-*.data", "purelib")))
    if os.path.isfile(os.path.join(target, "openrlhf", "cli", "train_ppo_ray.py")):
        root = target
    elif len(wheel_roots) == 1 and os.path.isfile(os.path.join(wheel_roots[0], "openrlhf", "cli",
                                                               "train_ppo_ray.py")):
        root = wheel_roots[0]
    else:
        return None
    versions: dict[str, str] = {}
    version_txt = os.path.join(target, "version.txt")
    if os.path.isfile(version_txt):
        versions["version.txt"] = _read(version_txt).strip()
    dist_version, dist_path = _dist_info_version(target, "openrlhf")
    if dist_version:
        versions[dist_path] = dist_version
    init = os.path.join(root, "openrlhf", "__init__.py")
    match = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", _read(init), re.MULTILINE) \
        if os.path.isfile(init) else None
    if match:
        versions["openrlhf/__init__.py"] = match.group(1)
    if len(set(versions.values())) > 1:
        raise TargetError(f"{target}: the version sources disagree: {versions}")
    version = next(iter(versions.values()), None)
    return Checkout("openrlhf", version, root, [f"{k}: {v}" for k, v in versions.items()], git_head(root))


def _open_r1(target: str) -> Checkout | None:
    setup_py = os.path.join(target, "setup.py")
    if not (os.path.isfile(os.path.join(target, "src", "open_r1", "sft.py")) and os.path.isfile(setup_py)):
        return None
    setup = _read(setup_py)
    if not re.search(r"""name\s*=\s*["']open-r1["']""", setup):
        return None
    match = re.search(r"""version\s*=\s*["']([^"']+)["']""", setup)
    version = match.group(1) if match else None
    return Checkout("open-r1", version, target, [f"setup.py: {version}"] if version else [], git_head(target))


DETECTORS = (_openrlhf, _open_r1)


def detect(target: str) -> Checkout:
    target = os.path.abspath(target)
    if not os.path.isdir(target):
        raise TargetError(f"--target {target}: no such directory")
    for detector in DETECTORS:
        checkout = detector(target)
        if checkout is not None:
            return checkout
    raise TargetError(
        f"--target {target} is neither an OpenRLHF checkout (openrlhf/cli/train_ppo_ray.py, or an unzipped wheel "
        "with openrlhf-<version>.data/purelib/) nor an Open-R1 checkout (src/open_r1/sft.py and a setup.py "
        "naming open-r1): point it at the repository root")


def patch_set_for(checkout: Checkout) -> PatchSet:
    specs = [s for s in PATCH_SETS if s.upstream == checkout.upstream]
    supported = ", ".join(s.version for s in specs)
    if checkout.version is None:
        raise TargetError(f"cannot tell which {checkout.upstream} version {checkout.root} is (looked for "
                          f"version.txt, <name>-<version>.dist-info/METADATA, __version__); supported: {supported}")
    for spec in specs:
        if spec.version == checkout.version:
            return load_patch_set(spec)
    raise TargetError(f"{checkout.describe()}: no patches for this version; supported {checkout.upstream} "
                      f"version(s): {supported}. Use a supported version, or port the patches (docs/patches.md, "
                      "'Updating the patches').")

"""`git apply` as the patch engine, on any directory (a git work tree or a plain unpacked source tree).

Why git apply and not our own hunk code: it is on every machine that clones these projects, it checks every
hunk of every patch given to one invocation before writing anything (all or nothing), handles new files, and
`--check` / `--reverse` give exact "applies" / "already applied" answers.

`git apply` run inside a git work tree applies paths relative to that tree's top level; a target that is a
sub-directory of some other repository (a vendored copy, a venv inside a project) must be patched relative to
itself, so discovery is stopped at the target's parent (`GIT_CEILING_DIRECTORIES`): the target is then either
a work tree's top level or, for git, a plain directory.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Sequence

from patches.patchfile import PatchFile


class EngineError(RuntimeError):
    """git is missing, or `git apply` failed where its check had passed."""


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str  # git's own explanation when not ok (file, line, "patch does not apply")


class GitApply:
    def __init__(self, root: str):
        self.git = shutil.which("git")
        if self.git is None:
            raise EngineError("git is not installed: `python -m patches` uses `git apply` to apply patches (on any "
                              "directory, git repository or not). Install git (e.g. `apt-get install git`, "
                              "`conda install git`) and run the command again.")
        self.root = os.path.abspath(root)

    def _run(self, options: Sequence[str], patches: Sequence[PatchFile]) -> subprocess.CompletedProcess:
        env = dict(os.environ, GIT_CEILING_DIRECTORIES=os.path.dirname(self.root))
        return subprocess.run([self.git, "apply", *options, *(p.path for p in patches)], cwd=self.root, env=env,
                              capture_output=True, text=True)

    def check(self, patches: Sequence[PatchFile], reverse: bool = False) -> CheckResult:
        done = self._run(["--check"] + (["--reverse"] if reverse else []), patches)
        return CheckResult(done.returncode == 0, (done.stderr or done.stdout).strip())

    def apply(self, patches: Sequence[PatchFile], reverse: bool = False) -> None:
        done = self._run(["--reverse"] if reverse else [], patches)
        if done.returncode != 0:
            raise EngineError(f"git apply{' --reverse' if reverse else ''} failed in {self.root} after its check "
                              f"passed (was the tree changed meanwhile?):\n{done.stderr.strip()}")


def tracked_changes(root: str) -> list[str] | None:
    """Tracked files with uncommitted changes (staged or not) under `root`; None when `root` is not inside a
    git work tree (a plain unpacked source tree has no state to compare with)."""
    inside = subprocess.run(["git", "-C", root, "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    done = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", "."],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise EngineError(f"git status failed in {root}: {done.stderr.strip()}")
    return [line[3:] for line in done.stdout.splitlines() if line.strip()]

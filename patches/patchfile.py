"""What a unified diff changes, read without applying it: files, hunks, added and removed lines.

The engine (`git apply`) decides whether a patch applies; this module only describes it, for the report the
tool prints and for the invariant that each upstream file belongs to one patch of a set. It reads both git's
format (`diff --git`, `new file mode`) and plain `diff -ru` output.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
DEV_NULL = "/dev/null"


class PatchFormatError(ValueError):
    """A .patch file this tool ships is not a unified diff it can describe."""


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the upstream checkout's root, without git's a/ b/ prefixes
    hunks: int
    added: int
    removed: int
    created: bool = False
    deleted: bool = False

    def describe(self) -> str:
        kind = " (new file)" if self.created else " (deleted)" if self.deleted else ""
        return f"{self.path}{kind}: {self.hunks} hunk(s), +{self.added} -{self.removed}"


@dataclass(frozen=True)
class PatchFile:
    path: str  # absolute path of the .patch file
    changes: tuple[FileChange, ...]

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(c.path for c in self.changes)

    @property
    def hunks(self) -> int:
        return sum(c.hunks for c in self.changes)


def _strip(header_path: str) -> str:
    path = header_path.split("\t")[0].strip()
    if path == DEV_NULL:
        return path
    return path[2:] if path[:2] in ("a/", "b/") else path


def read_patch(path: str) -> PatchFile:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    changes: list[FileChange] = []
    i = 0
    while i < len(lines):
        if not (lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")):
            i += 1
            continue
        old, new = _strip(lines[i][4:]), _strip(lines[i + 1][4:])
        i += 2
        hunks = added = removed = 0
        while i < len(lines):
            match = HUNK_HEADER.match(lines[i])
            if not match:
                break
            hunks += 1
            old_left = int(match.group(2) or 1)
            new_left = int(match.group(4) or 1)
            i += 1
            while i < len(lines) and (old_left > 0 or new_left > 0):
                line = lines[i]
                if line.startswith("\\"):  # "\ No newline at end of file"
                    i += 1
                    continue
                tag = line[:1]
                if tag == "-":
                    removed += 1
                    old_left -= 1
                elif tag == "+":
                    added += 1
                    new_left -= 1
                elif tag in (" ", ""):
                    old_left -= 1
                    new_left -= 1
                else:
                    raise PatchFormatError(f"{path}: line {i + 1} inside a hunk of {new} starts with {tag!r}")
                i += 1
            if old_left or new_left:
                raise PatchFormatError(f"{path}: a hunk of {new} ends before its header's line counts")
        if not hunks:
            raise PatchFormatError(f"{path}: file {new} has no hunk")
        changes.append(FileChange(path=old if new == DEV_NULL else new, hunks=hunks, added=added, removed=removed,
                                  created=old == DEV_NULL, deleted=new == DEV_NULL))
    if not changes:
        raise PatchFormatError(f"{path}: no file changes (not a unified diff)")
    return PatchFile(path=os.path.abspath(path), changes=tuple(changes))

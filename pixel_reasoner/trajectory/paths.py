"""How a trajectory record refers to files: relative to the JSONL's directory when inside it, absolute otherwise."""
from __future__ import annotations

import os
import re


def resolve_path(path: str, root: str | None) -> str:
    return path if os.path.isabs(path) or root is None else os.path.join(root, path)


def portable_path(path: str, root: str) -> str:
    """How a file is referenced from a JSONL in `root`: relative when inside `root` (the directory can move),
    absolute otherwise (a relative path climbing out of `root` would break when it moves)."""
    full, base = os.path.abspath(path), os.path.abspath(root)
    return os.path.relpath(full, base) if os.path.commonpath([full, base]) == base else full



def safe_stem(text: str) -> str:
    """A file-name-safe version of a trajectory id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "trajectory"


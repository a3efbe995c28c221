"""Small helpers shared by the loaders: options, reading JSON, resolving files with clear errors."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Sequence

from pixel_reasoner.config import VIDEO_FRAMES
from pixel_reasoner.errors import DataError
from pixel_reasoner.jsonl import read_jsonl


@dataclass(frozen=True)
class LoadOptions:
    """What to load. `split`/`subset` mean different things per benchmark (see docs/eval.md); None = default."""

    split: str | None = None  # tallyqa: test|train (file); infovqa: val|test
    subset: str | None = None  # tallyqa: complex|simple|all; mvbench: comma-separated task names or json stems
    image_root: str | None = None  # where image paths in the annotation files are relative to
    video_frames: int = VIDEO_FRAMES  # frames sampled from each video


def read_json(path: str) -> Any:
    """An annotation file: JSON, or JSON Lines (`.jsonl`, a list of objects)."""
    if not os.path.isfile(path):
        raise DataError(f"annotation file not found: {path}")
    if path.endswith(".jsonl"):
        return read_jsonl(path)
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def require(record: dict, key: str, where: str) -> Any:
    if key not in record:
        raise DataError(f"{where}: missing field `{key}` (fields present: {sorted(record)})")
    return record[key]


def resolve_file(name: str, roots: Sequence[str], what: str) -> str:
    """The first existing `root/name` (or `name` itself when absolute); DataError listing every path tried."""
    if os.path.isabs(name):
        if os.path.exists(name):
            return name
        raise DataError(f"{what} not found: {name}")
    tried = [os.path.join(r, name) for r in roots]
    for path in tried:
        if os.path.exists(path):
            return path
    raise DataError(f"{what} not found: tried {', '.join(tried)}")

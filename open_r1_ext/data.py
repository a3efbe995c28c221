"""Reading SFT data files into trajectories that remember where they came from, and mixing them.

Two formats, recognised per record so one file may even hold both:
- our trajectory JSONL (schema v1, `pixel_reasoner.trajectory`), one object per line;
- the released PixelReasoner-SFT-Data: a JSON list (or JSONL) of `{"message_list": [...], ...}`, converted by
  `pixel_reasoner.trajectory.from_released_sft` (which marks every assistant turn before the last two
  `loss: false`, the official trainer's positional rule made explicit).
A record that cannot be read becomes a `Problem` naming its file and row; nothing is dropped silently.
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import warnings
from dataclasses import dataclass
from typing import Sequence, TypeVar

from pixel_reasoner.errors import DataError
from pixel_reasoner.jsonl import jsonl_lines
from pixel_reasoner.trajectory import Trajectory, from_released_sft

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Row:
    """One trajectory and its origin; `root` is the absolute directory its relative media paths resolve against."""

    trajectory: Trajectory
    source: str
    index: int
    root: str

    @property
    def where(self) -> str:
        return f"{self.source} row {self.index}"


@dataclass
class Problem:
    """Why one row cannot be trained on."""

    source: str
    index: int
    message: str
    id: str | None = None

    def to_dict(self) -> dict:
        return {"source": self.source, "row": self.index, "id": self.id, "problem": self.message}

    def __str__(self) -> str:
        ident = f" (id {self.id})" if self.id else ""
        return f"{self.source} row {self.index}{ident}: {self.message}"


def read_data_file(path: str, image_root: str | None = None) -> tuple[list[Row], list[Problem]]:
    """Every row of one file, as trajectories or as problems. A file that cannot be read at all raises."""
    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path} (check `data_files` in the recipe)")
    root = os.path.abspath(image_root if image_root is not None else os.path.dirname(os.path.abspath(path)))
    with open(path, encoding="utf-8") as f:
        is_list = f.read(4096).lstrip().startswith("[")
    records: list[tuple[int, object]] = []
    if is_list:  # the released data: one JSON list
        with open(path, encoding="utf-8") as f:
            try:
                items = json.load(f)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
        records = list(enumerate(items))
    else:
        records = [(line.number - 1, line.value if line.error is None else DataError(line.error))
                   for line in jsonl_lines(path)]
    rows, problems = [], []
    for index, record in records:
        try:
            rows.append(Row(_to_trajectory(record, index, path, root), path, index, root))
        except DataError as e:
            problems.append(Problem(path, index, _without_location(str(e), path, index)))
    return rows, problems


def _to_trajectory(record: object, index: int, path: str, root: str) -> Trajectory:
    if isinstance(record, DataError):
        raise record
    if not isinstance(record, dict):
        raise DataError(f"expected a JSON object, got {type(record).__name__}")
    if "message_list" in record:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trajectory = from_released_sft(record, index, image_root=root)
        for w in caught:
            logger.warning("%s: %s", path, w.message)
        return trajectory
    return Trajectory.from_dict(record, where=f"{path} row {index}")


def _without_location(message: str, path: str, index: int) -> str:
    """Core errors start with their own location; the Problem carries it already."""
    for prefix in (f"{path} row {index}: ", f"released SFT row {index}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def mix(files: Sequence[tuple[str, Sequence[T]]], weights: Sequence[float], seed: int) -> tuple[list[T], list[dict]]:
    """Weighted mixture of (file, valid samples): weight w takes every sample floor(w) times plus a seeded random
    (w - floor(w)) share of them.

    Returns the mixed rows (in file order; the trainer shuffles) and one summary per file for the run log.
    """
    rng = random.Random(seed)
    mixed: list[T] = []
    summary = []
    for (source, rows), weight in zip(files, weights):
        whole = math.floor(weight)
        taken = list(rows) * whole + rng.sample(list(rows), round((weight - whole) * len(rows)))
        mixed.extend(taken)
        summary.append({"source": source, "valid_rows": len(rows), "weight": weight, "samples": len(taken)})
    return mixed, summary

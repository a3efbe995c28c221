"""Files to trajectories for the viewer: schema-v1 JSONL, the released SFT JSON list, and row formats that other
packages register.

A package that writes its own JSONL rows (an evaluation's `predictions.jsonl`, say) registers a `RowFormat` that
recognises its rows and converts one row to a `Trajectory`; the conversion lives with the code that writes the rows
(`eval/view.py`), so the core reads no adapter's fields. Rows that cannot be read become notes shown on the page,
never dropped silently.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from pixel_reasoner.errors import DataError
from pixel_reasoner.jsonl import jsonl_lines
from pixel_reasoner.trajectory import Trajectory, from_released_sft, read_trajectories


@dataclass
class Loaded:
    """One trajectory to show, with where it came from and the directory its relative paths resolve against."""

    label: str
    trajectory: Trajectory
    root: str


@dataclass(frozen=True)
class RowFormat:
    """A JSONL row format other than schema-v1 trajectories, registered by the package that writes it."""

    name: str  # in notes about rows that could not be read: "not a {name} row"
    matches: Callable[[dict], bool]  # is this (the file's first) row one of ours?
    to_trajectory: Callable[[dict], Trajectory]  # raises KeyError, TypeError, ValueError or DataError on a bad row


_ROW_FORMATS: dict[str, RowFormat] = {}


def register_row_format(row_format: RowFormat) -> RowFormat:
    """Make `load_for_view` read files whose first row `row_format` matches; returns it, to keep at module level."""
    _ROW_FORMATS[row_format.name] = row_format
    return row_format


def load_for_view(paths: Sequence[str], root: str | None = None) -> tuple[list[Loaded], list[str]]:
    """The trajectories in `paths` and notes about rows that could not be read.

    A `.json` file is a released SFT list; a JSONL file whose first row a registered `RowFormat` matches is read
    with it; any other file is schema-v1 JSONL. Relative paths resolve against `root` or the file's directory.
    """
    loaded: list[Loaded] = []
    notes: list[str] = []
    for path in paths:
        if not os.path.isfile(path):
            raise DataError(f"trajectory file not found: {path}")
        base = root or os.path.dirname(os.path.abspath(path))
        name = os.path.basename(path)
        if path.endswith(".json"):
            loaded += [Loaded(f"{name} #{i}", t, base) for i, t in _released_records(path, base, notes)]
            continue
        row_format = _row_format_of(path)
        rows = _schema_v1_rows(path, notes) if row_format is None else _format_rows(path, row_format, notes)
        loaded += [Loaded(f"{name} row {i}", t, base) for i, t in rows]
    return loaded, notes


def _released_records(path: str, base: str, notes: list[str]) -> list[tuple[int, Trajectory]]:
    with open(path, encoding="utf-8") as f:
        try:
            records = json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON list of released SFT records (with `message_list`); "
                        "schema-v1 trajectories are JSONL (one object per line, *.jsonl)")
    converted = []
    for i, record in enumerate(records):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                converted.append((i, from_released_sft(record, i, image_root=base)))
            notes.extend(str(w.message) for w in caught)
        except DataError as e:
            notes.append(f"skipped: {e}")
    return converted


def _schema_v1_rows(path: str, notes: list[str]) -> list[tuple[int, Trajectory]]:
    """The readable rows; the reader's warnings about the others become notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = list(read_trajectories(path, strict=False))
    notes.extend(str(w.message) for w in caught)
    return rows


def _row_format_of(path: str) -> RowFormat | None:
    """The registered format that matches the file's first non-empty row, if any (schema-v1 rows never match)."""
    row = next(jsonl_lines(path), None)
    if row is None or row.value is None or "schema_version" in row.value:
        return None
    return next((fmt for fmt in _ROW_FORMATS.values() if fmt.matches(row.value)), None)


def _format_rows(path: str, row_format: RowFormat, notes: list[str]) -> Iterator[tuple[int, Trajectory]]:
    for line in jsonl_lines(path):
        i = line.number - 1
        try:
            if line.error is not None:
                raise DataError(line.error)
            yield i, row_format.to_trajectory(line.value)  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError, DataError) as e:
            notes.append(f"skipped {path} row {i}: not a {row_format.name} row ({type(e).__name__}: {e})")

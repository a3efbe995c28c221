"""Prediction rows on disk: append-only JSONL written one row at a time, durable, resumable.

Each finished (question, sample) is one line, written with flush + fsync before the next is started, so a crash
(kill -9, OOM, preemption) loses at most the rows still in flight. A crash in the middle of a write can leave a
partial last line; `recover_predictions` detects it (no trailing newline, or not JSON) and cuts it off before
the run resumes. A malformed line anywhere else is not a crash artefact and raises DataError naming the line.

Row schema (keys every row has; `eval score` needs only these):
    id, benchmark, sample_idx, question, choices, answer, category, response (the final assistant turn's full
    text), num_operations, num_operation_errors, crops ([{"box": [x1, y1, x2, y2] in source-image pixels, "image",
    "turn"}]), target_boxes (V*), termination, turns, generated_tokens, messages, meta
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from typing import Iterable, Iterator

from pixel_reasoner.errors import DataError
from pixel_reasoner.jsonl import JsonlAppender, iter_jsonl, repair_tail

logger = logging.getLogger(__name__)

REQUIRED_FIELDS = ("id", "benchmark", "response", "answer")
RENAMED_FIELDS = {"num_ops": "num_operations", "op_errors": "num_operation_errors"}  # rows written before 0.2


def row_key(row: dict) -> tuple[str, int]:
    return str(row["id"]), int(row.get("sample_idx", 0))


def upgrade_row(row: dict) -> dict:
    """A row as this version names its fields (rows written before 0.2 said `num_ops` and `op_errors`)."""
    if not any(old in row for old in RENAMED_FIELDS):
        return row
    return {RENAMED_FIELDS.get(k, k): v for k, v in row.items()}


def iter_rows(path: str) -> Iterator[tuple[int, dict]]:
    """(line number, row) for every line; DataError naming the line for anything that is not a JSON object."""
    if not os.path.isfile(path):
        raise DataError(f"predictions file not found: {path}")
    old_names = False
    for n, row in iter_jsonl(path):
        missing = [k for k in REQUIRED_FIELDS if k not in row]
        if missing:
            raise DataError(f"{path} line {n}: missing field(s) {missing}")
        old_names = old_names or any(old in row for old in RENAMED_FIELDS)
        yield n, upgrade_row(row)
    if old_names:
        warnings.warn(f"{path}: rows with the old field names {', '.join(RENAMED_FIELDS)} were read as "
                      f"{', '.join(RENAMED_FIELDS.values())} (the old names are not read after the next release)",
                      FutureWarning, stacklevel=2)


def read_predictions(path: str) -> list[dict]:
    """All rows; DataError if a (id, sample_idx) appears twice, naming both lines."""
    rows, seen = [], {}
    for n, row in iter_rows(path):
        key = row_key(row)
        if key in seen:
            raise DataError(f"{path}: question {key[0]!r} sample {key[1]} appears twice (lines {seen[key]} and {n})")
        seen[key] = n
        rows.append(row)
    return rows


def recover_predictions(path: str) -> int:
    """Repair the end of a predictions file after a crash (`pixel_reasoner.jsonl.repair_tail`: a whole last row
    missing its newline is kept); returns the number of bytes discarded."""
    removed = repair_tail(path, lambda row: all(k in row for k in REQUIRED_FIELDS))
    if removed:
        logger.warning("%s: discarding a partially written last line (%d bytes) left by an interrupted run", path,
                       removed)
    return removed


PredictionWriter = JsonlAppender  # one durable line per finished (question, sample)


def write_json_atomic(path: str, obj) -> None:
    """Write JSON through a temporary file + rename, so readers never see half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_rows(path: str, rows: Iterable[dict]) -> None:
    with PredictionWriter(path) as w:
        for row in rows:
            w.write(row)

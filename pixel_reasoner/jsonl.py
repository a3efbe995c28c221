"""JSON Lines files, read and written the same way by every stage (trajectories, predictions, seeds, logs).

A reader sees each non-blank line as a `JsonlLine`: its line number, and either the JSON object it holds or why
it is not one. `iter_jsonl` is the strict reader (the first bad line raises `DataError` naming the file and the
line); readers that keep going past bad rows (seed loading, the viewer, SFT's validation report) use
`jsonl_lines` and report each problem themselves. A last line without its newline is what an interrupted writer
leaves; its error says so.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from pixel_reasoner.errors import DataError


@dataclass(frozen=True)
class JsonlLine:
    number: int  # 1-based line number
    text: str
    value: dict | None  # the object, None when the line is not one
    error: str | None = None  # why the line is not a JSON object
    complete: bool = True  # ends with a newline (False: the last line of an interrupted write)


def jsonl_lines(path: str) -> Iterator[JsonlLine]:
    """Every non-blank line of a JSONL file, parsed."""
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            complete = text.endswith("\n")
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                cut = "" if complete else "; the file may have been cut off mid-write"
                yield JsonlLine(number, text, None, f"not valid JSON ({e.msg} at column {e.colno}){cut}", complete)
                continue
            if not isinstance(value, dict):
                yield JsonlLine(number, text, None, f"expected a JSON object, got {type(value).__name__}", complete)
                continue
            yield JsonlLine(number, text, value, None, complete)


def iter_jsonl(path: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) of every non-blank line; DataError naming the file and line at the first bad one."""
    for line in jsonl_lines(path):
        if line.error is not None:
            raise DataError(f"{path} line {line.number}: {line.error}")
        yield line.number, line.value  # type: ignore[misc]


def read_jsonl(path: str) -> list[dict]:
    """Every object of a JSONL file (strict, as `iter_jsonl`)."""
    return [value for _, value in iter_jsonl(path)]


def dumps(row: Any) -> str:
    """One row as one line (UTF-8 kept as is)."""
    return json.dumps(row, ensure_ascii=False) + "\n"


def write_jsonl(path: str, rows: Iterable[Any], append: bool = False) -> int:
    """Write (or append) rows, one per line; returns how many."""
    n = 0
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        for row in rows:
            f.write(dumps(row))
            n += 1
    return n


def repair_tail(path: str, complete: Callable[[dict], bool] = lambda row: True) -> int:
    """Repair the end of an append-only JSONL file after a crash; returns the number of bytes discarded.

    Rows are written as one line ending in a newline, so only the last line can be partial: one without its
    newline, or one that is not JSON (a crash can leave garbage where a block was being written). A last line
    without its newline that is nevertheless a whole row (`complete(row)`: the crash hit between the row and its
    newline) gets its newline and is kept; any other broken last line is cut off. A broken line before the last
    is not a crash artefact: readers report it.
    """
    if not os.path.isfile(path):
        return 0
    with open(path, "rb+") as f:
        data = f.read()
        body = data.rstrip(b"\n")
        if not body:
            return 0
        start = body.rfind(b"\n") + 1
        try:
            row = json.loads(body[start:])
            parsed = isinstance(row, dict)
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = False
        newline = len(body) < len(data)
        if parsed and newline:
            return 0
        if parsed and complete(row):
            f.write(b"\n")
            removed = 0
        else:
            f.truncate(start)
            removed = len(data) - start
        f.flush()
        os.fsync(f.fileno())
    return removed


class JsonlAppender:
    """Appends rows durably: one line per row, flushed and fsynced before `write` returns, so a crash loses at
    most the row being written (and leaves at most a partial last line, which readers detect)."""

    def __init__(self, path: str):
        self.path = path
        self._file = open(path, "a", encoding="utf-8")

    def write(self, row: Any) -> None:
        self._file.write(dumps(row))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

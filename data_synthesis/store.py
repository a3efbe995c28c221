"""Crash-safe, append-only JSONL files and an on-disk response cache.

`JsonlStore`: each finished record is one line, written with flush + fsync before the run moves on, so a `kill -9`
at any point loses at most the record being written. On open, a torn last line (no newline, or not JSON) is cut
off, and the keys already present are loaded: a rerun skips them, so nothing is done twice or written twice.

`ResponseCache`: one file per request, named by the SHA-256 of the request's canonical JSON (model, messages with
the images' bytes, sampling parameters), written atomically (temp file + rename). A rerun of the same request
reads the file instead of calling the API.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from typing import Any, Iterator

from pixel_reasoner.errors import DataError
from pixel_reasoner.jsonl import JsonlAppender, iter_jsonl, jsonl_lines, repair_tail

logger = logging.getLogger(__name__)


class JsonlStore:
    """Append-only JSONL, keyed by `key_field` (None: a plain log); a torn last line left by a killed writer is cut
    off on open, so the next append starts on a clean line."""

    def __init__(self, path: str, key_field: str | None = None):
        self.path = path
        self.key_field = key_field
        self.keys: set[str] = set()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.repaired = repair_tail(path, lambda row: False)  # bytes of a torn last line that were cut off
        if self.repaired:
            logger.warning("%s: discarding a torn last line (%d bytes) left by an interrupted run", path,
                           self.repaired)
        if key_field is not None and os.path.exists(path):
            self.keys = {str(record[key_field]) for _, record in iter_jsonl(path)}
        self._file = JsonlAppender(path)

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def append(self, record: dict) -> None:
        key = str(record[self.key_field]) if self.key_field is not None else None
        if key is not None and key in self.keys:
            raise ValueError(f"{self.path}: key {key!r} is already written")
        self._file.write(record)
        if key is not None:
            self.keys.add(key)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "JsonlStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_jsonl(path: str) -> Iterator[dict]:
    """Records of a JSONL file, skipping a torn last line (a reader may run while a writer is appending)."""
    if not os.path.exists(path):
        return
    for line in jsonl_lines(path):
        if not line.complete:
            return
        if line.error is not None:
            raise DataError(f"{path} line {line.number}: {line.error}")
        yield line.value  # type: ignore[misc]


def request_key(request: dict) -> str:
    """SHA-256 of the request's canonical JSON: any change of model, message, image byte or parameter changes it."""
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, directory: str):
        self.directory = directory

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], key + ".json")

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:  # cannot happen with atomic writes unless edited; treat as a miss
            logger.warning("ignoring unreadable cache entry %s", path)
            return None

    def put(self, key: str, response: dict) -> None:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(response, f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

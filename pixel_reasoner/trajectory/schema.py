"""The trajectory record (schema v1): the `Trajectory` dataclass and its JSONL files (see the package docstring).

A record reads back what it was written as: `from_dict` checks the shape of the top-level fields and keeps every
unknown key in `meta`, so files written by a newer writer still load. `validate` (in `validation`) checks the
messages.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from pixel_reasoner.errors import DataError
from pixel_reasoner.jsonl import jsonl_lines, write_jsonl
from pixel_reasoner.trajectory.validation import validate_trajectory

SCHEMA_VERSION = 1
RENAMED_FIELDS = {"kind": "trajectory_type"}  # records written before 0.2 (read under the new name)


@dataclass
class Trajectory:
    id: str
    messages: list[dict]
    profile: str = "released"
    media: list[dict] = field(default_factory=list)
    question: str | None = None
    choices: list[str] | None = None
    answer: Any = None
    source: str | None = None
    trajectory_type: str | None = None  # single_pass, recrop_once, ... (synthesis); text_only, ... (released data)
    meta: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return {"schema_version": self.schema_version, "id": self.id, "profile": self.profile, "media": self.media,
                "question": self.question, "choices": self.choices, "answer": self.answer, "source": self.source,
                "trajectory_type": self.trajectory_type, "meta": self.meta, "messages": self.messages}

    @classmethod
    def from_dict(cls, d: dict, where: str = "trajectory") -> "Trajectory":
        if not isinstance(d, dict):
            raise DataError(f"{where}: a trajectory must be a JSON object, got {type(d).__name__}")
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise DataError(f"{where}: schema_version is {version!r}, this reader supports {SCHEMA_VERSION}"
                            + (" (a released `message_list` record? use from_released_sft)" if "message_list" in d else ""))
        for key in ("id", "messages"):
            if key not in d:
                raise DataError(f"{where}: missing required field `{key}`")
        if not isinstance(d["messages"], list):
            raise DataError(f"{where}: `messages` must be a list of messages, got {type(d['messages']).__name__}")
        for key, kind in (("media", list), ("choices", list), ("meta", dict)):
            if d.get(key) is not None and not isinstance(d[key], kind):
                raise DataError(f"{where}: `{key}` must be a {kind.__name__}, got {type(d[key]).__name__}")
        if any(old in d for old in RENAMED_FIELDS):
            warnings.warn("trajectories with the old field `kind` are read as `trajectory_type` (the old name is "
                          "not read after the next release)", FutureWarning, stacklevel=2)
            d = {RENAMED_FIELDS.get(k, k): v for k, v in d.items()}
        known = {"schema_version", "id", "profile", "media", "question", "choices", "answer", "source",
                 "trajectory_type", "meta", "messages"}
        extra = {k: v for k, v in d.items() if k not in known}
        meta = dict(d.get("meta") or {}, **extra)
        return cls(id=str(d["id"]), messages=d["messages"], profile=d.get("profile") or "released",
                   media=d.get("media") or [], question=d.get("question"), choices=d.get("choices"),
                   answer=d.get("answer"), source=d.get("source"), trajectory_type=d.get("trajectory_type"),
                   meta=meta)

    def assistant_turns(self) -> list[dict]:
        return [m for m in self.messages if m["role"] == "assistant"]

    def image_paths(self) -> list[str]:
        """Every image path in message order (one per image placeholder), videos excluded."""
        return [p["path"] for m in self.messages if isinstance(m.get("content"), list)
                for p in m["content"] if p.get("type") == "image"]

    def validate(self, root: str | None = None, where: str = "trajectory") -> list[str]:
        """Problems with this record (empty when valid); `root` enables file-existence checks."""
        return validate_trajectory(self.messages, root, where)


def read_trajectories(path: str, strict: bool = True) -> Iterator[tuple[int, Trajectory]]:
    """(row index, trajectory) for each non-empty line (rows count from 0, as lines of the file minus one).

    A malformed row raises DataError naming the file, row and field; with `strict=False` it is skipped with a
    warning that says the same, so a long run's partial output can still be inspected.
    """
    for line in jsonl_lines(path):
        i = line.number - 1
        try:
            if line.error is not None:
                raise DataError(f"{path} row {i} (line {line.number}): {line.error}")
            trajectory = Trajectory.from_dict(line.value, where=f"{path} row {i}")  # type: ignore[arg-type]
        except DataError as e:
            if strict:
                raise
            warnings.warn(f"skipping {e}", stacklevel=2)
            continue
        yield i, trajectory


def write_trajectories(path: str, trajectories: Iterable[Trajectory], append: bool = False) -> int:
    return write_jsonl(path, (t.to_dict() for t in trajectories), append=append)

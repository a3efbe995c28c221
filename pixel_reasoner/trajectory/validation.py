"""Checks of a trajectory's messages: roles, content parts, loss flags, and (given a root) that media files exist.

Every problem is one sentence naming the message and part (`f.jsonl row 4: messages[2].content[0] is an image
without `path``), so a data set's report lists them all instead of stopping at the first.
"""
from __future__ import annotations

import os
from typing import Sequence

from pixel_reasoner.trajectory.paths import resolve_path

ROLES = ("system", "user", "assistant", "tool")
PART_TYPES = ("text", "image", "video")


def validate_trajectory(messages: Sequence, root: str | None = None, where: str = "trajectory") -> list[str]:
    """Problems with a trajectory's messages (empty when valid); `root` enables file-existence checks."""
    problems = []
    if not messages:
        return [f"{where}: `messages` is empty"]
    for i, m in enumerate(messages):
        at = f"{where}: messages[{i}]"
        if not isinstance(m, dict):
            problems.append(f"{at} must be an object with `role` and `content`, got {type(m).__name__}")
            continue
        role = m.get("role")
        if role not in ROLES:
            problems.append(f"{at}.role is {role!r}; expected one of {ROLES}")
            continue
        content = m.get("content")
        if role == "assistant":
            if not isinstance(content, str):
                problems.append(f"{at}.content of an assistant turn must be the raw text (a string), got "
                                f"{type(content).__name__}")
            if "loss" in m and not isinstance(m["loss"], bool):
                problems.append(f"{at}.loss must be true or false, got {m['loss']!r}")
            continue
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            problems.append(f"{at}.content must be a string or a list of parts")
            continue
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if not isinstance(part, dict):
                problems.append(f"{at}.content[{j}] must be an object with a `type`, got {type(part).__name__}")
            elif kind not in PART_TYPES:
                problems.append(f"{at}.content[{j}].type is {kind!r}; expected one of {PART_TYPES}")
            elif kind == "text" and not isinstance(part.get("text"), str):
                problems.append(f"{at}.content[{j}].text must be a string")
            elif kind == "image":
                if not part.get("path"):
                    problems.append(f"{at}.content[{j}] is an image without `path`")
                elif root is not None and not os.path.exists(resolve_path(part["path"], root)):
                    problems.append(f"{at}.content[{j}]: image file not found: {resolve_path(part['path'], root)}")
            elif kind == "video":
                paths = part.get("frame_paths") or ([part["path"]] if part.get("path") else [])
                if not paths:
                    problems.append(f"{at}.content[{j}] is a video without `path` or `frame_paths`")
                for p in paths if root is not None else []:
                    if not os.path.exists(resolve_path(p, root)):
                        problems.append(f"{at}.content[{j}]: video file not found: {resolve_path(p, root)}")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        problems.append(f"{where}: no assistant turn to learn from")
    return problems



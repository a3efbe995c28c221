"""The released PixelReasoner-SFT-Data (`message_list` records) as trajectories.

The official trainer's positional rule (loss on the last two assistant turns only) is what gave that data its
meaning, so `from_released_sft` writes it down explicitly as `loss: false` on every earlier assistant turn.
"""
from __future__ import annotations

import os
import warnings
from typing import Any

from pixel_reasoner.errors import DataError
from pixel_reasoner.parsing import TOOL_CALL_OPEN
from pixel_reasoner.trajectory.schema import Trajectory

RELEASED_ERROR_PREFIX = "Execution error:"
RELEASED_PART_KEYS = ("type", "text", "image", "video")  # keys of a released content part that are read


def from_released_sft(record: dict, index: int, image_root: str | None = None, profile: str = "released") -> Trajectory:
    """Convert one item of the released PixelReasoner-SFT-Data JSON (`message_list`) to a Trajectory.

    The official trainer's positional rule (loss on the last two assistant turns only) is what gave that data
    its meaning, so every assistant turn before the last two is marked `loss: false` here, explicitly. Rows that
    do not fit the pattern (a masked turn without a tool call) get a warning naming the row.

    Per-part keys besides the media itself (qwen-vl-utils' `min_pixels`, `max_pixels`, `resized_height`,
    `resized_width`, `fps`, `nframes`, ...) are not carried over: every stage shows an image at its kind's pixel
    budget, so a per-image size would exist in SFT only. Their names go to `meta["ignored_media_keys"]`, which
    SFT's validation report counts.
    """
    where = f"released SFT row {index}"
    msgs = record.get("message_list")
    if not isinstance(msgs, list) or not msgs:
        raise DataError(f"{where}: missing `message_list`")
    out: list[dict] = []
    media: list[dict] = []
    ignored: set[str] = set()
    seen_user = False
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise DataError(f"{where}: message_list[{i}] must be an object with `role` and `content`, got "
                            f"{type(m).__name__}")
        role = m.get("role")
        if role not in ("system", "user", "assistant"):
            raise DataError(f"{where}: message_list[{i}].role is {role!r}; expected system, user or assistant")
        content = m.get("content")
        if role in ("system", "assistant"):
            out.append({"role": role, "content": _released_text(content, f"{where}: message_list[{i}]")})
            continue
        parts = []
        if not isinstance(content, (list, str)):
            raise DataError(f"{where}: message_list[{i}].content must be a string or a list of parts, got "
                            f"{type(content).__name__}")
        for j, c in enumerate(content if isinstance(content, list) else [{"type": "text", "text": content}]):
            if not isinstance(c, dict):
                raise DataError(f"{where}: message_list[{i}].content[{j}] must be an object "
                                f"({{\"type\": \"text\"|\"image\"|\"video\", ...}}), got {type(c).__name__}")
            kind = c.get("type") or next((k for k in ("image", "video", "text") if k in c), None)
            ignored.update(k for k in c if k not in RELEASED_PART_KEYS)
            if kind == "text":
                parts.append({"type": "text", "text": c.get("text", "")})
            elif kind == "image":
                path = _rooted(c.get("image"), image_root, f"{where}: message_list[{i}].content[{j}].image")
                parts.append({"type": "image", "path": path})
                if not seen_user:
                    media.append({"type": "image", "path": path})
            elif kind == "video":
                value = c.get("video")
                if isinstance(value, list):
                    frames = [_rooted(v, image_root, f"{where}: message_list[{i}].content[{j}].video") for v in value]
                    part = {"type": "video", "frame_paths": frames, "num_frames": len(frames)}
                else:
                    part = {"type": "video", "path": _rooted(value, image_root, f"{where}: message_list[{i}].video")}
                parts.append(part)
                if not seen_user:
                    media.append(dict(part))
            else:
                raise DataError(f"{where}: message_list[{i}].content[{j}] has unknown type {kind!r} "
                                "(expected text, image or video)")
        rec: dict[str, Any] = {"role": "user", "content": parts}
        if seen_user:
            rec["observation"] = True
            text = "".join(p["text"] for p in parts if p["type"] == "text")
            if text.lstrip().startswith(RELEASED_ERROR_PREFIX):
                rec["error"] = text.lstrip()[len(RELEASED_ERROR_PREFIX):].strip()
        seen_user = True
        out.append(rec)
    assistant_idx = [k for k, m in enumerate(out) if m["role"] == "assistant"]
    for n, k in enumerate(assistant_idx[:-2]):
        out[k]["loss"] = False
        if TOOL_CALL_OPEN not in out[k]["content"]:
            warnings.warn(f"{where}: assistant turn {n + 1} of {len(assistant_idx)} (message_list[{k}]) is masked "
                          "by the official last-two-turns rule but has no tool call; check that this row is a "
                          "self-correction trajectory", stacklevel=2)
    trajectory_type = "text_only" if len(assistant_idx) == 1 else {
        2: "single_pass", 3: "self_correction", 4: "recrop_twice"}.get(len(assistant_idx), "multi_turn")
    meta = {k: v for k, v in record.items() if k != "message_list"}
    if ignored:
        meta["ignored_media_keys"] = sorted(ignored)
    qid = record.get("qid") or record.get("id") or f"released-{index}"
    return Trajectory(id=str(qid), messages=out, profile=profile, media=media, answer=record.get("answer"),
                      source="released_sft", trajectory_type=trajectory_type, meta=meta)



def _released_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(c, dict) for c in content):
        texts = [c.get("text", "") for c in content if (c.get("type") or ("text" if "text" in c else None)) == "text"]
        if len(texts) != len(content):
            raise DataError(f"{where}: system/assistant content must be text only")
        return "".join(texts)
    raise DataError(f"{where}: content must be a string or a list of text parts")


def _rooted(path: Any, root: str | None, where: str) -> str:
    if not isinstance(path, str) or not path:
        raise DataError(f"{where}: expected a file path, got {path!r}")
    if path.startswith("file://"):
        path = path[len("file://"):]
    return path if os.path.isabs(path) or root is None else os.path.join(root, path)

"""Trajectory messages in the formats models and APIs take: Hugging Face chat messages (for the processor's chat
template) and OpenAI chat messages (images as data URIs, a video as its frames)."""
from __future__ import annotations

import base64
import io
from typing import Any, Sequence

from PIL import Image

from pixel_reasoner.errors import DataError
from pixel_reasoner.media import VideoSource
from pixel_reasoner.trajectory.paths import resolve_path
from pixel_reasoner.trajectory.schema import Trajectory


def to_hf_messages(traj: Trajectory, root: str | None = None, load_images: bool = False) -> list[dict]:
    """Messages for `processor.apply_chat_template` (our Jinja template honours `loss`).

    Images become {"type": "image", "image": path | PIL}; observation turns keep their role (user or tool).
    """
    out = []
    for m in traj.messages:
        msg: dict[str, Any] = {"role": m["role"]}
        if m["role"] == "assistant" and m.get("loss") is False:
            msg["loss"] = False
        content = m["content"]
        if isinstance(content, list):
            parts = []
            for p in content:
                if p["type"] == "image":
                    path = resolve_path(p["path"], root)
                    parts.append({"type": "image", "image": _open_rgb(path) if load_images else path})
                elif p["type"] == "video":
                    frames = [resolve_path(x, root) for x in p.get("frame_paths") or []]
                    parts.append({"type": "video", "video": frames or resolve_path(p["path"], root)})
                else:
                    parts.append({"type": "text", "text": p["text"]})
            msg["content"] = parts
        else:
            msg["content"] = content
        out.append(msg)
    return out


def _open_rgb(path: str) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def image_data_uri(image: "Image.Image | str", fmt: str = "PNG") -> str:
    if isinstance(image, str):
        image = _open_rgb(image)
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode()


def to_openai_messages(messages: Sequence[dict], root: str | None = None) -> list[dict]:
    """OpenAI chat messages: images as data URIs, a video as its frames, observation turns as user turns."""
    out = []
    for m in messages:
        role = "user" if m["role"] == "tool" else m["role"]
        content = m.get("content")
        if not isinstance(content, list):
            out.append({"role": role, "content": content})
            continue
        parts: list[dict] = []
        for p in content:
            if p.get("type") == "image":
                img = p.get("image") if p.get("image") is not None else resolve_path(p["path"], root)
                parts.append({"type": "image_url", "image_url": {"url": image_data_uri(img)}})
            elif p.get("type") == "video":
                for f in _video_frames_for_openai(p, root):
                    parts.append({"type": "image_url", "image_url": {"url": image_data_uri(f)}})
            else:
                parts.append({"type": "text", "text": p.get("text", "")})
        out.append({"role": role, "content": parts})
    return out


def _video_frames_for_openai(part: dict, root: str | None) -> list:
    """A video part's frames (PIL images or paths): OpenAI-compatible servers take a video as its frames."""
    video = part.get("video")
    if isinstance(video, list):
        return [f if not isinstance(f, str) else resolve_path(f, root) for f in video]
    if part.get("frame_paths"):
        return [resolve_path(f, root) for f in part["frame_paths"]]
    path = video if isinstance(video, str) else part.get("path")
    if not path:
        raise DataError(f"video part without frames or a path: {sorted(part)}")
    return VideoSource(path=resolve_path(path, root), num_frames=part.get("num_frames") or 16).load_frames()


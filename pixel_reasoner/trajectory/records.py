"""Episodes to trajectory records: the messages an `Episode` produced, made serialisable (images written as
PNG, inputs and videos referenced by path), with the episode's statistics and configuration in `meta`."""
from __future__ import annotations

import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Sequence

from PIL import Image

from pixel_reasoner.media import save_image
from pixel_reasoner.trajectory.paths import portable_path, safe_stem
from pixel_reasoner.trajectory.schema import Trajectory

if TYPE_CHECKING:
    from pixel_reasoner.episode import Episode


def messages_to_records(messages: Sequence[dict], image_dir: str, root: str, stem: str) -> list[dict]:
    """Episode/prompt messages (with PIL images) -> serialisable messages, writing images under `image_dir`.

    Paths of files written here (and of absolute paths given) are stored relative to `root` (the directory the
    JSONL lives in) when inside it. Images that already carry a `path` are referenced, not re-encoded. A video
    part is stored by reference to its `video_source` (file or frame images); a video given only as decoded frames
    has its frames written as images.
    """
    out, counter = [], 0
    for m in messages:
        rec = {k: v for k, v in m.items() if k != "content"}
        content = m.get("content")
        if isinstance(content, list):
            parts = []
            for p in content:
                if p.get("type") == "image":
                    path = p.get("path")
                    if path is None:
                        counter += 1
                        index = p.get("image_index", counter)
                        path = save_image(p["image"], os.path.join(image_dir, f"{stem}_{index}.png"))
                        path = portable_path(path, root)
                    elif os.path.isabs(path):
                        path = portable_path(path, root)
                    part = {"type": "image", "path": path}
                    if p.get("provenance"):
                        part["provenance"] = p["provenance"]
                    parts.append(part)
                elif p.get("type") == "video":
                    parts.append(_video_record(p, image_dir, root, stem))
                else:
                    parts.append({"type": "text", "text": p.get("text", "")})
            rec["content"] = parts
        else:
            rec["content"] = content
        out.append(rec)
    return out


def _video_record(part: dict, image_dir: str, root: str, stem: str) -> dict:
    source = part.get("video_source")
    if source is not None and source.path is not None:
        return {"type": "video", "path": portable_path(source.path, root), "num_frames": source.num_frames}
    if source is not None:
        frames = [portable_path(f, root) for f in source.frame_paths]
        return {"type": "video", "frame_paths": frames, "num_frames": len(frames)}
    if isinstance(part.get("video"), str):
        return {"type": "video", "path": portable_path(part["video"], root)}
    if isinstance(part.get("video"), list) and part["video"] and isinstance(part["video"][0], Image.Image):
        frames = [portable_path(save_image(f, os.path.join(image_dir, f"{stem}_video_{k + 1}.png")), root)
                  for k, f in enumerate(part["video"])]
        return {"type": "video", "frame_paths": frames, "num_frames": len(frames)}
    record = {k: v for k, v in part.items() if k in ("type", "path", "frame_paths", "num_frames")}
    if "video" in part and isinstance(part["video"], list):
        record["frame_paths"] = list(part["video"])
    return record


def _with_input_paths(message: dict, episode: "Episode") -> dict:
    if not isinstance(message.get("content"), list):
        return message
    parts = []
    for p in message["content"]:
        index = p.get("image_index") if p.get("type") == "image" else None
        source = episode.images[index - 1].source if index and index <= episode.num_inputs else None
        path = getattr(source, "path", None)
        parts.append(dict(p, path=os.path.abspath(path)) if path and "path" not in p else p)
    return dict(message, content=parts)



def trajectory_from_episode(episode: "Episode", prompt: Sequence[dict], id: str, root: str,
                            image_dir: str | None = None, question: str | None = None,
                            choices: Sequence[str] | None = None, answer: Any = None, source: str | None = None,
                            trajectory_type: str | None = None, meta: dict | None = None,
                            masked_turns: Sequence[int] = (), reference_inputs: bool = False) -> Trajectory:
    """A finished (or stopped) episode as a schema-v1 Trajectory, writing its images as PNG under `image_dir`.

    `prompt` is what `episode.prompt_messages(...)` returned. `masked_turns` lists assistant turns (0-based, in
    order) to exclude from the SFT loss (`loss: false`), e.g. operations inserted on purpose as errors to
    recover from. The episode's statistics and configuration go to `meta["episode"]`, so a run's records say
    what produced them. `reference_inputs=True` stores input images that are files by their path (the original,
    full resolution) instead of writing the resized image the model saw as a new PNG.
    """
    image_dir = image_dir or os.path.join(root, "images")
    prompt = [_with_input_paths(m, episode) if reference_inputs else m for m in prompt]
    messages = messages_to_records(list(prompt) + list(episode.messages), image_dir, root, safe_stem(id))
    assistant = [m for m in messages if m["role"] == "assistant"]
    for k in masked_turns:
        if not 0 <= k < len(assistant):
            raise ValueError(f"masked_turns has {k}, but the episode has {len(assistant)} assistant turns")
        assistant[k]["loss"] = False
    media: list[dict] = []
    first_user = next((m for m in messages if m["role"] == "user"), {"content": []})
    for part, image in zip([p for p in first_user["content"] if p["type"] == "image"],
                           episode.images[: episode.num_inputs]):
        path = getattr(image.source, "path", None)
        media.append({"type": "image", "path": portable_path(path, root) if path else part["path"]})
    if episode.video is not None:
        media.append(_video_record({"video_source": episode.video}, image_dir, root, safe_stem(id)))
    info = {"stats": episode.stats.to_dict(), "budgets": asdict(episode.config.budgets),
            "limits": asdict(episode.config.limits)}
    return Trajectory(id=id, messages=messages, profile=episode.profile.name, media=media, question=question,
                      choices=list(choices) if choices else None, answer=answer, source=source,
                      trajectory_type=trajectory_type,
                      meta=dict(meta or {}, episode=info))


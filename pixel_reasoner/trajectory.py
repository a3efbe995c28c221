"""The trajectory data model: a versioned JSONL schema shared by synthesis (writes), SFT (trains), eval and the
viewer (read), with converters from the released PixelReasoner-SFT-Data and to HF / OpenAI chat messages.

One JSON object per line (schema_version 1):
    {"schema_version": 1, "id": "sa1b-000123-recrop_once", "profile": "released",
     "media": [{"type": "image", "path": "images/sa1b_123.jpg"}],          # or {"type": "video", "path"|"frame_paths"}
     "question": "...", "choices": ["..."], "answer": "B", "source": "sa1b", "kind": "recrop_once", "meta": {...},
     "messages": [
       {"role": "system", "content": "You are a helpful assistant."},
       {"role": "user", "content": [{"type": "image", "path": "images/sa1b_123.jpg"}, {"type": "text", "text": "..."}]},
       {"role": "assistant", "content": "... <tool_call>\\n{...}\\n</tool_call>", "loss": false},   # inserted error
       {"role": "user", "observation": true, "error": "`bbox_2d` ... is degenerate ...",
        "content": [{"type": "text", "text": "\\nExecution error:\\n...\\n"}]},
       {"role": "assistant", "content": "... <tool_call>\\n{...}\\n</tool_call>"},
       {"role": "user", "observation": true, "content": [{"type": "text", "text": "\\nHere is the cropped image ..."},
                                                         {"type": "image", "path": "crops/x_2.png",
                                                          "provenance": {"operation": "...", "kind": "crop", "parent": 1,
                                                                         "box": [x1, y1, x2, y2], "source": "...",
                                                                         "source_size": [W, H], "source_image": 1}}]},
       {"role": "assistant", "content": "... \\\\boxed{B}"}]}
Assistant content is the model's raw text, tool calls included, so what is trained is exactly what a model emits.
`loss: false` marks an assistant turn excluded from the SFT loss; `observation: true` marks tool outputs (always
excluded), `error` the message of a failed operation. `provenance.box` is the image's region in the pixels of its
source (`source_size`), and `source_image` the index of the input image it comes from (null when none, e.g. a frame
of a video shown as a video), so viewers and faithfulness checks need no image decoding. Input images carry a
provenance too (operation null).
Relative paths resolve against the JSONL file's directory unless an image root is given.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

from PIL import Image

from pixel_reasoner.errors import DataError
from pixel_reasoner.media import VideoSource, save_image
from pixel_reasoner.parsing import TOOL_CALL_OPEN

if TYPE_CHECKING:
    from pixel_reasoner.episode import Episode

SCHEMA_VERSION = 1
ROLES = ("system", "user", "assistant", "tool")
PART_TYPES = ("text", "image", "video")


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
    kind: str | None = None
    meta: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return {"schema_version": self.schema_version, "id": self.id, "profile": self.profile, "media": self.media,
                "question": self.question, "choices": self.choices, "answer": self.answer, "source": self.source,
                "kind": self.kind, "meta": self.meta, "messages": self.messages}

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
        known = {"schema_version", "id", "profile", "media", "question", "choices", "answer", "source", "kind",
                 "meta", "messages"}
        extra = {k: v for k, v in d.items() if k not in known}
        meta = dict(d.get("meta") or {}, **extra)
        return cls(id=str(d["id"]), messages=d["messages"], profile=d.get("profile") or "released",
                   media=d.get("media") or [], question=d.get("question"), choices=d.get("choices"),
                   answer=d.get("answer"), source=d.get("source"), kind=d.get("kind"), meta=meta)

    def assistant_turns(self) -> list[dict]:
        return [m for m in self.messages if m["role"] == "assistant"]

    def image_paths(self) -> list[str]:
        """Every image path in message order (one per image placeholder), videos excluded."""
        return [p["path"] for m in self.messages if isinstance(m.get("content"), list)
                for p in m["content"] if p.get("type") == "image"]

    def validate(self, root: str | None = None, where: str = "trajectory") -> list[str]:
        """Problems with this record (empty when valid); `root` enables file-existence checks."""
        problems = []
        if not self.messages:
            return [f"{where}: `messages` is empty"]
        for i, m in enumerate(self.messages):
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
        if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in self.messages):
            problems.append(f"{where}: no assistant turn to learn from")
        return problems


def resolve_path(path: str, root: str | None) -> str:
    return path if os.path.isabs(path) or root is None else os.path.join(root, path)


def read_trajectories(path: str, strict: bool = True) -> Iterator[tuple[int, Trajectory]]:
    """(row index, trajectory) for each non-empty line (rows count from 0, as lines of the file minus one).

    A malformed row raises DataError naming the file, row and field; with `strict=False` it is skipped with a
    warning that says the same, so a long run's partial output can still be inspected.
    """
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                try:
                    d = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path} row {i} (line {i + 1}): not valid JSON ({e.msg} at column {e.colno})"
                                    + ("; the file may have been cut off mid-write" if not line.endswith("\n")
                                       else "")) from None
                trajectory = Trajectory.from_dict(d, where=f"{path} row {i}")
            except DataError as e:
                if strict:
                    raise
                warnings.warn(f"skipping {e}", stacklevel=2)
                continue
            yield i, trajectory


def write_trajectories(path: str, trajectories: Iterable[Trajectory], append: bool = False) -> int:
    n = 0
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        for t in trajectories:
            f.write(json.dumps(t.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def portable_path(path: str, root: str) -> str:
    """How a file is referenced from a JSONL in `root`: relative when inside `root` (the directory can move),
    absolute otherwise (a relative path climbing out of `root` would break when it moves)."""
    full, base = os.path.abspath(path), os.path.abspath(root)
    return os.path.relpath(full, base) if os.path.commonpath([full, base]) == base else full


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


def safe_stem(text: str) -> str:
    """A file-name-safe version of a trajectory id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "trajectory"


def trajectory_from_episode(episode: "Episode", prompt: Sequence[dict], id: str, root: str,
                            image_dir: str | None = None, question: str | None = None,
                            choices: Sequence[str] | None = None, answer: Any = None, source: str | None = None,
                            kind: str | None = None, meta: dict | None = None,
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
                      choices=list(choices) if choices else None, answer=answer, source=source, kind=kind,
                      meta=dict(meta or {}, episode=info))


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
    kind = "text_only" if len(assistant_idx) == 1 else {2: "single_pass", 3: "self_correction",
                                                         4: "recrop_twice"}.get(len(assistant_idx), "multi_turn")
    meta = {k: v for k, v in record.items() if k != "message_list"}
    if ignored:
        meta["ignored_media_keys"] = sorted(ignored)
    qid = record.get("qid") or record.get("id") or f"released-{index}"
    return Trajectory(id=str(qid), messages=out, profile=profile, media=media, answer=record.get("answer"),
                      source="released_sft", kind=kind, meta=meta)


RELEASED_ERROR_PREFIX = "Execution error:"
RELEASED_PART_KEYS = ("type", "text", "image", "video")  # keys of a released content part that are read


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

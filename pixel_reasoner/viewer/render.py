"""The page, written by the Jinja2 templates in `templates/` from analysed trajectories.

Python prepares what the templates cannot: thumbnails (data URIs), the assistant text cut into prose and tool calls,
image captions and the summary; the templates hold the markup, and Jinja2 escapes every value.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Iterator, Sequence

import jinja2

from pixel_reasoner.errors import DataError, PixelReasonerError
from pixel_reasoner.parsing import strip_end_tokens
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.viewer.analyse import Analysis, ViewImage
from pixel_reasoner.viewer.config import ViewerConfig
from pixel_reasoner.viewer.thumbnails import Thumbnails, video_frames

# A produced image, its outline and its boxes share a colour: PALETTE[(number - 1) % len(PALETTE)].
PALETTE = ("#f04438", "#2e90fa", "#12b76a", "#f79009", "#9e77ed", "#ee46bc", "#06aed4", "#84cc16", "#6172f3",
           "#fb6514")
FILTERS = (("all", "All"), ("ops", "Used operations"), ("error", "Failed operations"), ("masked", "Masked turns"),
           ("wrong", "Wrong answers"))

_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_CALL_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.S)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def _answer_text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return " | ".join(str(v) for v in value)
    return str(value)


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("pixel_reasoner.viewer", "templates"), autoescape=True,
                          trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
_ENV.filters.update(colour=lambda number: PALETTE[(number - 1) % len(PALETTE)], letter=lambda i: chr(65 + i),
                    answer_text=_answer_text)


def render_page(analyses: Sequence[Analysis], config: ViewerConfig = ViewerConfig(), notes: Sequence[str] = (),
                sources: Sequence[str] = (), total: int | None = None) -> str:
    """The whole page; `total` is how many trajectories there were before `config.limit` (the summary says)."""
    thumbnails = Thumbnails(config.thumb_size, config.jpeg_quality)
    views = [{"a": a, "t": a.item.trajectory, "anchor": f"t-{i}", "turns": _turns(a, thumbnails, config)}
             for i, a in enumerate(analyses)]
    return _ENV.get_template("page.html.jinja").render(
        title=config.title, sources=sources, notes=notes, summary=_summary(analyses, total or len(analyses)),
        filters=FILTERS, trajectories=views)


def _summary(analyses: Sequence[Analysis], total: int) -> list[tuple[str, str]]:
    n = len(analyses)
    scored = [a.score for a in analyses if a.score is not None]
    stats = [(f"{n}" + (f" / {total}" if total > n else ""), "trajectories"),
             (f"{sum(1 for a in analyses if a.stats.operations)}", "used visual operations"),
             (f"{sum(1 for a in analyses if a.stats.errors)}", "had a failed operation"),
             (f"{sum(a.stats.masked for a in analyses)}", "masked turns (loss: false)")]
    if scored:
        stats.append((f"{sum(scored) / len(scored):.1%}", f"mean score ({len(scored)} scored)"))
    return stats


def _turns(a: Analysis, thumbnails: Thumbnails, config: ViewerConfig) -> list[dict]:
    """Each message as the template shows it; images are taken in order, as `analyse` numbered them."""
    messages = a.item.trajectory.messages
    images = iter(a.images)
    turns: list[dict] = []
    number = 0
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            turns.append({"kind": "malformed", "index": i})
            continue
        role, content = m.get("role"), m.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        if role == "system":
            turns.append({"kind": "system", "text": _text_of(parts), **_tools(a.item.trajectory.profile)})
        elif role == "assistant":
            number += 1
            following = messages[i + 1] if i + 1 < len(messages) else None
            failed = isinstance(following, dict) and a.is_observation(i + 1, following) and bool(following.get("error"))
            turns.append({"kind": "assistant", "number": number, "masked": m.get("loss") is False,
                          "call_failed": failed, "segments": _assistant_segments(_text_of(parts))})
        elif a.is_observation(i, m):
            turns.append({"kind": "observation", "error": bool(m.get("error")),
                          "label": "Tool response" if role == "tool" else "Observation",
                          "body": _body(parts, images, a.item.root, thumbnails, config)})
        else:
            turns.append({"kind": "user", "role": (role or "user").title(),
                          "body": _body(parts, images, a.item.root, thumbnails, config)})
    return turns


def _tools(profile: str) -> dict:
    """The tools the profile shows the model (the chat template renders them into the system prompt)."""
    try:
        schemas = get_profile(profile).tool_schemas()
    except PixelReasonerError:
        schemas = []
    return {"tool_names": ", ".join(s["function"]["name"] for s in schemas) or "profile not registered here",
            "tools": [json.dumps(s, indent=1, ensure_ascii=False) for s in schemas]}


def _assistant_segments(text: str) -> list[dict]:
    """Prose (with `\\boxed{}` answers marked) and tool calls, in order."""
    text = strip_end_tokens(text)
    segments: list[dict] = []
    pos = 0
    for m in _CALL_BLOCK.finditer(text):
        segments += _prose(text[pos:m.start()])
        segments.append(_call(m.group(1)))
        pos = m.end()
    return segments + _prose(text[pos:])


def _prose(text: str) -> list[dict]:
    text = text.strip("\n")
    if not text:
        return []
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for m in _BOXED.finditer(text):
        pieces += [(text[pos:m.start()], False), (f"\\boxed{{{m.group(1)}}}", True)]
        pos = m.end()
    return [{"kind": "prose", "pieces": pieces + [(text[pos:], False)]}]


def _call(raw: str) -> dict:
    """A tool call as written, leniently: the page shows what the model asked for, not the parser's verdict."""
    body = raw.strip()
    try:
        obj = json.loads(_FENCE.sub("", body))
        name, arguments = obj["name"], obj.get("arguments", {})
    except (ValueError, TypeError, KeyError, RecursionError):
        return {"kind": "unparsable", "body": body}
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return {"kind": "call", "name": name, "arguments": text}


def _body(parts: list, images: Iterator[ViewImage], root: str, thumbnails: Thumbnails, config: ViewerConfig) -> dict:
    """A user or observation message: its texts, then its images and videos."""
    texts, figures = [], []
    for part in parts:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "image":
            figures.append(_figure(next(images), thumbnails))
        elif part.get("type") == "video":
            figures.append(_video(part, root, thumbnails, config.frame_thumb_size))
        elif (part.get("text") or "").strip():
            texts.append(part["text"].strip("\n"))
    return {"texts": texts, "figures": figures}


def _figure(im: ViewImage, thumbnails: Thumbnails) -> dict:
    """An image as its thumbnail and caption, or why it is not shown (a missing file, an unreadable one)."""
    figure = {"video": False, "image": im, "missing_path": None, "error": None, "uri": None, "caption": ""}
    if im.path is None or not os.path.exists(im.path):
        return {**figure, "missing_path": im.part.get("path") or "(no path)"}
    try:
        uri, (w, h) = thumbnails.file(im.path)
    except DataError as e:
        return {**figure, "error": str(e)}
    return {**figure, "uri": uri, "caption": _caption(im, w, h)}


def _caption(im: ViewImage, w: int, h: int) -> str:
    """What the image is, after its number: an input's size, or the operation and the source region it shows."""
    prov = im.provenance or {}
    if im.is_input:
        size = prov.get("source_size")
        return f"input source {size[0]}×{size[1]}, shown {w}×{h}" if size and list(size) != [w, h] else f"input {w}×{h}"
    bits = []
    op, parent = prov.get("operation"), prov.get("parent")
    if op:
        bits.append(op + (f" of #{parent}" if parent else ""))
    box, size = prov.get("box"), prov.get("source_size")
    if box and size and list(box) == [0, 0, *size] and not parent:
        bits.append(f"· {os.path.basename(str(prov.get('source', '')))}")
    elif box and op:
        bits.append(f"· region [{', '.join(str(v) for v in box)}] ({box[2] - box[0]}×{box[3] - box[1]} source px)")
    if im.replayed:
        bits.append("(replayed)")
    bits.append(f"· shown {w}×{h}")
    return " ".join(bits)


def _video(part: dict, root: str, thumbnails: Thumbnails, size: int) -> dict:
    """A video part as a filmstrip of its frames, or why it is not shown."""
    try:
        frames = video_frames(part, root)
    except (PixelReasonerError, OSError) as e:
        return {"video": True, "error": str(e), "frames": []}
    return {"video": True, "error": None, "frames": [
        thumbnails.file(f, size)[0] if isinstance(f, str) else thumbnails.encode(f, size) for f in frames]}


def _text_of(parts: list) -> str:
    return "".join(p.get("text") or "" for p in parts if isinstance(p, dict) and p.get("type", "text") == "text")

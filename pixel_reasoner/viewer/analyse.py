"""What the page says about one trajectory, computed before any HTML is written.

Its images in order (inputs, then what each operation produced), each produced image's region as a box on the
original (in source pixels, from the image's `provenance`) and, for a crop of a crop, on its parent too; turn,
operation, error and masked-turn counts; the final answer and its score.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from pixel_reasoner.media import ImageFile
from pixel_reasoner.parsing import extract_answer, parse_turn
from pixel_reasoner.scoring import score
from pixel_reasoner.trajectory import Trajectory, resolve_path
from pixel_reasoner.viewer.load import Loaded
from pixel_reasoner.viewer.replay import replay_provenance

SCORE_KEYS = ("score", "reward", "correct", "accuracy")  # a recorded score in `meta`, in this order of preference


@dataclass(frozen=True)
class Box:
    """A produced image's region drawn on another image, in percent of that image's width and height."""

    left: float
    top: float
    width: float
    height: float
    number: int  # the produced image it marks
    indirect: bool  # drawn on the original for a crop of a crop (the page dashes it)


@dataclass
class ViewImage:
    number: int  # 1-based, as the model addresses it with `target_image`
    part: dict
    path: str | None
    is_input: bool
    provenance: dict | None
    replayed: bool = False
    has_region: bool = False  # a produced image whose region is known: it and its boxes share a colour
    boxes: list[Box] = field(default_factory=list)  # regions of other images drawn on this one


@dataclass(frozen=True)
class Stats:
    turns: int
    operations: int
    errors: int
    masked: int
    termination: str | None


@dataclass
class Analysis:
    item: Loaded
    first_user: int | None  # index of the first user message: later user messages are observations
    images: list[ViewImage]
    replayed: bool  # some boxes come from replaying the tool calls
    stats: Stats
    predicted: str | None
    score: float | None
    score_how: str  # the `meta` key the score came from, or "auto-scored"

    def is_observation(self, index: int, message: dict) -> bool:
        return is_observation(index, message, self.first_user)

    @property
    def flags(self) -> list[str]:
        """What the page's filters select this trajectory by."""
        flags = []
        if self.stats.errors:
            flags.append("error")
        if self.stats.masked:
            flags.append("masked")
        if self.score is not None and self.score < 1:
            flags.append("wrong")
        if self.stats.operations:
            flags.append("ops")
        return flags


def analyse(item: Loaded, replay: bool = True) -> Analysis:
    """Everything the page shows about `item` but its pixels; `replay` recovers missing boxes by replaying."""
    trajectory = item.trajectory
    first_user = next((i for i, m in enumerate(trajectory.messages)
                       if isinstance(m, dict) and m.get("role") == "user"), None)
    images = _images(item, first_user)
    replayed = False
    if replay and any(not im.is_input and im.provenance is None for im in images):
        replayed = _apply_replay(item, images)
    _place_boxes(images)
    predicted = _predicted(trajectory.messages)
    value, how = _score(trajectory, predicted)
    return Analysis(item, first_user, images, replayed, _stats(trajectory, first_user), predicted, value, how)


def is_observation(index: int, message: dict, first_user: int | None) -> bool:
    """A message that answers a tool call: marked so, a `tool` message, or a user message after the first."""
    return bool(message.get("observation")) or message.get("role") == "tool" or (
        message.get("role") == "user" and first_user is not None and index > first_user)


def _images(item: Loaded, first_user: int | None) -> list[ViewImage]:
    images: list[ViewImage] = []
    for i, m in enumerate(item.trajectory.messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), list):
            continue
        for part in m["content"]:
            if isinstance(part, dict) and part.get("type") == "image":
                path = resolve_path(part["path"], item.root) if part.get("path") else None
                images.append(ViewImage(len(images) + 1, part, path, is_input=not is_observation(i, m, first_user),
                                        provenance=part.get("provenance")))
    return images


def _apply_replay(item: Loaded, images: list[ViewImage]) -> bool:
    """Fill missing provenance from a replay that produces as many images as the trajectory shows."""
    produced = replay_provenance(item.trajectory, item.root)
    targets = [im for im in images if not im.is_input]
    if produced is None or len(produced) != len(targets):
        return False
    for im, provenance in zip(targets, produced):
        if im.provenance is None:
            im.provenance, im.replayed = provenance, True
    for im in images:
        if im.is_input and im.provenance is None:
            im.provenance = {"source_size": list(ImageFile(im.path).full_size()) if im.path else None}
    return True


def _place_boxes(images: list[ViewImage]) -> None:
    """Each produced image's region as a box on its original and (for a crop of a crop) on its parent."""
    by_number = {im.number: im for im in images}
    inputs = [im for im in images if im.is_input]
    for im in images:
        prov = im.provenance
        if im.is_input or not prov or not prov.get("box") or not prov.get("operation"):
            continue
        im.has_region = True
        origin = by_number.get(prov.get("source_image")) if prov.get("source_image") else None
        if origin is None:  # older records: match the source description
            origin = next((o for o in inputs if o.provenance and o.provenance.get("source") == prov.get("source")),
                          None)
        size = prov.get("source_size")
        if not size and origin is not None:
            size = (origin.provenance or {}).get("source_size")
        parent = by_number.get(prov.get("parent")) if prov.get("parent") else None
        direct = parent is None or parent is origin
        if origin is not None and size:
            origin.boxes.append(_percent_box(prov["box"], (0, 0, size[0], size[1]), im.number, indirect=not direct))
        parent_prov = parent.provenance if parent is not None else None
        if not direct and parent_prov and parent_prov.get("box") and parent_prov.get("source") == prov.get("source"):
            parent.boxes.append(_percent_box(prov["box"], parent_prov["box"], im.number, indirect=False))


def _percent_box(box: Sequence[float], frame: Sequence[float], number: int, indirect: bool) -> Box:
    """`box` (source pixels) relative to `frame`, the source-pixel region the image it is drawn on shows."""
    fx1, fy1, fx2, fy2 = frame
    fw, fh = max(fx2 - fx1, 1e-9), max(fy2 - fy1, 1e-9)
    x1, y1, x2, y2 = box
    return Box(left=(x1 - fx1) / fw * 100, top=(y1 - fy1) / fh * 100, width=(x2 - x1) / fw * 100,
               height=(y2 - y1) / fh * 100, number=number, indirect=indirect)


def _stats(trajectory: Trajectory, first_user: int | None) -> Stats:
    """Counts recorded by the episode when the trajectory has them, otherwise counted from the messages."""
    recorded = ((trajectory.meta or {}).get("episode") or {}).get("stats") or {}
    assistant = [m for m in trajectory.messages if isinstance(m, dict) and m.get("role") == "assistant"]
    calls = sum(1 for m in assistant if isinstance(m.get("content"), str) and parse_turn(m["content"]).is_tool_call)
    errors = sum(1 for i, m in enumerate(trajectory.messages)
                 if isinstance(m, dict) and is_observation(i, m, first_user) and m.get("error"))
    return Stats(turns=len(assistant), operations=recorded.get("num_operations", calls),
                 errors=recorded.get("num_operation_errors", errors),
                 masked=sum(1 for m in assistant if m.get("loss") is False), termination=recorded.get("termination"))


def _predicted(messages: list) -> str | None:
    assistant = [m for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
    if not assistant or not isinstance(assistant[-1].get("content"), str):
        return None
    return extract_answer(assistant[-1]["content"])


def _score(trajectory: Trajectory, predicted: str | None) -> tuple[float | None, str]:
    """A score recorded in `meta`, else the prediction scored against the answer; (None, "") without an answer."""
    meta = trajectory.meta or {}
    for key in SCORE_KEYS:
        if isinstance(meta.get(key), (int, float)):
            return float(meta[key]), key
    if trajectory.answer is None:
        return None, ""
    try:
        return score(predicted, trajectory.answer, "auto", trajectory.choices), "auto-scored"
    except (ValueError, TypeError):
        return None, ""

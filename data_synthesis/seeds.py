"""Seed loaders: SA1B, web-page screenshots with QA and answer boxes (the paper's "FineWeb"), STAR-QA videos, and
a generic JSONL format. Each yields `SeedItem`s; a malformed record becomes a `SeedReject` naming its file and
line and the reason (it is logged, written to the rejects file and skipped; the run goes on).

Layouts (details and examples in docs/synthesis.md):
- sa1b: a directory of SA-1B pairs `sa_<id>.jpg` + `sa_<id>.json` (`{"image": {"image_id", "file_name",
  "width", "height"}, "annotations": [{"bbox": [x, y, w, h], ...}]}`). No QA: stage 1 writes it.
- web: JSONL, one QA per line: `{"id"?, "image", "question", "answer", "bbox"}` (the answer region).
- star: the STAR-QA annotation JSON (a list of `{"question_id", "video_id", "question", "choices", "answer",
  "start", "end"}`; choices as strings or `{"choice": ...}`), videos at `<media_root>/<video_id><video_ext>`.
- jsonl: `{"id"?, "image" | "video" | "frames", "question", "choices"?, "answer", "ref_box"? | "ref_frames"? |
  "ref_window"? ([start_s, end_s]), "wrong_boxes"?, "scoring"?, "route"?}`. `wrong_boxes` (image seeds): regions
  that do not show the answer, from which the re-crop types draw their wrong crops instead of random boxes (so
  that a wrong crop looks like a plausible one, e.g. another object of the same size, and the recovery turn must
  be read from the crop's pixels, not from the box's shape). A frame-list video seed may give `ref_box` as well
  (source pixels of a frame): the trajectory then selects the reference frames and crops the first of them. `route`
  fixes the item's route: `text_only` (a question answerable without a visual operation) or `pixel` (a
  trajectory type drawn from Table 2); without it the route is drawn (`text_only.share`).
"""
from __future__ import annotations

import glob
import json
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator

from PIL import Image

from data_synthesis.config import SourceConfig
from data_synthesis.geometry import intersects
from pixel_reasoner.errors import DataError
from pixel_reasoner.jsonl import jsonl_lines
from pixel_reasoner.scoring import SCORERS, choice_letter, parse_count

logger = logging.getLogger(__name__)
ROUTES = ("text_only", "pixel")


@dataclass
class SeedItem:
    """One query to synthesise a trajectory for. Boxes are in source pixels; frames are 1-based indices into the
    video's uniformly sampled frames."""

    id: str
    source: str
    template: str  # expert prompt: sa1b | web | star
    location: str  # file (and line) it came from, for messages
    image: str | None = None
    video: str | None = None
    frame_paths: list[str] | None = None
    question: str | None = None  # None until stage 1 writes it (SA1B)
    choices: list[str] | None = None
    answer: Any = None
    scoring: str = "auto"
    ref_box: tuple[int, int, int, int] | None = None
    ref_frames: list[int] | None = None
    ref_window: tuple[float, float] | None = None  # seconds; resolved to ref_frames when the video is read
    wrong_boxes: list[tuple[int, int, int, int]] | None = None  # image seeds: where the wrong crops may go
    route: str | None = None  # "text_only" | "pixel"; None: drawn with `text_only.share`
    meta: dict = field(default_factory=dict)

    @property
    def is_video(self) -> bool:
        return self.video is not None or self.frame_paths is not None

    @property
    def needs_question(self) -> bool:
        return self.question is None


@dataclass
class SeedReject:
    source: str
    location: str
    detail: str
    record: str = ""  # the raw record, shortened
    reason: str = "malformed_seed"  # short code counted in the report

    @property
    def key(self) -> str:
        return f"seed:{self.location}"


class BadSeed(ValueError):
    """A seed record is unusable; the message says which field and why, `reason` is the code the report counts."""

    def __init__(self, message: str, reason: str = "malformed_seed"):
        super().__init__(message)
        self.reason = reason


def load_source(config: SourceConfig) -> Iterator[SeedItem | SeedReject]:
    loaders = {"sa1b": _load_sa1b, "web": _load_web, "star": _load_star, "jsonl": _load_jsonl}
    if not os.path.exists(config.path):
        raise DataError(f"source {config.name!r}: path not found: {config.path}")
    count = 0
    for entry in loaders[config.format](config):
        if isinstance(entry, SeedItem):
            if config.limit is not None and count >= config.limit:
                return
            count += 1
        else:
            logger.warning("skipping seed %s: %s", entry.location, entry.detail)
        yield entry


def _media_root(config: SourceConfig) -> str:
    if config.media_root:
        return config.media_root
    return config.path if os.path.isdir(config.path) else os.path.dirname(os.path.abspath(config.path))


def _resolve(path: Any, root: str, what: str) -> str:
    if not isinstance(path, str) or not path:
        raise BadSeed(f"`{what}` must be a file path, got {path!r}")
    full = path if os.path.isabs(path) else os.path.join(root, path)
    if not os.path.exists(full):
        raise BadSeed(f"`{what}` file not found: {full}")
    return full


def _jsonl_records(config: SourceConfig) -> Iterator[tuple[str, dict | None, str, str | None]]:
    """(location, record or None, raw line, why it is not a record) for each non-empty line."""
    for line in jsonl_lines(config.path):
        yield f"{config.path}:{line.number}", line.value, line.text, line.error


def _shorten(raw: str, limit: int = 500) -> str:
    raw = raw.strip()
    return raw if len(raw) <= limit else raw[:limit] + "..."


def _text(record: dict, key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadSeed(f"`{key}` must be a non-empty string, got {value!r}")
    return value.strip()


def _choices(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) < 2:
        raise BadSeed(f"`choices` must be a list of at least 2 options, got {value!r}")
    out = []
    for c in value:
        text = c.get("choice") if isinstance(c, dict) else c
        if not isinstance(text, str) or not text.strip():
            raise BadSeed(f"`choices` has an empty or non-text option: {c!r}")
        out.append(text.strip())
    return out


def _answer(value: Any, choices: list[str] | None) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadSeed("`answer` is missing")
    if choices:
        letter = choice_letter(str(value), choices)
        if letter is None:
            raise BadSeed(f"`answer` {value!r} is neither an option letter nor one of the choices {choices}")
        return letter
    if isinstance(value, list):
        if not value or not all(isinstance(v, (str, int)) for v in value):
            raise BadSeed(f"`answer` list must hold strings, got {value!r}")
        return [str(v) for v in value]
    if not isinstance(value, (str, int, float)):
        raise BadSeed(f"`answer` must be text or a list of accepted texts, got {value!r}")
    return str(value)


def _image_box(value: Any, image_path: str, config: SourceConfig, what: str) -> tuple[int, int, int, int]:
    """A box from a seed (in the source's bbox_format/units) as integer source pixels, checked against the image."""
    if not isinstance(value, (list, tuple)) or len(value) != 4 or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise BadSeed(f"`{what}` must be 4 numbers, got {value!r}")
    with Image.open(image_path) as im:
        width, height = im.size
    a, b, c, d = (float(v) for v in value)
    x1, y1, x2, y2 = (a, b, a + c, b + d) if config.bbox_format == "xywh" else (a, b, c, d)
    if config.bbox_units == "normalized":
        if max(x1, y1, x2, y2) > 1.0 + 1e-6:
            raise BadSeed(f"`{what}` {list(value)} is not normalized (values must be within [0, 1]); set "
                          "bbox_units: pixels for this source")
        x1, x2, y1, y2 = x1 * width, x2 * width, y1 * height, y2 * height
    if x2 <= x1 or y2 <= y1:
        raise BadSeed(f"`{what}` {list(value)} has no area ({config.bbox_format} format expected)")
    if x1 < -1 or y1 < -1 or x2 > width + 1 or y2 > height + 1:
        raise BadSeed(f"`{what}` {list(value)} lies outside the image ({width}x{height} pixels)")
    return (max(0, math.floor(x1)), max(0, math.floor(y1)), min(width, math.ceil(x2)), min(height, math.ceil(y2)))


def _wrong_boxes(value: Any, image_path: str, ref_box: tuple[int, int, int, int],
                 config: SourceConfig) -> list[tuple[int, int, int, int]]:
    """`wrong_boxes`: a non-empty list of boxes (the source's format), none of which overlaps `ref_box`."""
    if not isinstance(value, list) or not value:
        raise BadSeed(f"`wrong_boxes` must be a non-empty list of boxes, got {value!r}")
    boxes = [_image_box(box, image_path, config, f"wrong_boxes[{k}]") for k, box in enumerate(value)]
    for k, box in enumerate(boxes):
        if intersects(box, ref_box):
            raise BadSeed(f"`wrong_boxes[{k}]` {list(box)} overlaps `ref_box` {list(ref_box)}: a wrong crop must "
                          "not show the answer; drop it or move it off the reference")
    return boxes


def _load_sa1b(config: SourceConfig) -> Iterator[SeedItem | SeedReject]:
    root = _media_root(config)
    for path in sorted(glob.glob(os.path.join(config.path, "*.json"))):
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
            info = record.get("image") if isinstance(record, dict) else None
            if not isinstance(info, dict):
                raise BadSeed("missing the `image` object ({\"image_id\", \"file_name\", ...})")
            image = _resolve(info.get("file_name"), root, "image.file_name")
            annotations = record.get("annotations")
            if not isinstance(annotations, list):
                raise BadSeed("`annotations` must be a list of segments")
            boxes = [a.get("bbox") for a in annotations if isinstance(a, dict)]
            valid = [b for b in boxes if isinstance(b, list) and len(b) == 4]
            if len(valid) != len(annotations):
                raise BadSeed(f"{len(annotations) - len(valid)} annotation(s) lack a 4-number `bbox`")
            if len(valid) < config.min_segments:
                raise BadSeed(f"only {len(valid)} annotated segments (min_segments={config.min_segments}): "
                              "not information-rich", reason="too_few_segments")
        except json.JSONDecodeError as e:
            yield SeedReject(config.name, path, f"not valid JSON ({e.msg} at line {e.lineno})")
            continue
        except BadSeed as e:
            yield SeedReject(config.name, path, str(e), reason=e.reason)
            continue
        except OSError as e:
            yield SeedReject(config.name, path, str(e))
            continue
        image_id = info.get("image_id", os.path.splitext(os.path.basename(path))[0])
        yield SeedItem(id=f"{config.name}-{image_id}", source=config.name, template=config.template or "sa1b",
                       location=path, image=image, scoring="multiple_choice",
                       meta={"num_segments": len(valid), "width": info.get("width"), "height": info.get("height")})


def _load_web(config: SourceConfig) -> Iterator[SeedItem | SeedReject]:
    root = _media_root(config)
    for number, (location, record, raw, error) in enumerate(_jsonl_records(config), 1):
        if error is None:
            try:
                assert record is not None
                image = _resolve(record.get("image"), root, "image")
                choices = _choices(record.get("choices"))
                item = SeedItem(id=f"{config.name}-{record.get('id', number)}", source=config.name,
                                template=config.template or "web", location=location, image=image,
                                question=_text(record, "question"), choices=choices,
                                answer=_answer(record.get("answer"), choices),
                                scoring=_scoring(config, choices, "anls"),
                                ref_box=_image_box(record.get("bbox"), image, config, "bbox"))
                yield item
                continue
            except (BadSeed, OSError) as e:
                error = str(e)
        yield SeedReject(config.name, location, error, _shorten(raw))


def _load_star(config: SourceConfig) -> Iterator[SeedItem | SeedReject]:
    root = _media_root(config)
    try:
        with open(config.path, encoding="utf-8") as f:
            records = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{config.path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(records, list):
        raise DataError(f"{config.path}: expected a JSON list of STAR-QA records")
    for number, record in enumerate(records, 1):
        location = f"{config.path}[{number - 1}]"
        try:
            if not isinstance(record, dict):
                raise BadSeed(f"expected an object, got {type(record).__name__}")
            video_id = record.get("video_id")
            if not isinstance(video_id, str) or not video_id:
                raise BadSeed(f"`video_id` must be a string, got {video_id!r}")
            video = _resolve(video_id + config.video_ext, root, "video_id")
            start, end = record.get("start"), record.get("end")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, end)) \
                    or not 0 <= start < end:
                raise BadSeed(f"`start`/`end` must be seconds with 0 <= start < end, got {start!r}, {end!r}")
            choices = _choices(record.get("choices"))
            if not choices:
                raise BadSeed("`choices` is missing")
            yield SeedItem(id=f"{config.name}-{record.get('question_id', number)}", source=config.name,
                           template=config.template or "star", location=location, video=video,
                           question=_text(record, "question"), choices=choices,
                           answer=_answer(record.get("answer"), choices), scoring=_scoring(config, choices, ""),
                           ref_window=(float(start), float(end)), meta={"video_id": video_id})
        except BadSeed as e:
            yield SeedReject(config.name, location, str(e), _shorten(json.dumps(record, default=str)), e.reason)


def _load_jsonl(config: SourceConfig) -> Iterator[SeedItem | SeedReject]:
    root = _media_root(config)
    known = {"id", "image", "video", "frames", "question", "choices", "answer", "ref_box", "ref_frames",
             "ref_window", "wrong_boxes", "scoring", "answer_kind", "route"}
    for number, (location, record, raw, error) in enumerate(_jsonl_records(config), 1):
        if error is None:
            try:
                assert record is not None
                yield _jsonl_item(record, config, root, location, number, known)
                continue
            except (BadSeed, OSError) as e:
                error = str(e)
        yield SeedReject(config.name, location, error, _shorten(raw))


def _jsonl_item(record: dict, config: SourceConfig, root: str, location: str, number: int,
                known: set[str]) -> SeedItem:
    media = [k for k in ("image", "video", "frames") if record.get(k) is not None]
    if len(media) != 1:
        raise BadSeed(f"give exactly one of `image`, `video`, `frames`; got {media or 'none'}")
    choices = _choices(record.get("choices"))
    if "answer_kind" in record:
        warnings.warn("the seed field `answer_kind` is deprecated, use `scoring` (the old name is removed in the "
                      "next release)", FutureWarning, stacklevel=2)
    kind = record.get("scoring") or record.get("answer_kind") or _scoring(config, choices, "exact_match")
    if kind not in SCORERS:
        raise BadSeed(f"`scoring` {kind!r} is not one of {SCORERS}")
    if kind == "count" and parse_count(str(record.get("answer"))) is None:
        raise BadSeed(f"`answer` {record.get('answer')!r} is not a count (scoring count)")
    route = record.get("route")
    if route is not None and route not in ROUTES:
        raise BadSeed(f"`route` {route!r}; choose one of {ROUTES} (or leave it out to draw the route)")
    item = SeedItem(id=f"{config.name}-{record.get('id', number)}", source=config.name, template="",
                    location=location, question=_text(record, "question"), choices=choices,
                    answer=_answer(record.get("answer"), choices), scoring=kind, route=route,
                    meta={k: v for k, v in record.items() if k not in known})
    if media == ["image"]:
        item.image = _resolve(record["image"], root, "image")
        if record.get("ref_box") is None:
            raise BadSeed("an image seed needs `ref_box` (the region that answers the question)")
        item.ref_box = _image_box(record["ref_box"], item.image, config, "ref_box")
        if record.get("wrong_boxes") is not None:
            item.wrong_boxes = _wrong_boxes(record["wrong_boxes"], item.image, item.ref_box, config)
        item.template = config.template or "sa1b"
        return item
    if media == ["video"]:
        item.video = _resolve(record["video"], root, "video")
    else:
        frames = record["frames"]
        if not isinstance(frames, list) or len(frames) < 2:
            raise BadSeed(f"`frames` must be a list of at least 2 frame images, got {frames!r}")
        item.frame_paths = [_resolve(p, root, "frames") for p in frames]
        if record.get("ref_box") is not None:
            item.ref_box = _image_box(record["ref_box"], item.frame_paths[0], config, "ref_box")
    item.template = config.template or "star"
    window, frames_ref = record.get("ref_window"), record.get("ref_frames")
    if (window is None) == (frames_ref is None):
        raise BadSeed("a video seed needs exactly one of `ref_frames` (1-based sampled frames) or `ref_window` "
                      "([start_s, end_s])")
    if frames_ref is not None:
        if not isinstance(frames_ref, list) or not frames_ref or \
                not all(isinstance(f, int) and not isinstance(f, bool) and f >= 1 for f in frames_ref):
            raise BadSeed(f"`ref_frames` must be a non-empty list of 1-based frame indices, got {frames_ref!r}")
        item.ref_frames = sorted(set(frames_ref))
    else:
        if not isinstance(window, list) or len(window) != 2 or \
                not all(isinstance(v, (int, float)) for v in window) or not 0 <= window[0] < window[1]:
            raise BadSeed(f"`ref_window` must be [start_s, end_s] with 0 <= start < end, got {window!r}")
        if item.frame_paths is not None:
            raise BadSeed("`ref_window` needs a `video` file (frame times); give `ref_frames` with `frames`")
        item.ref_window = (float(window[0]), float(window[1]))
    return item


def _scoring(config: SourceConfig, choices: list[str] | None, free_text_kind: str) -> str:
    if config.scoring != "auto":
        return config.scoring
    return "multiple_choice" if choices else (free_text_kind or "exact_match")

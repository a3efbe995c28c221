"""One training sample as the collator needs it, and the checks it must pass before training starts.

A `SampleSpec` is plain JSON (it travels through the trainer's Arrow dataset as one string, so none of Arrow's
type unification touches it): HF chat messages whose media parts hold absolute paths and the image's *kind*
(which pixel budget applies), plus the tool schemas to render into the system prompt.

Image kinds: images of the prompt are `original`; images of observation turns (user turns flagged
`observation`, or `tool` turns) take the kind their provenance records (`crop`, `frame`), else `crop`; every
frame of a prompt video is a `frame`.

`SampleValidator` finds every reason a row cannot be trained on (missing file, unknown content type, unreadable
image, profile mismatch, pixel-coordinate data made under other pixel budgets, nothing to train, longer than
`max_length` tokens) without decoding pixels: the token count comes from the real tokenizer over the real chat
template plus the processor's own resize arithmetic for each image (tests check it equals the collated length).
What it accepts but changes or cannot check is counted per row in `notes` (`NOTES` says what each count means),
for the validation report.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Iterator

from PIL import Image, UnidentifiedImageError

from pixel_reasoner.budget_check import budget_differences, recorded_budgets
from pixel_reasoner.config import PixelBudget, PixelBudgets
from pixel_reasoner.errors import ConfigError, OperationError
from pixel_reasoner.media import VideoSource, smart_resize
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.trajectory import resolve_path

from open_r1_ext.data import Problem, Row

MESSAGES_SHOWN_PER_ROW = 3
TOOLS_MARKER = "<tools>"  # present in a system prompt that already lists the tools (released SFT data)
RELEASED_SOURCE = "released_sft"  # `Trajectory.source` of rows converted from the released PixelReasoner-SFT-Data
# Leading whitespace up to a newline: after the header's "\n" the tokenizer would merge it into one token
# ("\n\n") that straddles the masked header and the trained text, a token the model never writes there.
HEADER_MERGING = re.compile(r"\s*[\r\n]")
NOTES = {
    "released_rows_without_tools": "released rows whose system prompt has no `<tools>` block: trained on their prompt "
                                   "verbatim, as the official trainer did (`add_tools_to_released: true` adds it)",
    "released_rows_tools_added": "released rows without `<tools>` given the profile's tools block "
                                 "(`add_tools_to_released: true`)",
    "rows_assistant_leading_newline": "rows with an assistant turn that began with a newline: stripped, so no trained "
                                      "token straddles the `<|im_start|>assistant\\n` header",
    "rows_other_budgets": "rows made under other pixel budgets than this run's, with normalized boxes: the boxes stay "
                          "valid, but images are shown at this run's sizes, not the sizes their observations state",
    "pixel_rows_without_budgets": "pixel-coordinate rows that record no pixel budgets (`meta.budgets`): their boxes "
                                  "cannot be checked against this run's budgets",
}
IGNORED_MEDIA_KEY_NOTE = "released_media_key:"  # + key: rows whose released media parts carry a key not honoured


@dataclass
class SampleSpec:
    id: str
    source: str
    index: int
    messages: list[dict]
    tools: list[dict] | None
    profile: str
    tokens: int = 0  # sequence length once collated (set by SampleValidator)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "SampleSpec":
        return cls(**json.loads(text))

    @property
    def where(self) -> str:
        return f"{self.source} row {self.index} (id {self.id})"

    def media_parts(self) -> Iterator[dict]:
        for m in self.messages:
            if isinstance(m["content"], list):
                yield from (p for p in m["content"] if p["type"] in ("image", "video"))

    def image_paths(self) -> list[str]:
        return [p["path"] for p in self.media_parts() if p["type"] == "image"]

    def trained_turns(self) -> int:
        return sum(1 for m in self.messages if m["role"] == "assistant" and m.get("loss") is not False)


def build_spec(row: Row, profile: str | None, add_tools_to_released: bool = False
               ) -> tuple[SampleSpec | None, list[str], list[str]]:
    """The sample of one row, or the problems that prevent it (structure, files, profile, loss flags), and the
    `NOTES` keys of what was accepted but changed or could not be checked."""
    traj = row.trajectory
    problems = [p.removeprefix("trajectory: ") for p in traj.validate(root=row.root)]
    if problems:
        return None, problems, []
    notes = [IGNORED_MEDIA_KEY_NOTE + key for key in traj.meta.get("ignored_media_keys") or []]
    name = profile or traj.profile
    if profile is not None and traj.profile != profile:
        problems.append(f"recorded with profile {traj.profile!r} but the recipe sets profile={profile!r}: its tool "
                        "calls would not match the tools shown; drop `profile` from the recipe or convert the data")
    try:
        schemas = get_profile(name).tool_schemas()
    except ConfigError as e:
        problems.append(f"`profile`: {e}")
        schemas = []
    messages = []
    for m in traj.messages:
        observation = m["role"] == "tool" or bool(m.get("observation"))
        msg: dict[str, Any] = {"role": m["role"], "content": m["content"]}
        if m["role"] == "assistant":
            if m.get("loss") is False:
                msg["loss"] = False
            if HEADER_MERGING.match(m["content"]):
                msg["content"] = m["content"].lstrip()
                notes.append("rows_assistant_leading_newline")
        if isinstance(m["content"], list):
            msg["content"] = [_media_part(p, row.root, observation) for p in m["content"]]
        messages.append(msg)
    if not any(m["role"] == "assistant" and m.get("loss") is not False for m in messages):
        problems.append("every assistant turn is flagged `loss: false`: nothing to train on")
    system = messages[0] if messages[0]["role"] == "system" else None
    tools = None if system is not None and TOOLS_MARKER in _text(system["content"]) else schemas
    if traj.source == RELEASED_SOURCE and tools is not None:
        notes.append("released_rows_tools_added" if add_tools_to_released else "released_rows_without_tools")
        tools = tools if add_tools_to_released else None
    if problems:
        return None, problems, []
    return SampleSpec(traj.id, row.source, row.index, messages, tools, name), [], sorted(set(notes))


def _media_part(part: dict, root: str, observation: bool) -> dict:
    if part["type"] == "image":
        kind = (part.get("provenance") or {}).get("kind", "crop") if observation else "original"
        return {"type": "image", "path": os.path.abspath(resolve_path(part["path"], root)), "kind": kind}
    if part["type"] == "video":
        if part.get("frame_paths"):
            return {"type": "video", "frame_paths": [os.path.abspath(resolve_path(p, root))
                                                     for p in part["frame_paths"]]}
        return {"type": "video", "path": os.path.abspath(resolve_path(part["path"], root)),
                "num_frames": int(part.get("num_frames") or VideoSource.num_frames)}
    return {"type": "text", "text": part["text"]}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if p.get("type") == "text")


class SampleValidator:
    """Checks rows against the processor and pixel budgets the run trains with; one instance per run. `notes`
    counts the valid rows under each `NOTES` key."""

    def __init__(self, processor, budgets: PixelBudgets, max_length: int | None, profile: str | None = None,
                 add_tools_to_released: bool = False):
        self.processor = processor
        self.budgets = budgets
        self.max_length = max_length
        self.profile = profile
        self.add_tools_to_released = add_tools_to_released
        self.notes: Counter[str] = Counter()
        image_processor = processor.image_processor
        self.patch = image_processor.patch_size
        self.merge = image_processor.merge_size
        self.image_range = _pixel_range(image_processor)
        self.video_range = _pixel_range(processor.video_processor)
        self.temporal_patch = processor.video_processor.temporal_patch_size

    def check(self, row: Row) -> tuple[SampleSpec | None, list[Problem]]:
        spec, messages, notes = build_spec(row, self.profile, self.add_tools_to_released)
        if spec is None:
            return None, [Problem(row.source, row.index, summarize(messages), row.trajectory.id)]
        try:
            notes += self.check_budgets(spec, row.trajectory.meta)
            n = self.count_tokens(spec)
        except (OSError, UnidentifiedImageError, OperationError, ConfigError, ValueError) as e:
            return None, [Problem(row.source, row.index, str(e), spec.id)]
        if self.max_length is not None and n > self.max_length:
            return None, [Problem(row.source, row.index, f"{n} tokens, longer than max_length={self.max_length} "
                                  "(raise `max_length`, lower the pixel budgets, or set `invalid_samples: skip`)",
                                  spec.id)]
        spec.tokens = n
        self.notes.update(notes)
        return spec, []

    def check_budgets(self, spec: SampleSpec, meta: dict) -> list[str]:
        """The row's recorded budgets against this run's, on the kinds of image it shows. Pixel-coordinate rows
        made under other budgets raise (their boxes would point elsewhere); the rest is returned as notes."""
        pixels = get_profile(spec.profile).pixel_coordinates()
        recorded = recorded_budgets(meta)
        if recorded is None:
            return ["pixel_rows_without_budgets"] if pixels and any(spec.media_parts()) else []
        kinds = sorted({p["kind"] if p["type"] == "image" else "frame" for p in spec.media_parts()})
        differences = budget_differences(recorded, self.budgets, ("made under", "this run"), kinds)
        if not differences:
            return []
        if pixels:
            raise ValueError(f"made under other pixel budgets than this run's ({'; '.join(differences)}): profile "
                             f"{spec.profile!r} gives boxes in pixels of the image as shown, so every box would point "
                             "elsewhere. Train with the budgets the data was made with (`budget_preset` and the "
                             "per-kind *_pixels fields) or synthesize it again with this run's budgets")
        return ["rows_other_budgets"]

    def count_tokens(self, spec: SampleSpec) -> int:
        """Exact sequence length of the collated sample, from image headers (no pixel decoding)."""
        text = self.processor.apply_chat_template(spec.messages, tools=spec.tools, tokenize=False)
        n = len(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])
        for part in spec.media_parts():
            if part["type"] == "image":
                n += self.image_tokens(_image_size(part["path"]), self.budgets.for_kind(part["kind"])) - 1
            else:
                sizes = _frame_sizes(part)
                if len(set(sizes)) > 1:
                    raise ValueError(f"video frames differ in size ({sorted(set(sizes))}); "
                                     "a video needs frames of one size")
                groups = math.ceil(len(sizes) / self.temporal_patch)
                n += groups * self.image_tokens(sizes[0], self.budgets.frame, video=True) - 1
        return n

    def image_tokens(self, size: tuple[int, int], budget: PixelBudget, video: bool = False) -> int:
        """Visual tokens of one image (or one temporal group of a video): our budget resize, then the processor's."""
        width, height = size
        h, w = smart_resize(height, width, budget.min_pixels, budget.max_pixels)
        lo, hi = self.video_range if video else self.image_range
        h, w = smart_resize(h, w, lo, hi, factor=self.patch * self.merge)
        return (h // self.patch) * (w // self.patch) // (self.merge ** 2)


def summarize(messages: list[str], shown: int = MESSAGES_SHOWN_PER_ROW) -> str:
    """One line per row: its first problems and how many more (a video with 16 missing frames is one row)."""
    more = len(messages) - shown
    return "; ".join(messages[:shown]) + (f"; ... and {more} more problem(s) in this row" if more > 0 else "")


def _pixel_range(processor) -> tuple[int, int]:
    size = processor.size
    return int(size["shortest_edge"]), int(size["longest_edge"])


def _image_size(path: str) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError) as e:
        raise ValueError(f"cannot read image {path}: {e}") from None


def _frame_sizes(part: dict) -> list[tuple[int, int]]:
    if part.get("frame_paths"):
        return [_image_size(p) for p in part["frame_paths"]]
    frames = VideoSource(path=part["path"], num_frames=part["num_frames"]).load_frames()
    return [f.size for f in frames]

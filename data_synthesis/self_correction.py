"""Stage 3 planning: which trajectory type an item becomes (Table 2's proportions) and which wrong operations are
inserted before the correct one (paper, appendix C.2):

- recrop_once / recrop_twice: 1 / 2 boxes with no intersection with the reference box;
- further_zoom_in: one box that contains the reference but is excessively larger; the correct crop then zooms
  into that crop (it targets image 2; `zoom_in_target: original` crops the original instead);
- reselect: frames with no intersection with the reference frames.

Every draw comes from a generator seeded by (run seed, item id, purpose), so a rerun or a resumed run plans the
same trajectory for the same item, independently of order and concurrency. When the geometry leaves no room
(a reference box that fills the image), the item falls back to single_pass and the report counts it.
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Sequence

from data_synthesis.config import (IMAGE_TRAJECTORY_TYPES, VIDEO_TRAJECTORY_TYPES, RecoveryTemplates,
                                   SelfCorrectionConfig)
from data_synthesis.geometry import Box, sample_containing_box, sample_disjoint_box, sample_disjoint_frames
from data_synthesis.prompts import render

TEXT_ONLY = "text_only"


def unit_draw(seed: int, item_id: str, purpose: str) -> float:
    """A uniform number in [0, 1) determined by (seed, item id, purpose)."""
    digest = hashlib.sha256(f"{seed}\x00{item_id}\x00{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def rng_for(seed: int, item_id: str, purpose: str) -> random.Random:
    return random.Random(hashlib.sha256(f"{seed}\x00{item_id}\x00{purpose}".encode()).hexdigest())


def pick(shares: dict[str, float], order: Sequence[str], u: float) -> str:
    """The type whose cumulative share interval (in `order`) holds u."""
    total = 0.0
    last = None
    for name in order:
        share = shares.get(name, 0.0)
        if share <= 0:
            continue
        total += share
        last = name
        if u < total:
            return name
    assert last is not None, "proportions must have a positive share"
    return last


def choose_route(seed: int, item_id: str, is_video: bool, text_only_share: float,
                 config: SelfCorrectionConfig, fixed: str | None = None) -> str:
    """`text_only` for a `text_only_share` of items, else a trajectory type drawn with Table 2's proportions.
    `fixed` (the seed's `route`) overrides the first draw: `text_only`, or `pixel` for a drawn trajectory type."""
    if fixed == TEXT_ONLY or (fixed is None and unit_draw(seed, item_id, "route") < text_only_share):
        return TEXT_ONLY
    shares, order = (config.video, VIDEO_TRAJECTORY_TYPES) if is_video else (config.image, IMAGE_TRAJECTORY_TYPES)
    return pick(shares, order, unit_draw(seed, item_id, "trajectory_type"))


@dataclass
class WrongOperation:
    box: Box | None = None  # crop: source pixels of image 1
    frames: list[int] | None = None  # select_frames: 1-based


@dataclass
class Plan:
    trajectory_type: str  # the realised type
    planned_type: str  # the drawn type (differs after a fallback)
    wrong: list[WrongOperation] = field(default_factory=list)
    recovery_texts: list[str] = field(default_factory=list)  # one per turn after a wrong operation
    fallback_reason: str = ""
    correct_target: int = 1  # image the correct crop is cut from (2: into the over-large crop)


def plan_image(kind: str, rng: random.Random, size: tuple[int, int], reference: Box, margin: tuple[float, float],
               config: SelfCorrectionConfig, target: str, wrong_boxes: Sequence[Box] = ()) -> Plan:
    """`wrong_boxes` (the seed's): the re-crop types draw their wrong crops from these, each at most once, instead
    of sampling a random box that misses the reference."""
    width, height = size
    geometry = config.geometry
    wrong: list[WrongOperation] = []
    if kind in ("recrop_once", "recrop_twice"):
        for _ in range(1 if kind == "recrop_once" else 2):
            used = [w.box for w in wrong if w.box]
            if wrong_boxes:
                pool = [tuple(b) for b in wrong_boxes if tuple(b) not in used]
                box = rng.choice(pool) if pool else None
                reason = "the seed's wrong_boxes ran out"
            else:
                box = sample_disjoint_box(rng, width, height, reference, geometry, margin, used)
                reason = "no room for a box that misses the reference"
            if box is None:
                return Plan("single_pass", kind, fallback_reason=reason)
            wrong.append(WrongOperation(box=box))
        texts = [_recovery(rng, config.templates.recrop, target, config.templates, False) for _ in wrong]
        return Plan(kind, kind, wrong, texts)
    if kind == "further_zoom_in":
        box = sample_containing_box(rng, width, height, reference, geometry)
        if box is None:
            return Plan("single_pass", kind, fallback_reason="the reference is too large for an over-large box")
        return Plan(kind, kind, [WrongOperation(box=box)],
                    [_recovery(rng, config.templates.further_zoom_in, target, config.templates, False)],
                    correct_target=2 if config.zoom_in_target == "crop" else 1)
    return Plan("single_pass", kind)


def plan_video(kind: str, rng: random.Random, num_frames: int, reference: Sequence[int],
               config: SelfCorrectionConfig, target: str) -> Plan:
    if kind == "reselect":
        frames = sample_disjoint_frames(rng, num_frames, reference, len(reference))
        if frames is None:
            return Plan("single_pass", kind, fallback_reason="the reference covers every frame")
        return Plan(kind, kind, [WrongOperation(frames=frames)],
                    [_recovery(rng, config.templates.reselect, target, config.templates, True)])
    return Plan("single_pass", kind)


def _recovery(rng: random.Random, templates: Sequence[str], target: str, all_templates: RecoveryTemplates,
              is_video: bool) -> str:
    target = target or (all_templates.default_target_video if is_video else all_templates.default_target_image)
    text = render(rng.choice(list(templates)), target=target, target_cap=target[:1].upper() + target[1:])
    return text

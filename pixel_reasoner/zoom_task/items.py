"""Questions of the zoom task, each a pure function of (task seed, split, index).

- detail (multiple choice): what fills the square inside the frame? Only a crop of the frame's cell answers it.
- colour (multiple choice) and count (a number): answerable from the original at its budget (coarse questions).
- video (multiple choice): one of 16 frames shows the frame; select that frame, then crop it.
- closeup (multiple choice, training only): the detail question on the frame's cell alone, shown 1:1, so the
  pattern is readable without a tool.
- closeup_crop (training only): the same close-up, answered through a crop of the whole close-up, so the pattern is
  read from a tool's output image, at the place in the text where the main data's crop comes.
  The SFT warm-up stage trains on both kinds first (docs/learning.md, "Warm-up"): after 200 warm-up steps the main
  data's crop was read by step 50 in 5 of 5 runs; without a warm-up, in 0 of 6 runs by 300-1,200 steps.

Options are listed in one fixed order, sorted by their text (eval `--sort-options`, which removes the V* layout's
correct-first order): a letter then always names the same class, so answering is reading the crop, not mapping
a class through a per-question permutation (which a 4-layer model had not learned after 1,300 SFT steps,
docs/learning.md). Answers are option letters (multiple choice) or digits (count). Train and
evaluation items come from different SeedSequence streams (`SPLITS`), so evaluation scenes are never trained on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.zoom_task.scene import PATTERNS, Box, Scene, ZoomTaskConfig, random_scene, render_scene

KINDS = ("detail", "colour", "count", "video", "closeup", "closeup_crop")
CLOSEUP_KINDS = ("closeup", "closeup_crop")  # training only: the warm-up stage's data
COARSE_KINDS = ("colour", "count")
SPLITS = {"train": 0, "eval": 1}
QUESTIONS = {
    "detail": "What fills the small square inside the coloured frame?",
    "colour": "What colour is the frame around the small square?",
    "count": "How many black dots are there in the image?",
    "video": "One frame of the video shows a coloured frame around a small square. What fills the small square?",
    "closeup": "What fills the small square inside the coloured frame?",
    "closeup_crop": "What fills the small square inside the coloured frame?",
}


@dataclass
class ZoomItem:
    id: str
    kind: str
    question: str
    choices: list[str] | None
    answer: str  # an option letter, or a count
    scene: Scene  # for a video: the frame that shows the coloured frame
    frames: list[Image.Image] | None = None  # video: every frame, `frame_index` (1-based) shows the target
    frame_index: int | None = None
    shown_box: Box | None = None  # close-up: the item's image is this box of the scene (the frame's cell)

    @property
    def image(self) -> Image.Image:
        return self.scene.image.crop(self.shown_box) if self.shown_box else self.scene.image


def item_rng(task_seed: int, split: str, index: int) -> np.random.Generator:
    if split not in SPLITS:
        raise ConfigError(f"split {split!r}; choose one of {sorted(SPLITS)}")
    return np.random.default_rng([task_seed, SPLITS[split], index])


def _multiple_choice(options: list[str], correct: str) -> tuple[list[str], str]:
    shown = sorted(options)
    return shown, chr(ord("A") + shown.index(correct))


def make_item(kind: str, task_seed: int, split: str, index: int, config: ZoomTaskConfig) -> ZoomItem:
    if kind not in KINDS:
        raise ConfigError(f"question kind {kind!r}; choose one of {KINDS}")
    rng = item_rng(task_seed, split, index)
    item_id = f"{split}-{kind}-{index}"
    if kind == "video":
        return _video_item(rng, item_id, config)
    scene = random_scene(rng, config)
    if kind == "count":
        return ZoomItem(item_id, kind, QUESTIONS[kind], None, str(scene.dots), scene)
    if kind == "colour":
        choices, answer = _multiple_choice(list(config.colours), scene.colour)
    else:
        choices, answer = _multiple_choice([PATTERNS[p] for p in config.patterns], PATTERNS[scene.pattern])
    shown_box = scene.cell_box if kind in CLOSEUP_KINDS else None
    return ZoomItem(item_id, kind, QUESTIONS[kind], choices, answer, scene, shown_box=shown_box)


def _video_item(rng: np.random.Generator, item_id: str, config: ZoomTaskConfig) -> ZoomItem:
    """A still camera: every frame is the same scene, and only frame `k` shows the coloured frame."""
    state = rng.bit_generator.state
    target = random_scene(rng, config)
    rng.bit_generator.state = state
    background = random_scene(rng, config, with_frame=False)  # the same draws: the same clutter, no frame
    k = int(rng.integers(1, config.video_frames + 1))
    frames = [target.image if i == k else background.image for i in range(1, config.video_frames + 1)]
    choices, answer = _multiple_choice([PATTERNS[p] for p in config.patterns], PATTERNS[target.pattern])
    return ZoomItem(item_id, "video", QUESTIONS["video"], choices, answer, target, frames, k)


def same_scene_all_patterns(task_seed: int, index: int, config: ZoomTaskConfig) -> list[Scene]:
    """One scene drawn once per pattern with identical random draws (for the premise test)."""
    scenes = []
    for pattern in config.patterns:
        rng = item_rng(task_seed, "eval", index)
        base = random_scene(np.random.default_rng([task_seed, 99, index]), config)
        scenes.append(render_scene(rng, config, pattern, base.colour, base.cell, base.dots))
    return scenes

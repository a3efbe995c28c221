"""The task's premise, measured: a pixel oracle reads the pattern from the pixels a model is shown.

`read_pattern` looks at the shown pixels where the pattern square is (it is told where: the oracle knows the
ground-truth box, which a model does not) and compares the mean absolute vertical and horizontal differences:
stripes change across one axis, a checkerboard across both, plain grey across neither.
`premise` runs it on the original at its pixel budget and on the crop the episode engine makes of the frame's
cell (the call a trained model makes), and counts how often each is right. It also counts the black dots of the
same scenes on the original (`count_dots`): the counting questions are meant to be answerable without a tool.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pixel_reasoner.config import PixelBudgets
from pixel_reasoner.episode import Episode, EpisodeConfig
from pixel_reasoner.media import resize_to_budget
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.zoom_task.items import item_rng
from pixel_reasoner.zoom_task.scene import Box, ZoomTaskConfig, random_scene

FLAT = 4.0  # mean |difference| (grey levels) below which a direction counts as unchanging
DOT_DARK = 80  # a shown pixel whose every channel is below this is part of a dot (pastels and frames are not)


def shown_box(box: Box, region: Box, shown: tuple[int, int]) -> tuple[float, float, float, float]:
    """`box` (source pixels) in the pixels of an image that shows `region` of the source at size `shown`."""
    sx, sy = shown[0] / (region[2] - region[0]), shown[1] / (region[3] - region[1])
    return ((box[0] - region[0]) * sx, (box[1] - region[1]) * sy, (box[2] - region[0]) * sx,
            (box[3] - region[1]) * sy)


def read_pattern(image: Image.Image, box: tuple[float, float, float, float]) -> str:
    """The pattern key (`PATTERNS`) the shown pixels inside the central half of `box` look like."""
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    x1, y1, x2, y2 = box
    qx, qy = (x2 - x1) / 4, (y2 - y1) / 4
    region = grey[int(round(y1 + qy)):max(int(round(y2 - qy)), int(round(y1 + qy)) + 2),
                  int(round(x1 + qx)):max(int(round(x2 - qx)), int(round(x1 + qx)) + 2)]
    across_rows = np.abs(np.diff(region, axis=0)).mean()
    across_cols = np.abs(np.diff(region, axis=1)).mean()
    if across_rows < FLAT and across_cols < FLAT:
        return "plain"
    if across_rows > 2 * across_cols:
        return "horizontal"
    if across_cols > 2 * across_rows:
        return "vertical"
    return "checker"


def count_dots(image: Image.Image) -> int:
    """The black dots in an original shown at its budget: 4-connected components of near-black pixels. Nothing else
    there is that dark in every channel (the frame colours are saturated, the pattern averages to grey at that
    budget; in a crop its dark stripes would count), so each component is one dot."""
    dark = np.asarray(image.convert("RGB")).max(axis=2) < DOT_DARK
    seen = np.zeros_like(dark)
    height, width = dark.shape
    components = 0
    for y, x in zip(*np.nonzero(dark)):
        if seen[y, x]:
            continue
        components += 1
        seen[y, x] = True
        stack = [(y, x)]
        while stack:
            cy, cx = stack.pop()
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if 0 <= ny < height and 0 <= nx < width and dark[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
    return components


@dataclass
class PremiseResult:
    n: int
    original_correct: int
    crop_correct: int
    count_original_correct: int

    @property
    def original_accuracy(self) -> float:
        return self.original_correct / self.n

    @property
    def crop_accuracy(self) -> float:
        return self.crop_correct / self.n

    @property
    def count_original_accuracy(self) -> float:
        return self.count_original_correct / self.n


def crop_of_cell(image: Image.Image, cell_box: Box, budgets: PixelBudgets, profile: str = "qwen") -> Episode:
    """An episode after the crop call a trained model makes: the frame's cell, on image 1."""
    episode = Episode(profile, images=[image], config=EpisodeConfig(budgets))
    crop_tool = episode.profile.tool_names()["crop_image"]
    settings = episode.profile.binding(crop_tool).settings  # type: ignore[union-attr]
    w, h = image.size
    if settings.coordinates == "normalized":
        bbox = [round(v, 3) for v in (cell_box[0] / w, cell_box[1] / h, cell_box[2] / w, cell_box[3] / h)]
    else:
        sw, sh = episode.input_images()[0].size
        bbox = [round(cell_box[0] * sw / w), round(cell_box[1] * sh / h), round(cell_box[2] * sw / w),
                round(cell_box[3] * sh / h)]
    call = {"name": crop_tool, "arguments": {"bbox_2d": bbox, "target_image": 1}}
    episode.step("<tool_call>\n" + json.dumps(call) + "\n</tool_call>")
    return episode


def premise(config: ZoomTaskConfig, budgets: PixelBudgets, n: int, task_seed: int = 0,
            profile: str = "qwen") -> PremiseResult:
    """Oracle accuracy on `n` evaluation scenes, from the original at its budget and from the cell's crop; and the
    dot count read from the original."""
    get_profile(profile)
    original_correct = crop_correct = count_correct = 0
    for index in range(n):
        scene = random_scene(item_rng(task_seed, "eval", index), config)
        size = scene.image.size
        original = resize_to_budget(scene.image, budgets.original)
        full = (0, 0, *size)
        original_correct += read_pattern(original, shown_box(scene.patch_box, full, original.size)) == scene.pattern
        count_correct += count_dots(original) == scene.dots
        crop = crop_of_cell(scene.image, scene.cell_box, budgets, profile).images[-1]
        assert crop.box is not None and crop.shown is not None
        crop_correct += read_pattern(crop.shown, shown_box(scene.patch_box, tuple(crop.box), crop.shown.size)) \
            == scene.pattern
    return PremiseResult(n, original_correct, crop_correct, count_correct)

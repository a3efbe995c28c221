"""Scenes of the zoom task: a coloured frame around a small patterned square, somewhere in a cluttered image.

The pattern (horizontal stripes, vertical stripes, a checkerboard, or plain grey) has a period equal to the
original's downsampling factor, is aligned to it, and fades to grey where it would otherwise meet the kernel of
the bicubic resize at an edge. Shown at the original's pixel budget, the four patterns then resample to exactly
the same pixels (tested byte for byte), so nothing but a crop can tell them apart; a crop of the frame's grid cell
shows them at full resolution. The frame, the dots to count and the clutter stay visible at the original's budget.

Every scene is a pure function of its seed and `ZoomTaskConfig` (numpy's SeedSequence, no global state).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from pixel_reasoner.config import TOKEN_PIXELS, PixelBudget, PixelBudgets
from pixel_reasoner.errors import ConfigError

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in source pixels, half-open

PATTERNS = {"horizontal": "horizontal stripes", "vertical": "vertical stripes", "checker": "a checkerboard",
            "plain": "plain grey"}
FRAME_COLOURS = {"red": (220, 30, 30), "green": (30, 170, 50), "blue": (40, 70, 230), "yellow": (235, 200, 20)}
DOT_COLOUR = (15, 15, 15)
DARK, LIGHT = 64, 192  # the pattern's two grey levels; "plain" is their mean
GREY = (DARK + LIGHT) // 2


@dataclass(frozen=True)
class ZoomTaskConfig:
    """Geometry of the task. Defaults: a 448x448 image shown at 112x112 (16 visual tokens, 4x smaller), a 4x4
    grid whose cells are the crop boxes (a 112-pixel cell shown 1:1 in a 16-token crop), a 40-pixel pattern of
    period 4 (= the downsampling factor) inside a 16-pixel-thick frame, 16 pixels of plain grey between them."""

    image_size: int = 448  # side of the square source image (pixels)
    shown_size: int = 112  # side of the original at its pixel budget: image_size / period
    grid: int = 4  # cells per side; the frame sits in one cell and that cell is the crop box
    patch: int = 40  # side of the patterned square
    margin: int = 16  # plain grey between the pattern and the frame: keeps the resize kernel off the frame's colour
    frame: int = 16  # thickness of the coloured frame (thick enough for a tiny model to find it)
    jitter: int = 4  # the frame moves by up to this much inside its cell (multiples of `period`)
    period: int = 4  # pattern period in source pixels; must equal the downsampling factor
    taper: int = 12  # pixels over which the pattern fades in along the direction it varies in
    contrast: int = (LIGHT - DARK) // 2
    max_dots: int = 4  # counting questions: 1..max_dots black dots, together in one free cell (one per quarter)
    dot_radius: int = 22  # 5.5 px as shown: at 14 (3.5 px) the tiny model did not learn to count (docs/learning.md)
    clutter_share: float = 0.6  # chance that a free cell holds a pastel shape
    video_frames: int = 16
    position_code: int = 0  # grey levels (e.g. 48): tint the frame's inner band by its cell; 0: no band
    code_band: int = 8  # width of that band, inside the frame's colour (multiple of `period`)
    patterns: tuple[str, ...] = field(default_factory=lambda: tuple(PATTERNS))
    colours: tuple[str, ...] = field(default_factory=lambda: tuple(FRAME_COLOURS))

    def __post_init__(self) -> None:
        factor, remainder = divmod(self.image_size, self.shown_size)
        if remainder or factor != self.period:
            raise ConfigError(f"image_size / shown_size must equal period (the pattern averages out only then): "
                              f"{self.image_size} / {self.shown_size} vs period {self.period}")
        if self.image_size % self.grid:
            raise ConfigError(f"image_size={self.image_size} must be a multiple of grid={self.grid}")
        for name in ("patch", "margin", "frame", "jitter", "code_band"):
            if getattr(self, name) % self.period:
                raise ConfigError(f"{name}={getattr(self, name)} must be a multiple of period={self.period} "
                                  "(the pattern must stay aligned to the resampling grid)")
        if self.outer + 2 * self.jitter > self.cell:
            raise ConfigError(f"the frame ({self.outer} px) plus jitter 2x{self.jitter} does not fit a "
                              f"{self.cell}-pixel cell; lower patch/margin/frame/jitter or the grid")
        if 2 * self.taper > self.patch:
            raise ConfigError(f"taper={self.taper} leaves no full-contrast pattern in a {self.patch}-pixel patch")
        if not 1 <= self.max_dots <= 4:
            raise ConfigError(f"max_dots={self.max_dots} must be in [1, 4] (one dot per quarter of a cell)")
        if 2 * (self.dot_radius + 4) > self.cell // 2:
            raise ConfigError(f"dot_radius={self.dot_radius} does not fit a quarter of a {self.cell}-pixel cell")
        if not 0 <= self.position_code <= min(GREY, 255 - GREY):
            raise ConfigError(f"position_code={self.position_code} must be in [0, {min(GREY, 255 - GREY)}] "
                              "(a tint of grey, in grey levels)")
        if self.position_code and not 0 < self.code_band < self.frame:
            raise ConfigError(f"code_band={self.code_band} must leave some of the {self.frame}-pixel frame in its "
                              "colour (0 < code_band < frame)")
        unknown = [p for p in self.patterns if p not in PATTERNS] + [c for c in self.colours if c not in FRAME_COLOURS]
        if unknown:
            raise ConfigError(f"unknown pattern(s)/colour(s) {unknown}; known: {list(PATTERNS)}, "
                              f"{list(FRAME_COLOURS)}")

    @property
    def cell(self) -> int:
        return self.image_size // self.grid

    @property
    def outer(self) -> int:
        """Side of the frame's outer square."""
        return self.patch + 2 * (self.margin + self.frame)

    def budgets(self) -> PixelBudgets:
        """The pixel budgets the task is meant for: the original (and video frames) at `shown_size`, a crop of one
        cell at full resolution. Pass the same to synthesis, SFT and eval (docs/learning.md)."""
        shown = PixelBudget(4 * TOKEN_PIXELS, self.shown_size ** 2)
        return PixelBudgets(original=shown, crop=PixelBudget(4 * TOKEN_PIXELS, self.cell ** 2), frame=shown)

    def code_colour(self, row: int, col: int) -> tuple[int, int, int]:
        """The frame's inner band, tinted by the frame's cell: red by its column, green by its row.

        Why an option: a pretrained VLM already knows where things are in an image; a tiny random one must derive
        absolute positions from M-RoPE alone, which is slow (docs/learning.md, "Where to zoom"). The band makes
        *where* a property of the frame's own pixels, legible at the original's budget like the frame's colour.
        It lies `margin` pixels (the resize kernel's full width) from the pattern, so the patterns still resample
        to identical pixels (the premise test). Off by default: in its one measured run it did not make the
        crop box's column come sooner."""
        levels = np.linspace(-self.position_code, self.position_code, self.grid).round().astype(int)
        return (GREY + int(levels[col]), GREY + int(levels[row]), GREY)

    def cell_box(self, row: int, col: int) -> Box:
        c = self.cell
        return (col * c, row * c, (col + 1) * c, (row + 1) * c)


@dataclass(frozen=True)
class Scene:
    """What was drawn, in source pixels: the frame's cell (the crop box), the frame itself, the pattern square."""

    image: Image.Image
    pattern: str
    colour: str
    cell: tuple[int, int]  # (row, col)
    cell_box: Box
    frame_box: Box
    patch_box: Box
    dots: int


def _envelope(n: int, taper: int) -> np.ndarray:
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(taper) + 0.5) / taper)
    env = np.ones(n)
    env[:taper], env[n - taper:] = ramp, ramp[::-1]
    return env


def pattern_pixels(kind: str, config: ZoomTaskConfig) -> np.ndarray:
    """The patch as grey levels (uint8, patch x patch). Stripes fade in only along the axis they vary on, and
    the two levels are symmetric about GREY, so every 4x4 block of the resampling grid averages to GREY."""
    n, half = config.patch, config.period // 2
    y, x = np.mgrid[0:n, 0:n]
    rows, cols = (y // half) % 2, (x // half) % 2
    if kind == "plain":
        return np.full((n, n), GREY, np.uint8)
    sign = {"horizontal": rows, "vertical": cols, "checker": (rows + cols) % 2}[kind] * 2 - 1
    env_y = _envelope(n, config.taper) if kind in ("horizontal", "checker") else np.ones(n)
    env_x = _envelope(n, config.taper) if kind in ("vertical", "checker") else np.ones(n)
    return (GREY + sign * np.round(config.contrast * np.outer(env_y, env_x))).astype(np.uint8)


def _pastel(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(120, 235, 3))  # type: ignore[return-value]


def render_scene(rng: np.random.Generator, config: ZoomTaskConfig, pattern: str, colour: str,
                 cell: tuple[int, int], dots: int, with_frame: bool = True) -> Scene:
    """Draw one scene: the frame in `cell`; `dots` black dots together in another cell; pastel clutter in the
    rest."""
    size, c = config.image_size, config.cell
    image = Image.new("RGB", (size, size), _pastel(rng))
    draw = ImageDraw.Draw(image)
    free = [(r, k) for r in range(config.grid) for k in range(config.grid) if (r, k) != cell]
    dot_cell = free[int(rng.integers(len(free)))]
    for r, k in free:
        x0, y0 = k * c, r * c
        if (r, k) == dot_cell:  # the dots to count sit together, one per quarter of this cell
            rad, half = config.dot_radius, c // 2
            for q in rng.permutation(4)[:dots]:
                qx, qy = x0 + (int(q) % 2) * half, y0 + (int(q) // 2) * half
                cx, cy = (int(v) for v in rng.integers(rad + 4, half - rad - 4 + 1, 2))
                draw.ellipse([qx + cx - rad, qy + cy - rad, qx + cx + rad, qy + cy + rad], fill=DOT_COLOUR)
        elif rng.random() < config.clutter_share:
            w, h = (int(v) for v in rng.integers(c // 4, c - 8, 2))
            sx, sy = (int(v) for v in rng.integers(4, c - 4 - np.array([w, h]) + 1))
            shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
            shape([x0 + sx, y0 + sy, x0 + sx + w, y0 + sy + h], fill=_pastel(rng))
    row, col = cell
    steps = config.jitter // config.period
    offset = (c - config.outer) // 2 // config.period * config.period
    fx = col * c + offset + int(rng.integers(-steps, steps + 1)) * config.period
    fy = row * c + offset + int(rng.integers(-steps, steps + 1)) * config.period
    frame_box = (fx, fy, fx + config.outer, fy + config.outer)
    inset = config.frame + config.margin
    patch_box = (fx + inset, fy + inset, fx + inset + config.patch, fy + inset + config.patch)
    if with_frame:
        draw.rectangle([fx, fy, fx + config.outer - 1, fy + config.outer - 1], fill=FRAME_COLOURS[colour])
        if config.position_code:
            band = config.frame - config.code_band
            draw.rectangle([fx + band, fy + band, fx + config.outer - band - 1, fy + config.outer - band - 1],
                           fill=config.code_colour(row, col))
        draw.rectangle([fx + config.frame, fy + config.frame, fx + config.outer - config.frame - 1,
                        fy + config.outer - config.frame - 1], fill=(GREY, GREY, GREY))
        pixels = np.array(image)
        pixels[patch_box[1]:patch_box[3], patch_box[0]:patch_box[2]] = pattern_pixels(pattern, config)[..., None]
        image = Image.fromarray(pixels)
    return Scene(image, pattern, colour, cell, config.cell_box(row, col), frame_box, patch_box, dots)


def random_scene(rng: np.random.Generator, config: ZoomTaskConfig, with_frame: bool = True) -> Scene:
    pattern = config.patterns[int(rng.integers(len(config.patterns)))]
    colour = config.colours[int(rng.integers(len(config.colours)))]
    cell = (int(rng.integers(config.grid)), int(rng.integers(config.grid)))
    dots = int(rng.integers(1, config.max_dots + 1))
    return render_scene(rng, config, pattern, colour, cell, dots, with_frame)

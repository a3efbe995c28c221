"""Typed configuration of the episode engine, with the paper's values as defaults.

Pixel budgets follow Qwen2.5-VL's convention: an image is resized (aspect kept, sides multiples of 28) so its
pixel count lies in [min_pixels, max_pixels]; it then costs pixels / 28² visual tokens. The official code used
different budgets in SFT, RL and evaluation (`PixelBudgets.paper_sft` / `paper_rl` / `paper_eval`), so a model was
shown every image at another size in each stage; every stage's recipe now defaults to one preset,
`PixelBudgets.consistent`, and the paper's are kept for exact reproduction. Evaluation numbers move by ~10 points
with the budget, so budgets are explicit config that is logged with every run (and compared across stages:
`pixel_reasoner.budget_check`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.settings import option

TOKEN_PIXELS = 28 * 28  # one visual token of Qwen2.5-VL after 2x2 patch merging
VIDEO_FRAMES = 16  # frames sampled from a video (the paper's value, in every stage)


@dataclass(frozen=True)
class PixelBudget:
    """Bounds on the pixel count of one image shown to the model (after smart resize)."""

    min_pixels: int = 4 * TOKEN_PIXELS
    max_pixels: int = 2000 * TOKEN_PIXELS

    def __post_init__(self) -> None:
        if self.min_pixels < TOKEN_PIXELS:
            raise ConfigError(f"min_pixels={self.min_pixels} is below one visual token ({TOKEN_PIXELS}); raise it")
        if self.max_pixels < self.min_pixels:
            raise ConfigError(f"max_pixels={self.max_pixels} < min_pixels={self.min_pixels}; swap or fix them")

    @classmethod
    def tokens(cls, min_tokens: int, max_tokens: int) -> "PixelBudget":
        """A budget given in visual tokens (28x28 pixel cells), the unit the paper's code used."""
        return cls(min_tokens * TOKEN_PIXELS, max_tokens * TOKEN_PIXELS)


@dataclass(frozen=True)
class PixelBudgets:
    """One budget per kind of image: dataset originals, produced crops, produced video frames."""

    original: PixelBudget = field(default_factory=lambda: PixelBudget.tokens(4, 2000))
    crop: PixelBudget = field(default_factory=lambda: PixelBudget.tokens(4, 1000))
    frame: PixelBudget = field(default_factory=lambda: PixelBudget.tokens(4, 400))

    def for_kind(self, kind: str) -> PixelBudget:
        if kind not in ("original", "crop", "frame"):
            raise ConfigError(f"unknown image kind {kind!r}; expected one of original, crop, frame")
        return getattr(self, kind)

    @classmethod
    def consistent(cls) -> "PixelBudgets":
        """One representation for SFT, RL and evaluation (every recipe's default): RL's maxima, the only paper
        budgets whose trajectories fit RL's ~12k-token context (originals ≤2000, crops ≤1000, frames ≤400 tokens),
        with the official evaluation's floor of 256 tokens for originals and crops (a zoom on a small region is
        upsampled, as the released model saw it at evaluation). The numbers behind the choice: docs/protocol.md §6."""
        return cls(PixelBudget.tokens(256, 2000), PixelBudget.tokens(256, 1000), PixelBudget.tokens(4, 400))

    @classmethod
    def paper_rl(cls) -> "PixelBudgets":
        """RL training budgets of the official code: originals ≤2000, crops ≤1000, frames ≤400 tokens."""
        return cls()

    @classmethod
    def paper_eval(cls) -> "PixelBudgets":
        """Evaluation budgets of the official code: originals 256–8000, crops 256–5120, frames ≤512 tokens."""
        return cls(PixelBudget.tokens(256, 8000), PixelBudget.tokens(256, 5120), PixelBudget.tokens(4, 512))

    @classmethod
    def paper_sft(cls) -> "PixelBudgets":
        """SFT budgets of the official code: everything ≤5120 tokens, video frames ≤420x360 px."""
        return cls(PixelBudget(3136, 5120 * TOKEN_PIXELS), PixelBudget(3136, 5120 * TOKEN_PIXELS),
                   PixelBudget(3136, 420 * 360))

    @classmethod
    def preset(cls, name: str) -> "PixelBudgets":
        if name not in BUDGET_PRESETS:
            raise ConfigError(f"unknown pixel-budget preset {name!r}; choose one of {list(BUDGET_PRESETS)}")
        return getattr(cls, name)()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "budgets") -> "PixelBudgets":
        """Budgets as `to_dict` writes them: {"original": {"min_pixels": .., "max_pixels": ..}, "crop": .., "frame": ..}
        (other keys, e.g. a `preset` name next to them, are ignored)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected an object with original/crop/frame budgets, got {data!r}")
        kinds = {}
        for f in fields(cls):
            value = data.get(f.name)
            if not isinstance(value, Mapping) or not {"min_pixels", "max_pixels"} <= set(value):
                raise ConfigError(f"{where}.{f.name}: expected {{\"min_pixels\": .., \"max_pixels\": ..}}, "
                                  f"got {value!r}")
            try:
                kinds[f.name] = PixelBudget(int(value["min_pixels"]), int(value["max_pixels"]))
            except (TypeError, ValueError):
                raise ConfigError(f"{where}.{f.name}: pixel counts must be integers, got {value!r}") from None
        return cls(**kinds)


BUDGET_PRESETS = ("consistent", "paper_sft", "paper_rl", "paper_eval")  # names `PixelBudgets.preset` accepts
IMAGE_KINDS = ("original", "crop", "frame")  # the kinds of image that have a budget of their own


def budget_fields(budgets: PixelBudgets) -> dict[str, int]:
    """`BudgetOptions` fields that give exactly `budgets`: {"original_min_pixels": .., ..., "frame_max_pixels": ..}."""
    return {f"{kind}_{bound}": getattr(budgets.for_kind(kind), bound)
            for kind in IMAGE_KINDS for bound in ("min_pixels", "max_pixels")}


@dataclass
class BudgetOptions:
    """The pixel budgets as a stage's settings, spelled the same in every stage's recipe and flags: a preset,
    and per-kind bounds in pixels that override it (`crop_max_pixels: 802816`). Stage configs inherit these
    fields; `budgets()` resolves them."""

    budget_preset: str = option("consistent", choices=BUDGET_PRESETS, help=(
        "Pixel-budget preset: `consistent` (the same in SFT, RL and eval; every recipe's default) or the official "
        "per-stage `paper_sft`, `paper_rl`, `paper_eval` (docs/protocol.md §6); the *_pixels fields override it."))
    original_min_pixels: int | None = option(None, help="Override of the preset: min pixels of an input image.")
    original_max_pixels: int | None = option(None, help="Override of the preset: max pixels of an input image.")
    crop_min_pixels: int | None = option(None, help="Override of the preset: min pixels of a produced crop.")
    crop_max_pixels: int | None = option(None, help="Override of the preset: max pixels of a produced crop.")
    frame_min_pixels: int | None = option(None, help="Override of the preset: min pixels of a video frame.")
    frame_max_pixels: int | None = option(None, help="Override of the preset: max pixels of a video frame.")

    def __post_init__(self) -> None:
        self.budgets()  # a bad preset or bounds fail at construction; subclasses call super().__post_init__()

    def budgets(self) -> PixelBudgets:
        """The preset with the per-kind overrides applied; ConfigError names the fields of a bad pair."""
        preset = PixelBudgets.preset(self.budget_preset)
        resolved = {}
        for kind in IMAGE_KINDS:
            base = preset.for_kind(kind)
            low, high = getattr(self, f"{kind}_min_pixels"), getattr(self, f"{kind}_max_pixels")
            try:
                resolved[kind] = PixelBudget(base.min_pixels if low is None else low,
                                             base.max_pixels if high is None else high)
            except ConfigError as e:
                raise ConfigError(f"{kind}_min_pixels / {kind}_max_pixels: {e} (preset {self.budget_preset!r} "
                                  f"gives [{base.min_pixels}, {base.max_pixels}])") from None
        return PixelBudgets(**resolved)


@dataclass(frozen=True)
class EpisodeLimits:
    """Limits of one trajectory. The official code stops at the 5th requested operation and 16 images.

    `max_images` counts every image in the conversation: input images (a video's frames count one each when
    they are shown as images, as in OpenRLHF rollouts) plus produced crops/frames. It must not exceed the
    serving engine's per-prompt image limit (OpenRLHF `--data.max_images_per_prompt`).
    `max_turns` counts assistant turns; a tool call on the last allowed turn ends the episode unexecuted.
    """

    max_operations: int = 4
    max_images: int = 16
    max_turns: int = 6

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 1:
                raise ConfigError(f"EpisodeLimits.{f.name} must be >= 1, got {getattr(self, f.name)}")


def to_dict(obj: Any) -> dict:
    """A dataclass config as plain JSON-ready data, for logging with every run."""
    return asdict(obj)

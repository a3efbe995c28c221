"""Our half of the SFT recipe: what to train on and how to present it, as one dataclass.

`TrlParser((SFTScriptArguments, SFTConfig, ModelConfig))` turns its fields into YAML keys and CLI flags (flags
override the YAML), next to TRL's `SFTConfig` (optimisation, logging, saving) and `ModelConfig` (model path,
dtype, attention). Defaults are the paper's SFT settings; `recipes/sft_7b.yaml` spells them out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pixel_reasoner.config import BUDGET_PRESETS, PixelBudget, PixelBudgets
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.protocol import get_profile

INVALID_SAMPLE_POLICIES = ("error", "skip")
LOSS_AVERAGING = ("token", "sample")
KINDS = ("original", "crop", "frame")


@dataclass
class SFTScriptArguments:
    """Data, protocol and presentation of the SFT warm start (the paper's phase 1)."""

    data_files: list[str] = field(default_factory=list, metadata={
        "help": "Training files: our trajectory JSONL (schema v1) and/or the released PixelReasoner-SFT-Data JSON "
                "(a list of {`message_list`: ...}); formats are recognised per record."})
    data_weights: list[float] | None = field(default=None, metadata={
        "help": "Mixture weight per data file (same order): 1 takes every row once, 0.5 a seeded random half, "
                "2 every row twice. Default: 1 for every file."})
    mixture_seed: int = field(default=42, metadata={"help": "Seed of the row subsampling of fractional weights."})
    image_root: str | None = field(default=None, metadata={
        "help": "Directory that relative image/video paths are resolved against. Default: the data file's own "
                "directory."})
    profile: str | None = field(default=None, metadata={
        "help": "Protocol profile whose tool schemas are rendered into the system prompt (`released` or `qwen`). "
                "Default: each trajectory's own `profile` field (released data: `released`). When set, a "
                "trajectory recorded with another profile is an invalid sample."})
    pixel_budgets: str = field(default="consistent", metadata={
        "help": "Pixel-budget preset: `consistent` (the same in SFT, RL and eval; every recipe's default) or the "
                "official per-stage `paper_sft`, `paper_rl`, `paper_eval`; the per-kind fields below override it. "
                "Trajectories that record other budgets in `meta.budgets` are refused (pixel-coordinate profiles) "
                "or counted in the validation report.", "choices": list(BUDGET_PRESETS)})
    original_min_pixels: int | None = field(default=None, metadata={"help": "Input images: min pixels."})
    original_max_pixels: int | None = field(default=None, metadata={"help": "Input images: max pixels."})
    crop_min_pixels: int | None = field(default=None, metadata={"help": "Observation images: min pixels."})
    crop_max_pixels: int | None = field(default=None, metadata={"help": "Observation images: max pixels."})
    frame_min_pixels: int | None = field(default=None, metadata={
        "help": "Video frames (prompt videos and selected frames): min pixels."})
    frame_max_pixels: int | None = field(default=None, metadata={
        "help": "Video frames (prompt videos and selected frames): max pixels."})
    video_fps: float = field(default=2.0, metadata={
        "help": "Sampling rate assumed for a video given as frames; sets Qwen2.5-VL's temporal M-RoPE spacing "
                "(qwen-vl-utils' default for frame lists, as in the official SFT)."})
    add_tools_to_released: bool = field(default=False, metadata={
        "help": "Released PixelReasoner-SFT-Data rows whose system prompt has no `<tools>` block are trained on "
                "their prompt verbatim, as the official trainer did (the validation report counts them); true "
                "appends the profile's tools block to their system prompt instead."})
    loss_averaging: str = field(default="token", metadata={
        "help": "`token`: TRL's mean over every trained token of the batch (long trajectories weigh more); "
                "`sample`: the mean of each sample's own token mean, as the official trainer averaged (docs/sft.md).",
        "choices": list(LOSS_AVERAGING)})
    freeze_vision_tower: bool = field(default=True, metadata={
        "help": "Freeze the vision encoder and its merger (the paper and official code do)."})
    invalid_samples: str = field(default="error", metadata={
        "help": "What to do with a sample that fails validation (missing file, unknown content type, longer than "
                "`max_length` tokens, nothing to train): `error` stops before training with every problem listed; "
                "`skip` leaves them out, logs each and writes the counts to the validation report.",
        "choices": list(INVALID_SAMPLE_POLICIES)})
    validation_report: str | None = field(default=None, metadata={
        "help": "Where the data validation report (JSON) is written. Default: <output_dir>/data_validation.json."})

    def __post_init__(self) -> None:
        if self.invalid_samples not in INVALID_SAMPLE_POLICIES:
            raise ConfigError(f"invalid_samples={self.invalid_samples!r}; choose one of {INVALID_SAMPLE_POLICIES}")
        if self.data_weights is not None and len(self.data_weights) != len(self.data_files):
            raise ConfigError(f"data_weights has {len(self.data_weights)} values for {len(self.data_files)} "
                              "data_files; give one weight per file (same order) or none")
        if any(w < 0 for w in self.data_weights or []):
            raise ConfigError(f"data_weights must be >= 0, got {self.data_weights}")
        if self.loss_averaging not in LOSS_AVERAGING:
            raise ConfigError(f"loss_averaging={self.loss_averaging!r}; choose one of {LOSS_AVERAGING}")
        if self.video_fps <= 0:
            raise ConfigError(f"video_fps must be positive, got {self.video_fps}")
        if self.profile is not None:
            get_profile(self.profile)  # raises ConfigError naming the known profiles
        self.budgets()  # raises ConfigError on a bad preset or inconsistent bounds

    def budgets(self) -> PixelBudgets:
        """The preset with the per-kind overrides applied."""
        preset = PixelBudgets.preset(self.pixel_budgets)
        resolved = {}
        for kind in KINDS:
            base = preset.for_kind(kind)
            lo, hi = getattr(self, f"{kind}_min_pixels"), getattr(self, f"{kind}_max_pixels")
            try:
                resolved[kind] = PixelBudget(base.min_pixels if lo is None else lo,
                                             base.max_pixels if hi is None else hi)
            except ConfigError as e:
                raise ConfigError(f"{kind}_min_pixels / {kind}_max_pixels: {e}") from None
        return PixelBudgets(**resolved)

    def weights(self) -> list[float]:
        return list(self.data_weights) if self.data_weights is not None else [1.0] * len(self.data_files)

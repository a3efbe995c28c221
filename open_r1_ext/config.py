"""Our half of the SFT recipe: what to train on and how to present it, as one dataclass.

`TrlParser((SFTScriptArguments, SFTConfig, ModelConfig))` turns its fields into YAML keys and CLI flags (flags
override the YAML), next to TRL's `SFTConfig` (optimisation, logging, saving) and `ModelConfig` (model path,
dtype, attention). Defaults are the paper's SFT settings; `recipes/sft_7b.yaml` spells them out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pixel_reasoner.config import BudgetOptions
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.settings import check_choices, option
from pixel_reasoner.protocol import get_profile

from open_r1_ext.sampling import BATCH_SAMPLING

INVALID_SAMPLE_POLICIES = ("error", "skip")
LOSS_AVERAGING = ("token", "sample")


@dataclass
class SFTScriptArguments(BudgetOptions):
    """Data, protocol and presentation of the SFT warm start (the paper's phase 1). The pixel budgets are the
    fields every stage shares (`BudgetOptions`: `budget_preset` and per-kind `*_pixels` overrides). Trajectories
    that record other budgets in `meta.budgets` are refused (pixel-coordinate profiles) or counted in the
    validation report."""

    RENAMED: ClassVar[dict[str, str]] = {"pixel_budgets": "budget_preset"}

    data_files: list[str] = option(factory=list, help=(
        "Training files: our trajectory JSONL (schema v1) and/or the released PixelReasoner-SFT-Data JSON (a list "
        "of {`message_list`: ...}); formats are recognised per record."))
    data_weights: list[float] | None = option(None, help=(
        "Mixture weight per data file (same order): 1 takes every row once, 0.5 a seeded random half, 2 every row "
        "twice. Default: 1 for every file."))
    mixture_seed: int = option(42, help="Seed of the row subsampling of fractional weights.")
    image_root: str | None = option(None, help=(
        "Directory that relative image/video paths are resolved against. Default: the data file's own directory."))
    profile: str | None = option(None, help=(
        "Protocol profile whose tool schemas are rendered into the system prompt (`released` or `qwen`). Default: "
        "each trajectory's own `profile` field (released data: `released`). When set, a trajectory recorded with "
        "another profile is an invalid sample."))
    video_fps: float = option(2.0, help=(
        "Frames per second assumed for a video given as a list of frames (not a frame count): sets Qwen2.5-VL's "
        "temporal M-RoPE spacing (qwen-vl-utils' default for frame lists, as in the official SFT)."))
    add_tools_to_released: bool = option(False, help=(
        "Released PixelReasoner-SFT-Data rows whose system prompt has no `<tools>` block are trained on their "
        "prompt verbatim, as the official trainer did (the validation report counts them); true appends the "
        "profile's tools block to their system prompt instead."))
    loss_averaging: str = option("token", choices=LOSS_AVERAGING, help=(
        "`token`: TRL's mean over every trained token of the batch (long trajectories weigh more); `sample`: the "
        "mean of each sample's own token mean, as the official trainer averaged (docs/sft.md)."))
    batch_sampling: str = option("permutation", choices=BATCH_SAMPLING, help=(
        "`permutation`: the Trainer's epochs of a random permutation; `replacement`: every row drawn independently "
        "with replacement (the zoom-task recipe: docs/learning.md, 'Batch sampling')."))
    sort_step_by_length: bool = option(False, help=(
        "Order each optimizer step's rows by token length before they are split into micro-batches "
        "(gradient_accumulation_steps > 1): each micro-batch pads to rows of similar length. The step's rows and "
        "its gradient are unchanged; the zoom-task recipe's steps run ~1.24x faster (docs/sft.md)."))
    freeze_vision_tower: bool = option(True, help=(
        "Freeze the vision encoder and its merger (the paper and official code do)."))
    invalid_samples: str = option("error", choices=INVALID_SAMPLE_POLICIES, help=(
        "What to do with a sample that fails validation (missing file, unknown content type, longer than "
        "`max_length` tokens, nothing to train): `error` stops before training with every problem listed; `skip` "
        "leaves them out, logs each and writes the counts to the validation report."))
    validation_report: str | None = option(None, help=(
        "Where the data validation report (JSON) is written. Default: <output_dir>/data_validation.json."))

    def __post_init__(self) -> None:
        check_choices(self)  # TrlParser checks flags against `choices`, not the YAML values it sets as defaults
        if self.data_weights is not None and len(self.data_weights) != len(self.data_files):
            raise ConfigError(f"data_weights has {len(self.data_weights)} values for {len(self.data_files)} "
                              "data_files; give one weight per file (same order) or none")
        if any(w < 0 for w in self.data_weights or []):
            raise ConfigError(f"data_weights must be >= 0, got {self.data_weights}")
        if self.video_fps <= 0:
            raise ConfigError(f"video_fps must be positive, got {self.video_fps}")
        if self.profile is not None:
            get_profile(self.profile)  # raises ConfigError naming the known profiles
        super().__post_init__()  # raises ConfigError on a bad preset or inconsistent bounds

    def weights(self) -> list[float]:
        return list(self.data_weights) if self.data_weights is not None else [1.0] * len(self.data_files)

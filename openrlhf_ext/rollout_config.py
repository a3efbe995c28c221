"""Typed configuration of the RL rollout agent, with the paper's values as defaults.

It is the `rollout` section of the run's settings (`openrlhf_ext.run_config.RunConfig`: the recipe's
`pixel_reasoner.rollout`, the `--pr.rollout.*` flags) and reaches the agent inside every vLLM actor as part of the
`RolloutContext` our trainer sends with each rollout request (`openrlhf_ext.rollout_context`): one explicit object,
resolved once by the launcher, printed at start and saved in the run's `config.json`. The pixel budgets are the
fields every stage shares (`BudgetOptions`: `budget_preset`, `*_min_pixels`, `*_max_pixels`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from pixel_reasoner.config import VIDEO_FRAMES, BudgetOptions, EpisodeLimits
from pixel_reasoner.episode import EpisodeConfig
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.media import DEFAULT_CACHE_BYTES
from pixel_reasoner.paper_scoring import KIND as PAPER
from pixel_reasoner.protocol import ProtocolProfile, get_profile
from pixel_reasoner.scoring import SCORERS
from pixel_reasoner.settings import check_choices, option

VIDEO_FPS = 2.0  # frame rate a sampled video is given to the processor and vLLM with (as in SFT and eval)
PIXEL_DTYPES = ("bfloat16", "float16", "float32")
SCORING_KINDS = (*SCORERS, PAPER, "auto")


@dataclass(kw_only=True)
class RolloutConfig(BudgetOptions):
    """Everything the rollout agent needs besides the model and the data."""

    RENAMED: ClassVar[dict[str, str]] = {"reward_kind": "scoring"}

    profile: str = option("released", help=(
        "Protocol profile: tool names and schemas, coordinate system, observation texts."))
    extra_operations: tuple[str, ...] = option((), help="Registered operations exposed as extra tools (by name).")
    operation_modules: tuple[str, ...] = option((), help=(
        "Modules or .py files to import so user operations register themselves."))
    limits: EpisodeLimits = option(factory=EpisodeLimits, help="Limits of one episode (official: 4 operations, "
                                                               "16 images, 6 turns).")
    video_frames: int = option(VIDEO_FRAMES, help=(
        "Frames sampled uniformly from a video *file* (a list of frames is used as is)."))
    video_fps: float = option(VIDEO_FPS, help=(
        "The sampled frames' rate as the processor and vLLM are told (temporal M-RoPE)."))
    scoring: str = option("auto", choices=SCORING_KINDS, help=(
        "Correctness of a label that names no scoring: auto, multiple_choice, count, exact_match, anls, or paper "
        "(the official reward, `pixel_reasoner.paper_scoring`: the rule the paper's eval scores with)."))
    stop: tuple[str, ...] = option(("</tool_call>",), help="A turn ends right after these (kept in the output).")
    max_turn_tokens: int = option(2048, help=(
        "New tokens per assistant turn (official code); the whole trajectory is capped by OpenRLHF's "
        "--data.max_len."))
    min_turn_tokens: int = option(1, help=(
        "An observation that leaves fewer tokens than this to generate ends the trajectory as truncated."))
    pixel_dtype: str = option("bfloat16", choices=PIXEL_DTYPES, help=(
        "Dtype of the pixel tensors sent to the trainer: the actor's parameter dtype (the vision tower casts to it "
        "first, so this is lossless and halves the controller's memory); float32 for fp32 parity checks."))
    image_cache_bytes: int = option(DEFAULT_CACHE_BYTES, help=(
        "Decoded images and the prompts' processed pixels, per vLLM actor."))
    operation_threads: int = option(32, help="Threads running operations, decoding and the processor, per vLLM actor.")
    forced_turns: tuple[dict, ...] = option((), help=(
        "Debugging only: structured-output schedules that force chosen turns (a random tiny model never calls a "
        "tool; see `openrlhf_ext.forced_turns`)."))

    def __post_init__(self) -> None:
        check_choices(self)
        super().__post_init__()
        if self.video_frames < 1:
            raise ConfigError(f"video_frames={self.video_frames} must be >= 1")
        if self.video_fps <= 0:
            raise ConfigError(f"video_fps={self.video_fps} must be positive")
        if not self.stop or not all(isinstance(s, str) and s for s in self.stop):
            raise ConfigError(f"stop={self.stop!r} must be a non-empty list of non-empty strings")
        if self.max_turn_tokens < 1:
            raise ConfigError(f"max_turn_tokens={self.max_turn_tokens} must be >= 1")
        if self.min_turn_tokens < 1:
            raise ConfigError(f"min_turn_tokens={self.min_turn_tokens} must be >= 1")
        if self.operation_threads < 1:
            raise ConfigError(f"operation_threads={self.operation_threads} must be >= 1")
        if self.image_cache_bytes <= 0:
            raise ConfigError(f"image_cache_bytes={self.image_cache_bytes} must be positive")
        self.protocol()  # unknown profile / operation -> error now, not at the first rollout
        from openrlhf_ext.forced_turns import ForcedTurns

        ForcedTurns.from_rules(self.forced_turns)  # malformed schedules -> error now

    def protocol(self) -> ProtocolProfile:
        """The profile with the configured extra operations (their modules imported first)."""
        profile = get_profile(self.profile)
        if self.extra_operations or self.operation_modules:
            profile = profile.with_extra_operations(self.extra_operations, self.operation_modules)
        return profile

    def episode_config(self) -> EpisodeConfig:
        """Budgets and limits of one episode (a prompt video's frames are shown at the frame budget)."""
        return EpisodeConfig(budgets=self.budgets(), limits=self.limits)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

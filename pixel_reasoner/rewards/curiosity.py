"""The curiosity bonus of Pixel Reasoner (paper Eq. 10, appendix B): max(H - RaPR(x), 0) * 1_PR(y), weighted by
alpha.

- 1_PR(y) = 1 when response y engaged in pixel-space reasoning. Which responses count is `pixel_reasoning`:
  "executed" (default) counts a response whose operations showed it pixels (at least one executed); "requested"
  counts any tool call, malformed or failed ones included, as the official code does. A call that failed showed
  the model an error message, not pixels, and under "requested" a broken `<tool_call>` followed by a text-only
  answer earns the full bonus (the paper saw 40.6% of the first calls fail). The official code counted requests
  but zeroed the reward of a correct answer whose last operation failed unfixed, a guard this project does not
  reproduce; "executed" withholds the bonus instead, without touching correctness.
- RaPR(x), the rate of pixel-space reasoning of query x, is the mean of 1_PR over the n responses sampled for x in
  the same step: a property of the whole group, which is why this is a group term, computed in the RL controller
  on complete groups.

The paper's values are the defaults (alpha = 0.5, H = 0.3): with 8 samples, a lone pixel-space response earns at
most 0.5 * (0.3 - 1/8) = 0.0875.

The official code's form (`variant: reference_code`, for comparison runs only) is max(H - RaPR, 0) / d / RaPR *
0.25 with d = 2.0 for images and 1.5 for videos and no alpha (set `weight: 1` to reproduce it): 8x alpha's bonus at
RaPR = 1/8 for an image (0.175 instead of 0.0875).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.rewards import register_reward
from pixel_reasoner.rewards.base import GroupRewardTerm, SampleOutcome, TermSettings

VARIANTS = ("paper", "reference_code")
PIXEL_REASONING_MODES = ("executed", "requested")


@dataclass(frozen=True)
class ReferenceCodeConstants:
    """The constants hard-coded in the official code's shaping (used only by `variant="reference_code"`)."""

    image_divisor: float = 2.0
    video_divisor: float = 1.5
    rapr_scale: float = 0.25


@dataclass(frozen=True)
class CuriositySettings(TermSettings):
    weight: float = 0.5  # alpha
    rapr_threshold: float = 0.3  # H: the bonus is paid while the query's RaPR is below this rate
    pixel_reasoning: str = "executed"  # 1_PR(y): an operation executed, or any call "requested" (official)
    variant: str = "paper"  # "paper" (Eq. 10) or "reference_code" (the official code's constants)
    reference_code: ReferenceCodeConstants = field(default_factory=ReferenceCodeConstants)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant={self.variant!r}; choose one of {VARIANTS}")
        if self.pixel_reasoning not in PIXEL_REASONING_MODES:
            raise ConfigError(f"pixel_reasoning={self.pixel_reasoning!r}; choose one of {PIXEL_REASONING_MODES} "
                              "(executed: an operation ran; requested: any tool call)")
        if not 0.0 <= self.rapr_threshold <= 1.0:
            raise ConfigError(f"rapr_threshold (H) = {self.rapr_threshold} is a rate in [0, 1] (paper: 0.3)")
        if min(self.reference_code.image_divisor, self.reference_code.video_divisor) <= 0:
            raise ConfigError("reference_code divisors must be > 0 (official: 2.0 image, 1.5 video)")


def pixel_reasoning(outcomes: Sequence[SampleOutcome], mode: str) -> np.ndarray:
    """1_PR(y) per response under `mode` ("executed" or "requested")."""
    if mode == "executed":
        return np.array([o.executed_operation for o in outcomes], dtype=bool)
    return np.array([o.requested_operation for o in outcomes], dtype=bool)


@register_reward
class CuriosityBonus(GroupRewardTerm):
    name = "curiosity"
    settings_class = CuriositySettings

    def score_group(self, outcomes: Sequence[SampleOutcome], settings: CuriositySettings) -> np.ndarray:
        used = pixel_reasoning(outcomes, settings.pixel_reasoning)
        rapr = float(used.mean()) if len(used) else 0.0
        deficit = max(settings.rapr_threshold - rapr, 0.0)
        if settings.variant == "paper" or rapr == 0.0:
            return deficit * used.astype(np.float64)
        ref = settings.reference_code
        divisor = np.array([ref.video_divisor if o.is_video else ref.image_divisor for o in outcomes])
        return np.where(used, deficit / divisor / rapr * ref.rapr_scale, 0.0)

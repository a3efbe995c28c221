"""The efficiency penalty of Pixel Reasoner (paper Eq. 10): min(N - n_vo(y), 0), weighted by beta.

n_vo(y) counts requested operations, failed ones included, so every operation beyond the N free ones costs beta
(paper: beta = 0.05, N = 1). The official code applies -(n_vo - N) to responses that requested an operation
(`variant: reference_code`); with N = 1 the two agree, with N > 1 the official form pays responses that used fewer
than N operations.
"""
from __future__ import annotations

from dataclasses import dataclass

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.rewards import register_reward
from pixel_reasoner.rewards.base import SampleOutcome, SampleRewardTerm, TermSettings

VARIANTS = ("paper", "reference_code")


@dataclass(frozen=True)
class EfficiencySettings(TermSettings):
    weight: float = 0.05  # beta
    free_operations: int = 1  # N: operations per response that cost nothing
    variant: str = "paper"  # "paper" (Eq. 10) or "reference_code" (the official code's form)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.free_operations < 0:
            raise ConfigError(f"free_operations (N) = {self.free_operations} must be >= 0 (paper: 1)")
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant={self.variant!r}; choose one of {VARIANTS}")


@register_reward
class EfficiencyPenalty(SampleRewardTerm):
    name = "efficiency"
    settings_class = EfficiencySettings

    def score(self, outcome: SampleOutcome, settings: EfficiencySettings) -> float:
        n = outcome.num_operations
        if settings.variant == "paper":
            return float(min(settings.free_operations - n, 0))
        return -float(n - settings.free_operations) if n > 0 else 0.0

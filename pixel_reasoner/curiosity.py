"""Curiosity-driven reward shaping of Pixel Reasoner (paper Eq. 10, appendix B), as pure numpy.

    r'(x, y) = r(x, y) + α · max(H − RaPR(x), 0) · 1_PR(y) + β · min(N − n_vo(y), 0)

- 1_PR(y) = 1 when response y engaged in pixel-space reasoning (which responses count: see below).
- RaPR(x), the rate of pixel-space reasoning of query x, is the mean of 1_PR over the n responses sampled
  for x in the same step: a property of the whole group, which is why shaping runs on complete groups in the
  RL controller, before advantages are computed.
- n_vo(y) counts requested operations, failed ones included (the penalty's count).
- Which responses count as pixel-space reasoning is `CuriosityConfig.pixel_reasoning`: "executed" (default)
  counts a response whose operations showed it pixels (at least one operation executed); "requested" counts any
  tool call, malformed or failed ones included, as the official code does. Eq. 10's 1_PR(y) is "engaging in
  pixel-space reasoning"; a call that failed showed the model an error message, not pixels, and under
  "requested" a broken `<tool_call>` followed by a text-only answer earns the full bonus (the paper saw 40.6% of
  the first calls fail). The official code counted requests but zeroed the reward of a correct answer whose last
  operation failed unfixed, a guard this project does not reproduce; "executed" withholds the bonus instead,
  without touching correctness. RaPR is the group mean of the same indicator, as in the paper (RaPR = E[1_PR]).

The paper's values are the defaults (α=0.5, β=0.05, H=0.3, N=1): with 8 samples, a lone pixel-space response
earns at most 0.5·(0.3 − 1/8) = 0.0875, and each operation beyond the first costs 0.05.

The official code shapes differently (`variant="reference_code"`, for comparison runs only): the bonus is
max(H − RaPR, 0) / d / RaPR · 0.25 with d = 2.0 for images and 1.5 for videos (α is not used), and the penalty
−β·(n_vo − N) is applied only to responses that used an operation. With N=1 the penalty matches the paper; the
bonus is 8× α's at RaPR=1/8 for an image (0.175 instead of 0.0875).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from pixel_reasoner.errors import ConfigError

VARIANTS = ("paper", "reference_code")
PIXEL_REASONING_MODES = ("executed", "requested")


@dataclass(frozen=True)
class ReferenceCodeConstants:
    """The constants hard-coded in the official code's shaping (used only by `variant="reference_code"`)."""

    image_divisor: float = 2.0
    video_divisor: float = 1.5
    rapr_scale: float = 0.25


@dataclass(frozen=True)
class CuriosityConfig:
    """Curiosity bonus and efficiency penalty; the paper's values are the defaults.

    `uniform_tolerance` only decides which groups are logged as reward-uniform (max − min ≤ tolerance).
    """

    enabled: bool = True
    alpha: float = 0.5  # α: scale of the curiosity bonus
    beta: float = 0.05  # β: penalty per visual operation beyond the free ones
    rapr_threshold: float = 0.3  # H: the bonus is paid while the query's RaPR is below this rate
    free_operations: int = 1  # N: operations per response that cost nothing
    variant: str = "paper"  # "paper" (Eq. 10) or "reference_code" (the official code's constants)
    pixel_reasoning: str = "executed"  # 1_PR(y): an operation executed, or any call "requested" (official)
    reference_code: ReferenceCodeConstants = field(default_factory=ReferenceCodeConstants)
    uniform_tolerance: float = 1e-6

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"CuriosityConfig.variant={self.variant!r}; choose one of {VARIANTS}")
        if self.pixel_reasoning not in PIXEL_REASONING_MODES:
            raise ConfigError(f"CuriosityConfig.pixel_reasoning={self.pixel_reasoning!r}; choose one of "
                              f"{PIXEL_REASONING_MODES} (executed: an operation ran; requested: any tool call)")
        if self.alpha < 0 or self.beta < 0:
            raise ConfigError(f"CuriosityConfig alpha={self.alpha}, beta={self.beta} must be >= 0 (paper: 0.5, 0.05)")
        if not 0.0 <= self.rapr_threshold <= 1.0:
            raise ConfigError(f"CuriosityConfig.rapr_threshold (H) = {self.rapr_threshold} is a rate in [0, 1] "
                              "(paper: 0.3)")
        if self.free_operations < 0:
            raise ConfigError(f"CuriosityConfig.free_operations (N) = {self.free_operations} must be >= 0 (paper: 1)")
        if self.uniform_tolerance < 0:
            raise ConfigError(f"CuriosityConfig.uniform_tolerance = {self.uniform_tolerance} must be >= 0")
        ref = self.reference_code
        if min(ref.image_divisor, ref.video_divisor) <= 0:
            raise ConfigError("CuriosityConfig.reference_code divisors must be > 0 (official: 2.0 image, 1.5 video)")


@dataclass(frozen=True)
class ShapedRewards:
    """Result of shaping a batch of complete groups (arrays are per sample, in input order)."""

    group_size: int
    correctness: np.ndarray  # r, as given
    bonus: np.ndarray  # curiosity term (>= 0)
    penalty: np.ndarray  # efficiency term (<= 0)
    rewards: np.ndarray  # r' = r + bonus + penalty
    rapr: np.ndarray  # per group: RaPR(x)
    uniform_tolerance: float
    pixel_reasoning: np.ndarray  # per sample: 1_PR(y)
    failed_calls_only: np.ndarray  # per sample: requested operations, none executed

    def _uniform_share(self, values: np.ndarray) -> float:
        groups = values.reshape(-1, self.group_size)
        return float(np.mean(np.ptp(groups, axis=1) <= self.uniform_tolerance))

    def stats(self) -> dict[str, float]:
        """Per-step numbers to log (keys without a prefix; callers add one)."""
        return {
            "rapr_mean": float(self.rapr.mean()),
            "bonus_mean": float(self.bonus.mean()),
            "penalty_mean": float(self.penalty.mean()),
            "bonus_sample_share": float(np.mean(self.bonus > 0)),
            "penalty_sample_share": float(np.mean(self.penalty < 0)),
            "failed_calls_only_share": float(np.mean(self.failed_calls_only)),
            "correctness_mean": float(self.correctness.mean()),
            "shaped_reward_mean": float(self.rewards.mean()),
            "uniform_group_ratio_correctness": self._uniform_share(self.correctness),
            "uniform_group_ratio": self._uniform_share(self.rewards),
        }


def _as_vector(name: str, values: Sequence[float] | np.ndarray, dtype=np.float64) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence (one value per sample), got shape {arr.shape}")
    return arr


def shape_rewards(rewards: Sequence[float], num_operations: Sequence[int], group_size: int,
                  config: CuriosityConfig | None = None, is_video: Sequence[bool] | None = None,
                  executed: Sequence[bool] | None = None) -> ShapedRewards:
    """Shape the rewards of complete groups: samples [k·n, (k+1)·n) are the n responses of query k.

    `executed[i]`: at least one operation of sample i executed (showed it pixels); required unless
    `config.pixel_reasoning == "requested"`.
    `is_video` matters only for `variant="reference_code"` (its video divisor); it defaults to all images.
    With `config.enabled=False` the rewards pass through unchanged (bonus and penalty are zero) but RaPR and
    uniformity are still reported, so runs without curiosity log the same curves.
    """
    config = config or CuriosityConfig()
    r = _as_vector("rewards", rewards)
    n_vo = _as_vector("num_operations", num_operations)
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if len(n_vo) != len(r):
        raise ValueError(f"num_operations has {len(n_vo)} values for {len(r)} rewards")
    if len(r) % group_size:
        raise ValueError(f"{len(r)} samples do not form complete groups of {group_size} (n_samples_per_prompt); "
                         "curiosity needs every response of a query in the same step")
    if not np.all(np.isfinite(r)):
        raise ValueError(f"rewards contain non-finite values at {np.flatnonzero(~np.isfinite(r)).tolist()}")
    if np.any(n_vo < 0) or np.any(n_vo != np.round(n_vo)):
        raise ValueError(f"num_operations must be non-negative integers, got {n_vo.tolist()}")
    video = np.zeros(len(r), dtype=bool) if is_video is None else _as_vector("is_video", is_video, dtype=bool)
    if len(video) != len(r):
        raise ValueError(f"is_video has {len(video)} values for {len(r)} rewards")

    requested = n_vo > 0
    if executed is None:
        if config.pixel_reasoning == "executed":
            raise ValueError("curiosity with pixel_reasoning='executed' needs `executed` (per sample: an operation "
                             "executed) or CuriosityConfig(pixel_reasoning='requested')")
        ran = requested
    else:
        ran = _as_vector("executed", executed, dtype=bool)
        if len(ran) != len(r):
            raise ValueError(f"executed has {len(ran)} values for {len(r)} rewards")
        if np.any(ran & ~requested):
            raise ValueError("executed is true for a sample with num_operations == 0")
    used = ran if config.pixel_reasoning == "executed" else requested
    rapr = used.reshape(-1, group_size).mean(axis=1)
    rapr_per_sample = np.repeat(rapr, group_size)
    deficit = np.maximum(config.rapr_threshold - rapr_per_sample, 0.0)
    if config.variant == "paper":
        bonus = config.alpha * deficit * used
        penalty = config.beta * np.minimum(config.free_operations - n_vo, 0.0)
    else:
        ref = config.reference_code
        divisor = np.where(video, ref.video_divisor, ref.image_divisor)
        safe_rapr = np.where(used, rapr_per_sample, 1.0)  # RaPR > 0 wherever a sample used an operation
        bonus = np.where(used, deficit / divisor / safe_rapr * ref.rapr_scale, 0.0)
        penalty = np.where(requested, -config.beta * (n_vo - config.free_operations), 0.0)
    if not config.enabled:
        bonus = np.zeros_like(r)
        penalty = np.zeros_like(r)
    bonus = bonus + 0.0  # normalise -0.0 to 0.0 for logging
    penalty = penalty + 0.0
    return ShapedRewards(group_size=group_size, correctness=r, bonus=bonus, penalty=penalty,
                         rewards=r + bonus + penalty, rapr=rapr, uniform_tolerance=config.uniform_tolerance,
                         pixel_reasoning=used, failed_calls_only=requested & ~ran)

"""The RL reward as config: which terms, each term's settings (its weight among them), and where they run.

    rewards:
      terms: [correctness, curiosity, efficiency]          # the paper's Eq. 10 (the default)
      settings:
        curiosity: {weight: 0.5, rapr_threshold: 0.3}      # alpha, H (every key optional: the term's defaults)
        efficiency: {weight: 0.05, free_operations: 1}     # beta, N
      modules: [examples/rewards/failed_call_penalty.py]   # files or modules that register more terms

Sample terms are scored where the response is made (`sample_rewards`), group terms on complete groups in the RL
controller (`group_rewards`); the reward is the sum of every term's `weight * value`, and each contribution is
logged under `reward/<name>`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pixel_reasoner import settings as config_layer
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.rewards import get_reward, load_reward_modules
from pixel_reasoner.rewards.base import GroupRewardTerm, RewardTerm, SampleOutcome, SampleRewardTerm, TermSettings
from pixel_reasoner.settings import option

LOG_PREFIX = "reward/"
PAPER_TERMS = ("correctness", "curiosity", "efficiency")


@dataclass(frozen=True)
class ActiveTerm:
    """A configured term: the registered term and its resolved settings."""

    term: RewardTerm
    settings: TermSettings

    @property
    def name(self) -> str:
        return self.term.name

    @property
    def log_key(self) -> str:
        return LOG_PREFIX + self.term.name


@dataclass(frozen=True)
class RewardConfig:
    """The terms of the RL reward r'(x, y) = sum_k weight_k * term_k(x, y); the defaults are the paper's Eq. 10."""

    terms: tuple[str, ...] = option(PAPER_TERMS, help=(
        "Reward terms, by registered name: built-in correctness, curiosity, efficiency; more from `modules`."))
    settings: dict[str, dict] = option(factory=dict, help=(
        "Per term, its settings over the term's defaults, e.g. {curiosity: {weight: 0.5, rapr_threshold: 0.3}}; "
        "`weight` is every term's."))
    modules: tuple[str, ...] = option((), help="Modules or .py files that register more reward terms.")

    def __post_init__(self) -> None:
        self.active()  # unknown terms or settings fail at construction

    def active(self) -> list[ActiveTerm]:
        load_reward_modules(self.modules)
        if len(set(self.terms)) != len(self.terms):
            raise ConfigError(f"rewards.terms lists a term twice: {list(self.terms)}")
        unknown = sorted(set(self.settings) - set(self.terms))
        if unknown:
            raise ConfigError(f"rewards.settings has {unknown}, which rewards.terms does not list "
                              f"({list(self.terms)}); add them to the terms or remove their settings")
        return [ActiveTerm(term, config_layer.build(term.settings_class, self.settings.get(name) or {},
                                                    f"rewards.settings.{name}"))
                for name, term in ((name, get_reward(name)) for name in self.terms)]

    def to_dict(self) -> dict:
        """The resolved configuration (every term's full settings), for the run's records."""
        return {"terms": list(self.terms), "modules": list(self.modules),
                "settings": {a.name: config_layer.to_dict(a.settings) for a in self.active()}}


def sample_rewards(outcome: SampleOutcome, terms: Sequence[ActiveTerm]) -> dict[str, float]:
    """`weight * value` of every sample term, by log key (`reward/<name>`)."""
    out = {}
    for a in terms:
        if isinstance(a.term, SampleRewardTerm):
            value = float(a.term.score(outcome, a.settings))
            if not np.isfinite(value):
                raise ValueError(f"reward term {a.name!r} gave {value} for a sample")
            out[a.log_key] = a.settings.weight * value + 0.0  # + 0.0: no -0.0 in the logs
    return out


def group_rewards(outcomes: Sequence[SampleOutcome], group_size: int,
                  terms: Sequence[ActiveTerm]) -> dict[str, np.ndarray]:
    """`weight * value` of every group term, per sample, by log key; samples [k*n, (k+1)*n) are the n responses
    to query k (n = `group_size`, OpenRLHF's `n_samples_per_prompt`)."""
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if len(outcomes) % group_size:
        raise ValueError(f"{len(outcomes)} samples do not form complete groups of {group_size} "
                         "(n_samples_per_prompt); group reward terms need every response of a query in the same step")
    out = {}
    for a in terms:
        if not isinstance(a.term, GroupRewardTerm):
            continue
        values = []
        for start in range(0, len(outcomes), group_size):
            group = outcomes[start:start + group_size]
            scored = np.asarray(a.term.score_group(group, a.settings), dtype=np.float64)
            if scored.shape != (len(group),) or not np.all(np.isfinite(scored)):
                raise ValueError(f"reward term {a.name!r} must give one finite value per sample of a group of "
                                 f"{len(group)}, got {scored.tolist()}")
            values.append(scored)
        out[a.log_key] = a.settings.weight * np.concatenate(values) + 0.0 if values else np.zeros(0)
    return out

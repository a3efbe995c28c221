"""Registry of RL reward terms. Built-ins register on import; others load from the modules config names.

The RL reward of a response is a weighted sum of terms, r'(x, y) = sum_k weight_k * term_k: by default the paper's
Eq. 10, `correctness` (r) + `curiosity` (alpha * max(H - RaPR(x), 0) * 1_PR(y)) + `efficiency`
(beta * min(N - n_vo(y), 0)). A new term is one file (docs/adding_a_reward.md): a settings dataclass and a
`SampleRewardTerm` or `GroupRewardTerm` subclass decorated with `@register_reward`; config names it and sets its
weight (`RewardConfig`).
"""
from __future__ import annotations

from typing import Iterable

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.plugins import Registry
from pixel_reasoner.rewards.base import (GroupRewardTerm, RewardTerm, SampleOutcome, SampleRewardTerm,
                                         TermSettings)

_REGISTRY: Registry[RewardTerm] = Registry(
    "reward term", "A term of your own is registered by its file: list it in the reward config's `modules`.")


def register_reward(cls: type[RewardTerm]) -> type[RewardTerm]:
    """Class decorator: make a reward term available to config by its `name`."""
    if not cls.name:
        raise ConfigError(f"{cls.__name__} needs a class attribute `name`")
    if not issubclass(cls, (SampleRewardTerm, GroupRewardTerm)):
        raise ConfigError(f"{cls.__name__}: a reward term subclasses SampleRewardTerm or GroupRewardTerm")
    if not issubclass(cls.settings_class, TermSettings):
        raise ConfigError(f"{cls.__name__}.settings_class must extend TermSettings (it carries the term's weight)")
    _REGISTRY.add(cls.name, cls(), cls)
    return cls


def get_reward(name: str) -> RewardTerm:
    return _REGISTRY.get(name)


def registered_rewards() -> list[str]:
    return sorted(_REGISTRY.names())


def load_reward_modules(modules: Iterable[str]) -> None:
    """Import the modules (names or `.py` paths) that register reward terms."""
    _REGISTRY.load(modules)


from pixel_reasoner.rewards import correctness, curiosity, efficiency  # noqa: E402,F401  (built-ins register)

__all__ = ["GroupRewardTerm", "RewardTerm", "SampleOutcome", "SampleRewardTerm", "TermSettings", "get_reward",
           "load_reward_modules", "register_reward", "registered_rewards"]

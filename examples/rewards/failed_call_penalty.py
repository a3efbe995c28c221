"""A new RL reward term in one file: `failed_call_penalty` costs each visual operation that failed.

The paper saw 40.6% of the first tool calls fail early in RL; its efficiency penalty counts a failed call like a
good one. This term charges the failures themselves, so a policy learns to write calls that execute.

Use it without touching the package (docs/adding_a_reward.md), in the RL recipe:

    rewards:
      terms: [correctness, curiosity, efficiency, failed_call_penalty]
      settings:
        failed_call_penalty: {weight: 0.05, max_penalized: 2}
      modules: [examples/rewards/failed_call_penalty.py]

Each response then carries `reward/failed_call_penalty` (weight * value) in its logs, next to the other terms.
"""
from __future__ import annotations

from dataclasses import dataclass

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.rewards import SampleOutcome, SampleRewardTerm, TermSettings, register_reward


@dataclass(frozen=True)
class FailedCallSettings(TermSettings):
    """The term's options; every term's settings extend `TermSettings`, which holds its `weight`."""

    weight: float = 0.05
    max_penalized: int = 2  # failures beyond this many cost nothing more (a response is not punished without end)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_penalized < 1:
            raise ConfigError(f"max_penalized={self.max_penalized} must be >= 1")


@register_reward
class FailedCallPenalty(SampleRewardTerm):
    """-1 per failed visual operation of the response (up to `max_penalized`); 0 for a response without failures.

    A sample term sees one response alone (`SampleOutcome`: its counts, correctness and whole conversation in
    `outcome.messages`) and runs where the response is made, in the rollout agent."""

    name = "failed_call_penalty"
    settings_class = FailedCallSettings

    def score(self, outcome: SampleOutcome, settings: FailedCallSettings) -> float:
        return -float(min(outcome.num_operation_errors, settings.max_penalized))

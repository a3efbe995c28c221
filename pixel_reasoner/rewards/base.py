"""What a reward term is: a named, weighted function of finished responses, with its own settings dataclass.

Two scopes, because they run in different places of an RL step:
- `SampleRewardTerm.score(outcome, settings)`: one response alone. Runs where the response is made (the rollout
  agent), so it may read the whole conversation (`outcome.messages`).
- `GroupRewardTerm.score_group(outcomes, settings)`: every response to one query together (the paper's
  curiosity bonus needs the group's RaPR). Runs in the RL controller on complete groups, where a response is
  what its per-sample logs say (`SampleOutcome.from_logs`; no messages).

A term contributes `weight * value` to the reward; `weight` is a field of every term's settings (`TermSettings`),
so it is set in config like any other of its options, and each contribution is logged under `reward/<name>`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from pixel_reasoner.errors import ConfigError, DataError

if TYPE_CHECKING:
    from pixel_reasoner.episode import Episode


@dataclass(frozen=True)
class SampleOutcome:
    """One finished response, as every reward term sees it."""

    correct: float  # the task's correctness in [0, 1] (the label's scoring rule)
    num_operations: int  # n_vo(y): requested operations, failed ones included
    num_operation_errors: int
    num_images: int  # images the operations produced: > 0 iff an operation executed
    turns: int
    answered: bool  # the episode ended with an answer (not a limit or truncation)
    truncated: bool
    is_video: bool
    messages: tuple = ()  # the conversation; only where the response is made (sample terms)

    LOG_KEYS: ClassVar[tuple[str, ...]] = ("correct", "num_operations", "num_operation_errors", "num_images",
                                           "turns", "answered", "truncated", "is_video")

    @property
    def requested_operation(self) -> bool:
        """The response asked for at least one visual operation (well-formed or not)."""
        return self.num_operations > 0

    @property
    def executed_operation(self) -> bool:
        """At least one of its operations executed: the model was shown pixels it asked for."""
        return self.num_images > 0

    @classmethod
    def from_episode(cls, episode: "Episode", correct: float, truncated: bool) -> "SampleOutcome":
        stats = episode.stats
        return cls(correct=float(correct), num_operations=stats.num_operations,
                   num_operation_errors=stats.num_operation_errors, num_images=stats.num_images_produced,
                   turns=stats.turns, answered=stats.termination == "answer", truncated=truncated,
                   is_video=episode.video is not None, messages=tuple(episode.messages))

    def to_logs(self) -> dict[str, float]:
        """The per-sample logs a response carries to the controller (floats, as OpenRLHF's `extra_logs`)."""
        return {key: float(getattr(self, key)) for key in self.LOG_KEYS}

    @classmethod
    def from_logs(cls, logs: Mapping[str, Any], where: str = "sample") -> "SampleOutcome":
        missing = [key for key in cls.LOG_KEYS if key not in logs]
        if missing:
            raise DataError(f"{where}: the per-sample logs lack {missing}; group reward terms read "
                            f"{list(cls.LOG_KEYS)} (the rollout agent reports them)")
        values = {key: float(logs[key]) for key in cls.LOG_KEYS}
        return cls(correct=values["correct"], num_operations=round(values["num_operations"]),
                   num_operation_errors=round(values["num_operation_errors"]),
                   num_images=round(values["num_images"]), turns=round(values["turns"]),
                   answered=values["answered"] > 0, truncated=values["truncated"] > 0,
                   is_video=values["is_video"] > 0)


@dataclass(frozen=True)
class TermSettings:
    """Settings every term has. A term's own settings dataclass extends it (and may change the weight's default
    to the paper's value)."""

    weight: float = 1.0  # the term contributes weight * value to the reward

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ConfigError(f"weight={self.weight} must be >= 0 (0 switches the term off)")


class RewardTerm:
    """A reward term; subclass `SampleRewardTerm` or `GroupRewardTerm` and register it (`register_reward`)."""

    name: ClassVar[str] = ""  # the registry key, the config key and the log key (`reward/<name>`)
    settings_class: ClassVar[type] = TermSettings


class SampleRewardTerm(RewardTerm):
    """A term of one response alone."""

    def score(self, outcome: SampleOutcome, settings: Any) -> float:
        raise NotImplementedError


class GroupRewardTerm(RewardTerm):
    """A term of the responses to one query together (the group of `n_samples_per_prompt`)."""

    def score_group(self, outcomes: Sequence[SampleOutcome], settings: Any) -> Sequence[float]:
        raise NotImplementedError

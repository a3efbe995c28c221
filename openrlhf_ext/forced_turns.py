"""Forced turns, for debugging and tests only: make a model that never calls a tool (a random tiny model) call one.

A rule is `{"match": "<substring of the prompt, '' for any>", "schedules": [[turn 1, turn 2, ...], ...]}`. The
first rule whose `match` occurs in a sample's prompt applies, and the k-th sample of that prompt (in the order
the agent receives them) follows `schedules[k % len(schedules)]`. A turn is `null` (free generation), a regex
that vLLM's structured outputs force the turn's text to match, or `{"regex": ..., "logit_bias": {token id:
bias}}`. Turns past the end of a schedule are free. The rules are part of `RolloutConfig.forced_turns`.

vLLM reports a forced turn's log-probs conditional on the grammar (log p(token | allowed set)), so such turns are
not comparable with the trainer's log-probs as they are (`openrlhf_ext.parity.grammar_renormalized_turn`).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from pixel_reasoner.errors import ConfigError


@dataclass(frozen=True)
class TurnPlan:
    regex: str | None = None
    logit_bias: dict[int, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, entry: Any, where: str) -> "TurnPlan":
        if entry is None or isinstance(entry, str):
            return cls(entry or None)
        if isinstance(entry, dict) and set(entry) <= {"regex", "logit_bias"}:
            bias = entry.get("logit_bias") or {}
            try:
                return cls(entry.get("regex"), {int(k): float(v) for k, v in bias.items()})
            except (TypeError, ValueError, AttributeError):
                raise ConfigError(f"{where}: logit_bias must map token ids to numbers, got {bias!r}") from None
        raise ConfigError(f"{where}: a turn is null, a regex, or {{\"regex\", \"logit_bias\"}}; got {entry!r}")

    def apply(self, sampling_params: Any) -> None:
        """Constrain one turn's (per-sample copy of the) sampling parameters."""
        from vllm.sampling_params import StructuredOutputsParams

        if self.regex:
            sampling_params.structured_outputs = StructuredOutputsParams(regex=self.regex)
        if self.logit_bias:
            sampling_params.logit_bias = {**(sampling_params.logit_bias or {}), **self.logit_bias}


class ForcedTurns:
    """The configured rules and how many samples of each prompt have started (in this process)."""

    def __init__(self, rules: Sequence[tuple[str, list[list[TurnPlan]]]]):
        self.rules = list(rules)
        self.samples_seen: Counter = Counter()

    @classmethod
    def from_rules(cls, rules: Sequence[dict]) -> "ForcedTurns":
        parsed = []
        for i, rule in enumerate(rules):
            where = f"forced_turns[{i}]"
            if not isinstance(rule, dict) or set(rule) - {"match", "schedules"} or not rule.get("schedules"):
                raise ConfigError(f"{where}: expected {{\"match\": str, \"schedules\": [[turn, ...], ...]}}, got "
                                  f"{rule!r}")
            schedules = rule["schedules"]
            if not all(isinstance(s, list) for s in schedules):
                raise ConfigError(f"{where}: `schedules` must be a list of lists of turns")
            parsed.append((str(rule.get("match", "")),
                           [[TurnPlan.parse(t, f"{where}.schedules[{k}][{j}]") for j, t in enumerate(s)]
                            for k, s in enumerate(schedules)]))
        return cls(parsed)

    def schedule(self, prompt: str) -> list[TurnPlan]:
        """The plans of the next sample of `prompt` (empty: every turn free)."""
        for match, schedules in self.rules:
            if match in prompt:
                k = self.samples_seen[prompt]
                self.samples_seen[prompt] += 1
                return schedules[k % len(schedules)]
        return []

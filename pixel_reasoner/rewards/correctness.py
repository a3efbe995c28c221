"""The task reward r(x, y): correctness in [0, 1] by the label's scoring rule (`pixel_reasoner.scoring`, or the
paper's rule), decided where the response is made and carried in `SampleOutcome.correct`."""
from __future__ import annotations

from pixel_reasoner.rewards import register_reward
from pixel_reasoner.rewards.base import SampleOutcome, SampleRewardTerm, TermSettings


@register_reward
class Correctness(SampleRewardTerm):
    name = "correctness"
    settings_class = TermSettings

    def score(self, outcome: SampleOutcome, settings: TermSettings) -> float:
        return outcome.correct

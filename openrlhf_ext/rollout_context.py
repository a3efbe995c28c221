"""What the RL controller sends with every rollout request in place of the model's processor.

OpenRLHF's `SamplesGenerator` passes its tokenizer as the `hf_tokenizer` argument of every
`RolloutRayActor.generate_responses.remote(...)` call; for a VLM that is the whole `AutoProcessor`, which Ray
pickles per call (13.9 MB, 0.26-0.32 s to pickle, 0.56-0.95 s to load on the development machine: minutes of
serial dispatch per 512-prompt rollout). Our trainer builds the `SamplesGenerator` with a `RolloutContext`
instead (`openrlhf_ext.trainer`): the model path, from which every engine process loads the processor once
(`load_processor`), the agent's `RolloutConfig` and the run's `RewardConfig` (the agent scores the sample
terms). It is the one configuration object the agent receives:
nothing is read from the environment or the working directory.

    >>> context = RolloutContext("/models/warm-start", RolloutConfig())
    >>> len(pickle.dumps(context)) < 10_000
    True
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from openrlhf_ext.rollout_config import RolloutConfig
from pixel_reasoner.rewards.shaping import RewardConfig


@functools.lru_cache(maxsize=4)
def load_processor(model_path: str) -> Any:
    """The model's processor, loaded once per process (what OpenRLHF's trainer loads, `trust_remote_code`)."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(model_path, trust_remote_code=True)


@dataclass(frozen=True)
class RolloutContext:
    """The model (by path), the agent's configuration and the reward terms it scores each sample with, small enough
    to send with every request."""

    model_path: str
    config: RolloutConfig = field(default_factory=RolloutConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)

    def processor(self) -> Any:
        return load_processor(self.model_path)


def context_of(hf_tokenizer: Any) -> tuple[RolloutContext | None, Any]:
    """(context, processor) from what OpenRLHF passed as `hf_tokenizer`: our context (the processor is loaded
    from it), or, when the agent runs under plain upstream OpenRLHF without our trainer, the processor itself
    (then there is no context and the agent uses the default configuration)."""
    if isinstance(hf_tokenizer, RolloutContext):
        return hf_tokenizer, hf_tokenizer.processor()
    return None, hf_tokenizer

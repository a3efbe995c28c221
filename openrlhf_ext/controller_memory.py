"""Host memory of the RL controller: a rollout's training tensors and the SSR buffer, as an explicit estimate.

Why: upstream's controller process holds every sample's training inputs between generation and training:
token tensors and, for a VLM, the processor's `pixel_values` for every image the sample showed (the prompt's
images and every crop or frame an operation produced). It still holds the previous rollout while the next one is
generated (`PPOTrainer.fit` rebinds `rollout_samples` only after `generate_samples` returns), and SSR keeps up to
`capacity` more samples. At the paper's batch (512 queries × 8 samples) this is hundreds of GB, not "tens".

Every input is an argument, nothing is read from the agent: callers pass `pixel_value_bytes` (the rollout
config's `pixel_dtype`, see `PIXEL_DTYPE_BYTES`) and `prompt_pixels_shared_by` to match the agent that runs.
The agent (openrlhf_ext/agent.py) processes a query's prompt once and hands the same tensor to every sample that
showed no other image; a sample that produced an image carries its own copy (OpenRLHF wants one tensor per key per
sample, so the prompt's pixels are concatenated with the crops'). `bench/controller_memory.py` checks the
per-token constants against the real Qwen2.5-VL processor and upstream's `Experience`; `bench/orchestration.py`
measures what the agent's responses of one query actually pickle to.
"""
from __future__ import annotations

from dataclasses import dataclass

from pixel_reasoner.config import TOKEN_PIXELS
from pixel_reasoner.errors import ConfigError

GIB = 2**30
# Qwen2.5-VL: one visual token = 2×2 merged patches; one patch row of `pixel_values` = 3 channels × 2 frames ×
# 14 × 14 pixels (an image is repeated to 2 temporal frames).
PIXEL_ROWS_PER_VISUAL_TOKEN = 4
PIXEL_ROW_ELEMENTS = 3 * 2 * 14 * 14
# Per token of a single-sample experience after advantages: sequences, attention_mask and action_mask (int64,
# full length), action log-probs, rollout log-probs, advantages, returns (float32).
SEQUENCE_BYTES_PER_TOKEN = 3 * 8 + 4 * 4


def _gib(nbytes: float) -> str:
    return f"{nbytes / GIB:.0f} GiB" if nbytes >= 100 * GIB else f"{nbytes / GIB:.2g} GiB"


def pixel_bytes(visual_tokens: float, pixel_value_bytes: int) -> float:
    """Bytes of `pixel_values` for images totalling `visual_tokens` visual tokens."""
    return visual_tokens * PIXEL_ROWS_PER_VISUAL_TOKEN * PIXEL_ROW_ELEMENTS * pixel_value_bytes


@dataclass(frozen=True)
class SampleFootprint:
    """What one rollout sample holds in the controller.

    `prompt_visual_tokens`: the prompt's images (or video frames); `produced_visual_tokens`: every image its
    operations produced; `pixel_value_bytes`: 4 for float32 `pixel_values`, 2 for bf16;
    `prompt_pixels_shared_by`: how many samples share one prompt tensor (1: a copy per sample; n: one per query).
    """

    prompt_visual_tokens: float
    produced_visual_tokens: float
    sequence_tokens: float
    pixel_value_bytes: int = 4
    prompt_pixels_shared_by: int = 1

    def __post_init__(self) -> None:
        if self.pixel_value_bytes not in (1, 2, 4, 8):
            raise ConfigError(f"SampleFootprint.pixel_value_bytes={self.pixel_value_bytes}: 4 (float32) or 2 (bf16)")
        if self.prompt_pixels_shared_by < 1:
            raise ConfigError(f"SampleFootprint.prompt_pixels_shared_by={self.prompt_pixels_shared_by} must be >= 1")

    @property
    def prompt_pixel_bytes(self) -> float:
        return pixel_bytes(self.prompt_visual_tokens, self.pixel_value_bytes) / self.prompt_pixels_shared_by

    @property
    def produced_pixel_bytes(self) -> float:
        return pixel_bytes(self.produced_visual_tokens, self.pixel_value_bytes)

    @property
    def sequence_bytes(self) -> float:
        return self.sequence_tokens * SEQUENCE_BYTES_PER_TOKEN

    @property
    def total_bytes(self) -> float:
        return self.prompt_pixel_bytes + self.produced_pixel_bytes + self.sequence_bytes


@dataclass(frozen=True)
class ControllerMemoryEstimate:
    sample: SampleFootprint
    rollout_samples: int
    rollouts_held: int
    ssr_samples: float  # samples the buffer can hold within its capacity and byte cap
    ssr_max_bytes: int | None

    @property
    def rollouts_bytes(self) -> float:
        return self.rollouts_held * self.rollout_samples * self.sample.total_bytes

    @property
    def ssr_bytes(self) -> float:
        return self.ssr_samples * self.sample.total_bytes

    @property
    def total_bytes(self) -> float:
        return self.rollouts_bytes + self.ssr_bytes

    def summary(self) -> str:
        s = self.sample
        cap = "" if self.ssr_max_bytes is None else f", byte cap {_gib(self.ssr_max_bytes)}"
        return (f"{_gib(self.total_bytes)} = {self.rollouts_held} rollouts held × {self.rollout_samples} "
                f"samples × {s.total_bytes / 1e6:.1f} MB + SSR buffer {self.ssr_samples:.0f} samples"
                f"{cap} ({_gib(self.ssr_bytes)}). Per sample: prompt pixels {s.prompt_pixel_bytes / 1e6:.1f} MB "
                f"({s.prompt_visual_tokens:.0f} visual tokens, {s.pixel_value_bytes} B per value, shared by "
                f"{s.prompt_pixels_shared_by}), produced images {s.produced_pixel_bytes / 1e6:.1f} MB "
                f"({s.produced_visual_tokens:.0f} visual tokens), tokens {s.sequence_bytes / 1e6:.2f} MB "
                f"({s.sequence_tokens:.0f} tokens)")


def estimate_controller_memory(sample: SampleFootprint, rollout_samples: int, ssr_capacity: int = 0,
                               ssr_max_bytes: int | None = None, rollouts_held: int = 2) -> ControllerMemoryEstimate:
    """Peak host memory of the controller for samples shaped like `sample` (an upper bound: the SSR buffer's
    newest entries share pixel tensors with the rollout being trained).

    `ssr_capacity=0` means SSR off; `rollouts_held=2`: upstream keeps the previous rollout while generating.
    """
    if rollout_samples < 1 or rollouts_held < 1 or ssr_capacity < 0:
        raise ConfigError(f"rollout_samples={rollout_samples}, rollouts_held={rollouts_held} must be >= 1 and "
                          f"ssr_capacity={ssr_capacity} >= 0")
    ssr_samples = float(ssr_capacity)
    if ssr_max_bytes is not None and sample.total_bytes > 0:
        ssr_samples = min(ssr_samples, ssr_max_bytes // sample.total_bytes)
    return ControllerMemoryEstimate(sample, rollout_samples, rollouts_held, ssr_samples, ssr_max_bytes)


# Bytes per `pixel_values` element for the rollout config's `pixel_dtype` (openrlhf_ext/rollout_config.py).
PIXEL_DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
# What the rollout agent stores per sample at its defaults: bf16 `pixel_values`; the prompt tensor is shared by the
# n samples of a query only while a sample shows no other image, and `run_estimate`'s samples each produce one.
AGENT_PIXEL_VALUE_BYTES = PIXEL_DTYPE_BYTES["bfloat16"]
AGENT_PROMPT_PIXELS_SHARED = False


def run_estimate(queries: int, samples_per_query: int, original_max_pixels: int, produced_max_pixels: int,
                 max_len: int, ssr_capacity: int, ssr_max_bytes: int | None, produced_images: float = 1.0,
                 pixel_value_bytes: int = AGENT_PIXEL_VALUE_BYTES,
                 prompt_pixels_shared: bool = AGENT_PROMPT_PIXELS_SHARED) -> ControllerMemoryEstimate:
    """The estimate for a run's settings, for samples with one prompt image at the original budget,
    `produced_images` images at the crop budget and `max_len` tokens (the dry run's stated assumption)."""
    sample = SampleFootprint(prompt_visual_tokens=original_max_pixels // TOKEN_PIXELS,
                             produced_visual_tokens=produced_images * (produced_max_pixels // TOKEN_PIXELS),
                             sequence_tokens=max_len, pixel_value_bytes=pixel_value_bytes,
                             prompt_pixels_shared_by=samples_per_query if prompt_pixels_shared else 1)
    return estimate_controller_memory(sample, queries * samples_per_query, ssr_capacity, ssr_max_bytes)

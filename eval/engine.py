"""The offline vLLM engine behind `eval run`: one `LLM`, one batched `generate` call per turn of all live
trajectories. Only this module imports torch/vLLM.

Images reach vLLM already resized by the core to the configured pixel budgets (sides multiples of 28), and the
processor is given bounds that contain every budget, so it leaves them as they are: what the model sees is what
the manifest says. Videos are passed as their sampled frames with metadata that disables vLLM's own frame
sampling (fps 2.0, the Qwen2.5-VL processor's default for frame lists).
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pixel_reasoner.config import PixelBudgets
from pixel_reasoner.media import visual_tokens
from pixel_reasoner.protocol.chatml import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER

from eval.runner import GenerationRequest, GenerationResult

logger = logging.getLogger(__name__)
VIDEO_FPS = 2.0
TEMPORAL_PATCH = 2  # Qwen2.5-VL merges 2 consecutive frames into one temporal patch
CPU_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}


@dataclass(frozen=True)
class EngineConfig:
    """The engine's part of a `RunConfig` (`engine_config`), whose fields hold the defaults."""

    model: str
    budgets: PixelBudgets
    max_images: int
    video: bool
    video_frames: int
    max_model_len: int
    dtype: str
    seed: int
    temperature: float
    top_p: float
    top_k: int
    tensor_parallel_size: int
    gpu_memory_utilization: float
    enforce_eager: bool


def _side(pixels: int) -> int:
    return max(28, int(math.sqrt(pixels)) // 28 * 28)


class VLLMGenerator:
    """`Generate` for the runner, backed by an offline vLLM engine."""

    def __init__(self, config: EngineConfig):
        import torch

        self.config = config
        self.on_cpu = not torch.cuda.is_available()
        if self.on_cpu:  # in-process engine core, small KV cache (user settings win)
            for key, value in CPU_ENV.items():
                os.environ.setdefault(key, value)
        from vllm import LLM

        b = config.budgets
        image_pixels = max(b.original.max_pixels, b.crop.max_pixels, b.frame.max_pixels)
        low = min(b.original.min_pixels, b.crop.min_pixels, b.frame.min_pixels)
        limits: dict = {"image": {"count": config.max_images, "width": _side(image_pixels),
                                  "height": _side(image_pixels)}}
        limits["video"] = ({"count": 1, "num_frames": config.video_frames, "width": _side(b.frame.max_pixels),
                            "height": _side(b.frame.max_pixels)} if config.video else 0)
        kwargs = dict(model=config.model, dtype=config.dtype, max_model_len=config.max_model_len, seed=config.seed,
                      enable_prefix_caching=True, limit_mm_per_prompt=limits,
                      mm_processor_kwargs={"size": {"shortest_edge": low, "longest_edge": image_pixels}},
                      tensor_parallel_size=config.tensor_parallel_size,
                      gpu_memory_utilization=config.gpu_memory_utilization, enforce_eager=config.enforce_eager)
        if self.on_cpu:
            kwargs.update(distributed_executor_backend="uni", enforce_eager=True)
        logger.info("starting vLLM: %s", kwargs)
        self.llm = LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self._warned = False

    def prompt_tokens(self, request: GenerationRequest) -> int:
        """Prompt length after vLLM expands each image/video placeholder into its visual tokens."""
        n = len(self.tokenizer.encode(request.prompt, add_special_tokens=False))
        n += sum(visual_tokens(*im.size) - 1 for im in request.images)
        if request.video:
            w, h = request.video[0].size
            n += math.ceil(len(request.video) / TEMPORAL_PATCH) * visual_tokens(w, h) - 1
        return n

    def _inputs(self, request: GenerationRequest) -> dict:
        mm: dict = {}
        if request.images:
            mm["image"] = request.images
        if request.video:
            frames = np.stack([np.asarray(f.convert("RGB")) for f in request.video])
            n = len(request.video)
            mm["video"] = [(frames, {"fps": VIDEO_FPS, "duration": n / VIDEO_FPS, "total_num_frames": n,
                                     "frames_indices": list(range(n)), "video_backend": "pyav",
                                     "do_sample_frames": False})]
        images_in_text = request.prompt.count(IMAGE_PLACEHOLDER)
        if images_in_text != len(request.images) or request.prompt.count(VIDEO_PLACEHOLDER) != bool(request.video):
            raise RuntimeError(f"prompt has {images_in_text} image placeholders for {len(request.images)} images")
        return {"prompt": request.prompt, **({"multi_modal_data": mm} if mm else {})}

    def __call__(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        c = self.config
        results: list[GenerationResult | None] = [None] * len(requests)
        inputs, params, where, estimates = [], [], [], []
        for i, r in enumerate(requests):
            prompt_len = self.prompt_tokens(r)
            allowed = min(r.max_tokens, c.max_model_len - prompt_len)
            if allowed < 1:
                results[i] = GenerationResult("", 0, "context_overflow", prompt_len)
                continue
            inputs.append(self._inputs(r))
            params.append(SamplingParams(
                temperature=c.temperature, top_p=c.top_p, top_k=c.top_k, max_tokens=allowed, seed=r.seed,
                stop=list(r.stop) or None, include_stop_str_in_output=True,
                structured_outputs=StructuredOutputsParams(regex=r.regex) if r.regex else None))
            where.append(i)
            estimates.append(prompt_len)
        if inputs:
            for i, estimate, out in zip(where, estimates, self.llm.generate(inputs, params, use_tqdm=False)):
                o = out.outputs[0]
                if out.prompt_token_ids is not None and len(out.prompt_token_ids) != estimate and not self._warned:
                    self._warned = True
                    logger.warning("prompt of %d tokens where %d were expected: the processor changed an image's "
                                   "size, so the model did not see the budgets in the manifest", len(out.prompt_token_ids),
                                   estimate)
                results[i] = GenerationResult(o.text, len(o.token_ids),
                                              "length" if o.finish_reason == "length" else "stop",
                                              len(out.prompt_token_ids or []))
        return results  # type: ignore[return-value]


def engine_config(run_config, video: bool) -> EngineConfig:
    """The engine settings a `RunConfig` implies."""
    c = run_config
    return EngineConfig(model=c.model, budgets=c.budgets(), max_images=c.max_images, video=video,
                        video_frames=c.video_frames, max_model_len=c.max_model_len, dtype=c.dtype, seed=c.seed,
                        temperature=c.temperature, top_p=c.top_p, top_k=c.top_k,
                        tensor_parallel_size=c.tensor_parallel_size,
                        gpu_memory_utilization=c.gpu_memory_utilization, enforce_eager=c.enforce_eager)


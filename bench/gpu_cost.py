"""What a GPU hour buys: throughput, MFU, peak memory and bf16 log-prob noise of Pixel Reasoner's training steps.

    PYTHONPATH=. python bench/gpu_cost.py [--config 7b|3b] [--optimizer adamw|none] [--peak-tflops X]
    PYTHONPATH=. python bench/gpu_cost.py --tiny     # the same code on the tiny test model, on CPU
    PYTHONPATH=. python bench/gpu_cost.py --flops-only   # sample shapes and FLOPs per step, nothing runs

The model is a randomly initialised Qwen2.5-VL with the published 7B (or 3B) shapes (`pixel_reasoner.testing.
qwen_configs`; nothing is downloaded: speed and memory depend on shapes only), in bf16, with flash-attn when it
is installed (else SDPA) and gradient checkpointing on, on one GPU. Two training paths, one sample each (batch 1,
as the recipes' micro-batches):

- `sft`: the `recrop_once` demo trajectory (an original + two crops, 2304x1728 sources) at the paper's SFT budgets:
  ~8.3k tokens, collated by the SFT collator (`open_r1_ext.collator`), loss as TRL's SFTTrainer computes it on
  CUDA (its fused LM head scores only the trained positions); vision tower frozen (the SFT recipe's default).
- `rl`: the same episode at the paper's RL budgets, tokenized as OpenRLHF's multi-turn agent builds a rollout
  (prompt and observations through the processor, actions as generated token ids), and the trainer-side forward
  of OpenRLHF's `Actor.forward` (token types rebuilt from the sequence so Qwen2.5-VL uses M-RoPE positions,
  logits to fp32, log-probs of the action tokens) under a PPO-clip loss; vision tower trained (the RL recipe's
  default). `rl_logprob` is the same forward without gradients (the experience maker's log-prob pass).

Per path: forward+backward time and tokens/s (all positions, image tokens included), model FLOPs utilisation,
peak memory; then, with `--optimizer adamw`, the AdamW step on the trainable parameters timed separately (its
states are bf16 like the parameters; DeepSpeed's fp32 master weights and states are not modelled) and the peak
memory of a whole training step; a phase that runs out of memory is reported as such. Before training, the
bf16 vs fp32 difference of the trainer's log-probs on the `rl` sample (same weights, upcast): the numeric noise
in importance ratios a user should expect (on random weights; a trained checkpoint's differs).

MFU = model FLOPs per step / step time / peak bf16 dense FLOP/s (`PEAK_BF16_TFLOPS` by device name, or
`--peak-tflops`). Model FLOPs (gradient-checkpointing recomputation not counted, as in PaLM's MFU):
  forward = 2 * W_decoder * T + 2 * W_head * H + 2 * L * T^2 * d_q     (causal attention: half of T x T)
          + 2 * W_vit * P + 2 * W_merger * P / 4 + 4 * d_vit * A_vit    (vision tower)
  where W_* = weights of the Linear/Conv layers (the embedding lookup is none), T = sequence length, H = positions
  the LM head scores (rl: all T; sft: the trained ones, as TRL's fused head on CUDA), L = decoder layers,
  d_q = heads * head_dim, P = image patches, A_vit = sum over vision blocks of the attention pairs (each image's
  P_i^2 in full-attention blocks, the window sizes squared in windowed blocks);
  a training step = 3 x forward for trained parts (the frozen SFT vision tower: 1 x), `rl_logprob` = 1 x.
Prints a table; writes JSON (`--out`). docs/performance.md explains every column.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Callable

import torch
from packaging.version import Version

from open_r1_ext.collator import AllZeroAssistantMaskError, TrajectoryCollator
from open_r1_ext.config import SFTScriptArguments
from open_r1_ext.dataset import prepare_samples
from open_r1_ext.demo_data import CHOICES, SCENARIOS, DemoMedia, demo_script_arguments, write_demo_data
from open_r1_ext.modeling import configure_processor, freeze_vision_tower, resolve_attn_implementation
from openrlhf_ext.rollout_config import RolloutConfig
from pixel_reasoner.protocol.chatml import IM_END, render_messages
from pixel_reasoner.testing.qwen_configs import published_config, tiny_config
from pixel_reasoner.testing.tiny_qwen import build_processor, build_tokenizer

SCENARIO = "recrop_once"  # an original and two crops (the first one a flagged mistake)
PAPER_SCALE = 7.2  # demo sources 320x240 x 7.2 = 2304x1728: the original fills the SFT budget, ~8.3k tokens in all
PROFILE = "released"
LOGSUMEXP_CHUNK = 1024  # rows per chunk, as OpenRLHF's log_probs_from_logits
PPO_CLIP = 0.2
# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, TFLOP/s; the first name contained in
# torch.cuda.get_device_name() wins, so specific variants come before their family.
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.5), ("H100 NVL", 835.5), ("H200 NVL", 835.5), ("H100", 989.4),
                    ("H200", 989.4), ("H800", 989.4), ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0),
                    ("L40S", 362.1), ("L40", 181.0), ("L4", 121.0), ("RTX 4090", 165.2))


@dataclass
class Sample:
    """One training sample as the model receives it (batch of 1). `action_mask` (RL only) marks the positions whose
    next token was generated, aligned with the log-probs (length T - 1), as in OpenRLHF's `Experience`."""

    inputs: dict[str, torch.Tensor]
    action_mask: torch.Tensor | None = None

    @property
    def tokens(self) -> int:
        return self.inputs["input_ids"].shape[1]

    @property
    def head_positions(self) -> int:
        """Positions the LM head runs on: SFT scores only those whose next token is trained (TRL's fused head),
        OpenRLHF's forward computes logits everywhere."""
        if "labels" in self.inputs:
            return int((self.inputs["labels"][:, 1:] != -100).sum())
        return self.tokens

    @property
    def grids(self) -> list[tuple[int, int, int]]:
        return [tuple(g) for g in self.inputs["image_grid_thw"].tolist()]

    def describe(self) -> dict:
        out = {"tokens": self.tokens, "images": len(self.grids), "grids": self.grids,
               "patches": sum(t * h * w for t, h, w in self.grids),
               "image_tokens": sum(t * h * w for t, h, w in self.grids) // 4}  # a token per 2x2 patches
        if "labels" in self.inputs:
            out["trained_tokens"] = int((self.inputs["labels"] != -100).sum())
        out["head_positions"] = self.head_positions
        if self.action_mask is not None:
            out["action_tokens"] = int(self.action_mask.sum())
        return out

    def to(self, device: torch.device) -> "Sample":
        mask = None if self.action_mask is None else self.action_mask.to(device)
        return Sample({k: v.to(device) for k, v in self.inputs.items()}, mask)


def sft_sample(processor, args: SFTScriptArguments, media: DemoMedia, work: str) -> Sample:
    """The demo trajectory written to disk, validated and collated exactly as SFT training reads it."""
    path = write_demo_data(os.path.join(work, "sft"), profile=PROFILE, scenarios=[SCENARIO], media=media)
    spec = prepare_samples(replace(args, data_files=[path]), processor, None, progress=False).samples[0]
    return Sample(TrajectoryCollator(processor, args.budgets())([{"sample": spec.to_json()}]))


def rl_sample(processor, media: DemoMedia, work: str) -> Sample:
    """The episode driven through its scripted turns, tokenized as our rollout agent (`openrlhf_ext/agent.py`)
    builds a rollout: the prompt and each observation through the processor (image tokens expanded, pixels
    collected), each action as the engine's token ids (a turn ends after `</tool_call>`, kept; a final answer with
    the end-of-turn token). `tests/bench/test_gpu_cost.py` checks it against the real agent and OpenRLHF."""
    tokenizer = processor.tokenizer
    stop = RolloutConfig().stop
    end_of_turn = tokenizer.convert_tokens_to_ids(IM_END)
    episode, question, turns, _ = SCENARIOS[SCENARIO](PROFILE, os.path.join(work, "rl"), media)
    ids: list[int] = []
    pixels: list[torch.Tensor] = []
    grids: list[torch.Tensor] = []
    actions: list[tuple[int, int]] = []

    def observe(text: str, images: list) -> None:
        if images:
            out = processor(text=[text], images=images, add_special_tokens=False, return_tensors="pt")
            ids.extend(out["input_ids"][0].tolist())
            pixels.append(out["pixel_values"])
            grids.append(out["image_grid_thw"])
        else:
            ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])

    observe(render_messages(episode.prompt_messages(question, CHOICES), tools=episode.profile.tool_schemas(),
                            add_generation_prompt=True), episode.input_images())
    for turn in turns:
        text = turn.text(episode)
        action = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not any(text.endswith(s) for s in stop):
            action.append(end_of_turn)
        actions.append((len(ids), len(ids) + len(action)))
        ids.extend(action)
        result = episode.step(text)
        if result.done:
            break
        observe(result.observation.continuation(close_assistant_turn=action[-1] != end_of_turn),
                result.observation.images)
    sequence = torch.tensor([ids])
    mask = torch.zeros(len(ids), dtype=torch.long)
    for start, end in actions:
        mask[start:end] = 1
    inputs = {"input_ids": sequence, "attention_mask": torch.ones_like(sequence),
              "pixel_values": torch.cat(pixels), "image_grid_thw": torch.cat(grids)}
    return Sample(inputs, mask[1:].unsqueeze(0))


def trainer_log_probs(model, sample: Sample) -> torch.Tensor:
    """Action log-probs as OpenRLHF 0.11.2's `Actor.forward` computes them for a VLM without sample packing: token
    types rebuilt from the sequence (Qwen2.5-VL then computes M-RoPE positions itself), logits in fp32, log p of
    each next token by gather minus a chunked logsumexp, masked to the action tokens."""
    sequences = sample.inputs["input_ids"]
    config = model.config
    token_types = (sequences == config.image_token_id).to(torch.int32)
    token_types[sequences == config.video_token_id] = 2
    mm = {k: sample.inputs[k] for k in ("pixel_values", "image_grid_thw")}
    logits = model(sequences, attention_mask=sample.inputs["attention_mask"], position_ids=None,
                   mm_token_type_ids=token_types, **mm)["logits"].to(torch.float32)
    labels = torch.roll(sequences, shifts=-1, dims=1)
    picked = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    flat = logits.reshape(-1, logits.shape[-1])
    normalizer = torch.cat([torch.logsumexp(chunk, -1) for chunk in flat.split(LOGSUMEXP_CHUNK)]).view_as(picked)
    log_probs = (picked - normalizer)[:, :-1]
    return log_probs[:, -sample.action_mask.shape[1]:] * sample.action_mask.float()


def sft_loss(model, sample: Sample) -> torch.Tensor:
    """The loss TRL 1.16's SFTTrainer takes on CUDA through its fused LM head (`trl.trainer.utils.add_fused_lm_head`):
    the backbone over every position, the LM head only where the next token is trained, the mean NLL of those."""
    backbone_inputs = {k: v for k, v in sample.inputs.items() if k != "labels"}
    hidden = model.model(**backbone_inputs, use_cache=False).last_hidden_state[:, :-1]
    labels = sample.inputs["labels"][:, 1:]
    trained = labels != -100
    return torch.nn.functional.cross_entropy(model.lm_head(hidden[trained]).float(), labels[trained])


def rl_loss(model, sample: Sample) -> torch.Tensor:
    """PPO-clip on the first update of a batch (ratio 1, advantage 1): the gradient OpenRLHF's PolicyLoss takes."""
    log_probs = trainer_log_probs(model, sample)
    ratio = torch.exp(log_probs - log_probs.detach())
    surrogate = torch.min(ratio, ratio.clamp(1 - PPO_CLIP, 1 + PPO_CLIP))
    mask = sample.action_mask.float()
    return -(surrogate * mask).sum() / mask.sum()


# path -> (loss, whether the vision tower is trained): recipes/sft_7b.yaml freezes it, recipes/rl_7b.sh trains it
PATHS = {"sft": (sft_loss, False), "rl": (rl_loss, True)}


@dataclass(frozen=True)
class FlopModel:
    """The model's shapes that its FLOPs depend on (see the module docstring for the formula)."""

    decoder_weights: int
    head_weights: int
    vit_weights: int
    merger_weights: int
    layers: int
    q_dim: int
    vit_dim: int
    vit_depth: int
    full_attention_blocks: int
    window: int  # side of an attention window, in merged tokens
    merge: int

    @classmethod
    def of(cls, model) -> "FlopModel":
        def weights(module) -> int:
            return sum(m.weight.numel() for m in module.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv3d)))

        visual, text, vision = model.model.visual, model.config.text_config, model.config.vision_config
        merger = weights(visual.merger)
        return cls(decoder_weights=weights(model.model.language_model), head_weights=weights(model.lm_head),
                   vit_weights=weights(visual) - merger, merger_weights=merger, layers=text.num_hidden_layers,
                   q_dim=text.num_attention_heads * (text.hidden_size // text.num_attention_heads),
                   vit_dim=vision.hidden_size, vit_depth=vision.depth,
                   full_attention_blocks=len(vision.fullatt_block_indexes),
                   window=vision.window_size // vision.spatial_merge_size // vision.patch_size,
                   merge=vision.spatial_merge_size)

    def language(self, tokens: int, head_positions: int) -> float:
        return (2.0 * self.decoder_weights * tokens + 2.0 * self.head_weights * head_positions
                + 2.0 * self.layers * tokens ** 2 * self.q_dim)

    def vision(self, grids: list[tuple[int, int, int]]) -> float:
        patches = sum(t * h * w for t, h, w in grids)
        full = sum(t * (h * w) ** 2 for t, h, w in grids)
        windowed = sum(t * self._window_pairs(h // self.merge, w // self.merge) for t, h, w in grids)
        pairs = self.full_attention_blocks * full + (self.vit_depth - self.full_attention_blocks) * windowed
        return (2.0 * self.vit_weights * patches + 2.0 * self.merger_weights * patches / self.merge ** 2
                + 4.0 * self.vit_dim * pairs)

    def _window_pairs(self, rows: int, cols: int) -> int:
        """Sum of squared window sizes (in patches) of one frame of rows x cols merged tokens."""
        def squares(n: int) -> int:
            return sum(min(self.window, n - i) ** 2 for i in range(0, n, self.window))
        return self.merge ** 4 * squares(rows) * squares(cols)

    def step(self, sample: Sample, train_vision: bool, backward: bool = True) -> float:
        factor = 3.0 if backward else 1.0
        return (factor * self.language(sample.tokens, sample.head_positions)
                + (factor if train_vision else 1.0) * self.vision(sample.grids))


class Device:
    """Synchronisation and peak memory for the device the model runs on."""

    def __init__(self, name: str):
        self.torch = torch.device(name)
        self.cuda = self.torch.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float:
        """CUDA: peak allocated since the last reset. CPU: the process's peak resident set so far (all phases)."""
        if self.cuda:
            return torch.cuda.max_memory_allocated() / 2 ** 30
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux

    def describe(self) -> dict:
        if self.cuda:
            props = torch.cuda.get_device_properties(self.torch)
            return {"name": torch.cuda.get_device_name(self.torch), "cuda": torch.version.cuda,
                    "memory_gib": round(props.total_memory / 2 ** 30, 1),
                    "peak_memory": "torch.cuda.max_memory_allocated per phase"}
        if self.torch.type == "meta":
            return {"name": "meta device (shapes only: nothing runs)"}
        return {"name": f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
                "load_avg": os.getloadavg(), "peak_memory": "process peak RSS so far (cumulative over phases)"}

    def free(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()


def peak_tflops(device: Device, override: float | None) -> tuple[float | None, str]:
    if override is not None:
        return override, "--peak-tflops"
    if device.cuda:
        name = torch.cuda.get_device_name(device.torch)
        for key, value in PEAK_BF16_TFLOPS:
            if key in name:
                return value, f"table entry {key!r}"
        return None, f"{name!r} is not in PEAK_BF16_TFLOPS: pass --peak-tflops for MFU"
    return None, "no CUDA device: pass --peak-tflops for MFU"


def timed(device: Device, fn: Callable[[], None]) -> float:
    device.sync()
    start = time.perf_counter()
    fn()
    device.sync()
    return time.perf_counter() - start


def out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def training_phases(model, sample: Sample, loss_fn, flops: float, device: Device, a) -> dict:
    """Training steps (warm-up steps, then the median of the timed ones): forward+backward, then, with AdamW (fused
    on CUDA; the first step allocates its states), the optimizer step and zero_grad timed apart. Peak memory covers
    whole steps. If the optimizer's states do not fit, forward+backward is measured again without them."""
    optimizer = None
    if a.optimizer == "adamw":
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6, fused=device.cuda)
    try:
        return _steps(model, sample, loss_fn, flops, device, a, optimizer)
    except RuntimeError as e:
        if not out_of_memory(e):
            raise
        error = {"error": f"out of memory: {str(e).splitlines()[0]}"}
    finally:
        model.zero_grad(set_to_none=True)
        del optimizer
        device.free()
    if a.optimizer == "none":
        return {"forward_backward": error}
    try:
        return {**_steps(model, sample, loss_fn, flops, device, a, None), "optimizer": error}
    except RuntimeError as e:
        if not out_of_memory(e):
            raise
        return {"forward_backward": {"error": f"out of memory: {str(e).splitlines()[0]}"}, "optimizer": error}
    finally:
        model.zero_grad(set_to_none=True)
        device.free()


def _steps(model, sample: Sample, loss_fn, flops: float, device: Device, a, optimizer) -> dict:
    device.reset_peak()
    forward_backward, optimizer_step = [], []
    for _ in range(a.warmup + a.steps):
        forward_backward.append(timed(device, lambda: loss_fn(model, sample).backward()))
        if optimizer is None:
            model.zero_grad(set_to_none=True)
        else:
            optimizer_step.append(timed(device, lambda: (optimizer.step(), optimizer.zero_grad(set_to_none=True))))
    peak = round(device.peak_gib(), 2)
    result = {"forward_backward": {**rate(sample.tokens, statistics.median(forward_backward[a.warmup:]), flops,
                                          a.peak), "peak_memory_gib": peak}}
    if optimizer is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        result["optimizer"] = {"seconds": round(statistics.median(optimizer_step[a.warmup:]), 4),
                               "trainable_parameters": sum(p.numel() for p in params), "peak_memory_gib": peak}
    return result


def significant(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def rate(tokens: int, seconds: float, flops: float, peak: float | None) -> dict:
    achieved = flops / seconds / 1e12
    return {"seconds": round(seconds, 4), "tokens_per_s": round(tokens / seconds, 1),
            "samples_per_hour": round(3600 / seconds), "model_tflop": significant(flops / 1e12),
            "tflops": significant(achieved), "mfu": None if peak is None else significant(achieved / peak, 3)}


@torch.no_grad()
def logprob_phase(model, sample: Sample, flops: float, device: Device, a) -> dict:
    """The experience maker's log-prob forward (no gradients), timed like the training phases."""
    model.eval()
    device.reset_peak()
    times = [timed(device, lambda: trainer_log_probs(model, sample)) for _ in range(a.warmup + a.steps)]
    result = rate(sample.tokens, statistics.median(times[a.warmup:]), flops, a.peak)
    result["peak_memory_gib"] = round(device.peak_gib(), 2)
    return result


@torch.no_grad()
def logprob_noise(model, sample: Sample, attn: str, device: Device) -> dict:
    """|bf16 - fp32| of the trainer's action log-probs on the same weights (bf16 parameters upcast exactly; buffers
    such as the rotary frequencies stay as built). fp32 runs with SDPA: flash-attn has no fp32 kernels."""
    model.eval()
    low = trainer_log_probs(model, sample)
    try:
        cast_parameters(model, torch.float32)
        if attn != "sdpa":
            model.set_attn_implementation("sdpa")
        high = trainer_log_probs(model, sample)
    except RuntimeError as e:
        if not out_of_memory(e):
            raise
        return {"error": f"out of memory in the fp32 forward: {str(e).splitlines()[0]}"}
    finally:
        cast_parameters(model, torch.bfloat16)
        if attn != "sdpa":
            model.set_attn_implementation(attn)
        device.free()
    trained = sample.action_mask.bool()
    diff = (low - high).abs()[trained].double()
    return {"action_tokens": diff.numel(), "max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
            "p99_abs": float(diff.quantile(0.99)), "mean_fp32_logprob": float(high[trained].mean())}


def cast_parameters(model, dtype: torch.dtype) -> None:
    """Parameters only (`model.to` would also cast the fp32 rotary buffers, changing the bf16 model)."""
    for p in model.parameters():
        p.data = p.data.to(dtype)


def build_model(config, device: Device, attn: str):
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    with device.torch:  # initialised where it runs: a 7B model is never materialised on the CPU
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16,
                                                                   attn_implementation=attn)
    model.config.use_cache = model.config.text_config.use_cache = False
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def progress(name: str, entry: dict) -> None:
    print(f"  {name}: {json.dumps(entry)}", flush=True)


def table(results: dict) -> str:
    head = f"{'phase':<22}{'tokens':>8}{'seconds':>10}{'tokens/s':>11}{'samples/h':>11}{'TFLOP/s':>10}" \
           f"{'MFU':>8}{'peak GiB':>10}"
    lines = [head, "-" * len(head)]

    def row(name: str, entry: dict, tokens: int | str) -> None:
        if "error" in entry:
            lines.append(f"{name:<22}{tokens:>8}  {entry['error'][:70]}")
            return
        mfu = "-" if entry.get("mfu") is None else f"{entry['mfu']:.1%}"
        lines.append(f"{name:<22}{tokens:>8}{entry['seconds']:>10.3f}{entry.get('tokens_per_s', '-'):>11}"
                     f"{entry.get('samples_per_hour', '-'):>11}{entry.get('tflops', '-'):>10}{mfu:>8}"
                     f"{entry['peak_memory_gib']:>10.2f}")

    for path, phases in results["phases"].items():
        tokens = results["samples"][path.split("_")[0]]["tokens"]
        if "forward_backward" in phases:
            row(f"{path} fwd+bwd", phases["forward_backward"], tokens)
        if "optimizer" in phases:
            row(f"{path} AdamW step", phases["optimizer"], "")
        if "forward" in phases:
            row(f"{path} forward", phases["forward"], tokens)
    for path, reason in results["skipped"].items():
        lines.append(f"{path}: skipped: {reason}")
    noise = results["logprob_noise"]
    lines.append("bf16 vs fp32 trainer log-probs: " + (noise["error"] if "error" in noise else (
        f"max |d| {noise['max_abs']:.2e}, mean |d| {noise['mean_abs']:.2e}, p99 {noise['p99_abs']:.2e} over the "
        f"{noise['action_tokens']} action tokens of the rl sample")))
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="7b", choices=["7b", "3b"], help="published Qwen2.5-VL shapes")
    ap.add_argument("--tiny", action="store_true", help="the tiny test model and demo budgets (default device: cpu)")
    ap.add_argument("--device", default=None, help="cuda (default) or cpu (default with --tiny)")
    ap.add_argument("--optimizer", default="adamw", choices=["adamw", "none"])
    ap.add_argument("--paths", default="sft,rl", help="comma-separated subset of sft,rl")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per phase (the median is reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps before them")
    ap.add_argument("--peak-tflops", type=float, default=None, dest="peak_override",
                    help="peak bf16 dense TFLOP/s of the device for MFU (default: looked up by device name)")
    ap.add_argument("--flops-only", action="store_true",
                    help="build the samples and count each phase's model FLOPs on the meta device; no timing")
    ap.add_argument("--out", default="out/bench/gpu_cost.json")
    a = ap.parse_args(argv)
    a.device = "meta" if a.flops_only else a.device or ("cpu" if a.tiny else "cuda")
    a.paths = [p.strip() for p in a.paths.split(",") if p.strip()]
    if not a.paths or set(a.paths) - {"sft", "rl"}:
        ap.error(f"--paths {','.join(a.paths)!r}: give a comma-separated subset of sft,rl")
    if a.steps < 1 or a.warmup < 0:
        ap.error("--steps must be >= 1 and --warmup >= 0")
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("no CUDA device here: run on a GPU machine, or use --tiny (CPU)")
    return a


def samples_for(a, tokenizer) -> tuple[dict[str, Sample], dict[str, str]]:
    """The rl and (if asked for) sft samples at the paper's budgets (with --tiny: the demo budgets the tiny recipes
    use), and the paths that cannot run here with the reason: transformers < 5.18 returns an all-zero assistant mask
    for the paper-size SFT sample, which the SFT collator refuses exactly as SFT training would."""
    if a.tiny:
        sft_args, sft_media, rl_media = demo_script_arguments(), DemoMedia(), DemoMedia()
    else:
        sft_args = SFTScriptArguments(budget_preset="paper_sft")
        sft_media = DemoMedia(budgets=sft_args.budgets(), scale=PAPER_SCALE)
        rl_media = DemoMedia(budgets=RolloutConfig().budgets(), scale=PAPER_SCALE)
    samples, skipped = {}, {}
    with tempfile.TemporaryDirectory() as work:
        samples["rl"] = rl_sample(configure_processor(build_processor(tokenizer), rl_media.budgets), rl_media, work)
        if "sft" in a.paths:
            try:
                samples["sft"] = sft_sample(configure_processor(build_processor(tokenizer), sft_args.budgets()),
                                            sft_args, sft_media, work)
            except AllZeroAssistantMaskError:
                skipped["sft"] = ("the SFT collator refuses the sample: this transformers gives it an all-zero "
                                  "assistant mask; install transformers>=5.18 (SFT training needs it too)")
    return samples, skipped


def flop_counts(model, samples: dict[str, Sample], paths: list[str]) -> dict:
    """Model FLOPs of each phase (what `measure` divides by the step time), without running anything."""
    flops = FlopModel.of(model)
    phases = {}
    for path in paths:
        tflop = flops.step(samples[path], train_vision=PATHS[path][1]) / 1e12
        phases[path] = {"forward_backward": {"model_tflop": significant(tflop)}}
    if "rl" in paths:
        forward = flops.step(samples["rl"], train_vision=True, backward=False)
        phases["rl_logprob"] = {"forward": {"model_tflop": significant(forward / 1e12)}}
    return {"phases": phases}


def measure(model, samples: dict[str, Sample], device: Device, attn: str, a) -> dict:
    """Log-prob noise first (on the initial weights), then each path's training steps, then the log-prob forward."""
    flops = FlopModel.of(model)
    results: dict = {"logprob_noise": logprob_noise(model, samples["rl"], attn, device), "phases": {}}
    progress("bf16 vs fp32 log-probs", results["logprob_noise"])
    for path in a.paths:
        loss_fn, train_vision = PATHS[path]
        model.train()
        model.requires_grad_(True)
        if not train_vision:
            freeze_vision_tower(model)
        results["phases"][path] = training_phases(model, samples[path], loss_fn,
                                                  flops.step(samples[path], train_vision), device, a)
        progress(path, results["phases"][path])
    if "rl" in a.paths:
        forward = flops.step(samples["rl"], train_vision=True, backward=False)
        results["phases"]["rl_logprob"] = {"forward": logprob_phase(model, samples["rl"], forward, device, a)}
        progress("rl_logprob", results["phases"]["rl_logprob"])
    return results


def main(argv: list[str] | None = None) -> dict:
    import transformers

    a = parse_args(argv)
    device = Device(a.device)
    a.peak, peak_source = peak_tflops(device, a.peak_override)
    attn = resolve_attn_implementation("flash_attention_2") if device.cuda else "sdpa"
    tokenizer = build_tokenizer()
    samples, skipped = samples_for(a, tokenizer)
    a.paths = [path for path in a.paths if path not in skipped]
    for path, reason in skipped.items():
        print(f"{path}: skipped: {reason}", file=sys.stderr)
    if Version(transformers.__version__) < Version("5.18"):
        print(f"note: transformers {transformers.__version__} < 5.18 places the SFT assistant mask wrongly when "
              "images are present: the sft loss scores other (and fewer) positions than training with 5.19 would",
              file=sys.stderr)
    model = build_model(tiny_config(tokenizer) if a.tiny else published_config(tokenizer, a.config), device, attn)
    results: dict = {
        "command": "python bench/gpu_cost.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "model": "tiny" if a.tiny else f"Qwen2.5-VL-{a.config.upper()} shapes, random weights",
        "device": device.describe(), "torch": torch.__version__, "transformers": transformers.__version__,
        "attn_implementation": attn, "dtype": "bfloat16", "gradient_checkpointing": True,
        "peak_tflops": a.peak, "peak_source": peak_source,
        "parameters": {"total": sum(p.numel() for p in model.parameters()),
                       "vision": sum(p.numel() for p in model.model.visual.parameters())},
        "samples": {name: s.describe() for name, s in samples.items()}, "skipped": skipped}
    print(f"{results['model']} on {results['device']['name']}, attention {attn}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}; samples: "
          + "; ".join(f"{k} {v['tokens']} tokens, {v['images']} images" for k, v in results["samples"].items()),
          flush=True)
    if a.flops_only:
        results.update(flop_counts(model, samples, a.paths))
        for path, phases in results["phases"].items():
            for phase, entry in phases.items():
                print(f"{path} {phase}: {entry['model_tflop']} model TFLOP per step")
    else:
        results.update(measure(model, {name: s.to(device.torch) for name, s in samples.items()}, device, attn, a))
        print(table(results))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {a.out}")
    return results


if __name__ == "__main__":
    main()

"""bench/gpu_cost.py: the `--tiny` run end to end on CPU (importing none of TRL, DeepSpeed, vLLM, flash-attn,
OpenRLHF), its FLOP formula against torch's FLOP counter, its SFT loss against TRL's, and its RL sample and
trainer forward against the real agent and OpenRLHF's own `Actor.forward`."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from types import SimpleNamespace

import pytest
import torch

from bench import gpu_cost
from open_r1_ext.demo_data import CHOICES, SCENARIOS, DemoMedia, demo_script_arguments
from pixel_reasoner.testing.tiny_qwen import build_processor, build_tokenizer

PEAK = 0.5  # TFLOP/s passed as --peak-tflops, so the MFU column is computed on CPU too
NOT_ON_THE_GPU_MACHINE = {"trl", "deepspeed", "vllm", "flash_attn", "openrlhf", "ray"}  # the script must not need them


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def rl_sample(tokenizer):
    media = DemoMedia()
    with tempfile.TemporaryDirectory() as work:
        return gpu_cost.rl_sample(gpu_cost.configure_processor(build_processor(tokenizer), media.budgets), media, work)


@pytest.fixture(scope="module")
def sft_sample(tokenizer):
    media, args = DemoMedia(), demo_script_arguments()
    with tempfile.TemporaryDirectory() as work:
        return gpu_cost.sft_sample(gpu_cost.configure_processor(build_processor(tokenizer), args.budgets()), args,
                                   media, work)


def test_tiny_run_prints_and_writes_every_measurement(repo_root, tmp_path):
    out = tmp_path / "gpu_cost.json"
    env = dict(os.environ, PYTHONPATH=str(repo_root), TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-X", "importtime", "bench/gpu_cost.py", "--tiny", "--steps", "1",
                           "--warmup", "0", "--peak-tflops", str(PEAK), "--out", str(out)], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "torch" in imported and not imported & NOT_ON_THE_GPU_MACHINE
    for row in ("sft fwd+bwd", "sft AdamW step", "rl fwd+bwd", "rl AdamW step", "rl_logprob forward",
                "bf16 vs fp32 trainer log-probs"):
        assert row in proc.stdout
    result = json.loads(out.read_text())
    assert result["attn_implementation"] == "sdpa" and result["peak_source"] == "--peak-tflops"
    sft, rl = result["samples"]["sft"], result["samples"]["rl"]
    assert sft["images"] == rl["images"] == 3 and sft["trained_tokens"] > 0 and rl["action_tokens"] > 0
    total, vision = result["parameters"]["total"], result["parameters"]["vision"]
    for path, trainable in (("sft", total - vision), ("rl", total)):
        step = result["phases"][path]["forward_backward"]
        assert step["tokens_per_s"] == pytest.approx(result["samples"][path]["tokens"] / step["seconds"], rel=1e-3)
        assert step["tflops"] == pytest.approx(step["model_tflop"] / step["seconds"], rel=2e-3)
        assert step["mfu"] == pytest.approx(step["tflops"] / PEAK, rel=1e-2) and step["peak_memory_gib"] > 0
        assert result["phases"][path]["optimizer"]["trainable_parameters"] == trainable  # frozen vision in SFT only
        assert result["phases"][path]["optimizer"]["seconds"] > 0
    # the log-prob forward does a third of a trained step's work
    forward = result["phases"]["rl_logprob"]["forward"]["model_tflop"]
    assert forward == pytest.approx(result["phases"]["rl"]["forward_backward"]["model_tflop"] / 3, rel=0.01)
    noise = result["logprob_noise"]
    assert noise["action_tokens"] == rl["action_tokens"]
    assert 1e-5 < noise["max_abs"] < 5e-2  # bf16 rounding: neither zero (no fp32 run) nor a different model


def test_paper_size_samples_fill_the_budgets(tmp_path):
    """--flops-only builds the 7B samples on CPU: SFT an ~8k-token sample whose original fills the SFT budget
    (5120 tokens) plus two crops; RL the same episode at the RL budgets (originals <= 2000, crops <= 1000 tokens)."""
    result = gpu_cost.main(["--flops-only", "--out", str(tmp_path / "flops.json")])
    assert result["device"]["name"].startswith("meta") and result["parameters"]["total"] == 8_292_166_656
    sft, rl = result["samples"]["sft"], result["samples"]["rl"]
    assert 8000 <= sft["tokens"] <= 8600 and sft["images"] == rl["images"] == 3
    assert result["phases"]["sft"]["forward_backward"]["model_tflop"] > result["phases"]["rl"]["forward_backward"][
        "model_tflop"] > 0
    tokens = {path: [t * h * w // 4 for t, h, w in result["samples"][path]["grids"]] for path in ("sft", "rl")}
    assert 5000 < tokens["sft"][0] <= 5120 and tokens["sft"][1:] == [tokens["sft"][1]] * 2
    assert 1900 < tokens["rl"][0] <= 2000 and all(900 < t <= 1000 for t in tokens["rl"][1:])


@pytest.fixture(scope="module")
def eager_model(tokenizer):
    """The tiny model in fp32 with eager attention: every FLOP is a matmul torch's counter sees."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    return Qwen2_5_VLForConditionalGeneration._from_config(gpu_cost.tiny_config(tokenizer), dtype=torch.float32,
                                                           attn_implementation="eager")


def test_flop_model_counts_what_torch_counts(eager_model, rl_sample, sft_sample):
    """Eager attention computes the full T x T scores (the masked half too); the formula counts the causal half, so
    the two differ by exactly that half. The rl forward scores every position, the sft loss only trained ones;
    backward with the vision tower frozen is exactly twice the language model's forward."""
    from torch.utils.flop_counter import FlopCounterMode

    flops = gpu_cost.FlopModel.of(eager_model)

    def masked_half(sample) -> int:
        return 2 * flops.layers * sample.tokens ** 2 * flops.q_dim

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        gpu_cost.trainer_log_probs(eager_model, rl_sample)
    assert counter.get_total_flops() == flops.step(rl_sample, train_vision=True, backward=False) + masked_half(
        rl_sample)
    eager_model.requires_grad_(True)
    gpu_cost.freeze_vision_tower(eager_model)
    with FlopCounterMode(display=False) as counter:
        gpu_cost.sft_loss(eager_model, sft_sample).backward()
    eager_model.zero_grad(set_to_none=True)
    assert sft_sample.head_positions < sft_sample.tokens
    assert counter.get_total_flops() == flops.step(sft_sample, train_vision=False) + 3 * masked_half(sft_sample)


def test_sft_loss_is_the_trl_fused_head_loss(eager_model, sft_sample):
    """TRL 1.16's SFTTrainer loss (its fused LM head) and the model's own causal-LM loss, on the same batch."""
    from trl.trainer.utils import add_fused_lm_head

    with torch.no_grad():
        ours = gpu_cost.sft_loss(eager_model, sft_sample)
        assert torch.allclose(ours, eager_model(**sft_sample.inputs).loss, rtol=1e-5)
        add_fused_lm_head(eager_model)
        assert torch.allclose(ours, eager_model(**sft_sample.inputs, fused_lm_head=True).loss, rtol=1e-5)


def test_rl_sample_and_forward_are_what_the_agent_and_openrlhf_train_on(rl_sample, repo_root, tmp_path):
    """The same episode through the real agent (a scripted engine in place of vLLM) and OpenRLHF's conversion to an
    `Experience`: identical tokens, action mask and pixels; OpenRLHF's `Actor.forward` gives identical log-probs."""
    from transformers import AutoProcessor

    from openrlhf_ext.agent import AgentExecutor
    from openrlhf_ext.labels import TaskLabel
    from openrlhf_ext.parity import experience_from_response, load_actor, mm_inputs, training_log_probs
    from openrlhf_ext.rollout_config import RolloutConfig
    from pixel_reasoner.config import budget_fields
    from pixel_reasoner.episode import Episode
    from pixel_reasoner.protocol.chatml import render_messages
    from pixel_reasoner.testing.scripted_engine import ScriptedEngine
    from pixel_reasoner.testing.tiny_qwen import cached_build

    media = DemoMedia()
    episode, question, turns, answer = SCENARIOS[gpu_cost.SCENARIO](gpu_cost.PROFILE, str(tmp_path), media)
    texts = []
    for turn in turns:
        texts.append(turn.text(episode))
        episode.step(texts[-1])
    image = str(tmp_path / "input.png")
    episode.images[0].source.load().save(image)  # lossless: the agent decodes the same pixels
    model_dir = cached_build(str(repo_root / ".cache" / "tiny_models"), dtype="bfloat16")
    processor = gpu_cost.configure_processor(AutoProcessor.from_pretrained(model_dir), media.budgets)
    config = RolloutConfig(**budget_fields(media.budgets), pixel_dtype="float32")  # as the fp32 sample it checks
    executor = AgentExecutor(config)
    label = TaskLabel(answer, "multiple_choice", tuple(CHOICES))
    prompt_episode = Episode(config.protocol(), images=[image], config=config.episode_config())
    prompt = render_messages(prompt_episode.prompt_messages(question, CHOICES), tools=config.protocol().tool_schemas(),
                             add_generation_prompt=True)
    params = SimpleNamespace(max_tokens=None, stop=None, logprobs=None, include_stop_str_in_output=False,
                             logit_bias=None)
    response = asyncio.run(executor.execute(prompt, label.to_json(), params, 4096, processor,
                                            ScriptedEngine(processor.tokenizer, texts), images=[image]))
    experience = experience_from_response(response, max_len=4096)
    assert torch.equal(experience.sequences, rl_sample.inputs["input_ids"])
    assert torch.equal(experience.action_mask, rl_sample.action_mask)
    trained_inputs = mm_inputs(experience)
    for key in ("pixel_values", "image_grid_thw"):
        assert torch.equal(trained_inputs[key], rl_sample.inputs[key])
    actor = load_actor(model_dir, "float32")
    expected = training_log_probs(actor, experience)
    with torch.no_grad():
        assert torch.equal(gpu_cost.trainer_log_probs(actor.model, rl_sample), expected)


def test_out_of_memory_with_adamw_is_reported_and_forward_backward_measured_without(eager_model, rl_sample):
    calls = []

    def loss_running_out_of_memory_once(model, sample):
        calls.append(model)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return gpu_cost.rl_loss(model, sample)

    a = SimpleNamespace(optimizer="adamw", warmup=0, steps=1, peak=None)
    result = gpu_cost.training_phases(eager_model, rl_sample, loss_running_out_of_memory_once, 1e9,
                                      gpu_cost.Device("cpu"), a)
    assert result["optimizer"] == {"error": "out of memory: CUDA out of memory. Tried to allocate 2.00 GiB"}
    assert len(calls) == 2 and result["forward_backward"]["seconds"] > 0
    assert all(p.grad is None for p in eager_model.parameters())


def test_a_refused_sft_sample_skips_the_sft_path_with_the_reason(monkeypatch, tmp_path):
    """transformers < 5.18 (the GPU machine's 5.17) gives the paper-size SFT sample an all-zero assistant mask; the
    collator refuses it, and the script goes on with the rl path instead of failing."""
    from open_r1_ext.collator import AllZeroAssistantMaskError

    def refused(*args, **kwargs):
        raise AllZeroAssistantMaskError("the processor's assistant mask is all zero")

    monkeypatch.setattr(gpu_cost, "sft_sample", refused)
    result = gpu_cost.main(["--tiny", "--flops-only", "--out", str(tmp_path / "flops.json")])
    assert "install transformers>=5.18" in result["skipped"]["sft"]
    assert set(result["phases"]) == {"rl", "rl_logprob"} and set(result["samples"]) == {"rl"}

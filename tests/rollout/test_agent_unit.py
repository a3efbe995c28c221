"""The agent's own orchestration, without an engine: set-up checks, per-sample sampling parameters, and that
operations of concurrent samples run off the event loop.

Generation itself is tested with real vLLM in test_vllm_rollout.py. Here a scripted engine answers each turn
with fixed text (as vLLM would return it: token ids + text), so that what is tested is the agent around it."""
from __future__ import annotations

import asyncio
import copy
import pickle
import threading

import pytest
import torch
from vllm import SamplingParams

from openrlhf_ext.agent import AgentExecutor, AgentRuntime, check_compatibility
from openrlhf_ext.labels import TaskLabel
from openrlhf_ext.rollout_config import RolloutConfig
from pixel_reasoner import settings
from pixel_reasoner.episode import Episode
from pixel_reasoner.errors import ConfigError, DataError
from pixel_reasoner.protocol.chatml import render_messages
from pixel_reasoner.testing.media import save_scene, write_video
from pixel_reasoner.testing.scripted_engine import ScriptedEngine

SMALL = {"budget_preset": "paper_rl", "original_max_pixels": 64 * 784, "crop_max_pixels": 48 * 784,
         "frame_max_pixels": 16 * 784}  # within the tiny model's processor (<= 256 visual tokens per image)


def prompt_for(config: RolloutConfig, images=(), video=None) -> str:
    """The prompt the converter writes for these media (as the core renders it)."""
    episode = Episode(config.protocol(), images=images, video=video, config=config.episode_config())
    return render_messages(episode.prompt_messages("How many?"), tools=config.protocol().tool_schemas(),
                           add_generation_prompt=True)


def test_processor_and_engine_limits_are_checked(tiny_processor):
    with pytest.raises(ConfigError, match=r"budgets.original = \[200704, 1568000\] pixels is outside the processor's"):
        check_compatibility(RolloutConfig(), tiny_processor)  # 7B budgets exceed the tiny processor's 256 tokens
    small = settings.build(RolloutConfig, SMALL)
    check_compatibility(small, tiny_processor, {"limit_mm_per_prompt": {"image": 16}})
    with pytest.raises(ConfigError, match="set --data.max_images_per_prompt 16"):
        check_compatibility(small, tiny_processor, {"limit_mm_per_prompt": {"image": 8}})
    narrow_video = copy.deepcopy(tiny_processor)  # a prompt video's frames go through the video processor
    narrow_video.video_processor.size = {"shortest_edge": 4 * 784, "longest_edge": 8 * 784}
    with pytest.raises(ConfigError, match=r"budgets.frame = \[3136, 12544\] pixels is outside the processor's "
                                          r"video_processor \[3136, 6272\]"):
        check_compatibility(small, narrow_video)


def test_turns_stop_after_a_tool_call_without_touching_the_callers_params(tiny_processor):
    runtime = AgentRuntime(RolloutConfig(), tiny_processor)
    params = SamplingParams(max_tokens=None, stop=["###"], logprobs=1)
    turn = runtime.turn_sampling_params(params)
    assert turn.stop == ["###", "</tool_call>"] and turn.include_stop_str_in_output and turn.logprobs == 1
    assert params.stop == ["###"] and not params.include_stop_str_in_output


def test_bad_samples_fail_before_generation(tmp_path, tiny_processor):
    executor = AgentExecutor(settings.build(RolloutConfig, SMALL))
    image = save_scene(f"{tmp_path}/a.png", 200, 150)
    prompt = prompt_for(executor.config, [image])
    run = lambda p, lab, imgs: asyncio.run(executor.execute(p, lab, SamplingParams(), 1024, tiny_processor, None,
                                                             images=imgs))
    with pytest.raises(DataError, match=r"the prompt has 1 image and 0 video placeholder\(s\) but the sample has 2 "
                                        r"image\(s\) and 0 video"):
        run(prompt, "3", [image, image])
    with pytest.raises(DataError, match="label of q7: answer 'E' is neither a letter A-B"):
        run(prompt, TaskLabel("E", "multiple_choice", ("x", "y"), qid="q7").to_json(), [image])
    with pytest.raises(DataError, match="image file not found"):
        run(prompt, "3", [f"{tmp_path}/missing.png"])


def test_a_video_file_is_a_video_of_its_sampled_frames_at_the_frame_budget(tmp_path, tiny_processor):
    runtime = AgentRuntime(settings.build(RolloutConfig, SMALL), tiny_processor)
    clip = write_video(f"{tmp_path}/clip.mp4", num_frames=40, width=160, height=120)
    episode = runtime.new_episode([clip], TaskLabel("x", is_video=True))
    frames = episode.video_frames()
    assert len(frames) == 16 and episode.video is not None and episode.input_images() == []
    assert all(f.width * f.height <= 16 * 784 for f in frames)
    assert runtime.new_episode(clip, TaskLabel("x")).video is not None  # recognised by extension alone


def test_operations_of_concurrent_samples_run_off_the_event_loop(tmp_path, monkeypatch, tiny_processor):
    """Eight samples' operations wait for each other at a barrier: they all pass only if they run concurrently
    in threads (on the event loop the first would block every other sample; asyncio's default pool has only
    cpu_count + 4 threads, 6 on 2 cores)."""
    (tmp_path / "barrier_op.py").write_text('''
import threading
from dataclasses import dataclass
from pixel_reasoner.ops import register_operation
from pixel_reasoner.ops.base import OperationResult, VisualOperation

BARRIER = threading.Barrier(8, timeout=30)

@dataclass(frozen=True)
class BarrierSettings:
    pass

@register_operation
class WaitForAll(VisualOperation):
    name = "wait_for_all_test"
    settings_class = BarrierSettings
    observation_template = "All {n} operations ran at once."

    def schema(self, tool_name, settings):
        return {"type": "function", "function": {"name": tool_name, "description": "Wait.", "parameters": {}}}

    def execute(self, arguments, context, settings, tool_name):
        BARRIER.wait()
        return OperationResult([], {"n": BARRIER.parties})
''')
    monkeypatch.syspath_prepend(str(tmp_path))
    config = settings.build(RolloutConfig, {**SMALL, "operation_modules": ["barrier_op"],
                                      "extra_operations": ["wait_for_all_test"], "operation_threads": 8,
                                      "max_turn_tokens": 100})
    executor = AgentExecutor(config)
    images = [save_scene(f"{tmp_path}/{k}.png", 120 + 8 * k, 100, seed=k) for k in range(8)]
    engine = ScriptedEngine(tiny_processor.tokenizer, [
        '<tool_call>\n{"name": "wait_for_all_test", "arguments": {}}\n</tool_call>', "So \\boxed{3}."])

    async def run_all():
        return await asyncio.gather(*[executor.execute(prompt_for(config, [image]), "3",
                                                       SamplingParams(), 2048, tiny_processor, engine,
                                                       images=[image]) for image in images])

    responses = asyncio.run(run_all())
    for response in responses:
        logs = response["extra_logs"]
        assert (logs["num_operations"], logs["num_operation_errors"], logs["correct"]) == (1, 0, 1)
        assert response["reward"] == 1.0
        assert "All 8 operations ran at once." in tiny_processor.tokenizer.decode(response["observation_tokens"])
    assert engine.max_tokens == [100] * 16  # each turn capped at max_turn_tokens, not all of max_length


class ThreadRecordingProcessor:
    """The real processor, noting which thread runs each call that carries images."""

    def __init__(self, processor):
        self._processor = processor
        self.image_call_threads: list[str] = []

    def __getattr__(self, name):
        return getattr(self._processor, name)

    def __call__(self, *args, **kwargs):
        if kwargs.get("images"):
            self.image_call_threads.append(threading.current_thread().name)
        return self._processor(*args, **kwargs)


def test_the_processor_runs_in_worker_threads_and_its_tokens_are_used(tmp_path, tiny_processor):
    config = settings.build(RolloutConfig, SMALL)
    executor = AgentExecutor(config)
    image = save_scene(f"{tmp_path}/a.png", 300, 200)
    processor = ThreadRecordingProcessor(tiny_processor)
    engine = ScriptedEngine(tiny_processor.tokenizer, [
        '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1, 0.1, 0.6, 0.7], '
        '"target_image": 1}}\n</tool_call>', "So \\boxed{3}."])
    response = asyncio.run(executor.execute(prompt_for(config, [image]), "3", SamplingParams(),
                                            2048, processor, engine, images=[image]))
    assert len(processor.image_call_threads) == 2  # the prompt and the crop, each processed once
    assert all(name.startswith("pixel-reasoner-op") for name in processor.image_call_threads)
    episode = executor.runtime.new_episode([image], TaskLabel("3"))
    episode.input_images()
    crop = episode.step(engine.turns[0]).observation.images[0]
    rows = response["mm_train_inputs"]["pixel_values"]
    expected = tiny_processor.image_processor(images=[crop], return_tensors="pt")["pixel_values"]
    assert rows.dtype == torch.bfloat16  # the default pixel_dtype: the actor's bf16, cast once here
    assert torch.equal(rows[-len(expected):], expected.to(torch.bfloat16)) and response["reward"] == 1.0


def test_vision_tokens_are_never_sampled(tiny_processor):
    """An `<|image_pad|>` in an action would be an image placeholder without an image (the run would crash)."""
    runtime = AgentRuntime(RolloutConfig(), tiny_processor)
    params = runtime.turn_sampling_params(SamplingParams(logit_bias={7: 1.5}))
    vision = tiny_processor.tokenizer.convert_tokens_to_ids(
        ["<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"])
    assert {t: params.logit_bias[t] for t in vision} == {t: -100.0 for t in vision}
    assert params.logit_bias[7] == 1.5 and len(params.logit_bias) == 6  # the caller's bias is kept


def test_the_samples_of_a_query_share_one_prompt_tensor_which_pickles_once(tmp_path, tiny_processor):
    config = settings.build(RolloutConfig, {**SMALL, "pixel_dtype": "float32"})
    executor = AgentExecutor(config)
    image = save_scene(f"{tmp_path}/a.png", 300, 200)
    engine = ScriptedEngine(tiny_processor.tokenizer, ["So \\boxed{3}."])

    async def run_all():
        return await asyncio.gather(*[executor.execute(prompt_for(config, [image]), "3", SamplingParams(), 2048,
                                                       tiny_processor, engine, images=[image]) for _ in range(4)])

    responses = asyncio.run(run_all())
    pixels = [r["mm_train_inputs"]["pixel_values"] for r in responses]
    assert all(p is pixels[0] for p in pixels)  # processed once per query, not once per sample
    stats = executor.runtime.cache.stats()  # the decoded image, its resized copy, the processed prompt: once each
    assert stats["misses"] == stats["entries"] == 3 and stats["hits"] >= 3
    together, apart = len(pickle.dumps(responses)), sum(len(pickle.dumps(r)) for r in responses)
    one = pixels[0].numel() * pixels[0].element_size()
    assert apart - together > 2.5 * one  # Ray ships the group's shared tensor once, not 4 times


def test_an_observation_that_exactly_fills_max_length_ends_the_trajectory_as_truncated(tmp_path, tiny_processor):
    config = settings.build(RolloutConfig, SMALL)
    image = save_scene(f"{tmp_path}/a.png", 300, 200)
    call = ('<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1, 0.1, 0.6, 0.7], '
            '"target_image": 1}}\n</tool_call>')
    probe = AgentExecutor(config)
    full = asyncio.run(probe.execute(prompt_for(config, [image]), "3", SamplingParams(), 4096, tiny_processor,
                                     ScriptedEngine(tiny_processor.tokenizer, [call, "So \\boxed{3}."]), images=[image]))
    (_, call_end), (exactly, answer_end) = full["action_ranges"]  # the observation ends where the answer starts
    for max_length, truncated in ((exactly, 1.0), (answer_end, 0.0)):
        response = asyncio.run(AgentExecutor(config).execute(
            prompt_for(config, [image]), "3", SamplingParams(), max_length, tiny_processor,
            ScriptedEngine(tiny_processor.tokenizer, [call, "So \\boxed{3}."]), images=[image]))
        assert response["extra_logs"]["truncated"] == truncated and response["truncated"] == bool(truncated)
        assert response["reward"] == (0.0 if truncated else 1.0)
        assert len(response["observation_tokens"]) == (call_end if truncated else answer_end) <= max_length


@pytest.mark.parametrize("reward_kind, expected", [("paper", 1.0), ("auto", 0.0)])
def test_the_paper_reward_reads_the_whole_trajectory(tmp_path, tiny_processor, reward_kind, expected):
    """`reward_kind: paper` is the official reward (the eval's paper protocol, one function): the last box anywhere
    in the trajectory counts and "15%" also accepts "15"; the lenient kinds read the final turn only. It runs in
    the agent's worker threads, where math-verify's alarms cannot be set (see pixel_reasoner.paper_scoring)."""
    config = settings.build(RolloutConfig, {**SMALL, "scoring": reward_kind})
    executor = AgentExecutor(config)
    image = save_scene(f"{tmp_path}/a.png", 300, 200)
    engine = ScriptedEngine(tiny_processor.tokenizer, [
        'It looks like \\boxed{15}. Let me check.\n<tool_call>\n{"name": "crop_image_normalized", "arguments": '
        '{"bbox_2d": [0.1, 0.1, 0.6, 0.7], "target_image": 1}}\n</tool_call>', "Yes, the share is fifteen percent."])
    label = TaskLabel(("15%",))
    response = asyncio.run(executor.execute(prompt_for(config, [image]), label.to_json(), SamplingParams(),
                                            2048, tiny_processor, engine, images=[image]))
    assert response["reward"] == expected and response["extra_logs"]["correct"] == expected

"""One video trajectory through the three stages: the SFT collator, the RL agent and the eval runner.

The same scripted turns (select frames 3 and 7, crop `target_image=2`, answer) on the same 16-frame video, with
the same pixel budgets: every stage must show the model the same observation texts ("Numbered 1 to 2"), the same
video tensors, the same selected frames as images and, for `target_image=2`, a crop of the second selected
frame (frame 7), not of raw frame 2. Frames are solid colours, so a crop's colour says which frame it came from.
"""
from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from transformers import AutoConfig

from openrlhf_ext.agent import AgentExecutor
from openrlhf_ext.labels import TaskLabel
from openrlhf_ext.rollout_config import RolloutConfig
from pixel_reasoner.config import PixelBudget, PixelBudgets, budget_fields
from pixel_reasoner.episode import Episode, EpisodeConfig
from pixel_reasoner.media import DecodedImageCache, VideoSource
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.protocol.chatml import render_messages
from pixel_reasoner.testing.media import frame_color

BUDGETS = PixelBudgets(PixelBudget.tokens(4, 64), PixelBudget.tokens(4, 48), PixelBudget.tokens(4, 16))
QUESTION, CHOICES = "What colour does the clip show in its middle?", ["red", "blue"]
TURNS = ['Let me look at two frames.\n<tool_call>\n{"name": "select_frames", "arguments": {"target_frames": [3, 7]}}'
         '\n</tool_call>',
         'Zoom into the second one.\n<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": '
         '[0.1, 0.2, 0.7, 0.9], "target_image": 2}}\n</tool_call>',
         'It is red. \\boxed{A}']
ASSISTANT = "<|im_start|>assistant\n"
PADS = re.compile(r"(<\|(image|video)_pad\|>)+")


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("clip")
    paths = []
    for k in range(16):
        paths.append(str(root / f"frame{k:02d}.png"))
        Image.new("RGB", (160, 120), frame_color(k)).save(paths[-1])
    return paths


def episode(frames) -> Episode:
    return Episode("released", video=VideoSource(frame_paths=frames), config=EpisodeConfig(budgets=BUDGETS),
                   cache=DecodedImageCache(64 << 20))


def observations(text: str) -> list[str]:
    """The text each stage shows after each tool call (image and video placeholders as one marker)."""
    text = PADS.sub(lambda m: m.group(1), text)
    out = []
    for turn in TURNS[:-1]:
        start = text.index(turn) + len(turn)
        out.append(text[start:text.index(ASSISTANT, start) + len(ASSISTANT)])
    return out


def image_rows(pixel_values: torch.Tensor, grid: torch.Tensor) -> list[torch.Tensor]:
    return list(pixel_values.split(grid.prod(-1).tolist()))


@pytest.fixture(scope="module")
def sft(frames, tmp_path_factory, tiny_model_dir):
    """The trajectory the episode engine writes for SFT, collated as SFT trains on it."""
    from open_r1_ext.collator import TrajectoryCollator
    from open_r1_ext.data import Row
    from open_r1_ext.modeling import load_processor
    from open_r1_ext.samples import build_spec
    from pixel_reasoner.trajectory import Trajectory, messages_to_records

    root = str(tmp_path_factory.mktemp("sft"))
    ep = episode(frames)
    prompt = ep.prompt_messages(QUESTION, CHOICES)
    for turn in TURNS:
        ep.step(turn)
    messages = messages_to_records(prompt + ep.messages, f"{root}/media", root, "clip")
    traj = Trajectory(id="clip", messages=messages, profile="released", media=[messages[1]["content"][0]],
                      question=QUESTION, choices=CHOICES, answer="A")
    spec, problems, _notes = build_spec(Row(traj, "test", 0, root), None)
    assert not problems, problems
    processor = load_processor(tiny_model_dir, BUDGETS)
    tokens_per_second = AutoConfig.from_pretrained(tiny_model_dir).vision_config.tokens_per_second
    batch = TrajectoryCollator(processor, BUDGETS, tokens_per_second=tokens_per_second)([{"sample": spec.to_json()}])
    return SimpleNamespace(text=processor.tokenizer.decode(batch["input_ids"][0]), batch=batch)


class ScriptedEngine:
    """Answers assistant turn k with TURNS[k - 1], as vLLM returns it (ids + text, stop string kept)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.video_frames = []

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        self.video_frames.append(len((multi_modal_data or {}).get("video", [[[]]])[0][0]))
        text = TURNS[self.tokenizer.decode(prompt_token_ids).count(ASSISTANT) - 1]
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        output = SimpleNamespace(token_ids=ids, text=text, finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[output])


@pytest.fixture(scope="module")
def rl(frames, tiny_processor):
    """The RL agent on the prompt the converter writes for this video (one video part)."""
    config = RolloutConfig(**budget_fields(BUDGETS), pixel_dtype="float32")
    profile = get_profile("released")
    prompt = render_messages(episode(frames).prompt_messages(QUESTION, CHOICES), tools=profile.tool_schemas(),
                             add_generation_prompt=True)
    engine = ScriptedEngine(tiny_processor.tokenizer)
    label = TaskLabel("A", "multiple_choice", tuple(CHOICES), is_video=True)
    response = asyncio.run(AgentExecutor(config).execute(prompt, label.to_json(), SimpleNamespace(
        logprobs=None, stop=None, logit_bias=None, include_stop_str_in_output=False, max_tokens=None), 4096,
        tiny_processor, engine, images=frames))
    return SimpleNamespace(text=tiny_processor.tokenizer.decode(response["observation_tokens"]), response=response,
                           engine=engine)


@pytest.fixture(scope="module")
def eval_run(frames, tiny_processor):
    """The eval runner's trajectory, fed the same turns."""
    from eval.question import Question
    from eval.runner import GenerationResult, LiveTrajectory, RunnerSettings

    question = Question("clip", "mvbench", QUESTION, "A", video=VideoSource(frame_paths=frames), choices=CHOICES)
    settings = RunnerSettings(profile=get_profile("released"), config=EpisodeConfig(budgets=BUDGETS))
    live = LiveTrajectory(question, 0, settings, DecodedImageCache(64 << 20))
    for turn in TURNS:
        live.advance(GenerationResult(turn, len(turn) // 4, "stop"))
    assert live.termination == "answer"
    processed = tiny_processor.image_processor(images=live.images, return_tensors="pt")
    return SimpleNamespace(text=live.prompt, video=live.video, rows=image_rows(processed["pixel_values"],
                                                                               processed["image_grid_thw"]))


def test_the_three_stages_show_the_same_observation_texts(sft, rl, eval_run):
    texts = observations(sft.text)
    assert "Numbered 1 to 2)" in texts[0] and "<|video_pad|>" not in texts[0]
    assert observations(rl.text) == texts == observations(eval_run.text)
    assert rl.engine.video_frames == [16, 16, 16]  # vLLM got the whole video every turn


def test_the_three_stages_show_the_same_video_and_the_same_frame_for_target_image_k(sft, rl, eval_run, frames):
    mm = rl.response["mm_train_inputs"]
    assert torch.equal(mm["pixel_values_videos"], sft.batch["pixel_values_videos"])
    assert torch.equal(mm["video_grid_thw"], sft.batch["video_grid_thw"])
    assert [f.tobytes() for f in episode(frames).video_frames()] == [f.tobytes() for f in eval_run.video]
    rl_rows = image_rows(mm["pixel_values"], mm["image_grid_thw"])
    sft_rows = image_rows(sft.batch["pixel_values"], sft.batch["image_grid_thw"])
    assert len(rl_rows) == len(sft_rows) == len(eval_run.rows) == 3  # frames 3 and 7 as images 1 and 2, the crop
    for ours, theirs, evaluated in zip(rl_rows, sft_rows, eval_run.rows):
        assert torch.equal(ours, theirs) and torch.equal(ours, evaluated)
    crop = episode_crop(frames)
    assert crop.getpixel((crop.width // 2, crop.height // 2)) == frame_color(6)  # frame 7, i.e. target_image=2


def episode_crop(frames) -> Image.Image:
    ep = episode(frames)
    for turn in TURNS[:2]:
        result = ep.step(turn)
    return result.observation.images[0]


def test_sft_and_the_rl_trainer_give_the_conversation_the_same_reference_positions(sft, rl, tiny_model_dir):
    """Both trainers pass Qwen's reference M-RoPE positions for a video conversation (what vLLM uses; transformers
    5.19's own put the text after the video elsewhere): equal on the tokens the two sequences share."""
    from openrlhf_ext.patch_hooks import vlm_position_ids

    config = AutoConfig.from_pretrained(tiny_model_dir)
    ids = torch.tensor([rl.response["observation_tokens"]])
    mm = {k: v for k, v in rl.response["mm_train_inputs"].items()}
    rl_positions = vlm_position_ids(config, ids, torch.ones_like(ids), mm)
    sft_ids, sft_positions = sft.batch["input_ids"][0], sft.batch["position_ids"][:, 0]
    pairs = list(zip(ids[0].tolist(), sft_ids.tolist()))
    shared = next((i for i, (a, b) in enumerate(pairs) if a != b), len(pairs))
    assert shared > ids[0].tolist().index(config.video_token_id) + 100  # well past the video and the first turns
    assert torch.equal(rl_positions[:, 0, :shared], sft_positions[:, :shared])
    video_end = max(i for i, t in enumerate(ids[0].tolist()) if t == config.video_token_id)
    assert int(rl_positions[0, 0, video_end + 1]) == int(rl_positions[:, 0, :video_end + 1].max()) + 1

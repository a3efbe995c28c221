"""One visual representation from SFT to RL to eval (issue 16): what SFT trains on is what the other stages show.

One video trajectory, made by the episode engine as synthesis makes it and stored as SFT data, is read through
the SFT collator (chat template, images reloaded from disk and resized to their kind's budget) and checked against
the media themselves (`target_image=k` is the k-th *selected* frame); every other stage must then show exactly
the same `StageView`: text (observations included), video frames and images. Stages here: the eval runner (live
episode, incremental ChatML) and the RL agent (the converter's prompt record, the agent's token ids and the media
it hands vLLM). `tests/rollout/test_video_stages.py` compares the three stages' processor tensors as well.
"""
from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from pixel_reasoner.config import PixelBudget, PixelBudgets, budget_fields, to_dict
from pixel_reasoner.episode import Episode, EpisodeConfig
from pixel_reasoner.media import VideoSource, resize_region, resize_to_budget
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.testing.media import save_scene
from pixel_reasoner.trajectory import Trajectory, messages_to_records, write_trajectories

from eval.question import Question
from eval.records import PredictionWriter
from eval.runner import GenerationResult, RunnerSettings, run_trajectories

BUDGETS = PixelBudgets(PixelBudget.tokens(4, 64), PixelBudget.tokens(4, 32), PixelBudget.tokens(4, 16))
SELECTED = [3, 7, 11]
TARGET = 2  # crop the second selected frame: raw frame 7, not raw frame 2
QUESTION, CHOICES = "What happens in the middle of the clip?", ["a cat jumps", "a car stops", "nothing"]
TURNS = ["Let me look at three moments.\n<tool_call>\n{\"name\": \"select_frames\", \"arguments\": "
         "{\"target_frames\": [3, 7, 11]}}\n</tool_call>",
         "The second one matters; zooming in.\n<tool_call>\n{\"name\": \"crop_image_normalized\", \"arguments\": "
         "{\"bbox_2d\": [0.2, 0.2, 0.7, 0.7], \"target_image\": 2}}\n</tool_call>",
         "A car stops. \\boxed{B}"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> VideoSource:
    root = tmp_path_factory.mktemp("clip")
    return VideoSource(frame_paths=tuple(save_scene(str(root / f"frame_{i:02d}.png"), 200, 120, seed=300 + i)
                                         for i in range(16)))


def write_sft_data(clip: VideoSource, out: str) -> dict:
    """The trajectory as synthesis writes it (the engine steps the turns, images go to PNG, budgets to meta);
    returns the stored record."""
    episode = Episode("released", video=clip, config=EpisodeConfig(BUDGETS))
    prompt = episode.prompt_messages(QUESTION, CHOICES)
    for turn in TURNS:
        episode.step(turn)
    messages = messages_to_records(prompt + episode.messages, os.path.join(out, "images"), out, "clip")
    trajectory = Trajectory(id="clip", messages=messages, profile="released", question=QUESTION, choices=CHOICES,
                            answer="B", meta={"budgets": to_dict(BUDGETS)})
    write_trajectories(os.path.join(out, "data.jsonl"), [trajectory])
    return trajectory.to_dict()


@dataclass
class StageView:
    """What one stage shows the model for the whole trajectory: the text up to the last turn's end, the prompt
    video's frames, and every image in placeholder order."""

    text: str
    video: list[Image.Image]
    images: list[Image.Image]


def sft_view(tiny_model_dir: str, out: str) -> StageView:
    """The stored trajectory through SFT's validation and collator (template, media reloaded and resized)."""
    from open_r1_ext.collator import TrajectoryCollator
    from open_r1_ext.config import SFTScriptArguments
    from open_r1_ext.dataset import prepare_samples
    from open_r1_ext.modeling import load_processor

    args = SFTScriptArguments(data_files=[os.path.join(out, "data.jsonl")], **budget_fields(BUDGETS))
    processor = load_processor(tiny_model_dir, args.budgets())
    prepared = prepare_samples(args, processor, None, progress=False)
    assert not prepared.problems and prepared.notes == {}
    spec = prepared.samples[0]
    messages, _ = TrajectoryCollator(processor, args.budgets()).load_messages(spec)
    parts = [p for m in messages if isinstance(m["content"], list) for p in m["content"]]
    return StageView(processor.apply_chat_template(spec.messages, tools=spec.tools, tokenize=False),
                     next(p["video"] for p in parts if p["type"] == "video"),
                     [p["image"] for p in parts if p["type"] == "image"])


def eval_view(clip: VideoSource, out: str) -> StageView:
    """The eval runner on the same question with the model's turns scripted: its last request plus the last turn."""
    requests = []

    def generate(batch):
        requests.extend(batch)
        return [GenerationResult(TURNS[len(requests) - 1], 10, "stop")]

    os.makedirs(out)
    question = Question(id="clip", benchmark="mvbench", question=QUESTION, answer="B", video=clip, choices=CHOICES)
    settings = RunnerSettings(get_profile("released"), EpisodeConfig(BUDGETS))
    with PredictionWriter(os.path.join(out, "predictions.jsonl")) as writer:
        run_trajectories([question], generate, settings, writer)
    assert len(requests) == len(TURNS)
    return StageView(requests[-1].prompt + TURNS[-1] + "<|im_end|>\n", requests[-1].video, requests[-1].images)


class RecordingEngine:
    """The scripted engine (the model's turns as vLLM returns them), recording the media of every request."""

    def __init__(self, tokenizer):
        from pixel_reasoner.testing.scripted_engine import ScriptedEngine

        self.scripted, self.media = ScriptedEngine(tokenizer, TURNS), []

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        self.media.append(multi_modal_data or {})
        return await self.scripted.generate(prompt_token_ids, sampling_params, multi_modal_data)


def rl_view(clip: VideoSource, processor) -> StageView:
    """The RL agent on the record the prompt converter writes for this video, rendered by the chat template as
    upstream's prompt dataset does; the text is the sample's token ids decoded, media what the last turn got."""
    from openrlhf_ext.agent import AgentExecutor
    from openrlhf_ext.data import ConvertOptions, Converter, from_jsonl
    from openrlhf_ext.rollout_config import RolloutConfig

    row = {"qid": "clip", "question": QUESTION, "choices": CHOICES, "answer": "B", "video": list(clip.frame_paths)}
    record = Converter(ConvertOptions(), os.path.dirname(clip.frame_paths[0])).record(from_jsonl(row, 0), 0)
    prompt = processor.apply_chat_template(record["input"], tokenize=False, add_generation_prompt=True)
    engine = RecordingEngine(processor.tokenizer)
    params = SimpleNamespace(logprobs=None, stop=None, logit_bias=None, include_stop_str_in_output=False,
                             max_tokens=None)
    response = asyncio.run(AgentExecutor(RolloutConfig(**budget_fields(BUDGETS))).execute(
        prompt, record["label"], params, 8192, processor, engine, images=record["images"]))
    text = re.sub(r"(<\|(image|video)_pad\|>)+", r"\1", processor.tokenizer.decode(response["observation_tokens"]))
    frames, _metadata = engine.media[-1]["video"][0]
    # the sample ends on the end-of-turn token it generated; the template's "\n" after it is not generated
    return StageView(text + "\n", [Image.fromarray(f) for f in frames], engine.media[-1].get("image", []))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def same_pixels(a: list[Image.Image], b: list[Image.Image]) -> bool:
    return len(a) == len(b) and all(np.array_equal(pixels(x), pixels(y)) for x, y in zip(a, b))


def test_a_video_trajectory_reads_the_same_through_the_sft_collator_the_eval_runner_and_the_rl_agent(
        clip, tiny_model_dir, tiny_processor, tmp_path):
    record = write_sft_data(clip, str(tmp_path / "sft"))
    sft = sft_view(tiny_model_dir, str(tmp_path / "sft"))
    views = {"eval": eval_view(clip, str(tmp_path / "eval")), "rl": rl_view(clip, tiny_processor)}

    # what SFT trains on, checked against the media themselves
    width, height = resize_to_budget(Image.open(clip.frame_paths[0]), BUDGETS.frame).size
    assert sft.text.count(f"Here are the selected frames (Frame Size: {width}x{height}, Numbered 1 to 3):") == 1
    assert sft.text.count("Here is the cropped image (Image Size: ") == 1
    assert same_pixels(sft.video, [resize_to_budget(Image.open(p).convert("RGB"), BUDGETS.frame)
                                   for p in clip.frame_paths])
    assert same_pixels(sft.images[:-1], [resize_to_budget(Image.open(clip.frame_paths[k - 1]).convert("RGB"),
                                                          BUDGETS.frame) for k in SELECTED])
    # target_image=2 is the second selected frame (raw frame 7), not raw frame 2
    crop = next(p for m in record["messages"] if isinstance(m["content"], list) for p in m["content"]
                if (p.get("provenance") or {}).get("operation") == "crop_image_normalized")
    assert crop["provenance"]["parent"] == TARGET
    box = tuple(crop["provenance"]["box"])
    from_frame = {k: resize_region(Image.open(clip.frame_paths[k - 1]).convert("RGB"), box, BUDGETS.crop)
                  for k in (SELECTED[TARGET - 1], TARGET)}
    assert same_pixels(sft.images[-1:], [from_frame[SELECTED[TARGET - 1]]])
    assert not same_pixels(sft.images[-1:], [from_frame[TARGET]])

    # every other stage shows exactly that: the same text (observations included), video frames and images
    for stage, view in views.items():
        assert view.text == sft.text, stage
        assert same_pixels(view.video, sft.video), stage
        assert same_pixels(view.images, sft.images), stage

"""One visual representation from SFT to RL to eval (issue 16): what SFT trains on is what the other stages show.

Here, the SFT-collator ↔ eval-runner half: one video trajectory, made by the episode engine as synthesis makes it
and stored as SFT data, reads the same through the SFT collator (chat template, images reloaded from disk and
resized to their kind's budget) as through the eval runner (live episode, incremental ChatML): identical text
(observations included), identical video frames, and `target_image=k` is the k-th *selected* frame in both.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from pixel_reasoner.config import PixelBudget, PixelBudgets, to_dict
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


def eval_requests(clip: VideoSource, out: str) -> list:
    """The eval runner on the same question with the model's turns scripted: every generation request."""
    requests = []

    def generate(batch):
        requests.extend(batch)
        return [GenerationResult(TURNS[len(requests) - 1], 10, "stop")]

    os.makedirs(out)
    question = Question(id="clip", benchmark="mvbench", question=QUESTION, answer="B", video=clip, choices=CHOICES)
    settings = RunnerSettings(get_profile("released"), EpisodeConfig(BUDGETS))
    with PredictionWriter(os.path.join(out, "predictions.jsonl")) as writer:
        run_trajectories([question], generate, settings, writer)
    return requests


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def test_a_video_trajectory_reads_the_same_through_the_sft_collator_and_the_eval_runner(clip, tiny_model_dir,
                                                                                        tmp_path):
    from open_r1_ext.collator import TrajectoryCollator
    from open_r1_ext.config import SFTScriptArguments
    from open_r1_ext.dataset import prepare_samples
    from open_r1_ext.modeling import load_processor

    record = write_sft_data(clip, str(tmp_path / "sft"))
    fields = {f"{kind}_{bound}": getattr(BUDGETS.for_kind(kind), bound)
              for kind in ("original", "crop", "frame") for bound in ("min_pixels", "max_pixels")}
    args = SFTScriptArguments(data_files=[str(tmp_path / "sft" / "data.jsonl")], **fields)
    processor = load_processor(tiny_model_dir, args.budgets())
    prepared = prepare_samples(args, processor, None, progress=False)
    assert not prepared.problems and prepared.notes == {}
    spec = prepared.samples[0]
    sft_text = processor.apply_chat_template(spec.messages, tools=spec.tools, tokenize=False)
    sft_messages, _ = TrajectoryCollator(processor, args.budgets()).load_messages(spec)

    requests = eval_requests(clip, str(tmp_path / "eval"))
    assert len(requests) == len(TURNS)
    last = requests[-1]

    # text: the whole conversation, observation texts included, is the same string in both stages
    assert sft_text == last.prompt + TURNS[-1] + "<|im_end|>\n"
    width, height = resize_to_budget(Image.open(clip.frame_paths[0]), BUDGETS.frame).size
    assert sft_text.count(f"Here are the selected frames (Frame Size: {width}x{height}, Numbered 1 to 3):") == 1
    assert sft_text.count("Here is the cropped image (Image Size: ") == 1

    # the prompt's video: the same 16 frames at the frame budget
    sft_video = next(p["video"] for m in sft_messages if isinstance(m["content"], list) for p in m["content"]
                     if p["type"] == "video")
    assert len(sft_video) == len(last.video) == 16
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(sft_video, last.video))

    # observation images in placeholder order: the selected frames, then the crop; the same pixels in both stages
    sft_images = [p["image"] for m in sft_messages if isinstance(m["content"], list) for p in m["content"]
                  if p["type"] == "image"]
    assert len(sft_images) == len(last.images) == len(SELECTED) + 1
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(sft_images, last.images))
    for image, frame in zip(sft_images, SELECTED):
        expected = resize_to_budget(Image.open(clip.frame_paths[frame - 1]).convert("RGB"), BUDGETS.frame)
        assert np.array_equal(pixels(image), pixels(expected))

    # target_image=2 is the second selected frame (raw frame 7), not raw frame 2
    crop = next(p for m in record["messages"] if isinstance(m["content"], list) for p in m["content"]
                if (p.get("provenance") or {}).get("operation") == "crop_image_normalized")
    box = tuple(crop["provenance"]["box"])
    from_frame = {k: pixels(resize_region(Image.open(clip.frame_paths[k - 1]).convert("RGB"), box, BUDGETS.crop))
                  for k in (SELECTED[TARGET - 1], TARGET)}
    assert crop["provenance"]["parent"] == TARGET
    assert np.array_equal(pixels(sft_images[-1]), from_frame[SELECTED[TARGET - 1]])
    assert not np.array_equal(pixels(sft_images[-1]), from_frame[TARGET])

"""`python -m openrlhf_ext.data convert`: released RL parquet and our JSONL -> OpenRLHF prompt datasets."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from openrlhf_ext.data import ConvertOptions, convert, split_choices
from openrlhf_ext.labels import TaskLabel
from pixel_reasoner.episode import Episode, EpisodeConfig
from pixel_reasoner.errors import DataError
from pixel_reasoner.media import VideoSource
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.protocol.chatml import render_messages
from pixel_reasoner.testing.media import save_scene, write_video
from pixel_reasoner.trajectory import Trajectory, write_trajectories

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MC_QUESTION = "What animal is on the sign?\nchoices:\nA: Lion  \nB: Sheep\nC: Tiger\nD: Elephant"


def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def released_rows(root):
    save_scene(f"{root}/img/sign.jpg", 320, 240)
    save_scene(f"{root}/img/count.png", 200, 160, seed=1)
    frames = [save_scene(f"{root}/frames/v1/{k}.png", 64, 48, seed=k) for k in range(16)]
    return [dict(question=MC_QUESTION, image=["img/sign.jpg"], is_video=False, qid="vstar-1", answer="B"),
            dict(question="How many cars are there?", image=["img/count.png"], is_video=False, qid="tallyqa-7",
                 answer="3"),
            dict(question="What does the person do?", image=[os.path.relpath(f, root) for f in frames],
                 is_video=True, qid="star-2", answer="running")]


def load_with_openrlhf(path, processor):
    """The prompts, labels and images OpenRLHF's PromptDataset makes of a converted file."""
    from datasets import load_dataset
    from openrlhf.datasets.prompts_dataset import PromptDataset

    args = SimpleNamespace(data=SimpleNamespace(input_key="input", label_key="label", apply_chat_template=True,
                                                image_key="images"))
    dataset = PromptDataset(load_dataset("json", data_files=str(path))["train"], processor,
                            SimpleNamespace(args=args, is_rank_0=lambda: False))
    return [dataset[i][1:] for i in range(len(dataset))]


def core_prompt(images, question, choices=None, video=None):
    """The prompt as the core renders it (what the SFT data and the eval harness show the model)."""
    profile = get_profile("released")
    episode = Episode(profile, images=images, video=video, config=EpisodeConfig())
    messages = episode.prompt_messages(question, choices)
    return render_messages(messages, tools=profile.tool_schemas(), add_generation_prompt=True)


def test_released_parquet_converts_to_prompts_openrlhf_renders_like_the_core(tmp_path, tiny_processor):
    src = write_parquet(tmp_path / "release.parquet", released_rows(tmp_path))
    summary = convert(str(src), str(tmp_path / "out.jsonl"))
    assert (summary.rows, summary.written, summary.rejected, summary.videos) == (3, 3, 0, 1)
    assert dict(summary.kinds) == {"multiple_choice": 1, "count": 1, "exact_match": 1}
    prompts = load_with_openrlhf(tmp_path / "out.jsonl", tiny_processor)
    (p_mc, l_mc, i_mc), (p_count, l_count, i_count), (p_video, l_video, i_video) = prompts
    assert i_mc == [str(tmp_path / "img" / "sign.jpg")]  # absolute paths, resolved against the input's folder
    assert p_mc == core_prompt(i_mc, MC_QUESTION)  # choices are in the question already: not repeated
    mc = TaskLabel.parse(l_mc)
    assert mc.scoring == "multiple_choice" and mc.choices == ("Lion", "Sheep", "Tiger", "Elephant") and mc.qid == "vstar-1"
    assert mc.score("(B) Sheep") == 1.0
    assert TaskLabel.parse(l_count).scoring == "count" and p_count == core_prompt(i_count, "How many cars are there?")
    video = TaskLabel.parse(l_video)
    assert video.is_video and len(i_video) == 16
    assert p_video == core_prompt([], "What does the person do?", video=VideoSource(frame_paths=i_video))
    assert p_video.count("<|vision_start|><|video_pad|><|vision_end|>") == 1  # the video as a video, as in SFT
    assert "<|image_pad|>" not in p_video
    saved = json.loads((tmp_path / "out.jsonl.summary.json").read_text())
    assert saved["written"] == 3 and saved["datasources"] == {"vstar": 1, "tallyqa": 1, "star": 1}


def test_invalid_rows_stop_the_conversion_with_every_problem_named(tmp_path):
    rows = released_rows(tmp_path)
    rows += [dict(question="Q?", image=["img/missing.jpg"], is_video=False, qid="vstar-9", answer="A"),
             dict(question="Q?", image=["img/sign.jpg"], is_video=False, qid="vstar-10", answer=""),
             dict(question="Q?", image=["img/sign.jpg"], is_video=False, qid="vstar-11", answer=None),
             dict(question=" ", image=["img/sign.jpg"], is_video=False, qid="vstar-12", answer="A"),
             dict(question=MC_QUESTION, image=["img/sign.jpg"], is_video=False, qid="vstar-1", answer="B")]
    (tmp_path / "img" / "broken.jpg").write_bytes(b"not an image")
    rows.append(dict(question="Q?", image=["img/broken.jpg"], is_video=False, qid="vstar-13", answer="A"))
    src = write_parquet(tmp_path / "release.parquet", rows)
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError) as err:
        convert(str(src), str(out))
    message = str(err.value)
    assert "6 of 9 rows are invalid; nothing was written" in message and not out.exists()
    for expected in ["row 3 (qid vstar-9): media file not found: " + str(tmp_path / "img" / "missing.jpg"),
                     "row 4 (qid vstar-10): answer: the answer is empty",
                     "row 5 (qid vstar-11): answer: the answer is missing",
                     "row 6 (qid vstar-12): `question` is missing or empty",
                     "row 7 (qid vstar-1): duplicate qid 'vstar-1' (first at row 0)",
                     "row 8 (qid vstar-13): cannot read image"]:
        assert expected in message

    summary = convert(str(src), str(out), ConvertOptions(skip_invalid=True))
    assert (summary.written, summary.rejected) == (3, 6)
    rejects = [json.loads(line) for line in open(summary.rejects_path)]
    assert [r["row"] for r in rejects] == [3, 4, 5, 6, 7, 8] and all(r["reason"] for r in rejects)
    assert len(out.read_text().splitlines()) == 3


def test_trajectory_and_seed_jsonl(tmp_path, tiny_processor):
    save_scene(f"{tmp_path}/a.png", 300, 200)
    traj = Trajectory(id="sa1b-1-single_pass", messages=[{"role": "assistant", "content": "x"}],
                      media=[{"type": "image", "path": "a.png"}], question="What colour is the car?",
                      choices=["red", "blue"], answer="B")
    video = write_video(f"{tmp_path}/clip.mp4", num_frames=20)
    src = tmp_path / "in.jsonl"
    write_trajectories(str(src), [traj])
    with open(src, "a") as f:
        f.write(json.dumps({"id": "star-5", "question": "What happens?", "answer": "jumping",
                            "media": [{"type": "video", "path": "clip.mp4"}]}) + "\n")
        f.write(json.dumps({"id": "web-3", "question": "Total?", "answer": 12, "images": ["a.png"],
                            "scoring": "exact_match"}) + "\n")
    convert(str(src), str(tmp_path / "out.jsonl"), ConvertOptions())
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x-1", "question": "Q?", "answer": "a", "images": ["a.png"],
                               "scoring": "multiple-choice"}) + "\n{not json\n")
    with pytest.raises(DataError) as err:
        convert(str(bad), str(tmp_path / "bad_out.jsonl"))
    assert "row 0 (qid x-1): `scoring` is 'multiple-choice'" in str(err.value)
    assert "row 1: not valid JSON" in str(err.value)
    (p_traj, l_traj, i_traj), (p_video, l_video, i_video), (_, l_num, _) = load_with_openrlhf(
        tmp_path / "out.jsonl", tiny_processor)
    assert p_traj == core_prompt(i_traj, "What colour is the car?", ["red", "blue"])  # choices shown by the profile
    assert TaskLabel.parse(l_traj).score("blue") == 1.0
    assert i_video == [video] and TaskLabel.parse(l_video).is_video
    assert p_video.count("<|video_pad|>") == 1 and "<|image_pad|>" not in p_video  # a video file: one video part
    assert TaskLabel.parse(l_num) == TaskLabel("12", "exact_match", None, False, "web-3")


def test_split_choices():
    assert split_choices(MC_QUESTION) == ["Lion", "Sheep", "Tiger", "Elephant"]
    assert split_choices("Pick one.\n(A) red\n(B) blue\nAnswer with the letter.") == ["red", "blue"]
    assert split_choices("A: only one option") is None
    assert split_choices("Steps:\nA. x\nC. y") is None


def test_cli(tmp_path):
    src = write_parquet(tmp_path / "release.parquet", released_rows(tmp_path)[:2] + [
        dict(question="Q?", image=["img/nope.png"], is_video=False, qid="vstar-4", answer="A")])
    cmd = [sys.executable, "-m", "openrlhf_ext.data", "convert", "--input", str(src), "--output",
           str(tmp_path / "out.jsonl")]
    env = dict(os.environ, PYTHONPATH=REPO)
    failed = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert failed.returncode == 1 and "row 2 (qid vstar-4): media file not found" in failed.stderr
    passed = subprocess.run(cmd + ["--skip-invalid"], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert passed.returncode == 0, passed.stderr
    assert "rows 3, written 2, rejected 1" in passed.stdout

"""The trajectory schema: round trips, validation messages, the released-SFT converter and the chat converters."""
import base64
import io
import json
import os
import warnings

import pytest
import torch
from PIL import Image

from pixel_reasoner.episode import Episode
from pixel_reasoner.errors import DataError
from pixel_reasoner.media import ImageFile, VideoSource
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.testing.media import save_scene, write_video
from pixel_reasoner.trajectory import (Trajectory, from_released_sft, messages_to_records, read_trajectories,
                                       to_hf_messages, to_openai_messages, trajectory_from_episode,
                                       write_trajectories)


def call(name, **arguments):
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


@pytest.fixture
def scene(tmp_path):
    return save_scene(str(tmp_path / "media" / "scene.jpg"), 800, 600, seed=1)


def finished_episode(scene):
    ep = Episode("released", images=[ImageFile(scene)])
    prompt = ep.prompt_messages("Which sign?", ["left", "right"])
    ep.step(call("crop_image_normalized", bbox_2d=[1.5, 0, 2, 1], target_image=1))  # outside the image: error
    ep.step(call("crop_image_normalized", bbox_2d=[0.1, 0.1, 0.6, 0.6], target_image=1))
    ep.step("\\boxed{A}")
    return ep, prompt


def test_episode_round_trips_through_jsonl(tmp_path, scene):
    ep, prompt = finished_episode(scene)
    root = str(tmp_path / "out")
    traj = trajectory_from_episode(ep, prompt, "q/1 sample:0", root, question="Which sign?", choices=["left", "right"],
                                   answer="A", masked_turns=[0], meta={"run": "t"})
    assert traj.validate(root=root) == []
    assert traj.media == [{"type": "image", "path": os.path.abspath(scene)}]  # outside root: absolute
    assert [m.get("loss") for m in traj.assistant_turns()] == [False, None, None]
    observations = [m for m in traj.messages if m.get("observation")]
    assert "outside image 1" in observations[0]["error"] and "error" not in observations[1]
    prov = observations[1]["content"][1]["provenance"]
    assert prov["source_size"] == [800, 600] and prov["source_image"] == 1 and prov["parent"] == 1
    assert prov["box"] == [0, 0, 560, 420]  # [0.1, 0.6] padded by 0.1 each side
    assert traj.image_paths() == ["images/q_1_sample_0_1.png", "images/q_1_sample_0_2.png"]
    assert traj.meta["episode"]["stats"]["num_operations"] == 2 and traj.meta["run"] == "t"
    path = os.path.join(root, "t.jsonl")
    write_trajectories(path, [traj, traj])
    rows = list(read_trajectories(path))
    assert [i for i, _ in rows] == [0, 1]
    assert rows[0][1].to_dict() == json.loads(json.dumps(traj.to_dict()))


def test_reference_inputs_keeps_the_original_file(tmp_path, scene):
    ep, prompt = finished_episode(scene)
    root = os.path.dirname(os.path.dirname(scene))  # the scene lies inside root: stored relative
    traj = trajectory_from_episode(ep, prompt, "x", root, reference_inputs=True)
    assert traj.image_paths()[0] == "media/scene.jpg" and traj.media == [{"type": "image", "path": "media/scene.jpg"}]
    assert traj.validate(root=root) == []


def test_relative_image_dir_is_stored_relative_to_root(tmp_path, scene, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ep, prompt = finished_episode(scene)
    records = messages_to_records(prompt + ep.messages, image_dir="out/imgs", root="out", stem="s")
    assert [p["path"] for m in records if isinstance(m["content"], list) for p in m["content"]
            if p["type"] == "image"] == ["imgs/s_1.png", "imgs/s_2.png"]


def test_video_parts_reference_their_source_or_write_their_frames(tmp_path):
    clip = write_video(str(tmp_path / "clip.mp4"), num_frames=20)
    ep = Episode("released", video=VideoSource(path=clip, num_frames=8))
    records = messages_to_records(ep.prompt_messages("What happens?"), str(tmp_path / "im"), str(tmp_path), "v")
    assert records[1]["content"][0] == {"type": "video", "path": "clip.mp4", "num_frames": 8}
    frames_only = [{"role": "user", "content": [{"type": "video", "video": ep.video_frames()[:3]}]}]
    part = messages_to_records(frames_only, str(tmp_path / "im"), str(tmp_path), "v")[0]["content"][0]
    assert part["frame_paths"] == ["im/v_video_1.png", "im/v_video_2.png", "im/v_video_3.png"]
    assert all(os.path.exists(tmp_path / p) for p in part["frame_paths"])


@pytest.mark.parametrize("row, fragment", [
    ('[1, 2]', "expected a JSON object, got list"),
    ('{"schema_version": 2, "id": "a", "messages": []}', "schema_version is 2, this reader supports 1"),
    ('{"message_list": []}', "use from_released_sft"),
    ('{"schema_version": 1, "messages": []}', "missing required field `id`"),
    ('{"schema_version": 1, "id": "a", "messages": {}}', "`messages` must be a list"),
    ('{"schema_version": 1, "id": "a", "messages": [], "media": "x.jpg"}', "`media` must be a list"),
    ('{"schema_version": 1, "id": "a", "messages": [', "row 1 (line 2): not valid JSON"),
])
def test_reading_names_the_file_row_and_field(tmp_path, row, fragment):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(Trajectory("ok", [{"role": "assistant", "content": "x"}]).to_dict())
    path.write_text(good + "\n" + row + "\n")
    with pytest.raises(DataError) as err:
        list(read_trajectories(str(path)))
    assert str(path) in str(err.value) and "row 1" in str(err.value) and fragment in str(err.value)
    with pytest.warns(UserWarning, match="skipping"):
        assert [i for i, _ in read_trajectories(str(path), strict=False)] == [0]


def test_a_row_cut_off_mid_write_is_named_as_such(tmp_path):
    path = tmp_path / "partial.jsonl"
    path.write_text('{"schema_version": 1, "id": "a", "mess')
    with pytest.raises(DataError, match="cut off mid-write"):
        list(read_trajectories(str(path)))


def test_validate_lists_every_problem_with_its_location(tmp_path):
    traj = Trajectory("t", [
        "not a message",
        {"role": "robot", "content": "x"},
        {"role": "user", "content": [{"type": "image"}, {"type": "audio"}, "text", {"type": "text", "text": 3},
                                     {"type": "image", "path": "gone.png"}, {"type": "video"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "x"}]},
        {"role": "assistant", "content": "y", "loss": "no"},
    ])
    problems = traj.validate(root=str(tmp_path), where="f.jsonl row 4")
    expected = ["messages[0] must be an object", "messages[1].role is 'robot'", "messages[2].content[0] is an image "
                "without `path`", "messages[2].content[1].type is 'audio'", "messages[2].content[2] must be an "
                "object", "messages[2].content[3].text must be a string", "messages[2].content[4]: image file not "
                "found", "messages[2].content[5] is a video without", "messages[3].content of an assistant turn must "
                "be the raw text", "messages[4].loss must be true or false"]
    assert len(problems) == len(expected)
    for problem, fragment in zip(problems, expected):
        assert problem.startswith("f.jsonl row 4: ") and fragment in problem


# ---------------------------------------------------------------------------------------------------------------
# The released PixelReasoner-SFT-Data (`message_list` records), in its shapes
SYSTEM = {"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]}


def user(*parts):
    return {"role": "user", "content": list(parts)}


def assistant(text):
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def crop_obs(path, size="336x280"):
    return user({"type": "text", "text": f"\nHere is the cropped image (Image Size: {size}):"},
                {"type": "image", "image": path})


CROP1 = call("crop_image_normalized", bbox_2d=[0.1, 0.1, 0.4, 0.4], target_image=1)
CROP2 = call("crop_image_normalized", bbox_2d=[0.2, 0.2, 0.5, 0.5], target_image=2)
QUESTION = user({"type": "image", "image": "images/sa1b_1.jpg"}, {"type": "text", "text": "What color is the car?"})
RELEASED = {
    "single_pass": [SYSTEM, QUESTION, assistant("Zoom.\n" + CROP1), crop_obs("crops/a_2.png"),
                    assistant("Red. \\boxed{red}")],
    "recrop_once": [SYSTEM, QUESTION, assistant("Zoom.\n" + CROP1),
                    user({"type": "text", "text": "\nExecution error:\nCropped image is too small: 20x20\n"}),
                    assistant("Again.\n" + CROP1), crop_obs("crops/b_2.png"), assistant("\\boxed{red}")],
    "further_zoom": [SYSTEM, QUESTION, assistant(CROP1), crop_obs("crops/c_2.png"), assistant("Closer.\n" + CROP2),
                     crop_obs("crops/c_3.png"), assistant("\\boxed{red}")],
    "recrop_twice": [SYSTEM, QUESTION, assistant(CROP1), crop_obs("crops/d_2.png"), assistant(CROP1),
                     crop_obs("crops/d_3.png"), assistant(CROP2), crop_obs("crops/d_4.png"), assistant("\\boxed{red}")],
    "reselect": [SYSTEM, user({"type": "text", "text": "What happens first?"},
                              {"video": [f"videos/v1/frame_{i}.jpg" for i in range(16)]}),
                 assistant(call("select_frames", target_frames=[1, 2, 3])),
                 user({"type": "text", "text": "\nHere are the selected frames (Frame Size: 420x252, Numbered 1 to 3):"},
                      *[{"type": "image", "image": f"videos/v1/frame_{i}.jpg"} for i in range(3)]),
                 assistant(call("select_frames", target_frames=[4, 5])),
                 user({"type": "text", "text": "\nHere are the selected frames (Frame Size: 420x252, Numbered 4 to 5):"},
                      *[{"type": "image", "image": f"videos/v1/frame_{i}.jpg"} for i in (3, 4)]),
                 assistant("\\boxed{B}")],
    "text_only": [SYSTEM, QUESTION, assistant("It is red. \\boxed{red}")],
}
EXPECTED = {  # loss flags of the assistant turns (None: trained) and the kind recorded
    "single_pass": ([None, None], "single_pass"), "recrop_once": ([False, None, None], "self_correction"),
    "further_zoom": ([False, None, None], "self_correction"), "reselect": ([False, None, None], "self_correction"),
    "recrop_twice": ([False, False, None, None], "recrop_twice"), "text_only": ([None], "text_only"),
}


@pytest.mark.parametrize("shape", sorted(RELEASED))
def test_released_records_get_the_official_last_two_turns_rule_as_explicit_flags(shape):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these well-formed shapes warns
        traj = from_released_sft({"qid": f"sa1b-{shape}", "answer": "red", "message_list": RELEASED[shape]}, 7,
                                 image_root="/data/sft")
    flags, kind = EXPECTED[shape]
    assert [m.get("loss") for m in traj.assistant_turns()] == flags
    assert traj.trajectory_type == kind and traj.id == f"sa1b-{shape}" and traj.source == "released_sft"
    assert traj.validate() == []
    assert traj.messages[0] == {"role": "system", "content": "You are a helpful assistant."}
    assert all(m.get("observation") for m in traj.messages[3::2] if m["role"] == "user")
    if shape == "reselect":
        assert traj.media == [{"type": "video", "num_frames": 16,
                               "frame_paths": [f"/data/sft/videos/v1/frame_{i}.jpg" for i in range(16)]}]
    else:
        assert traj.media == [{"type": "image", "path": "/data/sft/images/sa1b_1.jpg"}]
    if shape == "recrop_once":
        assert traj.messages[3]["error"] == "Cropped image is too small: 20x20"


def test_a_masked_turn_without_a_tool_call_warns_with_the_row():
    rows = [SYSTEM, QUESTION, assistant("Thinking out loud."), user({"type": "text", "text": "Go on."}),
            assistant(CROP1), crop_obs("x.png"), assistant("\\boxed{red}")]
    with pytest.warns(UserWarning, match=r"released SFT row 12: assistant turn 1 of 3 \(message_list\[2\]\)"):
        traj = from_released_sft({"message_list": rows}, 12)
    assert traj.id == "released-12" and traj.assistant_turns()[0]["loss"] is False


@pytest.mark.parametrize("record, fragment", [
    ({}, "missing `message_list`"),
    ({"message_list": [SYSTEM, {"role": "tool", "content": "x"}]}, "message_list[1].role is 'tool'"),
    ({"message_list": [SYSTEM, "hi"]}, "message_list[1] must be an object"),
    ({"message_list": [SYSTEM, user("just text")]}, "message_list[1].content[0] must be an object"),
    ({"message_list": [SYSTEM, user({"type": "audio", "audio": "a.wav"})]}, "unknown type 'audio'"),
    ({"message_list": [SYSTEM, user({"type": "image", "image": None})]}, "content[0].image: expected a file path"),
    ({"message_list": [SYSTEM, {"role": "assistant", "content": [{"type": "image", "image": "x"}]}]},
     "must be text only"),
])
def test_malformed_released_records_name_row_and_field(record, fragment):
    with pytest.raises(DataError) as err:
        from_released_sft(record, 3)
    assert "released SFT row 3" in str(err.value) and fragment in str(err.value)


def test_released_conversion_trains_exactly_the_last_two_turns(tiny_processor, tmp_path):
    """End to end through the real processor and our template: the masked turns get no loss tokens."""
    for name in ("images/sa1b_1.jpg", "crops/d_2.png", "crops/d_3.png", "crops/d_4.png"):
        save_scene(str(tmp_path / name), 112, 84)
    record = {"message_list": RELEASED["recrop_twice"]}
    record["message_list"][4] = assistant("Second try.\n" + CROP1)
    traj = from_released_sft(record, 0, image_root=str(tmp_path))
    messages = to_hf_messages(traj, load_images=True)
    assert all(isinstance(p["image"], Image.Image) for m in messages if isinstance(m["content"], list)
               for p in m["content"] if p["type"] == "image")
    out = tiny_processor.apply_chat_template(messages, tools=get_profile("released").tool_schemas(), tokenize=True,
                                             return_dict=True, return_tensors="pt", return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"][0], torch.as_tensor(out["assistant_masks"])[0].bool()
    trained = tiny_processor.tokenizer.decode(ids[mask])
    assert "Second try" not in trained and trained.count("<tool_call>") == 1
    assert trained.endswith("\\boxed{red}<|im_end|>") and trained.count("<|im_end|>") == 2


def test_to_hf_messages_resolves_paths_and_keeps_loss_flags_on_assistant_turns_only(tmp_path):
    traj = from_released_sft({"message_list": RELEASED["reselect"]}, 0)
    messages = to_hf_messages(traj, root="/r")
    assert messages[1]["content"][1] == {"type": "video", "video": [f"/r/videos/v1/frame_{i}.jpg" for i in range(16)]}
    assert messages[3]["content"][1] == {"type": "image", "image": "/r/videos/v1/frame_0.jpg"}
    assert [m.get("loss") for m in messages] == [None, None, False, None, None, None, None]
    assert all(set(m) <= {"role", "content", "loss"} for m in messages)  # nothing HF templates do not expect


def test_to_openai_messages_inlines_images_and_decodes_videos(tmp_path):
    write_video(str(tmp_path / "clip.mp4"), num_frames=32)
    save_scene(str(tmp_path / "crop.png"), 56, 56)
    messages = [{"role": "system", "content": "S"},
                {"role": "user", "content": [{"type": "video", "path": "clip.mp4", "num_frames": 4},
                                             {"type": "text", "text": "Q"}]},
                {"role": "assistant", "content": call("select_frames", target_frames=[1])},
                {"role": "tool", "content": [{"type": "text", "text": "obs"}, {"type": "image", "path": "crop.png"}]}]
    out = to_openai_messages(messages, root=str(tmp_path))
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    urls = [p["image_url"]["url"] for p in out[1]["content"] if p["type"] == "image_url"]
    assert len(urls) == 4
    frame = Image.open(io.BytesIO(base64.b64decode(urls[0].split(",", 1)[1])))
    assert frame.size == (64, 48)
    assert out[3]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    with pytest.raises(DataError, match="video part without frames or a path"):
        to_openai_messages([{"role": "user", "content": [{"type": "video"}]}])


def test_records_written_before_the_rename_read_kind_as_trajectory_type(tmp_path):
    old = {"schema_version": 1, "id": "a", "kind": "recrop_once", "messages": [{"role": "assistant", "content": "x"}]}
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(old) + "\n")
    with pytest.warns(FutureWarning, match="old field `kind` are read as `trajectory_type`"):
        [(_, traj)] = list(read_trajectories(str(path)))
    assert traj.trajectory_type == "recrop_once" and "kind" not in traj.meta
    assert traj.to_dict()["trajectory_type"] == "recrop_once" and "kind" not in traj.to_dict()

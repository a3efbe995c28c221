"""Data reading and validation: both formats, the mixture, and every bad row reported with its file, row and
field; `error` stops with the list, `skip` trains without them and counts them. Nothing is dropped silently."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from pixel_reasoner.errors import ConfigError, DataError
from pixel_reasoner.protocol.chatml import tools_block
from pixel_reasoner.protocol import get_profile

from open_r1_ext.dataset import enforce_policy, prepare_samples
from open_r1_ext.demo_data import demo_script_arguments as demo_args


def records(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def write_jsonl(path, rows) -> str:
    with open(path, "w") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return str(path)


@pytest.fixture
def demo_copy(demo_data, tmp_path):
    """A private copy of the released-profile demo data (tests corrupt it)."""
    src = os.path.dirname(demo_data["released"])
    dst = tmp_path / "data"
    shutil.copytree(src, dst)
    return str(dst / "trajectories.jsonl")


def to_released_record(traj: dict, image_root: str) -> dict:
    """Our trajectory as a PixelReasoner-SFT-Data item: `message_list`, the tools text inside the system prompt,
    observations as plain user turns, media paths relative to the dataset's image root."""
    def rel(p):
        return os.path.relpath(p, image_root)

    system = traj["messages"][0]["content"] + tools_block(get_profile("released").tool_schemas())
    out = [{"role": "system", "content": [{"type": "text", "text": system}]}]
    for m in traj["messages"][1:]:
        if m["role"] == "assistant":
            out.append({"role": "assistant", "content": [{"type": "text", "text": m["content"]}]})
            continue
        parts = []
        for p in m["content"]:
            if p["type"] == "image":
                parts.append({"type": "image", "image": rel(p["path"])})
            elif p["type"] == "video":
                parts.append({"type": "video", "video": [rel(f) for f in p["frame_paths"]]})
            else:
                parts.append({"type": "text", "text": p["text"]})
        out.append({"role": "user", "content": parts})
    return {"qid": traj["id"], "answer": traj["answer"], "message_list": out}


def released_copy(demo_data, tmp_path, edit) -> str:
    """The demo trajectories as a released JSON file, each record passed through `edit`."""
    root = os.path.dirname(demo_data["released"])
    ours = records(demo_data["released"])
    for t in ours:  # absolute paths, as a downloaded dataset would be unzipped somewhere else
        for m in t["messages"]:
            for p in m["content"] if isinstance(m["content"], list) else []:
                if p["type"] == "image":
                    p["path"] = os.path.join(root, p["path"])
                elif p["type"] == "video":
                    p["frame_paths"] = [os.path.join(root, f) for f in p["frame_paths"]]
    released = tmp_path / "release.json"
    released.write_text(json.dumps([edit(to_released_record(t, root)) for t in ours]))
    return str(released)


def without_tools(record: dict) -> dict:
    record["message_list"][0]["content"] = [{"type": "text", "text": "You are a helpful assistant."}]
    return record


def test_released_json_collates_exactly_like_our_jsonl(demo_data, sft_processor, collator, tmp_path):
    """Same trajectories, both formats: identical tokens and labels (the tools text is not added twice, and
    the positional rule of the official trainer becomes the same `loss: false` flags)."""
    root = os.path.dirname(demo_data["released"])
    released = released_copy(demo_data, tmp_path, lambda record: record)
    ref = prepare_samples(demo_args(data_files=[demo_data["released"]]), sft_processor, None, progress=False)
    rel = prepare_samples(demo_args(data_files=[released], image_root=root), sft_processor, None, progress=False)
    assert not rel.problems and len(rel.samples) == len(ref.samples) == len(records(demo_data["released"]))
    for a, b in zip(ref.samples, rel.samples):
        assert b.tools is None and a.tools is not None
        ea, eb = collator.encode(a), collator.encode(b)
        assert ea["input_ids"].tolist() == eb["input_ids"].tolist(), a.id
        assert ea["labels"].tolist() == eb["labels"].tolist(), a.id
        text = sft_processor.tokenizer.decode(eb["input_ids"])
        assert text.count("# Tools") == 1


@pytest.mark.parametrize("corrupt, fragments", [
    (lambda rows: os.remove(rows["dir"] + "/" + rows[1]["messages"][3]["content"][1]["path"]),
     ["row 1 (id recrop_once_0)", "messages[3].content[1]", "image file not found", "recrop_once_0_2.png"]),
    (lambda rows: rows[2]["messages"][1]["content"].insert(0, {"type": "audio", "path": "x.wav"}),
     ["row 2 (id recrop_twice_0)", "messages[1].content[0].type is 'audio'", "expected one of"]),
    (lambda rows: [m.update(loss=False) for m in rows[6]["messages"] if m["role"] == "assistant"],
     ["row 6 (id text_only_0)", "nothing to train on"]),
    (lambda rows: rows[0].update(profile="qwen"),
     ["row 0 (id single_pass_0)", "recorded with profile 'qwen'", "profile='released'"]),
    (lambda rows: rows[3].pop("schema_version"), ["row 3", "schema_version is None"]),
])
def test_a_bad_row_stops_the_run_naming_file_row_and_field(demo_copy, sft_processor, tmp_path, corrupt, fragments):
    rows = records(demo_copy)
    corrupt({**dict(enumerate(rows)), "dir": os.path.dirname(demo_copy)})
    write_jsonl(demo_copy, rows)
    prepared = prepare_samples(demo_args(data_files=[demo_copy], profile="released"), sft_processor, None,
                               progress=False)
    report = str(tmp_path / "report.json")
    with pytest.raises(DataError) as err:
        enforce_policy(prepared, report)
    message = str(err.value)
    assert f"{demo_copy} row" in message and "1 invalid row(s)" in message and "invalid_samples: skip" in message
    for fragment in fragments:
        assert fragment in message
    saved = json.load(open(report))
    assert saved["invalid_rows"] == 1 and saved["skipped_rows"] == 0 and saved["problems"][0]["source"] == demo_copy


def test_overlong_samples_are_reported_with_their_length(demo_data, sft_processor):
    args = demo_args(data_files=[demo_data["released"]])
    lengths = {s.id: n for s, n in ((s, len_of(s, sft_processor)) for s in
                                    prepare_samples(args, sft_processor, None, progress=False).samples)}
    limit = sorted(lengths.values())[-3]  # the two longest samples exceed it
    prepared = prepare_samples(args, sft_processor, limit, progress=False)
    assert {p.id for p in prepared.problems} == {i for i, n in lengths.items() if n > limit}
    longest = max(lengths, key=lengths.get)
    problem = next(p for p in prepared.problems if p.id == longest)
    assert f"{lengths[longest]} tokens, longer than max_length={limit}" in str(problem)


def len_of(spec, processor) -> int:
    from open_r1_ext.samples import SampleValidator

    return SampleValidator(processor, demo_args().budgets(), None).count_tokens(spec)


def test_token_count_from_headers_equals_the_collated_length(demo_specs, collator, sft_processor):
    for profile in demo_specs:
        for spec in demo_specs[profile].values():
            assert len_of(spec, sft_processor) == len(collator.encode(spec)["input_ids"]), spec.id


def test_skip_mode_trains_on_the_rest_and_counts_what_it_skipped(demo_copy, sft_processor, tmp_path, caplog):
    rows = records(demo_copy)
    rows[4]["messages"][1]["content"][0]["frame_paths"][3] = "media/clip/missing.png"
    lines = [json.dumps(r) for r in rows] + ["{not json"]
    write_jsonl(demo_copy, lines)
    prepared = prepare_samples(demo_args(data_files=[demo_copy], invalid_samples="skip"), sft_processor, None,
                               progress=False)
    report = str(tmp_path / "report.json")
    enforce_policy(prepared, report)
    saved = json.load(open(report))
    assert (saved["rows"], saved["valid_rows"], saved["skipped_rows"], saved["training_samples"]) == (10, 8, 2, 8)
    assert {p["row"] for p in saved["problems"]} == {4, 9}
    assert any("missing.png" in p["problem"] for p in saved["problems"])
    assert any("not valid JSON" in p["problem"] for p in saved["problems"])
    assert "reselect_0" not in {s.id for s in prepared.samples}
    assert "skipped 2 invalid row(s) of 10" in caplog.text


def test_mixture_weights_repeat_and_subsample_with_a_seed(demo_data, sft_processor):
    files = [demo_data["released"], demo_data["qwen"]]
    prepared = prepare_samples(demo_args(data_files=files, data_weights=[2.0, 0.5], mixture_seed=3), sft_processor,
                               None, progress=False)
    assert [m["samples"] for m in prepared.mixture] == [18, 4]
    again = prepare_samples(demo_args(data_files=files, data_weights=[2.0, 0.5], mixture_seed=3), sft_processor,
                            None, progress=False)
    assert [s.id for s in again.samples] == [s.id for s in prepared.samples]
    assert {s.profile for s in prepared.samples} == {"released", "qwen"}


@pytest.mark.parametrize("kwargs, fragment", [
    ({"data_files": ["a.jsonl"], "data_weights": [1.0, 2.0]}, "one weight per file"),
    ({"invalid_samples": "drop"}, "invalid_samples: 'drop' is not one of error, skip"),
    ({"profile": "nope"}, "unknown protocol profile 'nope'"),
    ({"crop_min_pixels": 10}, "crop_min_pixels / crop_max_pixels"),
    ({"budget_preset": "huge"}, "budget_preset: 'huge' is not one of consistent"),
])
def test_bad_configuration_is_a_clear_error(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        demo_args(**kwargs)


def test_a_missing_data_file_names_the_recipe_key(sft_processor):
    with pytest.raises(DataError, match="data file not found: nowhere.jsonl .*data_files"):
        prepare_samples(demo_args(data_files=["nowhere.jsonl"]), sft_processor, None, progress=False)


def test_processor_bounds_are_widened_so_budget_resized_images_pass_unchanged(tiny_model_dir, tmp_path):
    """The tiny processor caps images at 256 tokens; paper_sft allows 5120. After `configure_processor` a
    1600x1200 image keeps its budget size (~2450 tokens) and validation predicts the collated length."""
    from pixel_reasoner.media import smart_resize
    from pixel_reasoner.testing.media import save_scene
    from pixel_reasoner.trajectory import Trajectory, write_trajectories

    from open_r1_ext.collator import TrajectoryCollator
    from open_r1_ext.config import SFTScriptArguments
    from open_r1_ext.modeling import load_processor

    save_scene(str(tmp_path / "big.png"), 1600, 1200)
    messages = [{"role": "user", "content": [{"type": "image", "path": "big.png"}, {"type": "text", "text": "Q?"}]},
                {"role": "assistant", "content": "\\boxed{A}"}]
    path = str(tmp_path / "big.jsonl")
    write_trajectories(path, [Trajectory("big", messages)])
    args = SFTScriptArguments(data_files=[path], budget_preset="paper_sft")
    processor = load_processor(tiny_model_dir, args.budgets())
    assert processor.image_processor.size["longest_edge"] >= args.budgets().original.max_pixels
    spec = prepare_samples(args, processor, None, progress=False).samples[0]
    encoded = TrajectoryCollator(processor, args.budgets()).encode(spec)
    h, w = smart_resize(1200, 1600, args.budgets().original.min_pixels, args.budgets().original.max_pixels)
    assert encoded["image_grid_thw"].tolist() == [[1, h // 14, w // 14]] and h * w // 784 > 256
    assert len(encoded["input_ids"]) == spec.tokens


def test_released_rows_without_tools_are_trained_verbatim_and_counted(demo_data, sft_processor, collator, tmp_path,
                                                                      caplog):
    """The official trainer used a released row's system prompt as it is; a tools block appears only on request."""
    path = released_copy(demo_data, tmp_path, without_tools)
    root = os.path.dirname(demo_data["released"])
    verbatim = prepare_samples(demo_args(data_files=[path], image_root=root), sft_processor, None, progress=False)
    assert not verbatim.problems and verbatim.notes == {"released_rows_without_tools": len(verbatim.samples)}
    assert "9 released rows whose system prompt has no `<tools>` block" in caplog.text
    text = sft_processor.tokenizer.decode(collator.encode(verbatim.samples[0])["input_ids"])
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    added = prepare_samples(demo_args(data_files=[path], image_root=root, add_tools_to_released=True),
                            sft_processor, None, progress=False)
    assert added.notes == {"released_rows_tools_added": len(added.samples)}
    text = sft_processor.tokenizer.decode(collator.encode(added.samples[0])["input_ids"])
    assert text.count("# Tools") == 1 and "crop_image_normalized" in text


def test_released_per_image_keys_are_reported_with_a_count(demo_data, sft_processor, tmp_path):
    """qwen-vl-utils keys (min/max_pixels, resized_height/width, fps, nframes) would size an image for SFT alone;
    every stage shows it at its kind's budget instead, and the report counts the rows that carried them."""
    def with_keys(record):
        first_user = record["message_list"][1]["content"]
        for part in first_user:
            if part["type"] == "image":
                part.update(max_pixels=12845056, resized_height=280)
            elif part["type"] == "video":
                part.update(fps=1.0, nframes=16)
        return record

    path = released_copy(demo_data, tmp_path, with_keys)
    args = demo_args(data_files=[path], image_root=os.path.dirname(demo_data["released"]))
    prepared = prepare_samples(args, sft_processor, None, progress=False)
    enforce_policy(prepared, str(tmp_path / "report.json"))
    notes = json.load(open(tmp_path / "report.json"))["notes"]
    images = sum(1 for t in records(demo_data["released"])
                 if any(p["type"] == "image" for p in t["messages"][1]["content"]))
    assert {k: v for k, v in notes.items() if k.startswith("released_media_key:")} == {
        "released_media_key:max_pixels": images, "released_media_key:resized_height": images,
        "released_media_key:fps": 1, "released_media_key:nframes": 1}

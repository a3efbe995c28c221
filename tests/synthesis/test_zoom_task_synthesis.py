"""Teacher trajectories of the zoom task through `python -m data_synthesis run --config recipes/synth_zoom_cpu.yaml`
(templates only, no server): seed routes, Table 2 types, select-then-crop videos, the task's budgets, the
answer stated before the letter, and the tools-disabled rows."""
import json
import os

import pytest

from data_synthesis.cli import main
from data_synthesis.config import load_config
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.trajectory import read_trajectories
from pixel_reasoner.zoom_task.corpus import FRAME_ZOOM_TEXT, TEACHER_TEMPLATES
from pixel_reasoner.zoom_task.layouts import Mix, write_seeds

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(REPO, "recipes", "synth_zoom_cpu.yaml")


def synthesize(seeds: str, out: str, *overrides: str) -> list:
    args = ["run", "--config", RECIPE, "--set", f"sources=[{{format: jsonl, name: zoom, path: '{seeds}'}}]",
            "--output.dir", out, "--no-progress"]
    for item in overrides:
        args += ["--set", item]
    assert main(args) == 0
    return [t for _, t in read_trajectories(os.path.join(out, "trajectories.jsonl"))]


@pytest.fixture(scope="module")
def zoom(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoom_synthesis")
    seeds = write_seeds(str(root / "seeds"), Mix.for_training(60, videos=3))
    return {"root": root, "seeds": seeds, "tools": synthesize(seeds, str(root / "tools"))}


def test_routes_come_from_the_seeds_and_types_from_table_2(zoom):
    by_kind = {}
    for t in zoom["tools"]:
        by_kind.setdefault(t.meta["kind"], []).append(t)
    assert {t.trajectory_type for t in by_kind["colour"] + by_kind["count"]} == {"text_only"}
    assert {t.trajectory_type for t in by_kind["detail"]} == {"single_pass", "recrop_once", "recrop_twice", "further_zoom_in"}
    assert len(by_kind["colour"] + by_kind["count"]) == round(60 * 2000 / 7500)
    assert all(t.meta["route"] != "text_only" for t in by_kind["detail"] + by_kind["video"])


def test_the_correct_crop_is_the_frame_s_grid_cell_at_full_resolution(zoom):
    for t in zoom["tools"]:
        if t.meta["kind"] != "detail":
            continue
        correct = [op for op in t.meta["operations"] if op["loss"]]
        assert len(correct) == 1 and correct[0]["source_boxes"] == [t.meta["reference"]["box"]]
        box = correct[0]["arguments"]["bbox_2d"]
        assert all(v % 28 == 0 for v in box) and box[2] - box[0] == 28  # a cell of the 112-px original, in pixels
        crops = [p for m in t.messages if m["role"] == "tool" for p in m["content"] if p["type"] == "image"]
        assert crops[-1]["provenance"]["box"] == t.meta["reference"]["box"]
        last_observation = [p["text"] for m in t.messages if m["role"] == "tool" for p in m["content"]
                            if p["type"] == "text"][-1]  # the correct crop's (earlier ones may be masked errors)
        size = [int(v) for v in last_observation.split(", ")[1].split(" ")[0].split("x")]
        assert max(size) <= 112
        assert t.meta["budgets"]["original"]["max_pixels"] == 112 * 112


def wrong_crops(trajectories: list) -> list[dict]:
    return [op for t in trajectories if t.trajectory_type in ("recrop_once", "recrop_twice")
            for op in t.meta["operations"] if not op["loss"]]


def is_cell(box: list[int]) -> bool:
    return box[0] % 112 == 0 and box[1] % 112 == 0 and box[2] - box[0] == box[3] - box[1] == 112


def test_with_wrong_boxes_a_wrong_crop_is_another_grid_cell(zoom, tmp_path):
    """`seeds --wrong-boxes`: the re-crops' wrong crops are cells like the right one (the seeds' `wrong_boxes`), so
    only the crop's pixels say whether the frame is in it, never the box's shape. By default they are random boxes
    that miss the frame."""
    seeds = write_seeds(str(tmp_path / "seeds"), Mix.for_training(60), wrong_boxes=True)
    wrong = wrong_crops(synthesize(seeds, str(tmp_path / "tools")))
    assert wrong
    for op in wrong:
        assert is_cell(op["source_boxes"][0]) and all(v % 28 == 0 for v in op["arguments"]["bbox_2d"])
    default = wrong_crops(zoom["tools"])
    assert default and not all(is_cell(op["source_boxes"][0]) for op in default)


def test_a_video_selects_the_frame_then_crops_its_cell(zoom):
    videos = [t for t in zoom["tools"] if t.meta["kind"] == "video"]
    assert len(videos) == 3
    for t in videos:
        ops = [op for op in t.meta["operations"] if op["loss"]]
        assert [op["tool"] for op in ops] == ["select_frames", "crop_image"]
        assert ops[0]["arguments"]["target_frames"] == t.meta["reference"]["frames"]
        assert ops[1]["source_boxes"] == [t.meta["reference"]["box"]] and ops[1]["arguments"]["target_image"] == 1
        turns = [m["content"] for m in t.messages if m["role"] == "assistant"]
        assert turns[-2].startswith(FRAME_ZOOM_TEXT)


def test_the_teacher_states_the_option_before_the_letter(zoom):
    for t in zoom["tools"]:
        final = t.messages[-1]["content"]
        if t.choices:
            option = t.choices[ord(t.answer) - ord("A")]
            assert final.endswith(f"\n{option}\n{t.answer}: {option}\nThe answer is \\boxed{{{t.answer}}}.")
        else:
            assert final.endswith(f"\n{t.answer}\nThe answer is \\boxed{{{t.answer}}}.")


def test_tools_disabled_rows_are_text_only_and_train_without_a_tools_block(zoom, tiny_model_dir):
    from open_r1_ext.config import SFTScriptArguments
    from open_r1_ext.dataset import prepare_samples
    from open_r1_ext.modeling import load_processor

    out = str(zoom["root"] / "no_tools")
    rows = synthesize(zoom["seeds"], out, "profile=qwen-no-tools")
    assert len(rows) == len(zoom["tools"]) and {t.trajectory_type for t in rows} == {"text_only"}
    assert {t.profile for t in rows} == {"qwen-no-tools"}
    assert "Please think step by step" in rows[0].messages[1]["content"][-1]["text"]
    args = SFTScriptArguments(data_files=[os.path.join(out, "trajectories.jsonl")], budget_preset="paper_sft",
                              original_max_pixels=112 * 112)
    prepared = prepare_samples(args, load_processor(tiny_model_dir, args.budgets()), 4096, progress=False)
    assert not prepared.problems and all(not s.tools for s in prepared.samples)


def test_the_recipe_spells_the_templates_the_vocabulary_is_trained_on():
    config = load_config(RECIPE)
    assert {k: getattr(config.template_trajectories, k) for k in TEACHER_TEMPLATES} == TEACHER_TEMPLATES
    assert config.expert.frame_zoom_text == FRAME_ZOOM_TEXT


def test_pixel_overrides_must_be_ordered(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"crop_min_pixels": 12544, "crop_max_pixels": 3136}))
    with pytest.raises(ConfigError, match="crop_min_pixels"):
        load_config(str(path))

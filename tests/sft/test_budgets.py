"""SFT against the pixel budgets each trajectory records (`meta.budgets`): pixel-coordinate rows made under other
budgets are refused naming the row, normalized ones are counted, unrecorded pixel rows are counted."""
from __future__ import annotations

import json
import os

import pytest

from pixel_reasoner.budget_check import recorded_budgets
from pixel_reasoner.errors import DataError

from open_r1_ext.dataset import enforce_policy, prepare_samples
from open_r1_ext.demo_data import DEMO_BUDGETS, SCENARIOS
from open_r1_ext.demo_data import demo_script_arguments as demo_args

CROP_ROWS = {f"{name}_0" for name in SCENARIOS if name not in ("reselect", "text_only", "language_only")}
OTHER_CROP_BUDGET = {"crop_max_pixels": DEMO_BUDGETS.crop.max_pixels // 2}  # 16 tokens instead of 32


def test_demo_rows_record_the_budgets_they_were_made_with(demo_data):
    for path in demo_data.values():
        with open(path) as f:
            assert {recorded_budgets(json.loads(line)["meta"]) for line in f} == {DEMO_BUDGETS}


def test_pixel_coordinate_rows_made_under_other_budgets_are_refused_naming_the_row(demo_data, sft_processor, tmp_path):
    prepared = prepare_samples(demo_args(data_files=[demo_data["qwen"]], **OTHER_CROP_BUDGET), sft_processor, None,
                               progress=False)
    assert {p.id for p in prepared.problems} == CROP_ROWS  # rows without crops do not depend on the crop budget
    problem = str(next(p for p in prepared.problems if p.id == "recrop_once_0"))
    assert problem.startswith(f"{demo_data['qwen']} row 1 (id recrop_once_0): made under other pixel budgets")
    assert "crop: made under 4–32 tokens (3136–25088 px), this run 4–16 tokens (3136–12544 px)" in problem
    assert "profile 'qwen' gives boxes in pixels of the image as shown" in problem
    with pytest.raises(DataError, match=rf"{len(CROP_ROWS)} invalid row\(s\)"):
        enforce_policy(prepared, str(tmp_path / "report.json"))


def test_normalized_rows_under_other_budgets_train_and_are_counted(demo_data, sft_processor, tmp_path, caplog):
    prepared = prepare_samples(demo_args(data_files=[demo_data["released"]], **OTHER_CROP_BUDGET), sft_processor,
                               None, progress=False)
    assert not prepared.problems and len(prepared.samples) == len(SCENARIOS)
    enforce_policy(prepared, str(tmp_path / "report.json"))
    report = json.load(open(tmp_path / "report.json"))
    assert report["notes"] == {"rows_other_budgets": len(CROP_ROWS)}
    assert report["budgets"]["crop"] == {"min_pixels": 3136, "max_pixels": 12544}
    assert f"{len(CROP_ROWS)} rows made under other pixel budgets than this run's, with normalized boxes" in caplog.text
    same = prepare_samples(demo_args(data_files=[demo_data["released"]]), sft_processor, None, progress=False)
    assert same.notes == {}


def test_pixel_rows_without_recorded_budgets_are_counted(demo_data, sft_processor, tmp_path):
    with open(demo_data["qwen"]) as f:
        rows = [json.loads(line) for line in f]
    for row in rows:
        del row["meta"]["budgets"]
    unrecorded = tmp_path / "trajectories.jsonl"
    unrecorded.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = demo_args(data_files=[str(unrecorded)], image_root=os.path.dirname(demo_data["qwen"]))
    prepared = prepare_samples(args, sft_processor, None, progress=False)
    assert not prepared.problems
    assert prepared.notes == {"pixel_rows_without_budgets": len(SCENARIOS) - 1}  # all but the language-only row


def test_the_old_field_name_pixel_budgets_still_reads_with_a_warning(tmp_path):
    """`pixel_budgets` (before the stages shared one name) works in the recipe and as a flag, for one release."""
    from open_r1_ext.sft import parse_args

    recipe = tmp_path / "old.yaml"
    recipe.write_text(f"pixel_budgets: paper_sft\noutput_dir: {tmp_path / 'out'}\nuse_cpu: true\nbf16: false\n")
    with pytest.warns(FutureWarning, match="pixel_budgets is deprecated, use budget_preset"):
        script, _, _ = parse_args(["--config", str(recipe)])
    assert script.budget_preset == "paper_sft"
    with pytest.warns(FutureWarning, match="--pixel-budgets is deprecated, use --budget_preset"):
        script, _, _ = parse_args(["--pixel-budgets", "paper_rl", "--output_dir", str(tmp_path / "out"), "--use_cpu",
                                   "--bf16", "false"])
    assert script.budget_preset == "paper_rl"

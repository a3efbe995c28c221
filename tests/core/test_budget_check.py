"""Pixel budgets across stages: the presets, their records, and the comparison that names every difference."""
import json

import pytest

from pixel_reasoner.budget_check import (SFT_RUN_CONFIG, budget_differences, checkpoint_budgets,
                                         compare_with_checkpoint, recorded_budgets)
from pixel_reasoner.config import BUDGET_PRESETS, TOKEN_PIXELS, PixelBudget, PixelBudgets, to_dict
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.media import budget_size


def test_consistent_preset_takes_rl_maxima_and_the_eval_floor():
    consistent, rl, evaluation = PixelBudgets.consistent(), PixelBudgets.paper_rl(), PixelBudgets.paper_eval()
    for kind in ("original", "crop", "frame"):
        assert consistent.for_kind(kind).max_pixels == rl.for_kind(kind).max_pixels
    assert consistent.original.min_pixels == consistent.crop.min_pixels == evaluation.crop.min_pixels
    assert consistent.frame.min_pixels == evaluation.frame.min_pixels == 4 * TOKEN_PIXELS
    # the examples: a 4000x3000 original as RL shows it, a 150x100 zoom upsampled as eval shows it
    assert budget_size(4000, 3000, consistent.original) == (1428, 1064)
    assert budget_size(150, 100, consistent.crop) == budget_size(150, 100, evaluation.crop) == (560, 392)
    assert [PixelBudgets.preset(name) for name in BUDGET_PRESETS] == [
        consistent, PixelBudgets.paper_sft(), rl, evaluation]


def test_budgets_round_trip_through_their_json_record():
    for name in BUDGET_PRESETS:
        budgets = PixelBudgets.preset(name)
        assert PixelBudgets.from_dict(json.loads(json.dumps(to_dict(budgets)))) == budgets
    with pytest.raises(ConfigError, match=r"budgets\.crop: expected"):
        PixelBudgets.from_dict({"original": {"min_pixels": 3136, "max_pixels": 6272}})


def test_differences_name_each_kind_with_tokens_pixels_and_an_example():
    lines = budget_differences(PixelBudgets.paper_sft(), PixelBudgets.paper_rl(), ("SFT", "RL"))
    assert [line.split(":")[0] for line in lines] == ["original", "crop", "frame"]
    assert lines[0] == ("original: SFT 4–5120 tokens (3136–4014080 px), RL 4–2000 tokens (3136–1568000 px) "
                        "(a 4000×3000 image is shown at 2296×1708 vs 1428×1064, 5002 vs 1938 tokens)")
    assert "4–192.9 tokens (3136–151200 px)" in lines[2] and "504×280 vs 728×392" in lines[2]
    # a difference only in the floor is shown on a size it changes
    floor = budget_differences(PixelBudgets.paper_rl(), PixelBudgets.consistent(), ("a", "b"), kinds=["original"])
    assert floor == ["original: a 4–2000 tokens (3136–1568000 px), b 256–2000 tokens (200704–1568000 px) "
                     "(a 320×240 image is shown at 308×252 vs 532×392, 99 vs 266 tokens)"]
    assert budget_differences(PixelBudgets.consistent(), PixelBudgets.consistent(), ("a", "b")) == []


def test_recorded_budgets_read_every_form_a_trajectory_holds():
    tiny = PixelBudgets(PixelBudget.tokens(4, 64), PixelBudget.tokens(4, 32), PixelBudget.tokens(4, 8))
    assert recorded_budgets({"budgets": to_dict(tiny), "budget_preset": "x"}) == tiny
    assert recorded_budgets({"budgets": "paper_sft"}) == PixelBudgets.paper_sft()  # older synthesis runs
    assert recorded_budgets({"episode": {"budgets": to_dict(tiny)}}) == tiny  # trajectory_from_episode
    assert recorded_budgets({"stats": {}}) is None
    with pytest.raises(ConfigError, match=r"meta\.budgets\.frame"):
        recorded_budgets({"budgets": {"original": {"min_pixels": 3136, "max_pixels": 6272},
                                      "crop": {"min_pixels": 3136, "max_pixels": 6272}, "frame": 7}})


def test_a_checkpoint_is_compared_with_the_budgets_its_sft_run_recorded(tmp_path):
    model = tmp_path / "sft_out"
    model.mkdir()
    assert checkpoint_budgets(str(model)) is None and compare_with_checkpoint(str(model), PixelBudgets(), "RL") is None
    assert compare_with_checkpoint("TIGER-Lab/PixelReasoner-RL-v1", PixelBudgets(), "eval") is None  # a hub id
    (model / SFT_RUN_CONFIG).write_text(json.dumps({"pixel_budgets": to_dict(PixelBudgets.consistent())}))  # old key
    assert compare_with_checkpoint(str(model), PixelBudgets.consistent(), "eval") is None
    (model / SFT_RUN_CONFIG).write_text(json.dumps({"budgets": to_dict(PixelBudgets.consistent())}))
    assert compare_with_checkpoint(str(model), PixelBudgets.consistent(), "eval") is None
    warning = compare_with_checkpoint(str(model), PixelBudgets.paper_eval(), "eval")
    assert warning.startswith(f"eval shows images at other sizes than the SFT run that trained {model}")
    assert "original: SFT 256–2000 tokens (200704–1568000 px), eval 256–8000 tokens" in warning
    assert "frame: SFT 4–400 tokens" in warning and "crop: SFT" in warning
    (model / SFT_RUN_CONFIG).write_text("{}")
    with pytest.raises(ConfigError, match="cannot read its `budgets`"):
        compare_with_checkpoint(str(model), PixelBudgets(), "RL")

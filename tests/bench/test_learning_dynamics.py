"""The pure parts of bench/learning_dynamics.py: a run's records -> per-step series, and the paired gain CI.

The fixtures are the first 3 steps of a real run (`bench/learning_dynamics.py`, arm `curiosity`, seed 0: 4 queries
x 8 samples from the 100-step zoom-task SFT checkpoint) and one step of a real `no_ssr` run: `metrics.jsonl` and
`groups.jsonl` lines as the runs wrote them.
"""
from __future__ import annotations

import json
import pathlib

import pytest

from bench.learning_dynamics import arm_summary, markdown_table, paired_gain, question_kind, step_series
from bench.rl_runs import read_jsonl

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "dynamics"


@pytest.fixture(scope="module")
def records() -> tuple[list[dict], list[dict]]:
    return read_jsonl(FIXTURES / "metrics.jsonl"), read_jsonl(FIXTURES / "groups.jsonl")


def test_series_splits_accuracy_and_rapr_by_question_kind(records):
    metrics, groups = records
    series = step_series(metrics, groups)
    assert [row["step"] for row in series] == [1, 2, 3]
    first = series[0]
    # step 1: groups train-detail-11 (2 of 8 right, 1 executed an operation), train-count-0 (1 right, none),
    # train-detail-6 (1 right, 2 executed), train-detail-19 (1 right, 2 executed)
    assert first["accuracy_detail"] == pytest.approx(4 / 24)
    assert first["accuracy_coarse"] == pytest.approx(1 / 8)
    assert first["rapr_detail"] == pytest.approx(5 / 24)
    assert first["rapr_coarse"] == 0.0
    assert first["requested_detail"] == 1.0  # every detail response asked for a crop; 5 of 24 executed one
    assert first["reward"] == metrics[0]["rollout/reward_mean"]
    assert first["operation_error_rate"] == metrics[0]["agent/operation_error_rate"]
    assert first["samples_trained"] == 32.0
    assert first["wall_s"] is None  # the first step's record includes start-up
    assert series[1]["wall_s"] == pytest.approx(94.567 - 56.938)


def test_series_agrees_with_the_controllers_own_step_means(records):
    """The group records and the step record are written separately; what the series derives from the groups
    must agree with what the controller logged for the same step."""
    metrics, groups = records
    for row, m in zip(step_series(metrics, groups), metrics):
        step_groups = [g for g in groups if g["step"] == m["step"]]
        detail = sum(len(g["correct"]) for g in step_groups if question_kind(g["label"]) == "detail")
        total = sum(len(g["correct"]) for g in step_groups)
        rapr = (row["rapr_detail"] * detail + row["rapr_coarse"] * (total - detail)) / total
        assert rapr == pytest.approx(m["rollout/rapr_mean"])
        assert row["zero_advantage_group_share"] == pytest.approx(m["ssr/reward_uniform_group_ratio"])
        bonus = sum(sum(g["terms"]["curiosity"]) for g in step_groups) / total
        assert row["curiosity_bonus"] == pytest.approx(bonus)
    series = step_series(metrics, groups)
    assert [r["zero_advantage_group_share"] for r in series] == [0.0, 0.0, 0.25]
    # step 3: SSR left out the zero-advantage group's 8 samples and filled their slots with replays
    assert [r["informative_sample_share"] for r in series] == [1.0, 1.0, 0.75]
    assert [r["replayed_share"] for r in series] == [0.0, 0.0, 0.25]


def test_without_ssr_every_fresh_sample_is_trained():
    """Step 9 of a real `no_ssr` run (`--pr.ssr.enabled false`): one group's advantages are all zero, and with SSR
    off its samples are trained like the others (no `ssr/batch_size` is logged, nothing is replayed)."""
    metrics, groups = read_jsonl(FIXTURES / "no_ssr_metrics.jsonl"), read_jsonl(FIXTURES / "no_ssr_groups.jsonl")
    (row,) = step_series(metrics, groups)
    assert "ssr/batch_size" not in metrics[0]
    assert row["zero_advantage_group_share"] == 0.25 == metrics[0]["ssr/reward_uniform_group_ratio"]
    assert row["informative_sample_share"] == 0.75
    assert row["samples_trained"] == row["fresh_samples"] == 32.0
    assert row["replayed_share"] is None


def test_a_skipped_step_trained_nothing(records):
    metrics, groups = records
    skipped = [dict(m, **{"ssr/skipped_step": 1.0}) for m in metrics]  # SSR skips a step with nothing informative
    assert [r["samples_trained"] for r in step_series(skipped, groups)] == [0.0, 0.0, 0.0]


def test_a_label_that_is_not_a_zoom_task_question_names_the_field(records):
    _, groups = records
    label = json.loads(groups[0]["label"])
    with pytest.raises(ValueError, match="label qid 'vstar-12'"):
        question_kind(dict(label, qid="vstar-12"))


def test_paired_gain_and_its_bootstrap_ci():
    before = {f"q{i}": float(i < 2) for i in range(20)}  # 2 of 20 right
    after = {f"q{i}": float(i < 10) for i in range(20)}  # the same 2 plus 8 more
    gain = paired_gain(before, after, resamples=2000)
    assert (gain["sft_accuracy_detail"], gain["rl_accuracy_detail"], gain["gain"]) == (10.0, 50.0, 40.0)
    lo, hi = gain["ci95"]
    assert 0 < lo < 40 < hi <= 60  # every question either gained or stayed: the paired CI excludes zero
    mixed = {f"q{i}": float(2 <= i < 4) for i in range(20)}  # 2 lost, 2 gained
    flat = paired_gain(before, mixed, resamples=2000)
    assert flat["gain"] == 0.0 and flat["ci95"][0] < 0 < flat["ci95"][1]
    with pytest.raises(ValueError, match="different questions"):
        paired_gain(before, {"q0": 1.0})


def test_table_has_one_row_per_arm(records):
    metrics, groups = records
    seeds = [{"seed": 0, "steps": step_series(metrics, groups)}, {"seed": 1, "steps": step_series(metrics, groups)}]
    arms = {"curiosity": {"seeds": seeds, "summary": arm_summary(seeds, window=1)}}
    table = markdown_table(arms).splitlines()
    assert len(table) == 3 and table[2].startswith("| curiosity | 2 x 3 | 0.15 → 0.08 |")
    two = arm_summary(seeds, window=2)  # steps 1-2 and 2-3, over both seeds
    assert two["rapr_detail_first"] == pytest.approx((5 / 24 + seeds[0]["steps"][1]["rapr_detail"]) / 2)
    assert two["reward_last"] == pytest.approx((seeds[0]["steps"][1]["reward"] + seeds[0]["steps"][2]["reward"]) / 2)


def test_rl_gain_refuses_a_model_that_is_not_a_checkpoint(tmp_path, capsys):
    from bench.rl_gain import main

    with pytest.raises(SystemExit) as stopped:
        main(["--model", str(tmp_path), "--out", str(tmp_path / "out")])
    assert stopped.value.code == 2
    assert f"--model {tmp_path}: not a checkpoint directory (no config.json)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything ran

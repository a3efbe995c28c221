"""`python -m pixel_reasoner.quickstart collect`, without running the pipeline: the `learning` section of
metrics.json and report.md are built from each stage's `python -m eval.learning` JSON, stages that did not run are
left out, and every number keeps its CI."""
import json
from pathlib import Path

from pixel_reasoner.quickstart import LEARNING_KEYS, ZOOM_KEYS, collect

RATES = LEARNING_KEYS + ZOOM_KEYS + ("accuracy_video", "rapr_detail", "rapr_coarse")


def write_learning(out: Path, stage: str, value: float) -> None:
    """An `eval.learning` JSON whose every rate is `value` (CI value ± 5), as that module writes it."""
    metrics = {k: {"value": value, "ci95": [value - 5, value + 5], "n": 40} for k in RATES}
    metrics["accuracy_video"] = None  # no video questions
    metrics.update(protocol="paper", results=str(out / "eval" / stage))
    (out / "eval" / stage).mkdir(parents=True)
    (out / "eval" / stage / "learning.json").write_text(json.dumps(metrics))


def test_learning_section_and_report_come_from_each_stage_s_metrics(tmp_path):
    for stage, value in (("base", 10.0), ("sft", 90.0), ("sft_no_tools", 30.0)):
        write_learning(tmp_path, stage, value)
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "trainer_state.json").write_text(json.dumps(
        {"global_step": 20, "log_history": [{"loss": 7.0, "step": 10}, {"loss": 1.5, "step": 20}]}))
    section = collect(str(tmp_path))["learning"]
    assert set(section) == {"chance_detail", "base", "sft", "sft_no_tools"}  # no RL stage ran
    assert section["chance_detail"] == 25.0
    assert {k: section["sft"][k] for k in LEARNING_KEYS} == dict.fromkeys(LEARNING_KEYS, 90.0)
    assert section["base"]["ci95"]["valid_call_rate"] == [5.0, 15.0] and section["base"]["n_detail"] == 40
    assert set(section["sft_no_tools"]) == {"accuracy_detail", "accuracy_coarse", "valid_call_rate", "ci95",
                                            "n_detail"}
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["learning"] == section and on_disk["sft"] == {"steps": 20, "losses": [7.0, 1.5]}
    report = (tmp_path / "report.md").read_text()
    assert "| after SFT | 90.0 [85, 95] | 90.0 [85, 95] | 90.0 [85, 95] | 90.0 [85, 95] | 90.0 [85, 95] |" in report
    assert "| after SFT, tools disabled | 30.0 [25, 35] | 30.0 [25, 35] | 30.0 [25, 35] | — | — |" in report
    assert "after RL" not in report and "loss 7.00 -> 1.50" in report
    assert section["sft"]["first_crop_contains_target"] == 90.0
    assert section["sft"]["n"]["cropped_again_after_target"] == 40
    assert ("- after SFT: the first crop holds the target in 90% of 40; with the target in it, it cropped again in 90% "
            "of 40; without, it answered anyway in 90% of 40.") in report


def test_a_warm_up_that_did_not_read_the_close_ups_is_flagged_with_the_fix(tmp_path):
    from pixel_reasoner.quickstart import warmup_verdict
    from pixel_reasoner.zoom_task.commands import WARMUP_READ_LOSS

    (tmp_path / "sft_warmup").mkdir()
    state = tmp_path / "sft_warmup" / "trainer_state.json"
    for last, read in ((0.048, True), (0.151, False)):  # docs/learning.md: ~0.05 once read, ~0.15 while not
        state.write_text(json.dumps({"log_history": [{"loss": 6.0, "step": 10}, {"loss": last, "step": 200},
                                                     {"train_loss": 0.5, "step": 200}]}))
        verdict = warmup_verdict(str(tmp_path), 200)
        assert verdict.startswith(f"warm-up loss {last:.3f}")
        assert ("WARNING" not in verdict) == read == (last <= WARMUP_READ_LOSS)
    assert "SFT_WARMUP_STEPS=400 bash recipes/quickstart_cpu.sh --clean" in verdict

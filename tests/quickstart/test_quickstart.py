"""`bash recipes/quickstart_cpu.sh`, the README's first command, run once end to end into a temporary directory,
with fewer SFT steps and held-out questions than its defaults (`QUICKSTART_KNOBS` of tests/conftest.py). The
run is the session's (`quickstart_run`): tests/sft/test_learning.py and tests/rl/test_unforced_rl_cpu.py read it too.

The quickstart runs the zoom task (docs/learning.md), so the test checks that something is learned, not only that
every stage runs: the untrained model makes no valid tool call, the SFT model follows the protocol on held-out
questions by itself (no forced call anywhere) and zooms on detail questions, the tools-disabled ablation makes no
call, and `metrics.json`'s `learning` section and `report.md` carry those numbers with their 95% CIs. Detail
accuracy is not asserted above chance: the SFT does not localise the target reliably yet (docs/learning.md).
Every process the script started carries the test's marker in its environment: the test watches them during the
run (their peak memory, summed PSS, is printed) and checks that none survives it. A rerun resumes: every stage is
kept and nothing changes.
"""
import json
import math
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

# timeout: the first test that uses `quickstart_run` runs the whole quickstart in its setup
pytestmark = [pytest.mark.timeout(3600), pytest.mark.slow, pytest.mark.rl, pytest.mark.vllm]
STAGES = ("model", "data", "base", "sft", "sft_eval", "rl", "rl_eval", "outputs")
LEARNING_KEYS = ("accuracy_detail", "accuracy_coarse", "valid_call_rate", "crop_contains_target", "rapr")


@pytest.fixture(scope="module")
def quickstart(quickstart_run):
    """The session's one quickstart run (tests/conftest.py)."""
    return quickstart_run


@pytest.fixture(scope="module")
def knobs(quickstart_harness):
    return quickstart_harness.knobs


def learning(out: Path, stage: str) -> dict:
    """The full `python -m eval.learning` output of a stage (every rate with its CI and n)."""
    return json.loads((out / "eval" / stage / "learning.json").read_text())


def test_every_stage_ran_with_a_progress_line(quickstart):
    lines = quickstart["stdout"].splitlines()
    for k, name in enumerate(STAGES, 1):
        assert any(re.match(rf"\[quickstart \d\d:\d\d\] stage {k}/{len(STAGES)} {name}: done in \d+s$", line)
                   for line in lines), f"no completion line for stage {k} ({name})"
    timings = [json.loads(line) for line in (quickstart["out"] / "timings.jsonl").read_text().splitlines()]
    assert [t["name"] for t in timings] == list(STAGES)
    assert "view.html" in quickstart["stdout"].split("Look at:")[-1]  # where to look


def test_no_process_it_started_survives(quickstart):
    # the marker reached the processes the script started (trainers, vLLM engines, Ray workers), so the check
    # below is not vacuous
    assert len(quickstart["seen"]) >= 10
    assert quickstart["survivors"] == {}


def test_it_fits_the_issue_s_memory_budget(quickstart):
    assert 0 < quickstart["peak_pss"] < 16 * 2**30  # "under 15 minutes on 2 cores and 16 GiB"


def test_teacher_trajectories_were_validated_and_trained_on(quickstart):
    out = quickstart["out"]
    stats = {d: json.loads((out / d / "stats.json").read_text())["trajectories"]
             for d in ("synthesis", "synthesis_no_tools")}
    assert {"single_pass", "recrop_once", "recrop_twice", "further_zoom_in", "text_only"} <= set(
        stats["synthesis"]["by_type"])
    validation = json.loads((out / "sft" / "data_validation.json").read_text())
    assert validation["invalid_rows"] == 0
    assert validation["training_samples"] == stats["synthesis"]["total"] + stats["synthesis_no_tools"]["total"]


def test_sft_loss_falls_and_is_plotted(quickstart, knobs):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from pixel_reasoner.zoom_task.commands import WARMUP_STEPS

    out = quickstart["out"]
    warmup = json.loads((out / "sft_warmup" / "trainer_state.json").read_text())
    state = json.loads((out / "sft" / "trainer_state.json").read_text())
    warmup_losses = [h["loss"] for h in warmup["log_history"] if "loss" in h]
    first = warmup_losses[0]  # the random model, on the close-ups
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]  # the main run, from the warm-up checkpoint
    assert warmup["global_step"] == WARMUP_STEPS and state["global_step"] == int(knobs["SFT_STEPS"])
    # the stage's summary line says whether the warm-up read the close-ups, from the warm-up's own last loss
    assert f"warm-up loss {warmup_losses[-1]:.3f}" in quickstart["stdout"]
    assert all(math.isfinite(x) for x in losses)
    vocabulary = len(AutoProcessor.from_pretrained(str(out / "sft")).tokenizer)
    assert first > 0.5 * math.log(vocabulary) and losses[-1] < 0.25 * first
    assert (out / "sft_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Qwen2_5_VLForConditionalGeneration.from_pretrained(str(out / "sft")).config.model_type == "qwen2_5_vl"


def test_rl_trained_from_the_sft_checkpoint(quickstart):
    out = quickstart["out"]
    steps = [json.loads(line) for line in (out / "rl" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) >= 2
    for step in steps:
        for key in ("rollout/rapr_mean", "reward/curiosity_mean", "ssr/replayed_share", "ssr/buffer_size"):
            assert math.isfinite(step[key]), (key, step)
    config = json.loads((out / "rl" / "run" / "config.json").read_text())
    assert str(out / "sft") in json.dumps(config)  # the RL run started from the SFT checkpoint
    assert config["pixel_reasoner"]["rollout"]["forced_turns"] == []  # the model calls its tools by itself
    assert "| step |" in quickstart["stdout"]  # the per-step statistics were printed


def test_every_evaluation_is_unforced_on_held_out_questions(quickstart):
    out = quickstart["out"]
    models = {"base": out / "model", "sft": out / "sft", "sft_no_tools": out / "sft", "rl": None}
    for stage, model in models.items():
        for benchmark in ("vstar", "tallyqa"):
            settings = json.loads((out / "eval" / stage / benchmark / "run_manifest.json").read_text())["settings"]
            assert settings["force_first_call"] is False, (stage, benchmark)
            if model is not None:
                assert settings["model"] == str(model)
            else:
                assert settings["model"].startswith(str(out / "rl" / "ckpt"))
    assert json.loads((out / "eval" / "sft_no_tools" / "vstar" / "run_manifest.json").read_text())[
        "settings"]["tools"] is False


def test_the_learning_section_shows_the_sft_model_follows_the_protocol(quickstart, knobs):
    out = quickstart["out"]
    section = json.loads((out / "metrics.json").read_text())["learning"]
    assert section["chance_detail"] == 25.0
    assert set(section) == {"chance_detail", "base", "sft", "sft_no_tools", "rl"}
    for stage in ("base", "sft", "rl"):
        assert set(LEARNING_KEYS) <= set(section[stage])
        for key in LEARNING_KEYS:
            value, ci = section[stage][key], section[stage]["ci95"][key]
            assert 0 <= value <= 100 and ci[0] <= value <= ci[1], (stage, key)
        assert section[stage]["n_detail"] == int(knobs["EVAL_DETAIL"])
        # the section is eval.learning's numbers, not a copy that could drift
        assert section[stage]["valid_call_rate"] == learning(out, stage)["valid_call_rate"]["value"]
    assert section["sft_no_tools"]["accuracy_detail"] is not None
    base, sft = section["base"], section["sft"]
    # untrained: a random model neither calls a tool validly nor boxes an answer; after SFT it does by itself
    assert base["valid_call_rate"] <= 10 and base["rapr"] <= 10
    # coarse questions are answered directly; a detail response can be invalid by running out of operations (it
    # re-crops a box it read as wrong), so this bar is lower than tests/sft/test_learning.py's protocol checks
    assert sft["valid_call_rate"] >= 50
    assert learning(out, "sft")["rapr_detail"]["value"] >= 80  # it zooms on detail questions
    assert learning(out, "sft_no_tools")["rapr"]["value"] == 0  # no tools offered, none called


def test_report_and_viewer_show_the_real_tool_calls(quickstart, knobs):
    out = quickstart["out"]
    report = (out / "report.md").read_text()
    for label in ("untrained (before SFT)", "after SFT", "after SFT, tools disabled", "after RL"):
        row = next(line for line in report.splitlines() if line.startswith(f"| {label} |"))
        assert len(re.findall(r"\d+\.\d \[\d+, \d+\]", row)) >= 3, row  # values with their 95% CIs
    assert "Chance on detail questions: 25%" in report
    page = (out / "view.html").read_text(encoding="utf-8")
    rows = sum(len((out / "eval" / s / "vstar" / "predictions.jsonl").read_text().splitlines()) for s in ("sft", "rl"))
    assert page.count("<article") == rows + 20  # every SFT and RL response to the image questions, 20 teacher rows
    assert len(re.findall(r"src='data:image/jpeg;base64,", page)) >= rows
    # the models' own responses, question by question (their tool calls are counted in the learning test)
    assert len(set(re.findall(r"vstar/eval-detail-\d+ sample 0", page))) == int(knobs["EVAL_DETAIL"])
    assert "http://" not in page and "https://" not in page


def test_a_rerun_resumes_and_keeps_everything(quickstart, quickstart_harness):
    out = quickstart["out"]
    before = {p: p.stat().st_mtime_ns for p in (out / "view.html", out / "sft" / "model.safetensors",
                                                 out / "eval" / "rl" / "vstar" / "predictions.jsonl")}
    result = quickstart_harness.run(out, quickstart["marker"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("finished in an earlier run, kept") == len(STAGES)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert quickstart_harness.marked(quickstart["marker"]) == {}


def test_ctrl_c_stops_every_process_it_started(tmp_path, quickstart_harness):
    """Ctrl-C (SIGINT to the script's process group, as a terminal sends it) while stage 3 evaluates the untrained
    model with a vLLM engine: the script exits and nothing it started survives."""
    marker = uuid.uuid4().hex
    env = quickstart_harness.env(tmp_path / "out", marker)
    # A terminal's shell starts with SIGINT at its default; a test run launched in the background inherits it
    # ignored, and bash cannot trap a signal ignored on entry, so the script would never see the Ctrl-C.
    proc = subprocess.Popen(["bash", str(quickstart_harness.script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 600
    evaluator = None
    while evaluator is None and time.time() < deadline and proc.poll() is None:
        for pid in quickstart_harness.marked(marker):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"-m\0eval\0run\0" in f.read():
                        evaluator = pid
            except OSError:
                continue
        time.sleep(0.5)
    assert evaluator is not None, "the evaluation of stage 3 never started"
    time.sleep(5)  # let it start its engine
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output[-3000:]
    assert "stopped (exit 130)" in output
    time.sleep(1)
    assert quickstart_harness.marked(marker) == {}

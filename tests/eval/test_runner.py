"""The multi-turn loop and the run command with a scripted model: batching, prompts, rows, resume, crashes.

The scripted generator stands in for the model only; the Episode engine, the runner, the writer, the manifest
and scoring are the real ones. Real vLLM generation is tested in test_vllm_run.py.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pixel_reasoner.config import EpisodeLimits, PixelBudget, PixelBudgets
from pixel_reasoner.episode import EpisodeConfig
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.protocol import get_profile

from eval.benchmarks import load_questions
from eval.benchmarks.common import LoadOptions
from eval.cli import run
from eval.config import RunConfig
from eval.records import read_predictions, recover_predictions, PredictionWriter
from eval.runner import GenerationResult, RunnerSettings, forced_call_regex, run_trajectories
from eval.testing import SMALL_BUDGETS, ScriptedGenerator

SMALL = PixelBudgets(PixelBudget.tokens(4, 128), PixelBudget.tokens(4, 64), PixelBudget.tokens(4, 16))


def settings(profile="released", **kw):
    return RunnerSettings(get_profile(profile), EpisodeConfig(SMALL, kw.pop("limits", EpisodeLimits())), **kw)


def test_batched_multi_turn_rows(benchmark_data, tmp_path):
    qs = load_questions("vstar", benchmark_data["vstar"])
    gen = ScriptedGenerator("released", answer="A")
    with PredictionWriter(str(tmp_path / "p.jsonl")) as w:
        stats = run_trajectories(qs, gen, settings(samples=2, batch_size=4), w)
    rows = read_predictions(str(tmp_path / "p.jsonl"))
    assert stats.written == 10 and len(rows) == 10
    # 10 trajectories x 2 turns in batches of <= 4 (finished trajectories are replaced at once)
    assert gen.batch_sizes == [4, 4, 4, 4, 2, 2] and stats.generate_calls == 6
    second_turn = [r for r in gen.requests if r.prompt.count("<|im_start|>assistant") == 2]
    assert len(second_turn) == 10
    for r in second_turn:  # the observation was appended as a user turn with the crop as a second image
        assert "<|im_start|>user\n\nHere is the cropped image (Image Size: " in r.prompt
        assert r.prompt.count("<|image_pad|>") == 2 == len(r.images) and r.stop == ["</tool_call>"]
        assert r.images[1].size[0] * r.images[1].size[1] <= 64 * 28 * 28  # crop budget applied
    row = rows[0]
    assert row["response"] == "The answer is \\boxed{A}." and row["num_operations"] == 1 and row["turns"] == 2
    assert row["crops"][0]["image"] == 1 and row["termination"] == "answer"
    x1, y1, x2, y2 = row["crops"][0]["box"]  # [0.1, 0.1, 0.6, 0.6] + 10% padding, in source pixels (448x336)
    assert (x1, y1, x2, y2) == (0, 0, 314, 236)
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert row["messages"][3]["content"][1]["provenance"]["box"] == [0, 0, 314, 236]
    assert {(r["id"], r["sample_idx"]) for r in rows} == {(q.id, k) for q in qs for k in range(2)}


def test_no_tools_is_one_turn_without_tools_block(benchmark_data, tmp_path):
    qs = load_questions("tallyqa", benchmark_data["tallyqa"])
    gen = ScriptedGenerator("released", answer="1")
    profile = RunConfig(model="m", benchmark="tallyqa", data=".", out=".", tools=False).protocol()
    s = RunnerSettings(profile, EpisodeConfig(SMALL, EpisodeLimits(max_turns=1)), tools=False)
    with PredictionWriter(str(tmp_path / "p.jsonl")) as w:
        run_trajectories(qs, gen, s, w)
    assert all("# Tools" not in r.prompt and r.stop == [] for r in gen.requests)
    assert all(r.prompt.endswith("Please think step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
                                 "<|im_start|>assistant\n") for r in gen.requests)
    rows = read_predictions(str(tmp_path / "p.jsonl"))
    assert [r["turns"] for r in rows] == [1] * 4 and rows[0]["num_operations"] == 0


def test_video_questions_send_frames_then_selected_frames(benchmark_data, tmp_path):
    qs = load_questions("mvbench", benchmark_data["mvbench"], LoadOptions(subset="action_sequence"))
    gen = ScriptedGenerator("released", answer="B")
    with PredictionWriter(str(tmp_path / "p.jsonl")) as w:
        run_trajectories(qs, gen, settings(), w)
    first, second = gen.requests[0], gen.requests[2]
    assert len(first.video) == 16 and first.images == [] and first.prompt.count("<|video_pad|>") == 1
    assert len(second.images) == 3 and "Here are the selected frames" in second.prompt
    rows = read_predictions(str(tmp_path / "p.jsonl"))
    assert rows[0]["crops"] == [] and rows[0]["operations"][0]["tool"] == "select_frames"


def test_limits_context_overflow_and_response_budget(benchmark_data, tmp_path):
    qs = load_questions("vstar", benchmark_data["vstar"])[:1]

    def overflow(requests):
        return [GenerationResult("", 0, "context_overflow", 99999) for _ in requests]

    def endless_calls(requests):
        call = ScriptedGenerator("released")._call(requests[0])
        return [GenerationResult(call, 50, "stop", 10) for _ in requests]

    rows = []
    for name, gen, s in [("a", overflow, settings()), ("b", endless_calls, settings(max_response_tokens=120)),
                         ("c", endless_calls, settings(limits=EpisodeLimits(max_operations=2)))]:
        with PredictionWriter(str(tmp_path / name)) as w:
            run_trajectories(qs, gen, s, w)
        rows += read_predictions(str(tmp_path / name))
    a, b, c = rows
    assert a["termination"] == "context_overflow" and a["turns"] == 0
    assert b["termination"] == "max_response_tokens" and b["generated_tokens"] == 150 and b["num_operations"] == 3
    # 2 operations run, the 3rd gets a warning observation, the 4th ends the episode (core EpisodeLimits)
    assert c["termination"] == "max_operations" and c["num_operations"] == 4 and c["num_operation_errors"] == 1


def test_forced_call_regex_matches_the_profiles_tools():
    import re

    released, qwen = get_profile("released"), get_profile("qwen")
    crop = ('<tool_call>\n{"name": "crop_image_normalized", "arguments": '
            '{"bbox_2d": [0.2, 0.1, 0.7, 0.8], "target_image": 1}}\n</tool_call>')
    assert re.fullmatch(forced_call_regex(released, False), crop)
    frames = '<tool_call>\n{"name": "select_frames", "arguments": {"target_frames": [2, 6, 12]}}\n</tool_call>'
    assert re.fullmatch(forced_call_regex(released, True), frames)
    pixels = ('<tool_call>\n{"name": "crop_image", "arguments": '
              '{"bbox_2d": [12, 40, 130, 149], "target_image": 1}}\n</tool_call>')
    assert re.fullmatch(forced_call_regex(qwen, False), pixels)


def scripted_config(benchmark_data, out, **kw):
    kw = {**SMALL_BUDGETS, "batch_size": 2, **kw}
    return RunConfig(model="/models/scripted", benchmark="vstar", data=benchmark_data["vstar"], out=str(out), **kw)


def test_resume_never_recomputes_and_refuses_other_settings(benchmark_data, tmp_path):
    calls = []

    def factory(config, video):
        calls.append(video)
        return ScriptedGenerator(config.profile)

    run(scripted_config(benchmark_data, tmp_path, limit=2, samples=2), factory)
    path = tmp_path / "predictions.jsonl"
    first = path.read_bytes()
    assert len(read_predictions(str(path))) == 4
    metrics = run(scripted_config(benchmark_data, tmp_path, limit=2, samples=2), factory)  # nothing left to do
    assert calls == [False] and path.read_bytes() == first and metrics["n_responses"] == 4
    run(scripted_config(benchmark_data, tmp_path, limit=4, samples=2, batch_size=3), factory)  # larger limit continues
    assert path.read_bytes().startswith(first) and len(read_predictions(str(path))) == 8
    manifest = json.loads((tmp_path / "run_manifest.json").read_text())
    assert [s["rows_before"] for s in manifest["sessions"]] == [0, 4, 4]
    assert manifest["settings"]["budgets"]["crop"] == {"min_pixels": 4 * 784, "max_pixels": 64 * 784}
    assert manifest["settings"]["protocol"]["tools"]["crop_image_normalized"]["settings"]["padding"] == 0.1
    assert manifest["sessions"][0]["versions"]["python"] and manifest["settings"]["model_fingerprint"] is None
    with pytest.raises(ConfigError, match="option_order: the existing run has 'original', this run has 'shuffled'"):
        run(scripted_config(benchmark_data, tmp_path, samples=2, shuffle_options=0), factory)
    lenient = run(scripted_config(benchmark_data, tmp_path, limit=4, samples=2, scoring_protocol="lenient"), factory)
    assert lenient["protocol"]["scoring"] == "lenient"  # scoring may change on resume: metrics are recomputed
    assert json.loads((tmp_path / "run_manifest.json").read_text())["sessions"][-1]["scoring_protocol"] == "lenient"
    with pytest.raises(ConfigError, match="budgets.crop.max_pixels: the existing run has 50176, this run has 100352"):
        run(scripted_config(benchmark_data, tmp_path, samples=2, crop_max_pixels=128 * 784), factory)
    assert len(calls) == 2


def test_partial_last_line_is_discarded_and_a_complete_one_kept(tmp_path):
    path = tmp_path / "p.jsonl"
    good = json.dumps({"id": "a", "benchmark": "vstar", "sample_idx": 0, "response": "", "answer": "A"})
    path.write_text(good + "\n" + good.replace('"a"', '"b"')[:30])
    assert recover_predictions(str(path)) == 30
    assert path.read_text() == good + "\n"
    path.write_text(good + "\n" + good.replace('"a"', '"b"'))  # crash between the row and its newline
    assert recover_predictions(str(path)) == 0
    assert [r["id"] for r in read_predictions(str(path))] == ["a", "b"]


DRIVER = """
import sys
from eval.cli import run
from eval.config import RunConfig
from eval.testing import SMALL_BUDGETS, ScriptedGenerator
config = RunConfig(model="/models/scripted", benchmark="vstar", data=sys.argv[1], out=sys.argv[2], samples=3,
                   **SMALL_BUDGETS, batch_size=1)
run(config, lambda c, video: ScriptedGenerator(c.profile, delay=float(sys.argv[3])))
"""


def test_kill_9_mid_run_then_resume(benchmark_data, tmp_path):
    """A crash loses only rows in flight: kill -9 a run, rerun it, and check nothing is duplicated or lost and
    every row written before the kill is byte-for-byte untouched."""
    out, driver = tmp_path / "run", tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, str(driver), benchmark_data["vstar"], str(out), "0.15"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    predictions = out / "predictions.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not predictions.exists() or predictions.read_text().count("\n") < 4):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = predictions.read_bytes()
    complete = before[: before.rfind(b"\n") + 1]
    n_before = complete.count(b"\n")
    assert 4 <= n_before < 15, "the run should have been killed mid-way"
    with open(predictions, "ab") as f:  # what a kill during a write leaves behind
        f.write(b'{"id": "3", "benchmark": "vstar", "sample_idx": 2, "resp')
    result = subprocess.run([sys.executable, str(driver), benchmark_data["vstar"], str(out), "0"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "discarding a partially written last line" in result.stderr
    after = predictions.read_bytes()
    assert after.startswith(complete)
    rows = read_predictions(str(predictions))  # raises on any duplicate
    assert len(rows) == 15 and {(r["id"], r["sample_idx"]) for r in rows} == {(str(i), k) for i in range(5) for k in range(3)}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_responses"] == 15 and metrics["incomplete_questions"] == []


def test_infovqa_test_split_writes_the_official_submission(benchmark_data, tmp_path):
    config = RunConfig(model="/models/scripted", benchmark="infovqa", data=benchmark_data["infovqa"], split="test",
                       out=str(tmp_path), **SMALL_BUDGETS)
    metrics = run(config, lambda c, video: ScriptedGenerator(c.profile, answer="seed 200"))
    assert metrics["score"] is None and metrics["n_questions"] == 4
    submission = json.loads((tmp_path / "submission.json").read_text())
    assert submission == [{"questionId": 65100 + i, "answer": "seed 200"} for i in range(4)]


def test_budgets_that_differ_from_the_checkpoints_sft_run_are_warned_and_recorded(benchmark_data, tmp_path, caplog):
    """An SFT checkpoint records the budgets it trained with (sft_run_config.json); eval compares its own with them,
    logs the differing numbers and keeps them in the run manifest."""
    from pixel_reasoner.budget_check import SFT_RUN_CONFIG
    from pixel_reasoner.config import to_dict

    model = tmp_path / "sft_checkpoint"
    model.mkdir()

    def config(out, **kw):
        return RunConfig(model=str(model), benchmark="vstar", data=benchmark_data["vstar"], out=str(tmp_path / out),
                         limit=1, **{**SMALL_BUDGETS, **kw})

    (model / SFT_RUN_CONFIG).write_text(json.dumps({"budgets": to_dict(config("x").budgets())}))
    run(config("same"), lambda c, video: ScriptedGenerator(c.profile))
    assert "other sizes" not in caplog.text
    assert "budget_mismatch" not in json.loads((tmp_path / "same" / "run_manifest.json").read_text())["sessions"][0]
    run(config("other", crop_max_pixels=32 * 784), lambda c, video: ScriptedGenerator(c.profile))
    expected = "crop: SFT 4–64 tokens (3136–50176 px), eval 4–32 tokens (3136–25088 px)"
    assert f"eval shows images at other sizes than the SFT run that trained {model}" in caplog.text
    assert expected in caplog.text and "original: SFT" not in caplog.text
    assert expected in json.loads((tmp_path / "other" / "run_manifest.json").read_text())["sessions"][0][
        "budget_mismatch"]


def test_a_run_made_before_the_renames_resumes(benchmark_data, tmp_path):
    """Manifests written with the old names (num_frames, max_tokens_per_turn, *_tokens overrides) still resume."""
    run(scripted_config(benchmark_data, tmp_path, limit=1), lambda c, video: ScriptedGenerator(c.profile))
    path = tmp_path / "run_manifest.json"
    manifest = json.loads(path.read_text())
    old = manifest["settings"]
    old["num_frames"] = old.pop("video_frames")
    old["sampling"]["max_tokens_per_turn"] = old["sampling"].pop("max_turn_tokens")
    old["max_tokens_per_turn"] = old.pop("max_turn_tokens")
    for kind, low, high in (("original", 4, 128), ("crop", 4, 64), ("frame", None, None)):
        old.pop(f"{kind}_min_pixels"), old.pop(f"{kind}_max_pixels")
        old[f"{kind}_tokens"] = None if low is None else [low, high]
    path.write_text(json.dumps(manifest))
    metrics = run(scripted_config(benchmark_data, tmp_path, limit=1), lambda c, video: ScriptedGenerator(c.profile))
    assert metrics["n_responses"] == 1
    old["crop_tokens"] = [4, 32]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="crop_max_pixels: the existing run has 25088, this run has 50176"):
        run(scripted_config(benchmark_data, tmp_path, limit=1), lambda c, video: ScriptedGenerator(c.profile))

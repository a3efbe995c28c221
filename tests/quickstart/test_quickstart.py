"""`bash recipes/quickstart_cpu.sh`, the README's first command, run once end to end into a temporary directory.

Every artefact is checked in the format the 7B pipeline uses: the synthesised trajectories pass the SFT validator,
the SFT and RL checkpoints load as Qwen2.5-VL models with their processor, the RL run recorded GRPO steps with the
curiosity reward and SSR, every benchmark has metrics with a score, the report has the paper's Table 1 layout and
the viewer page embeds the images. Every process the script started carries the test's marker in its environment:
the test watches them during the run (their peak memory, summed PSS, is printed) and checks that none survives it. A rerun
resumes: every stage is kept and nothing changes.
"""
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.rl, pytest.mark.vllm]
REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "recipes" / "quickstart_cpu.sh"
MARKER = "PIXEL_REASONER_QUICKSTART_TEST"
BENCHMARKS = ("vstar", "tallyqa", "infovqa", "mvbench")
TABLE_1_HEADER = "| Model | V* Bench Acc | TallyQA-complex Acc | MVBench-test Acc | InfoVQA-test ANLS |"


def marked_processes(marker: str) -> dict[int, int]:
    """{pid: proportional set size in bytes (shared pages split between their users)} of the processes whose
    environment carries `MARKER=marker`."""
    needle = f"{MARKER}={marker}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/smaps_rollup") as f:
                pss = next(line for line in f if line.startswith("Pss:"))
            found[int(entry)] = int(pss.split()[1]) * 1024
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    return found


class ProcessWatch(threading.Thread):
    """Samples the marked processes every half second: how many distinct ones ran, and the peak of their summed
    proportional set size (the memory the run occupied; brief peaks between samples can be missed)."""

    def __init__(self, marker: str):
        super().__init__(daemon=True)
        self.marker, self.seen, self.peak_pss, self.stop = marker, set(), 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            found = marked_processes(self.marker)
            self.seen |= set(found)
            self.peak_pss = max(self.peak_pss, sum(found.values()))
            time.sleep(0.5)


@pytest.fixture(scope="module", autouse=True)
def patched_openrlhf_on_pythonpath(rl_env):
    """The RL stage runs our launcher, which needs an OpenRLHF patched with our hooks (scripts/install.sh patches
    the installed one; on a development venv that must not change, a patched copy comes first on PYTHONPATH)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", rl_env()["PYTHONPATH"])
        yield


def run_script(out: Path, marker: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, MARKER: marker}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart") / "quickstart_out"
    marker = uuid.uuid4().hex
    watch = ProcessWatch(marker)
    watch.start()
    started = time.time()
    try:
        result = run_script(out, marker)
    finally:
        watch.stop.set()
        watch.join()
    seconds = time.time() - started
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    time.sleep(1)
    survivors = marked_processes(marker)
    print(f"\nquickstart: {seconds:.0f}s wall, {len(watch.seen)} processes started, peak memory (summed PSS) "
          f"{watch.peak_pss / 2**30:.1f} GiB; stage timings: {(out / 'timings.jsonl').read_text()}")
    return {"out": out, "stdout": result.stdout, "survivors": survivors, "seen": watch.seen, "marker": marker,
            "seconds": seconds, "peak_pss": watch.peak_pss}


def test_every_stage_ran_with_a_progress_line(quickstart):
    lines = quickstart["stdout"].splitlines()
    for k, name in enumerate(("model", "synthesis", "sft", "rl", "eval", "outputs"), 1):
        assert any(re.match(rf"\[quickstart \d\d:\d\d\] stage {k}/6 {name}: done in \d+s$", line)
                   for line in lines), f"no completion line for stage {k} ({name})"
    timings = [json.loads(line) for line in (quickstart["out"] / "timings.jsonl").read_text().splitlines()]
    assert [t["name"] for t in timings] == ["model", "synthesis", "sft", "rl", "eval", "outputs"]
    assert "view.html" in quickstart["stdout"].split("Look at:")[-1]  # where to look


def test_no_process_it_started_survives(quickstart):
    # the marker reached the processes the script started (vLLM server, trainers, Ray workers), so the
    # check below is not vacuous
    assert len(quickstart["seen"]) >= 10
    assert quickstart["survivors"] == {}


def test_it_fits_the_issue_s_memory_budget(quickstart):
    assert 0 < quickstart["peak_pss"] < 16 * 2**30  # "under 15 minutes on 2 cores and 16 GiB"


def test_synthesised_trajectories_pass_the_sft_validator(quickstart):
    from open_r1_ext.config import SFTScriptArguments
    from open_r1_ext.dataset import prepare_samples
    from open_r1_ext.modeling import load_processor
    from pixel_reasoner.trajectory import read_trajectories

    out = quickstart["out"]
    data = out / "synthesis" / "trajectories.jsonl"
    trajectories = [t for _, t in read_trajectories(str(data))]
    assert len(trajectories) >= 8
    assert {t.trajectory_type for t in trajectories} & {"recrop_once", "recrop_twice", "further_zoom_in", "reselect"}
    assert all(t.validate(root=str(out / "synthesis"), where=t.id) == [] for t in trajectories)
    args = SFTScriptArguments(data_files=[str(data)])
    prepared = prepare_samples(args, load_processor(str(out / "model"), args.budgets()), 4096, progress=False)
    assert not prepared.problems, [str(p) for p in prepared.problems]
    assert len(prepared.samples) == len(trajectories)
    stats = json.loads((out / "synthesis" / "stats.json").read_text())
    # the random model's outputs were asked for and rejected; the template fallback says so for each item
    assert stats["api_all_runs"]["endpoints"]["expert"]["requests"] >= 1
    assert stats["trajectories"]["from_templates"]["total"] == len(trajectories)
    assert sum(stats["trajectories"]["from_templates"]["model_rejections"].values()) == len(trajectories)


def test_sft_checkpoint_loads_and_trained_with_masking(quickstart):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    sft = quickstart["out"] / "sft"
    state = json.loads((sft / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert state["global_step"] == 4 and len(losses) == 4 and all(math.isfinite(x) for x in losses)
    validation = json.loads((sft / "data_validation.json").read_text())
    assert validation["invalid_rows"] == 0 and validation["training_samples"] >= 8
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(sft))
    assert model.config.model_type == "qwen2_5_vl"
    assert AutoProcessor.from_pretrained(str(sft)).image_processor is not None


def test_rl_ran_grpo_steps_with_curiosity_and_ssr(quickstart):
    from transformers import AutoProcessor

    out = quickstart["out"]
    steps = [json.loads(line) for line in (out / "rl" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) >= 3
    for step in steps:
        for key in ("rollout/rapr_mean", "reward/curiosity_mean", "reward/efficiency_mean",
                    "ssr/replayed_share", "ssr/buffer_size", "ssr/reward_uniform_group_ratio"):
            assert math.isfinite(step[key]), (key, step)
        assert step["ssr/batch_multiple_of_train_batch"] == 1
    # a step with nothing to learn from (a reward-uniform group, empty replay buffer) is skipped, as SSR must
    trained = [s for s in steps if not s["ssr/skipped_step"]]
    assert len(trained) >= 3 and all(math.isfinite(s["policy_loss"]) and s["ssr/batch_size"] > 0 for s in trained)
    assert any(s["reward/curiosity_mean"] > 0 for s in steps) and any(s["ssr/replayed_share"] > 0 for s in steps)
    config = json.loads((out / "rl" / "run" / "config.json").read_text())
    assert str(out / "sft") in json.dumps(config)  # the RL run started from the SFT checkpoint
    assert "| step |" in quickstart["stdout"]  # the per-step statistics were printed
    assert AutoProcessor.from_pretrained(str(out / "rl" / "ckpt")).image_processor is not None


def test_eval_metrics_report_and_viewer(quickstart):
    out = quickstart["out"]
    rows = 0
    for benchmark in BENCHMARKS:
        folder = out / "eval" / "results" / benchmark
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["benchmark"] == benchmark and isinstance(metrics["score"], float)
        assert metrics["n_questions"] >= 2 and metrics["rapr"] is not None
        manifest = json.loads((folder / "run_manifest.json").read_text())
        assert manifest["settings"]["model"] == str(out / "rl" / "ckpt")  # the RL output was evaluated
        rows += len((folder / "predictions.jsonl").read_text().splitlines())
    report = (out / "report.md").read_text()
    assert TABLE_1_HEADER in report and "| Pixel-Reasoner (paper) | 84.3 | 73.8 | 67.8 | 84.0 |" in report
    summary = json.loads((out / "metrics.json").read_text())
    assert set(summary["eval"]) == set(BENCHMARKS) and len(summary["stages"]) == 6
    assert summary["rl"]["steps"] >= 3 and summary["sft"]["steps"] == 4
    page = (out / "view.html").read_text(encoding="utf-8")
    synthesised = len((out / "synthesis" / "trajectories.jsonl").read_text().splitlines())
    assert page.count("<article") == synthesised + rows
    assert len(re.findall(r"src='data:image/jpeg;base64,", page)) >= synthesised + rows
    assert "http://" not in page and "https://" not in page


def test_a_rerun_resumes_and_keeps_everything(quickstart):
    out = quickstart["out"]
    before = {p: p.stat().st_mtime_ns for p in (out / "report.md", out / "view.html", out / "sft" / "model.safetensors")}
    result = run_script(out, quickstart["marker"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("finished in an earlier run, kept") == 6
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert marked_processes(quickstart["marker"]) == {}


def test_ctrl_c_stops_every_process_it_started(tmp_path):
    """Ctrl-C (SIGINT to the script's process group, as a terminal sends it) while the vLLM server of stage 2 is
    up: the script exits and nothing it started survives, the background server included."""
    marker = uuid.uuid4().hex
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, MARKER: marker}
    # A terminal's shell starts with SIGINT at its default; a test run launched in the background inherits it
    # ignored, and bash cannot trap a signal ignored on entry, so the script would never see the Ctrl-C.
    proc = subprocess.Popen(["bash", str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 600
    server = None
    while server is None and time.time() < deadline and proc.poll() is None:
        for pid in marked_processes(marker):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"vllm.entrypoints.openai.api_server" in f.read():
                        server = pid
            except OSError:
                continue
        time.sleep(0.5)
    assert server is not None, "the vLLM server of stage 2 never started"
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output[-3000:]
    assert "stopped (exit 130)" in output
    time.sleep(1)
    assert marked_processes(marker) == {}

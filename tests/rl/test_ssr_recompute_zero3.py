"""SSR `--pr.ssr.stale_logprobs recompute` on two DeepSpeed ZeRO-3 actor ranks (CPU mode, gloo; see
zero3_recompute_probe.py): replay counts that do not split evenly over the ranks must not deadlock the
parameter all-gather, results map back to the right samples, and importance-sampling correction sees the
recomputed log-probs as the replays' rollout log-probs."""
import json
import pathlib
import subprocess
import sys

import psutil
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_recompute_on_two_zero3_ranks(tiny_rl_inputs, tmp_path, dry_run, rl_env):
    code, out, document = dry_run([
        "--actor.model_name_or_path", tiny_rl_inputs["model"], "--actor.num_gpus_per_node", "2",
        "--ds.zero_stage", "3", "--ds.param_dtype", "bf16", "--ds.attn_implementation", "sdpa",
        "--vllm.sync_backend", "gloo", "--vllm.num_engines", "1", "--vllm.enforce_eager", "--pr.cpu.enabled",
        "--train.agent_func_path", str(REPO / "openrlhf_ext" / "agent.py"),
        "--data.prompt_dataset", tiny_rl_inputs["prompts"], "--data.input_key", "input", "--data.label_key",
        "label", "--data.apply_chat_template", "--data.max_images_per_prompt", "16",
        "--algo.advantage.estimator", "dr_grpo", "--algo.kl.init_coef", "0", "--rollout.n_samples_per_prompt", "2",
        "--rollout.batch_size", "2", "--rollout.micro_batch_size", "1", "--train.batch_size", "2",
        "--train.micro_batch_size", "1", "--algo.advantage.is_correction_level", "token",
        "--pr.ssr.stale_logprobs", "recompute", "--pr.config", tiny_rl_inputs["settings"],
        "--ckpt.output_dir", str(tmp_path / "out")])
    assert code == 0, out[-4000:]
    path = tmp_path / "resolved.json"
    path.write_text(json.dumps(document))
    process = subprocess.Popen([sys.executable, str(REPO / "tests" / "rl" / "zero3_recompute_probe.py"),
                                str(path), str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, cwd=str(REPO), start_new_session=True, env=rl_env())
    try:
        out, _ = process.communicate(timeout=500)
    finally:
        if process.poll() is None:  # stop exactly the probe's process tree (its private Ray instance)
            tree = psutil.Process(process.pid)
            procs = [tree] + tree.children(recursive=True)
            for p in procs:
                p.kill()
            psutil.wait_procs(procs, timeout=30)
    line = next((ln for ln in out.splitlines() if ln.startswith("PROBE ")), None)
    assert line is not None, out[-4000:]
    report = json.loads(line[len("PROBE "):])
    for count in ("4", "3", "1"):  # 3 and 1 replays do not split evenly over 2 ranks
        assert count in report and report[count]["problem"] is None, report
        assert report[count]["shapes_match"] and report[count]["recomputed"], report
        assert report[count]["rollout_equals_recomputed"], report
    assert report["same_logprobs_across_chunkings"], report

"""`ray job submit -- bash recipes/rl_7b.sh` with DRY_RUN=1 on a real Ray head (loopback): the paper's settings
resolve through the launcher inside a Ray job, without a GPU; a broken combination fails the job loudly."""
import json
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_rl_7b_recipe_dry_run_as_ray_job(ray_head, tiny_rl_inputs, tmp_path):
    env = {"DRY_RUN": "1", "DATA": tiny_rl_inputs["prompts"], "OUT": str(tmp_path / "out"),
           "PYTHON": sys.executable}
    done = ray_head.submit(["bash", str(REPO / "recipes" / "rl_7b.sh")], env_vars=env, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "dry run (--pr.dry_run): configuration valid" in out and "succeeded" in out
    command = next(line for line in out.splitlines() if line.startswith("==> command:"))
    assert "python -m openrlhf.cli.train_ppo_ray --pr.enable " in command and "--pr.dry_run" in command.split()
    for flag in ("--actor.model_name_or_path TIGER-Lab/PixelReasoner-WarmStart", "--rollout.n_samples_per_prompt 8",
                 "--rollout.batch_size 512", "--train.batch_size 256", "--actor.adam.lr 1e-06",
                 "--actor.lr_scheduler cosine_with_min_lr", "--actor.lr_warmup_ratio 0.03",
                 "--algo.advantage.estimator dr_grpo", "--algo.kl.init_coef 0", "--vllm.num_engines 4",
                 "--actor.num_gpus_per_node 4", "--data.max_images_per_prompt 16", "--actor.dual_clip 3",
                 f"--pr.config {REPO / 'recipes' / 'rl_7b.yaml'}"):
        assert flag in command, flag
    section = out[out.index("==> Pixel Reasoner RL configuration"):out.index("==> OpenRLHF configuration")]
    ours, _ = json.JSONDecoder().raw_decode(section.split("\n", 1)[1])  # the ssr_train_samples line follows
    terms = ours["rewards"]["settings"]
    assert (terms["curiosity"]["weight"], terms["efficiency"]["weight"], terms["curiosity"]["rapr_threshold"],
            terms["efficiency"]["free_operations"]) == (0.5, 0.05, 0.3, 1)
    assert ours["rollout"]["image_cache_bytes"] == 4 * 2**30  # the recipe's value over the default
    assert ours["ssr"]["enabled"] and ours["ssr"]["capacity"] == 4096
    assert "ssr_train_samples_per_step=2048" in out
    assert "==> advantage estimator: dr_grpo: A = r − mean(group)" in out
    assert "==> controller memory estimate" in out and "2 rollouts held × 4096 samples" in out
    assert ours["ssr"]["max_bytes"] == 64 * 2**30
    assert not (tmp_path / "out").exists()


def test_multi_node_layout_and_a_broken_combination_fail_the_job(ray_head, tiny_rl_inputs, tmp_path):
    env = {"DRY_RUN": "1", "DATA": tiny_rl_inputs["prompts"], "OUT": str(tmp_path / "out"), "NNODES": "4",
           "PYTHON": sys.executable}
    done = ray_head.submit(["bash", str(REPO / "recipes" / "rl_7b.sh"), "--train.dynamic_batch_enable"],
                           env_vars=env, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "--actor.num_nodes 2 --actor.num_gpus_per_node 8 --vllm.num_engines 16" in out
    assert "caused by --train.dynamic_batch_enable" in out and "nothing was started" in out

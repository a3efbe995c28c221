"""`python -m openrlhf_ext.train`: flag splitting, resolution and the --dry-run validation (no Ray, no GPU)."""
import json
import os

import pytest

from openrlhf_ext import train
from pixel_reasoner.errors import ConfigError


@pytest.fixture
def valid_argv(tiny_rl_inputs, tmp_path):
    return ["--actor.model_name_or_path", tiny_rl_inputs["model"], "--actor.num_gpus_per_node", "1",
            "--train.agent_func_path", os.path.join(str(train.__file__).rsplit("/", 1)[0], "agent.py"),
            "--data.prompt_dataset", tiny_rl_inputs["prompts"], "--data.input_key", "input",
            "--data.label_key", "label", "--data.apply_chat_template", "--data.max_images_per_prompt", "32",
            "--vllm.num_engines", "1", "--algo.advantage.estimator", "group_norm", "--algo.kl.init_coef", "0",
            "--rollout.n_samples_per_prompt", "4", "--rollout.batch_size", "2", "--train.batch_size", "8",
            "--ckpt.output_dir", str(tmp_path / "out")]


@pytest.fixture(autouse=True)
def tiny_rollout_config(tiny_rl_inputs, monkeypatch):
    monkeypatch.setenv("PIXEL_REASONER_ROLLOUT_CONFIG", tiny_rl_inputs["rollout_config"])
    monkeypatch.delenv("PIXEL_REASONER_CPU_MODE", raising=False)


def run_main(argv, capsys):
    rc = train.main(argv)
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_flags_are_split_between_ours_and_upstream(valid_argv):
    launch = train.parse(valid_argv + ["--pr.curiosity.alpha", "0.7", "--pr.ssr.enabled", "false",
                                       "--pr.rollout.budgets.crop.max_pixels", "20000", "--dry-run"])
    assert launch.dry_run and launch.config.curiosity.alpha == 0.7 and not launch.config.ssr.enabled
    assert launch.rollout.budgets.crop.max_pixels == 20000
    assert launch.rollout.budgets.original.max_pixels == 48 * 784  # from $PIXEL_REASONER_ROLLOUT_CONFIG
    assert not any(a.startswith("--pr.") or a == "--dry-run" for a in launch.upstream_argv)
    assert launch.upstream.args.rollout.n_samples_per_prompt == 4
    # resolved from upstream's flags
    assert launch.config.ssr.capacity == 8
    assert launch.config.log.run_dir.endswith(os.path.join("out", "pixel_reasoner"))


def test_budget_preset_flag(valid_argv):
    launch = train.parse(valid_argv + ["--pr.rollout.budgets.preset", "paper_eval",
                                       "--pr.rollout.budgets.frame.max_pixels", "99999"])
    assert launch.rollout.budgets.original.max_pixels == 8000 * 784
    assert launch.rollout.budgets.frame.max_pixels == 99999


def test_unknown_pr_flag_is_an_error(valid_argv, capsys):
    rc, out = run_main(valid_argv + ["--pr.curiosity.alpah", "0.7"], capsys)
    assert rc == 2 and "--pr.curiosity.alpah" in out
    with pytest.raises(ConfigError, match="rapr_threshold"):
        train.parse(valid_argv + ["--pr.curiosity.rapr_threshold", "3"])


def test_dry_run_valid_prints_everything_and_starts_nothing(valid_argv, capsys, tmp_path):
    rc, out = run_main(valid_argv + ["--dry-run", "--pr.curiosity.beta", "0.1"], capsys)
    assert rc == 0, out
    assert "dry run: configuration valid" in out
    assert "upstream command: python -m openrlhf.cli.train_ppo_ray --actor.model_name_or_path" in out
    assert '"beta": 0.1' in out and '"estimator": "group_norm"' in out
    assert not (tmp_path / "out").exists()  # nothing written, nothing started


@pytest.mark.parametrize("extra, message", [
    (["--train.dynamic_batch_enable"], "caused by --train.dynamic_batch_enable"),
    (["--ds.ring_attn_size", "2", "--actor.num_gpus_per_node", "2", "--train.batch_size", "8"],
     "caused by --ds.ring_attn_size > 1"),
    (["--train.micro_batch_size", "2", "--actor.num_gpus_per_node", "4", "--train.batch_size", "12"],
     "must be a multiple of --train.micro_batch_size × data-parallel actors = 2 × 4 = 8"),
    (["--data.max_images_per_prompt", "4"], "below the agent's limits.max_images=32"),
    (["--vllm.num_engines", "0"], "--vllm.num_engines must be >= 1"),
    (["--data.prompt_dataset", "/nonexistent/prompts.jsonl"], "no such file or directory"),
    (["--algo.advantage.estimator", "reinforce"], "SSR selects samples by their group-relative advantage"),
    (["--pr.rollout.budgets.preset", "paper_eval"], "the processor would resize the images again"),
    (["--algo.advantage.estimator", "reinforce_baseline"], "whitens the advantages over the whole batch"),
])
def test_dry_run_refuses_what_upstream_lets_through(valid_argv, capsys, extra, message):
    rc, out = run_main(valid_argv + extra + ["--dry-run"], capsys)
    assert rc == 2 and message in out, out


def test_curiosity_needs_groups(valid_argv, capsys):
    argv = valid_argv + ["--rollout.n_samples_per_prompt", "1", "--algo.advantage.estimator", "reinforce",
                         "--pr.ssr.enabled", "false", "--dry-run"]
    rc, out = run_main(argv, capsys)
    assert rc == 2 and "curiosity needs several samples per query" in out


def test_agent_that_does_not_load_is_reported(valid_argv, capsys, tmp_path):
    broken = tmp_path / "agent.py"
    broken.write_text("raise RuntimeError('agent import exploded')\n")
    argv = valid_argv + ["--train.agent_func_path", str(broken), "--dry-run"]
    rc, out = run_main(argv, capsys)
    assert rc == 2 and "does not load: RuntimeError: agent import exploded" in out


def test_dataset_rows_are_checked(valid_argv, capsys, tmp_path, tiny_rl_inputs):
    rows = [json.loads(line) for line in open(tiny_rl_inputs["prompts"])]
    rows[1]["images"] = ["/nonexistent/missing.png"]
    bad = tmp_path / "prompts.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc, out = run_main(valid_argv + ["--data.prompt_dataset", str(bad), "--dry-run"], capsys)
    assert rc == 2 and "row 2: /nonexistent/missing.png" in out


def test_cpu_mode_checks(valid_argv, capsys, monkeypatch):
    monkeypatch.setenv("PIXEL_REASONER_CPU_MODE", "1")
    rc, out = run_main(valid_argv + ["--dry-run"], capsys)
    assert rc == 2
    assert "use --ds.attn_implementation sdpa" in out and "use --vllm.sync_backend gloo" in out


def test_help_lists_ours_then_upstream(capsys):
    with pytest.raises(SystemExit) as done:
        train.main(["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "--pr.ssr.stale_logprobs" in out and "--pr.rollout.limits.max_operations" in out
    assert "--algo.advantage.estimator" in out


def test_dry_run_prints_the_advantage_estimator_and_the_controller_memory(valid_argv, capsys):
    rc, out = run_main(valid_argv + ["--algo.advantage.estimator", "dr_grpo", "--dry-run"], capsys)
    assert rc == 0, out
    assert "==> advantage estimator: dr_grpo: A = r − mean(group)" in out
    assert "==> controller memory estimate" in out and "GiB" in out
    assert "α and β are scale-free" not in out


def test_group_norm_warns_that_alpha_and_beta_are_scale_free(valid_argv, capsys):
    rc, out = run_main(valid_argv + ["--dry-run"], capsys)  # valid_argv runs group_norm
    assert rc == 0, out
    assert "==> advantage estimator: group_norm: A = (r − mean(group)) / std(group)" in out
    assert "WARNING: --algo.advantage.estimator group_norm: α and β are scale-free" in out
    rc, out = run_main(valid_argv + ["--pr.curiosity.enabled", "false", "--dry-run"], capsys)
    assert rc == 0 and "WARNING: --algo.advantage.estimator group_norm" not in out


def test_stale_replays_without_dual_clip_warn(valid_argv, capsys):
    rc, out = run_main(valid_argv + ["--dry-run"], capsys)
    assert rc == 0 and "WARNING: SSR replays samples with their generation-time log-probs" in out
    rc, out = run_main(valid_argv + ["--actor.dual_clip", "3", "--dry-run"], capsys)
    assert rc == 0 and "generation-time log-probs" not in out
    rc, out = run_main(valid_argv + ["--pr.ssr.stale_logprobs", "recompute", "--dry-run"], capsys)
    assert rc == 0 and "generation-time log-probs" not in out


def test_budgets_that_differ_from_the_checkpoints_sft_run_are_a_warning_with_the_numbers(valid_argv, capsys, tmp_path,
                                                                                          tiny_rl_inputs):
    """The warm-start checkpoint records the budgets SFT trained with (sft_run_config.json); RL compares."""
    from pixel_reasoner.budget_check import SFT_RUN_CONFIG
    from pixel_reasoner.config import PixelBudget, PixelBudgets, to_dict

    checkpoint = tmp_path / "warm_start"
    checkpoint.mkdir()
    for name in os.listdir(tiny_rl_inputs["model"]):
        (checkpoint / name).symlink_to(os.path.join(tiny_rl_inputs["model"], name))
    rollout = train.parse(valid_argv).rollout.budgets
    argv = valid_argv + ["--actor.model_name_or_path", str(checkpoint), "--dry-run"]
    (checkpoint / SFT_RUN_CONFIG).write_text(json.dumps({"pixel_budgets": to_dict(rollout)}))
    rc, out = run_main(argv, capsys)
    assert rc == 0 and "other sizes" not in out, out
    trained = PixelBudgets(rollout.original, PixelBudget.tokens(4, 16), rollout.frame)
    (checkpoint / SFT_RUN_CONFIG).write_text(json.dumps({"pixel_budgets": to_dict(trained)}))
    rc, out = run_main(argv, capsys)
    assert rc == 0, out
    assert f"WARNING: RL shows images at other sizes than the SFT run that trained {checkpoint}" in out
    assert "crop: SFT 4–16 tokens (3136–12544 px), RL 4–32 tokens (3136–25088 px)" in out
    assert "original: SFT" not in out and "frame: SFT" not in out  # only the kind that differs

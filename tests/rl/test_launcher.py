"""`python -m openrlhf_ext.train`: the patched upstream CLI with our flags, its --dry-run, and our validation.

A few real dry runs go through the launcher and upstream's own parser and post-processing (a subprocess each,
~20 s); the validation scenarios then run in-process on the namespace one of them resolved, changed where the
scenario needs it, so that each refusal is checked against what upstream really hands `train()`.
"""
import copy
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from openrlhf_ext import train
from openrlhf_ext.cpu_mode import CpuModeConfig
from openrlhf_ext.rollout_config import RolloutConfig
from openrlhf_ext.run_config import RunConfig
from pixel_reasoner import settings
from pixel_reasoner.config import PixelBudgets
from pixel_reasoner.rewards.shaping import RewardConfig
from pixel_reasoner.ssr import SSRConfig

AGENT = os.path.join(os.path.dirname(train.__file__), "agent.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def valid_argv(tiny_rl_inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("launcher")
    return ["--actor.model_name_or_path", tiny_rl_inputs["model"], "--actor.num_gpus_per_node", "1",
            "--train.agent_func_path", AGENT, "--data.prompt_dataset", tiny_rl_inputs["prompts"],
            "--data.input_key", "input", "--data.label_key", "label", "--data.apply_chat_template",
            "--data.max_images_per_prompt", "16", "--vllm.num_engines", "1", "--algo.advantage.estimator",
            "group_norm", "--algo.kl.init_coef", "0", "--rollout.n_samples_per_prompt", "4",
            "--rollout.batch_size", "2", "--train.batch_size", "8", "--ckpt.output_dir", str(out / "out"),
            "--pr.config", tiny_rl_inputs["settings"]]


@pytest.fixture(scope="module")
def resolved(valid_argv, dry_run):
    """The real dry run of a valid command with some of our flags."""
    code, out, document = dry_run(valid_argv + ["--pr.set", "rewards.settings.curiosity.weight=0.7", "--pr.set",
                                                "rewards.settings.efficiency.weight=0.1",
                                                "--pr.rollout.crop_max_pixels", "20000"])
    assert code == 0, out[-4000:]
    return out, document


def test_dry_run_resolves_our_flags_over_upstreams_and_starts_nothing(resolved, valid_argv):
    out, document = resolved
    assert "dry run (--pr.dry_run): configuration valid" in out
    ours = document["pixel_reasoner"]
    terms = ours["rewards"]["settings"]
    assert (terms["curiosity"]["weight"], terms["efficiency"]["weight"]) == (0.7, 0.1)
    assert terms["curiosity"]["rapr_threshold"] == 0.3  # every term's full settings are recorded
    assert ours["ssr"]["capacity"] == 8  # resolved from upstream's flags: one rollout
    assert ours["log"]["run_dir"].endswith(os.path.join("out", "pixel_reasoner"))
    rollout = ours["rollout"]
    assert rollout["crop_max_pixels"] == 20000  # a --pr.rollout.* flag over the recipe file
    assert rollout["original_max_pixels"] == 48 * 784  # from the recipe file (--pr.config)
    assert rollout["forced_turns"]  # the CPU demo's schedules, from the file
    assert document["openrlhf"]["rollout"]["n_samples_per_prompt"] == 4
    assert document["openrlhf"]["train"]["agent_func_path"] == AGENT
    assert document["command"].startswith("python -m openrlhf.cli.train_ppo_ray --pr.enable --pr.dry_run ")
    assert not os.path.exists(valid_argv[valid_argv.index("--ckpt.output_dir") + 1])  # nothing written


def test_packing_that_upstream_turns_on_after_its_vlm_check_is_refused_naming_the_flag(valid_argv, dry_run):
    code, out, _ = dry_run(valid_argv + ["--train.dynamic_batch_enable"])
    assert code == 2 and "sample packing is on (caused by --train.dynamic_batch_enable)" in out
    assert "nothing was started" in out


def test_help_lists_ours_with_upstreams_and_a_typo_is_an_error(valid_argv, dry_run, rl_env):
    done = subprocess.run([sys.executable, "-m", "openrlhf_ext.train", "--help"], capture_output=True, text=True,
                          env=rl_env(), timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "--pr.ssr.stale_logprobs" in done.stdout and "--pr.rollout.limits.max_operations" in done.stdout
    assert "--pr.cpu.enabled" in done.stdout and "--algo.advantage.estimator" in done.stdout
    code, out, _ = dry_run(valid_argv + ["--pr.ssr.capacty", "7"])
    assert code == 2 and "unrecognized arguments: --pr.ssr.capacty" in out


def test_an_unpatched_openrlhf_is_refused_with_how_to_patch_it():
    env = dict(os.environ, PYTHONPATH=REPO)  # the installed OpenRLHF alone (this session's patched copy left out)
    check = subprocess.run([sys.executable, "-m", "openrlhf_ext.upstream_patch", "check"], capture_output=True,
                           text=True, env=env, timeout=120, cwd=REPO)
    if check.returncode == 0:
        pytest.skip("the installed OpenRLHF is patched (scripts/install.sh): nothing to refuse")
    assert check.stdout.startswith("NOT patched: openrlhf 0.11.2")
    done = subprocess.run([sys.executable, "-m", "openrlhf_ext.train", "--dry-run"], capture_output=True, text=True,
                          env=env, timeout=120, cwd=REPO)
    assert done.returncode == 2
    assert "is not patched with Pixel Reasoner's hooks" in done.stderr and "python -m patches apply --target" in \
        done.stderr


# ---------------------------------------------------------------- validation on the resolved namespace

def launch(document, **changes) -> train.Launch:
    """The dry run's launch with upstream values changed (`section__key=value`) and/or our configs replaced."""
    args = train.from_plain(copy.deepcopy(document["openrlhf"]))
    run = settings.build(RunConfig, {**document["pixel_reasoner"], "cpu": {}})
    given = {}
    for key, value in changes.items():
        if key in ("rollout", "cpu", "ssr", "rewards"):
            run = dataclasses.replace(run, **{key: value})
            continue
        *path, leaf = key.split("__")
        node = args
        for part in path:
            node = getattr(node, part)
        setattr(node, leaf, value)
        given[".".join(key.split("__"))] = value
    return train.Launch(run, train.UpstreamParse(args, given), [], True)


@pytest.mark.parametrize("changes, message", [
    ({"train__micro_batch_size": 2, "actor__num_gpus_per_node": 4, "train__batch_size": 12},
     "must be a multiple of --train.micro_batch_size × data-parallel actors = 2 × 4 = 8"),
    ({"data__max_images_per_prompt": 4}, "below the agent's limits.max_images=16"),
    ({"vllm__num_engines": 0}, "--vllm.num_engines must be >= 1"),
    ({"data__prompt_dataset": "/nonexistent/prompts.jsonl"}, "no such file or directory"),
    ({"algo__advantage__estimator": "reinforce"}, "SSR selects samples by their group-relative advantage"),
    ({"rollout": RolloutConfig(budget_preset="paper_eval")}, "the processor would resize the images again"),
    ({"rollout__n_samples_per_prompt": 1, "algo__advantage__estimator": "reinforce",
      "ssr": SSRConfig(enabled=False)}, "the reward term(s) ['curiosity'] need several samples per query"),
    ({"algo__advantage__estimator": "reinforce_baseline"}, "whitens the advantages over the whole batch"),
])
def test_validation_refuses_what_upstream_lets_through(resolved, changes, message):
    problems = train.validate(launch(resolved[1], **changes))
    assert any(message in e for e in problems.errors), problems.errors


def test_the_resolved_launch_is_valid_and_cpu_mode_needs_its_flags(resolved):
    assert train.validate(launch(resolved[1])).errors == []
    problems = train.validate(launch(resolved[1], cpu=CpuModeConfig(enabled=True),
                                     ds__attn_implementation="flash_attention_2"))
    joined = "\n".join(problems.errors)
    assert "use --ds.attn_implementation sdpa" in joined and "use --vllm.sync_backend gloo" in joined


def test_an_agent_that_does_not_load_is_reported(resolved, tmp_path):
    broken = tmp_path / "agent.py"
    broken.write_text("raise RuntimeError('agent import exploded')\n")
    problems = train.validate(launch(resolved[1], train__agent_func_path=str(broken)))
    assert any("does not load: RuntimeError: agent import exploded" in e for e in problems.errors)


def test_dataset_rows_are_checked(resolved, tmp_path, tiny_rl_inputs):
    rows = [json.loads(line) for line in open(tiny_rl_inputs["prompts"])]
    rows[1]["images"] = ["/nonexistent/missing.png"]
    bad = tmp_path / "prompts.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems = train.validate(launch(resolved[1], data__prompt_dataset=str(bad)))
    assert any("row 2: /nonexistent/missing.png" in e for e in problems.errors)


def only_correctness() -> RewardConfig:
    return RewardConfig(terms=("correctness",))


def test_report_prints_the_advantage_estimator_and_the_controller_memory(resolved, capsys):
    chosen = launch(resolved[1], algo__advantage__estimator="dr_grpo")
    problems = train.validate(chosen)
    train.report(chosen, problems)
    out = capsys.readouterr().out
    assert "==> advantage estimator: dr_grpo: A = r − mean(group)" in out
    assert "==> controller memory estimate" in out and "GiB" in out and "2 B per value" in out  # bf16 pixels
    assert not any("α and β are scale-free" in w for w in problems.warnings)


def test_group_norm_warns_that_alpha_and_beta_are_scale_free(resolved):
    warnings = train.validate(launch(resolved[1])).warnings  # the dry run resolved group_norm
    assert any(w.startswith("--algo.advantage.estimator group_norm: α and β are scale-free") for w in warnings)
    off = launch(resolved[1], rewards=only_correctness())
    assert not any("α and β are scale-free" in w for w in train.validate(off).warnings)


def test_stale_replays_without_dual_clip_warn(resolved):
    def stale_warning(chosen) -> bool:
        return any("SSR replays samples with their generation-time log-probs" in w
                   for w in train.validate(chosen).warnings)

    assert stale_warning(launch(resolved[1]))
    assert not stale_warning(launch(resolved[1], actor__dual_clip=3))
    assert not stale_warning(launch(resolved[1], ssr=SSRConfig(stale_logprobs="recompute")))


def test_budgets_that_differ_from_the_checkpoints_sft_run_are_a_warning_with_the_numbers(resolved, tmp_path,
                                                                                          tiny_rl_inputs):
    """The warm-start checkpoint records the budgets SFT trained with (sft_run_config.json); RL compares."""
    from pixel_reasoner.budget_check import SFT_RUN_CONFIG
    from pixel_reasoner.config import PixelBudget, to_dict

    checkpoint = tmp_path / "warm_start"
    checkpoint.mkdir()
    for name in os.listdir(tiny_rl_inputs["model"]):
        (checkpoint / name).symlink_to(os.path.join(tiny_rl_inputs["model"], name))
    chosen = launch(resolved[1], actor__model_name_or_path=str(checkpoint))
    rollout = chosen.rollout.budgets()
    (checkpoint / SFT_RUN_CONFIG).write_text(json.dumps({"pixel_budgets": to_dict(rollout)}))
    assert not any("other sizes" in w for w in train.validate(chosen).warnings)
    trained = PixelBudgets(rollout.original, PixelBudget.tokens(4, 16), rollout.frame)
    (checkpoint / SFT_RUN_CONFIG).write_text(json.dumps({"pixel_budgets": to_dict(trained)}))
    warning = "\n".join(w for w in train.validate(chosen).warnings if "other sizes" in w)
    assert f"RL shows images at other sizes than the SFT run that trained {checkpoint}" in warning
    assert "crop: SFT 4–16 tokens (3136–12544 px), RL 4–" in warning and "(3136–20000 px)" in warning
    assert "original: SFT" not in warning and "frame: SFT" not in warning  # only the kind that differs

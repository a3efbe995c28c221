"""The RL stage's settings on the configuration layer every stage uses: the recipe's two sections, `--pr.config`,
`--pr.set`, the `--pr.*` flags, and the names before 0.2 (in-process: no OpenRLHF parser, no subprocess)."""
import argparse
import json
import os

import pytest

from openrlhf_ext import train
from openrlhf_ext.run_config import RunConfig
from pixel_reasoner import settings
from pixel_reasoner.config import PixelBudget
from pixel_reasoner.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RL_7B = os.path.join(REPO, "recipes", "rl_7b.yaml")
RL_TINY = os.path.join(REPO, "recipes", "rl_tiny_cpu.yaml")


def ours(*argv: str) -> RunConfig:
    """Our settings as the patched upstream parser would read `argv` (our flags only)."""
    parser = argparse.ArgumentParser()
    train.add_pr_arguments(parser)
    return train.run_config_from(parser.parse_args(list(argv)))


def curiosity(run: RunConfig) -> dict:
    return run.rewards.to_dict()["settings"]["curiosity"]


def test_the_recipes_hold_every_setting_and_ours_only_where_they_differ_from_the_defaults():
    run = ours("--pr.config", RL_7B)
    assert run.rollout.image_cache_bytes == 4 << 30 and run.log.run_dir == "out/rl_7b/run"
    assert run.ssr == RunConfig().ssr and curiosity(run)["weight"] == 0.5  # the paper's values are the defaults
    assert ours("--pr.config", RL_TINY).cpu.enabled
    argv = train.recipe_argv(RL_7B)
    assert argv[-2:] == ["--pr.config", RL_7B]
    assert argv[argv.index("--rollout.n_samples_per_prompt") + 1] == "8"
    assert argv[argv.index("--actor.eps_clip_low_high") + 1:][:2] == ["0.2", "0.35"]  # a list: several values
    assert "--ds.enable_sleep" not in argv and "--data.apply_chat_template" in argv  # true = the bare flag
    assert argv[argv.index("--data.prompt_dataset") + 1] == os.path.abspath("data/rl/prompts.jsonl")
    assert train.expand_recipe(["--dry-run", "--config", RL_7B, "--actor.adam.lr", "2e-6"]) == \
        argv + ["--dry-run", "--actor.adam.lr", "2e-6"]  # flags after the recipe override it


def test_flags_over_set_over_later_files_over_earlier_ones(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("pixel_reasoner:\n  rollout: {max_turn_tokens: 77, crop_min_pixels: 3136, crop_max_pixels: 20000}\n"
                     "  rewards: {settings: {curiosity: {weight: 0.1}}}\n")
    run = ours("--pr.config", RL_7B, "--pr.config", str(extra), "--pr.set", "rewards.settings.curiosity.weight=0.3",
               "--pr.rollout.max_turn_tokens", "99")
    assert run.rollout.max_turn_tokens == 99 and curiosity(run)["weight"] == 0.3
    assert run.rollout.budgets().crop.max_pixels == 20000 and run.rollout.image_cache_bytes == 4 << 30
    assert ours("--pr.rewards.terms", "correctness", "efficiency").rewards.terms == ("correctness", "efficiency")


@pytest.mark.parametrize("argv, message", [
    (["--pr.set", "ssr.capacty=8"], "ssr.capacty: unknown key"),
    (["--pr.set", "rewards.settings.curiosity.alpha=0.5"], "rewards.settings.curiosity.alpha: unknown key"),
    (["--pr.set", "rewards.terms=[correctness]", "--pr.set", "rewards.settings.curiosity.weight=1"],
     "rewards.settings has ['curiosity'], which rewards.terms does not list"),
    (["--pr.rollout.budget_preset", "paper"], "rollout.budget_preset: 'paper' is not one of"),
])
def test_mistakes_name_the_key(argv, message):
    with pytest.raises(ConfigError, match=message.replace("[", "\\[").replace("]", "\\]")):
        ours(*argv)


def test_a_recipe_with_an_unknown_section_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("openrlhf: {}\npixelreasoner: {}\n")
    with pytest.raises(ConfigError, match="unknown section"):
        train.recipe_argv(str(bad))


def test_the_names_before_0_2_are_read_with_a_warning_naming_the_new_one(tmp_path):
    rollout = tmp_path / "rollout.json"
    rollout.write_text(json.dumps({"budgets": {"preset": "paper_rl", "crop": {"max_pixels": 501760}},
                                   "max_turn_tokens": 64}))
    with pytest.warns(FutureWarning) as caught:
        run = ours("--pr.curiosity.alpha", "0.7", "--pr.curiosity.beta", "0.1", "--pr.curiosity.free_operations", "2",
                   "--pr.rollout_config", str(rollout), "--pr.rollout.budgets.original.max_pixels", "802816",
                   "--pr.sample_keys.num_operations", "n_vo")
    messages = " ".join(str(w.message) for w in caught)
    for old, new in [("curiosity.alpha", "rewards.settings.curiosity.weight"),
                     ("curiosity.beta", "rewards.settings.efficiency.weight"),
                     ("--pr.rollout_config", "the recipe's pixel_reasoner.rollout section"),
                     ("rollout.budgets.crop.max_pixels", "rollout.crop_max_pixels"),
                     ("rollout.budgets.original.max_pixels", "rollout.original_max_pixels")]:
        assert f"{old} is deprecated, use {new}" in messages, old
    assert "sample_keys is deprecated and ignored" in messages
    terms = run.rewards.to_dict()["settings"]
    assert (terms["curiosity"]["weight"], terms["efficiency"]["weight"], terms["efficiency"]["free_operations"]) == \
        (0.7, 0.1, 2)
    budgets = run.rollout.budgets()
    assert run.rollout.budget_preset == "paper_rl" and budgets.crop == PixelBudget(4 * 784, 501760)
    assert budgets.original.max_pixels == 802816 and run.rollout.max_turn_tokens == 64
    with pytest.warns(FutureWarning, match="curiosity.enabled is deprecated"):
        assert ours("--pr.curiosity.enabled", "false").rewards.terms == ("correctness",)
    with pytest.warns(FutureWarning, match="curiosity.variant is deprecated"):
        official = ours("--pr.curiosity.variant", "reference_code").rewards.to_dict()["settings"]
    assert official["curiosity"]["variant"] == official["efficiency"]["variant"] == "reference_code"
    assert official["curiosity"]["weight"] == 1.0  # the official bonus has no alpha


def test_the_resolved_configuration_reads_back_as_the_same_run():
    run = ours("--pr.config", RL_7B, "--pr.set", "rewards.settings.curiosity.weight=0.25")
    again = settings.build(RunConfig, json.loads(json.dumps(run.to_dict())))  # the run's config.json
    assert again.rewards.active() == run.rewards.active()
    assert (again.ssr, again.rollout, again.log, again.cpu) == (run.ssr, run.rollout, run.log, run.cpu)


def test_rl_7b_sh_passes_the_layout_and_the_old_knobs_as_flags_with_a_note(tmp_path):
    """The script computes only the cluster layout and paths; an old environment knob becomes its flag."""
    import subprocess

    shim, out = tmp_path / "python", tmp_path / "argv"
    shim.write_text('#!/bin/sh\nfor a in "$@"; do printf \'%s\\0\' "$a"; done > "$ARGV_OUT"\n')
    shim.chmod(0o755)
    knobs = ("MODEL", "DATA", "EVAL_DATA", "OUT", "RECIPE", "WANDB_API_KEY", "DRY_RUN", "GPUS_PER_NODE", "COLOCATE",
             "VLLM_NUM_ENGINES")
    clean = {key: value for key, value in os.environ.items() if key not in knobs}
    done = subprocess.run(["bash", os.path.join(REPO, "recipes", "rl_7b.sh"), "--actor.adam.lr", "2e-6"],
                          capture_output=True, text=True, timeout=60,
                          env=dict(clean, PYTHON=str(shim), ARGV_OUT=str(out), NNODES="2", ALPHA="0.3",
                                   SSR_CAPACITY="64"))
    assert done.returncode == 0, done.stderr
    argv = out.read_text().split("\0")[:-1]
    assert argv[:4] == ["-m", "openrlhf_ext.train", "--config", RL_7B]
    assert " ".join(argv[4:]) == ("--actor.num_nodes 1 --actor.num_gpus_per_node 8 --vllm.num_engines 8 --pr.set "
                                  "rewards.settings.curiosity.weight=0.3 --pr.ssr.capacity 64 --actor.adam.lr 2e-6")
    assert "ALPHA is deprecated, pass --pr.set rewards.settings.curiosity.weight=0.3" in done.stderr
    assert "SSR_CAPACITY is deprecated, pass --pr.ssr.capacity 64" in done.stderr

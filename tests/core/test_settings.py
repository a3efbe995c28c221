"""The configuration layer every stage uses (`pixel_reasoner.settings`): dataclass fields are recipe keys and flags,
loading is strict and names the key, old names keep working with a warning naming the new one, and every stage
spells the shared concepts the same way."""
import argparse
import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import pytest

from pixel_reasoner import settings
from pixel_reasoner.config import BudgetOptions, PixelBudgets
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.settings import option


@dataclass
class Sampling:
    RENAMED: ClassVar[dict[str, str]] = {"max_tokens": "max_turn_tokens"}

    temperature: float = option(0.7, help="Sampling temperature.")
    max_turn_tokens: int = option(1024, help="New tokens per turn.")
    stop: list[str] = option(factory=list, help="Stop strings.")


@dataclass(kw_only=True)
class Recipe(BudgetOptions):
    RENAMED: ClassVar[dict[str, str]] = {"budgets": "budget_preset"}

    name: str = option(help="Required: a run name.")
    mode: str = option("fast", choices=("fast", "slow"), help="How to run.")
    enabled: bool = option(True, help="Whether it runs.")
    window: tuple[int, int] | None = option(None, help="A pair.")
    sampling: Sampling = option(factory=Sampling, help="Sampling.")
    extra: dict[str, float] = option(factory=dict, help="Per-name weights.")


def parse(*argv: str) -> Recipe:
    return settings.parse(Recipe, list(argv))


def test_recipe_then_set_then_flags(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: a\nmode: slow\nsampling: {temperature: 0.1, stop: ['x']}\nextra: {a: 1}\n")
    r = parse("--config", str(recipe), "--set", "sampling.max_turn_tokens=64", "--sampling.temperature", "0.5",
              "--window", "3", "4", "--no_enabled", "--extra", "{b: 2.5}")
    assert (r.name, r.mode, r.enabled, r.window) == ("a", "slow", False, (3, 4))
    assert r.sampling == Sampling(temperature=0.5, max_turn_tokens=64, stop=["x"])
    assert r.extra == {"b": 2.5}  # a flag replaces the recipe's mapping
    assert parse("--name", "b", "--enabled", "false", "--budget-preset", "paper_rl").enabled is False
    assert parse("--name", "b", "--enabled").enabled is True
    assert parse("--name", "b", "--crop_max_pixels", "802816").budgets().crop.max_pixels == 802816


@pytest.mark.parametrize("argv, message", [
    (["--name", "a", "--sampling.temperature", "hot"], "--sampling.temperature: expected a number, got 'hot'"),
    (["--name", "a", "--mode", "medium"], "mode: 'medium' is not one of fast, slow"),
    (["--name", "a", "--set", "sampling.temprature=1"], "sampling.temprature: unknown key of sampling; did you mean "
                                                         "temperature?"),
    ([], "name: required key is missing"),
    (["--name", "a", "--budget_preset", "huge"], "budget_preset: 'huge' is not one of consistent"),
    (["--name", "a", "--crop_min_pixels", "10"], "crop_min_pixels / crop_max_pixels: min_pixels=10 is below one "
                                                 "visual token"),
    (["--name", "a", "--set", "enabled=1"], "enabled: expected true or false, got 1"),
])
def test_errors_name_the_key_and_the_fix(argv, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")):
        parse(*argv)


def test_old_names_keep_working_with_a_warning_naming_the_new_one(tmp_path):
    recipe = tmp_path / "old.yaml"
    recipe.write_text("name: a\nbudgets: paper_eval\nsampling: {max_tokens: 99}\n")
    with pytest.warns(FutureWarning) as caught:
        r = parse("--config", str(recipe))
    messages = [str(w.message) for w in caught]
    assert "budgets is deprecated, use budget_preset (the old name is removed in the next release)" in messages
    assert any("sampling.max_tokens is deprecated, use sampling.max_turn_tokens" in m for m in messages)
    assert r.budget_preset == "paper_eval" and r.sampling.max_turn_tokens == 99
    with pytest.warns(FutureWarning, match="use budget_preset"):
        assert parse("--name", "a", "--budgets", "paper_rl").budget_preset == "paper_rl"
    with pytest.warns(FutureWarning, match="use sampling.max_turn_tokens"):
        assert parse("--name", "a", "--sampling.max-tokens", "7").sampling.max_turn_tokens == 7
    with pytest.raises(ConfigError, match="budgets and budget_preset are both given"):
        settings.build(Recipe, {"name": "a", "budgets": "paper_rl", "budget_preset": "paper_eval"})


def test_flags_match_the_recipe_keys_and_show_help_and_defaults():
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser, Recipe)
    text = parser.format_help()
    assert "--sampling.max_turn_tokens INT, --sampling.max-turn-tokens INT" in text
    assert "New tokens per turn. (default: 1024)" in text and "[choices: fast, slow]" in text
    assert "deprecated: use --budget_preset" in text
    paths = [path for path, _, _ in settings.leaves(Recipe)]
    assert paths[:7] == [f.name for f in dataclasses.fields(BudgetOptions)]
    assert "sampling.temperature" in paths and "sampling" not in paths


def test_flat_configs_also_work_in_trls_parser():
    """SFT's parser (TRL's HfArgumentParser) reads the same field metadata."""
    from transformers import HfArgumentParser

    (parsed,) = HfArgumentParser(BudgetOptions).parse_args_into_dataclasses(
        ["--budget_preset", "paper_sft", "--frame_max_pixels", "6272"])
    assert parsed.budgets().frame.max_pixels == 6272 and parsed.budgets().crop == PixelBudgets.paper_sft().crop


def test_every_stage_spells_the_shared_settings_the_same_way():
    """Budgets and per-turn token limits have one name in every stage (RL is checked in tests/rl)."""
    from data_synthesis.config import SamplingConfig, SynthesisConfig
    from eval.config import RunConfig
    from open_r1_ext.config import SFTScriptArguments

    budget_fields = [f.name for f in dataclasses.fields(BudgetOptions)]
    for cls in (SynthesisConfig, RunConfig, SFTScriptArguments):
        assert issubclass(cls, BudgetOptions) and [f.name for f in dataclasses.fields(cls)][:7] == budget_fields
    assert {"max_turn_tokens"} <= {f.name for f in dataclasses.fields(RunConfig)}
    assert {"max_turn_tokens"} <= {f.name for f in dataclasses.fields(SamplingConfig)}
    assert all(name.endswith(("_pixels", "_preset")) for name in budget_fields)


def test_upgrade_flags_for_other_parsers():
    with pytest.warns(FutureWarning) as caught:
        argv = settings.upgrade_flags(["--pixel-budgets", "x", "--pixel_budgets=y", "--keep", "1"],
                                      {"pixel_budgets": "budget_preset"})
    assert argv == ["--budget_preset", "x", "--budget_preset=y", "--keep", "1"]
    assert [str(w.message).split(" (")[0] for w in caught] == [
        "--pixel-budgets is deprecated, use --budget_preset", "--pixel_budgets is deprecated, use --budget_preset"]


def test_a_prefix_shares_a_command_line_with_another_programs_flags(tmp_path):
    """RL's settings sit next to OpenRLHF's flags: `--pr.<path>`, and a recipe's own section."""
    recipe = tmp_path / "rl.yaml"
    recipe.write_text("openrlhf: {actor: {lr: 1}}\npixel_reasoner: {name: a, sampling: {temperature: 0.2}}\n")
    parser = argparse.ArgumentParser()
    parser.add_argument("--actor.lr", dest="actor.lr")
    settings.add_arguments(parser, Recipe, prefix="pr")
    ns = parser.parse_args(["--actor.lr", "3", "--pr.config", str(recipe), "--pr.sampling.max-turn-tokens", "5",
                            "--pr.set", "mode=slow"])
    r = settings.build(Recipe, settings.values(Recipe, ns, prefix="pr", section="pixel_reasoner"))
    assert (r.name, r.mode, r.sampling.temperature, r.sampling.max_turn_tokens) == ("a", "slow", 0.2, 5)
    assert getattr(ns, "actor.lr") == "3"


def test_several_recipe_files_merge_in_order(tmp_path):
    base, local = tmp_path / "base.yaml", tmp_path / "local.yaml"
    base.write_text("name: a\nmode: slow\nsampling: {temperature: 0.1, max_turn_tokens: 9}\n")
    local.write_text("sampling: {temperature: 0.3}\n")
    r = parse("--config", str(base), "--config", str(local))
    assert (r.name, r.mode, r.sampling.temperature, r.sampling.max_turn_tokens) == ("a", "slow", 0.3, 9)

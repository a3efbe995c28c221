"""RolloutConfig: paper defaults, read from a recipe's `pixel_reasoner.rollout` section, the old names still read,
and loud errors for mistakes."""
from __future__ import annotations

import json

import pytest

from openrlhf_ext import old_names
from openrlhf_ext.rollout_config import RolloutConfig
from openrlhf_ext.run_config import RunConfig
from pixel_reasoner import settings
from pixel_reasoner.config import PixelBudget, PixelBudgets
from pixel_reasoner.errors import ConfigError


def rollout(data: dict) -> RolloutConfig:
    """The rollout section of a recipe, as the launcher reads it."""
    return settings.build(RunConfig, old_names.upgrade({"rollout": data})).rollout


def test_defaults_are_the_papers_rl_settings_with_the_budgets_every_stage_uses():
    config = RolloutConfig()
    assert config.profile == "released"
    assert config.budgets() == PixelBudgets.consistent()  # the official RL's maxima, as SFT and eval
    assert config.budgets().original.max_pixels == 2000 * 28 * 28 and config.budgets().crop.max_pixels == 1000 * 28 * 28
    assert (config.limits.max_operations, config.limits.max_turns) == (4, 6)
    assert config.limits.max_images == 16 and config.video_frames == 16  # the official limits; a video is a video
    assert config.stop == ("</tool_call>",) and config.pixel_dtype == "bfloat16"
    assert json.loads(json.dumps(config.to_dict()))["limits"]["max_images"] == 16  # loggable as JSON


def test_read_from_a_recipe_section_with_partial_overrides():
    config = rollout({"limits": {"max_operations": 2}, "crop_max_pixels": 501760})
    assert config.limits.max_operations == 2 and config.limits.max_images == 16  # partial override
    assert config.budgets().crop == PixelBudget(256 * 784, 501760)  # the other bound is the preset's
    assert config.budgets().original == PixelBudgets.consistent().original
    config = rollout({"budget_preset": "paper_eval", "scoring": "anls", "profile": "qwen"})
    assert config.budgets() == PixelBudgets.paper_eval() and config.scoring == "anls"
    assert config.protocol().name == "qwen"


def test_the_names_before_the_rename_are_read_with_a_warning():
    with pytest.warns(FutureWarning) as caught:
        config = rollout({"budgets": {"preset": "paper_rl", "crop": {"max_pixels": 501760}}, "reward_kind": "anls"})
    assert config.budgets().crop == PixelBudget(4 * 784, 501760) and config.budget_preset == "paper_rl"
    assert config.scoring == "anls"
    messages = " ".join(str(w.message) for w in caught)
    assert "rollout.budgets.crop.max_pixels is deprecated, use rollout.crop_max_pixels" in messages
    assert "rollout.reward_kind is deprecated, use rollout.scoring" in messages
    with pytest.warns(FutureWarning, match="use rollout.budget_preset"):
        assert rollout({"budgets": "paper_eval"}).budgets() == PixelBudgets.paper_eval()


@pytest.mark.parametrize("data, message", [
    ({"max_operation": 3}, "rollout.max_operation: unknown key of rollout"),
    ({"limits": {"max_ops": 3}}, "rollout.limits.max_ops: unknown key"),
    ({"limits": {"max_operations": "4"}}, "rollout.limits.max_operations: expected an integer, got '4'"),
    ({"crop_max_pixels": 50176}, "crop_min_pixels / crop_max_pixels: max_pixels=50176 < min_pixels=200704; swap or "
     "fix them (preset 'consistent' gives [200704, 784000])"),
    ({"budget_preset": "paper"}, "rollout.budget_preset: 'paper' is not one of consistent"),
    ({"scoring": "accuracy"}, "rollout.scoring: 'accuracy' is not one of"),
    ({"profile": "official"}, "unknown protocol profile 'official'"),
    ({"pixel_dtype": "int8"}, "rollout.pixel_dtype: 'int8' is not one of bfloat16"),
    ({"min_turn_tokens": 0}, "min_turn_tokens=0 must be >= 1"),
    ({"forced_turns": [{"schedules": [["x"]], "when": "y"}]}, "forced_turns[0]: expected"),
    ({"forced_turns": [{"schedules": [[{"regex": "x", "logit_bias": {"a": 1}}]]}]},
     "forced_turns[0].schedules[0][0]: logit_bias must map token ids"),
    ({"stop": "</tool_call>"}, "rollout.stop: expected a list"),
    ({"extra_operations": ["rotate"]}, "unknown visual operation 'rotate'"),
    ({"operation_modules": ["no_such_module_xyz"]}, "cannot import visual operation module 'no_such_module_xyz'"),
])
def test_mistakes_are_errors_naming_the_field(data, message):
    with pytest.raises(ConfigError) as err:
        rollout(data)
    assert message in str(err.value)


def test_a_new_operation_is_one_module_named_in_the_config(tmp_path, monkeypatch):
    (tmp_path / "my_rotate_op.py").write_text('''
from dataclasses import dataclass
from pixel_reasoner.ops import register_operation
from pixel_reasoner.ops.base import OperationResult, VisualOperation

@dataclass(frozen=True)
class RotateSettings:
    pass

@register_operation
class Rotate(VisualOperation):
    name = "rotate_image_test"
    settings_class = RotateSettings
    observation_template = "Rotated."

    def schema(self, tool_name, settings):
        return {"type": "function", "function": {"name": tool_name, "description": "Rotate.", "parameters": {}}}

    def execute(self, arguments, context, settings, tool_name):
        return OperationResult([], {})
''')
    monkeypatch.syspath_prepend(str(tmp_path))
    config = rollout({"operation_modules": ["my_rotate_op"], "extra_operations": ["rotate_image_test"]})
    assert "rotate_image_test" in [s["function"]["name"] for s in config.protocol().tool_schemas()]

"""RolloutConfig: paper defaults, the JSON file it is read from, and loud errors for mistakes."""
from __future__ import annotations

import json

import pytest

from openrlhf_ext.rollout_config import RolloutConfig, from_file
from pixel_reasoner.config import PixelBudget, PixelBudgets
from pixel_reasoner.errors import ConfigError


def test_defaults_are_the_papers_rl_settings_with_the_budgets_every_stage_uses():
    config = RolloutConfig()
    assert config.profile == "released"
    assert config.budgets == PixelBudgets.consistent()  # the official RL's maxima, as SFT and eval
    assert config.budgets.original.max_pixels == 2000 * 28 * 28 and config.budgets.crop.max_pixels == 1000 * 28 * 28
    assert (config.limits.max_operations, config.limits.max_turns) == (4, 6)
    assert config.limits.max_images == 16 and config.video_frames == 16  # the official limits; a video is a video
    assert config.stop == ("</tool_call>",) and config.pixel_dtype == "bfloat16"
    assert json.loads(json.dumps(config.to_dict()))["limits"]["max_images"] == 16  # loggable as JSON


def test_read_from_a_json_file_with_partial_overrides(tmp_path):
    path = tmp_path / "rollout.json"
    path.write_text(json.dumps({"limits": {"max_operations": 2}, "budgets": {"crop": {"max_pixels": 501760}}}))
    config = from_file(str(path))
    assert config.limits.max_operations == 2 and config.limits.max_images == 16  # partial override
    assert config.budgets.crop == PixelBudget(256 * 784, 501760)  # the other bound is the preset's
    assert config.budgets.original == PixelBudgets.consistent().original
    path.write_text(json.dumps({"budgets": "paper_eval", "reward_kind": "anls", "profile": "qwen"}))
    config = from_file(str(path))
    assert config.budgets == PixelBudgets.paper_eval() and config.reward_kind == "anls"
    assert config.protocol().name == "qwen"


@pytest.mark.parametrize("data, message", [
    ({"max_operation": 3}, "unknown key(s) ['max_operation']"),
    ({"limits": {"max_ops": 3}}, "limits: unknown key(s) ['max_ops']"),
    ({"limits": {"max_operations": "4"}}, "limits.max_operations must be an integer"),
    ({"budgets": {"crops": {}}}, "unknown budget kind(s) ['crops']"),
    ({"budgets": {"crop": {"max_pixels": 50176}}}, "budgets.crop: max_pixels=50176 < min_pixels=200704; swap or fix "
     "them (preset 'consistent' gives [200704, 784000]: set both min_pixels and max_pixels"),
    ({"budgets": "paper"}, "unknown pixel-budget preset 'paper'"),
    ({"reward_kind": "accuracy"}, "reward_kind='accuracy'"),
    ({"profile": "official"}, "unknown protocol profile 'official'"),
    ({"pixel_dtype": "int8"}, "pixel_dtype='int8'; choose one of"),
    ({"min_turn_tokens": 0}, "min_turn_tokens=0 must be >= 1"),
    ({"forced_turns": [{"schedules": [["x"]], "when": "y"}]}, "forced_turns[0]: expected"),
    ({"forced_turns": [{"schedules": [[{"regex": "x", "logit_bias": {"a": 1}}]]}]},
     "forced_turns[0].schedules[0][0]: logit_bias must map token ids"),
    ({"stop": "</tool_call>"}, "`stop` must be a list of strings"),
    ({"extra_operations": ["rotate"]}, "unknown visual operation 'rotate'"),
    ({"operation_modules": ["no_such_module_xyz"]}, "cannot import operation module 'no_such_module_xyz'"),
])
def test_mistakes_are_errors_naming_the_field(data, message):
    with pytest.raises(ConfigError) as err:
        RolloutConfig.from_dict(data)
    assert message in str(err.value)


def test_bad_files_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        from_file(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{\"limits\": ")
    with pytest.raises(ConfigError, match=f"{bad}: invalid JSON"):
        from_file(str(bad))


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
    config = RolloutConfig.from_dict({"operation_modules": ["my_rotate_op"], "extra_operations": ["rotate_image_test"]})
    assert "rotate_image_test" in [s["function"]["name"] for s in config.protocol().tool_schemas()]

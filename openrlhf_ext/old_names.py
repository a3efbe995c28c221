"""RL settings under their names before 0.2, read as the current ones for one more release (a FutureWarning each).

- `curiosity.*` (one section held both the curiosity bonus and the efficiency penalty) is now two reward terms:
  `alpha` -> `rewards.settings.curiosity.weight`, `beta` -> `rewards.settings.efficiency.weight`,
  `rapr_threshold` and `pixel_reasoning` -> `rewards.settings.curiosity.*`, `free_operations` ->
  `rewards.settings.efficiency.free_operations`, `variant` -> both terms' `variant` (the official form has no
  alpha: its curiosity weight is 1), `reference_code.*` -> `rewards.settings.curiosity.reference_code.*`,
  `enabled: false` -> `rewards.terms: [correctness]`, `uniform_tolerance` -> `log.uniform_tolerance`;
- `sample_keys.*` (names of the agent's per-sample logs) is gone: the logs have fixed names
  (`pixel_reasoner.rewards.SampleOutcome.LOG_KEYS`); given values are ignored;
- `rollout.budgets` (a preset name, or `{preset, <kind>: {min_pixels, max_pixels}}`) -> `rollout.budget_preset` and
  `rollout.<kind>_min_pixels` / `rollout.<kind>_max_pixels`, the names of every stage;
- `rollout.reward_kind` -> `rollout.scoring` (`RolloutConfig.RENAMED`);
- `--pr.rollout_config FILE` (the rollout section as JSON) -> the recipe's `pixel_reasoner.rollout`.
"""
from __future__ import annotations

import argparse
import json
import warnings
from typing import Any, Mapping

import yaml

from pixel_reasoner.config import IMAGE_KINDS
from pixel_reasoner.errors import ConfigError
from pixel_reasoner import settings
from pixel_reasoner.settings import merge, set_path

CURIOSITY = {  # old key under `curiosity` -> new paths
    "alpha": ("rewards.settings.curiosity.weight",),
    "beta": ("rewards.settings.efficiency.weight",),
    "rapr_threshold": ("rewards.settings.curiosity.rapr_threshold",),
    "pixel_reasoning": ("rewards.settings.curiosity.pixel_reasoning",),
    "free_operations": ("rewards.settings.efficiency.free_operations",),
    "variant": ("rewards.settings.curiosity.variant", "rewards.settings.efficiency.variant"),
    "uniform_tolerance": ("log.uniform_tolerance",),
    "reference_code.image_divisor": ("rewards.settings.curiosity.reference_code.image_divisor",),
    "reference_code.video_divisor": ("rewards.settings.curiosity.reference_code.video_divisor",),
    "reference_code.rapr_scale": ("rewards.settings.curiosity.reference_code.rapr_scale",),
}
SAMPLE_KEYS = ("num_operations", "num_images", "is_video")
ROLLOUT_CONFIG_FLAG = "pr.rollout_config"


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated, use {new} (the old name is removed in the next release)", FutureWarning,
                  stacklevel=3)


def upgrade(data: dict) -> dict:
    """The `pixel_reasoner` settings with every old name rewritten to the current one (in place; returns it)."""
    curiosity = data.pop("curiosity", None)
    if curiosity is not None:
        if not isinstance(curiosity, Mapping):
            raise ConfigError(f"curiosity: expected a mapping, got {curiosity!r}")
        flat = settings.flat(curiosity)
        for key, value in flat.items():
            if key == "enabled":
                _warn("curiosity.enabled", "rewards.terms (without curiosity and efficiency)")
                if not value:
                    set_path(data, "rewards.terms", ["correctness"])
                continue
            if key not in CURIOSITY:
                raise ConfigError(f"curiosity.{key}: unknown key (known: enabled, {', '.join(CURIOSITY)})")
            _warn(f"curiosity.{key}", " and ".join(CURIOSITY[key]))
            for path in CURIOSITY[key]:
                set_path(data, path, value)
        if flat.get("variant") == "reference_code":
            set_path(data, "rewards.settings.curiosity.weight", 1.0)  # the official bonus has no alpha
        if not flat.get("enabled", True):
            terms = (data.get("rewards") or {}).get("settings") or {}
            for term in ("curiosity", "efficiency"):
                terms.pop(term, None)
    if data.pop("sample_keys", None) is not None:
        warnings.warn("sample_keys is deprecated and ignored: the agent's per-sample logs have fixed names "
                      "(pixel_reasoner.rewards.SampleOutcome.LOG_KEYS)", FutureWarning, stacklevel=2)
    rollout = data.get("rollout")
    if isinstance(rollout, dict) and "budgets" in rollout:
        rollout.update(_budget_fields(rollout.pop("budgets")))
    return data


def _budget_fields(budgets: Any) -> dict:
    """An old `rollout.budgets` value as the current fields."""
    if isinstance(budgets, str):
        _warn("rollout.budgets", "rollout.budget_preset")
        return {"budget_preset": budgets}
    if not isinstance(budgets, Mapping):
        raise ConfigError(f"rollout.budgets: a preset name or {{preset, original|crop|frame: {{min_pixels, "
                          f"max_pixels}}}}, got {budgets!r}; use rollout.budget_preset and rollout.<kind>_<bound>")
    out = {}
    for key, value in budgets.items():
        if key == "preset":
            _warn("rollout.budgets.preset", "rollout.budget_preset")
            out["budget_preset"] = value
        elif key in IMAGE_KINDS and isinstance(value, Mapping):
            for bound, pixels in value.items():
                if bound not in ("min_pixels", "max_pixels"):
                    raise ConfigError(f"rollout.budgets.{key}.{bound}: unknown key (min_pixels, max_pixels)")
                _warn(f"rollout.budgets.{key}.{bound}", f"rollout.{key}_{bound}")
                out[f"{key}_{bound}"] = pixels
        else:
            raise ConfigError(f"rollout.budgets.{key}: unknown key (preset, {', '.join(IMAGE_KINDS)})")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The old `--pr.*` flags, still accepted (read by `flag_values`)."""
    group = parser.add_argument_group("Pixel Reasoner: deprecated flags (read as the current ones)")
    for key in ("enabled", *CURIOSITY):
        group.add_argument(f"--pr.curiosity.{key}", dest=f"pr.curiosity.{key}", default=argparse.SUPPRESS,
                           nargs="?" if key == "enabled" else None, const="true" if key == "enabled" else None,
                           help=argparse.SUPPRESS)
    for key in SAMPLE_KEYS:
        group.add_argument(f"--pr.sample_keys.{key}", dest=f"pr.sample_keys.{key}", default=argparse.SUPPRESS,
                           help=argparse.SUPPRESS)
    group.add_argument("--pr.rollout.budgets.preset", dest="pr.rollout.budgets.preset", default=argparse.SUPPRESS,
                       help="deprecated: use --pr.rollout.budget_preset")
    for kind in IMAGE_KINDS:
        for bound in ("min_pixels", "max_pixels"):
            group.add_argument(f"--pr.rollout.budgets.{kind}.{bound}", dest=f"pr.rollout.budgets.{kind}.{bound}",
                               default=argparse.SUPPRESS, help=f"deprecated: use --pr.rollout.{kind}_{bound}")
    group.add_argument(f"--{ROLLOUT_CONFIG_FLAG}", dest=ROLLOUT_CONFIG_FLAG, default=argparse.SUPPRESS,
                       metavar="FILE", help="deprecated: the rollout section as JSON; use the recipe's "
                                            "pixel_reasoner.rollout (--pr.config FILE)")


def rollout_file(namespace: argparse.Namespace) -> dict | None:
    """The rollout section `--pr.rollout_config FILE` names (JSON), or None."""
    path = vars(namespace).get(ROLLOUT_CONFIG_FLAG)
    if not path:
        return None
    _warn(f"--{ROLLOUT_CONFIG_FLAG}", "the recipe's pixel_reasoner.rollout section (--pr.config FILE)")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"--{ROLLOUT_CONFIG_FLAG} {path}: no such file") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None


def flag_values(namespace: argparse.Namespace) -> dict:
    """The old flags that were given, as old-style settings (for `upgrade`)."""
    data: dict = {}
    for key, value in vars(namespace).items():
        if key.startswith(("pr.curiosity.", "pr.sample_keys.", "pr.rollout.budgets.")):
            set_path(data, key[len("pr."):], yaml.safe_load(value) if isinstance(value, str) else value)
    return data


def with_old_names(data: dict, namespace: argparse.Namespace) -> dict:
    """The settings of a run from `data` (recipes, `--pr.set`, current flags) and the old names: `--pr.rollout_config`'s
    file below `data`, the old flags above it; everything upgraded to the current names."""
    file = rollout_file(namespace)
    base = upgrade({"rollout": file}) if file is not None else {}
    merge(base, upgrade(data))
    return merge(base, upgrade(flag_values(namespace)))

"""Do two stages show the model its images the same way? Pixel budgets compared kind by kind, with numbers.

What SFT teaches must be what RL trains and evaluation measures: an image shown at another size is other visual
tokens, and with pixel-coordinate boxes (the `qwen` profile) other coordinates. Every stage records the per-kind
budgets it ran with:

    synthesis  each trajectory's `meta.budgets`                   -> SFT checks every row against its own budgets
    SFT        <output_dir>/sft_run_config.json `budgets`         (saved next to the checkpoint)
    RL         <run_dir>/config.json `rollout.budgets`            -> compared with the checkpoint's SFT record
    eval       <out>/run_manifest.json `settings.budgets`         -> compared with the checkpoint's SFT record

A difference is never silent: SFT refuses pixel-coordinate rows made under other budgets and counts the rest;
RL and eval warn with the differing numbers, e.g. "original: SFT 4–5120 tokens, RL 4–2000 tokens (a 4000×3000
image is shown at 2296×1708 vs 1428×1064)".
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping

from pixel_reasoner.config import TOKEN_PIXELS, PixelBudget, PixelBudgets
from pixel_reasoner.errors import ConfigError, OperationError
from pixel_reasoner.media import budget_size

SFT_RUN_CONFIG = "sft_run_config.json"  # written by open_r1_ext/sft.py into the checkpoint directory
KINDS = ("original", "crop", "frame")
# sizes that show how a difference plays out: a large and a small one per kind (the first that differs is shown)
EXAMPLES = {"original": ("image", ((4000, 3000), (320, 240))), "crop": ("region", ((150, 100), (2800, 2100))),
            "frame": ("frame", ((1280, 720), (160, 90)))}


def _tokens(pixels: int) -> str:
    tokens = pixels / TOKEN_PIXELS
    return f"{tokens:g}" if tokens == int(tokens) else f"{tokens:.1f}"


def describe(budget: PixelBudget) -> str:
    """'4–2000 tokens (3136–1568000 px)'."""
    return f"{_tokens(budget.min_pixels)}–{_tokens(budget.max_pixels)} tokens " \
           f"({budget.min_pixels}–{budget.max_pixels} px)"


def _example(kind: str, first: PixelBudget, second: PixelBudget) -> str:
    noun, sizes = EXAMPLES[kind]
    for width, height in sizes:
        try:
            (w1, h1), (w2, h2) = budget_size(width, height, first), budget_size(width, height, second)
        except OperationError:
            continue
        if (w1, h1) != (w2, h2):
            return f" (a {width}×{height} {noun} is shown at {w1}×{h1} vs {w2}×{h2}, " \
                   f"{w1 * h1 // TOKEN_PIXELS} vs {w2 * h2 // TOKEN_PIXELS} tokens)"
    return ""


def budget_differences(first: PixelBudgets, second: PixelBudgets, names: tuple[str, str],
                       kinds: Iterable[str] = KINDS) -> list[str]:
    """One line per kind whose budgets differ: '<kind>: <names[0]> <first>, <names[1]> <second> (example)'."""
    lines = []
    for kind in kinds:
        a, b = first.for_kind(kind), second.for_kind(kind)
        if a != b:
            lines.append(f"{kind}: {names[0]} {describe(a)}, {names[1]} {describe(b)}{_example(kind, a, b)}")
    return lines


def recorded_budgets(meta: Mapping[str, Any]) -> PixelBudgets | None:
    """The budgets a trajectory was made under, from its `meta`: `budgets` (per-kind object, or a preset name as
    older synthesis runs wrote), else `episode.budgets` (`trajectory_from_episode`); None when not recorded."""
    value = meta.get("budgets")
    where = "meta.budgets"
    if value is None and isinstance(meta.get("episode"), Mapping):
        value, where = meta["episode"].get("budgets"), "meta.episode.budgets"
    if value is None:
        return None
    if isinstance(value, str):
        return PixelBudgets.preset(value)
    return PixelBudgets.from_dict(value, where)


def checkpoint_budgets(model: str) -> tuple[PixelBudgets, str] | None:
    """The budgets the SFT run that produced `model` trained with, and the file they come from; None for a hub id
    or a checkpoint without an SFT record (e.g. a released model)."""
    path = os.path.join(model, SFT_RUN_CONFIG)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        budgets = record["budgets"] if "budgets" in record else record["pixel_budgets"]  # the latter: before 0.2
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: cannot read its `budgets` ({type(e).__name__}: {e}); fix or remove "
                          "the file") from None
    return PixelBudgets.from_dict(budgets, f"{path}: budgets"), path


def compare_with_checkpoint(model: str, budgets: PixelBudgets, stage: str) -> str | None:
    """A warning naming every kind whose budgets in this stage differ from the checkpoint's SFT run, with the
    numbers; None when they agree or the checkpoint has no SFT record."""
    found = checkpoint_budgets(model)
    if found is None:
        return None
    trained, path = found
    lines = budget_differences(trained, budgets, ("SFT", stage))
    if not lines:
        return None
    return (f"{stage} shows images at other sizes than the SFT run that trained {model} ({path}):\n  "
            + "\n  ".join(lines) + "\nThe model sees other visual tokens (and, with pixel-coordinate boxes, other "
            "coordinates) than it learned on. Use the same budgets in every stage (the `consistent` preset is every "
            "recipe's default), or keep this mismatch knowingly (the paper's per-stage presets reproduce the "
            "official runs).")

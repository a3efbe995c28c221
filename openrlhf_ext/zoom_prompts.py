"""Inputs for CPU-mode RL on the zoom task from an SFT checkpoint, with NO forced turns:
`python -m openrlhf_ext.zoom_prompts prepare --out DIR --n N [--seed S]` (used by recipes/rl_toy_cpu.sh).

The model calls its tools by itself, so the prompts must be the ones it was trained on. Under DIR it writes:
- `seeds.jsonl` + `media/`: N zoom-task questions of split `train` (`pixel_reasoner.zoom_task`; detail and coarse
  questions in the SFT data's proportions; task seed 0 is the seed of the SFT data);
- `prompts.jsonl`: those rows converted by `openrlhf_ext.data` with the task's protocol profile (qwen), exactly as
  the SFT trajectories render them (tools block in the system turn, choices and guidelines after the question);
- `pixel_reasoner.yaml`: the rollout agent's settings (a recipe's `pixel_reasoner.rollout` section, given with
  `--pr.config`): the task's profile, its pixel budgets (`ZoomTaskConfig.budgets()`) and the turn length
  `python -m eval run` uses for the task (`EVAL_FLAGS`), so a rollout sees what SFT and evaluation see;
- `inputs.json`: the paths above.
"""
from __future__ import annotations

import argparse
import json
import os

from openrlhf_ext.cpu_demo import write_run_inputs
from pixel_reasoner.config import IMAGE_KINDS
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.jsonl import jsonl_lines, write_jsonl
from pixel_reasoner.zoom_task.layouts import EVAL_FLAGS, Mix, write_seeds
from pixel_reasoner.zoom_task.scene import ZoomTaskConfig


def eval_flag(name: str) -> str:
    """The value of one of the task's `eval run` flags (`pixel_reasoner.zoom_task.layouts.EVAL_FLAGS`)."""
    return EVAL_FLAGS[EVAL_FLAGS.index(f"--{name}") + 1]


def rollout_settings() -> dict:
    """The agent's settings for the zoom task: what `eval run` is given for it (profile, budgets, turn length)."""
    budgets = ZoomTaskConfig().budgets()
    settings: dict = {"profile": eval_flag("profile"), "max_turn_tokens": int(eval_flag("max_turn_tokens"))}
    for kind in IMAGE_KINDS:
        budget = budgets.for_kind(kind)
        settings[f"{kind}_min_pixels"], settings[f"{kind}_max_pixels"] = budget.min_pixels, budget.max_pixels
    return settings


def prompt_seed_rows(seeds_path: str) -> list[dict]:
    """The task's seed rows as `openrlhf_ext.data` reads them: a seed's `kind` is its question kind (detail, colour,
    count; kept in the id), which the converter would read as the scoring's old name."""
    rows = [line.value for line in jsonl_lines(seeds_path)]
    for row in rows:
        row.pop("kind")
    return rows


def prepare(out_dir: str, n: int = 16, task_seed: int = 0) -> dict:
    from openrlhf_ext.data import ConvertOptions, convert

    if n < 1:
        raise ConfigError(f"--n {n}: give at least one question")
    os.makedirs(out_dir, exist_ok=True)
    seeds = write_seeds(out_dir, Mix.for_training(n), task_seed)
    rows = os.path.join(out_dir, "prompt_seeds.jsonl")
    write_jsonl(rows, prompt_seed_rows(seeds))
    prompts = os.path.join(out_dir, "prompts.jsonl")
    convert(rows, prompts, ConvertOptions(profile=eval_flag("profile")))
    return write_run_inputs(out_dir, rollout_settings(),
                            {"prompts": prompts, "seeds": seeds, "questions": n, "task_seed": task_seed})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openrlhf_ext.zoom_prompts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="write zoom-task prompts and the rollout settings (no forced turns)")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=16, help="questions (26.7%% coarse, the rest detail, as in SFT)")
    p.add_argument("--seed", type=int, default=0, help="task seed (0: the SFT data's)")
    args = parser.parse_args(argv)
    print(json.dumps(prepare(args.out, args.n, args.seed), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

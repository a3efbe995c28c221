"""Inputs for a CPU-mode RL run on a tiny random model: `python -m openrlhf_ext.cpu_demo prepare --out DIR`.

For debugging and CI only (see `openrlhf_ext.cpu_mode`). It writes, under DIR:
- `model/`: a tiny random Qwen2.5-VL with the real Qwen vocabulary (`pixel_reasoner.testing.tiny_qwen`);
- `seed.jsonl` + `media/`: toy questions on generated scenes, and `prompts.jsonl`, converted by
  `openrlhf_ext.data` exactly as real data is;
- `pixel_reasoner.yaml`: the rollout agent's settings for the tiny model (a recipe's `pixel_reasoner.rollout`
  section, given with `--pr.config`), with the structured-output schedules (`forced_turns`) that make the random
  model use the tools.

The schedules are chosen so that one run exercises every part of the RL stage with 4 samples per query.
In a "mixed-a" query one sample crops twice and then generates freely (n_vo = 2: efficiency penalty) and three
answer at once (forced to `\\boxed{red}` or `\\boxed{blue}`); in a "mixed-b" query one sample crops once and then
generates freely. Either way RaPR = 1/4 < H = 0.3, so the cropping sample earns the curiosity bonus. The
"uniform" query's samples all give the same wrong answer: a reward-uniform group with zero advantage, which
SSR must handle by replaying earlier samples. (Under a grammar a random model picks odd tokenizations, so a
forced crop call takes 50-120 tokens: `max_turn_tokens` leaves room for that.)
"""
from __future__ import annotations

import argparse
import json
import os

from openrlhf_ext.run_config import RECIPE_SECTION
from pixel_reasoner.jsonl import write_jsonl
from pixel_reasoner.testing.media import save_scene
from pixel_reasoner.testing.tiny_qwen import cached_build

CROP = (r'<tool_call>\n\{"name": "crop_image_normalized", "arguments": \{"bbox_2d": \[0\.[1-3][0-9], '
        r'0\.[1-3][0-9], 0\.[6-9][0-9], 0\.[6-9][0-9]\], "target_image": 1\}\}\n</tool_call>')
ANSWER = r'The answer is \\boxed\{(red|blue)\}\.'
WRONG_ANSWER = r'The answer is \\boxed\{blue\}\.'
SCHEDULES = {
    "mixed-a": [[CROP, CROP, None], [ANSWER], [ANSWER], [ANSWER]],
    "mixed-b": [[CROP, None], [ANSWER], [ANSWER], [ANSWER]],
    "uniform": [[WRONG_ANSWER]],
}
SAMPLES_PER_QUERY = 4
# pixel budgets that fit the tiny model's processor (<= 256 visual tokens per image)
TINY_ROLLOUT_CONFIG = {
    "original_min_pixels": 4 * 784, "original_max_pixels": 48 * 784,
    "crop_min_pixels": 4 * 784, "crop_max_pixels": 32 * 784,
    "frame_min_pixels": 4 * 784, "frame_max_pixels": 16 * 784,
    "limits": {"max_operations": 2, "max_images": 16, "max_turns": 4},
    "max_turn_tokens": 128,  # room for a forced crop call; free turns of a random model stay short
    "image_cache_bytes": 64 << 20,
}


def forced_turn_rules() -> list:
    return [{"match": f"Scenario {name} ", "schedules": schedules} for name, schedules in SCHEDULES.items()]


def scenarios(mixed_queries: int, uniform_queries: int) -> list[str]:
    """mixed-a, mixed-b, mixed-a, ... then the uniform queries."""
    return [("mixed-a", "mixed-b")[i % 2] for i in range(mixed_queries)] + ["uniform"] * uniform_queries


def write_seed(out_dir: str, mixed_queries: int, uniform_queries: int) -> str:
    media = os.path.join(out_dir, "media")
    rows = []
    for i, scenario in enumerate(scenarios(mixed_queries, uniform_queries)):
        image = save_scene(os.path.join(media, f"scene{i}.png"), 280, 210, seed=i)
        rows.append({"qid": f"toy-{i}", "question": f"Scenario {scenario} {i}: is the largest shape red or blue?",
                     "answer": "red", "scoring": "exact_match", "images": [image]})
    path = os.path.join(out_dir, "seed.jsonl")
    write_jsonl(path, rows)
    return path


def prepare(out_dir: str, mixed_queries: int = 3, uniform_queries: int = 1, model_cache: str | None = None) -> dict:
    from openrlhf_ext.data import convert

    os.makedirs(out_dir, exist_ok=True)
    model = cached_build(model_cache or os.path.join(out_dir, "model"))
    seed = write_seed(out_dir, mixed_queries, uniform_queries)
    prompts = os.path.join(out_dir, "prompts.jsonl")
    convert(seed, prompts)
    return write_run_inputs(out_dir, {**TINY_ROLLOUT_CONFIG, "forced_turns": forced_turn_rules()},
                            {"model": model, "prompts": prompts, "samples_per_query": SAMPLES_PER_QUERY})


def write_run_inputs(out_dir: str, rollout: dict, paths: dict) -> dict:
    """The agent's settings (`pixel_reasoner.yaml`, the `rollout` section a CPU recipe passes as --pr.config) and
    `inputs.json` (`paths` plus the settings' path, what the recipe script reads back); returns the latter."""
    settings = os.path.join(out_dir, "pixel_reasoner.yaml")
    with open(settings, "w", encoding="utf-8") as f:  # JSON is YAML: one file format for every recipe
        json.dump({RECIPE_SECTION: {"rollout": rollout}}, f, indent=1)
    paths = {**paths, "settings": settings}
    with open(os.path.join(out_dir, "inputs.json"), "w", encoding="utf-8") as f:
        json.dump(paths, f, indent=2)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m openrlhf_ext.cpu_demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="write the tiny model, toy prompts and the rollout settings (forced turns)")
    p.add_argument("--out", required=True)
    p.add_argument("--mixed-queries", type=int, default=3)
    p.add_argument("--uniform-queries", type=int, default=1)
    p.add_argument("--model-cache", default=None, help="directory to build/reuse the tiny model in")
    args = parser.parse_args(argv)
    print(json.dumps(prepare(args.out, args.mixed_queries, args.uniform_queries, args.model_cache), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""bench/wrong_crops.py's two arms differ only in where the re-crops' wrong crops go: the random arm's seeds are the
same rows without `wrong_boxes`, and their teacher trajectories have as many of each type, with random wrong boxes
instead of grid cells."""
from __future__ import annotations

import json
import os
from collections import Counter

from data_synthesis.cli import main as synthesize
from pixel_reasoner.trajectory import read_trajectories
from pixel_reasoner.zoom_task.layouts import Mix, write_seeds

RECIPE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "recipes",
                      "synth_zoom_cpu.yaml")


def trajectories(seeds: str, out: str) -> list:
    assert synthesize(["run", "--config", RECIPE, "--set", f"sources=[{{format: jsonl, name: zoom, path: '{seeds}'}}]",
                       "--output.dir", out, "--no-progress"]) == 0
    return [t for _, t in read_trajectories(f"{out}/trajectories.jsonl")]


def wrong_crops(trajectories: list) -> list[list[int]]:
    return [op["source_boxes"][0] for t in trajectories if t.trajectory_type.startswith("recrop")
            for op in t.meta["operations"] if not op["loss"]]


def test_the_random_arm_drops_only_the_wrong_boxes(tmp_path):
    from bench.wrong_crops import without_wrong_boxes

    seeds = write_seeds(str(tmp_path / "seeds"), Mix.for_training(40), wrong_boxes=True)
    random_seeds = str(tmp_path / "seeds" / "random.jsonl")
    without_wrong_boxes(seeds, random_seeds)
    rows = [json.loads(line) for line in open(seeds)]
    stripped = [json.loads(line) for line in open(random_seeds)]
    assert any("wrong_boxes" in r for r in rows) and not any("wrong_boxes" in r for r in stripped)
    assert stripped == [{k: v for k, v in r.items() if k != "wrong_boxes"} for r in rows]

    cells, random = trajectories(seeds, str(tmp_path / "cells")), trajectories(random_seeds, str(tmp_path / "random"))
    assert Counter(t.trajectory_type for t in cells) == Counter(t.trajectory_type for t in random)
    is_cell = lambda b: b[0] % 112 == 0 and b[1] % 112 == 0 and b[2] - b[0] == b[3] - b[1] == 112  # noqa: E731
    assert wrong_crops(cells) and all(is_cell(b) for b in wrong_crops(cells))
    assert wrong_crops(random) and not all(is_cell(b) for b in wrong_crops(random))

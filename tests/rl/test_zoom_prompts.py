"""The toy RL recipe's inputs (`openrlhf_ext.zoom_prompts`): the prompts an unforced model is trained on under RL
must be the ones its SFT trajectories rendered, and the agent must see what eval shows (profile, budgets, turns)."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from openrlhf_ext.data import ConvertOptions, convert
from openrlhf_ext.run_config import RECIPE_SECTION
from openrlhf_ext.zoom_prompts import prepare
from pixel_reasoner.zoom_task.layouts import EVAL_FLAGS

REPO = pathlib.Path(__file__).resolve().parents[2]


def _rows(path: str) -> dict[str, dict]:
    with open(path, encoding="utf-8") as f:
        return {row["qid"].removeprefix("zoom-"): row for row in map(json.loads, f)}


def test_prompts_are_the_sft_trajectories_prompts_and_settings_are_evals(tmp_path):
    paths = prepare(str(tmp_path / "rl"), n=8)
    synthesis = tmp_path / "synthesis"
    subprocess.run([sys.executable, "-m", "data_synthesis", "run", "--config", "recipes/synth_zoom_cpu.yaml", "--set",
                    "profile=qwen", "--set", f"sources=[{{format: jsonl, name: zoom, path: '{paths['seeds']}'}}]",
                    "--output.dir", str(synthesis), "--no-progress"], cwd=REPO, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    convert(str(synthesis / "trajectories.jsonl"), str(tmp_path / "sft_prompts.jsonl"), ConvertOptions(profile="qwen"))
    rl, sft = _rows(paths["prompts"]), _rows(str(tmp_path / "sft_prompts.jsonl"))
    assert sorted(rl) == sorted(sft) and len(rl) == 8
    assert {qid.split("-")[1] for qid in rl} == {"detail", "colour", "count"}
    for qid, row in rl.items():
        assert row["input"] == sft[qid]["input"] and row["images"] and len(row["images"]) == 1
        assert {k: v for k, v in json.loads(row["label"]).items() if k != "qid"} == \
            {k: v for k, v in json.loads(sft[qid]["label"]).items() if k != "qid"}

    with open(paths["settings"], encoding="utf-8") as f:
        rollout = json.load(f)[RECIPE_SECTION]["rollout"]
    given = {flag.lstrip("-"): value for flag, value in zip(EVAL_FLAGS, EVAL_FLAGS[1:])  # valued flags of eval run
             if flag.startswith("--") and not value.startswith("--")}
    assert "forced_turns" not in rollout
    for key, value in rollout.items():
        assert str(value) == given[key], key


def test_recipe_without_a_model_fails_with_the_fix(tmp_path):
    done = subprocess.run(["bash", str(REPO / "recipes" / "rl_toy_cpu.sh")], capture_output=True, text=True,
                          env={**os.environ, "WORK": str(tmp_path), "PYTHON": sys.executable, "MODEL": ""}, timeout=60)
    assert done.returncode == 2
    assert "MODEL must name a zoom-task SFT checkpoint" in done.stderr and "open_r1_ext/sft.py" in done.stderr

"""Does our SFT teach? A short seeded run of `recipes/sft_zoom_cpu.yaml` through `accelerate launch`, then the
trained and the untrained model read held-out zoom-task trajectories (task seed 1; training used seed 0).

The decisions are scored teacher-forced, at the tokens that carry them: the crop box's first corner (where
to zoom: only the original's pixels say it), the pattern the crop shows (only the crop's pixels say it), and
the option letter after it. The untrained model is at chance on all; the trained one must read the crop nearly
always. If the crop's pixels did not reach the model (a collator, processor or budget bug), the pattern after the
crop would stay at chance (25%) and this test fails: docs/learning.md records that run (the crop replaced by flat
grey in the collator). The data is bench/learning.py's mix (tools rows + tools-disabled rows); the run is
shortened to STEPS at a constant learning rate after the recipe's warmup, with the recipe's `batch_sampling:
replacement`. Localising within the original takes longer, so the box is reported, not asserted;
bench/learning.py measures it, and generation-time accuracy, from a full run.
"""
from __future__ import annotations

import json
import math
import os
import sys

import pytest

from pixel_reasoner.zoom_task import commands

STEPS = 300  # ~4 minutes of SFT on 2 free cores; 5 plain-loop runs read the crop by step 250 (docs/learning.md)
CHANCE = 0.25  # four patterns, four colours


def _trajectories(py: str, root: str, name: str, n: int, task_seed: int, profile: str = "qwen",
                  limit: int | None = None) -> str:
    """Teacher trajectories for `n` seeds of `task_seed` (made once per name), the first `limit` in `profile`:
    the command lines of `pixel_reasoner.zoom_task.commands`, which bench/learning.py and the quickstart run."""
    seeds, out = os.path.join(root, f"{name}_seeds"), os.path.join(root, f"{name}_{profile}")
    log = os.path.join(root, "commands.log")
    if not os.path.exists(os.path.join(seeds, "seeds.jsonl")):
        commands.run(commands.seeds(py, seeds, n, task_seed), log)
    commands.run(commands.synthesis(py, os.path.join(seeds, "seeds.jsonl"), out, profile, limit), log)
    return os.path.join(out, "trajectories.jsonl")


@pytest.mark.slow
@pytest.mark.skip(reason="does not pass yet: through accelerate launch the crop stayed at chance in 6 runs of "
                         "300-1,200 steps (either batch sampling), while 5 plain-loop runs read it by step 250; the "
                         "Trainer optimises like the plain loop on the same batches (bench/sft_trainer_parity.py), so "
                         "the draw order decides (docs/learning.md, 'Batch sampling', 'The CI test')")
def test_sft_on_the_zoom_task_learns_to_read_the_crop(tmp_path):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from open_r1_ext.decisions import decision_accuracy
    from open_r1_ext.sft import parse_args, prepare_training

    py, root = sys.executable, str(tmp_path)
    model_dir, out = os.path.join(root, "model"), os.path.join(root, "sft")
    log = os.path.join(root, "commands.log")
    commands.run(commands.model(py, model_dir, seed=0), log)
    train = _trajectories(py, root, "train", 3000, task_seed=0)
    no_tools = _trajectories(py, root, "train", 3000, task_seed=0, profile="qwen-no-tools", limit=600)
    heldout = _trajectories(py, root, "heldout", 80, task_seed=1)
    commands.run(commands.sft(py, model_dir, [train, no_tools], out, STEPS, seed=0, threads=1)
                 + ["--lr_scheduler_type", "constant_with_warmup"], log)

    script, training, model_args = parse_args(["--config", "recipes/sft_zoom_cpu.yaml", "--model_name_or_path",
                                               model_dir, "--data_files", heldout, "--data_weights", "1",
                                               "--output_dir", os.path.join(root, "unused")])
    prepared = prepare_training(script, training, model_args)
    rows = [json.loads(s) for s in prepared.train_dataset["sample"]]
    detail = [r for r in rows if "-detail-" in r["id"]]
    assert len(detail) >= 40
    tokenizer = AutoProcessor.from_pretrained(model_dir).tokenizer
    before = decision_accuracy(prepared.model, prepared.collator, tokenizer, detail)
    after = decision_accuracy(Qwen2_5_VLForConditionalGeneration.from_pretrained(out), prepared.collator, tokenizer,
                              detail)
    print(f"held-out detail trajectories ({len(detail)}), teacher-forced: before {before}, after {after}")

    vocabulary = len(tokenizer)
    assert before["loss"] > 0.8 * math.log(vocabulary)  # untrained: near uniform over the vocabulary
    assert after["loss"] < 0.15 * math.log(vocabulary)
    assert before["crop_class"] <= CHANCE + 0.2
    assert after["crop_class"] >= 0.8  # the crop's pixels reached the model and were read

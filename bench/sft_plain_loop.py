"""The zoom-task SFT without the Trainer: a plain PyTorch loop over exactly what `open_r1_ext/sft.py` prepares.

    python bench/sft_plain_loop.py --model OUT/model --train T.jsonl [T2.jsonl ...] --heldout H.jsonl \
        [--config recipes/sft_zoom_cpu.yaml] [--steps 1200] [--every 100] [--seed 0] [--out curve.json] \
        [any open_r1_ext/sft.py flag, e.g. --lr_scheduler_type constant]

Why: it is how the zoom preset's learning was compared with and without the Trainer. Over the same prepared
dataset, collator, model, learning rate, schedule (transformers' `get_scheduler` with the recipe's type and
warmup), AdamW settings and gradient clipping, the batch sampling decided whether the crop was read early:
`--sampling replacement` read it by step 150-250 in every run, `--sampling permutation` (the Trainer's epochs) in
none (docs/learning.md, "Batch sampling"); `batch_sampling` in open_r1_ext now offers both. Every `--every` steps
it scores the held-out detail trajectories teacher-forced at their decision tokens (`open_r1_ext.decisions`) and
prints one line; it writes the curve as JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory (python -m pixel_reasoner.testing.tiny_qwen)")
    ap.add_argument("--train", nargs="+", required=True, help="trajectory JSONL files, weight 1 each")
    ap.add_argument("--heldout", required=True, help="held-out trajectory JSONL (its detail rows are scored)")
    ap.add_argument("--config", default="recipes/sft_zoom_cpu.yaml")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="batch order")
    ap.add_argument("--sampling", choices=("permutation", "replacement"), default="permutation",
                    help="epochs of a random permutation (the Trainer's sampler) or rows drawn with replacement")
    ap.add_argument("--out", default="sft_plain_loop.json")
    a, sft_flags = ap.parse_known_args()

    import torch
    from transformers import get_scheduler

    from eval.records import write_json_atomic
    from open_r1_ext.dataset import prepare_samples
    from open_r1_ext.decisions import decision_accuracy
    from open_r1_ext.sft import parse_args, prepare_training

    def prepared(files: list[str]):
        argv = ["--config", a.config, "--model_name_or_path", a.model, "--data_files", *files,
                "--data_weights", *["1"] * len(files), "--output_dir", os.path.join(os.path.dirname(a.out) or ".",
                                                                                    "sft_plain_loop_run"),
                "--max_steps", str(a.steps), *sft_flags]
        return parse_args(argv)

    script, training, model_args = prepared(a.train)
    run = prepare_training(script, training, model_args)
    model, collator, tokenizer = run.model, run.collator, run.processor.tokenizer
    train_rows = run.train_dataset["sample"]
    held = prepare_samples(dataclasses.replace(script, data_files=[a.heldout], data_weights=None), run.processor,
                           training.max_length, progress=False)
    detail = [row for row in (json.loads(s.to_json()) for s in held.samples) if "-detail-" in row["id"]]

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=training.learning_rate, betas=(training.adam_beta1, training.adam_beta2),
                                  eps=training.adam_epsilon, weight_decay=training.weight_decay)
    warmup = training.get_warmup_steps(a.steps)
    scheduler = get_scheduler(training.lr_scheduler_type, optimizer, num_warmup_steps=warmup,
                              num_training_steps=a.steps)
    generator = torch.Generator().manual_seed(a.seed)
    draw = random.Random(a.seed)
    batch_size = training.per_device_train_batch_size * training.gradient_accumulation_steps  # one step's rows
    order: list[int] = []
    curve, losses, start = [], [], time.time()
    model.train()
    for step in range(1, a.steps + 1):
        if a.sampling == "replacement":
            order = [draw.randrange(len(train_rows)) for _ in range(batch_size)]
        elif len(order) < batch_size:  # epochs of a random permutation, like the Trainer's sampler
            order += torch.randperm(len(train_rows), generator=generator).tolist()
        batch = collator([{"sample": train_rows[i]} for i in order[:batch_size]])
        del order[:batch_size]
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, training.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(loss.item())
        if step % a.every == 0 or step == a.steps:
            point = {"step": step, "train_loss": sum(losses) / len(losses), "wall_s": round(time.time() - start, 1),
                     **decision_accuracy(model, collator, tokenizer, detail)}
            losses = []
            curve.append(point)
            print(json.dumps(point), flush=True)
    read = next((p["step"] for p in curve if p.get("crop_class", 0) >= 0.8), None)
    write_json_atomic(a.out, {"command": " ".join(sys.argv), "config": a.config, "sft_flags": sft_flags,
                              "sampling": a.sampling,
                              "steps": a.steps, "seed": a.seed,
                              "learning_rate": training.learning_rate, "scheduler": training.lr_scheduler_type,
                              "warmup_steps": warmup, "batch_size": batch_size, "heldout_detail_rows": len(detail),
                              "first_step_crop_read": read, "curve": curve})
    print(f"crop read (>= 80% teacher-forced) first at step {read}; curve in {a.out}"
          if read else f"crop not read within {a.steps} steps; curve in {a.out}")
    if not math.isfinite(curve[-1]["train_loss"]):
        raise SystemExit("training diverged (non-finite loss)")


if __name__ == "__main__":
    main()

"""Does the SFT entry point's Trainer optimise exactly like a plain PyTorch loop over the same batches?

    python bench/sft_trainer_parity.py --model OUT/model --train T.jsonl [T2.jsonl ...] [--steps 20] \
        [--config recipes/sft_zoom_cpu.yaml] [--out sft_trainer_parity.json] [any open_r1_ext/sft.py flag]

Why: on the zoom task, runs of `bench/sft_plain_loop.py` read the crop sooner than runs through
`accelerate launch open_r1_ext/sft.py` (docs/learning.md, "Batch sampling"), and the question was whether
something in the Trainer path (TRL's fused LM head, the loss normalisation, the optimiser, the scheduler, gradient
clipping, our trainer subclasses) changes the optimisation. This runs the trainer class `open_r1_ext.sft` builds
for N steps, recording the rows of every batch its data loader drew (through the collator; accelerate's loader
collates one batch ahead, so one more is recorded than trained), then replays each step's rows (its
`gradient_accumulation_steps` micro-batches joined into one batch) from the same initial weights in a plain loop
(`model(**batch).loss`, torch AdamW with the run's settings, transformers' `get_scheduler`, `clip_grad_norm_`) and
compares the two step by step: loss, gradient norm,
learning rate, and the largest parameter difference at the end. It prints one line per step and a summary, and
writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


class RecordingCollator:
    """The run's collator, also remembering which rows each batch held (the Trainer's own draw order)."""

    def __init__(self, collator) -> None:
        self.collator = collator
        self.batches: list[list[str]] = []

    def __call__(self, examples: list[dict]) -> dict:
        self.batches.append([e["sample"] for e in examples])
        return self.collator(examples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory (python -m pixel_reasoner.testing.tiny_qwen)")
    ap.add_argument("--train", nargs="+", required=True, help="trajectory JSONL files, weight 1 each")
    ap.add_argument("--config", default="recipes/sft_zoom_cpu.yaml")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default="sft_trainer_parity.json")
    a, sft_flags = ap.parse_known_args()

    import torch
    from transformers import get_scheduler
    from trl import get_peft_config

    from eval.records import write_json_atomic
    from open_r1_ext.sft import parse_args, prepare_training

    workdir = os.path.join(os.path.dirname(os.path.abspath(a.out)), "sft_trainer_parity_run")
    argv = ["--config", a.config, "--model_name_or_path", a.model, "--data_files", *a.train,
            "--data_weights", *["1"] * len(a.train), "--output_dir", workdir, "--max_steps", str(a.steps),
            "--logging_steps", "1", "--save_strategy", "no", "--report_to", "none", *sft_flags]

    script, training, model_args = parse_args(argv)
    run = prepare_training(script, training, model_args)
    recorder = RecordingCollator(run.collator)
    trainer = run.trainer_class(model=run.model, args=training, train_dataset=run.train_dataset,
                                processing_class=run.processor, data_collator=recorder,
                                peft_config=get_peft_config(model_args))
    start = time.time()
    trainer.train()
    trainer_s = time.time() - start
    trained = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    logged = [h for h in trainer.state.log_history if "loss" in h]

    script, training, model_args = parse_args(argv)
    plain = prepare_training(script, training, model_args)  # the same initial weights, read again from disk
    model = plain.model
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=training.learning_rate, betas=(training.adam_beta1, training.adam_beta2),
                                  eps=training.adam_epsilon, weight_decay=training.weight_decay)
    scheduler = get_scheduler(training.lr_scheduler_type, optimizer,
                              num_warmup_steps=training.get_warmup_steps(a.steps), num_training_steps=a.steps)
    accumulation = training.gradient_accumulation_steps
    step_rows = [sum(recorder.batches[i:i + accumulation], []) for i in range(0, len(recorder.batches), accumulation)]
    steps = []
    start = time.time()
    for step, (rows, log) in enumerate(zip(step_rows, logged), start=1):
        batch = plain.collator([{"sample": r} for r in rows])
        loss = model(**batch).loss
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, training.max_grad_norm))
        point = {"step": step, "trainer_loss": float(log["loss"]), "plain_loss": loss.item(),
                 "trainer_grad_norm": float(log["grad_norm"]), "plain_grad_norm": grad_norm,
                 "trainer_lr": float(log["learning_rate"]), "plain_lr": scheduler.get_last_lr()[0]}
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        steps.append(point)
        print(json.dumps(point), flush=True)
    plain_s = time.time() - start
    max_param_diff = max(float((trained[name] - p.detach()).abs().max()) for name, p in model.named_parameters())
    max_param = max(float(p.detach().abs().max()) for p in model.parameters())
    result = {
        "command": " ".join(sys.argv), "config": a.config, "sft_flags": sft_flags, "steps": a.steps,
        "batches_recorded": len(recorder.batches), "steps_logged": len(logged),
        "max_loss_diff": max(abs(s["trainer_loss"] - s["plain_loss"]) for s in steps),
        "max_grad_norm_rel_diff": max(abs(s["trainer_grad_norm"] - s["plain_grad_norm"])
                                      / max(s["plain_grad_norm"], 1e-12) for s in steps),
        "max_lr_diff": max(abs(s["trainer_lr"] - s["plain_lr"]) for s in steps),
        "max_param_diff": max_param_diff, "max_abs_param": max_param,
        "trainer_wall_s": round(trainer_s, 1), "plain_wall_s": round(plain_s, 1), "steps_detail": steps,
    }
    write_json_atomic(a.out, result)
    print(f"{len(steps)} steps: max |loss diff| {result['max_loss_diff']:.2e}, max relative grad-norm diff "
          f"{result['max_grad_norm_rel_diff']:.2e}, max |lr diff| {result['max_lr_diff']:.2e}, max |param diff| "
          f"{max_param_diff:.2e} (largest |param| {max_param:.2f}); trainer {trainer_s:.0f} s, plain {plain_s:.0f} s; "
          f"JSON in {a.out}")
    if len(steps) != a.steps:
        raise SystemExit(f"compared {len(steps)} steps (the Trainer collated {len(recorder.batches)} batches and "
                         f"logged {len(logged)} steps): expected {a.steps}")


if __name__ == "__main__":
    main()

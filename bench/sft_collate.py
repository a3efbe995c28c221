"""SFT collation throughput, and its share of a training step on the tiny model.

    python bench/sft_collate.py [--out out/bench/sft_collate.json] [--samples 16] [--steps 3]

Samples are engine-made trajectories (open_r1_ext.demo_data) with 1 image (`text_only`: the input image) or
4 images (`recrop_twice`: the input + 3 crops), collated by the training collator (decode, resize to the
pixel budget, render with tools, tokenize, image processor, labels). Two media settings:
  - `demo`:  the tiny recipe's budgets (<= 64 tokens per image, 320x240 sources): what the CPU smoke run does;
  - `paper`: paper_sft budgets (the official SFT; the 7B recipe now defaults to `consistent`, whose images are
    smaller) with 1600x1200 sources: an upper bound on the per-sample collation work at 7B.
The training step (TRL SFTTrainer.training_step + optimizer step, batch 2) is measured on the tiny model with
the `demo` media only; its share = collate time / (collate time + step time) for the same batch.
All numbers come from this one run on this machine; the JSON records the machine's CPU count and load.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from open_r1_ext.collator import TrajectoryCollator
from open_r1_ext.config import SFTScriptArguments
from open_r1_ext.dataset import prepare_samples, to_train_dataset
from open_r1_ext.demo_data import DemoMedia, demo_script_arguments, write_demo_data
from open_r1_ext.modeling import freeze_vision_tower, load_model, load_processor
from pixel_reasoner.config import PixelBudgets
from pixel_reasoner.testing.tiny_qwen import cached_build

KINDS = {"1_image": "text_only", "4_images": "recrop_twice"}
SETTINGS = {"demo": (DemoMedia(), demo_script_arguments),
            "paper": (DemoMedia(budgets=PixelBudgets.paper_sft(), scale=5.0),
                      lambda **kw: SFTScriptArguments(budget_preset="paper_sft", **kw))}


def collation_rate(collator, specs, batch: int, repeats: int) -> tuple[float, float, int]:
    """(samples/s, seconds per batch, tokens per sample) of collating `specs` in batches, best of `repeats`."""
    examples = [{"sample": s.to_json()} for s in specs]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(examples), batch):
            collator(examples[i: i + batch])
        best = min(best, time.perf_counter() - start)
    tokens = len(collator.encode(specs[0])["input_ids"])
    return len(specs) / best, best / (len(specs) / batch), tokens


def training_step_seconds(model_dir, processor, collator, specs, steps: int, out_dir: str) -> float:
    """Median seconds of one SFTTrainer training step + optimizer step on a pre-collated batch."""
    import torch
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(0)
    model = load_model(model_dir, "float32", "sdpa")
    freeze_vision_tower(model)
    args = SFTConfig(output_dir=out_dir, use_cpu=True, bf16=False, report_to=[], max_length=None,
                     remove_unused_columns=False, per_device_train_batch_size=len(specs), learning_rate=1e-4,
                     gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False},
                     save_strategy="no", disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=to_train_dataset(specs), processing_class=processor,
                         data_collator=collator)
    trainer.create_optimizer_and_scheduler(num_training_steps=steps + 1)
    trainer.current_gradient_accumulation_steps = 1
    model.train()
    batch = collator([{"sample": s.to_json()} for s in specs])
    times = []
    for _ in range(steps + 1):  # the first step warms up allocations and is not counted
        start = time.perf_counter()
        trainer.training_step(model, {k: v.clone() for k, v in batch.items()})
        trainer.optimizer.step()
        trainer.optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/bench/sft_collate.json")
    ap.add_argument("--samples", type=int, default=16, help="samples per kind")
    ap.add_argument("--batch", type=int, default=2, help="collation and training batch size")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3, help="timed training steps")
    ap.add_argument("--model", help="tiny model directory (default: built under .cache/tiny_models)")
    a = ap.parse_args()
    model_dir = a.model or cached_build(os.path.join(".cache", "tiny_models"))
    results: dict = {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg(), "batch": a.batch, "collation": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for setting, (media, make_args) in SETTINGS.items():
            for kind, scenario in KINDS.items():
                path = write_demo_data(os.path.join(tmp, setting, kind), copies=a.samples, scenarios=[scenario],
                                       media=media)
                args = make_args(data_files=[path])
                processor = load_processor(model_dir, args.budgets())
                specs = prepare_samples(args, processor, None, progress=False).samples
                collator = TrajectoryCollator(processor, args.budgets())
                rate, per_batch, tokens = collation_rate(collator, specs, a.batch, a.repeats)
                entry = {"samples_per_s": round(rate, 1), "s_per_batch": round(per_batch, 4),
                         "tokens_per_sample": tokens}
                if setting == "demo":
                    step = training_step_seconds(model_dir, processor, collator, specs[: a.batch], a.steps,
                                                 os.path.join(tmp, "trainer"))
                    entry.update(train_step_s=round(step, 3),
                                 collate_share_of_step=round(per_batch / (per_batch + step), 4))
                results["collation"][f"{setting}/{kind}"] = entry
                print(f"{setting:5s} {kind:8s} {tokens:5d} tok/sample  {rate:7.1f} samples/s  "
                      + (f"step {entry['train_step_s']:.2f}s  collate share {entry['collate_share_of_step']:.1%}"
                         if "train_step_s" in entry else ""), flush=True)
    results["load_avg_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

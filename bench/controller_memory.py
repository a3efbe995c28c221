"""Host memory of the RL controller per rollout sample, measured, and the 7B recipe's estimate built from it.

    python bench/controller_memory.py [--json out.json]

Measured in one run (nothing is downloaded, no model is loaded):
- `pixel_values` bytes of Qwen2.5-VL's real image processor (`Qwen2VLImageProcessor`, the class the released
  checkpoints use) on images already resized to the paper's RL budgets, as the agent hands them over: an original
  at 2000 visual tokens and a crop at 1000, in float32 (what the agent stored before) and cast to bf16 (what it
  stores now, `RolloutConfig.pixel_dtype`);
- bytes per token of a single-sample upstream `Experience` after advantages, as the SSR buffer holds it (sequences,
  masks, log-probs, advantages, returns), counted by `openrlhf_ext.trainer.sample_bytes`;
- both compared with the constants of `openrlhf_ext.controller_memory`, and that module's estimate for the 7B
  recipe's defaults (512 queries × 8 samples, SSR capacity 4096 with its 64 GiB byte cap, every sample cropping
  once) with float32 pixels (the agent before) and with the agent's bf16 pixels (a cropping sample carries its own
  copy of the prompt's pixels, so the per-query prompt tensor is not shared in this mix).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from openrlhf_ext import controller_memory as cm  # noqa: E402
from openrlhf_ext.trainer import sample_bytes  # noqa: E402

RECIPE = dict(queries=512, samples_per_query=8, original_max_pixels=2000 * 784, produced_max_pixels=1000 * 784,
              max_len=12288, ssr_capacity=4096, ssr_max_bytes=64 * cm.GIB)


def image_processor_output(width: int, height: int) -> dict:
    """The processor's training inputs for one image already at its budget (it must not resize it)."""
    from transformers import Qwen2VLImageProcessor

    processor = Qwen2VLImageProcessor(min_pixels=4 * 784, max_pixels=16384 * 784)
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = processor(images=[Image.fromarray(pixels)], return_tensors="pt")
    return {"pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}


def measure_pixels(width: int, height: int) -> dict:
    out = image_processor_output(width, height)
    tokens = int(out["image_grid_thw"].prod()) // cm.PIXEL_ROWS_PER_VISUAL_TOKEN
    fp32 = out["pixel_values"].nbytes
    return {"size": [width, height], "visual_tokens": tokens, "pixel_values_shape": list(out["pixel_values"].shape),
            "float32_bytes": fp32, "bf16_bytes": out["pixel_values"].to(torch.bfloat16).nbytes,
            "estimate_float32_bytes": cm.pixel_bytes(tokens, 4)}


def measure_sequence(tokens: int) -> dict:
    """A single-sample experience as upstream builds it (action tensors span tokens − 1 positions)."""
    from openrlhf.trainer.ppo_utils.experience import Experience

    actions = tokens - 1
    item = Experience(
        sequences=torch.ones(1, tokens, dtype=torch.long), attention_mask=torch.ones(1, tokens, dtype=torch.long),
        action_mask=torch.ones(1, actions, dtype=torch.long), action_log_probs=torch.zeros(1, actions),
        rollout_log_probs=torch.zeros(1, actions), advantages=torch.zeros(1, actions), returns=torch.zeros(1, actions),
        rewards=torch.zeros(1), scores=torch.zeros(1), response_length=torch.zeros(1), truncated=torch.zeros(1),
        total_length=torch.zeros(1), info={k: torch.zeros(1) for k in ("reward", "num_operations", "num_images")})
    nbytes = sample_bytes([item])[0]
    return {"tokens": tokens, "bytes": nbytes, "bytes_per_token": nbytes / tokens,
            "estimate_bytes_per_token": cm.SEQUENCE_BYTES_PER_TOKEN}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    original = measure_pixels(1400, 1120)  # 50 x 40 = 2000 visual tokens (the original budget)
    crop = measure_pixels(1120, 700)  # 40 x 25 = 1000 visual tokens (the crop budget)
    sequence = measure_sequence(RECIPE["max_len"])
    before = cm.run_estimate(**RECIPE, pixel_value_bytes=4)
    agent = cm.run_estimate(**RECIPE)
    result = {"original": original, "crop": crop, "sequence": sequence,
              "recipe_float32": {"sample_bytes": before.sample.total_bytes, "total_bytes": before.total_bytes,
                                 "summary": before.summary()},
              "recipe_agent": {"sample_bytes": agent.sample.total_bytes, "total_bytes": agent.total_bytes,
                               "summary": agent.summary()}}
    print(f"original {original['size']}: {original['visual_tokens']} visual tokens, pixel_values "
          f"{original['pixel_values_shape']}: {original['float32_bytes'] / 1e6:.1f} MB float32 "
          f"({original['bf16_bytes'] / 1e6:.1f} MB bf16; estimate {original['estimate_float32_bytes'] / 1e6:.1f} MB)")
    print(f"crop {crop['size']}: {crop['visual_tokens']} visual tokens: {crop['float32_bytes'] / 1e6:.1f} MB float32 "
          f"({crop['bf16_bytes'] / 1e6:.1f} MB bf16; estimate {crop['estimate_float32_bytes'] / 1e6:.1f} MB)")
    print(f"tokens: {sequence['bytes_per_token']:.1f} B per token of a single-sample experience "
          f"({sequence['tokens']} tokens: {sequence['bytes'] / 1e6:.2f} MB; estimate "
          f"{sequence['estimate_bytes_per_token']} B)")
    print(f"7B recipe, float32 pixels (the agent before): {before.summary()}")
    print(f"7B recipe, the agent's bf16 pixels: {agent.summary()}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

"""What each pixel-budget preset shows the model, and what a worst-case trajectory costs in visual tokens.

    python bench/budgets.py [--json out.json] [--max-len 12288]

Pure arithmetic (Qwen2.5-VL's resize rule as `pixel_reasoner.media.budget_size` applies it; 1 visual token =
28×28 px; a video's frames merge in pairs, temporal patch 2), no model and no media. For every preset
(`BUDGET_PRESETS`) it prints the size a 4000×3000 original, a 150×100 and a 2800×2100 region (crops), and a
1280×720 video frame are shown at, and the visual tokens of the largest trajectory the episode limits allow
(4 operations):
- image: the 4000×3000 original plus 4 crops of large regions (each at the crop budget's maximum);
- video: 16 frames of 1280×720 as a video, plus 8 selected frames (images) and 3 crops of them.
These are compared with RL's sequence budget (`--max-len`, the rl_7b.sh default and the official ~12k), which
holds the prompt, every turn's text and the visual tokens.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from pixel_reasoner.config import BUDGET_PRESETS, TOKEN_PIXELS, PixelBudget, PixelBudgets  # noqa: E402
from pixel_reasoner.media import budget_size  # noqa: E402

ORIGINAL, SMALL_REGION, LARGE_REGION, FRAME = (4000, 3000), (150, 100), (2800, 2100), (1280, 720)
VIDEO_FRAMES, SELECTED_FRAMES, OPERATIONS = 16, 8, 4
TEMPORAL_PATCH = 2


def shown(size: tuple[int, int], budget: PixelBudget) -> dict:
    width, height = budget_size(*size, budget)
    return {"size": f"{width}x{height}", "tokens": width * height // TOKEN_PIXELS}


def preset_row(name: str) -> dict:
    budgets = PixelBudgets.preset(name)
    original, small, large = (shown(ORIGINAL, budgets.original), shown(SMALL_REGION, budgets.crop),
                              shown(LARGE_REGION, budgets.crop))
    frame = shown(FRAME, budgets.frame)
    frame_crop = shown((FRAME[0] // 2, FRAME[1] // 2), budgets.crop)
    image_trajectory = original["tokens"] + OPERATIONS * large["tokens"]
    video = VIDEO_FRAMES // TEMPORAL_PATCH * frame["tokens"]
    video_trajectory = video + SELECTED_FRAMES * frame["tokens"] + (OPERATIONS - 1) * frame_crop["tokens"]
    return {"preset": name, "original_4000x3000": original, "crop_150x100": small, "crop_2800x2100": large,
            "frame_1280x720": frame, "image_trajectory_tokens": image_trajectory,
            "video_trajectory_tokens": video_trajectory}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--max-len", type=int, default=12288, help="RL sequence budget to compare with")
    a = ap.parse_args()
    rows = [preset_row(name) for name in BUDGET_PRESETS]
    print("| preset | 4000×3000 original | 150×100 zoom | 2800×2100 zoom | 1280×720 frame "
          "| largest image trajectory | largest video trajectory |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r[k]['size']} ({r[k]['tokens']})" for k in ("original_4000x3000", "crop_150x100",
                                                                 "crop_2800x2100", "frame_1280x720")]
        image, video = r["image_trajectory_tokens"], r["video_trajectory_tokens"]
        print(f"| `{r['preset']}` | " + " | ".join(cells) +
              f" | {image} ({image / a.max_len:.0%} of {a.max_len}) | {video} ({video / a.max_len:.0%}) |")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"max_len": a.max_len, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()

"""Helpers of the CPU quickstart (`bash recipes/quickstart_cpu.sh`): the script chains the real command-line tools
of every stage; this module does only what those tools do not: make the seed media, pick a port and wait for a
server, and gather every stage's numbers into `quickstart_out/metrics.json`.

    python -m pixel_reasoner.quickstart seeds OUT_DIR          # seed images/clips + seeds.jsonl (synthesis input)
    python -m pixel_reasoner.quickstart free-port
    python -m pixel_reasoner.quickstart wait-http URL --pid PID --log FILE [--timeout S]
    python -m pixel_reasoner.quickstart collect OUT_DIR        # metrics.json + where to look

Only the standard library, pillow and numpy (PyAV for the clips).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from pixel_reasoner.jsonl import read_jsonl, write_jsonl
from pixel_reasoner.testing.media import scene_image, write_video

COLORS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (30, 60, 220), "yellow": (230, 220, 40)}


@dataclass(frozen=True)
class SeedSpec:
    """Sizes chosen so that every image stays within the tiny model's processor (<= 256 visual tokens) and the
    whole pipeline runs in minutes on 2 cores; the layout is the generic synthesis JSONL (docs/synthesis.md)."""

    color_questions: int = 6
    count_questions: int = 2
    clips: int = 2
    image_size: tuple[int, int] = (252, 196)  # 9 x 7 = 63 visual tokens
    clip_size: tuple[int, int] = (112, 84)  # 4 x 3 = 12 visual tokens per frame
    clip_frames: int = 48
    clip_fps: int = 16
    seed: int = 0


def make_seeds(out_dir: str, spec: SeedSpec = SeedSpec()) -> str:
    """Scenes whose answer sits in a small region (the reference box), and clips whose answer sits in a few frames
    (the reference frames); returns the path of `seeds.jsonl`."""
    rng = np.random.default_rng(spec.seed)
    media = os.path.join(out_dir, "media")
    os.makedirs(media, exist_ok=True)
    rows = []
    names = list(COLORS)
    width, height = spec.image_size
    for i in range(spec.color_questions):
        color = names[i % len(names)]
        image = scene_image(width, height, seed=spec.seed + i)
        x, y = int(rng.integers(10, width - 40)), int(rng.integers(10, height - 40))
        ImageDraw.Draw(image).rectangle([x, y, x + 24, y + 24], fill=COLORS[color], outline=(0, 0, 0))
        name = f"square_{i}.png"
        image.save(os.path.join(media, name))
        rows.append({"id": f"square-{i}", "image": f"media/{name}", "question": "What is the color of the small "
                     "square with a black outline?", "choices": [c.capitalize() for c in names],
                     "answer": color.capitalize(), "ref_box": [x, y, x + 25, y + 25]})
    for i in range(spec.count_questions):
        image = scene_image(width, height, seed=spec.seed + 100 + i)
        draw = ImageDraw.Draw(image)
        count = 2 + i
        x0, y0 = int(rng.integers(10, width - 70)), int(rng.integers(10, height - 30))
        draw.rectangle([x0 - 4, y0 - 4, x0 + 14 * count + 4, y0 + 14], fill=(255, 255, 255))
        for k in range(count):
            draw.ellipse([x0 + 14 * k, y0, x0 + 14 * k + 10, y0 + 10], fill=(0, 0, 0))
        name = f"dots_{i}.png"
        image.save(os.path.join(media, name))
        rows.append({"id": f"dots-{i}", "image": f"media/{name}", "question": "How many black dots are on the white "
                     "strip?", "answer": str(count), "scoring": "count",
                     "ref_box": [x0 - 4, y0 - 4, x0 + 14 * count + 5, y0 + 15]})
    for i in range(spec.clips):
        name = f"clip_{i}.mp4"
        write_video(os.path.join(media, name), num_frames=spec.clip_frames + 8 * i, width=spec.clip_size[0],
                    height=spec.clip_size[1], fps=spec.clip_fps)
        middle = [8, 9]  # of the 16 frames sampled uniformly
        rows.append({"id": f"clip-{i}", "video": f"media/{name}", "question": "Is the clip more red or more blue "
                     "halfway through?", "choices": ["More red", "More blue"], "answer": "More blue",
                     "ref_frames": middle})
    path = os.path.join(out_dir, "seeds.jsonl")
    write_jsonl(path, rows)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, pid: int, log: str, timeout: float) -> None:
    """Wait until `url` answers 200; fail early (with the log's tail) if the server process `pid` exits."""
    deadline = time.time() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise SystemExit(f"the server (pid {pid}) exited before it was ready; end of {log}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.time() > deadline:
            raise SystemExit(f"{url} not ready after {timeout:.0f}s; end of {log}:\n{_tail(log)}")
        time.sleep(1)


def _tail(path: str, chars: int = 3000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-chars:]
    except OSError:
        return "(no log)"


RL_KEYS = ("step", "rollout/correct_mean", "rollout/rapr_mean", "reward/curiosity_mean", "reward/efficiency_mean",
           "ssr/reward_uniform_group_ratio", "ssr/replayed_share", "ssr/buffer_size", "ssr/batch_size",
           "ssr/batch_multiple_of_train_batch", "policy_loss")


def read_rows(path: str) -> list[dict]:
    """A stage's JSONL log, or nothing when the stage did not run."""
    return read_jsonl(path) if os.path.isfile(path) else []


def collect(out_dir: str) -> dict:
    """Every stage's headline numbers in one JSON file, from the files the stages wrote."""
    def load(path: str):
        full = os.path.join(out_dir, path)
        if not os.path.isfile(full):
            return None
        with open(full, encoding="utf-8") as f:
            return json.load(f)

    synthesis = load("synthesis/stats.json") or {}
    trajectories = synthesis.get("trajectories") or {}
    sft_state = load("sft/trainer_state.json") or {}
    losses = [h["loss"] for h in sft_state.get("log_history", []) if "loss" in h]
    steps = read_rows(os.path.join(out_dir, "rl", "run", "metrics.jsonl"))
    evals = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "eval", "results", "*", "metrics.json"))):
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
        evals[os.path.basename(os.path.dirname(path))] = {k: m.get(k) for k in (
            "score", "ci95", "n_questions", "n_responses", "rapr", "ops_per_response", "op_error_rate",
            "answer_extracted")}
    metrics = {
        "stages": read_rows(os.path.join(out_dir, "timings.jsonl")),
        "synthesis": {"trajectories": trajectories.get("total"), "by_type": trajectories.get("by_type"),
                      "from_templates": trajectories.get("from_templates"),
                      "rejections": (synthesis.get("rejections") or {}).get("by_stage")},
        "sft": {"steps": sft_state.get("global_step"), "losses": losses},
        "rl": {"steps": len(steps), "per_step": [{k: r.get(k) for k in RL_KEYS} for r in steps]},
        "eval": evals,
    }
    with open(os.path.join(out_dir, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixel_reasoner.quickstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("seeds").add_argument("out_dir")
    sub.add_parser("free-port")
    wait = sub.add_parser("wait-http")
    wait.add_argument("url")
    wait.add_argument("--pid", type=int, required=True)
    wait.add_argument("--log", required=True)
    wait.add_argument("--timeout", type=float, default=600)
    sub.add_parser("collect").add_argument("out_dir")
    args = parser.parse_args(argv)
    if args.command == "seeds":
        print(make_seeds(args.out_dir))
    elif args.command == "free-port":
        print(free_port())
    elif args.command == "wait-http":
        wait_http(args.url, args.pid, args.log, args.timeout)
    else:
        print(json.dumps(collect(args.out_dir), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The zoom task written in the layouts the pipeline already reads: synthesis seeds (the generic JSONL of
docs/synthesis.md) for teacher trajectories, and V*-, TallyQA- and MVBench-style directories that
`python -m eval run` evaluates unchanged. Images are PNG (lossless: a JPEG would blur the pattern).

Seeds: detail questions carry `ref_box` = the frame's grid cell (the crop the teacher makes) and `route: pixel`
(a trajectory type of Table 2); coarse questions are routed to text-only trajectories (`route: text_only`); a
video seed carries `ref_frames` (the frame to select) and `ref_box` (the cell to crop in it). Evaluation: detail and colour questions in one V* directory (categories
`detail` and `colour`; detail rows annotate the frame's box for crop faithfulness), counts in TallyQA's layout
(`issimple: true`), videos as MVBench frame folders (task "Episodic Reasoning", `--subset
mvbench=episodic_reasoning`; frames are JPEG as MVBench names them, at quality 100 without chroma subsampling).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from pixel_reasoner.config import IMAGE_KINDS, PixelBudgets
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.zoom_task.items import KINDS, ZoomItem, make_item
from pixel_reasoner.zoom_task.scene import Scene, ZoomTaskConfig

TEXT_ONLY_SHARE = 2000 / 7500  # the paper's text-only share of the SFT data (Table 2)
VSTAR_DIR, TALLYQA_DIR, MVBENCH_DIR = "vstar", "tallyqa", "mvbench"
MVBENCH_TASK_FILE = "episodic_reasoning.json"  # MVBench's frame-folder task
MVBENCH_FRAMES = "video/tvqa/frames_fps3_hq"


def _budget_flags(budgets: PixelBudgets) -> list[str]:
    """`eval run`'s per-kind pixel flags that give exactly `budgets`."""
    flags = []
    for kind in IMAGE_KINDS:
        budget = budgets.for_kind(kind)
        flags += [f"--{kind}_min_pixels", str(budget.min_pixels), f"--{kind}_max_pixels", str(budget.max_pixels)]
    return flags


# `eval run` flags for the task: its profile and pixel budgets (ZoomTaskConfig.budgets()), options sorted by their
# text (the V* layout lists the correct option first; the task's items list them in that sorted order), short turns
# (a teacher turn is < 60 tokens).
EVAL_FLAGS = ["--profile", "qwen", *_budget_flags(ZoomTaskConfig().budgets()), "--sort_options",
              "--max_turn_tokens", "96", "--max_response_tokens", "384", "--max_model_len", "2048",
              "--dtype", "float32"]


# Percent of detail questions right by guessing: one of the task's patterns.
CHANCE_DETAIL = 100 / len(ZoomTaskConfig().patterns)


@dataclass(frozen=True)
class Mix:
    """How many questions of each kind. `for_training` splits n with the paper's text-only share going to the
    coarse questions (answerable without a tool) and the rest to detail questions, plus `videos`."""

    detail: int = 0
    colour: int = 0
    count: int = 0
    video: int = 0
    closeup: int = 0  # training only: the SFT warm-up stage's data, answered from the close-up itself
    closeup_crop: int = 0  # training only: the same close-ups, answered through a crop of the whole close-up

    @classmethod
    def for_training(cls, n: int, videos: int = 0, closeups: int = 0) -> "Mix":
        coarse = round(n * TEXT_ONLY_SHARE)
        return cls(detail=n - coarse, colour=coarse - coarse // 2, count=coarse // 2, video=videos,
                   closeup=closeups, closeup_crop=closeups)

    def items(self, task_seed: int, split: str, config: ZoomTaskConfig):
        """Kinds interleaved, so that the first n items of a file (a source `limit`) are a mix too."""
        for index in range(max(getattr(self, kind) for kind in KINDS)):
            for kind in KINDS:
                if index < getattr(self, kind):
                    yield make_item(kind, task_seed, split, index, config)


def _save(image, root: str, rel: str) -> str:
    """PNG, or JPEG at quality 100 without chroma subsampling where a layout demands JPEG (MVBench frames)."""
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, quality=100, subsampling=0) if rel.endswith(".jpg") else image.save(path)
    return rel


def _write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        if path.endswith(".jsonl"):
            f.writelines(json.dumps(row) + "\n" for row in obj)
        else:
            json.dump(obj, f, indent=1)


def other_cells(scene: Scene) -> list[list[int]]:
    """Every grid cell but the frame's: with them as `wrong_boxes` the re-crop trajectories' wrong crops are cells,
    as the right one is, so "is the frame in this crop?" can only be read from the crop's pixels, not from the box's
    shape. Optional (`seeds --wrong-boxes`): over 600-step runs it gave no gain (docs/learning.md, "After the first
    crop")."""
    x1, y1, x2, y2 = scene.cell_box
    side, (width, height) = x2 - x1, scene.image.size
    return [[x, y, x + side, y + side] for y in range(0, height, side) for x in range(0, width, side)
            if [x, y, x + side, y + side] != [x1, y1, x2, y2]]


def seed_row(item: ZoomItem, root: str, wrong_boxes: bool = False) -> dict:
    """One synthesis seed (generic JSONL), its media written under `root`. Boxes are in the item's image: a
    close-up's are shifted into its cell. With `wrong_boxes`, a detail question's are the other grid cells."""
    dx, dy = item.shown_box[:2] if item.shown_box else (0, 0)
    frame = item.scene.frame_box
    row: dict = {"id": item.id, "question": item.question, "answer": item.answer, "kind": item.kind,
                 "ref_box": [0, 0, *item.image.size] if item.shown_box else list(item.scene.cell_box),
                 "target_box": [frame[0] - dx, frame[1] - dy, frame[2] - dx, frame[3] - dy]}
    if item.choices:
        row["choices"] = item.choices
    if wrong_boxes and item.kind == "detail":
        row["wrong_boxes"] = other_cells(item.scene)
    if item.kind == "count":
        row["scoring"] = "count"
    if item.frames is not None:
        row["frames"] = [_save(f, root, f"media/{item.id}/frame_{k:02d}.png") for k, f in enumerate(item.frames, 1)]
        row["ref_frames"] = [item.frame_index]
    else:
        row["image"] = _save(item.image, root, f"media/{item.id}.png")
    row["route"] = "text_only" if item.kind in ("colour", "count", "closeup") else "pixel"
    return row


def write_seeds(out_dir: str, mix: Mix, task_seed: int = 0, config: ZoomTaskConfig = ZoomTaskConfig(),
                wrong_boxes: bool = False) -> str:
    """Training seeds (split `train`) for `python -m data_synthesis run`; returns the seeds.jsonl path.
    `wrong_boxes`: detail seeds name the other grid cells as where the re-crops' wrong crops go."""
    rows = [seed_row(item, out_dir, wrong_boxes) for item in mix.items(task_seed, "train", config)]
    if not rows:
        raise ConfigError("the mix asks for no questions; give at least one")
    path = os.path.join(out_dir, "seeds.jsonl")
    _write_json(path, rows)
    return path


def write_benchmarks(out_dir: str, mix: Mix, task_seed: int = 0,
                     config: ZoomTaskConfig = ZoomTaskConfig()) -> dict[str, str]:
    """Held-out questions (split `eval`) in the benchmark layouts; returns {benchmark: directory} for those with
    questions."""
    if mix.closeup or mix.closeup_crop:
        raise ConfigError(f"Mix.closeup={mix.closeup}, Mix.closeup_crop={mix.closeup_crop}: close-ups are training data (the SFT warm-up stage), not a "
                          "benchmark; evaluate detail questions instead")
    listing, tally, clips = [], [], []
    for item in mix.items(task_seed, "eval", config):
        if item.kind in ("detail", "colour"):
            rel = _save(item.image, os.path.join(out_dir, VSTAR_DIR), f"{item.kind}/{item.id}.png")
            options = [item.choices[ord(item.answer) - ord("A")]] + \
                [c for i, c in enumerate(item.choices or []) if i != ord(item.answer) - ord("A")]
            box = item.scene.frame_box
            annotation = {"question": item.question, "options": options, "target_object": ["frame"],
                          "bbox": [[box[0], box[1], box[2] - box[0], box[3] - box[1]]] if item.kind == "detail" else []}
            _write_json(os.path.join(out_dir, VSTAR_DIR, f"{item.kind}/{item.id}.json"), annotation)
            listing.append({"image": rel, "category": item.kind, "question_id": item.id})
        elif item.kind == "count":
            rel = _save(item.image, os.path.join(out_dir, TALLYQA_DIR), f"images/{item.id}.png")
            tally.append({"image": rel, "question": item.question, "answer": int(item.answer), "issimple": True,
                          "question_id": item.id, "data_source": "zoom_task"})
        else:
            assert item.frames is not None and item.choices is not None
            for k, frame in enumerate(item.frames, 1):
                _save(frame, os.path.join(out_dir, MVBENCH_DIR), f"{MVBENCH_FRAMES}/{item.id}/{k:05d}.jpg")
            clips.append({"video": item.id, "question": item.question, "candidates": item.choices,
                          "answer": item.choices[ord(item.answer) - ord("A")], "frame_index": item.frame_index,
                          "cell_box": list(item.scene.cell_box)})
    written = {}
    if listing:
        _write_json(os.path.join(out_dir, VSTAR_DIR, "test_questions.jsonl"), listing)
        written["vstar"] = os.path.join(out_dir, VSTAR_DIR)
    if tally:
        _write_json(os.path.join(out_dir, TALLYQA_DIR, "test.json"), tally)
        written["tallyqa"] = os.path.join(out_dir, TALLYQA_DIR)
    if clips:
        _write_json(os.path.join(out_dir, MVBENCH_DIR, "json", MVBENCH_TASK_FILE), clips)
        written["mvbench"] = os.path.join(out_dir, MVBENCH_DIR)
    return written

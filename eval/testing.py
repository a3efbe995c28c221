"""Tiny benchmark directories in each real layout, made at run time (for tests and harness smoke runs).

    python -m eval.testing OUT_DIR     # writes OUT_DIR/{vstar_bench,tallyqa,infovqa,mvbench,pixel_reasoner}

Images are small generated scenes (`pixel_reasoner.testing.media`), videos short H.264 clips whose frame colour
encodes the frame index; nothing is downloaded or committed. V* targets are drawn rectangles whose boxes are
the annotations, so crop faithfulness has a known answer.
"""
from __future__ import annotations

import json
import os
import sys

from PIL import ImageDraw

from pixel_reasoner.jsonl import write_jsonl
from pixel_reasoner.testing.media import scene_image, write_video

SMALL_BUDGETS = {"original_min_pixels": 4 * 784, "original_max_pixels": 128 * 784,  # RunConfig fields: test images
                 "crop_min_pixels": 4 * 784, "crop_max_pixels": 64 * 784}  # stay small (a few visual tokens)
COLORS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (30, 60, 220), "yellow": (230, 220, 40)}


def _write_json(path: str, obj) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.endswith(".jsonl"):
        write_jsonl(path, obj)
        return path
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    return path


def _scene_with_target(path: str, seed: int, color: str, size=(448, 336)) -> list[int]:
    """A scene with one coloured square; returns its box as V* stores it ([x, y, w, h])."""
    image = scene_image(*size, seed=seed)
    x, y = 40 + 37 * seed % (size[0] - 120), 30 + 23 * seed % (size[1] - 100)
    ImageDraw.Draw(image).rectangle([x, y, x + 40, y + 40], fill=COLORS[color])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image.save(path)
    return [x, y, 40, 40]


def make_vstar(root: str, n_direct: int = 3, n_relative: int = 2, listing: bool = True) -> str:
    """`vstar_bench` layout: category folders with image + annotation json (correct option first)."""
    rows, names = [], list(COLORS)
    for category, n in (("direct_attributes", n_direct), ("relative_position", n_relative)):
        for i in range(n):
            seed = len(rows)
            stem = f"sa_{1000 + seed}"
            color = names[seed % len(names)]
            box = _scene_with_target(os.path.join(root, category, stem + ".jpg"), seed, color)
            if category == "direct_attributes":
                options = [color] + [c for c in names if c != color][:3]
                question = "What is the color of the square?"
            else:
                options = ["The square is on the left side of the image.", "The square is on the right side of the image."]
                question = "Is the square on the left or right side of the image?"
            _write_json(os.path.join(root, category, stem + ".json"),
                        {"target_object": ["square"], "bbox": [box], "question": question, "options": options})
            letters = "\n".join(f"({chr(65 + k)}) {o}" for k, o in enumerate(options))
            rows.append({"image": f"{category}/{stem}.jpg", "text": f"{question}\n{letters}\nAnswer with the option's "
                         "letter from the given choices directly.", "category": category, "question_id": seed,
                         "label": "A"})
    if listing:
        _write_json(os.path.join(root, "test_questions.jsonl"), rows)
    return root


def make_tallyqa(root: str, n: int = 6) -> str:
    rows = []
    for i in range(n):
        folder = "val2014" if i % 2 == 0 else "VG_100K"
        name = f"{folder}/img_{i}.jpg"
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        scene_image(320, 240, seed=100 + i).save(os.path.join(root, name))
        rows.append({"image": name, "question": f"How many shapes are there in picture {i}?", "answer": i % 4,
                     "issimple": i % 3 == 0, "question_id": 500 + i, "image_id": i, "data_source": "amt"})
    _write_json(os.path.join(root, "test.json"), rows)
    return root


def make_infovqa(root: str, n: int = 4) -> str:
    images = os.path.join(root, "infographicsvqa_images")
    os.makedirs(images, exist_ok=True)
    for split in ("val", "test"):
        data = []
        for i in range(n):
            name = f"{split}_{i}.jpeg"
            scene_image(300, 420, seed=200 + i).save(os.path.join(images, name))
            row = {"questionId": 65000 + i + (100 if split == "test" else 0), "question": f"What is written in box {i}?",
                   "image_local_name": name, "answer_type": ["single span" if i % 2 else "non-extractive"]}
            if split == "val":
                row["answers"] = [f"seed {200 + i}", f"{200 + i}"]
            data.append(row)
        _write_json(os.path.join(root, f"infographicsVQA_{split}_v1.0.json"), {"dataset_split": split, "data": data})
    return root


def make_mvbench(root: str, n_per_task: int = 2) -> str:
    """Two tasks: Action Sequence (mp4 files, with start/end bounds) and Episodic Reasoning (frame folders)."""
    items = []
    for i in range(n_per_task):
        name = f"clip{i}.mp4"
        write_video(os.path.join(root, "video", "star", "Charades_v1_480", name), num_frames=40 + 8 * i)
        items.append({"video": name, "question": f"What happened after event {i}?",
                      "candidates": ["Took the cup.", "Opened the door.", "Sat on the bed."][: 2 + i % 2],
                      "answer": "Opened the door.", "start": 0.5, "end": 2.0})
    _write_json(os.path.join(root, "json", "action_sequence.json"), items)
    items = []
    for i in range(n_per_task):
        folder = os.path.join(root, "video", "tvqa", "frames_fps3_hq", f"episode{i}")
        os.makedirs(folder, exist_ok=True)
        for f in range(20):
            scene_image(64, 48, seed=f).save(os.path.join(folder, f"{f + 1:05d}.jpg"))
        items.append({"video": f"episode{i}", "question": "Who speaks first?", "candidates": ["Ross", "Rachel", "Joey"],
                      "answer": "Joey", "start": 1.0, "end": 5.0})
    _write_json(os.path.join(root, "json", "episodic_reasoning.json"), items)
    return root


def make_pixel_reasoner_parquet(path: str, benchmark: str = "vstar", n: int = 4) -> str:
    """A Pixel-Reasoner eval parquet: question with embedded choices, relative image paths in `<stem>_images/`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = os.path.dirname(os.path.abspath(path))
    stem = os.path.splitext(os.path.basename(path))[0]
    rows = []
    for i in range(n):
        if benchmark == "mvbench":
            frames = []
            for f in range(16):
                rel = f"images/q{i}/frame_{f}.jpg"
                full = os.path.join(folder, f"{stem}_images", rel)
                os.makedirs(os.path.dirname(full), exist_ok=True)
                scene_image(64, 48, seed=f).save(full)
                frames.append(rel)
            rows.append({"question": "<image>\nWhat does the person do?\nchoices:\nA: Walk  \nB: Run  \nC: Sit",
                         "image": frames, "answer": "B", "qid": f"mvbench-{i}", "is_video": True})
            continue
        rel = f"images/img_{i}.jpg"
        full = os.path.join(folder, f"{stem}_images", rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        scene_image(320, 240, seed=300 + i).save(full)
        if benchmark == "vstar":
            question = "<image>\nWhat is the color of the sign?\nchoices:\nA: red  \nB: blue  \nC: green  \nD: white"
            answer = "ABCD"[i % 4]
        elif benchmark == "tallyqa":
            question, answer = "<image>\nHow many people are there?", str(i)
        else:
            question, answer = "<image>\nWhat is the title?", f"title {i}"
        rows.append({"question": question, "image": [rel], "answer": answer, "qid": f"{benchmark}-{i}", "is_video": False})
    os.makedirs(folder, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


class ScriptedGenerator:
    """A deterministic stand-in for a model (tests, dry runs of the harness): on the first turn it calls the
    profile's crop tool (images) or select-frames tool (videos); on later turns it answers `\\boxed{answer}`.
    `delay` seconds per batch make runs slow enough to interrupt in tests.
    """

    def __init__(self, profile, answer: str = "A", call_first: bool = True, delay: float = 0.0):
        from pixel_reasoner.protocol import get_profile

        self.profile = get_profile(profile)
        self.answer, self.call_first, self.delay = answer, call_first, delay
        self.requests: list = []
        self.batch_sizes: list[int] = []

    def _call(self, request) -> str:
        names = self.profile.tool_names()
        if request.video:
            name, args = names["select_frames"], {"target_frames": [2, 5, 9]}
        else:
            name = names["crop_image"]
            coordinates = getattr(self.profile.binding(name).settings, "coordinates", "normalized")
            w, h = request.images[0].size
            box = [0.1, 0.1, 0.6, 0.6] if coordinates == "normalized" else [w // 10, h // 10, w * 6 // 10, h * 6 // 10]
            args = {"bbox_2d": box, "target_image": 1}
        return f"I need a closer look.\n<tool_call>\n{json.dumps({'name': name, 'arguments': args})}\n</tool_call>"

    def __call__(self, requests):
        import time

        from eval.runner import GenerationResult

        self.requests.extend(requests)
        self.batch_sizes.append(len(requests))
        if self.delay:
            time.sleep(self.delay)
        out = []
        for r in requests:
            first_turn = r.prompt.count("<|im_start|>assistant") == 1
            text = (self._call(r) if first_turn and self.call_first and r.stop
                    else f"The answer is \\boxed{{{self.answer}}}.")
            out.append(GenerationResult(text, max(1, len(text) // 4), "stop", len(r.prompt) // 4))
        return out


def make_all(root: str) -> dict[str, str]:
    return {"vstar": make_vstar(os.path.join(root, "vstar_bench")), "tallyqa": make_tallyqa(os.path.join(root, "tallyqa")),
            "infovqa": make_infovqa(os.path.join(root, "infovqa")), "mvbench": make_mvbench(os.path.join(root, "mvbench")),
            "parquet": make_pixel_reasoner_parquet(os.path.join(root, "pixel_reasoner", "vstar.parquet"))}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m eval.testing OUT_DIR")
    for name, path in make_all(sys.argv[1]).items():
        print(f"{name}: {path}")

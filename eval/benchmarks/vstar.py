"""V* Bench (`craigwu/vstar_bench`): 191 multiple-choice questions on high-resolution images.

Layout:
    vstar_bench/
      test_questions.jsonl            # optional: {"image", "text", "category", "question_id", "label"} per line
      direct_attributes/sa_4690.jpg   # 115 questions
      direct_attributes/sa_4690.json  # {"question", "options" (correct first), "target_object", "bbox": [[x,y,w,h]]}
      relative_position/sa_79958.jpg  # 76 questions
      relative_position/sa_79958.json

The per-image annotation files are the source of truth (question, options, target boxes). With
`test_questions.jsonl` present, its ids and order are used and every row must have its annotation file; without
it, the two category folders are scanned (ids "<category>/<image stem>").
"""
from __future__ import annotations

import glob
import os

from pixel_reasoner.errors import DataError
from pixel_reasoner.media import ImageFile

from eval.benchmarks.common import LoadOptions, read_json, require
from eval.benchmarks.registry import Benchmark, PaperNumbers, register_benchmark
from eval.question import Question

CATEGORIES = ("direct_attributes", "relative_position")
QUESTIONS_FILE = "test_questions.jsonl"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


def xywh_to_xyxy(box: list[float], where: str) -> list[float]:
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise DataError(f"{where}: a `bbox` entry must be [x, y, w, h], got {box!r}")
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


def _question(root: str, image_rel: str, qid: str, category: str) -> Question:
    image_path = os.path.join(root, image_rel)
    stem = os.path.splitext(image_path)[0]
    annotation_path = stem + ".json"
    annotation = read_json(annotation_path)
    if not os.path.isfile(image_path):
        raise DataError(f"V* image not found: {image_path}")
    options = require(annotation, "options", annotation_path)
    if not isinstance(options, list) or len(options) < 2:
        raise DataError(f"{annotation_path}: `options` must list at least 2 options, got {options!r}")
    boxes = [xywh_to_xyxy(b, annotation_path) for b in annotation.get("bbox") or []]
    return Question(id=qid, benchmark="vstar", question=str(require(annotation, "question", annotation_path)),
                    answer="A", choices=[str(o) for o in options], images=[ImageFile(image_path)],
                    category=category, target_boxes=boxes or None,
                    meta={"image": image_rel, "target_object": annotation.get("target_object")})


def load_vstar(root: str, options: LoadOptions) -> list[Question]:
    listing = os.path.join(root, QUESTIONS_FILE)
    if os.path.isfile(listing):
        questions = []
        for i, row in enumerate(read_json(listing)):
            where = f"{listing} line {i + 1}"
            image_rel = str(require(row, "image", where))
            category = str(row.get("category") or image_rel.split("/")[0])
            questions.append(_question(root, image_rel, str(row.get("question_id", i)), category))
        return questions
    missing = [c for c in CATEGORIES if not os.path.isdir(os.path.join(root, c))]
    if len(missing) == len(CATEGORIES):
        raise DataError(f"{root} is not a V* directory: expected {QUESTIONS_FILE} or the folders "
                        f"{', '.join(CATEGORIES)} (see docs/eval.md)")
    questions = []
    for category in CATEGORIES:
        for annotation_path in sorted(glob.glob(os.path.join(root, category, "*.json"))):
            stem = os.path.splitext(os.path.basename(annotation_path))[0]
            image = next((f"{category}/{stem}{s}" for s in IMAGE_SUFFIXES
                          if os.path.isfile(os.path.join(root, category, stem + s))), None)
            if image is None:
                raise DataError(f"V* image for {annotation_path} not found: expected "
                                f"{os.path.join(root, category, stem)}.jpg")
            questions.append(_question(root, image, f"{category}/{stem}", category))
    return questions


VSTAR = register_benchmark(Benchmark(
    name="vstar", short_name="V*", load=load_vstar, scoring="multiple_choice",
    paper=PaperNumbers("V* Bench Acc", rapr=78.53, table1={
        "Pixel-Reasoner (paper)": 84.3, "Qwen2.5-VL (7B, paper)": 70.4, "Warm-Start Model (w/o RL)": 79.0,
        "RL w/o Curiosity": 81.1, "RL w/o Warm-Start": 81.7, "RL w/o Correction-Data": 80.1})))

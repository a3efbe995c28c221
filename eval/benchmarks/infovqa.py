"""InfographicVQA (ANLS): the RRC annotation json {"dataset_split", "data": [{"questionId", "question",
"image_local_name", "answers", "answer_type", ...}]} + the images.

Layout:
    infographicsvqa/
      infographicsVQA_val_v1.0_withQT.json     # val: answers included
      infographicsVQA_test_v1.0.json           # test: no answers -> a submission file
      infographicsvqa_images/37313.jpeg        # (or images/ or the directory itself, or --image-root)
`--split val|test` (default val) picks the json whose file name contains the split name. The test split hides its
answers: its runs write `submission.json` for the RRC server.
"""
from __future__ import annotations

import glob
import os
from typing import Sequence

from pixel_reasoner.errors import DataError
from pixel_reasoner.media import ImageFile

from eval.benchmarks.common import LoadOptions, read_json, require, resolve_file
from eval.benchmarks.registry import Benchmark, PaperNumbers, register_benchmark
from eval.protocols import DEFAULT_PROTOCOL, answer_text
from eval.question import Question

SPLITS = ("val", "test", "train")
IMAGE_DIRS = ("infographicsvqa_images", "images", "")


def annotation_file(root: str, split: str) -> str:
    found = sorted(p for p in glob.glob(os.path.join(root, "*.json")) if split in os.path.basename(p).lower())
    if len(found) != 1:
        present = sorted(os.path.basename(p) for p in glob.glob(os.path.join(root, "*.json")))
        raise DataError(f"InfoVQA {split} annotations: expected exactly one *{split}*.json in {root} (e.g. "
                        f"infographicsVQA_{split}_v1.0.json), found {present or 'none'}")
    return found[0]


def load_infovqa(root: str, options: LoadOptions) -> list[Question]:
    split = options.split or "val"
    if split not in SPLITS:
        raise DataError(f"InfoVQA --split {split!r}; choose one of {SPLITS}")
    path = annotation_file(root, split)
    doc = read_json(path)
    rows = require(doc, "data", path) if isinstance(doc, dict) else doc
    image_roots = [options.image_root] if options.image_root else [os.path.join(root, d) for d in IMAGE_DIRS]
    questions = []
    for i, row in enumerate(rows):
        where = f"{path} data[{i}]"
        qid = require(row, "questionId", where)
        answers = row.get("answers")
        if split != "test" and not answers:
            raise DataError(f"{where}: `answers` is missing or empty in the {split} split")
        image = resolve_file(str(require(row, "image_local_name", where)), image_roots, f"InfoVQA image of {where}")
        answer_type = row.get("answer_type")  # a list: a question counts under each of its types, as in the RRC's
        category = [str(t) for t in answer_type] if isinstance(answer_type, list) and answer_type else answer_type
        questions.append(Question(
            id=str(qid), benchmark="infovqa", question=str(require(row, "question", where)),
            answer=[str(a) for a in answers] if answers else None, images=[ImageFile(image)],
            category=category, meta={"questionId": qid, "image": row["image_local_name"]}))
    return questions


def submission(rows: Sequence[dict], protocol: str = DEFAULT_PROTOCOL) -> list[dict]:
    """The RRC's submission format [{"questionId": int, "answer": str}], from each question's first sample (the
    greedy run's only one). Each answer is the string the protocol's local ANLS scores, so the server's ANLS and a
    local one on the same outputs are one function of one string."""
    first: dict[str, dict] = {}
    for r in rows:
        if str(r["id"]) not in first or int(r.get("sample_idx", 0)) < int(first[str(r["id"])].get("sample_idx", 0)):
            first[str(r["id"])] = r
    out = []
    for qid, r in first.items():
        question_id = (r.get("meta") or {}).get("questionId", qid)
        try:
            question_id = int(question_id)
        except (TypeError, ValueError):
            pass
        out.append({"questionId": question_id, "answer": answer_text(r, protocol) or ""})
    return sorted(out, key=lambda d: (isinstance(d["questionId"], str), d["questionId"]))


INFOVQA = register_benchmark(Benchmark(
    name="infovqa", short_name="InfoVQA", load=load_infovqa, scoring="anls", submission=submission,
    paper=PaperNumbers("InfoVQA-test ANLS", rapr=58.95, table1={
        "Pixel-Reasoner (paper)": 84.0, "Qwen2.5-VL (7B, paper)": 80.7, "Warm-Start Model (w/o RL)": 74.3,
        "RL w/o Curiosity": 80.7, "RL w/o Warm-Start": 81.2, "RL w/o Correction-Data": 78.2})))

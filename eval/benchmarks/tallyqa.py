"""TallyQA (counting): `test.json` / `train.json` lists of {"image", "question", "answer", "issimple", ...}.

Layout:
    tallyqa/
      test.json             # [{"image": "val2014/COCO_val2014_000000391895.jpg", "question": "...", "answer": 2,
                            #   "issimple": false, "question_id": 1, "image_id": ..., "data_source": "amt"}, ...]
      val2014/ ...          # COCO and Visual Genome images at the paths the json names (or pass --image-root)
      VG_100K/ VG_100K_2/
`--split` picks the file (default test); `--subset complex|simple|all` filters on `issimple` (default complex,
the paper's TallyQA-complex).
"""
from __future__ import annotations

import os

from pixel_reasoner.errors import DataError
from pixel_reasoner.media import ImageFile

from eval.benchmarks.common import LoadOptions, read_json, require, resolve_file
from eval.benchmarks.registry import Benchmark, PaperNumbers, register_benchmark
from eval.question import Question

SUBSETS = ("complex", "simple", "all")


def load_tallyqa(root: str, options: LoadOptions) -> list[Question]:
    split = options.split or "test"
    subset = options.subset or "complex"
    if subset not in SUBSETS:
        raise DataError(f"TallyQA --subset {subset!r}; choose one of {SUBSETS}")
    path = os.path.join(root, f"{split}.json")
    rows = read_json(path)
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of questions")
    image_roots = [options.image_root] if options.image_root else [root]
    questions = []
    for i, row in enumerate(rows):
        where = f"{path} item {i}"
        simple = require(row, "issimple", where)
        if subset != "all" and bool(simple) != (subset == "simple"):
            continue
        image = resolve_file(str(require(row, "image", where)), image_roots, f"TallyQA image of {where}")
        questions.append(Question(
            id=str(row.get("question_id", i)), benchmark="tallyqa", question=str(require(row, "question", where)),
            answer=str(require(row, "answer", where)), images=[ImageFile(image)],
            category="simple" if simple else "complex",
            meta={k: row[k] for k in ("image", "image_id", "data_source") if k in row}))
    return questions


TALLYQA = register_benchmark(Benchmark(
    name="tallyqa", short_name="TallyQA-complex", load=load_tallyqa, scoring="count",
    paper=PaperNumbers("TallyQA-complex Acc", rapr=57.78, table1={
        "Pixel-Reasoner (paper)": 73.8, "Qwen2.5-VL (7B, paper)": 68.6, "Warm-Start Model (w/o RL)": 67.9,
        "RL w/o Curiosity": 71.8, "RL w/o Warm-Start": 72.2, "RL w/o Correction-Data": 69.8})))

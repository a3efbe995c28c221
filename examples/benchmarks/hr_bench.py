"""A new benchmark in one file: HR-Bench (Wang et al., 2025), multiple-choice questions on 4K and 8K images.

Use it without touching the package:

    python -m eval run --benchmark_modules examples/benchmarks/hr_bench.py --benchmark hr_bench \
        --data data/eval/hr_bench --split 8k --model TIGER-Lab/PixelReasoner-RL-v1 --out out/hr_bench_8k
    python -m eval score --benchmark_modules examples/benchmarks/hr_bench.py --benchmark hr_bench \
        --predictions out/hr_bench_8k/predictions.jsonl
    python -m eval report --benchmark_modules examples/benchmarks/hr_bench.py out/*/metrics.json

Layout (`DreamMr/HR-Bench` on the hub):
    hr_bench/
      hr_bench_4k.tsv    # index, question, answer (A-D), A, B, C, D, category, cycle_category, image (base64 JPEG)
      hr_bench_8k.tsv
`--split 4k|8k` (default 4k) picks the file. Walkthrough: docs/adding_a_benchmark.md.
"""
from __future__ import annotations

import base64
import binascii
import csv
import os
import sys

from pixel_reasoner.errors import DataError
from pixel_reasoner.media import ImageBytes

from eval.benchmarks import Benchmark, LoadOptions, register_benchmark
from eval.question import Question

SPLITS = ("4k", "8k")
COLUMNS = ("index", "question", "answer", "A", "B", "C", "D", "image")


def load_hr_bench(root: str, options: LoadOptions) -> list[Question]:
    """Every question of one split's TSV, in file order; DataError naming the file and row for a bad one."""
    split = options.split or "4k"
    if split not in SPLITS:
        raise DataError(f"HR-Bench --split {split!r}; choose one of {SPLITS}")
    path = os.path.join(root, f"hr_bench_{split}.tsv")
    if not os.path.isfile(path):
        raise DataError(f"HR-Bench {split} questions not found: {path}")
    csv.field_size_limit(sys.maxsize)  # a row holds a whole base64 image
    questions = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; HR-Bench TSVs have {list(COLUMNS)}")
        for i, row in enumerate(reader):
            where = f"{path} row {i + 1}"
            choices = [row[letter] for letter in "ABCD" if row[letter]]
            answer = row["answer"].strip()
            if answer not in "ABCD"[: len(choices)] or not answer:
                raise DataError(f"{where}: answer {answer!r} is not the letter of one of its {len(choices)} options")
            try:
                image = ImageBytes(base64.b64decode(row["image"], validate=True))
            except binascii.Error:
                raise DataError(f"{where}: `image` is not base64") from None
            questions.append(Question(
                id=f"{split}/{row['index']}", benchmark="hr_bench", question=row["question"], answer=answer,
                choices=choices, images=[image], category=row.get("category") or None,
                meta={"split": split, "cycle_category": row.get("cycle_category")}))
    return questions


HR_BENCH = register_benchmark(Benchmark(
    name="hr_bench", short_name="HR-Bench", load=load_hr_bench, scoring="multiple_choice"))

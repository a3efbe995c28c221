"""The Pixel-Reasoner eval parquets (`JasperHaozhe/*-EvalData-PixelReasoner`, as `onestep_evaluation/prepare.sh`
downloads them): one row per question with columns

    question  str        question text; options embedded as "\\nchoices:\\nA: ...\\nB: ..." for multiple choice
    image     list[str]  image paths (relative to the parquet's folder, to `<stem>_images/`, or absolute);
                         for videos the pre-extracted frames, in order
    answer    str        option letter / option text / count / answer text
    qid       str        "<bench>-<id>" (optional; the row index otherwise)
    is_video  bool       optional: the image list is a video's frames

Images may also be stored inline (HF image structs with `bytes`). Embedded options are parsed back out so the
profile formats them and they can be shuffled like every other benchmark's; text after the option lines
(instructions) is dropped with a warning because the profile adds its own guideline.
"""
from __future__ import annotations

import logging
import os

from pixel_reasoner.errors import DataError
from pixel_reasoner.media import ImageSource, VideoSource, as_image_source

from eval.benchmarks.common import LoadOptions, resolve_file
from eval.benchmarks.registry import Benchmark
from eval.choices import split_embedded_choices
from eval.question import Question

logger = logging.getLogger(__name__)
REQUIRED = ("question", "image", "answer")
CATEGORY_COLUMNS = ("category", "task", "question_type")
PARQUET_FRAMES = "parquet_frames"  # a video's frames as the parquet lists them (the paper's MVBench data)


def _image_paths(value, row: int, path: str) -> list:
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise DataError(f"{path} row {row}: `image` must be a path or a list of paths, got {type(value).__name__}") from None


def _resolve(item, roots: list[str], where: str) -> ImageSource | str:
    if isinstance(item, str):
        return resolve_file(item, roots, f"image of {where}")
    return as_image_source(item)


def load_parquet(benchmark: Benchmark, path: str, options: LoadOptions) -> list[Question]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; a Pixel-Reasoner eval parquet has "
                        f"{list(REQUIRED)} (+ qid, is_video); found {table.column_names}")
    folder = os.path.dirname(os.path.abspath(path))
    stem = os.path.splitext(os.path.basename(path))[0]
    roots = [options.image_root] if options.image_root else [folder, os.path.join(folder, f"{stem}_images"),
                                                              os.path.join(folder, stem)]
    category_column = next((c for c in CATEGORY_COLUMNS if c in table.column_names), None)
    questions, dropped_trailers = [], 0
    for i, row in enumerate(table.to_pylist()):
        where = f"{path} row {i}"
        parsed = split_embedded_choices(str(row["question"]))
        dropped_trailers += bool(parsed.trailer)
        items = [_resolve(item, roots, where) for item in _image_paths(row["image"], i, path)]
        is_video = bool(row.get("is_video")) or (benchmark.video and len(items) > 1)
        video, images = None, items
        if is_video:
            if not all(isinstance(p, str) for p in items):
                raise DataError(f"{where}: video frames must be file paths")
            video, images = VideoSource(frame_paths=tuple(items)), []  # type: ignore[arg-type]
        answer = row["answer"]
        if benchmark.scoring == "anls" and isinstance(answer, str):
            answer = [answer]  # ANLS scores against a list of acceptable answers
        questions.append(Question(
            id=str(row.get("qid") if row.get("qid") is not None else i), benchmark=benchmark.name,
            question=parsed.stem,
            answer=answer if isinstance(answer, list) or answer is None else str(answer),
            images=[as_image_source(p) for p in images], video=video, choices=parsed.choices,
            category=str(row[category_column]) if category_column and row.get(category_column) is not None else None,
            meta={"source": os.path.basename(path), "row": i,
                  **({"frame_sampling": PARQUET_FRAMES} if video is not None else {}),
                  **({"dropped_instructions": parsed.trailer} if parsed.trailer else {})}))
    if dropped_trailers:
        logger.warning("%s: dropped the instruction text after the options in %d questions (the profile adds its "
                       "own guideline); see meta.dropped_instructions in the predictions", path, dropped_trailers)
    return questions

"""Loaders for the benchmark layouts people download (see docs/eval.md for each directory tree).

`load_questions(benchmark, data, options)` reads either the benchmark's own layout (a directory) or the
Pixel-Reasoner eval parquet (a `.parquet` file, or a directory holding exactly one), and returns questions in a
deterministic order. A missing file raises DataError naming the path.
"""
from __future__ import annotations

import glob
import os

from pixel_reasoner.errors import DataError

from eval.benchmarks.common import LoadOptions
from eval.question import SCORING, Question

BENCHMARKS = tuple(SCORING)


def find_parquet(data: str) -> str | None:
    """The parquet file `data` names: the file itself, or the only `.parquet` in a directory without a native
    layout. None when `data` is a native layout."""
    if os.path.isfile(data) and data.endswith(".parquet"):
        return data
    if os.path.isdir(data):
        found = sorted(glob.glob(os.path.join(data, "*.parquet")))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise DataError(f"{data} holds several parquet files {[os.path.basename(f) for f in found]}; pass the "
                            "one to evaluate as --data FILE")
    return None


def frame_sampling(benchmark: str, data: str) -> str | None:
    """How a benchmark's videos are sampled from `data` (recorded in the run manifest): the parquet's frames as
    listed, MVBench's own `get_index` for its raw layout; None for image benchmarks."""
    if benchmark != "mvbench":
        return None
    from eval.benchmarks.mvbench import FRAME_SAMPLING
    from eval.benchmarks.parquet import PARQUET_FRAMES

    return PARQUET_FRAMES if find_parquet(data) is not None else FRAME_SAMPLING


def load_questions(benchmark: str, data: str, options: LoadOptions | None = None) -> list[Question]:
    options = options or LoadOptions()
    if benchmark not in BENCHMARKS:
        raise DataError(f"unknown benchmark {benchmark!r}; choose one of {BENCHMARKS}")
    if not os.path.exists(data):
        raise DataError(f"--data {data} does not exist")
    parquet = find_parquet(data)
    if parquet is not None:
        from eval.benchmarks.parquet import load_parquet

        return load_parquet(benchmark, parquet, options)
    if not os.path.isdir(data):
        raise DataError(f"--data {data} must be a directory in the {benchmark} layout or a .parquet file "
                        "(see docs/eval.md)")
    if benchmark == "vstar":
        from eval.benchmarks.vstar import load_vstar as loader
    elif benchmark == "tallyqa":
        from eval.benchmarks.tallyqa import load_tallyqa as loader
    elif benchmark == "infovqa":
        from eval.benchmarks.infovqa import load_infovqa as loader
    else:
        from eval.benchmarks.mvbench import load_mvbench as loader
    return loader(data, options)

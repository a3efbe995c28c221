"""Benchmarks: one file each, registered by name (`eval.benchmarks.registry`); see docs/eval.md for the layouts.

`load_questions(benchmark, data, options)` reads either the benchmark's own layout (a directory, read by the
benchmark's `load`) or the Pixel-Reasoner eval parquet (a `.parquet` file, or a directory holding exactly one),
and returns questions in a deterministic order. A missing file raises DataError naming the path.
"""
from __future__ import annotations

import glob
import os

from pixel_reasoner.errors import DataError

from eval.benchmarks.common import LoadOptions
from eval.benchmarks.registry import (Benchmark, PaperNumbers, benchmark_names, get_benchmark,
                                      load_benchmark_modules, register_benchmark)
from eval.question import Question

from eval.benchmarks import vstar, tallyqa, mvbench, infovqa  # noqa: E402,F401,I001  (register, Table-1 order)


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
    listed, or the benchmark's own sampling for its layout; None for image benchmarks."""
    spec = get_benchmark(benchmark)
    if not spec.video:
        return None
    from eval.benchmarks.parquet import PARQUET_FRAMES

    return PARQUET_FRAMES if find_parquet(data) is not None else spec.frame_sampling


def load_questions(benchmark: str, data: str, options: LoadOptions | None = None) -> list[Question]:
    options = options or LoadOptions()
    spec = get_benchmark(benchmark)
    if not os.path.exists(data):
        raise DataError(f"--data {data} does not exist")
    parquet = find_parquet(data)
    if parquet is not None:
        from eval.benchmarks.parquet import load_parquet

        return load_parquet(spec, parquet, options)
    if not os.path.isdir(data):
        raise DataError(f"--data {data} must be a directory in the {benchmark} layout or a .parquet file "
                        "(see docs/eval.md)")
    return spec.load(data, options)


__all__ = ["Benchmark", "LoadOptions", "PaperNumbers", "benchmark_names", "find_parquet", "frame_sampling",
           "get_benchmark", "load_benchmark_modules", "load_questions", "register_benchmark"]

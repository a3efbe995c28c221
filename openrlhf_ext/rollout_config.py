"""Typed configuration of the RL rollout agent, with the paper's values as defaults.

It reaches the agent inside every vLLM actor as part of the `RolloutContext` our trainer sends with each rollout
request (`openrlhf_ext.rollout_context`): one explicit object, resolved once by the launcher from a JSON file
(`--pr.rollout_config FILE`) and the `--pr.rollout.*` flags on top, printed at start and saved in the run's
`config.json`. JSON keys are the field names; nested values may be partial (missing fields keep their defaults):

    {"profile": "released", "budgets": "consistent",             # or {"crop": {"min_pixels": .., "max_pixels": ..}}
     "limits": {"max_operations": 4, "max_images": 16, "max_turns": 6},
     "video_frames": 16, "video_fps": 2.0, "reward_kind": "auto", "stop": ["</tool_call>"], "max_turn_tokens": 2048,
     "min_turn_tokens": 1, "pixel_dtype": "bfloat16", "image_cache_bytes": 1073741824, "operation_threads": 32,
     "extra_operations": [], "operation_modules": [], "forced_turns": []}

Unknown keys are errors (a typo must not silently fall back to a default).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from pixel_reasoner.config import EpisodeLimits, PixelBudgets
from pixel_reasoner.episode import EpisodeConfig
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.media import DEFAULT_CACHE_BYTES
from pixel_reasoner.protocol import ProtocolProfile, get_profile
from pixel_reasoner.paper_scoring import KIND as PAPER
from pixel_reasoner.scoring import SCORERS

VIDEO_FRAMES = 16  # the paper samples 16 frames per video
VIDEO_FPS = 2.0  # frame rate a sampled video is given to the processor and vLLM with (as in SFT and eval)
PIXEL_DTYPES = ("bfloat16", "float16", "float32")


@dataclass(frozen=True)
class RolloutConfig:
    """Everything the rollout agent needs besides the model and the data."""

    profile: str = "released"  # protocol profile: tool names/schemas, coordinate system, observation texts
    extra_operations: tuple[str, ...] = ()  # registered operations exposed as extra tools (by operation name)
    operation_modules: tuple[str, ...] = ()  # modules to import so user operations register themselves
    budgets: PixelBudgets = field(default_factory=PixelBudgets.consistent)  # as SFT and eval; paper_rl: official
    limits: EpisodeLimits = field(default_factory=EpisodeLimits)  # official: 4 operations, 16 images, 6 turns
    video_frames: int = VIDEO_FRAMES  # frames sampled uniformly from a video *file* (frame lists are used as is)
    video_fps: float = VIDEO_FPS  # the sampled frames' rate as the processor and vLLM are told (temporal M-RoPE)
    reward_kind: str = "auto"  # scoring when a label does not name its kind: auto | multiple_choice | count | ...
    # | paper (the official reward, `pixel_reasoner.paper_scoring`: the rule the paper's eval scores with)
    stop: tuple[str, ...] = ("</tool_call>",)  # a turn ends right after a tool call (kept in the output)
    max_turn_tokens: int = 2048  # new tokens per assistant turn (official code); the whole trajectory is capped by
    # OpenRLHF's --data.max_len
    min_turn_tokens: int = 1  # an observation that leaves fewer tokens than this to generate ends the trajectory
    # as truncated (an observation that exactly fills --data.max_len leaves none)
    pixel_dtype: str = "bfloat16"  # dtype of the pixel tensors sent to the trainer: the actor's param dtype (the
    # vision tower casts to it first, so this is lossless and halves the controller's memory); float32 for fp32
    # parity checks
    image_cache_bytes: int = DEFAULT_CACHE_BYTES  # decoded images and the prompts' processed pixels, per vLLM actor
    operation_threads: int = 32  # threads running operations, decoding and the processor, per vLLM actor
    forced_turns: tuple[dict, ...] = ()  # debugging only: structured-output schedules that force chosen turns
    # (a random tiny model never calls a tool; see `openrlhf_ext.forced_turns`)

    def __post_init__(self) -> None:
        if self.reward_kind not in (*SCORERS, PAPER, "auto"):
            raise ConfigError(f"reward_kind={self.reward_kind!r}; choose one of {(*SCORERS, PAPER, 'auto')}")
        if self.video_frames < 1:
            raise ConfigError(f"video_frames={self.video_frames} must be >= 1")
        if self.video_fps <= 0:
            raise ConfigError(f"video_fps={self.video_fps} must be positive")
        if not self.stop or not all(isinstance(s, str) and s for s in self.stop):
            raise ConfigError(f"stop={self.stop!r} must be a non-empty list of non-empty strings")
        if self.max_turn_tokens < 1:
            raise ConfigError(f"max_turn_tokens={self.max_turn_tokens} must be >= 1")
        if self.min_turn_tokens < 1:
            raise ConfigError(f"min_turn_tokens={self.min_turn_tokens} must be >= 1")
        if self.pixel_dtype not in PIXEL_DTYPES:
            raise ConfigError(f"pixel_dtype={self.pixel_dtype!r}; choose one of {PIXEL_DTYPES}")
        if self.operation_threads < 1:
            raise ConfigError(f"operation_threads={self.operation_threads} must be >= 1")
        if self.image_cache_bytes <= 0:
            raise ConfigError(f"image_cache_bytes={self.image_cache_bytes} must be positive")
        self.protocol()  # unknown profile / operation -> error now, not at the first rollout
        from openrlhf_ext.forced_turns import ForcedTurns

        ForcedTurns.from_rules(self.forced_turns)  # malformed schedules -> error now

    def protocol(self) -> ProtocolProfile:
        """The profile with the configured extra operations (their modules imported first)."""
        profile = get_profile(self.profile)
        if self.extra_operations or self.operation_modules:
            profile = profile.with_extra_operations(self.extra_operations, self.operation_modules)
        return profile

    def episode_config(self) -> EpisodeConfig:
        """Budgets and limits of one episode (a prompt video's frames are shown at the frame budget)."""
        return EpisodeConfig(budgets=self.budgets, limits=self.limits)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "rollout config") -> "RolloutConfig":
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "budgets":
                kwargs[key] = _budgets(value, where)
            elif key == "limits":
                kwargs[key] = _replace(EpisodeLimits(), value, f"{where}: limits")
            elif key in ("extra_operations", "operation_modules", "stop"):
                if isinstance(value, str) or not isinstance(value, (list, tuple)):
                    raise ConfigError(f"{where}: `{key}` must be a list of strings, got {value!r}")
                kwargs[key] = tuple(value)
            elif key == "forced_turns":
                if not isinstance(value, (list, tuple)):
                    raise ConfigError(f"{where}: `forced_turns` must be a list of rules, got {value!r}")
                kwargs[key] = tuple(value)
            else:
                kwargs[key] = value
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ConfigError(f"{where}: {e}") from None


def _replace(obj: Any, value: Any, where: str) -> Any:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected an object of fields, got {value!r}")
    names = {f.name for f in dataclasses.fields(obj)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(names)}")
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{where}.{k} must be an integer, got {v!r}")
    try:
        return dataclasses.replace(obj, **value)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _budgets(value: Any, where: str) -> PixelBudgets:
    """A preset name (`BUDGET_PRESETS`) or per-kind overrides of a preset (default `consistent`)."""
    if isinstance(value, str):
        return PixelBudgets.preset(value)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: `budgets` must be a preset name or an object, got {value!r}")
    preset = value.get("preset", "consistent")
    if not isinstance(preset, str):
        raise ConfigError(f"{where}: budgets.preset must be a preset name, got {preset!r}")
    base = PixelBudgets.preset(preset)
    kinds = {k: v for k, v in value.items() if k != "preset"}
    unknown = sorted(set(kinds) - {"original", "crop", "frame"})
    if unknown:
        raise ConfigError(f"{where}: unknown budget kind(s) {unknown}; valid: original, crop, frame, preset")
    replaced = {}
    for kind, bounds in kinds.items():
        budget = getattr(base, kind)
        try:
            replaced[kind] = _replace(budget, bounds, f"{where}: budgets.{kind}")
        except ConfigError as e:
            raise ConfigError(f"{e} (preset {preset!r} gives [{budget.min_pixels}, {budget.max_pixels}]: set both "
                              "min_pixels and max_pixels, or start from another `preset`)") from None
    return dataclasses.replace(base, **replaced)


def from_file(path: str) -> RolloutConfig:
    """A configuration from a JSON file (`--pr.rollout_config FILE`)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"rollout config {path}: no such file") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    return RolloutConfig.from_dict(data, path)

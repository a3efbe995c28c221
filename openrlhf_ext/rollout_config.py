"""Typed configuration of the RL rollout agent, with the paper's values as defaults.

OpenRLHF constructs the agent with no arguments inside every vLLM actor, so the configuration cannot come from
its command line. It comes from JSON, looked up in this order:

1. the environment variable `PIXEL_REASONER_ROLLOUT_CONFIG`: a path to a JSON file, or the JSON text itself
   (starting with `{`); pass it to Ray actors with `--runtime-env-json '{"env_vars": {...}}'`;
2. the file `pixel_reasoner_rollout.json` in the working directory of the process (with `ray job submit
   --working-dir DIR`, the file in DIR);
3. otherwise the defaults below.

JSON keys are the field names; nested values may be partial (missing fields keep their defaults):

    {"profile": "released", "budgets": "consistent",             # or {"crop": {"min_pixels": .., "max_pixels": ..}}
     "limits": {"max_operations": 4, "max_images": 32, "max_turns": 6},
     "video_frames": 16, "reward_kind": "auto", "stop": ["</tool_call>"], "max_turn_tokens": 2048,
     "image_cache_bytes": 1073741824, "operation_threads": 32, "extra_operations": [], "operation_modules": []}

Unknown keys are errors (a typo must not silently fall back to a default). The resolved configuration is
logged by every agent at start-up (`RolloutConfig.to_dict`).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from pixel_reasoner.config import EpisodeLimits, PixelBudgets
from pixel_reasoner.episode import EpisodeConfig
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.media import DEFAULT_CACHE_BYTES
from pixel_reasoner.protocol import ProtocolProfile, get_profile
from pixel_reasoner.paper_scoring import KIND as PAPER
from pixel_reasoner.scoring import SCORERS

CONFIG_ENV = "PIXEL_REASONER_ROLLOUT_CONFIG"
CONFIG_FILE = "pixel_reasoner_rollout.json"
VIDEO_FRAMES = 16  # the paper samples 16 frames per video


def default_limits() -> EpisodeLimits:
    """The official code's limits (4 executed operations, 6 turns), with room for a video's frames as images.

    OpenRLHF has no video modality, so a video's 16 frames are input *images* and count towards
    `max_images`; 32 leaves 16 for selected frames and crops (the official limit was 16 images besides the
    video). Image samples never reach it: 4 operations produce at most 4 crops. Set OpenRLHF's
    `--data.max_images_per_prompt` to the same value.
    """
    return EpisodeLimits(max_operations=4, max_images=2 * VIDEO_FRAMES, max_turns=6)


@dataclass(frozen=True)
class RolloutConfig:
    """Everything the rollout agent needs besides the model and the data."""

    profile: str = "released"  # protocol profile: tool names/schemas, coordinate system, observation texts
    extra_operations: tuple[str, ...] = ()  # registered operations exposed as extra tools (by operation name)
    operation_modules: tuple[str, ...] = ()  # modules to import so user operations register themselves
    budgets: PixelBudgets = field(default_factory=PixelBudgets.consistent)  # as SFT and eval; paper_rl: official
    limits: EpisodeLimits = field(default_factory=default_limits)
    video_frames: int = VIDEO_FRAMES  # frames sampled uniformly from a video *file* (frame lists are used as is)
    reward_kind: str = "auto"  # scoring when a label does not name its kind: auto | multiple_choice | count | ...
    # | paper (the official reward, `pixel_reasoner.paper_scoring`: the rule the paper's eval scores with)
    stop: tuple[str, ...] = ("</tool_call>",)  # a turn ends right after a tool call (kept in the output)
    max_turn_tokens: int = 2048  # new tokens per assistant turn (official code); the whole trajectory is capped by
    # OpenRLHF's --data.max_len
    image_cache_bytes: int = DEFAULT_CACHE_BYTES  # decoded-image cache shared by the samples of one vLLM actor
    operation_threads: int = 32  # threads running operations/decoding off the event loop, per vLLM actor

    def __post_init__(self) -> None:
        if self.reward_kind not in (*SCORERS, PAPER, "auto"):
            raise ConfigError(f"reward_kind={self.reward_kind!r}; choose one of {(*SCORERS, PAPER, 'auto')}")
        if self.video_frames < 1:
            raise ConfigError(f"video_frames={self.video_frames} must be >= 1")
        if self.video_frames >= self.limits.max_images:
            raise ConfigError(f"limits.max_images={self.limits.max_images} leaves no room beyond a video's "
                              f"{self.video_frames} frames (they are input images in OpenRLHF); raise it, e.g. to "
                              f"{2 * self.video_frames}")
        if not self.stop or not all(isinstance(s, str) and s for s in self.stop):
            raise ConfigError(f"stop={self.stop!r} must be a non-empty list of non-empty strings")
        if self.max_turn_tokens < 1:
            raise ConfigError(f"max_turn_tokens={self.max_turn_tokens} must be >= 1")
        if self.operation_threads < 1:
            raise ConfigError(f"operation_threads={self.operation_threads} must be >= 1")
        if self.image_cache_bytes <= 0:
            raise ConfigError(f"image_cache_bytes={self.image_cache_bytes} must be positive")
        self.protocol()  # unknown profile / operation -> error now, not at the first rollout

    def protocol(self) -> ProtocolProfile:
        """The profile with the configured extra operations (their modules imported first)."""
        profile = get_profile(self.profile)
        if self.extra_operations or self.operation_modules:
            profile = profile.with_extra_operations(self.extra_operations, self.operation_modules)
        return profile

    def episode_config(self, is_video: bool = False) -> EpisodeConfig:
        """Budgets and limits of one episode. A video's input frames are shown at the *frame* budget."""
        budgets = dataclasses.replace(self.budgets, original=self.budgets.frame) if is_video else self.budgets
        return EpisodeConfig(budgets=budgets, limits=self.limits)

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
                kwargs[key] = _replace(default_limits(), value, f"{where}: limits")
            elif key in ("extra_operations", "operation_modules", "stop"):
                if isinstance(value, str) or not isinstance(value, (list, tuple)):
                    raise ConfigError(f"{where}: `{key}` must be a list of strings, got {value!r}")
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


def load_rollout_config(environ: Mapping[str, str] | None = None, cwd: str | None = None) -> tuple[RolloutConfig, str]:
    """The configuration and where it came from (for the start-up log line)."""
    environ = os.environ if environ is None else environ
    spec = environ.get(CONFIG_ENV, "").strip()
    if spec.startswith("{"):
        try:
            data = json.loads(spec)
        except json.JSONDecodeError as e:
            raise ConfigError(f"${CONFIG_ENV} holds invalid JSON ({e.msg} at column {e.colno})") from None
        return RolloutConfig.from_dict(data, f"${CONFIG_ENV}"), f"${CONFIG_ENV} (inline JSON)"
    if spec:
        if not os.path.isfile(spec):
            raise ConfigError(f"${CONFIG_ENV}={spec!r}: no such file; give a JSON file path or inline JSON")
        return _from_file(spec), spec
    path = os.path.join(cwd or os.getcwd(), CONFIG_FILE)
    if os.path.isfile(path):
        return _from_file(path), path
    return RolloutConfig(), "defaults (no $%s, no ./%s)" % (CONFIG_ENV, CONFIG_FILE)


def _from_file(path: str) -> RolloutConfig:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    return RolloutConfig.from_dict(data, path)


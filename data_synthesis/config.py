"""Typed configuration of the synthesis pipeline, loaded from YAML, with the paper's values as defaults.

Every knob of a run lives here and is written next to the outputs (`config.json`), so a dataset can be traced to
the settings that made it. The YAML loader is strict: an unknown key, a wrong type or a missing required field
raises `ConfigError` naming the key's full path (`expert.sampling.temprature: unknown key ...`).

Where the paper gives a value it is the default (Table 2's proportions, 2,000 text-only of 7,500, GPT-4o); where it
gives none (box sizes of inserted wrong crops, sampling temperatures) the default is ours and documented in
docs/synthesis.md.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

import yaml

from pixel_reasoner.config import EpisodeLimits, PixelBudget, PixelBudgets
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.scoring import SCORERS

SOURCE_KINDS = ("sa1b", "web", "star", "jsonl")
EXPERT_TEMPLATES = ("sa1b", "web", "star")
IMAGE_TRAJECTORY_TYPES = ("single_pass", "recrop_once", "recrop_twice", "further_zoom_in")
VIDEO_TRAJECTORY_TYPES = ("single_pass", "reselect")
TEMPLATE_USES = ("never", "on_rejection", "always")


@dataclass
class EndpointConfig:
    """One OpenAI-compatible chat endpoint. The key is read from the environment variable named by `api_key_env`
    (never from the config file, never logged); an empty `api_key_env` sends the placeholder key "EMPTY", which a
    local vLLM server accepts."""

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-2024-08-06"
    api_key_env: str = "OPENAI_API_KEY"
    max_concurrency: int = 8  # requests in flight to this endpoint
    timeout_s: float = 180.0
    max_retries: int = 6  # on 408/429/5xx, timeouts and dropped connections; other 4xx are not retried
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    price_input_per_1m: float = 2.50  # USD per 1M prompt tokens (GPT-4o, 2024-08-06)
    price_output_per_1m: float = 10.00  # USD per 1M completion tokens
    image_detail: str = "high"  # OpenAI `detail` of image parts: high | low | auto

    def __post_init__(self) -> None:
        _positive(self, "max_concurrency", "timeout_s", "backoff_initial_s", "backoff_max_s")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries={self.max_retries} must be >= 0")
        if self.image_detail not in ("high", "low", "auto"):
            raise ConfigError(f"image_detail={self.image_detail!r}; choose high, low or auto")


@dataclass
class SamplingConfig:
    """Sampling parameters sent with each request (all part of the response-cache key)."""

    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 1024
    seed: int | None = None  # sent as `seed` when set (reproducible sampling where the server supports it)
    stop: list[str] = field(default_factory=list)
    extra_body: dict = field(default_factory=dict)  # passed through, e.g. vLLM `structured_outputs`

    def __post_init__(self) -> None:
        _positive(self, "max_tokens")


@dataclass
class SourceConfig:
    """One seed data set. `kind` picks the loader; see docs/synthesis.md for each kind's file layout."""

    kind: str
    path: str  # sa1b: directory of sa_*.jpg + sa_*.json; web, jsonl: a JSONL file; star: the annotation JSON
    name: str = ""  # prefix of item ids and `source` of the trajectories; defaults to `kind`
    media_root: str = ""  # where relative media paths resolve (web images, STAR videos); default: next to `path`
    template: str = ""  # expert prompt: sa1b | web | star; default: by kind (jsonl: sa1b for images, star for videos)
    answer_kind: str = "auto"  # scoring of answers: multiple_choice | count | exact_match | anls | auto
    limit: int | None = None  # use at most this many seeds of this source
    bbox_format: str = "xyxy"  # web, jsonl: xyxy | xywh
    bbox_units: str = "pixels"  # web, jsonl: pixels (of the original file) | normalized (fractions in [0, 1])
    min_segments: int = 0  # sa1b: skip images with fewer annotated segments (a cheap pre-filter; 0 = off)
    video_ext: str = ".mp4"  # star: file name of a video is <video_id><video_ext>

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(f"kind={self.kind!r}; choose one of {SOURCE_KINDS}")
        self.name = self.name or self.kind
        if self.template and self.template not in EXPERT_TEMPLATES:
            raise ConfigError(f"template={self.template!r}; choose one of {EXPERT_TEMPLATES}")
        if self.answer_kind not in SCORERS + ("auto",):
            raise ConfigError(f"answer_kind={self.answer_kind!r}; choose one of {SCORERS + ('auto',)}")
        if self.bbox_format not in ("xyxy", "xywh"):
            raise ConfigError(f"bbox_format={self.bbox_format!r}; choose xyxy or xywh")
        if self.bbox_units not in ("pixels", "normalized"):
            raise ConfigError(f"bbox_units={self.bbox_units!r}; choose pixels or normalized")
        if self.limit is not None and self.limit < 0:
            raise ConfigError(f"limit={self.limit} must be >= 0")


@dataclass
class QuestionGenerationConfig:
    """Stage 1 (SA1B only): information-rich check, a crop of a small region, a 4-choice question (E.2.1)."""

    endpoint: str = "expert"
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(temperature=0.7, max_tokens=1024))
    stop_after_tool_call: bool = True  # add "</tool_call>" as a stop string to the first turn
    max_region_fraction: float = 0.25  # reject regions covering more of the image ("choose a small region")
    num_choices: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.max_region_fraction <= 1:
            raise ConfigError(f"max_region_fraction={self.max_region_fraction} must be in (0, 1]")
        if self.num_choices < 2:
            raise ConfigError(f"num_choices={self.num_choices} must be >= 2")


@dataclass
class ExpertConfig:
    """Stage 2: a single-pass expert trajectory from the whole input plus the reference cue (E.2.2)."""

    endpoint: str = "expert"
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(temperature=0.3, max_tokens=1024))
    min_score: float = 0.5  # accept when the answer scores at least this (ANLS for free text; 0/1 otherwise)
    transition_pattern: str = r"Now I will (?:zoom in|select some frames)\b"  # the sentence that precedes the call
    header_pattern: str = r"^[ \t]*[*#]*[ \t]*Analy[sz]ing the [^:\n]{1,40}:[*]*[ \t]*\n?"  # stripped section titles
    # A video seed with a reference box: the turn that crops the selected frame (the expert's analysis covers the
    # selection and the answer; this sentence precedes the crop call). Not in the paper, whose videos stop at
    # the selection.
    frame_zoom_text: str = "Let me zoom in on the selected frame."

    def __post_init__(self) -> None:
        if not 0 <= self.min_score <= 1:
            raise ConfigError(f"min_score={self.min_score} must be in [0, 1]")


@dataclass
class GeometryConfig:
    """How inserted wrong operations are drawn (the paper gives the rules, not the numbers)."""

    min_box_pixels: int = 28  # smallest side of any requested region, in source pixels (the engine's min crop)
    wrong_box_scale: list[float] = field(default_factory=lambda: [0.5, 2.0])  # wrong box side / reference side
    zoom_out_min_area_ratio: float = 4.0  # "excessively larger": area of the over-large box / reference area
    zoom_out_max_image_fraction: float = 0.9  # ... but not (almost) the whole image
    max_distinct_iou: float = 0.3  # the two wrong boxes of recrop_twice overlap at most this much
    max_attempts: int = 200  # rejection-sampling attempts per box before the type falls back

    def __post_init__(self) -> None:
        _positive(self, "min_box_pixels", "zoom_out_min_area_ratio", "max_attempts")
        if len(self.wrong_box_scale) != 2 or not 0 < self.wrong_box_scale[0] <= self.wrong_box_scale[1]:
            raise ConfigError(f"wrong_box_scale={self.wrong_box_scale} must be [low, high] with 0 < low <= high")
        if not 0 < self.zoom_out_max_image_fraction <= 1:
            raise ConfigError(f"zoom_out_max_image_fraction={self.zoom_out_max_image_fraction} must be in (0, 1]")


@dataclass
class RecoveryTemplates:
    """Short texts of the turn after an inserted wrong operation; `{target}` is what the expert said it would look
    at ("the text on the signboard"). One is drawn per trajectory, deterministically from its id."""

    recrop: list[str] = field(default_factory=lambda: [
        "The cropped region does not show {target}. Let me look elsewhere.",
        "I cannot find {target} in this cropped region. Let me crop another part of the image.",
        "This part of the image does not contain {target}. Let me look at a different region.",
    ])
    further_zoom_in: list[str] = field(default_factory=lambda: [
        "The cropped region is still too large to see {target} clearly. Let me zoom in further.",
        "{target_cap} is too small to see in this crop. Let me zoom in closer.",
        "The details of {target} are still not clear enough. Let me zoom in further on it.",
    ])
    reselect: list[str] = field(default_factory=lambda: [
        "The selected frames do not show {target}. Let me select other frames.",
        "These frames do not contain {target}. Let me look at different frames.",
        "I cannot see {target} in these frames. Let me select other frames of the video.",
    ])
    default_target_image: str = "the region needed to answer the question"
    default_target_video: str = "the moment needed to answer the question"

    def __post_init__(self) -> None:
        for name in ("recrop", "further_zoom_in", "reselect"):
            if not getattr(self, name):
                raise ConfigError(f"{name} needs at least one template")


@dataclass
class SelfCorrectionConfig:
    """Stage 3: Table 2's trajectory types and proportions."""

    image: dict[str, float] = field(default_factory=lambda: {
        "single_pass": 0.3, "recrop_once": 0.2, "recrop_twice": 0.2, "further_zoom_in": 0.3})
    video: dict[str, float] = field(default_factory=lambda: {"single_pass": 0.9, "reselect": 0.1})
    zoom_in_target: str = "crop"  # further_zoom_in: the correct crop zooms into the over-large crop | the original
    geometry: GeometryConfig = field(default_factory=GeometryConfig)
    templates: RecoveryTemplates = field(default_factory=RecoveryTemplates)

    def __post_init__(self) -> None:
        if self.zoom_in_target not in ("crop", "original"):
            raise ConfigError(f"zoom_in_target={self.zoom_in_target!r}; choose crop or original")
        for name, allowed in (("image", IMAGE_TRAJECTORY_TYPES), ("video", VIDEO_TRAJECTORY_TYPES)):
            shares = getattr(self, name)
            unknown = sorted(set(shares) - set(allowed))
            if unknown:
                raise ConfigError(f"{name}: unknown trajectory type(s) {unknown}; choose from {allowed}")
            if any(v < 0 for v in shares.values()) or not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-6):
                raise ConfigError(f"{name}: proportions must be >= 0 and sum to 1, got {shares}")


@dataclass
class TextOnlyConfig:
    """Text-only trajectories by rejection sampling from a base model on the same queries (2,000 of 7,500)."""

    share: float = 2000 / 7500  # fraction of items routed to text-only (0 disables)
    endpoint: str = "base"
    num_samples: int = 4  # candidates per query (one request with `n`); the first correct one is kept
    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(temperature=1.0, max_tokens=1024))
    min_score: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.share <= 1:
            raise ConfigError(f"share={self.share} must be in [0, 1]")
        _positive(self, "num_samples")


@dataclass
class TemplateConfig:
    """Trajectories composed from fixed texts, WITHOUT model text: NOT the paper's method.

    The expert's analysis (stage 2) or the text-only answer is replaced by the texts below, filled with the
    item's question, its reference cue (the crop or frames the engine produces from the reference box/frames) and
    its ground-truth answer; the trajectory is then composed and executed by the engine exactly like a model-written
    one (self-correction types included). Such trajectories teach the format (tool calls, observations, the boxed
    answer) and nothing about reasoning: use them for smoke runs (the CPU quickstart, whose random model's outputs
    are all rejected), for testing a pipeline without an API, never as training data for a real model.

    `use`: `never` (the paper's pipeline), `on_rejection` (ask the model; when stage 2 or text-only sampling
    rejects its output, compose from the templates and record the rejection in the trajectory's meta), `always`
    (no stage-2 or text-only requests at all; stage 1 of SA1B still needs a model). Placeholders: `{question}`,
    `{medium}` (image | video), `{target}`, `{boxed_answer}` (`\\boxed{<ground truth>}`), `{answer_text}` (the
    correct option's text for multiple choice, else the ground truth: a template can state what the crop shows
    before the letter, as an expert's analysis would), `{answer_option}` (the correct option as the question
    lists it, "B: a checkerboard", and a line break; empty without options).
    """

    use: str = "never"
    global_text: str = "The question asks: {question} The details it needs are too small to see in the whole {medium}."
    transition_image: str = "Now I will zoom in to look clearer at {target}."
    transition_video: str = "Now I will select some frames to look clearer at {target}."
    local_image: str = "The cropped part shows {target} clearly. The answer is {boxed_answer}."
    local_video: str = "The selected frames show {target} clearly. The answer is {boxed_answer}."
    text_only: str = "The question asks: {question} Looking at the whole {medium}, the answer is {boxed_answer}."
    target_image: str = "the region that answers the question"
    target_video: str = "the moment that answers the question"

    def __post_init__(self) -> None:
        if self.use not in TEMPLATE_USES:
            raise ConfigError(f"use={self.use!r}; choose one of {TEMPLATE_USES}")
        if not all("{boxed_answer}" in t for t in (self.local_image, self.local_video, self.text_only)):
            raise ConfigError("local_image, local_video and text_only must contain {boxed_answer}")


@dataclass
class OutputConfig:
    dir: str = "outputs/synthesis"
    copy_media: bool = True  # copy input images (and write sampled video frames) into <dir>/media: self-contained
    cache_dir: str = ""  # response cache; default <dir>/cache (share it between runs to never pay twice)


@dataclass
class SynthesisConfig:
    endpoints: dict[str, EndpointConfig] = field(default_factory=lambda: {
        "expert": EndpointConfig(),  # GPT-4o writes questions and expert analyses
        "base": EndpointConfig(base_url="http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct",
                               api_key_env="", price_input_per_1m=0.0, price_output_per_1m=0.0),  # text-only
    })
    sources: list[SourceConfig] = field(default_factory=list)
    profile: str = "released"  # protocol of the written trajectories (tool names, coordinates, observations)
    budgets: str = "consistent"  # pixel-budget preset of the episodes = what SFT must train with (checked there)
    original_tokens: list[int] | None = None  # [min, max] visual tokens of input images: overrides the preset
    crop_tokens: list[int] | None = None  # ... of crops (as `eval run --crop-tokens`, the SFT `crop_*_pixels`)
    frame_tokens: list[int] | None = None  # ... of video frames
    limits: EpisodeLimits = field(default_factory=EpisodeLimits)
    seed: int = 0  # all random choices derive from (seed, item id): reruns and resumes draw the same
    item_concurrency: int = 32  # items processed at once (requests are bounded per endpoint)
    request_image_max_pixels: int = 1536 * 1536  # images sent to the API are downscaled to at most this
    prompts_dir: str = ""  # files here override the default prompts (see `python -m data_synthesis prompts`)
    question_generation: QuestionGenerationConfig = field(default_factory=QuestionGenerationConfig)
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    self_correction: SelfCorrectionConfig = field(default_factory=SelfCorrectionConfig)
    text_only: TextOnlyConfig = field(default_factory=TextOnlyConfig)
    template_trajectories: TemplateConfig = field(default_factory=TemplateConfig)  # NOT the paper's method
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        self.pixel_budgets()  # raises with the list of presets, or on bad token bounds
        _positive(self, "item_concurrency", "request_image_max_pixels")
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"sources: name(s) {dupes} used twice; give each source a distinct `name`")
        uses = {"question_generation.endpoint": self.question_generation.endpoint,
                "expert.endpoint": self.expert.endpoint}
        if self.text_only.share > 0:
            uses["text_only.endpoint"] = self.text_only.endpoint
        for where, name in uses.items():
            if name not in self.endpoints:
                raise ConfigError(f"{where}: endpoint {name!r} is not defined under `endpoints` "
                                  f"(defined: {sorted(self.endpoints)})")

    def pixel_budgets(self) -> PixelBudgets:
        """The preset with the per-kind token overrides applied."""
        overrides = {}
        for kind in ("original", "crop", "frame"):
            tokens = getattr(self, f"{kind}_tokens")
            if tokens is not None:
                if len(tokens) != 2:
                    raise ConfigError(f"{kind}_tokens={tokens} must be [min, max] visual tokens")
                overrides[kind] = PixelBudget.tokens(*tokens)
        return dataclasses.replace(PixelBudgets.preset(self.budgets), **overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ConfigError(f"{name}={getattr(obj, name)} must be > 0")


def load_config(path: str, overrides: list[str] | None = None) -> SynthesisConfig:
    """Read a YAML recipe; `overrides` are `dotted.key=value` strings (YAML values) applied on top."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    for item in overrides or []:
        apply_override(data, item)
    return build(SynthesisConfig, data, "")


def apply_override(data: dict, item: str) -> None:
    """`a.b.c=value`: set a nested key (the value is parsed as YAML: numbers, booleans, lists)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like dotted.key=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
    node[parts[-1]] = yaml.safe_load(raw)


def build(cls: type, data: Any, where: str) -> Any:
    """Construct dataclass `cls` from plain data, checking keys and types; errors name the key path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in known]
    if unknown:
        raise ConfigError(f"{_join(where, unknown[0])}: unknown key (known keys of {where or 'the config'}: "
                          f"{', '.join(sorted(known))})")
    kwargs = {name: _convert(hints[name], value, _join(where, name)) for name, value in data.items()}
    missing = [n for n, f in known.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{_join(where, missing[0])}: required key is missing")
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where or 'config'}: {e}") from None


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            return _convert(arg, value, where)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} ({value!r})")
        (item,) = typing.get_args(tp) or (Any,)
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} ({value!r})")
        args = typing.get_args(tp)
        if not args:
            return dict(value)
        return {str(k): _convert(args[1], v, _join(where, k)) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {tp!r}")


def dump_json(config: SynthesisConfig) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True)

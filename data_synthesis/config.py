"""Typed configuration of the synthesis pipeline, loaded from YAML, with the paper's values as defaults.

Every knob of a run lives here and is written next to the outputs (`config.json`), so a dataset can be traced to
the settings that made it. Recipes and flags are read by the configuration layer every stage uses
(`pixel_reasoner.settings`): strict, so an unknown key, a wrong type or a missing required field raises
`ConfigError` naming the key's full path (`expert.sampling.temprature: unknown key ...`); every field is a flag
(`--expert.sampling.temperature 0.2`).

Where the paper gives a value it is the default (Table 2's proportions, 2,000 text-only of 7,500, GPT-4o); where it
gives none (box sizes of inserted wrong crops, sampling temperatures) the default is ours and documented in
docs/synthesis.md.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from pixel_reasoner import settings
from pixel_reasoner.config import BudgetOptions, EpisodeLimits
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.settings import check_choices, option
from pixel_reasoner.scoring import SCORERS

SOURCE_FORMATS = ("sa1b", "web", "star", "jsonl")
EXPERT_TEMPLATES = ("sa1b", "web", "star")
IMAGE_TRAJECTORY_TYPES = ("single_pass", "recrop_once", "recrop_twice", "further_zoom_in")
VIDEO_TRAJECTORY_TYPES = ("single_pass", "reselect")
TEMPLATE_USES = ("never", "on_rejection", "always")


@dataclass
class EndpointConfig:
    """One OpenAI-compatible chat endpoint. The key is read from the environment variable named by `api_key_env`
    (never from the config file, never logged); an empty `api_key_env` sends the placeholder key "EMPTY", which a
    local vLLM server accepts."""

    base_url: str = option("https://api.openai.com/v1", help="Base URL of the OpenAI-compatible API.")
    model: str = option("gpt-4o-2024-08-06", help="Model name sent with each request.")
    api_key_env: str = option("OPENAI_API_KEY", help="Environment variable holding the API key; empty: no key.")
    max_concurrency: int = option(8, help="Requests in flight to this endpoint.")
    timeout_s: float = option(180.0, help="Seconds before a request is abandoned (and retried).")
    max_retries: int = option(6, help=(
        "Retries on 408/429/5xx, timeouts and dropped connections; other 4xx are not retried."))
    backoff_initial_s: float = option(1.0, help="First wait between retries, doubled each retry.")
    backoff_max_s: float = option(60.0, help="Longest wait between retries.")
    price_input_per_1m: float = option(2.50, help="USD per 1M prompt tokens (GPT-4o, 2024-08-06), for the report.")
    price_output_per_1m: float = option(10.00, help="USD per 1M completion tokens, for the report.")
    image_detail: str = option("high", choices=("high", "low", "auto"), help="OpenAI `detail` of image parts.")

    def __post_init__(self) -> None:
        check_choices(self)
        _positive(self, "max_concurrency", "timeout_s", "backoff_initial_s", "backoff_max_s")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries={self.max_retries} must be >= 0")


@dataclass
class SamplingConfig:
    """Sampling parameters sent with each request (all part of the response-cache key)."""

    RENAMED: ClassVar[dict[str, str]] = {"max_tokens": "max_turn_tokens"}

    temperature: float = option(0.7, help="Sampling temperature.")
    top_p: float = option(1.0, help="Nucleus sampling.")
    max_turn_tokens: int = option(1024, help="New tokens of one reply (sent as the API's `max_tokens`).")
    seed: int | None = option(None, help=(
        "Sent as `seed` when set (reproducible sampling where the server supports it)."))
    stop: list[str] = option(factory=list, help="Stop strings.")
    extra_body: dict = option(factory=dict, help="Passed through, e.g. vLLM `structured_outputs`.")

    def __post_init__(self) -> None:
        _positive(self, "max_turn_tokens")


@dataclass
class SourceConfig:
    """One seed data set. `format` picks the loader; see docs/synthesis.md for each format's file layout."""

    RENAMED: ClassVar[dict[str, str]] = {"kind": "format", "answer_kind": "scoring"}

    format: str = option(choices=SOURCE_FORMATS, help="Layout of the seed files, which picks the loader.")
    path: str = option(help=(
        "sa1b: directory of sa_*.jpg + sa_*.json; web, jsonl: a JSONL file; star: the annotation JSON."))
    name: str = option("", help="Prefix of item ids and `source` of the trajectories; defaults to `format`.")
    media_root: str = option("", help=(
        "Where relative media paths resolve (web images, STAR videos); default: next to `path`."))
    template: str = option("", choices=("",) + EXPERT_TEMPLATES, help=(
        "Expert prompt; default: by format (jsonl: sa1b for images, star for videos)."))
    scoring: str = option("auto", choices=SCORERS + ("auto",), help=(
        "How answers are scored (`auto`: choices -> multiple choice, an integer -> count, else exact match)."))
    limit: int | None = option(None, help="Use at most this many seeds of this source.")
    bbox_format: str = option("xyxy", choices=("xyxy", "xywh"), help="web, jsonl: corner or corner+size boxes.")
    bbox_units: str = option("pixels", choices=("pixels", "normalized"), help=(
        "web, jsonl: pixels of the original file, or fractions in [0, 1]."))
    min_segments: int = option(0, help=(
        "sa1b: skip images with fewer annotated segments (a cheap pre-filter; 0 = off)."))
    video_ext: str = option(".mp4", help="star: the file name of a video is <video_id><video_ext>.")

    def __post_init__(self) -> None:
        check_choices(self)
        self.name = self.name or self.format
        if self.limit is not None and self.limit < 0:
            raise ConfigError(f"limit={self.limit} must be >= 0")


@dataclass
class QuestionGenerationConfig:
    """Stage 1 (SA1B only): information-rich check, a crop of a small region, a 4-choice question (E.2.1)."""

    endpoint: str = option("expert", help="Name of the endpoint (under `endpoints`) that writes the questions.")
    sampling: SamplingConfig = option(factory=lambda: SamplingConfig(temperature=0.7), help="Its sampling.")
    stop_after_tool_call: bool = option(True, help="Add \"</tool_call>\" as a stop string to the first turn.")
    max_region_fraction: float = option(0.25, help=(
        "Reject regions covering more of the image (\"choose a small region\")."))
    num_choices: int = option(4, help="Options per question.")

    def __post_init__(self) -> None:
        if not 0 < self.max_region_fraction <= 1:
            raise ConfigError(f"max_region_fraction={self.max_region_fraction} must be in (0, 1]")
        if self.num_choices < 2:
            raise ConfigError(f"num_choices={self.num_choices} must be >= 2")


@dataclass
class ExpertConfig:
    """Stage 2: a single-pass expert trajectory from the whole input plus the reference cue (E.2.2)."""

    endpoint: str = option("expert", help="Name of the endpoint (under `endpoints`) that writes the analyses.")
    sampling: SamplingConfig = option(factory=lambda: SamplingConfig(temperature=0.3), help="Its sampling.")
    min_score: float = option(0.5, help=(
        "Accept when the answer scores at least this (ANLS for free text; 0/1 otherwise)."))
    transition_pattern: str = option(r"Now I will (?:zoom in|select some frames)\b", help=(
        "Regular expression of the sentence that precedes the operation."))
    header_pattern: str = option(r"^[ \t]*[*#]*[ \t]*Analy[sz]ing the [^:\n]{1,40}:[*]*[ \t]*\n?", help=(
        "Regular expression of section titles stripped from the analysis."))
    frame_zoom_text: str = option("Let me zoom in on the selected frame.", help=(
        "A video seed with a reference box: the sentence before the call that crops the selected frame (the "
        "expert's analysis covers the selection and the answer). Not in the paper, whose videos stop at the "
        "selection."))

    def __post_init__(self) -> None:
        if not 0 <= self.min_score <= 1:
            raise ConfigError(f"min_score={self.min_score} must be in [0, 1]")


@dataclass
class GeometryConfig:
    """How inserted wrong operations are drawn (the paper gives the rules, not the numbers)."""

    min_box_pixels: int = option(28, help=(
        "Smallest side of any requested region, in source pixels (the engine's smallest crop)."))
    wrong_box_scale: list[float] = option(factory=lambda: [0.5, 2.0], help="Wrong box side / reference side.")
    zoom_out_min_area_ratio: float = option(4.0, help=(
        "\"Excessively larger\": area of the over-large box / reference area."))
    zoom_out_max_image_fraction: float = option(0.9, help="... but not (almost) the whole image.")
    max_distinct_iou: float = option(0.3, help="The two wrong boxes of recrop_twice overlap at most this much.")
    max_attempts: int = option(200, help="Rejection-sampling attempts per box before the type falls back.")

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

    recrop: list[str] = option(factory=lambda: [
        "The cropped region does not show {target}. Let me look elsewhere.",
        "I cannot find {target} in this cropped region. Let me crop another part of the image.",
        "This part of the image does not contain {target}. Let me look at a different region.",
    ], help="After a crop of the wrong region.")
    further_zoom_in: list[str] = option(factory=lambda: [
        "The cropped region is still too large to see {target} clearly. Let me zoom in further.",
        "{target_cap} is too small to see in this crop. Let me zoom in closer.",
        "The details of {target} are still not clear enough. Let me zoom in further on it.",
    ], help="After a crop that is too large.")
    reselect: list[str] = option(factory=lambda: [
        "The selected frames do not show {target}. Let me select other frames.",
        "These frames do not contain {target}. Let me look at different frames.",
        "I cannot see {target} in these frames. Let me select other frames of the video.",
    ], help="After a selection of the wrong frames.")
    default_target_image: str = option("the region needed to answer the question", help=(
        "`{target}` of an image when the expert's transition sentence names none."))
    default_target_video: str = option("the moment needed to answer the question", help=(
        "`{target}` of a video when the expert's transition sentence names none."))

    def __post_init__(self) -> None:
        for name in ("recrop", "further_zoom_in", "reselect"):
            if not getattr(self, name):
                raise ConfigError(f"{name} needs at least one template")


@dataclass
class SelfCorrectionConfig:
    """Stage 3: Table 2's trajectory types and proportions."""

    image: dict[str, float] = option(factory=lambda: {
        "single_pass": 0.3, "recrop_once": 0.2, "recrop_twice": 0.2, "further_zoom_in": 0.3}, help=(
        "Share of each trajectory type among image items (Table 2)."))
    video: dict[str, float] = option(factory=lambda: {"single_pass": 0.9, "reselect": 0.1}, help=(
        "Share of each trajectory type among video items (Table 2)."))
    zoom_in_target: str = option("crop", choices=("crop", "original"), help=(
        "further_zoom_in: the correct crop zooms into the over-large crop, or into the original."))
    geometry: GeometryConfig = option(factory=GeometryConfig, help="How wrong boxes are drawn.")
    templates: RecoveryTemplates = option(factory=RecoveryTemplates, help="Texts of the recovery turns.")

    def __post_init__(self) -> None:
        check_choices(self)
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

    share: float = option(2000 / 7500, help="Fraction of items routed to text-only (0 disables).")
    endpoint: str = option("base", help="Name of the endpoint (under `endpoints`) sampled for text-only answers.")
    num_samples: int = option(4, help="Candidates per query (one request with `n`); the first correct one is kept.")
    sampling: SamplingConfig = option(factory=lambda: SamplingConfig(temperature=1.0), help="Its sampling.")
    min_score: float = option(0.5, help="Accept a candidate whose answer scores at least this.")

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

    Placeholders: `{question}`, `{medium}` (image | video), `{target}`, `{boxed_answer}` (`\\boxed{<ground truth>}`),
    `{answer_text}` (the correct option's text for multiple choice, else the ground truth: a template can state
    what the crop shows before the letter, as an expert's analysis would), `{answer_option}` (the correct option as
    the question lists it, "B: a checkerboard", and a line break; empty without options).
    """

    use: str = option("never", choices=TEMPLATE_USES, help=(
        "`never`: the paper's pipeline; `on_rejection`: ask the model, and when stage 2 or text-only sampling "
        "rejects its output, compose from the templates (recorded in the trajectory's meta); `always`: no stage-2 "
        "or text-only requests at all (stage 1 of SA1B still needs a model)."))
    global_text: str = option(
        "The question asks: {question} The details it needs are too small to see in the whole {medium}.",
        help="The first turn's analysis.")
    transition_image: str = option("Now I will zoom in to look clearer at {target}.", help=(
        "The sentence before a crop."))
    transition_video: str = option("Now I will select some frames to look clearer at {target}.", help=(
        "The sentence before a frame selection."))
    local_image: str = option("The cropped part shows {target} clearly. The answer is {boxed_answer}.", help=(
        "The answer turn after a crop."))
    local_video: str = option("The selected frames show {target} clearly. The answer is {boxed_answer}.", help=(
        "The answer turn after a frame selection."))
    text_only: str = option(
        "The question asks: {question} Looking at the whole {medium}, the answer is {boxed_answer}.",
        help="The answer of a text-only trajectory.")
    target_image: str = option("the region that answers the question", help="`{target}` of an image.")
    target_video: str = option("the moment that answers the question", help="`{target}` of a video.")

    def __post_init__(self) -> None:
        check_choices(self)
        if not all("{boxed_answer}" in t for t in (self.local_image, self.local_video, self.text_only)):
            raise ConfigError("local_image, local_video and text_only must contain {boxed_answer}")


@dataclass
class OutputConfig:
    """Where a run writes."""

    dir: str = option("outputs/synthesis", help="Output directory (trajectories, media, cache, report).")
    copy_media: bool = option(True, help=(
        "Copy input images (and write sampled video frames) into <dir>/media, so the output is self-contained."))
    cache_dir: str = option("", help=(
        "Response cache; default <dir>/cache (share it between runs to never pay twice)."))


def _default_endpoints() -> dict[str, EndpointConfig]:
    return {"expert": EndpointConfig(),  # GPT-4o writes questions and expert analyses
            "base": EndpointConfig(base_url="http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-VL-7B-Instruct",
                                   api_key_env="", price_input_per_1m=0.0, price_output_per_1m=0.0)}  # text-only


@dataclass
class SynthesisConfig(BudgetOptions):
    """A synthesis run. The pixel budgets of its episodes (`budget_preset` and the per-kind `*_pixels` fields,
    shared with every stage) are what SFT must train with; SFT checks each row's recorded budgets."""

    RENAMED: ClassVar[dict[str, str]] = {"budgets": "budget_preset"}

    endpoints: dict[str, EndpointConfig] = option(factory=_default_endpoints, help=(
        "Named OpenAI-compatible endpoints (`expert`: GPT-4o; `base`: a local vLLM for text-only sampling)."))
    sources: list[SourceConfig] = option(factory=list, help="Seed data sets (a list of sources).")
    profile: str = option("released", help=(
        "Protocol profile of the written trajectories (tool names, coordinates, observation texts)."))
    limits: EpisodeLimits = option(factory=EpisodeLimits, help="Limits of one episode.")
    seed: int = option(0, help="All random choices derive from (seed, item id): reruns and resumes draw the same.")
    item_concurrency: int = option(32, help="Items processed at once (requests are bounded per endpoint).")
    request_image_max_pixels: int = option(1536 * 1536, help="Images sent to the API are downscaled to at most this.")
    prompts_dir: str = option("", help=(
        "Files here override the default prompts (see `python -m data_synthesis prompts`)."))
    question_generation: QuestionGenerationConfig = option(factory=QuestionGenerationConfig, help="Stage 1.")
    expert: ExpertConfig = option(factory=ExpertConfig, help="Stage 2.")
    self_correction: SelfCorrectionConfig = option(factory=SelfCorrectionConfig, help="Stage 3.")
    text_only: TextOnlyConfig = option(factory=TextOnlyConfig, help="Text-only trajectories.")
    template_trajectories: TemplateConfig = option(factory=TemplateConfig, help="NOT the paper's method.")
    output: OutputConfig = option(factory=OutputConfig, help="Where the run writes.")

    def __post_init__(self) -> None:
        super().__post_init__()  # raises naming the preset or the per-kind fields
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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _positive(obj: Any, *names: str) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ConfigError(f"{name}={getattr(obj, name)} must be > 0")


def load_config(path: str | None, overrides: list[str] | None = None) -> SynthesisConfig:
    """Read a YAML recipe; `overrides` are `dotted.key=value` strings (YAML values) applied on top."""
    return settings.load(SynthesisConfig, path, overrides or ())


def dump_json(config: SynthesisConfig) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True)

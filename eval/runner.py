"""Drives many episodes at once through one generation function: the multi-turn eval loop.

Each step: collect the prompt of every live trajectory (up to `batch_size` of them), generate all of them in
one batch, feed each output to its `Episode` (the core engine parses the turn, runs the visual operation and
renders the observation), and append the output plus the observation's ChatML continuation to that
trajectory's prompt. Finished trajectories are written at once (one durable JSONL row each) and replaced by new
ones, so the batch stays full. Nothing here parses, executes or renders on its own: the Episode does.

The generation function is injected (`Generate`), so the same loop runs vLLM (`eval.engine`) or a scripted
function in tests.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import AbstractSet, Callable, Iterator, Sequence

from PIL import Image

from pixel_reasoner.episode import Episode, EpisodeConfig
from pixel_reasoner.errors import DataError
from pixel_reasoner.media import DecodedImageCache, default_cache
from pixel_reasoner.parsing import TOOL_CALL_CLOSE, extract_answer
from pixel_reasoner.protocol import ProtocolProfile
from pixel_reasoner.protocol.chatml import render_messages
from pixel_reasoner.trajectory import messages_to_records

from eval.choices import question_rng
from eval.config import RunConfig
from eval.question import Question
from eval.records import PredictionWriter

logger = logging.getLogger(__name__)


@dataclass
class GenerationRequest:
    prompt: str  # full ChatML text up to and including "<|im_start|>assistant\n"
    images: list[Image.Image]  # in placeholder order
    video: list[Image.Image] | None  # frames of the prompt's video, if any
    max_tokens: int
    stop: list[str]
    seed: int
    regex: str | None = None  # structured-output constraint for this turn (testing/debug only)


@dataclass
class GenerationResult:
    text: str
    num_tokens: int
    finish_reason: str  # "stop", "length", or "context_overflow" (the prompt does not fit the context)
    prompt_tokens: int = 0


Generate = Callable[[Sequence[GenerationRequest]], Sequence[GenerationResult]]


@dataclass(frozen=True)
class RunnerSettings:
    profile: ProtocolProfile
    config: EpisodeConfig
    tools: bool = True
    samples: int = 1
    seed: int = 0
    max_turn_tokens: int = RunConfig.max_turn_tokens
    max_response_tokens: int = RunConfig.max_response_tokens
    batch_size: int = 64
    force_first_call: bool = False
    image_dir: str | None = None  # save every image of a trajectory here (PNG) when set


def forced_call_regex(profile: ProtocolProfile, is_video: bool) -> str:
    """A regex that only admits one valid visual operation call (testing/debug: random models never call tools).

    Images: the profile's crop tool on image 1 with a box well inside the image (normalized or pixel coordinates,
    as the profile declares). Videos: the select-frames tool with three distinct frames.
    """
    operation = "select_frames" if is_video else "crop_image"
    tool = profile.tool_names().get(operation)
    if tool is None:
        raise DataError(f"profile {profile.name!r} has no `{operation}` tool to force")
    name = re.escape(tool)
    if is_video:
        args = r'\{"target_frames": \[[1-4], [5-8], 1[0-6]\]\}'
    else:
        settings = profile.binding(tool).settings  # type: ignore[union-attr]
        if getattr(settings, "coordinates", "normalized") == "normalized":
            low, high = r"0\.[1-3]", r"0\.[6-8]"
        else:
            low, high = r"[1-4][0-9]", r"1[0-4][0-9]"
        args = rf'\{{"bbox_2d": \[{low}, {low}, {high}, {high}\], "target_image": 1\}}'
    return rf'<tool_call>\n\{{"name": "{name}", "arguments": {args}\}}\n</tool_call>'


def _seed(seed: int, *parts: object) -> int:
    return question_rng(seed, *parts).getrandbits(31)


def _plain_messages(messages: Sequence[dict]) -> list[dict]:
    """Episode messages without pixels: images become {"type": "image", "image_index", "size", "provenance"}."""
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            parts = []
            for p in content:
                if p.get("type") == "image":
                    part = {"type": "image", "image_index": p.get("image_index"), "size": list(p["image"].size)}
                    if p.get("provenance"):
                        part["provenance"] = p["provenance"]
                    parts.append(part)
                elif p.get("type") == "video":
                    parts.append({"type": "video", "num_frames": len(p.get("video") or [])})
                else:
                    parts.append({"type": "text", "text": p.get("text", "")})
            content = parts
        out.append({"role": m["role"], "content": content, **({"observation": True} if m.get("observation") else {})})
    return out


class LiveTrajectory:
    """One (question, sample) in flight: its Episode, the growing prompt text and the images it references."""

    def __init__(self, question: Question, sample_idx: int, settings: RunnerSettings, cache: DecodedImageCache):
        self.question, self.sample_idx, self.settings = question, sample_idx, settings
        try:
            self.episode = Episode(settings.profile, images=question.images, video=question.video,
                                   config=settings.config, cache=cache)
            self.prompt_messages = self.episode.prompt_messages(question.question, question.choices)
        except Exception as e:
            raise DataError(f"{question.benchmark} question {question.id}: could not load its media: {e}") from e
        tools = settings.profile.tool_schemas() if settings.tools else None
        self.prompt = render_messages(self.prompt_messages, tools, add_generation_prompt=True)
        parts = self.prompt_messages[1]["content"]
        self.images: list[Image.Image] = [p["image"] for p in parts if p["type"] == "image"]
        self.video = next((p["video"] for p in parts if p["type"] == "video"), None)
        self.generated_tokens = 0
        self.prompt_tokens = 0
        self.termination: str | None = None

    @property
    def done(self) -> bool:
        return self.termination is not None

    def request(self) -> GenerationRequest:
        s = self.settings
        turn = self.episode.stats.turns
        regex = forced_call_regex(s.profile, self.video is not None) if s.force_first_call and turn == 0 else None
        return GenerationRequest(
            prompt=self.prompt, images=list(self.images), video=self.video,
            max_tokens=min(s.max_turn_tokens, s.max_response_tokens - self.generated_tokens),
            stop=[TOOL_CALL_CLOSE] if s.tools else [],
            seed=_seed(s.seed, self.question.benchmark, self.question.id, self.sample_idx, turn), regex=regex)

    def advance(self, result: GenerationResult) -> None:
        self.prompt_tokens = result.prompt_tokens or self.prompt_tokens
        if result.finish_reason == "context_overflow":
            self.termination = "context_overflow"
            return
        self.generated_tokens += result.num_tokens
        step = self.episode.step(result.text, truncated=result.finish_reason == "length")
        if step.done:
            self.termination = step.termination
            return
        observation = step.observation
        assert observation is not None
        self.prompt += result.text + observation.continuation()
        self.images += observation.images
        if self.generated_tokens >= self.settings.max_response_tokens:
            self.termination = "max_response_tokens"

    def row(self) -> dict:
        q, stats = self.question, self.episode.stats
        assistant = [m["content"] for m in self.episode.messages if m["role"] == "assistant"]
        response = assistant[-1] if assistant else ""
        crops = [{"box": list(box), "image": src, "turn": op.turn, "produced": idx}
                 for op in stats.operations for box, src, idx in zip(op.source_boxes, op.source_images, op.produced)
                 if src is not None]
        messages = self.prompt_messages + self.episode.messages
        if self.settings.image_dir:
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{q.id}_s{self.sample_idx}")
            root = os.path.dirname(os.path.abspath(self.settings.image_dir))
            records = messages_to_records(messages, self.settings.image_dir, root, stem)
        else:
            records = _plain_messages(messages)
        return {
            "id": q.id, "benchmark": q.benchmark, "sample_idx": self.sample_idx, "question": q.question,
            "choices": q.choices, "answer": q.answer, "category": q.category, "response": response,
            "prediction": extract_answer(response), "num_operations": stats.num_operations,
            "num_operation_errors": stats.num_operation_errors, "crops": crops, "target_boxes": q.target_boxes,
            "termination": self.termination, "turns": stats.turns, "generated_tokens": self.generated_tokens,
            "prompt_tokens": self.prompt_tokens,
            "operations": [{"turn": op.turn, "tool": op.tool_name, "arguments": op.arguments, "error": op.error}
                           for op in stats.operations],
            "messages": records, "meta": q.meta,
        }


@dataclass
class RunStats:
    written: int = 0
    generate_calls: int = 0
    terminations: dict = field(default_factory=dict)


def run_trajectories(questions: Sequence[Question], generate: Generate, settings: RunnerSettings,
                     writer: PredictionWriter, done: AbstractSet[tuple[str, int]] = frozenset(),
                     progress=None, cache: DecodedImageCache | None = None) -> RunStats:
    """Run every (question, sample) not in `done`, writing each row as soon as its trajectory ends.

    `progress` is anything with `update(n)` (a tqdm bar)."""
    cache = cache or default_cache()
    todo: Iterator[tuple[Question, int]] = ((q, k) for q in questions for k in range(settings.samples)
                                            if (q.id, k) not in done)
    live: list[LiveTrajectory] = []
    stats = RunStats()
    exhausted = False
    while True:
        while not exhausted and len(live) < settings.batch_size:
            item = next(todo, None)
            if item is None:
                exhausted = True
            else:
                live.append(LiveTrajectory(item[0], item[1], settings, cache))
        if not live:
            return stats
        results = generate([t.request() for t in live])
        stats.generate_calls += 1
        if len(results) != len(live):
            raise RuntimeError(f"the generation function returned {len(results)} results for {len(live)} requests")
        for trajectory, result in zip(live, results):
            trajectory.advance(result)
            if trajectory.done:
                writer.write(trajectory.row())
                stats.written += 1
                stats.terminations[trajectory.termination] = stats.terminations.get(trajectory.termination, 0) + 1
                if progress is not None:
                    progress.update(1)
        live = [t for t in live if not t.done]


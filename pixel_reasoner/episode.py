"""The episode engine: one state machine per trajectory, shared by the RL agent, the eval runner and synthesis.

Feed it the model's text for a turn (`step`); get back either an observation to show the model (text parts and
new images, in the profile's format) or the end of the episode (the answer, or why it stopped). It counts what
the rewards and metrics need: requested operations n_vo (failed ones included), operation errors, images
produced, whether pixel-space reasoning was used; and it enforces the limits in `EpisodeLimits`.

Nothing a model writes makes `step` raise: malformed calls, unknown tools, bad arguments and exhausted limits
all become observations the model can recover from.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from PIL import Image

from pixel_reasoner.config import EpisodeLimits, PixelBudgets
from pixel_reasoner.errors import ConfigError, OperationError
from pixel_reasoner.media import DecodedImageCache, ImageSource, VideoSource, as_image_source, default_cache
from pixel_reasoner.ops.base import EpisodeImage, OperationContext
from pixel_reasoner.parsing import ParsedTurn, parse_turn
from pixel_reasoner.protocol import ProtocolProfile, get_profile
from pixel_reasoner.protocol.chatml import neutralize, render_continuation

logger = logging.getLogger(__name__)

TERMINATIONS = ("answer", "no_answer", "max_operations", "max_turns", "truncated")


@dataclass(frozen=True)
class EpisodeConfig:
    """`resample_gap`: large crops are cut from a cached half/quarter-resolution level of the source as long as
    the remaining downscale stays >= this factor (2.7x faster on 12-MP sources, mean pixel difference 0.04/255;
    see `media.pyramid_level`). None resamples from full resolution like the official code."""

    budgets: PixelBudgets = field(default_factory=PixelBudgets)
    limits: EpisodeLimits = field(default_factory=EpisodeLimits)
    resample_gap: float | None = 1.25

    def __post_init__(self) -> None:
        if self.resample_gap is not None and self.resample_gap < 1:
            raise ConfigError(f"EpisodeConfig.resample_gap={self.resample_gap} must be >= 1 (a reduced level is "
                              "never upsampled) or None")


@dataclass
class OperationRecord:
    """One requested operation, for metrics, rewards, the viewer and crop faithfulness."""

    turn: int
    tool_name: str | None
    arguments: dict | None
    error: str | None = None
    produced: list[int] = field(default_factory=list)  # indices of the images it produced
    source_boxes: list[list[int]] = field(default_factory=list)  # their regions in source pixels
    source_images: list[int | None] = field(default_factory=list)  # index of the original each came from


@dataclass
class Observation:
    """What the model sees after an operation turn, as a chat message in the profile's format."""

    role: str
    content: list[dict]  # {"type": "text", "text"} and {"type": "image", "image": PIL, "image_index": k}
    new_images: list[EpisodeImage]
    error: str | None = None

    @property
    def images(self) -> list[Image.Image]:
        return [im.shown for im in self.new_images if im.shown is not None]

    def message(self) -> dict:
        """The observation as a chat message; `error` is set (for viewers and metrics) when the operation failed."""
        message = {"role": self.role, "content": self.content, "observation": True}
        if self.error is not None:
            message["error"] = self.error
        return message

    @property
    def text(self) -> str:
        return "".join(p["text"] for p in self.content if p["type"] == "text")

    def continuation(self, close_assistant_turn: bool = True) -> str:
        """ChatML text to append after the assistant's generated text (image placeholders included)."""
        return render_continuation([self.message()], close_assistant_turn)


@dataclass
class StepResult:
    done: bool
    observation: Observation | None = None
    answer: str | None = None
    termination: str | None = None


@dataclass
class EpisodeStats:
    turns: int = 0
    num_operations: int = 0  # n_vo: requested operations, failed ones included
    num_operation_errors: int = 0
    num_images_produced: int = 0
    termination: str | None = None
    answer: str | None = None
    operations: list[OperationRecord] = field(default_factory=list)

    @property
    def used_pixel_reasoning(self) -> bool:
        """1_PR(y) of the paper: the response requested at least one visual operation."""
        return self.num_operations > 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["used_pixel_reasoning"] = self.used_pixel_reasoning
        return d


class Episode:
    """State of one trajectory. Not shared between samples: create one per (query, sample)."""

    def __init__(self, profile: "str | ProtocolProfile" = "released",
                 images: Sequence["ImageSource | str | bytes | Image.Image"] = (),
                 video: VideoSource | str | None = None, config: EpisodeConfig | None = None,
                 cache: DecodedImageCache | None = None):
        self.profile = get_profile(profile)
        self.config = config or EpisodeConfig()
        self.cache = cache or default_cache()
        self.video = VideoSource(path=video) if isinstance(video, str) else video
        self.images: list[EpisodeImage] = []
        for src in images:
            source = as_image_source(src)
            self.images.append(EpisodeImage(len(self.images) + 1, "original", source, box=None))  # type: ignore[arg-type]
        self.num_inputs = len(self.images)
        if self.num_inputs >= self.config.limits.max_images:
            raise ConfigError(f"{self.num_inputs} input images leave no room under EpisodeLimits.max_images="
                              f"{self.config.limits.max_images}: every operation would be refused. max_images counts "
                              "every image in the conversation, inputs included (a video's frames shown as images "
                              "count one each); raise it, e.g. to the number of inputs + 16")
        self.stats = EpisodeStats()
        self.messages: list[dict] = []  # assistant turns and observations, in order (the prompt is not included)
        self._limit_warned = False

    @property
    def done(self) -> bool:
        return self.stats.termination is not None

    def shown_image(self, image: EpisodeImage) -> Image.Image:
        """Pixels of an image as the model sees them (originals resized to the original budget, shared cache)."""
        if image.shown is not None:
            return image.shown
        return image.source.load_resized(self.config.budgets.original, self.cache)

    def input_images(self) -> list[Image.Image]:
        return [self.shown_image(im) for im in self.images[: self.num_inputs]]

    def video_frames(self) -> list[Image.Image]:
        """The sampled video frames resized to the frame budget (for prompts that show the video as a video)."""
        if self.video is None:
            return []
        return [f.load_resized(self.config.budgets.frame, self.cache) for f in self.video.frames()]

    def prompt_messages(self, question: str, choices: Sequence[str] | None = None,
                        system_prompt: str | None = None, video_as: str = "video") -> list[dict]:
        """System + user messages for this episode's inputs; pass `tools=self.profile.tool_schemas()` to the template.

        `video_as="video"` shows a video as one video part; "images" shows its frames as images, which requires the
        caller to have passed them as the episode's `images` (`images=video.frames()`; OpenRLHF has no video
        modality), so that crops can address them.
        """
        if video_as not in ("video", "images"):
            raise ConfigError(f"video_as={video_as!r}; choose 'video' or 'images'")
        if self.video is not None and video_as == "images":
            frame_keys = {f.key for f in self.video.frames()}
            if not frame_keys <= {im.source.key for im in self.images[: self.num_inputs]}:
                raise ConfigError("video_as='images' shows the video's frames as the episode's input images, but they "
                                  "were not passed: create the Episode with images=video.frames() (plus any other "
                                  "images), or use video_as='video'")
        parts: list[dict] = [{"type": "image", "image": self.shown_image(im), "image_index": im.index,
                              "provenance": self._provenance(im)} for im in self.images[: self.num_inputs]]
        if self.video is not None and video_as == "video":
            parts.append(self._video_part())
        parts.append({"type": "text", "text": self.profile.format_question(question, choices)})
        system = system_prompt if system_prompt is not None else self.profile.system_prompt
        return [{"role": "system", "content": system}, {"role": "user", "content": parts}]

    def _video_part(self) -> dict:
        """The video as one prompt part: its frames, plus the file reference so a trajectory can be written
        (`video_source` lets trajectory writers reference the video instead of re-encoding its frames)."""
        assert self.video is not None
        part: dict[str, Any] = {"type": "video", "video": self.video_frames(), "video_source": self.video,
                                "num_frames": self.video.num_frames}
        if self.video.frame_paths is not None:
            part["frame_paths"] = list(self.video.frame_paths)
        else:
            part["path"] = self.video.path
        return part

    def step(self, text: str, truncated: bool = False) -> StepResult:
        """Advance by one assistant turn. Never raises on anything the model wrote."""
        if self.done:
            raise RuntimeError(f"episode already ended ({self.stats.termination}); create a new Episode")
        if not isinstance(text, str):
            raise TypeError(f"Episode.step takes the model's text (str), got {type(text).__name__}")
        self.stats.turns += 1
        self.messages.append({"role": "assistant", "content": text})
        parsed = parse_turn(text)
        if truncated:
            return self._end("truncated", parsed.answer if not parsed.is_tool_call else None)
        if not parsed.is_tool_call:
            return self._end("answer" if parsed.answer is not None else "no_answer", parsed.answer)
        self.stats.num_operations += 1
        if self.stats.turns >= self.config.limits.max_turns:
            self.stats.operations.append(OperationRecord(self.stats.turns, self._tool_name(parsed), None,
                                                         "not executed: turn limit reached"))
            return self._end("max_turns", None)
        if self.stats.num_operations > self.config.limits.max_operations:
            if self._limit_warned:
                self.stats.operations.append(OperationRecord(self.stats.turns, self._tool_name(parsed), None,
                                                             "not executed: operation limit reached"))
                return self._end("max_operations", None)
            self._limit_warned = True
            n = self.config.limits.max_operations
            return self._error(parsed, f"You have used all {n} visual operations allowed. Answer the question now "
                                       "with the information you have, and put your final answer within \\boxed{}.")
        if parsed.error is not None:
            return self._error(parsed, parsed.error)
        return self._execute(parsed)

    def _tool_name(self, parsed: ParsedTurn) -> str | None:
        return parsed.call.name if parsed.call else None

    def _end(self, termination: str, answer: str | None) -> StepResult:
        self.stats.termination, self.stats.answer = termination, answer
        return StepResult(done=True, answer=answer, termination=termination)

    def _error(self, parsed: ParsedTurn, message: str) -> StepResult:
        # messages quote what the model wrote (tool names, argument keys and values)
        message = neutralize(message, self.profile.reserved_tokens)
        record = OperationRecord(self.stats.turns, self._tool_name(parsed),
                                 parsed.call.arguments if parsed.call else None, message)
        self.stats.operations.append(record)
        self.stats.num_operation_errors += 1
        text = self.profile.error_template.format(message=message)
        obs = Observation(self.profile.observation_role, [{"type": "text", "text": text}], [], error=message)
        self.messages.append(obs.message())
        return StepResult(done=False, observation=obs)

    def _execute(self, parsed: ParsedTurn) -> StepResult:
        call = parsed.call
        assert call is not None
        binding = self.profile.binding(call.name)
        if binding is None:
            available = ", ".join(f"`{t.tool_name}`" for t in self.profile.tools)
            return self._error(parsed, f"Unknown tool `{call.name}`. Available tools: {available}.")
        context = OperationContext(images=self.images, video=self.video, budgets=self.config.budgets,
                                   cache=self.cache, shown_image=self.shown_image,
                                   tool_names=self.profile.tool_names(), resample_gap=self.config.resample_gap)
        try:
            result = binding.op.execute(call.arguments, context, binding.settings, binding.tool_name)
        except OperationError as e:
            return self._error(parsed, str(e))
        except Exception as e:  # a bug or unreadable media must not crash a rollout; it is logged and shown
            logger.exception("operation %s failed unexpectedly", call.name)
            return self._error(parsed, f"The operation failed: {type(e).__name__}: {e}")
        limit = self.config.limits.max_images
        if len(self.images) + len(result.images) > limit:
            return self._error(parsed, f"This would show {len(self.images) + len(result.images)} images, more than "
                                       f"the limit of {limit}. Answer with the images you have, or select fewer.")
        new: list[EpisodeImage] = []
        for produced in result.images:
            image = EpisodeImage(len(self.images) + 1, produced.kind, produced.source, produced.box,
                                 shown=produced.image, parent=produced.parent, operation=binding.tool_name)
            self.images.append(image)
            new.append(image)
        self.stats.num_images_produced += len(new)
        record = OperationRecord(self.stats.turns, call.name, call.arguments, None, [im.index for im in new],
                                 [list(im.box) for im in new], [self._origin_index(im) for im in new])
        self.stats.operations.append(record)
        fields: dict[str, Any] = {"first": new[0].index if new else None, "last": new[-1].index if new else None,
                                  "count": len(new)}
        if new:
            fields.update(width=new[0].shown_size[0], height=new[0].shown_size[1])
        fields.update(result.fields)
        content = [{"type": "text", "text": self._observation_text(binding.tool_name, binding.observation or "",
                                                                    fields, self.profile.reserved_tokens)}]
        content += [{"type": "image", "image": im.shown, "image_index": im.index, "provenance": self._provenance(im)}
                    for im in new]
        obs = Observation(self.profile.observation_role, content, new)
        self.messages.append(obs.message())
        return StepResult(done=False, observation=obs)

    @staticmethod
    def _observation_text(tool_name: str, template: str, fields: dict, reserved: Sequence[str]) -> str:
        """The success text; string fields are neutralized (an operation may quote its arguments)."""
        fields = {k: neutralize(v, reserved) if isinstance(v, str) else v for k, v in fields.items()}
        try:
            return template.format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise ConfigError(f"observation template of tool {tool_name!r} ({template!r}) cannot be filled: {e!r}; "
                              f"available fields: {sorted(fields)}. Return the field from the operation "
                              "(OperationResult.fields) or fix the template.") from None

    def _provenance(self, image: EpisodeImage) -> dict:
        """Where an image's pixels come from, in source pixels: what viewers draw and faithfulness checks use."""
        source_size = list(image.source.full_size(self.cache))
        box = list(image.box) if image.box is not None else [0, 0, *source_size]
        return {"operation": image.operation, "kind": image.kind, "parent": image.parent, "box": box,
                "source": image.source.describe(), "source_size": source_size,
                "source_image": self._origin_index(image)}

    def _origin_index(self, image: EpisodeImage) -> int | None:
        """Index of the input image whose pixels `image` shows (None for video frames)."""
        for original in self.images[: self.num_inputs]:
            if original.source.key == image.source.key:
                return original.index
        return None

"""Compose trajectories and execute them through the episode engine.

The assistant texts are composed (expert analysis, recovery templates, tool calls in the profile's format), then
every turn is stepped through `pixel_reasoner.episode.Episode`: each crop or frame selection, wrong ones included,
is produced by the engine exactly as a model's call would be at training or inference time, and the engine's own
records are checked against the plan (the wrong crop misses the reference, the over-large crop contains it, the
correct crop shows it, the final turn ends the episode with a correct answer). Nothing about operations,
parsing or rendering is re-implemented here.

Turn layout (assistant turns; `loss: false` marks the inserted wrong operations):
    single_pass:      [analysis + "Now I will ..." + call(ref)] [local analysis + \\boxed{}]
    recrop_once:      [analysis + "Now I will ..." + call(wrong)]* [recovery + call(ref)] [local + \\boxed{}]
    recrop_twice:     [analysis + ... + call(wrong1)]* [recovery + call(wrong2)]* [recovery + call(ref)] [local]
    further_zoom_in:  [analysis + ... + call(over-large)]* [recovery + call(ref, zooming into image 2)] [local]
    reselect:         [analysis + ... + select(wrong frames)]* [recovery + select(ref frames)] [local]
A video seed that also gives a reference box (the detail is small inside the reference frame) gets one more turn
after the correct selection: [frame_zoom_text + crop(ref box, first selected frame)], before the local analysis.
Text-only trajectories need no tool: a profile without tools (`<name>-no-tools`) composes them too.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Sequence

from PIL import Image

from data_synthesis.config import GeometryConfig
from data_synthesis.expert import ExpertAnalysis, check_answer
from data_synthesis.geometry import Box, box_to_arguments, contains, intersects
from data_synthesis.reference import Reference
from data_synthesis.rejection import Rejected
from data_synthesis.seeds import SeedItem
from data_synthesis.self_correction import Plan
from pixel_reasoner.config import VIDEO_FRAMES
from pixel_reasoner.episode import Episode, EpisodeConfig, OperationRecord
from pixel_reasoner.media import DecodedImageCache, VideoSource
from pixel_reasoner.protocol import ProtocolProfile
from pixel_reasoner.protocol.chatml import render_tool_calls

STAGE = "compose"


@dataclass
class Composed:
    trajectory_type: str
    messages: list[dict]  # prompt + episode messages (PIL images), wrong turns marked `loss: False`
    episode: Episode
    operations: list[dict] = field(default_factory=list)  # what was executed, for the trajectory's meta


class Composer:
    def __init__(self, profile: ProtocolProfile, episode_config: EpisodeConfig, cache: DecodedImageCache,
                 num_frames: int = VIDEO_FRAMES, frame_zoom_text: str = ""):
        self.profile = profile
        self.episode_config = episode_config
        self.cache = cache
        self.num_frames = num_frames
        self.frame_zoom_text = frame_zoom_text
        tools = profile.tool_names()
        self.crop_tool = tools.get("crop_image")
        self.frames_tool = tools.get("select_frames")

    # -- episodes and calls ------------------------------------------------------------------------------------
    def episode(self, item: SeedItem, operations: bool = True) -> Episode:
        """The item's episode; with `operations` the profile must offer the tool its medium needs."""
        if item.is_video:
            if operations and self.frames_tool is None:
                raise Rejected(STAGE, "profile_lacks_select_frames", f"profile {self.profile.name!r}")
            video = VideoSource(path=item.video, num_frames=self.num_frames) if item.video else \
                VideoSource(frame_paths=tuple(item.frame_paths or ()))
            return Episode(self.profile, video=video, config=self.episode_config, cache=self.cache)
        if operations and self.crop_tool is None:
            raise Rejected(STAGE, "profile_lacks_crop", f"profile {self.profile.name!r}")
        return Episode(self.profile, images=[item.image], config=self.episode_config, cache=self.cache)

    def source_size(self, episode: Episode) -> tuple[int, int]:
        return episode.images[0].source.load(self.cache).size

    def _crop_settings(self):
        return self.profile.binding(self.crop_tool).settings  # type: ignore[union-attr, arg-type]

    def _scale(self, episode: Episode) -> tuple[int, int]:
        """Resolution of the box arguments on image 1: 1000 steps when normalized, shown pixels otherwise."""
        if self._crop_settings().coordinates == "normalized":
            return 1000, 1000
        return episode.input_images()[0].size

    def margin(self, episode: Episode) -> tuple[float, float]:
        """How far the engine's crop of a requested box can reach beyond it: padding plus rounding."""
        width, height = self.source_size(episode)
        sx, sy = self._scale(episode)
        padding = self._crop_settings().padding
        return padding * width + width / sx + 2, padding * height + height / sy + 2

    def effective_geometry(self, episode: Episode, geometry: GeometryConfig) -> GeometryConfig:
        """Boxes large enough that rounding to the argument resolution keeps them above the engine's min size."""
        width, height = self.source_size(episode)
        sx, sy = self._scale(episode)
        slack = 2 * math.ceil(max(width / sx, height / sy))
        return dataclasses.replace(geometry, min_box_pixels=max(geometry.min_box_pixels,
                                                                self._crop_settings().min_size + slack))

    def crop_call(self, episode: Episode, box: Sequence[int], target_index: int, outward: bool) -> str:
        target = episode.images[target_index - 1]
        region = target.box if target.box is not None else (0, 0, *self.source_size(episode))
        shown = episode.shown_image(target).size
        args = {"bbox_2d": box_to_arguments(box, region, shown, self._crop_settings().coordinates, outward),
                "target_image": target_index}
        return render_tool_calls([{"name": self.crop_tool, "arguments": args}])

    def frames_call(self, frames: Sequence[int]) -> str:
        return render_tool_calls([{"name": self.frames_tool, "arguments": {"target_frames": list(frames)}}])

    # -- stage 2 input ------------------------------------------------------------------------------------------
    def reference_cue(self, item: SeedItem, reference: Reference) -> tuple[list[Image.Image], list[Image.Image]]:
        """(whole input, reference cue) as the engine shows them: the image or 16 frames, and the crop or the
        selected frames of the reference operation."""
        episode = self.episode(item)
        call = self.crop_call(episode, reference.box, 1, outward=True) if reference.frames is None \
            else self.frames_call(reference.frames)
        self._operate(episode, call)
        whole = episode.input_images() or episode.video_frames()
        return whole, [im.shown for im in episode.images[episode.num_inputs:] if im.shown is not None]

    # -- composition --------------------------------------------------------------------------------------------
    def compose(self, item: SeedItem, reference: Reference, analysis: ExpertAnalysis, plan: Plan,
                min_score: float) -> Composed:
        episode = self.episode(item)
        operations: list[dict] = []
        lead = f"{analysis.global_text}\n\n{analysis.transition}\n"
        for i, wrong in enumerate(plan.wrong):
            if wrong.box is not None:
                text = lead + self.crop_call(episode, wrong.box, 1, outward=plan.trajectory_type == "further_zoom_in")
            else:
                text = lead + self.frames_call(wrong.frames or [])
            record = self._operate(episode, text)
            self._check_wrong(plan.trajectory_type, record, reference)
            operations.append(_describe(record, loss=False))
            lead = plan.recovery_texts[i] + "\n"
        if reference.frames is not None:
            record = self._operate(episode, lead + self.frames_call(reference.frames))
            operations.append(_describe(record, loss=True))
            lead = self.frame_zoom_text + "\n"
        if reference.box is not None:  # an image, or the first selected frame of a video
            target = plan.correct_target if reference.frames is None else record.produced[0]
            record = self._operate(episode, lead + self.crop_call(episode, reference.box, target, outward=True))
            if not contains(record.source_boxes[0], reference.box):
                raise Rejected(STAGE, "reference_crop_misses_reference",
                               f"crop {record.source_boxes[0]} does not contain {list(reference.box)}")
            operations.append(_describe(record, loss=True))
        result = episode.step(analysis.local_text)
        if not result.done or result.termination != "answer":
            raise Rejected(STAGE, "engine_no_answer", f"the final turn ended as {result.termination!r}")
        check_answer(result.answer, item.answer, item.scoring, item.choices, min_score, stage=STAGE)
        messages = self.prompt(episode, item) + [dict(m) for m in episode.messages]
        assistant = [m for m in messages if m["role"] == "assistant"]
        for m in assistant[: len(plan.wrong)]:
            m["loss"] = False
        return Composed(plan.trajectory_type, messages, episode, operations)

    def compose_text_only(self, item: SeedItem, text: str, min_score: float) -> Composed:
        episode = self.episode(item, operations=False)
        result = episode.step(text)
        if not result.done or result.termination != "answer":
            raise Rejected("text_only", "engine_no_answer", f"ended as {result.termination!r}")
        check_answer(result.answer, item.answer, item.scoring, item.choices, min_score, stage="text_only")
        return Composed("text_only", self.prompt(episode, item) + [dict(m) for m in episode.messages], episode)

    def prompt(self, episode: Episode, item: SeedItem) -> list[dict]:
        return episode.prompt_messages(item.question or "", item.choices)

    def _operate(self, episode: Episode, text: str) -> OperationRecord:
        result = episode.step(text)
        if result.done or result.observation is None or result.observation.error is not None:
            error = result.observation.error if result.observation is not None else result.termination
            raise Rejected(STAGE, "engine_rejected_operation", str(error))
        return episode.stats.operations[-1]

    def _check_wrong(self, kind: str, record: OperationRecord, reference: Reference) -> None:
        if record.tool_name == self.crop_tool:
            region: Box = tuple(record.source_boxes[0])  # type: ignore[assignment]
            if kind == "further_zoom_in" and not contains(region, reference.box):
                raise Rejected(STAGE, "zoom_out_misses_reference", f"{list(region)} vs {list(reference.box)}")
            if kind != "further_zoom_in" and intersects(region, reference.box):
                raise Rejected(STAGE, "wrong_crop_shows_reference", f"{list(region)} vs {list(reference.box)}")
        elif set((record.arguments or {}).get("target_frames", [])) & set(reference.frames or []):
            raise Rejected(STAGE, "wrong_frames_overlap_reference", f"{record.arguments} vs {reference.frames}")


def _describe(record: OperationRecord, loss: bool) -> dict:
    return {"tool": record.tool_name, "arguments": record.arguments, "source_boxes": record.source_boxes,
            "loss": loss}

"""`select_frames`: pick up to `max_frames` of the video's sampled frames (16 in the paper) to look at closely.

Frames are 1-based indices into the sampled frames; they must be unique, in range, and at most `max_frames`.
Selected frames become images (resized to the frame budget) that later operations can crop.
"""
from __future__ import annotations

from dataclasses import dataclass

from pixel_reasoner.config import VIDEO_FRAMES
from pixel_reasoner.errors import ConfigError, OperationError
from pixel_reasoner.ops import register_operation
from pixel_reasoner.ops.base import (OperationContext, OperationResult, ProducedImage, VisualOperation,
                                     require_arguments, require_int)


@dataclass(frozen=True)
class SelectFramesSettings:
    max_frames: int = 8  # frames one call may select (paper: 8)
    num_frames: int = VIDEO_FRAMES  # frames sampled from a video, as the schema tells the model

    def __post_init__(self) -> None:
        if self.max_frames < 1 or self.num_frames < 1:
            raise ConfigError(f"SelectFramesSettings: max_frames={self.max_frames} and num_frames={self.num_frames} "
                              "must be >= 1")


@register_operation
class SelectFrames(VisualOperation):
    name = "select_frames"
    settings_class = SelectFramesSettings
    observation_template = "Here are the selected frames (Frame Size: {width}x{height}, Numbered {first} to {last}):"

    def schema(self, tool_name: str, settings: SelectFramesSettings) -> dict:
        return {"type": "function", "function": {
            "name": tool_name,
            "description": "Select frames from a video to look at them closely.",
            "parameters": {"type": "object", "properties": {
                "target_frames": {"type": "array", "description": f"Frame indices to select (no more than "
                                  f"{settings.max_frames} frames in total).",
                                  "items": {"type": "integer",
                                            "description": f"Frame index from 1 to {settings.num_frames}."}}},
                "required": ["target_frames"]}}}

    def execute(self, arguments: dict, context: OperationContext, settings: SelectFramesSettings,
                tool_name: str) -> OperationResult:
        if context.video is None:
            crop_tool = context.tool_names.get("crop_image", "crop_image")
            raise OperationError(f"`{tool_name}` works on a video, but this input is an image. "
                                 f"Use `{crop_tool}` to look closer at an image.")
        require_arguments(arguments, ["target_frames"], ["target_frames"], tool_name)
        value = arguments["target_frames"]
        if not isinstance(value, list) or not value:
            raise OperationError(f"`target_frames` must be a non-empty list of frame indices, got {value!r}.")
        frames = [require_int(v, "target_frames") for v in value]
        n = context.video.num_frames
        if len(frames) > settings.max_frames:
            raise OperationError(f"You selected {len(frames)} frames; select at most {settings.max_frames}. "
                                 "Think again about which frames you need to check in detail.")
        out_of_range = [f for f in frames if not 1 <= f <= n]
        if out_of_range:
            raise OperationError(f"There are {n} frames numbered 1 to {n}; `target_frames={frames}` has "
                                 f"{out_of_range} out of range.")
        if len(set(frames)) != len(frames):
            raise OperationError(f"`target_frames={frames}` lists a frame more than once; list each frame once.")
        sources = context.video.frames()
        produced = []
        for f in frames:
            source = sources[f - 1]
            width, height = source.load(context.cache).size
            produced.append(ProducedImage(source.load_resized(context.budgets.frame, context.cache), source,
                                          (0, 0, width, height), "frame"))
        return OperationResult(produced, {"width": produced[0].image.width, "height": produced[0].image.height,
                                          "frames": frames})

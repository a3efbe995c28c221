"""The model's inputs for one rollout sample: token ids and pixel tensors from the processor, and what vLLM gets.

Every call here runs in the agent's worker threads, never on the event loop. The processor is the model's own
(the one the trainer uses), called the way OpenRLHF's `process_prompt_with_images` calls it, so the token ids
and pixel rows are what the training forward expects:

- `encode_prompt`: the prompt with its images, or its video as a video (Qwen2.5-VL's video path: frames grouped
  by the temporal patch, `video_grid_thw`, `second_per_grid_ts` from `fps` for the time-aware M-RoPE), once per
  query: the n samples of a query share the result, pixel tensors included.
- `encode_observation`: an observation turn's text, with one placeholder per new image.
- `merge_parts`: a sample's pixel tensors, per key, concatenated once when the sample is finished.

Pixel tensors are cast to `pixel_dtype` (the actor's parameter dtype: Qwen2.5-VL's vision tower casts its input
to that dtype first, so bf16 loses nothing there and halves every copy between the engine and the trainer).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from pixel_reasoner.protocol.chatml import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER

# what the processor returns that the trainer rebuilds itself (`Actor.forward` derives token types from ids)
NOT_TRAINING_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids")
PIXEL_KEYS = ("pixel_values", "pixel_values_videos")


@dataclass(frozen=True)
class PromptInputs:
    """The processed prompt of one query, shared by its samples (treat as read-only)."""

    token_ids: tuple[int, ...]
    mm: dict[str, torch.Tensor] | None  # pixel tensors and grids for the trainer
    images: tuple[Image.Image, ...]  # the prompt's images as vLLM gets them
    video: tuple[np.ndarray, dict] | None  # the prompt's video as vLLM gets it: frames (T, H, W, 3) and metadata

    def nbytes(self) -> int:
        tensors = sum(t.numel() * t.element_size() for t in (self.mm or {}).values())
        video = self.video[0].nbytes if self.video is not None else 0
        return tensors + video + 8 * len(self.token_ids)


def training_inputs(output: Any, pixel_dtype: torch.dtype) -> dict[str, torch.Tensor] | None:
    """The processor's tensors the trainer's forward takes, pixels cast to `pixel_dtype`."""
    mm = {key: value for key, value in output.items() if key not in NOT_TRAINING_INPUTS}
    for key in PIXEL_KEYS:
        if key in mm:
            mm[key] = mm[key].to(pixel_dtype)
    return mm or None


def vllm_video(frames: Sequence[Image.Image], fps: float) -> tuple[np.ndarray, dict]:
    """A sampled video as vLLM takes it: the frames as they are (no resampling by vLLM) at `fps`."""
    array = np.stack([np.asarray(frame.convert("RGB")) for frame in frames])
    n = len(frames)
    return array, {"fps": fps, "duration": n / fps, "total_num_frames": n, "frames_indices": list(range(n)),
                   "video_backend": "pyav", "do_sample_frames": False}


def encode_prompt(processor: Any, text: str, images: Sequence[Image.Image], video: Sequence[Image.Image],
                  fps: float, pixel_dtype: torch.dtype) -> PromptInputs:
    """The prompt text (one placeholder per image, one per video) with its media."""
    if not images and not video:
        ids = processor.tokenizer(text, add_special_tokens=False)["input_ids"] \
            if hasattr(processor, "tokenizer") else processor(text, add_special_tokens=False)["input_ids"]
        return PromptInputs(tuple(ids), None, (), None)
    kwargs: dict[str, Any] = {"text": [text], "add_special_tokens": False, "return_tensors": "pt"}
    if images:
        kwargs["images"] = list(images)
    if video:
        kwargs["videos"] = [list(video)]
        kwargs["video_metadata"] = [{"fps": fps, "total_num_frames": len(video)}]
    output = processor(**kwargs)
    return PromptInputs(tuple(output["input_ids"][0].tolist()), training_inputs(output, pixel_dtype),
                        tuple(images), vllm_video(video, fps) if video else None)


def encode_observation(processor: Any, text: str, images: Sequence[Image.Image],
                       pixel_dtype: torch.dtype) -> tuple[list[int], dict[str, torch.Tensor] | None]:
    """An observation's token ids and, when it shows images, their pixel tensors."""
    if not images:
        tokenizer = getattr(processor, "tokenizer", processor)
        return tokenizer(text, add_special_tokens=False)["input_ids"], None
    output = processor(text=[text], images=list(images), add_special_tokens=False, return_tensors="pt")
    return output["input_ids"][0].tolist(), training_inputs(output, pixel_dtype)


def merge_parts(parts: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor] | None:
    """One tensor per key, the parts in order (a key held by one part keeps that part's tensor: the prompt's,
    shared by the samples of a query, is not copied). A sample with a video and no image still carries an empty
    `image_grid_thw`: OpenRLHF's `Actor.forward` passes Qwen2.5-VL its token types (and so its M-RoPE positions)
    only when that key is present."""
    merged: dict[str, torch.Tensor] = {}
    for key in dict.fromkeys(k for part in parts for k in part):
        tensors = [part[key] for part in parts if key in part]
        merged[key] = tensors[0] if len(tensors) == 1 else torch.cat(tensors)
    if "video_grid_thw" in merged and "image_grid_thw" not in merged:
        merged["image_grid_thw"] = torch.zeros((0, 3), dtype=merged["video_grid_thw"].dtype)
    return merged or None


def count_placeholders(text: str) -> tuple[int, int]:
    """(image placeholders, video placeholders) in a rendered prompt."""
    return text.count(IMAGE_PLACEHOLDER), text.count(VIDEO_PLACEHOLDER)

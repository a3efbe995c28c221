"""The masking collator: trajectories in, Qwen2.5-VL training tensors out, loss only where the model should learn.

Each sample is rendered by OUR chat template (`pixel_reasoner/templates/qwen2_5_vl_tools.jinja`) with its own
`tools=`, images filled in every role (prompt, user observations, Hermes `tool` turns), through the real
processor's `apply_chat_template(..., return_assistant_tokens_mask=True)`. The template wraps each assistant
turn in `{% generation %}` unless the turn is flagged `loss: false`, so the mask is flag-based, never
positional. Labels are the input ids where that mask is 1 and -100 elsewhere:

    trained: the text of assistant turns without `loss: false`, and their closing <|im_end|>
    masked:  system prompt + tools, user turns, observations (text and every image/video token), the
             `<|im_start|>assistant\\n` headers, assistant turns flagged `loss: false`, padding

Samples are encoded one by one (each may need different `tools=`) and then padded together:

    >>> batch = TrajectoryCollator(processor, budgets)([{"sample": spec.to_json()}, ...])
    >>> sorted(batch)   # an image batch; pixel_values_videos etc. when videos are present
    ['attention_mask', 'image_grid_thw', 'input_ids', 'labels', 'mm_token_type_ids', 'pixel_values']

`mm_token_type_ids` is kept: without it Qwen2.5-VL silently falls back to 1-D positions instead of M-RoPE. With
`tokens_per_second` set (the model's `vision_config.tokens_per_second`), a batch with a video also gets explicit
`position_ids`: Qwen's reference M-RoPE positions, which vLLM uses in rollouts and evaluation and transformers 5.19
gets wrong for the text after a video (`pixel_reasoner.mrope`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from pixel_reasoner.config import PixelBudgets
from pixel_reasoner.media import DecodedImageCache, ImageFile, VideoSource, resize_to_budget
from pixel_reasoner.mrope import batch_positions

from open_r1_ext.samples import SampleSpec

IGNORE_INDEX = -100
CONCATENATED = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts")
VIDEO_CACHE_BYTES = 256 << 20  # bound on one decoded video file while it is collated


class AllZeroAssistantMaskError(RuntimeError):
    """The processor returned no assistant tokens for a sample that has trained turns (transformers < 5.18 did
    this whenever images were present); training on it would silently learn nothing."""


@dataclass
class TrajectoryCollator:
    processor: Any
    budgets: PixelBudgets
    video_fps: float = 2.0
    pad_to_multiple_of: int | None = None
    tokens_per_second: float | None = None  # the model's vision_config.tokens_per_second: reference positions

    def __post_init__(self) -> None:
        tokenizer = self.processor.tokenizer
        self.pad_token_id = tokenizer.pad_token_id
        if self.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; set `tokenizer.pad_token` (Qwen2.5-VL: <|endoftext|>)")
        self.media_token_ids = [i for i in (getattr(self.processor, "image_token_id", None),
                                            getattr(self.processor, "video_token_id", None)) if i is not None]

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        return self.pad([self.encode(SampleSpec.from_json(ex["sample"])) for ex in examples])

    def load_messages(self, spec: SampleSpec) -> tuple[list[dict], list[dict]]:
        """Messages with decoded pixels, each image resized to its kind's budget (the processor then leaves it as
        is), and the metadata of each video (its frame rate sets the temporal M-RoPE spacing)."""
        messages, videos = [], []
        for m in spec.messages:
            if not isinstance(m["content"], list):
                messages.append(m)
                continue
            content = []
            for part in m["content"]:
                if part["type"] == "image":
                    image = resize_to_budget(ImageFile(part["path"]).decode(), self.budgets.for_kind(part["kind"]))
                    content.append({"type": "image", "image": image})
                elif part["type"] == "video":
                    frames = [resize_to_budget(f, self.budgets.frame) for f in self._frames(part)]
                    content.append({"type": "video", "video": frames})
                    videos.append({"fps": self.video_fps, "total_num_frames": len(frames)})
                else:
                    content.append(part)
            messages.append({**m, "content": content})
        return messages, videos

    def _frames(self, part: dict) -> list[Image.Image]:
        if part.get("frame_paths"):
            return [ImageFile(p).decode() for p in part["frame_paths"]]
        # A throwaway cache: the collator holds no state, so dataloader workers can copy or pickle it freely.
        return VideoSource(path=part["path"], num_frames=part["num_frames"]).load_frames(
            DecodedImageCache(VIDEO_CACHE_BYTES))

    def encode(self, spec: SampleSpec) -> dict[str, torch.Tensor]:
        """One sample: input ids, labels, mm_token_type_ids and its pixel tensors (no batch dimension on 1-D)."""
        messages, videos = self.load_messages(spec)
        processor_kwargs: dict[str, Any] = {"padding": False, "add_special_tokens": False}
        if videos:
            processor_kwargs["video_metadata"] = videos
        out = self.processor.apply_chat_template(
            messages, tools=spec.tools, tokenize=True, return_dict=True, return_tensors="pt",
            return_assistant_tokens_mask=True, processor_kwargs=processor_kwargs)
        input_ids = out["input_ids"][0]
        trained = torch.as_tensor(out["assistant_masks"])[0].bool()
        if spec.trained_turns() and not trained.any():
            raise AllZeroAssistantMaskError(
                f"{spec.where}: the processor's assistant mask is all zero although {spec.trained_turns()} "
                "assistant turn(s) should be trained; check that the chat template has {% generation %} markers "
                "and that transformers >= 5.18 is installed")
        trained &= ~torch.isin(input_ids, torch.tensor(self.media_token_ids, dtype=input_ids.dtype))
        encoded = {"input_ids": input_ids, "labels": torch.where(trained, input_ids, IGNORE_INDEX)}
        if "mm_token_type_ids" in out:
            encoded["mm_token_type_ids"] = out["mm_token_type_ids"][0]
        for key in CONCATENATED:
            if key in out:
                encoded[key] = torch.as_tensor(out[key])
        return encoded

    def pad(self, encoded: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Right-pad the token tensors to one length; concatenate the pixel tensors in sample order."""
        length = max(len(e["input_ids"]) for e in encoded)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {
            "input_ids": torch.full((len(encoded), length), self.pad_token_id, dtype=torch.long),
            "attention_mask": torch.zeros((len(encoded), length), dtype=torch.long),
            "labels": torch.full((len(encoded), length), IGNORE_INDEX, dtype=torch.long),
        }
        if "mm_token_type_ids" in encoded[0]:
            dtype = encoded[0]["mm_token_type_ids"].dtype
            batch["mm_token_type_ids"] = torch.zeros((len(encoded), length), dtype=dtype)
        for row, e in enumerate(encoded):
            n = len(e["input_ids"])
            batch["input_ids"][row, :n] = e["input_ids"]
            batch["attention_mask"][row, :n] = 1
            batch["labels"][row, :n] = e["labels"]
            if "mm_token_type_ids" in batch:
                batch["mm_token_type_ids"][row, :n] = e["mm_token_type_ids"]
        for key in CONCATENATED:
            parts = [e[key] for e in encoded if key in e]
            if parts:
                batch[key] = torch.cat(parts)
        if self.tokens_per_second is not None and "video_grid_thw" in batch:
            batch["position_ids"] = torch.from_numpy(batch_positions(
                batch["input_ids"].numpy(), batch["attention_mask"].numpy(),
                *(batch[k].numpy() if k in batch else None for k in ("image_grid_thw", "video_grid_thw",
                                                                      "second_per_grid_ts")),
                image_token_id=self.processor.image_token_id, video_token_id=self.processor.video_token_id,
                spatial_merge_size=self.processor.image_processor.merge_size,
                tokens_per_second=self.tokens_per_second))
        return batch

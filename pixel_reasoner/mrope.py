"""Qwen2.5-VL's 3-D M-RoPE position ids as the reference implementation computes them (numpy only).

Why this exists: transformers 5.19's `Qwen2_5_VLModel.get_rope_index` continues the text after a vision block at
the block's start + max(h, w) (merged cells), while Qwen's reference implementation (transformers 4.x's, which
trained the released models) and vLLM continue it at the block's largest position + 1. For images the two agree;
after a video whose temporal positions ((t - 1) x second_per_grid_t x tokens_per_second) reach its spatial
extent they do not, and every later token is rotated differently in training than in vLLM's rollouts and
evaluation (measured: 2-3e-3 log-prob difference in fp32 on the tiny test model, against ~4e-5 with these
positions). The trainers pass these positions explicitly for samples with a video (the RL actor through the
OpenRLHF patch's `vlm_position_ids` hook, SFT through its collator).

    >>> positions([5, 9, 9, 9, 9, 6], video_grid_thw=[[2, 2, 4]], second_per_grid_ts=[1.0], image_token_id=8,
    ...           video_token_id=9, spatial_merge_size=2, tokens_per_second=2.0)[0].tolist()
    [0, 1, 1, 3, 3, 4]
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np


def _blocks(ids: np.ndarray, image_token_id: int, video_token_id: int) -> list[tuple[int, str]]:
    """(offset, modality) of every run of image or video placeholder tokens, in order."""
    blocks, i = [], 0
    while i < len(ids):
        if ids[i] in (image_token_id, video_token_id):
            kind = "image" if ids[i] == image_token_id else "video"
            j = i
            while j < len(ids) and ids[j] == ids[i]:
                j += 1
            blocks.append((i, kind))
            i = j
        else:
            i += 1
    return blocks


def positions(token_ids: Sequence[int], image_grid_thw: Sequence[Sequence[int]] = (),
              video_grid_thw: Sequence[Sequence[int]] = (), second_per_grid_ts: Sequence[float] = (), *,
              image_token_id: int, video_token_id: int, spatial_merge_size: int,
              tokens_per_second: float) -> np.ndarray:
    """(3, len(token_ids)) temporal / height / width positions of one sequence (no padding)."""
    return _positions(np.asarray(token_ids), iter(image_grid_thw), iter(video_grid_thw), iter(second_per_grid_ts),
                      image_token_id, video_token_id, spatial_merge_size, tokens_per_second)


def _positions(ids: np.ndarray, images: Iterator, videos: Iterator, seconds: Iterator, image_token_id: int,
               video_token_id: int, merge: int, tokens_per_second: float) -> np.ndarray:
    parts: list[np.ndarray] = []
    start = 0  # first token not yet placed

    def next_index() -> int:
        return int(parts[-1].max()) + 1 if parts else 0

    for offset, kind in _blocks(ids, image_token_id, video_token_id):
        t, h, w = (int(x) for x in next(images if kind == "image" else videos))
        h, w = h // merge, w // merge
        factor = 1.0 if kind == "image" else float(next(seconds, 1.0)) * tokens_per_second
        text = offset - start
        base = next_index()
        parts.append(np.broadcast_to(np.arange(text), (3, text)) + base)
        grid = np.indices((t, h, w)).reshape(3, -1)
        grid[0] = (grid[0] * factor).astype(np.int64)
        parts.append(grid + base + text)
        start = offset + t * h * w
    if start < len(ids):
        parts.append(np.broadcast_to(np.arange(len(ids) - start), (3, len(ids) - start)) + next_index())
    return np.concatenate(parts, axis=1) if parts else np.zeros((3, 0), dtype=np.int64)


def batch_positions(sequences: np.ndarray, attention_mask: np.ndarray, image_grid_thw: np.ndarray | None,
                    video_grid_thw: np.ndarray | None, second_per_grid_ts: np.ndarray | None, *,
                    image_token_id: int, video_token_id: int, spatial_merge_size: int,
                    tokens_per_second: float) -> np.ndarray:
    """(3, batch, length) positions of a padded batch whose samples' grids are concatenated in sample order (as
    trainers merge them); padding positions are 0."""
    images = iter(np.zeros((0, 3)) if image_grid_thw is None else image_grid_thw)
    videos = iter(np.zeros((0, 3)) if video_grid_thw is None else video_grid_thw)
    seconds = iter(() if second_per_grid_ts is None else second_per_grid_ts)
    out = np.zeros((3, *sequences.shape), dtype=np.int64)
    for b in range(sequences.shape[0]):
        valid = attention_mask[b].astype(bool)
        out[:, b, valid] = _positions(sequences[b][valid], images, videos, seconds, image_token_id, video_token_id,
                                      spatial_merge_size, tokens_per_second)
    return out

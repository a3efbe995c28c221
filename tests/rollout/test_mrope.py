"""Qwen's reference M-RoPE positions (`pixel_reasoner.mrope`) against transformers' `get_rope_index`: equal for
images, different after a video whose temporal positions reach past its spatial extent (the case the trainers
correct; vLLM's agreement with these positions is the video parity test's)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pixel_reasoner.mrope import batch_positions, positions

IMAGE, VIDEO = 8, 9


@pytest.fixture(scope="module")
def transformers_rope_index(tiny_model_dir):
    """transformers 5.19's `Qwen2_5_VLModel.get_rope_index` on the tiny model's config (no weights needed)."""
    from transformers import AutoConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLModel

    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.image_token_id, config.video_token_id = IMAGE, VIDEO
    holder = Qwen2_5_VLModel.__new__(Qwen2_5_VLModel)
    holder.__dict__["config"] = config

    def rope_index(ids, image_grid_thw=None, video_grid_thw=None, second_per_grid_ts=None):
        ids = torch.tensor([ids])
        types = (ids == IMAGE).int()
        types[ids == VIDEO] = 2
        grids = {k: None if v is None else torch.tensor(v) for k, v in
                 (("image_grid_thw", image_grid_thw), ("video_grid_thw", video_grid_thw),
                  ("second_per_grid_ts", second_per_grid_ts))}
        return Qwen2_5_VLModel.get_rope_index(holder, ids, types, **grids)[0][:, 0].numpy()
    return rope_index


def reference(ids, **kw):
    return positions(ids, image_token_id=IMAGE, video_token_id=VIDEO, spatial_merge_size=2, tokens_per_second=2.0,
                     **kw)


def test_images_get_the_same_positions_as_transformers(transformers_rope_index):
    ids = [1, 2] + [IMAGE] * 6 + [3, 4, 5] + [IMAGE] * 4 + [6]
    grids = [[1, 4, 6], [1, 4, 4]]  # 2x3 and 2x2 merged cells
    np.testing.assert_array_equal(reference(ids, image_grid_thw=grids), transformers_rope_index(ids, grids))


def test_after_a_video_the_text_continues_past_its_last_temporal_position(transformers_rope_index):
    ids = [1, 2] + [VIDEO] * 16 + [3, 4]  # t=8 temporal patches of 1x2 cells, 2 units apart (1 s x 2 tokens/s)
    ours = reference(ids, video_grid_thw=[[8, 2, 4]], second_per_grid_ts=[1.0])
    theirs = transformers_rope_index(ids, video_grid_thw=[[8, 2, 4]], second_per_grid_ts=[1.0])
    np.testing.assert_array_equal(ours[:, :18], theirs[:, :18])  # the text before and the video agree
    assert ours[0, 17] == 2 + 7 * 2 and ours[:, 18].tolist() == [17, 17, 17]  # the next text: its max + 1
    assert theirs[:, 18].tolist() == [4, 4, 4]  # transformers: the video's start + max(h, w) merged cells


def test_a_padded_batch_takes_each_samples_grids_in_order():
    first = [1] + [IMAGE] * 4 + [2]
    second = [3] + [VIDEO] * 8 + [4]
    sequences = np.array([first + [0] * 5, [0] + second])  # right and left padding
    mask = np.array([[1] * 6 + [0] * 5, [0] + [1] * 10])
    out = batch_positions(sequences, mask, np.array([[1, 4, 4]]), np.array([[4, 2, 4]]), np.array([0.5]),
                          image_token_id=IMAGE, video_token_id=VIDEO, spatial_merge_size=2, tokens_per_second=2.0)
    np.testing.assert_array_equal(out[:, 0, :6], reference(first, image_grid_thw=[[1, 4, 4]]))
    np.testing.assert_array_equal(out[:, 1, 1:], reference(second, video_grid_thw=[[4, 2, 4]],
                                                           second_per_grid_ts=[0.5]))
    assert (out[:, 0, 6:] == 0).all() and (out[:, 1, 0] == 0).all()

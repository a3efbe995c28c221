"""The Qwen2.5-VL shapes written out in pixel_reasoner.testing.qwen_configs are the released checkpoints' shapes:
built on the meta device (no memory, no weights), they have the released parameter counts."""
from __future__ import annotations

import pytest
import torch

from pixel_reasoner.testing.qwen_configs import published_config
from pixel_reasoner.testing.tiny_qwen import build_tokenizer

# Parameter counts of Qwen/Qwen2.5-VL-3B-Instruct and Qwen/Qwen2.5-VL-7B-Instruct (total; vision tower incl. merger)
RELEASED = {"3b": (3_754_622_976, 668_684_288), "7b": (8_292_166_656, 676_550_144)}


@pytest.mark.parametrize("size", sorted(RELEASED))
def test_published_configs_have_the_released_parameter_counts(size):
    from transformers import Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(published_config(build_tokenizer(), size))
    total = sum(p.numel() for p in model.parameters())
    vision = sum(p.numel() for p in model.model.visual.parameters())
    assert (total, vision) == RELEASED[size]
    assert model.config.image_token_id == 151655 and model.config.text_config.rope_parameters["mrope_section"] == [
        16, 24, 24]


def test_unknown_size_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown Qwen2.5-VL size '14b'; choose one of \['3b', '7b'\]"):
        published_config(build_tokenizer(), "14b")

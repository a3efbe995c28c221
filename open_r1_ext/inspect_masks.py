"""Show exactly which tokens SFT learns from, before spending GPU hours.

    python -m open_r1_ext.inspect_masks --config recipes/sft_7b.yaml [-n 5] [--json]
    python -m open_r1_ext.inspect_masks --data trajectories.jsonl --model MODEL_DIR [--image_root DIR] [--json]

Samples go through the same validation and collator as training (same template, tools, pixel budgets), then the
labels are cut into contiguous spans: `trained` (labels kept) and `masked` (labels -100), in sequence order.
With `--data` the pixel budgets are those the data records (the first row with `meta.budgets`), else the
`consistent` preset; with `--config`, the recipe's.
A run of image or video placeholder tokens is shown as one marker with its count, e.g. `<|image_pad|>*64`
(they are always masked). With `--json`, one object per line:
    {"index": 0, "id": ..., "source": ..., "row": ..., "trained": ["...<|im_end|>"],
     "masked": ["<|im_start|>system..."]}
Rows that fail validation are listed on stderr and the exit status is 1.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from pixel_reasoner import settings
from pixel_reasoner.budget_check import recorded_budgets
from pixel_reasoner.config import budget_fields

from open_r1_ext.collator import IGNORE_INDEX, TrajectoryCollator
from open_r1_ext.config import SFTScriptArguments
from open_r1_ext.data import read_data_file
from open_r1_ext.dataset import prepare_samples
from open_r1_ext.modeling import load_processor


def mask_spans(input_ids, labels, tokenizer, media_token_ids) -> tuple[list[str], list[str]]:
    """(trained spans, masked spans) of one sample, each a decoded run of consecutive tokens."""
    ids, keep = input_ids.tolist(), (labels != IGNORE_INDEX).tolist()
    trained: list[str] = []
    masked: list[str] = []
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or keep[i] != keep[start]:
            (trained if keep[start] else masked).append(decode_run(ids[start:i], tokenizer, media_token_ids))
            start = i
    return trained, masked


def decode_run(ids: list[int], tokenizer, media_token_ids) -> str:
    """Decode tokens, collapsing each run of media placeholder tokens to `<token>*count`."""
    out, start = [], 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or (ids[i] in media_token_ids) != (ids[start] in media_token_ids) or (
                ids[start] in media_token_ids and ids[i] != ids[start]):
            chunk = ids[start:i]
            if chunk[0] in media_token_ids:
                out.append(f"{tokenizer.convert_ids_to_tokens(chunk[0])}*{len(chunk)}")
            else:
                out.append(tokenizer.decode(chunk))
            start = i
    return "".join(out)


def script_arguments_from_recipe(path: str) -> tuple[SFTScriptArguments, dict]:
    """Our dataclass from a recipe YAML (the SFTConfig/ModelConfig keys are returned, not validated: a GPU
    recipe must be inspectable on a laptop)."""
    recipe = settings.load_yaml(path)
    ours = {f.name for f in dataclasses.fields(SFTScriptArguments)} | set(SFTScriptArguments.RENAMED)
    return settings.build(SFTScriptArguments, {k: v for k, v in recipe.items() if k in ours}), recipe


def recorded_budget_fields(paths: list[str], image_root: str | None) -> dict[str, int]:
    """The per-kind SFT fields of the first row that records its pixel budgets ({} when none does)."""
    for path in paths:
        rows, _ = read_data_file(path, image_root)
        for row in rows:
            budgets = recorded_budgets(row.trajectory.meta)
            if budgets is not None:
                return budget_fields(budgets)
    return {}


def default_max_length() -> int | None:
    """TRL's default, which a recipe without `max_length` trains with."""
    from trl import SFTConfig

    return next(f.default for f in dataclasses.fields(SFTConfig) if f.name == "max_length")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="an SFT recipe YAML (data, budgets, profile, model and max_length)")
    source.add_argument("--data", nargs="+", help="trajectory JSONL / released SFT JSON file(s)")
    ap.add_argument("--model", help="model or processor directory (required with --data)")
    ap.add_argument("--image_root", help="with --data: directory relative media paths resolve against")
    ap.add_argument("--profile", help="with --data: protocol profile (default: each trajectory's own)")
    ap.add_argument("-n", type=int, default=3, help="samples to show (default 3; 0 = all)")
    ap.add_argument("--json", action="store_true", help="one JSON object per sample")
    a = ap.parse_args(argv)
    if a.config:
        args, recipe = script_arguments_from_recipe(a.config)
        model, max_length = recipe.get("model_name_or_path"), recipe.get("max_length", default_max_length())
        revision = recipe.get("model_revision", "main")
    else:
        if not a.model:
            ap.error("--data needs --model (the processor to tokenize with)")
        args = SFTScriptArguments(data_files=a.data, image_root=a.image_root, profile=a.profile,
                                  **recorded_budget_fields(a.data, a.image_root))
        model, max_length, revision = a.model, None, "main"
    processor = load_processor(model, args.budgets(), revision)
    prepared = prepare_samples(args, processor, max_length, progress=False)
    for problem in prepared.problems:
        print(f"invalid: {problem}", file=sys.stderr)
    collator = TrajectoryCollator(processor, args.budgets(), args.video_fps)
    samples = prepared.samples if a.n <= 0 else prepared.samples[: a.n]
    for index, spec in enumerate(samples):
        encoded = collator.encode(spec)
        trained, masked = mask_spans(encoded["input_ids"], encoded["labels"], processor.tokenizer,
                                     collator.media_token_ids)
        if a.json:
            print(json.dumps({"index": index, "id": spec.id, "source": spec.source, "row": spec.index,
                              "trained": trained, "masked": masked}, ensure_ascii=False))
            continue
        n_trained = int((encoded["labels"] != IGNORE_INDEX).sum())
        print(f"== [{index}] {spec.id} ({spec.source} row {spec.index}): {len(encoded['input_ids'])} tokens, "
              f"{n_trained} trained in {len(trained)} span(s)")
        for k, span in enumerate(trained):
            print(f"  trained[{k}]: {span!r}")
    return 1 if prepared.problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Make the models an RL run saves loadable as vision-language models.

OpenRLHF saves the policy's weights, config and tokenizer (`--ckpt.output_dir`, and `--ckpt.save_hf` checkpoints
`<ckpt.path>/*_hf`) but not the image/video processor, so vLLM, transformers' `AutoProcessor` and
`python -m eval run` cannot load a Qwen2.5-VL trained with it. After training, the launcher copies the warm-start
model's processor files into every saved model that lacks them (the processor is not trained, so the warm-start's
is the right one); files already present are never overwritten.
"""
from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile

logger = logging.getLogger(__name__)

PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json")


def saved_models(output_dir: str, ckpt_path: str | None) -> list[str]:
    """The final model and every HF checkpoint of a run (directories with a config.json)."""
    candidates = [output_dir] + sorted(glob.glob(os.path.join(ckpt_path or "", "*_hf")) if ckpt_path else [])
    return [d for d in candidates if os.path.isfile(os.path.join(d, "config.json"))]


def _processor_files(base_model: str, scratch: str) -> list[str]:
    if os.path.isdir(base_model):
        return [os.path.join(base_model, name) for name in PROCESSOR_FILES
                if os.path.isfile(os.path.join(base_model, name))]
    from transformers import AutoProcessor  # a hub id: let transformers resolve it, keep only the processor files

    AutoProcessor.from_pretrained(base_model).save_pretrained(scratch)
    return [os.path.join(scratch, name) for name in PROCESSOR_FILES if os.path.isfile(os.path.join(scratch, name))]


def add_processor_files(base_model: str, targets: list[str]) -> dict[str, list[str]]:
    """Copy the base model's processor files into each target that lacks them; returns what was copied where."""
    copied: dict[str, list[str]] = {}
    if not targets:
        return copied
    with tempfile.TemporaryDirectory() as scratch:
        files = _processor_files(base_model, scratch)
        if not files:
            logger.warning("%s has no processor files (%s); saved models stay without them", base_model,
                           ", ".join(PROCESSOR_FILES))
            return copied
        for target in targets:
            for path in files:
                destination = os.path.join(target, os.path.basename(path))
                if not os.path.exists(destination):
                    shutil.copyfile(path, destination)
                    copied.setdefault(target, []).append(os.path.basename(path))
    for target, names in copied.items():
        logger.info("added the warm-start model's processor (%s) to %s", ", ".join(names), target)
    return copied


def complete_run_outputs(args) -> dict[str, list[str]]:
    """After an RL run (upstream's hierarchical args): the warm-start model's processor into every saved model.
    Called by the launcher and by a patched `train_ppo_ray` (`patch_hooks.finish_run`)."""
    return add_processor_files(args.actor.model_name_or_path, saved_models(args.ckpt.output_dir, args.ckpt.path))

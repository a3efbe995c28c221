"""SFT warm start of a pixel-space reasoning VLM (the paper's phase 1), in Open-R1's recipe style.

    accelerate launch --config_file recipes/accelerate/zero2.yaml open_r1_ext/sft.py --config recipes/sft_7b.yaml
    accelerate launch --config_file recipes/accelerate/cpu.yaml open_r1_ext/sft.py --config recipes/sft_tiny_cpu.yaml

Flags override the YAML (`--learning_rate 2e-6`). Read top to bottom: parse -> processor -> validate data ->
model -> log the resolved config -> train (resuming from the last checkpoint in `output_dir`) -> save.
Loss masking lives in `open_r1_ext.collator`; see docs/sft.md for every knob and the masking rules.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

import transformers
from transformers.trainer_utils import get_last_checkpoint
from trl import ModelConfig, SFTConfig, TrlParser, get_peft_config

from pixel_reasoner.config import to_dict
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.settings import upgrade_flags, upgrade_names

from open_r1_ext.collator import TrajectoryCollator
from open_r1_ext.config import SFTScriptArguments
from open_r1_ext.dataset import enforce_policy, prepare_samples, to_train_dataset
from open_r1_ext.loss import trainer_class
from open_r1_ext.sampling import with_batch_sampling
from open_r1_ext.modeling import freeze_vision_tower, load_model, load_processor, resolve_attn_implementation

logger = logging.getLogger("open_r1_ext.sft")
RUN_CONFIG_FILE = "sft_run_config.json"
VALIDATION_REPORT_FILE = "data_validation.json"


class SFTParser(TrlParser):
    """TRL's parser over (SFTScriptArguments, SFTConfig, ModelConfig), reading renamed fields by their old names
    too (recipe keys and flags), with a warning naming the new one (`pixel_reasoner.settings`)."""

    def set_defaults_with_config(self, **kwargs) -> list[str]:
        return super().set_defaults_with_config(**upgrade_names(SFTScriptArguments, kwargs))

    def parse_args_and_config(self, args=None, **kwargs):
        argv = list(sys.argv[1:] if args is None else args)
        return super().parse_args_and_config(upgrade_flags(argv, SFTScriptArguments.RENAMED), **kwargs)


def parse_args(argv: list[str] | None = None) -> tuple[SFTScriptArguments, SFTConfig, ModelConfig]:
    return SFTParser((SFTScriptArguments, SFTConfig, ModelConfig)).parse_args_and_config(argv)


def setup_logging(training_args: SFTConfig) -> None:
    """Root handler on stdout, at INFO on the logging process (our own logger: `prepare_training`); libraries at
    `log_level`."""
    level = logging.INFO if training_args.should_log else logging.WARNING
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=[logging.StreamHandler(sys.stdout)], level=level)
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())


def reconcile(training_args: SFTConfig) -> None:
    """TRL options our collator replaces: set them so TRL's own checks do not fire on our dataset rows."""
    if training_args.remove_unused_columns:
        logger.info("remove_unused_columns -> false: the collator reads the `sample` column")
        training_args.remove_unused_columns = False
    if training_args.assistant_only_loss:
        logger.info("assistant_only_loss -> false: open_r1_ext's collator always masks by per-turn loss flags")
        training_args.assistant_only_loss = False


def resolved_config(script_args, training_args, model_args, attn_implementation, prepared, frozen) -> dict:
    import torch
    import trl

    profiles = sorted({s.profile for s in prepared.samples})
    return {
        "script": asdict(script_args), "budgets": to_dict(script_args.budgets()),
        "profiles": {name: get_profile(name).summary() for name in profiles},
        "model": {**asdict(model_args), "attn_implementation_resolved": attn_implementation,
                  "frozen_vision_parameters": frozen},
        "training": training_args.to_dict(),
        "data": {k: v for k, v in prepared.report().items() if k != "problems"},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
    }


@dataclass
class PreparedTraining:
    """Everything `SFTTrainer` needs besides the training arguments; also what a patched Open-R1 `sft.py`
    (patches/open-r1) builds its trainer from."""

    processor: Any  # with our chat template and pixel bounds covering the budgets
    model: Any  # vision tower frozen when `freeze_vision_tower`
    train_dataset: Any  # validated samples (datasets.Dataset with a `sample` column)
    collator: TrajectoryCollator  # renders, loads media and masks the loss by per-turn flags
    config: dict  # the resolved configuration, also written to <output_dir>/sft_run_config.json
    trainer_class: type  # TokenMeanSFTTrainer or SampleMeanSFTTrainer (`loss_averaging`), with `batch_sampling`


def check_training_args(training_args: SFTConfig) -> None:
    """Options that cannot work with our collator and template: refuse them before anything is loaded."""
    strategy = getattr(training_args.eval_strategy, "value", training_args.eval_strategy)
    if strategy != "no":
        raise ConfigError(f"eval_strategy={strategy}: Pixel Reasoner SFT has no evaluation split; set "
                          "eval_strategy: no (evaluate saved checkpoints with the eval package, docs/eval.md)")
    for name in ("chat_template", "chat_template_path"):
        if getattr(training_args, name, None):
            raise ConfigError(f"{name} is set, but the processor must use pixel_reasoner's chat template (tool "
                              "schemas and the generation markers the loss mask comes from): remove it")


def prepare_training(script_args: SFTScriptArguments, training_args: SFTConfig,
                     model_args: ModelConfig) -> PreparedTraining:
    """Processor -> validated data -> model -> resolved config (written on the main process) -> collator."""
    logging.getLogger("open_r1_ext").setLevel(logging.INFO if training_args.should_log else logging.WARNING)
    reconcile(training_args)
    check_training_args(training_args)
    if not model_args.model_name_or_path:
        raise SystemExit("model_name_or_path is not set: give it in the recipe or with --model_name_or_path")
    budgets = script_args.budgets()
    processor = load_processor(model_args.model_name_or_path, budgets, model_args.model_revision,
                               training_args.trust_remote_code)

    report_path = script_args.validation_report or os.path.join(training_args.output_dir, VALIDATION_REPORT_FILE)
    prepared = prepare_samples(script_args, processor, training_args.max_length,
                               progress=training_args.process_index == 0)
    enforce_policy(prepared, report_path if training_args.process_index == 0 else None)
    train_dataset = to_train_dataset(prepared.samples)
    logger.info("training on %d samples from %d file(s)", len(train_dataset), len(script_args.data_files))

    attn_implementation = resolve_attn_implementation(model_args.attn_implementation)
    model = load_model(model_args.model_name_or_path, model_args.dtype, attn_implementation,
                       model_args.model_revision, training_args.trust_remote_code)
    frozen = freeze_vision_tower(model) if script_args.freeze_vision_tower else 0
    if training_args.gradient_checkpointing:
        model.config.use_cache = False

    config = resolved_config(script_args, training_args, model_args, attn_implementation, prepared, frozen)
    logger.info("resolved config:\n%s", json.dumps(config, indent=2, default=str))
    if training_args.process_index == 0:
        os.makedirs(training_args.output_dir, exist_ok=True)
        with open(os.path.join(training_args.output_dir, RUN_CONFIG_FILE), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, default=str)

    # Qwen2.5-VL: batches with a video get the reference M-RoPE positions (transformers' differ after a video)
    tokens_per_second = model.config.vision_config.tokens_per_second \
        if model.config.model_type == "qwen2_5_vl" else None
    collator = TrajectoryCollator(processor, budgets, script_args.video_fps, training_args.pad_to_multiple_of,
                                  tokens_per_second)
    return PreparedTraining(processor, model, train_dataset, collator, config,
                            with_batch_sampling(trainer_class(script_args.loss_averaging),
                                                script_args.batch_sampling, script_args.sort_step_by_length))


def main(script_args: SFTScriptArguments, training_args: SFTConfig, model_args: ModelConfig) -> None:
    setup_logging(training_args)
    prepared = prepare_training(script_args, training_args, model_args)
    trainer = prepared.trainer_class(model=prepared.model, args=training_args, train_dataset=prepared.train_dataset,
                                     processing_class=prepared.processor, data_collator=prepared.collator,
                                     peft_config=get_peft_config(model_args))

    last_checkpoint = get_last_checkpoint(training_args.output_dir) if os.path.isdir(training_args.output_dir) else None
    checkpoint = training_args.resume_from_checkpoint or last_checkpoint
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    trainer.save_model(training_args.output_dir)  # with the processor and our chat template
    logger.info("model saved to %s", training_args.output_dir)


if __name__ == "__main__":
    main(*parse_args())

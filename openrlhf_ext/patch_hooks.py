"""What a patched OpenRLHF calls: our RL stage inside upstream's own `python -m openrlhf.cli.train_ppo_ray`.

`python -m patches apply --target DIR` (patches/openrlhf/0.11.2; `scripts/install.sh` does it for the installed
OpenRLHF) adds a handful of lines to upstream's code; each calls one function here, and `python -m
openrlhf_ext.train` is that patched CLI with `--pr.enable`. In the patched files, in order:

- `from openrlhf_ext import patch_hooks as pixel_reasoner` (train_ppo_ray.py before upstream's own imports, and
  ppo_trainer_async.py; vllm_engine.py takes the engine options as a parameter): importing this module installs the flash-attn stub where flash-attn is missing (a no-op
  where it is installed; upstream's model code imports flash-attn at module level). It imports nothing heavy.
- `add_arguments(parser)`: `--pr.enable`, `--pr.dry_run` and every `--pr.*` flag of ours.
- `on_parsed(args, parser)` right after upstream's `hierarchize`: with `--pr.enable`, defaults
  `--train.agent_func_path` to our agent (before upstream reads it) and records the flags given (upstream's
  post-processing rewrites some of them next; validation names the flag that caused a problem).
- `prepare_run(args)`, the first statement of `train`: validates, prints the resolved configuration
  (`--pr.dry_run` stops here), writes `config.json`, attaches our `RunConfig` to `args` (upstream hands `args` to
  every actor), and starts Ray with our runtime_env; upstream then skips its own `ray.init`.
- `vllm_engine_options(args)` in the call of `create_vllm_engines`: extra vLLM engine arguments (CPU mode's
  worker extension `openrlhf_ext.cpu_worker.CpuWorkerWrap` and its settings; none on a GPU).
- `actor_class(args, cls)` where upstream picks the class of its sync trainer (`PPOTrainer`) and, in async mode,
  of its rollout and training actors (`GenerateSamplesActor`, `TrainingActor`): our Ray actor subclass of it.
- `finish_run(args)`, the last statement of `train`, after upstream saved the model: the warm-start model's
  processor files copied into the saved models, so eval and vLLM can load them.
- `vlm_position_ids(config, sequences, attention_mask, mm_inputs)` in `Actor.forward` (models/actor.py): for a
  Qwen2.5-VL batch with a video, the M-RoPE positions of Qwen's reference implementation and vLLM
  (`pixel_reasoner.mrope`), which transformers 5.19 gets wrong for the text after a video; None (the model's
  own positions) otherwise. A correctness fix, so it does not depend on `--pr.enable`.

Without `--pr.enable` every other hook returns at once: the patched checkout runs what upstream runs.
"""
from __future__ import annotations

import argparse
import os
import sys

from openrlhf_ext.compat import install_flash_attn_stub

AGENT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent.py")

install_flash_attn_stub()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from openrlhf_ext import train

    group = parser.add_argument_group("Pixel Reasoner (added by python -m patches; see docs/patches.md)")
    group.add_argument("--pr.enable", action="store_true", default=False,
                       help="train with Pixel Reasoner's agent (default --train.agent_func_path), curiosity "
                            "reward and selective sample replay; every --pr.* flag below needs it")
    group.add_argument("--pr.dry_run", action="store_true", default=False,
                       help="with --pr.enable: validate, print the resolved configuration and exit before Ray "
                            "starts (exit status 0 valid, 2 not)")
    train.add_pr_arguments(parser)


def enabled(args) -> bool:
    """`--pr.enable` was given (`is True`: upstream's own tests call `train()` with a MagicMock)."""
    return getattr(getattr(args, "pr", None), "enable", False) is True


def on_parsed(args, parser: argparse.ArgumentParser) -> None:
    """Right after `hierarchize`, before upstream's post-processing."""
    from openrlhf_ext.train import flatten

    given = {key: value for key, value in flatten(args).items() if value != parser.get_default(key)}
    if not enabled(args):
        ours = sorted(key for key in given if key.startswith("pr."))
        if ours:
            parser.error(f"{', '.join('--' + key for key in ours)} given without --pr.enable (they would be ignored)")
        return
    args.pr.given = {key: value for key, value in given.items() if not key.startswith("pr.")}
    if not args.train.agent_func_path:
        args.train.agent_func_path = AGENT_FILE


def prepare_run(args) -> None:
    """First statement of upstream's `train(args)`."""
    if not enabled(args):
        return
    from openrlhf_ext import train

    launch = configure_run(args)
    train.init_ray(args, launch.run)


def configure_run(args):
    """Everything `prepare_run` does before Ray starts (tests build a trainer in-process after it)."""
    from openrlhf_ext import train
    from pixel_reasoner.errors import ConfigError

    try:
        launch = train.launch_from_args(args)
    except ConfigError as err:
        print(f"ERROR: {err}\n==> nothing was started", file=sys.stderr)
        raise SystemExit(2) from None
    problems = train.validate(launch)
    train.report(launch, problems)
    if problems.errors:
        print(f"==> {len(problems.errors)} error(s); nothing was started", file=sys.stderr)
        raise SystemExit(2)
    if launch.dry_run:
        print("==> dry run (--pr.dry_run): configuration valid; exiting without training")
        raise SystemExit(0)
    train.prepare_processes(launch, args)
    return launch


def actor_class(args, upstream_cls):
    """Our Ray actor subclass of the upstream actor class `train` (or the async trainer) is about to create."""
    if not enabled(args):
        return upstream_cls
    from openrlhf_ext import trainer

    return trainer.subclass_of(upstream_cls)


def vllm_engine_options(args) -> dict | None:
    """Extra vLLM engine arguments for `create_vllm_engines`: CPU mode's worker extension, else none."""
    if not enabled(args):
        return None
    from openrlhf_ext.run_config import of

    cpu = of(args).cpu
    if not cpu.enabled:
        return None
    from openrlhf_ext.cpu_worker import engine_options

    return engine_options(cpu)


def vlm_position_ids(config, sequences, attention_mask, mm_inputs: dict):
    """Explicit positions for a Qwen2.5-VL batch with a video (see `pixel_reasoner.mrope`), else None."""
    if getattr(config, "model_type", None) != "qwen2_5_vl" or "video_grid_thw" not in mm_inputs:
        return None
    import torch

    from pixel_reasoner.mrope import batch_positions

    def array(key: str):
        return mm_inputs[key].cpu().numpy() if key in mm_inputs else None

    vision = config.vision_config
    positions = batch_positions(sequences.cpu().numpy(), attention_mask.cpu().numpy(), array("image_grid_thw"),
                                array("video_grid_thw"), array("second_per_grid_ts"),
                                image_token_id=config.image_token_id, video_token_id=config.video_token_id,
                                spatial_merge_size=vision.spatial_merge_size,
                                tokens_per_second=vision.tokens_per_second)
    return torch.from_numpy(positions).to(sequences.device)


def finish_run(args) -> None:
    """Last statement of upstream's `train(args)`, after the model is saved."""
    if not enabled(args):
        return
    from openrlhf_ext.saved_model import complete_run_outputs

    complete_run_outputs(args)

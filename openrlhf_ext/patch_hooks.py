"""What a patched OpenRLHF calls: our RL stage inside upstream's own `python -m openrlhf.cli.train_ppo_ray`.

`python -m patches apply --target CHECKOUT` (patches/openrlhf/0.11.2) adds a handful of lines to upstream's
`openrlhf/cli/train_ppo_ray.py`; each calls one function here, and these reuse the launcher's own pieces
(`openrlhf_ext.train`), so a patched fork and `python -m openrlhf_ext.train` parse, validate, log and train
identically. In the patched file, in order:

- `from openrlhf_ext import patch_hooks as pixel_reasoner` (before upstream's own imports): importing this
  module installs the flash-attn stub where flash-attn is missing (a no-op where it is installed; upstream's
  model code imports flash-attn at module level) and, in CPU mode, the CPU patches.
- `add_arguments(parser)`: `--pr.enable`, `--pr.dry_run` and every `--pr.*` flag of the launcher.
- `on_parsed(args, parser)` right after upstream's `hierarchize`: with `--pr.enable`, defaults
  `--train.agent_func_path` to our agent (before upstream reads it) and records the flags given (upstream's
  post-processing rewrites some of them next; validation names the flag that caused a problem).
- `prepare_run(args)`, the first statement of `train`: validates exactly as the launcher's dry run, prints the
  resolved configuration (`--pr.dry_run` stops here), writes `config.json`, exports our configurations and
  starts Ray with our runtime_env; upstream then skips its own `ray.init`.
- `trainer_class(args, PPOTrainer)` after upstream picks its trainer: our Ray actor subclass of it (curiosity
  reward and selective sample replay in the experience maker), sync or async.
- `finish_run(args)`, the last statement of `train`, after upstream saved the model: the warm-start model's
  processor files copied into the saved models (as the launcher does), so eval and vLLM can load them.

Without `--pr.enable` every hook returns at once: the patched checkout runs everything upstream runs.
"""
from __future__ import annotations

import argparse
import os
import sys
from types import SimpleNamespace

from openrlhf_ext import cpu_mode, rl_config, train
from openrlhf_ext.compat import install_flash_attn_stub
from openrlhf_ext.rl_config import RLConfig
from openrlhf_ext.upstream_cli import UpstreamParse
from pixel_reasoner.errors import ConfigError

AGENT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent.py")

install_flash_attn_stub()
if cpu_mode.enabled():
    cpu_mode.install()


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def _flatten(namespace: SimpleNamespace, prefix: str = "") -> dict:
    flat = {}
    for key, value in vars(namespace).items():
        if isinstance(value, SimpleNamespace):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def on_parsed(args, parser: argparse.ArgumentParser) -> None:
    """Right after `hierarchize`, before upstream's post-processing."""
    given = {key: value for key, value in _flatten(args).items() if value != parser.get_default(key)}
    if not enabled(args):
        ours = sorted(key for key in given if key.startswith("pr."))
        if ours:
            parser.error(f"{', '.join('--' + key for key in ours)} given without --pr.enable (they would be ignored)")
        return
    args.pr.given = {key: value for key, value in given.items() if not key.startswith("pr.")}
    if not args.train.agent_func_path:
        args.train.agent_func_path = AGENT_FILE


def launch_from_args(args) -> train.Launch:
    """The launcher's view of a run from upstream's post-processed namespace (our flags live in `args.pr`)."""
    if not isinstance(getattr(args.pr, "given", None), dict):
        raise ConfigError("pixel_reasoner.on_parsed(args, parser) must run right after hierarchize(args) in "
                          "train_ppo_ray's main block (is the patch fully applied?)")
    ours = argparse.Namespace(**_flatten(args.pr, "pr."))
    config = rl_config.from_namespace(ours, RLConfig)
    rollout = train.rollout_from_namespace(ours)
    upstream_args = SimpleNamespace(**{key: value for key, value in vars(args).items() if key != "pr"})
    upstream = UpstreamParse(args=upstream_args, flat=dict(args.pr.given), messages="")
    return train.Launch(train.resolve(config, upstream), rollout, list(sys.argv[1:]), upstream, args.pr.dry_run)


def prepare_run(args) -> None:
    """First statement of upstream's `train(args)`."""
    if not enabled(args):
        return
    configure_run(args)
    train.init_ray(args)


def configure_run(args) -> train.Launch:
    """Everything `prepare_run` does before Ray starts (tests build a trainer in-process after it)."""
    launch = launch_from_args(args)
    train.export_configs(launch)
    problems = train.validate(launch)
    train.report(launch, problems)
    if problems.errors:
        print(f"==> {len(problems.errors)} error(s); nothing was started", file=sys.stderr)
        raise SystemExit(2)
    if launch.dry_run:
        print("==> dry run (--pr.dry_run): configuration valid; exiting without training")
        raise SystemExit(0)
    train.prepare_processes(launch)
    return launch


def trainer_class(args, upstream_cls):
    """Our trainer actor in place of upstream's `PPOTrainer` / `PPOTrainerAsync` (whichever `train` chose)."""
    if not enabled(args):
        return upstream_cls
    from openrlhf_ext import trainer

    for ours in (trainer.PixelReasonerPPOTrainer, trainer.PixelReasonerPPOTrainerAsync):
        if upstream_cls.__ray_actor_class__ in ours.__ray_actor_class__.__bases__:
            return ours
    raise ConfigError(f"--pr.enable: no Pixel Reasoner trainer extends {upstream_cls.__ray_actor_class__!r}; "
                      "openrlhf_ext.trainer subclasses openrlhf.trainer.ppo_trainer.PPOTrainer and "
                      "ppo_trainer_async.PPOTrainerAsync as they are when it is imported")


def finish_run(args) -> None:
    """Last statement of upstream's `train(args)`, after the model is saved."""
    if not enabled(args):
        return
    from openrlhf_ext.saved_model import complete_run_outputs

    complete_run_outputs(args)

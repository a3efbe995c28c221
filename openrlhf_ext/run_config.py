"""Our whole configuration of one RL run, resolved once in the driver and handed to every Ray actor.

The launcher (`patch_hooks.prepare_run`) builds a `RunConfig` from the `--pr.*` flags (and the rollout config
file of `--pr.rollout_config`), prints it, saves it in the run's `config.json`, and attaches it to upstream's own
argument namespace (`args.pr.run`). Upstream pickles that namespace into every actor it creates (it travels in
the DeepSpeed strategy), so our trainer classes read it from `self.args` and the agent receives its part inside
the `RolloutContext` of each rollout request: no environment variable, no file in the working directory.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from openrlhf_ext.cpu_mode import CpuModeConfig
from openrlhf_ext.rl_config import RLConfig
from openrlhf_ext.rollout_config import RolloutConfig
from pixel_reasoner.errors import ConfigError


@dataclass(frozen=True)
class RunConfig:
    rl: RLConfig = field(default_factory=RLConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    cpu: CpuModeConfig = field(default_factory=CpuModeConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def attach(args: Any, run: RunConfig) -> None:
    """Put the resolved configuration into upstream's namespace (under `args.pr`, where our flags already are)."""
    args.pr.run = run


def of(args: Any) -> RunConfig:
    """The run's configuration inside any actor (from the arguments upstream handed it)."""
    run = getattr(getattr(args, "pr", None), "run", None)
    if not isinstance(run, RunConfig):
        raise ConfigError("the Pixel Reasoner configuration is missing from OpenRLHF's arguments (args.pr.run): start "
                          "the run with `python -m openrlhf_ext.train` or `python -m openrlhf.cli.train_ppo_ray "
                          "--pr.enable` on an OpenRLHF patched by `python -m patches apply` (docs/rl.md)")
    return run

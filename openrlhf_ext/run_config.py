"""Our whole configuration of one RL run: the recipe's `pixel_reasoner` section, the `--pr.*` flags.

One dataclass tree on the configuration layer every stage uses (`pixel_reasoner.settings`): each field is a key of
the recipe's `pixel_reasoner` section and a flag `--pr.<path>` (`--pr.ssr.capacity 4096`,
`--pr.rollout.budget_preset paper_rl`, `--pr.set rewards.settings.curiosity.weight=0.5`). The launcher resolves it
once in the driver, prints it, saves it in the run's `config.json`, and attaches it to upstream's own argument
namespace (`args.pr.run`). Upstream pickles that namespace into every actor it creates (it travels in the
DeepSpeed strategy), so our trainer classes read it from `self.args` and the agent receives its part inside the
`RolloutContext` of each rollout request: no environment variable, no file in the working directory.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from openrlhf_ext.cpu_mode import CpuModeConfig
from openrlhf_ext.rollout_config import RolloutConfig
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.rewards.shaping import RewardConfig
from pixel_reasoner.settings import option
from pixel_reasoner.ssr import SSRConfig

FLAG_PREFIX = "pr"  # our flags sit next to upstream's: --pr.<path>
RECIPE_SECTION = "pixel_reasoner"  # our section of an RL recipe (`openrlhf` holds upstream's flags)


@dataclass(frozen=True)
class RunLogConfig:
    """Where the run's own records go: config.json, metrics.jsonl (one line per step), groups.jsonl, summary.md.

    On a multi-node cluster `run_dir` must be on a filesystem every node sees (the RL controller may be scheduled
    on any node)."""

    run_dir: str | None = option(None, help="The run's records; default: <ckpt.output_dir>/pixel_reasoner.")
    group_records: bool = option(True, help=(
        "One JSON line per query group: rewards by term, n_vo, 1_PR, RaPR, advantages (groups.jsonl)."))
    uniform_tolerance: float = option(1e-6, help=(
        "A group counts as reward-uniform (zero advantage, the paper's Fig. 9) when max - min <= this."))
    sample_means: tuple[str, ...] = option(
        ("num_operations", "num_operation_errors", "num_images", "turns", "answered", "truncated", "correct"), help=(
            "Per-sample agent logs whose mean over each step's fresh rollout is logged as `agent/<key>_mean` "
            "(upstream averages per-sample values over what the actors trained on, which with SSR includes "
            "replays); keys the samples do not carry are left out."))

    def __post_init__(self) -> None:
        if self.uniform_tolerance < 0:
            raise ConfigError(f"uniform_tolerance={self.uniform_tolerance} must be >= 0")


@dataclass(frozen=True)
class RunConfig:
    rewards: RewardConfig = option(factory=RewardConfig, help="The reward terms and their settings (weights).")
    ssr: SSRConfig = option(factory=SSRConfig, help="Selective sample replay.")
    rollout: RolloutConfig = option(factory=RolloutConfig, help="The rollout agent.")
    log: RunLogConfig = option(factory=RunLogConfig, help="The run's records.")
    cpu: CpuModeConfig = option(factory=CpuModeConfig, help="CPU mode (debugging and CI only).")

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "rewards": self.rewards.to_dict()}


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

"""Launch Pixel Reasoner RL: upstream OpenRLHF's `train_ppo_ray`, patched with our hooks, runs our stage.

    python -m openrlhf_ext.train --config recipes/rl_7b.yaml [--dry-run] [--pr.<path> VALUE ...] [upstream flags]

is `python -m openrlhf.cli.train_ppo_ray --pr.enable [--pr.dry_run] ...` on the installed OpenRLHF, after checking
that it carries our patch (`patches/openrlhf/0.11.2`, applied by `scripts/install.sh`; otherwise it refuses and
says how to apply it). An RL recipe is one YAML file with two sections: `openrlhf` (upstream's flags as a nested
mapping: `actor: {adam: {lr: 1.0e-6}}` is `--actor.adam.lr 1.0e-6`) and `pixel_reasoner` (our `RunConfig`, the
`--pr.*` flags). `--config FILE` becomes upstream's flags of the first section plus `--pr.config FILE` for the
second; flags given after it override both (`recipe_argv`). Upstream parses and post-processes every flag itself;
the patch's hook calls (`openrlhf_ext.patch_hooks`) then run, in order, the functions of this module:
1. `launch_from_args`: our settings (the recipe's `pixel_reasoner` section, `--pr.set`, the `--pr.*` flags; old
   names read by `openrlhf_ext.old_names`) resolved against upstream's post-processed namespace into one `RunConfig`.
2. `validate`: the named checks of `CHECKS`, each what upstream lets through but breaks for VLMs or for our stage.
3. `report`: the fully resolved configuration (ours + upstream's namespace + the command). `--dry-run` stops
   here (exit 0 when valid, 2 when not); it needs no GPU and starts nothing.
4. `prepare_processes` and `init_ray`: `config.json` in the run directory, the `RunConfig` attached to upstream's
   arguments (`args.pr.run`: Ray ships it to every actor), in CPU mode the CPU shims, and Ray started with a
   runtime_env carrying PYTHONPATH and the worker setup hook. Upstream's own `train()` then drives everything,
   with our trainer and rollout actor classes (`patch_hooks.actor_class`).

Run it directly, or as a Ray job: `ray job submit --address http://HEAD:8265 -- bash recipes/rl_7b.sh`.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import logging
import os
import shlex
import sys
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable, List

from openrlhf_ext import controller_memory, cpu_mode, old_names
from openrlhf_ext.labels import TaskLabel
from openrlhf_ext.rollout_config import RolloutConfig
from openrlhf_ext.run_config import FLAG_PREFIX, RECIPE_SECTION, RunConfig
from pixel_reasoner import settings
from pixel_reasoner.budget_check import compare_with_checkpoint
from pixel_reasoner.errors import ConfigError, DataError
from pixel_reasoner.jsonl import jsonl_lines
from pixel_reasoner.rewards.base import GroupRewardTerm
from pixel_reasoner.ssr import target_size

logger = logging.getLogger("openrlhf_ext.train")

UPSTREAM_MODULE = "openrlhf.cli.train_ppo_ray"
UPSTREAM_SECTION = "openrlhf"  # upstream's flags in an RL recipe
PATH_FLAGS = ("data.prompt_dataset", "eval.dataset", "ckpt.output_dir", "ckpt.path", "train.agent_func_path")
GROUP_ESTIMATORS = ("group_norm", "dr_grpo", "rloo", "reinforce_baseline")
# reinforce_baseline whitens advantages over the whole batch afterwards: reward-uniform groups get −mean/std ≠ 0
SSR_ESTIMATORS = ("dr_grpo", "group_norm", "rloo")
ESTIMATOR_FORMS = {
    "dr_grpo": "A = r − mean(group): the official code's GRPO; α and β keep their scale",
    "group_norm": "A = (r − mean(group)) / std(group): α and β are scale-free in correctness-uniform groups",
    "rloo": "A = r − mean(other samples of the group)",
    "reinforce_baseline": "A = r − mean(group), then whitened over the whole batch",
}
WORKER_SETUP_HOOK = "openrlhf_ext.compat.install_flash_attn_stub"


@dataclass
class Problems:
    errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


# ---------------------------------------------------------------- command line

def add_pr_arguments(parser: argparse.ArgumentParser) -> None:
    """Our flags (`--pr.config`, `--pr.set`, `--pr.<path>` of `RunConfig`, and the old names), added to upstream's
    parser by the patch."""
    settings.add_arguments(parser, RunConfig, prefix=FLAG_PREFIX)
    old_names.add_arguments(parser)


def recipe_argv(path: str) -> List[str]:
    """An RL recipe as command-line arguments: upstream's flags of its `openrlhf` section, and `--pr.config` for
    its `pixel_reasoner` section. A true boolean is the bare flag, a false or null value is left out, a list
    gives several values; the path flags of `PATH_FLAGS` are made absolute."""
    recipe = settings.load_yaml(path)
    unknown = sorted(set(recipe) - {UPSTREAM_SECTION, RECIPE_SECTION})
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; an RL recipe has `{UPSTREAM_SECTION}` (upstream's "
                          f"flags) and `{RECIPE_SECTION}` (ours)")
    upstream = recipe.get(UPSTREAM_SECTION) or {}
    if not isinstance(upstream, dict):
        raise ConfigError(f"{path}: `{UPSTREAM_SECTION}` must be a mapping of upstream's flags")
    argv: List[str] = []
    for flag, value in settings.flat(upstream).items():
        if flag in PATH_FLAGS and isinstance(value, str):
            value = os.path.abspath(value)  # Ray actors need not share the launcher's working directory
        if value is True:
            argv.append(f"--{flag}")
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            argv += [f"--{flag}", *(str(v) for v in value)]
        else:
            argv += [f"--{flag}", str(value)]
    return argv + [f"--{FLAG_PREFIX}.config", path]


@dataclass(frozen=True)
class UpstreamParse:
    args: SimpleNamespace  # hierarchical, as upstream's `train(args)` receives it (post-processed)
    flat: dict  # dotted name -> value of the flags given on the command line (before upstream's rewrites)


@dataclass
class Launch:
    run: RunConfig
    upstream: UpstreamParse
    argv: List[str]
    dry_run: bool

    @property
    def rollout(self) -> RolloutConfig:
        return self.run.rollout


def flatten(namespace: SimpleNamespace, prefix: str = "") -> dict:
    flat = {}
    for key, value in vars(namespace).items():
        if isinstance(value, SimpleNamespace):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def run_config_from(ours: argparse.Namespace) -> RunConfig:
    """Our settings from the recipe's `pixel_reasoner` section, `--pr.set` and the `--pr.*` flags (old names
    included)."""
    data = settings.values(RunConfig, ours, prefix=FLAG_PREFIX, section=RECIPE_SECTION)
    return settings.build(RunConfig, old_names.with_old_names(data, ours))


def launch_from_args(args: SimpleNamespace, argv: List[str] | None = None) -> Launch:
    """Our view of a run from upstream's post-processed namespace (our flags live in `args.pr`)."""
    if not isinstance(getattr(args.pr, "given", None), dict):
        raise ConfigError("pixel_reasoner.on_parsed(args, parser) must run right after hierarchize(args) in "
                          "train_ppo_ray's main block (is the patch fully applied?)")
    ours = argparse.Namespace(**{k: v for k, v in flatten(args.pr, "pr.").items() if k != "pr.run"})
    upstream_args = SimpleNamespace(**{key: value for key, value in vars(args).items() if key != "pr"})
    upstream = UpstreamParse(upstream_args, dict(args.pr.given))
    run = resolve(run_config_from(ours), upstream_args)
    return Launch(run, upstream, list(sys.argv[1:] if argv is None else argv), bool(args.pr.dry_run))


def resolve(run: RunConfig, args: SimpleNamespace) -> RunConfig:
    """Fill the values that depend on upstream's flags, so the printed/saved config is the one that runs."""
    run_dir = run.log.run_dir or os.path.join(args.ckpt.output_dir, "pixel_reasoner")
    if run_dir != os.path.abspath(run_dir) or run.log.run_dir is None:
        run = dataclasses.replace(run, log=dataclasses.replace(run.log, run_dir=os.path.abspath(run_dir)))
    if run.ssr.capacity is None:
        run = dataclasses.replace(run, ssr=dataclasses.replace(
            run.ssr, capacity=args.rollout.batch_size * args.rollout.n_samples_per_prompt))
    return run


# ---------------------------------------------------------------- validation

def _is_local(path: str) -> bool:
    return os.path.isabs(path) or path.startswith(".") or os.path.exists(path)


def _load_agent(path: str):
    """Load the agent file the way upstream's vLLM actors do, and construct its executor."""
    from openrlhf_ext.compat import install_flash_attn_stub

    install_flash_attn_stub()
    from openrlhf.utils.agent import AgentExecutorBase

    spec = importlib.util.spec_from_file_location("pixel_reasoner_dry_run_agent", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    executor_cls = getattr(module, "AgentExecutor", None)
    if executor_cls is None or not issubclass(executor_cls, AgentExecutorBase):
        raise ConfigError(f"{path} must define `AgentExecutor`, a subclass of openrlhf.utils.agent.AgentExecutorBase")
    return executor_cls()


def _model_is_vlm(path: str) -> bool | None:
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        return None
    with open(config_path, encoding="utf-8") as f:
        return "vision_config" in json.load(f)


def _local_model(launch: Launch) -> str | None:
    """The model's directory when it is a local one that exists."""
    model = launch.upstream.args.actor.model_name_or_path
    return model if model and _is_local(model) and os.path.isdir(model) else None


def _is_vlm(launch: Launch) -> bool:
    """Whether the policy takes images: its config says so, or (a hub id) the run allows images per prompt."""
    model = _local_model(launch)
    vlm = _model_is_vlm(model) if model else None
    return vlm if vlm is not None else launch.upstream.args.data.max_images_per_prompt > 0


def _dataset_image_counts(path: str, image_key: str, label_key: str, problems: Problems) -> List[int]:
    """Images per row of a local JSONL prompt dataset (a video row shows none: its frames are one video); missing
    media files are reported."""
    counts, missing = [], []
    base = os.path.dirname(os.path.abspath(path))
    for line in jsonl_lines(path):
        if line.error is not None:
            problems.error(f"--data.prompt_dataset {path}: row {line.number}: {line.error}")
            return counts
        row = line.value
        images = row.get(image_key) or []
        images = images if isinstance(images, list) else [images]
        try:
            is_video = TaskLabel.parse(row.get(label_key, "")).is_video
        except DataError as err:
            problems.error(f"--data.prompt_dataset {path}: row {line.number}: {err}")
            return counts
        counts.append(0 if is_video else len(images))
        for image in images:
            if isinstance(image, str) and not image.startswith(("http://", "https://", "data:")):
                if not os.path.exists(image if os.path.isabs(image) else os.path.join(base, image)) \
                        and not os.path.exists(image):
                    missing.append(f"row {line.number}: {image}")
    if missing:
        problems.error(f"--data.prompt_dataset {path}: {len(missing)} image file(s) not found, e.g. "
                       f"{missing[:3]}")
    return counts


def check_model(launch: Launch, p: Problems) -> None:
    """The warm-start checkpoint is given and exists; its SFT run's pixel budgets are compared with the agent's."""
    model = launch.upstream.args.actor.model_name_or_path
    if not model:
        p.error("--actor.model_name_or_path is required (the warm-start checkpoint, e.g. "
                "TIGER-Lab/PixelReasoner-WarmStart)")
    elif not _is_local(model):
        p.warn(f"--actor.model_name_or_path {model} is not a local path; every node will resolve it from the hub")
    elif not os.path.isdir(model):
        p.error(f"--actor.model_name_or_path {model}: no such directory")
    else:
        try:
            mismatch = compare_with_checkpoint(model, launch.rollout.budgets(), "RL")
        except ConfigError as err:
            mismatch = str(err)
        if mismatch:
            p.warn(mismatch)


def check_datasets(launch: Launch, p: Problems) -> None:
    """The prompt dataset (required) and the eval dataset exist."""
    a = launch.upstream.args
    for flag, path in (("--data.prompt_dataset", a.data.prompt_dataset), ("--eval.dataset", a.eval.dataset)):
        if path and _is_local(path) and not os.path.exists(path):
            p.error(f"{flag} {path}: no such file or directory")
    if not a.data.prompt_dataset:
        p.error("--data.prompt_dataset is required (build one with `python -m openrlhf_ext.data convert`)")


def check_agent(launch: Launch, p: Problems) -> None:
    """The agent file loads the way upstream's vLLM actors load it, and there are vLLM actors to run it in."""
    a = launch.upstream.args
    agent = a.train.agent_func_path
    if not agent:
        p.error("--train.agent_func_path is required: the multi-turn agent (openrlhf_ext/agent.py) runs the "
                "visual operations and computes the reward")
    elif not os.path.isfile(agent):
        p.error(f"--train.agent_func_path {agent}: no such file")
    else:
        try:
            _load_agent(agent)
        except Exception as err:  # report any failure of user code as a validation error
            p.error(f"--train.agent_func_path {agent} does not load: {type(err).__name__}: {err}")
    if launch.upstream.flat.get("reward.remote_url") and agent:
        p.warn("--reward.remote_url is ignored when --train.agent_func_path is set (the agent computes rewards)")
    if not a.vllm.num_engines:
        p.error("--vllm.num_engines must be >= 1: the agent runs inside OpenRLHF's vLLM rollout actors")


def check_vlm_inputs(launch: Launch, p: Problems) -> None:
    """For a VLM: no sample packing (upstream turns it on after its own VLM check), an image limit that covers the
    agent's, and a processor that leaves the agent's resized images unchanged."""
    if not _is_vlm(launch):
        return
    a, flat, limits = launch.upstream.args, launch.upstream.flat, launch.rollout.limits
    if a.ds.packing_samples:
        causes = [f for f, on in (("--ds.packing_samples", flat.get("ds.packing_samples")),
                                  ("--train.dynamic_batch_enable", flat.get("train.dynamic_batch_enable")),
                                  ("--ds.ring_attn_size > 1", flat.get("ds.ring_attn_size", 1) > 1)) if on]
        p.error(f"sample packing is on (caused by {', '.join(causes)}); upstream turns it on after its VLM "
                "check, and packing breaks image-token alignment and M-RoPE positions: drop those flags")
    if a.data.max_images_per_prompt <= 0:
        p.error("--data.max_images_per_prompt must be > 0 for a VLM: it bounds dataset images plus every "
                "image a trajectory produces (crops, selected frames)")
    elif a.data.max_images_per_prompt < limits.max_images:
        p.error(f"--data.max_images_per_prompt {a.data.max_images_per_prompt} is below the agent's "
                f"limits.max_images={limits.max_images} (dataset images + every crop/frame a trajectory may "
                f"produce): set --data.max_images_per_prompt {limits.max_images} or lower "
                "--pr.rollout.limits.max_images")
    model = _local_model(launch)
    if model:
        try:
            from transformers import AutoProcessor

            from openrlhf_ext.agent import check_compatibility

            check_compatibility(launch.rollout, AutoProcessor.from_pretrained(model))
        except ConfigError as err:
            p.error(f"rollout config vs the model's processor: {err}")


def check_dataset_images(launch: Launch, p: Problems) -> None:
    """Every row of a local JSONL prompt dataset has its images, and leaves room for produced images."""
    a, limits = launch.upstream.args, launch.rollout.limits
    dataset = a.data.prompt_dataset
    if not (dataset and os.path.isfile(dataset) and dataset.endswith(".jsonl")):
        return
    counts = _dataset_image_counts(dataset, a.data.image_key, a.data.label_key, p)
    if counts and max(counts) >= limits.max_images:
        p.error(f"a dataset row has {max(counts)} images: no room for produced images under the agent's "
                f"limits.max_images={limits.max_images}; raise --pr.rollout.limits.max_images and "
                "--data.max_images_per_prompt")
    if counts and max(counts) > a.data.max_images_per_prompt:
        p.error(f"--data.max_images_per_prompt {a.data.max_images_per_prompt} is below the {max(counts)} images "
                f"of the largest dataset row; it must cover dataset images + produced images")


def check_batch_sizes(launch: Launch, p: Problems) -> None:
    """The train batch splits evenly over the data-parallel actors, and a rollout holds at least one."""
    a, ssr = launch.upstream.args, launch.run.ssr
    actors = a.actor.num_nodes * a.actor.num_gpus_per_node // max(a.ds.ring_attn_size, 1) \
        // max(a.ds.tensor_parallel_size, 1)
    per_step = a.train.micro_batch_size * max(actors, 1)
    if a.train.batch_size % per_step:
        p.error(f"--train.batch_size {a.train.batch_size} must be a multiple of --train.micro_batch_size × "
                f"data-parallel actors = {a.train.micro_batch_size} × {actors} = {per_step}")
    rollout = a.rollout.batch_size * a.rollout.n_samples_per_prompt
    if ssr.enabled:
        target = target_size(rollout, a.train.batch_size, ssr.batch_fraction)
        if rollout < a.train.batch_size:
            p.warn(f"a rollout ({rollout} samples) is smaller than --train.batch_size {a.train.batch_size}: every "
                   f"step trains on {target} samples, mostly replayed")
    elif rollout < a.train.batch_size:
        p.error(f"a rollout (--rollout.batch_size × n_samples = {rollout}) is smaller than --train.batch_size "
                f"{a.train.batch_size}: no optimizer step would ever run")
    elif rollout % a.train.batch_size:
        p.warn(f"a rollout ({rollout} samples) is not a multiple of --train.batch_size {a.train.batch_size}; the "
               "remainder is dropped every step")


def check_reward_groups(launch: Launch, p: Problems) -> None:
    """Group reward terms (the curiosity bonus) need several samples per query, and an estimator that keeps
    their scale."""
    a = launch.upstream.args
    group_terms = [t.name for t in launch.run.rewards.active()
                   if isinstance(t.term, GroupRewardTerm) and t.settings.weight > 0]
    if group_terms and a.rollout.n_samples_per_prompt < 2:
        p.error(f"the reward term(s) {group_terms} need several samples per query (RaPR is a rate over the group): "
                "set --rollout.n_samples_per_prompt > 1 (paper: 8) or remove them from pixel_reasoner.rewards.terms")
    shaping = [t.name for t in launch.run.rewards.active() if t.name != "correctness" and t.settings.weight > 0]
    if a.algo.advantage.estimator == "group_norm" and shaping:
        p.warn("--algo.advantage.estimator group_norm: α and β are scale-free: dividing by the group std gives a "
               "wrong answer that used a tool in an all-wrong group the advantage of a lone correct answer (+2.47 "
               "at n=8, whatever α is); the official code uses r − mean(group): --algo.advantage.estimator dr_grpo")


def check_ssr(launch: Launch, p: Problems) -> None:
    """SSR selects by group-relative advantage: an estimator that gives one, and bounded stale updates."""
    a, ssr = launch.upstream.args, launch.run.ssr
    n, estimator = a.rollout.n_samples_per_prompt, a.algo.advantage.estimator
    if not ssr.enabled:
        if estimator not in GROUP_ESTIMATORS:
            p.warn(f"--algo.advantage.estimator {estimator}: the paper uses GRPO (dr_grpo = the official code's form)")
        return
    if estimator == "reinforce_baseline":
        p.error("SSR with --algo.advantage.estimator reinforce_baseline: upstream whitens the advantages over "
                "the whole batch, so reward-uniform groups get a non-zero advantage and every sample passes "
                "SSR's informativeness test; use dr_grpo (the official GRPO) or --pr.ssr.enabled false")
    elif estimator not in SSR_ESTIMATORS or n < 2:
        p.error(f"SSR selects samples by their group-relative advantage: use --algo.advantage.estimator "
                f"dr_grpo (GRPO as the official code computes it) with n_samples_per_prompt > 1, or "
                f"--pr.ssr.enabled false (got {estimator}, n={n})")
    if ssr.stale_logprobs == "keep" and a.actor.dual_clip is None:
        p.warn("SSR replays samples with their generation-time log-probs (--pr.ssr.stale_logprobs keep); with "
               "a negative advantage PPO's loss −ratio·A is unbounded in the ratio of a stale sample: set "
               "--actor.dual_clip 3 (the 7B recipe does) or --pr.ssr.stale_logprobs recompute")
    if a.algo.dynamic_filtering_enable:
        p.warn("--algo.dynamic_filtering_enable drops reward-uniform groups before SSR sees them; SSR then "
               "rarely needs to replay (the paper used SSR alone)")


def check_reference_model(launch: Launch, p: Problems) -> None:
    """The paper uses no reference model (KL coefficient 0)."""
    kl = launch.upstream.args.algo.kl.init_coef
    if kl > 0:
        p.warn(f"--algo.kl.init_coef {kl} creates a reference model; the paper uses none (0)")


def check_cpu_mode(launch: Launch, p: Problems) -> None:
    """CPU mode (debugging only) needs the settings that work without CUDA."""
    if not launch.run.cpu.enabled:
        return
    a = launch.upstream.args
    if "flash_attention" in a.ds.attn_implementation:
        p.error("CPU mode: use --ds.attn_implementation sdpa (flash attention needs CUDA)")
    if a.vllm.sync_backend != "gloo":
        p.error("CPU mode: use --vllm.sync_backend gloo (NCCL needs CUDA)")
    if a.vllm.enable_sleep:
        p.error("CPU mode: --vllm.enable_sleep is refused by vLLM on CPU")
    if a.train.enable_ema:
        p.error("CPU mode: --train.enable_ema moves weights to CUDA upstream")
    if not a.vllm.enforce_eager:
        p.warn("CPU mode: add --vllm.enforce_eager (no CUDA graphs on CPU)")
    if a.ds.zero_stage == 3:
        p.warn("CPU mode: ZeRO-3 has not been validated on CPU")


# what upstream lets through but breaks for VLMs or for our stage, in the order the report lists the findings
CHECKS: tuple[Callable[[Launch, Problems], None], ...] = (
    check_model, check_datasets, check_agent, check_vlm_inputs, check_dataset_images, check_batch_sizes,
    check_reward_groups, check_ssr, check_reference_model, check_cpu_mode)


def validate(launch: Launch) -> Problems:
    """Every check of `CHECKS`, before any process starts. Errors stop the launch; warnings are printed."""
    p = Problems()
    for check in CHECKS:
        check(launch, p)
    return p


# ---------------------------------------------------------------- printing

def command_line(argv: List[str]) -> str:
    return "python -m " + UPSTREAM_MODULE + " " + " ".join(shlex.quote(x) for x in argv)


def to_plain(obj):
    """A hierarchical namespace as JSON-ready nested dicts (for printing and the run's config.json)."""
    if isinstance(obj, SimpleNamespace):
        return {k: to_plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
        return str(obj)
    return obj


def from_plain(plain):
    """`to_plain`'s inverse: a run's `config.json` "openrlhf" section as the namespace upstream's `train()` gets."""
    if isinstance(plain, dict):
        return SimpleNamespace(**{k: from_plain(v) for k, v in plain.items()})
    if isinstance(plain, list):
        return tuple(from_plain(v) for v in plain)
    return float(plain) if plain in ("inf", "-inf") else plain


def resolved_document(launch: Launch) -> dict:
    a = launch.upstream.args
    return {"pixel_reasoner": launch.run.to_dict(), "openrlhf": to_plain(a),
            "command": command_line(launch.argv),
            "ssr_train_samples_per_step": (target_size(a.rollout.batch_size * a.rollout.n_samples_per_prompt,
                                                       a.train.batch_size, launch.run.ssr.batch_fraction)
                                           if launch.run.ssr.enabled else None)}


def controller_memory_estimate(launch: Launch) -> controller_memory.ControllerMemoryEstimate:
    """Host memory of the controller for this run, assuming one prompt image at the original budget and one
    crop per sample at the crop budget (see `openrlhf_ext.controller_memory`); pixels in the agent's
    `pixel_dtype`, and every such sample carries its own copy of the prompt's pixels (it produced an image)."""
    a, ssr = launch.upstream.args, launch.run.ssr
    budgets = launch.rollout.budgets()
    return controller_memory.run_estimate(
        queries=a.rollout.batch_size, samples_per_query=a.rollout.n_samples_per_prompt,
        original_max_pixels=budgets.for_kind("original").max_pixels,
        produced_max_pixels=budgets.for_kind("crop").max_pixels, max_len=a.data.max_len,
        ssr_capacity=(ssr.capacity or 0) if ssr.enabled else 0, ssr_max_bytes=ssr.max_bytes,
        pixel_value_bytes=controller_memory.PIXEL_DTYPE_BYTES[launch.rollout.pixel_dtype])


def report(launch: Launch, problems: Problems) -> None:
    document = resolved_document(launch)
    print("==> Pixel Reasoner RL configuration (the recipe's pixel_reasoner section, --pr.*)")
    print(json.dumps(document["pixel_reasoner"], indent=2, sort_keys=True))
    print(f"    ssr_train_samples_per_step={document['ssr_train_samples_per_step']}")
    print("==> OpenRLHF configuration (the namespace upstream's train() receives)")
    for section, values in sorted(document["openrlhf"].items()):
        print(f"  {section}: {json.dumps(values, sort_keys=True, default=str)}")
    estimator = launch.upstream.args.algo.advantage.estimator
    print(f"==> advantage estimator: {estimator}: {ESTIMATOR_FORMS.get(estimator, 'not group-relative')}")
    print(f"==> controller memory estimate (upper bound, openrlhf_ext.controller_memory): "
          f"{controller_memory_estimate(launch).summary()}")
    print(f"==> command: {document['command']}")
    print(f"==> resolved (JSON): {json.dumps(document, sort_keys=True, default=str)}")
    for w in problems.warnings:
        print(f"WARNING: {w}")
    for e in problems.errors:
        print(f"ERROR: {e}")
    sys.stdout.flush()


# ---------------------------------------------------------------- running

def _required_gpus(a) -> int:
    """Placeholder GPUs a CPU-mode Ray instance must offer (upper bound; they are scheduling tokens only)."""
    total = a.actor.num_nodes * a.actor.num_gpus_per_node + (a.vllm.num_engines or 0) * a.vllm.tensor_parallel_size
    if a.algo.kl.init_coef > 0:
        total += a.ref.num_nodes * a.ref.num_gpus_per_node
    return total


def runtime_env(run: RunConfig, environ=os.environ) -> dict:
    """Environment of every Ray actor of the run: upstream's defaults, PYTHONPATH (our packages, a patched
    OpenRLHF), third-party settings of CPU mode, and the worker setup hook: the flash_attn stub where flash-attn
    is not installed (a no-op where it is), in CPU mode all CPU shims, before any actor class or argument (e.g.
    the DeepSpeed strategy) is unpickled and imports openrlhf.models."""
    env = {"TOKENIZERS_PARALLELISM": environ.get("TOKENIZERS_PARALLELISM", "true"),
           "NCCL_DEBUG": environ.get("NCCL_DEBUG", "WARN"),
           "RAY_ENABLE_ZERO_COPY_TORCH_TENSORS": environ.get("RAY_ENABLE_ZERO_COPY_TORCH_TENSORS", "1")}
    if environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = environ["PYTHONPATH"]
    if run.cpu.enabled:
        env.update(cpu_mode.child_environment())
    return {"env_vars": env, "worker_process_setup_hook": cpu_mode.SETUP_HOOK if run.cpu.enabled else WORKER_SETUP_HOOK}


def prepare_processes(launch: Launch, args: SimpleNamespace) -> None:
    """Before Ray starts: the run's config.json, our configuration attached to upstream's arguments, this
    repository on PYTHONPATH (actors and vLLM import openrlhf_ext and pixel_reasoner), in CPU mode the shims."""
    from openrlhf_ext.run_config import attach

    run_dir = launch.run.log.run_dir
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(resolved_document(launch), f, indent=2, sort_keys=True, default=str)
    attach(args, launch.run)
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if repo_root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join(paths + [repo_root])
    if launch.run.cpu.enabled:
        logger.warning("CPU mode (--pr.cpu.enabled): for debugging and CI only, never for training")
        cpu_mode.apply()


def init_ray(args: SimpleNamespace, run: RunConfig) -> bool:
    """Start (or connect to) Ray with our runtime_env unless it is already initialised; True if started here."""
    import ray

    if ray.is_initialized():
        return False
    os.environ["RAY_OVERRIDE_JOB_RUNTIME_ENV"] = "1"  # our env_vars extend the job's (they start from it)
    if run.cpu.enabled and not os.environ.get("RAY_ADDRESS"):
        gpus = _required_gpus(args)
        ray.init(address="local", num_cpus=2 * gpus + 2, num_gpus=gpus, _node_ip_address="127.0.0.1",
                 include_dashboard=False, object_store_memory=512 * 1024**2, runtime_env=runtime_env(run))
    else:
        ray.init(runtime_env=runtime_env(run))
    return True


def upstream_argv(argv: List[str]) -> List[str]:
    """Our command line as the patched upstream CLI's: `--pr.enable` added, `--dry-run` as `--pr.dry_run`."""
    translated = ["--pr.dry_run" if a == "--dry-run" else a for a in argv]
    if any(a in ("-h", "--help") for a in argv):
        return translated
    return ["--pr.enable"] + [a for a in translated if a != "--pr.enable"]


def expand_recipe(argv: List[str]) -> List[str]:
    """`--config FILE` (the RL recipe) in place of its arguments (`recipe_argv`); every other argument after
    them, so flags given on the command line override the recipe."""
    if "--config" not in argv:
        return list(argv)
    i = argv.index("--config")
    if i + 1 >= len(argv):
        raise ConfigError("--config needs the recipe file (e.g. recipes/rl_7b.yaml)")
    rest = argv[:i] + argv[i + 2:]
    return recipe_argv(argv[i + 1]) + rest


def main(argv: List[str] | None = None) -> int:
    """Check the patch, then become upstream's CLI (same process: Ray jobs, signals and exit codes pass through)."""
    from openrlhf_ext.upstream_patch import require_patched

    argv = sys.argv[1:] if argv is None else argv
    try:
        require_patched()
        argv = expand_recipe(argv)
    except ConfigError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", UPSTREAM_MODULE, *upstream_argv(argv)]
    sys.stdout.flush()
    os.execv(sys.executable, command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())

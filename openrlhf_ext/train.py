"""Launch Pixel Reasoner RL: upstream OpenRLHF's `train_ppo_ray`, patched with our hooks, runs our stage.

    python -m openrlhf_ext.train [--dry-run] [--pr.<path> VALUE ...] [every openrlhf.cli.train_ppo_ray flag]

is `python -m openrlhf.cli.train_ppo_ray --pr.enable [--pr.dry_run] ...` on the installed OpenRLHF, after checking
that it carries our patch (`patches/openrlhf/0.11.2`, applied by `scripts/install.sh`; otherwise it refuses and
says how to apply it). Upstream parses and post-processes every flag itself; the patch's hook calls
(`openrlhf_ext.patch_hooks`) then run, in order, the functions of this module:
1. `launch_from_args`: our `--pr.*` flags (`rl_config`, `rollout_config`, `cpu_mode`) and the rollout config file
   of `--pr.rollout_config`, resolved against upstream's post-processed namespace into one `RunConfig`.
2. `validate`: what upstream lets through but breaks for VLMs or for our stage: missing paths, an agent file
   that does not load, packing switched on by `--train.dynamic_batch_enable` / `--ds.ring_attn_size>1`, image
   limits, batch-size divisibility, curiosity/SSR without sample groups, CPU-mode incompatibilities.
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
import importlib.util
import json
import logging
import os
import shlex
import sys
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import List

from openrlhf_ext import controller_memory, cpu_mode, rl_config
from openrlhf_ext.cpu_mode import CpuModeConfig
from openrlhf_ext.labels import TaskLabel
from openrlhf_ext.rl_config import RLConfig
from openrlhf_ext.rollout_config import RolloutConfig, from_file
from openrlhf_ext.run_config import RunConfig
from pixel_reasoner.budget_check import compare_with_checkpoint
from pixel_reasoner.config import BUDGET_PRESETS
from pixel_reasoner.errors import ConfigError, DataError
from pixel_reasoner.ssr import target_size

logger = logging.getLogger("openrlhf_ext.train")

UPSTREAM_MODULE = "openrlhf.cli.train_ppo_ray"
GROUP_ESTIMATORS = ("group_norm", "dr_grpo", "rloo", "reinforce_baseline")
# reinforce_baseline whitens advantages over the whole batch afterwards: reward-uniform groups get −mean/std ≠ 0
SSR_ESTIMATORS = ("dr_grpo", "group_norm", "rloo")
ESTIMATOR_FORMS = {
    "dr_grpo": "A = r − mean(group): the official code's GRPO; α and β keep their scale",
    "group_norm": "A = (r − mean(group)) / std(group): α and β are scale-free in correctness-uniform groups",
    "rloo": "A = r − mean(other samples of the group)",
    "reinforce_baseline": "A = r − mean(group), then whitened over the whole batch",
}
ROLLOUT_PREFIX = "pr.rollout"
CPU_PREFIX = "pr.cpu"
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
    """Our `--pr.*` flags (RL config, rollout agent config, CPU mode), added to upstream's parser by the patch."""
    rl_config.add_arguments(parser, RLConfig)
    rl_config.add_arguments(parser, RolloutConfig, prefix=ROLLOUT_PREFIX, skip=("forced_turns",))
    parser.add_argument(f"--{ROLLOUT_PREFIX}.budgets.preset", dest=f"{ROLLOUT_PREFIX}.budgets.preset", default=None,
                        choices=list(BUDGET_PRESETS),
                        help="pixel-budget preset the per-kind --pr.rollout.budgets.* flags start from "
                             "(default: the rollout config's budgets, consistent)")
    parser.add_argument("--pr.rollout_config", dest="pr.rollout_config", default=None, metavar="FILE",
                        help="the rollout agent's configuration as a JSON file (openrlhf_ext.rollout_config); the "
                             "--pr.rollout.* flags apply on top of it")
    rl_config.add_arguments(parser, CpuModeConfig, prefix=CPU_PREFIX)


def rollout_from_namespace(ns: argparse.Namespace) -> RolloutConfig:
    """The agent's configuration: `--pr.rollout_config FILE` (or the defaults), then the --pr.rollout.* flags."""
    path = getattr(ns, "pr.rollout_config", None)
    base = from_file(path) if path else RolloutConfig()
    given = rl_config.given_flags(ns, ROLLOUT_PREFIX)
    data = base.to_dict()
    preset = given.pop("budgets.preset", None)
    if preset is not None:
        data["budgets"] = {"preset": preset}
        for key in [k for k in given if k.startswith("budgets.")]:
            _, kind, bound = key.split(".")
            data["budgets"].setdefault(kind, {})[bound] = given.pop(key)
    return RolloutConfig.from_dict(rl_config.apply_overrides(data, given), "--pr.rollout.* flags")


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
    def config(self) -> RLConfig:
        return self.run.rl

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


def launch_from_args(args: SimpleNamespace, argv: List[str] | None = None) -> Launch:
    """Our view of a run from upstream's post-processed namespace (our flags live in `args.pr`)."""
    if not isinstance(getattr(args.pr, "given", None), dict):
        raise ConfigError("pixel_reasoner.on_parsed(args, parser) must run right after hierarchize(args) in "
                          "train_ppo_ray's main block (is the patch fully applied?)")
    ours = argparse.Namespace(**{k: v for k, v in flatten(args.pr, "pr.").items() if k != "pr.run"})
    upstream_args = SimpleNamespace(**{key: value for key, value in vars(args).items() if key != "pr"})
    upstream = UpstreamParse(upstream_args, dict(args.pr.given))
    config = resolve(rl_config.from_namespace(ours, RLConfig), upstream_args)
    run = RunConfig(config, rollout_from_namespace(ours), rl_config.from_namespace(ours, CpuModeConfig, CPU_PREFIX))
    return Launch(run, upstream, list(sys.argv[1:] if argv is None else argv), bool(args.pr.dry_run))


def resolve(config: RLConfig, args: SimpleNamespace) -> RLConfig:
    """Fill the values that depend on upstream's flags, so the printed/saved config is the one that runs."""
    if config.log.run_dir is None:
        config = rl_config.replace_path(config, "log.run_dir",
                                        os.path.join(args.ckpt.output_dir, "pixel_reasoner"))
    if config.ssr.capacity is None:
        config = rl_config.replace_path(config, "ssr.capacity",
                                        args.rollout.batch_size * args.rollout.n_samples_per_prompt)
    return config


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


def _dataset_image_counts(path: str, image_key: str, label_key: str, problems: Problems) -> List[int]:
    """Images per row of a local JSONL prompt dataset (a video row shows none: its frames are one video); missing
    media files are reported."""
    counts, missing = [], []
    base = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        for row_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                problems.error(f"--data.prompt_dataset {path}: row {row_number} is not valid JSON ({err})")
                return counts
            images = row.get(image_key) or []
            images = images if isinstance(images, list) else [images]
            try:
                is_video = TaskLabel.parse(row.get(label_key, "")).is_video
            except DataError as err:
                problems.error(f"--data.prompt_dataset {path}: row {row_number}: {err}")
                return counts
            counts.append(0 if is_video else len(images))
            for image in images:
                if isinstance(image, str) and not image.startswith(("http://", "https://", "data:")):
                    if not os.path.exists(image if os.path.isabs(image) else os.path.join(base, image)) \
                            and not os.path.exists(image):
                        missing.append(f"row {row_number}: {image}")
    if missing:
        problems.error(f"--data.prompt_dataset {path}: {len(missing)} image file(s) not found, e.g. "
                       f"{missing[:3]}")
    return counts


def validate(launch: Launch) -> Problems:
    """Everything we can check before any process starts. Errors stop the launch; warnings are printed."""
    p = Problems()
    a = launch.upstream.args
    cfg = launch.config

    model = a.actor.model_name_or_path
    vlm = None
    if not model:
        p.error("--actor.model_name_or_path is required (the warm-start checkpoint, e.g. "
                "TIGER-Lab/PixelReasoner-WarmStart)")
    elif _is_local(model):
        if not os.path.isdir(model):
            p.error(f"--actor.model_name_or_path {model}: no such directory")
        else:
            vlm = _model_is_vlm(model)
            try:
                mismatch = compare_with_checkpoint(model, launch.rollout.budgets, "RL")
            except ConfigError as err:
                mismatch = str(err)
            if mismatch:
                p.warn(mismatch)
    else:
        p.warn(f"--actor.model_name_or_path {model} is not a local path; every node will resolve it from the hub")
    if vlm is None:
        vlm = a.data.max_images_per_prompt > 0

    for flag, path in (("--data.prompt_dataset", a.data.prompt_dataset), ("--eval.dataset", a.eval.dataset)):
        if path and _is_local(path) and not os.path.exists(path):
            p.error(f"{flag} {path}: no such file or directory")
    if not a.data.prompt_dataset:
        p.error("--data.prompt_dataset is required (build one with `python -m openrlhf_ext.data convert`)")

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

    flat = launch.upstream.flat
    if vlm:
        if a.ds.packing_samples:
            causes = [f for f, on in (("--ds.packing_samples", flat.get("ds.packing_samples")),
                                      ("--train.dynamic_batch_enable", flat.get("train.dynamic_batch_enable")),
                                      ("--ds.ring_attn_size > 1", flat.get("ds.ring_attn_size", 1) > 1)) if on]
            p.error(f"sample packing is on (caused by {', '.join(causes)}); upstream turns it on after its VLM "
                    "check, and packing breaks image-token alignment and M-RoPE positions: drop those flags")
        if a.data.max_images_per_prompt <= 0:
            p.error("--data.max_images_per_prompt must be > 0 for a VLM: it bounds dataset images plus every "
                    "image a trajectory produces (crops, selected frames)")

    limits = launch.rollout.limits
    if vlm and a.data.max_images_per_prompt < limits.max_images:
        p.error(f"--data.max_images_per_prompt {a.data.max_images_per_prompt} is below the agent's "
                f"limits.max_images={limits.max_images} (dataset images + every crop/frame a trajectory may "
                f"produce): set --data.max_images_per_prompt {limits.max_images} or lower "
                "--pr.rollout.limits.max_images")
    if vlm and model and os.path.isdir(model):
        try:
            from transformers import AutoProcessor

            from openrlhf_ext.agent import check_compatibility

            check_compatibility(launch.rollout, AutoProcessor.from_pretrained(model))
        except ConfigError as err:
            p.error(f"rollout config vs the model's processor: {err}")

    counts: List[int] = []
    dataset = a.data.prompt_dataset
    if dataset and os.path.isfile(dataset) and dataset.endswith(".jsonl"):
        counts = _dataset_image_counts(dataset, a.data.image_key, a.data.label_key, p)
    if counts and max(counts) >= limits.max_images:
        p.error(f"a dataset row has {max(counts)} images: no room for produced images under the agent's "
                f"limits.max_images={limits.max_images}; raise --pr.rollout.limits.max_images and "
                "--data.max_images_per_prompt")
    if counts and max(counts) > a.data.max_images_per_prompt:
        p.error(f"--data.max_images_per_prompt {a.data.max_images_per_prompt} is below the {max(counts)} images "
                f"of the largest dataset row; it must cover dataset images + produced images")

    actors = a.actor.num_nodes * a.actor.num_gpus_per_node // max(a.ds.ring_attn_size, 1) \
        // max(a.ds.tensor_parallel_size, 1)
    per_step = a.train.micro_batch_size * max(actors, 1)
    if a.train.batch_size % per_step:
        p.error(f"--train.batch_size {a.train.batch_size} must be a multiple of --train.micro_batch_size × "
                f"data-parallel actors = {a.train.micro_batch_size} × {actors} = {per_step}")
    rollout = a.rollout.batch_size * a.rollout.n_samples_per_prompt
    if cfg.ssr.enabled:
        target = target_size(rollout, a.train.batch_size, cfg.ssr.batch_fraction)
        if rollout < a.train.batch_size:
            p.warn(f"a rollout ({rollout} samples) is smaller than --train.batch_size {a.train.batch_size}: every "
                   f"step trains on {target} samples, mostly replayed")
    elif rollout < a.train.batch_size:
        p.error(f"a rollout (--rollout.batch_size × n_samples = {rollout}) is smaller than --train.batch_size "
                f"{a.train.batch_size}: no optimizer step would ever run")
    elif rollout % a.train.batch_size:
        p.warn(f"a rollout ({rollout} samples) is not a multiple of --train.batch_size {a.train.batch_size}; the "
               "remainder is dropped every step")

    n = a.rollout.n_samples_per_prompt
    estimator = a.algo.advantage.estimator
    if cfg.curiosity.enabled and n < 2:
        p.error("curiosity needs several samples per query (RaPR is a rate over the group): set "
                "--rollout.n_samples_per_prompt > 1 (paper: 8) or --pr.curiosity.enabled false")
    if cfg.ssr.enabled:
        if estimator == "reinforce_baseline":
            p.error("SSR with --algo.advantage.estimator reinforce_baseline: upstream whitens the advantages over "
                    "the whole batch, so reward-uniform groups get a non-zero advantage and every sample passes "
                    "SSR's informativeness test; use dr_grpo (the official GRPO) or --pr.ssr.enabled false")
        elif estimator not in SSR_ESTIMATORS or n < 2:
            p.error(f"SSR selects samples by their group-relative advantage: use --algo.advantage.estimator "
                    f"dr_grpo (GRPO as the official code computes it) with n_samples_per_prompt > 1, or "
                    f"--pr.ssr.enabled false (got {estimator}, n={n})")
        if cfg.ssr.stale_logprobs == "keep" and a.actor.dual_clip is None:
            p.warn("SSR replays samples with their generation-time log-probs (--pr.ssr.stale_logprobs keep); with "
                   "a negative advantage PPO's loss −ratio·A is unbounded in the ratio of a stale sample: set "
                   "--actor.dual_clip 3 (the 7B recipe does) or --pr.ssr.stale_logprobs recompute")
        if a.algo.dynamic_filtering_enable:
            p.warn("--algo.dynamic_filtering_enable drops reward-uniform groups before SSR sees them; SSR then "
                   "rarely needs to replay (the paper used SSR alone)")
    elif estimator not in GROUP_ESTIMATORS:
        p.warn(f"--algo.advantage.estimator {estimator}: the paper uses GRPO (dr_grpo = the official code's form)")
    if estimator == "group_norm" and cfg.curiosity.enabled:
        p.warn("--algo.advantage.estimator group_norm: α and β are scale-free: dividing by the group std gives a "
               "wrong answer that used a tool in an all-wrong group the advantage of a lone correct answer (+2.47 "
               "at n=8, whatever α is); the official code uses r − mean(group): --algo.advantage.estimator dr_grpo")
    if a.algo.kl.init_coef > 0:
        p.warn(f"--algo.kl.init_coef {a.algo.kl.init_coef} creates a reference model; the paper uses none (0)")

    if launch.run.cpu.enabled:
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
    return {"pixel_reasoner": rl_config.to_dict(launch.config), "rollout": launch.rollout.to_dict(),
            "cpu_mode": rl_config.to_dict(launch.run.cpu), "openrlhf": to_plain(a),
            "command": command_line(launch.argv),
            "ssr_train_samples_per_step": (target_size(a.rollout.batch_size * a.rollout.n_samples_per_prompt,
                                                       a.train.batch_size, launch.config.ssr.batch_fraction)
                                           if launch.config.ssr.enabled else None)}


def controller_memory_estimate(launch: Launch) -> controller_memory.ControllerMemoryEstimate:
    """Host memory of the controller for this run, assuming one prompt image at the original budget and one
    crop per sample at the crop budget (see `openrlhf_ext.controller_memory`); pixels in the agent's
    `pixel_dtype`, and every such sample carries its own copy of the prompt's pixels (it produced an image)."""
    a, ssr = launch.upstream.args, launch.config.ssr
    budgets = launch.rollout.budgets
    return controller_memory.run_estimate(
        queries=a.rollout.batch_size, samples_per_query=a.rollout.n_samples_per_prompt,
        original_max_pixels=budgets.for_kind("original").max_pixels,
        produced_max_pixels=budgets.for_kind("crop").max_pixels, max_len=a.data.max_len,
        ssr_capacity=(ssr.capacity or 0) if ssr.enabled else 0, ssr_max_bytes=ssr.max_bytes,
        pixel_value_bytes=controller_memory.PIXEL_DTYPE_BYTES[launch.rollout.pixel_dtype])


def report(launch: Launch, problems: Problems) -> None:
    document = resolved_document(launch)
    print("==> Pixel Reasoner RL configuration (--pr.*)")
    print(json.dumps(document["pixel_reasoner"], indent=2, sort_keys=True))
    print("==> Rollout agent configuration (--pr.rollout_config, --pr.rollout.*)")
    print(json.dumps(document["rollout"], sort_keys=True))
    print(f"    cpu_mode={json.dumps(document['cpu_mode'], sort_keys=True)}  "
          f"ssr_train_samples_per_step={document['ssr_train_samples_per_step']}")
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

    run_dir = launch.config.log.run_dir
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


def main(argv: List[str] | None = None) -> int:
    """Check the patch, then become upstream's CLI (same process: Ray jobs, signals and exit codes pass through)."""
    from openrlhf_ext.upstream_patch import require_patched

    argv = sys.argv[1:] if argv is None else argv
    try:
        require_patched()
    except ConfigError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", UPSTREAM_MODULE, *upstream_argv(argv)]
    sys.stdout.flush()
    os.execv(sys.executable, command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())

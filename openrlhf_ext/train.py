"""Launch Pixel Reasoner RL: upstream OpenRLHF `train_ppo_ray` with our trainer, curiosity reward and SSR.

    python -m openrlhf_ext.train [--dry-run] [--pr.<path> VALUE ...] [every openrlhf.cli.train_ppo_ray flag]

What it does, in order:
1. Splits the command line: our `--pr.*` flags (see `openrlhf_ext.rl_config`) and `--dry-run` are parsed here;
   everything else goes to upstream untouched.
2. Parses and post-processes upstream's flags exactly as upstream does (`openrlhf_ext.upstream_cli`), then
   checks what upstream lets through but breaks for VLMs or for our stage (`validate`): missing paths, an agent
   file that does not load, packing switched on by `--train.dynamic_batch_enable` / `--ds.ring_attn_size>1`,
   image limits, batch-size divisibility, curiosity/SSR without sample groups, CPU-mode incompatibilities.
3. Prints the fully resolved configuration (ours + upstream's namespace + the upstream command). `--dry-run`
   stops here (exit 0 when valid, 2 when not); it needs no GPU and starts nothing.
4. Otherwise writes `config.json` to the run directory, installs our trainer classes (sync and async) and, in
   CPU mode (`PIXEL_REASONER_CPU_MODE=1`, debugging/CI only), the CPU patches; initialises Ray with a
   runtime_env that carries PYTHONPATH and our config to every actor; then runs upstream's module as
   `__main__` (runpy), so upstream's own `train()` drives everything.

Run it directly, or as a Ray job: `ray job submit --address http://HEAD:8265 -- bash recipes/rl_7b.sh`.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import runpy
import shlex
import sys
from dataclasses import dataclass, field
from typing import List

from openrlhf_ext import controller_memory, cpu_mode, rl_config
from openrlhf_ext.rl_config import RLConfig
from openrlhf_ext.rollout_config import CONFIG_ENV as ROLLOUT_CONFIG_ENV
from openrlhf_ext.rollout_config import RolloutConfig, load_rollout_config
from openrlhf_ext.upstream_cli import UPSTREAM_MODULE, UpstreamParse, parse_and_validate, to_plain
from pixel_reasoner.budget_check import compare_with_checkpoint
from pixel_reasoner.config import BUDGET_PRESETS
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.ssr import target_size

logger = logging.getLogger("openrlhf_ext.train")

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

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m openrlhf_ext.train", allow_abbrev=False, add_help=False,
        description="Pixel Reasoner RL on OpenRLHF 0.11.2. Our flags are below; every other flag is "
                    "openrlhf.cli.train_ppo_ray's (shown after ours with --help).")
    parser.add_argument("-h", "--help", action="store_true", help="show our flags, then upstream's")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate paths, the agent file and flag combinations, print the resolved "
                             "configuration and the upstream command, and exit without training")
    add_pr_arguments(parser)
    return parser


def add_pr_arguments(parser: argparse.ArgumentParser) -> None:
    """Our `--pr.*` flags (RL config and rollout agent config); also used by a patched upstream parser."""
    rl_config.add_arguments(parser, RLConfig)
    rl_config.add_arguments(parser, RolloutConfig, prefix=ROLLOUT_PREFIX)
    parser.add_argument(f"--{ROLLOUT_PREFIX}.budgets.preset", dest=f"{ROLLOUT_PREFIX}.budgets.preset", default=None,
                        choices=list(BUDGET_PRESETS),
                        help="pixel-budget preset the per-kind --pr.rollout.budgets.* flags start from "
                             "(default: the rollout config's budgets, consistent)")


def rollout_from_namespace(ns: argparse.Namespace) -> RolloutConfig:
    """The agent's configuration: $PIXEL_REASONER_ROLLOUT_CONFIG / ./pixel_reasoner_rollout.json / defaults,
    then the --pr.rollout.* flags on top."""
    base, _origin = load_rollout_config()
    given = rl_config.given_flags(ns, ROLLOUT_PREFIX)
    data = base.to_dict()
    preset = given.pop("budgets.preset", None)
    if preset is not None:
        data["budgets"] = {"preset": preset}
        for key in [k for k in given if k.startswith("budgets.")]:
            _, kind, bound = key.split(".")
            data["budgets"].setdefault(kind, {})[bound] = given.pop(key)
    return RolloutConfig.from_dict(rl_config.apply_overrides(data, given), "--pr.rollout.* flags")


@dataclass
class Launch:
    config: RLConfig
    rollout: RolloutConfig
    upstream_argv: List[str]
    upstream: UpstreamParse
    dry_run: bool


def parse(argv: List[str]) -> Launch:
    parser = build_parser()
    ours, upstream_argv = parser.parse_known_args(argv)
    if ours.help:
        parser.print_help()
        print("\n--- upstream flags (openrlhf.cli.train_ppo_ray) ---")
        from openrlhf_ext.upstream_cli import build_parser as upstream_parser

        upstream_parser().print_help()
        raise SystemExit(0)
    stray = [a for a in upstream_argv if a.startswith("--pr.") or a.startswith("--pr-")]
    if stray:
        raise ConfigError(f"unknown Pixel Reasoner flag(s) {stray}; see `python -m openrlhf_ext.train --help`")
    config = rl_config.from_namespace(ours, RLConfig)
    rollout = rollout_from_namespace(ours)
    upstream = parse_and_validate(upstream_argv)
    return Launch(resolve(config, upstream), rollout, upstream_argv, upstream, ours.dry_run)


def resolve(config: RLConfig, upstream: UpstreamParse) -> RLConfig:
    """Fill the values that depend on upstream's flags, so the printed/saved config is the one that runs."""
    args = upstream.args
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


def _dataset_image_counts(path: str, image_key: str, problems: Problems) -> List[int]:
    """Images per row of a local JSONL prompt dataset (missing image files are reported)."""
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
            counts.append(len(images))
            for image in images:
                if isinstance(image, str) and not image.startswith(("http://", "https://", "data:")):
                    if not os.path.exists(image if os.path.isabs(image) else os.path.join(base, image)) \
                            and not os.path.exists(image):
                        missing.append(f"row {row_number}: {image}")
    if missing:
        problems.error(f"--data.prompt_dataset {path}: {len(missing)} image file(s) not found, e.g. "
                       f"{missing[:3]}")
    return counts


def validate(launch: Launch, environ=os.environ) -> Problems:
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
        counts = _dataset_image_counts(dataset, a.data.image_key, p)
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

    if cpu_mode.enabled(environ):
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

def upstream_command(upstream_argv: List[str]) -> str:
    return "python -m " + UPSTREAM_MODULE + " " + " ".join(shlex.quote(x) for x in upstream_argv)


def resolved_document(launch: Launch) -> dict:
    return {"pixel_reasoner": rl_config.to_dict(launch.config), "rollout": launch.rollout.to_dict(),
            "openrlhf": to_plain(launch.upstream.args),
            "upstream_command": upstream_command(launch.upstream_argv),
            "cpu_mode": cpu_mode.enabled(),
            "ssr_train_samples_per_step": (target_size(launch.upstream.args.rollout.batch_size
                                                       * launch.upstream.args.rollout.n_samples_per_prompt,
                                                       launch.upstream.args.train.batch_size,
                                                       launch.config.ssr.batch_fraction)
                                           if launch.config.ssr.enabled else None)}


def controller_memory_estimate(launch: Launch) -> controller_memory.ControllerMemoryEstimate:
    """Host memory of the controller for this run, assuming one prompt image at the original budget and one
    crop per sample at the crop budget (see `openrlhf_ext.controller_memory`)."""
    a, ssr = launch.upstream.args, launch.config.ssr
    budgets = launch.rollout.budgets
    return controller_memory.run_estimate(
        queries=a.rollout.batch_size, samples_per_query=a.rollout.n_samples_per_prompt,
        original_max_pixels=budgets.for_kind("original").max_pixels,
        produced_max_pixels=budgets.for_kind("crop").max_pixels, max_len=a.data.max_len,
        ssr_capacity=(ssr.capacity or 0) if ssr.enabled else 0, ssr_max_bytes=ssr.max_bytes)


def report(launch: Launch, problems: Problems) -> None:
    document = resolved_document(launch)
    print("==> Pixel Reasoner RL configuration (--pr.*)")
    print(json.dumps(document["pixel_reasoner"], indent=2, sort_keys=True))
    print("==> Rollout agent configuration (--pr.rollout.*, $PIXEL_REASONER_ROLLOUT_CONFIG)")
    print(json.dumps(document["rollout"], sort_keys=True))
    print(f"    cpu_mode={document['cpu_mode']}  ssr_train_samples_per_step={document['ssr_train_samples_per_step']}")
    print("==> OpenRLHF configuration (the namespace upstream's train() receives)")
    for section, values in sorted(document["openrlhf"].items()):
        print(f"  {section}: {json.dumps(values, sort_keys=True, default=str)}")
    estimator = launch.upstream.args.algo.advantage.estimator
    print(f"==> advantage estimator: {estimator}: {ESTIMATOR_FORMS.get(estimator, 'not group-relative')}")
    print(f"==> controller memory estimate (upper bound, openrlhf_ext.controller_memory): "
          f"{controller_memory_estimate(launch).summary()}")
    print(f"==> upstream command: {upstream_command(launch.upstream_argv)}")
    if launch.upstream.messages.strip():
        print("==> upstream post-processing said:\n" + launch.upstream.messages.rstrip())
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


def runtime_env(environ=os.environ) -> dict:
    """Environment for every Ray actor of the run: upstream's defaults, PYTHONPATH, our config, CPU mode."""
    env = {"TOKENIZERS_PARALLELISM": environ.get("TOKENIZERS_PARALLELISM", "true"),
           "NCCL_DEBUG": environ.get("NCCL_DEBUG", "WARN"),
           "RAY_ENABLE_ZERO_COPY_TORCH_TENSORS": environ.get("RAY_ENABLE_ZERO_COPY_TORCH_TENSORS", "1"),
           rl_config.ENV_VAR: environ[rl_config.ENV_VAR]}
    for key in ("PYTHONPATH", ROLLOUT_CONFIG_ENV):
        if environ.get(key):
            env[key] = environ[key]
    if cpu_mode.enabled(environ):
        env.update(cpu_mode.child_environment(environ))
    # every worker: the flash_attn stub where flash-attn is not installed (a no-op where it is), before any
    # actor class or argument (e.g. the DeepSpeed strategy) is unpickled and imports openrlhf.models
    return {"env_vars": env, "worker_process_setup_hook": WORKER_SETUP_HOOK}


def export_configs(launch: Launch) -> None:
    """Both configs as JSON in this process's environment (the agent loaded by --dry-run reads it too); Ray
    actors get them through the runtime_env."""
    os.environ[rl_config.ENV_VAR] = rl_config.to_json(launch.config)
    os.environ[ROLLOUT_CONFIG_ENV] = json.dumps(launch.rollout.to_dict(), sort_keys=True)


def prepare_processes(launch: Launch) -> None:
    """Before Ray starts: the run's config.json, both configs and PYTHONPATH in this process's environment
    (Ray actors inherit them through `runtime_env()`), and in CPU mode the CPU patches."""
    run_dir = launch.config.log.run_dir
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(resolved_document(launch), f, indent=2, sort_keys=True, default=str)
    export_configs(launch)
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if repo_root not in paths:  # actors and vLLM processes import openrlhf_ext and pixel_reasoner
        os.environ["PYTHONPATH"] = os.pathsep.join([repo_root] + paths)
    if cpu_mode.enabled():
        logger.warning("CPU mode (PIXEL_REASONER_CPU_MODE=1): for debugging and CI only, never for training")
        os.environ.update(cpu_mode.child_environment())
        cpu_mode.install()


def init_ray(a) -> bool:
    """Start (or connect to) Ray with our runtime_env unless it is already initialised; True if started here."""
    import ray

    if ray.is_initialized():
        return False
    os.environ["RAY_OVERRIDE_JOB_RUNTIME_ENV"] = "1"  # our env_vars extend the job's (they start from it)
    if cpu_mode.enabled() and not os.environ.get("RAY_ADDRESS"):
        gpus = _required_gpus(a)
        ray.init(address="local", num_cpus=2 * gpus + 2, num_gpus=gpus, _node_ip_address="127.0.0.1",
                 include_dashboard=False, object_store_memory=512 * 1024**2, runtime_env=runtime_env())
    else:
        ray.init(runtime_env=runtime_env())
    return True


def run(launch: Launch) -> None:
    a = launch.upstream.args
    prepare_processes(launch)
    from openrlhf_ext import trainer

    trainer.install()
    started_here = init_ray(a)
    sys.argv = [UPSTREAM_MODULE] + launch.upstream_argv
    try:
        runpy.run_module(UPSTREAM_MODULE, run_name="__main__", alter_sys=True)
    finally:
        if started_here:
            import ray

            ray.shutdown()
    from openrlhf_ext.saved_model import complete_run_outputs

    complete_run_outputs(a)


def main(argv: List[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    try:
        launch = parse(argv)
    except (ConfigError, AssertionError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 2
    export_configs(launch)
    problems = validate(launch)
    report(launch, problems)
    if problems.errors:
        print(f"==> {len(problems.errors)} error(s); nothing was started", file=sys.stderr)
        return 2
    if launch.dry_run:
        print("==> dry run: configuration valid; exiting without training")
        return 0
    run(launch)
    return 0


if __name__ == "__main__":
    sys.exit(main())

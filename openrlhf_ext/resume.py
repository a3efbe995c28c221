"""Our controller's state in OpenRLHF's checkpoints, so that a resumed run continues its replay, not a fresh one.

What carries over from step to step in the controller is the SSR replay (its buffer of informative samples, its
step count and random stream) and the random stream that spreads samples over ranks
(`PixelReasonerExperienceMaker.state_dict`); curiosity carries nothing (RaPR is computed per group within a step).
Upstream checkpoints the actors (DeepSpeed, `<ckpt.path>/_actor/<tag>`) with a small `client_states` dict of the
controller's (step, episode, data loader position) and hands that dict back on resume
(`BasePPOTrainer.init_checkpoint_states`). The buffer holds whole samples with their pixel tensors (up to
`--pr.ssr.max_bytes`), far too much to send to every actor rank in that dict, so the controller writes it itself:

- at every checkpoint step, *before* upstream's checkpoint, `<ckpt.path>/pixel_reasoner/global_step<N>.pt`
  (written to a temporary name and renamed: a kill leaves the previous file or the new one, never half of one),
  and its file name goes into `client_states` under `STATE_KEY`, so the DeepSpeed checkpoint names its own state;
- on resume, the state named by the checkpoint upstream loaded (its `latest`) is read back;
- after upstream's checkpoint, state files whose checkpoint upstream rotated away (`--ckpt.max_num`) are removed.

`<ckpt.path>` must be a filesystem the controller and the resumed run both see (as for upstream's checkpoints on
a cluster). The run's own records (`metrics.jsonl`, `groups.jsonl`) keep the steps up to the checkpoint: the
lines of steps after it describe updates the resumed run discards, and are dropped.
"""
from __future__ import annotations

import json
import os
import re

import torch

from pixel_reasoner.errors import ConfigError

STATE_KEY = "pixel_reasoner_state"
STATE_DIR = "pixel_reasoner"
_STATE_FILE = re.compile(r"^global_step(\d+)\.pt$")


def state_dir(ckpt_path: str) -> str:
    return os.path.join(ckpt_path, STATE_DIR)


def save_state(ckpt_path: str, global_step: int, state: dict) -> str:
    """Write the controller's state for checkpoint step `global_step`; returns the file name for `client_states`."""
    directory = state_dir(ckpt_path)
    os.makedirs(directory, exist_ok=True)
    name = f"global_step{global_step}.pt"
    partial = os.path.join(directory, f".{name}.partial")
    torch.save({"global_step": global_step, **state}, partial)
    os.replace(partial, os.path.join(directory, name))
    return name


def load_state(ckpt_path: str, checkpoint_states: dict) -> dict | None:
    """The state the loaded checkpoint names, or None for a checkpoint saved without one (an older run)."""
    name = checkpoint_states.get(STATE_KEY)
    if name is None:
        return None
    step = checkpoint_states.get("global_step")
    path = os.path.join(state_dir(ckpt_path), name)
    if not os.path.isfile(path):
        raise ConfigError(f"--ckpt.load_enable: the checkpoint of step {step} under {ckpt_path}/_actor names the "
                          f"Pixel Reasoner state {path} (SSR buffer, random streams), which is missing; put the "
                          f"file back, or move {ckpt_path} aside to start the run from its first step")
    state = torch.load(path, weights_only=False)  # our own file: experiences (dataclasses of tensors)
    if state.get("global_step") != step:
        raise ConfigError(f"{path} holds the state of step {state.get('global_step')}, but the checkpoint "
                          f"upstream loaded is step {step}: the directory {state_dir(ckpt_path)} belongs to another "
                          "run; give each run its own --ckpt.path")
    return state


def prune_states(ckpt_path: str, keep: str) -> list[str]:
    """Remove state files of checkpoints upstream no longer keeps (`_actor/global_step<N>` or
    `best_global_step<N>` gone); `keep`, the file just written, always stays. Returns the removed names."""
    directory = state_dir(ckpt_path)
    actor_dir = os.path.join(ckpt_path, "_actor")
    tags = set(os.listdir(actor_dir)) if os.path.isdir(actor_dir) else set()
    removed = []
    for name in sorted(os.listdir(directory)):
        match = _STATE_FILE.match(name)
        if not match or name == keep:
            continue
        step = match.group(1)
        if f"global_step{step}" not in tags and f"best_global_step{step}" not in tags:
            os.remove(os.path.join(directory, name))
            removed.append(name)
    return removed


def trim_records(path: str, last_step: int) -> tuple[list[dict], int]:
    """Keep the JSON lines of steps <= `last_step` in the run record at `path` (and drop a line cut short by a
    kill); returns (kept records, how many lines were dropped)."""
    if not os.path.exists(path):
        return [], 0
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # the last line of a killed run may be cut short
            continue
    kept = [r for r in records if r.get("step", 0) <= last_step]
    if len(kept) != len(lines):
        partial = path + ".partial"
        with open(partial, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
        os.replace(partial, path)
    return kept, len(lines) - len(kept)

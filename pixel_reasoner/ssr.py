"""Selective sample replay (SSR), as pure logic over opaque items (numpy only).

Why: with GRPO, a group whose n responses all get the same reward has zero advantage everywhere and teaches
nothing; the paper saw that share of groups climb to ~90% during RL (its Fig. 9). SSR keeps the samples that
do carry signal (non-zero advantage) in a buffer and, when a step has too few of them, fills the training
batch with earlier ones, drawn with probability proportional to |advantage|.

One step (`SelectiveSampleReplay.select`):
1. informative = samples of this step with |advantage| > `min_abs_advantage`.
2. The batch handed to training has a fixed size: `target_size(rollout_size, train_batch_size,
   batch_fraction)`, a multiple of the train batch size (the official code trains on half of each rollout).
3. Fresh informative samples come first (a random subset if there are more than the target; the rest stay in
   the buffer for later steps). The remaining slots are drawn from buffered samples of earlier steps, without
   replacement while possible, with probability ∝ |advantage|. Only if the buffer holds too few earlier
   samples are this step's informative samples repeated (again ∝ |advantage|).
4. If there is nothing informative at all (no fresh informative sample, empty buffer), the step is skipped:
   `SSRSelection.skipped` with a warning, never an exception.
5. All of this step's informative samples then enter the buffer (FIFO, at most `capacity` samples and
   `max_bytes` bytes, oldest evicted first), to be replayed from the next step on.

Differences from the official code (TIGER-AI-Lab/Pixel-Reasoner, `replay_buffer.py::active_sampling`), on
purpose: the buffer is global (the official one is per data-parallel rank, so ranks trained on different
mixtures and a rank with no informative group crashed with ZeroDivisionError); a step without any signal is
skipped instead of crashing; priorities are exactly |advantage| (the official code adds 1e-4, which only
matters for zero-advantage items that never enter the buffer).
"""
from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Generic, Sequence, TypeVar

import numpy as np

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.settings import check_choices, option

logger = logging.getLogger(__name__)

T = TypeVar("T")
STALE_LOGPROB_MODES = ("keep", "recompute")


@dataclass(frozen=True)
class SSRConfig:
    """Selective sample replay. `capacity=None` means one rollout's worth of samples (as the official code).

    `stale_logprobs` says what the PPO ratio of a replayed sample is computed against:
    - "keep" (official code): the behaviour log-probs stored when the sample was generated. The ratio then
      reflects how far the policy moved since, and PPO clipping bounds the update (off-policy correction).
    - "recompute": log-probs under the current policy, computed right before the update. The ratio starts at
      1 as for fresh samples (no off-policy correction; costs one extra forward pass per replayed sample).
    `reset_every_steps` clears the buffer every k steps (0 = never, as the official code; 1 = the paper's
    text, "the replay buffer persisted for the duration of each episode", read with one rollout per episode).
    `max_bytes` bounds the host memory the buffer keeps alive (its samples' pixels and tokens, as the caller
    measures them); the oldest samples go first. Not in the paper or the official code: a VLM sample carries
    tens of MB of `pixel_values`, so a one-rollout buffer at the paper's batch would hold 100+ GB. None: no cap.
    """

    enabled: bool = option(True, help="Replay informative samples (non-zero advantage) into each training batch.")
    capacity: int | None = option(None, help="Samples the buffer holds; default: one rollout's worth.")
    max_bytes: int | None = option(64 * 2**30, help=(
        "Host memory the buffer may keep alive, oldest samples dropped first (not in the paper); null: no cap."))
    batch_fraction: float = option(0.5, help="Share of a rollout trained on per step (official code: 0.5).")
    min_abs_advantage: float = option(1e-6, help="A sample is informative when |advantage| exceeds this.")
    stale_logprobs: str = option("keep", choices=STALE_LOGPROB_MODES, help=(
        "PPO ratio of a replayed sample against its generation-time log-probs (keep, official) or the current "
        "policy's (recompute)."))
    reset_every_steps: int = option(0, help="Clear the buffer every k steps (0 = never, as the official code).")
    seed: int = option(0, help="Seed of the replay draws.")

    def __post_init__(self) -> None:
        if self.capacity is not None and self.capacity < 1:
            raise ConfigError(f"SSRConfig.capacity={self.capacity} must be >= 1 (or None for one rollout)")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise ConfigError(f"SSRConfig.max_bytes={self.max_bytes} must be >= 1 (or None for no byte cap)")
        if not 0.0 < self.batch_fraction <= 1.0:
            raise ConfigError(f"SSRConfig.batch_fraction={self.batch_fraction} must be in (0, 1] "
                              "(official code: 0.5, half of each rollout)")
        if self.min_abs_advantage < 0:
            raise ConfigError(f"SSRConfig.min_abs_advantage={self.min_abs_advantage} must be >= 0")
        check_choices(self, "SSRConfig")
        if self.reset_every_steps < 0:
            raise ConfigError(f"SSRConfig.reset_every_steps={self.reset_every_steps} must be >= 0 (0 = never)")


def target_size(rollout_size: int, train_batch_size: int, batch_fraction: float) -> int:
    """Samples handed to training per step: `batch_fraction` of a rollout, rounded down to a multiple of the
    train batch size, and at least one train batch."""
    if train_batch_size < 1 or rollout_size < 1:
        raise ConfigError(f"rollout_size={rollout_size} and train_batch_size={train_batch_size} must be >= 1")
    return max(train_batch_size, math.floor(batch_fraction * rollout_size / train_batch_size) * train_batch_size)


@dataclass
class _Entry(Generic[T]):
    item: T
    priority: float
    step: int
    size: float = 0.0


class ReplayBuffer(Generic[T]):
    """FIFO buffer of informative samples with priorities (|advantage|), bounded in count and in bytes."""

    def __init__(self, capacity: int, max_bytes: int | None = None):
        if capacity < 1:
            raise ConfigError(f"replay buffer capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.bytes = 0.0
        self._entries: deque[_Entry[T]] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0.0

    def add(self, items: Sequence[T], priorities: Sequence[float], step: int,
            sizes: Sequence[float] | None = None) -> int:
        """Append items (`sizes`: their bytes), then evict the oldest beyond capacity or `max_bytes`.

        Returns how many entries were evicted because of the byte cap.
        """
        sizes = [0.0] * len(items) if sizes is None else list(sizes)
        if not len(items) == len(priorities) == len(sizes):
            raise ValueError(f"{len(items)} items but {len(priorities)} priorities and {len(sizes)} sizes")
        for item, priority, size in zip(items, priorities, sizes):
            if not priority > 0 or not math.isfinite(priority):
                raise ValueError(f"replay priority must be finite and > 0, got {priority}")
            self._entries.append(_Entry(item, float(priority), step, float(size)))
            self.bytes += float(size)
        while len(self._entries) > self.capacity:
            self.bytes -= self._entries.popleft().size
        evicted = 0
        while self.max_bytes is not None and self._entries and self.bytes > self.max_bytes:
            self.bytes -= self._entries.popleft().size
            evicted += 1
        return evicted

    def entries(self) -> list[_Entry[T]]:
        return list(self._entries)

    def restore(self, entries: Sequence[dict]) -> None:
        """Replace the contents with saved entries (`SelectiveSampleReplay.state_dict`), oldest first; this
        buffer's own capacity and byte cap apply (a resumed run may have been given smaller ones)."""
        self.clear()
        for e in entries:
            self.add([e["item"]], [e["priority"]], e["step"], [e["size"]])


def draw_proportional(priorities: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k indices ∝ priorities: without replacement as long as possible, then whole passes + a remainder."""
    n = len(priorities)
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    p = priorities / priorities.sum()
    full_passes, remainder = divmod(k, n)
    picks = [np.arange(n)] * full_passes
    if remainder:
        picks.append(rng.choice(n, size=remainder, replace=False, p=p))
    return np.concatenate(picks).astype(np.int64)


@dataclass
class SSRSelection(Generic[T]):
    """What one step trains on. `replayed[i]` is True for items drawn from the buffer (not first use)."""

    items: list[T]
    replayed: list[bool]
    from_earlier_step: list[bool]
    stats: dict[str, float] = field(default_factory=dict)
    skipped: bool = False
    warning: str | None = None


class SelectiveSampleReplay(Generic[T]):
    """Stateful SSR across steps (one instance per run, in the controller: one global buffer)."""

    def __init__(self, config: SSRConfig, rollout_size: int, train_batch_size: int):
        self.config = config
        self.rollout_size = rollout_size
        self.train_batch_size = train_batch_size
        self.target = target_size(rollout_size, train_batch_size, config.batch_fraction)
        self.buffer: ReplayBuffer[T] = ReplayBuffer(config.capacity or rollout_size, config.max_bytes)
        self.rng = np.random.default_rng(config.seed)
        self.step = 0

    def state_dict(self) -> dict:
        """What a resumed run needs to continue this replay: the buffer's entries (items as stored, oldest
        first), the step count (for `reset_every_steps`) and the random generator's state. The caller saves it
        with the run's checkpoints (its items are whatever the caller stores, e.g. experiences with tensors)."""
        return {"step": self.step, "rng": self.rng.bit_generator.state,
                "entries": [{"item": e.item, "priority": e.priority, "step": e.step, "size": e.size}
                            for e in self.buffer.entries()]}

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state_dict()`'s result: the same buffer, step count and random stream."""
        self.step = int(state["step"])
        self.rng.bit_generator.state = state["rng"]
        self.buffer.restore(state["entries"])

    def select(self, items: Sequence[T], advantages: Sequence[float],
               sizes: Sequence[float] | None = None) -> SSRSelection[T]:
        """Choose this step's training samples from `items` (with their scalar advantages) and the buffer.

        `sizes`: the bytes each item keeps alive, for the buffer's `max_bytes` (None: not counted).
        """
        adv = np.asarray(advantages, dtype=np.float64)
        if adv.shape != (len(items),):
            raise ValueError(f"need one scalar advantage per item: {len(items)} items, advantages shape {adv.shape}")
        if sizes is not None and len(sizes) != len(items):
            raise ValueError(f"need one size per item: {len(items)} items, {len(sizes)} sizes")
        self.step += 1
        if self.config.reset_every_steps and (self.step - 1) % self.config.reset_every_steps == 0:
            self.buffer.clear()
        earlier = self.buffer.entries()  # informative samples of earlier steps
        informative = np.flatnonzero(np.abs(adv) > self.config.min_abs_advantage)
        fresh = [int(i) for i in informative]

        order = self.rng.permutation(len(fresh))
        selected: list[T] = [items[fresh[j]] for j in order[: self.target]]
        replayed = [False] * len(selected)
        from_earlier = [False] * len(selected)
        need = self.target - len(selected)
        warning = None
        if need > 0 and earlier:
            picks = draw_proportional(np.array([e.priority for e in earlier]), min(need, len(earlier)), self.rng)
            selected += [earlier[j].item for j in picks]
            replayed += [True] * len(picks)
            from_earlier += [True] * len(picks)
            need -= len(picks)
        if need > 0 and fresh:
            picks = draw_proportional(np.abs(adv[fresh]), need, self.rng)
            selected += [items[fresh[j]] for j in picks]
            replayed += [True] * len(picks)
            from_earlier += [False] * len(picks)
            need = 0
        if need > 0:  # no fresh informative sample, and fewer earlier samples than the target
            if earlier:
                picks = draw_proportional(np.array([e.priority for e in earlier]), need, self.rng)
                selected += [earlier[j].item for j in picks]
                replayed += [True] * len(picks)
                from_earlier += [True] * len(picks)
            else:
                selected, replayed, from_earlier = [], [], []
                warning = (f"SSR step {self.step}: no sample with non-zero advantage in this step "
                           f"({len(items)} samples, every group reward-uniform) and the replay buffer is empty; "
                           "skipping the policy update")
        if not informative.size and selected:
            warning = (f"SSR step {self.step}: no sample with non-zero advantage in this step; training on "
                       f"{len(selected)} replayed samples")

        # this step's informative samples become replayable from the next step on (oldest evicted first)
        evicted = self.buffer.add([items[i] for i in fresh], np.abs(adv[fresh]).tolist(), self.step,
                                  None if sizes is None else [float(sizes[i]) for i in fresh])
        if warning:
            logger.warning(warning)
        stats = {
            "batch_size": float(len(selected)),
            "target_size": float(self.target),
            "fresh_informative": float(len(informative)),
            "fresh_informative_share": float(len(informative) / max(len(items), 1)),
            "replayed": float(sum(replayed)),
            "replayed_share": float(sum(replayed) / len(selected)) if selected else 0.0,
            "replayed_from_earlier_steps": float(sum(from_earlier)),
            "buffer_size": float(len(self.buffer)),
            "buffer_bytes": float(self.buffer.bytes),
            "buffer_evicted_for_bytes": float(evicted),
            "skipped_step": float(not selected),
        }
        return SSRSelection(items=selected, replayed=replayed, from_earlier_step=from_earlier, stats=stats,
                            skipped=not selected, warning=warning)

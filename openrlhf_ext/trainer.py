"""Curiosity reward and selective sample replay wired into OpenRLHF 0.11.2's RL controller, without editing it.

Where it attaches (see docs/rl.md): upstream's controller (`PPOTrainer`, or `TrainingActor` in async mode) turns
each rollout into experiences with `RemoteExperienceMaker.make_experience_batch`: actor forward pass for
log-probs, then `compute_advantages_and_returns`. Our `PixelReasonerExperienceMaker` overrides only that last
method:
1. the group reward terms (the curiosity bonus; `openrlhf_ext.step_rewards`) on complete query groups, before
   advantages (the agent has scored the sample terms);
2. upstream's advantage computation (GRPO = `group_norm`), unchanged;
3. SSR (`pixel_reasoner.ssr.SelectiveSampleReplay`) on the whole step's samples: one global buffer in the
   controller, not one per data-parallel rank.
The result is the list of experiences upstream hands to the actors; its size is a multiple of
`--train.batch_size`. A step with nothing to learn from raises `SkipTrainingStep`, which the trainer turns into a
logged warning instead of a crash.

The actor classes are Ray actors subclassing upstream's (`X.__ray_actor_class__`): the sync trainer, and in async
mode the training and rollout actors. Upstream's `train()` creates them through the patch's hook
(`patch_hooks.actor_class` -> `subclass_of`). They read our configuration from the arguments upstream hands them
(`run_config.of(args)`), and build upstream's `SamplesGenerator` with a `RolloutContext` as its tokenizer, so
each rollout request carries the model path and the agent's configuration instead of the pickled processor.
Per-step numbers go to upstream's loggers (wandb / tensorboard / the "Global step" log line) and to
`metrics.jsonl` in the run directory.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import time
from collections import Counter
from typing import Dict, List, Sequence

import numpy as np

from openrlhf_ext.compat import install_flash_attn_stub

install_flash_attn_stub()  # openrlhf.models imports flash_attn at module level; a no-op where it is installed

import ray  # noqa: E402
import torch  # noqa: E402
from openrlhf.trainer import ppo_trainer, ppo_trainer_async  # noqa: E402
from openrlhf.trainer.ppo_utils.experience import (  # noqa: E402
    Experience,
    make_experience_batch,
    remove_padding_in_sequences,
    split_experience_batch,
)
from openrlhf.trainer.ppo_utils.experience_maker import RemoteExperienceMaker  # noqa: E402
from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator  # noqa: E402
from openrlhf.utils.logging_utils import init_logger  # noqa: E402

from openrlhf_ext import resume, run_config  # noqa: E402
from openrlhf_ext.rollout_context import RolloutContext  # noqa: E402
from openrlhf_ext.run_config import RunConfig  # noqa: E402
from openrlhf_ext.step_rewards import StepRewards, complete_rewards  # noqa: E402
from pixel_reasoner.errors import ConfigError  # noqa: E402
from pixel_reasoner.jsonl import write_jsonl  # noqa: E402
from pixel_reasoner.rewards import SampleOutcome  # noqa: E402
from pixel_reasoner.rewards.shaping import LOG_PREFIX  # noqa: E402
from pixel_reasoner.ssr import SelectiveSampleReplay, SSRSelection, target_size  # noqa: E402

logger = init_logger(__name__)  # upstream's logger setup, so our lines show in the Ray actors' logs


class SkipTrainingStep(Exception):
    """This step has nothing to train on (no informative sample, empty replay buffer)."""

    def __init__(self, message: str, stats: Dict[str, float]):
        super().__init__(message)
        self.stats = stats


# ---------------------------------------------------------------- per-sample views of experiences

def scalar_advantage(advantages: torch.Tensor, action_mask: torch.Tensor) -> float:
    """A sample's advantage: the mean over its action tokens (GRPO gives every action token the same value)."""
    mask = action_mask.float()
    total = mask.sum()
    if total == 0:
        return 0.0
    return float((advantages.float() * mask).sum() / total)


def _detached(item: Experience) -> Experience:
    """A single-sample experience owning its tensors (split views would keep whole micro-batches alive)."""
    changes = {}
    for f in dataclasses.fields(Experience):
        value = getattr(item, f.name)
        if isinstance(value, torch.Tensor):
            changes[f.name] = value.clone()
    changes["info"] = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in item.info.items()}
    return dataclasses.replace(item, **changes)


def split_samples(experiences: Sequence[Experience]) -> List[Experience]:
    """Micro-batches -> single-sample experiences without padding (the unit the replay buffer stores)."""
    items: List[Experience] = []
    for exp in experiences:
        index = exp.index
        # split_experience_batch clears `index` on its argument: give it a shallow copy
        for i, item in enumerate(remove_padding_in_sequences(split_experience_batch(dataclasses.replace(exp)))):
            item.index = [index[i]] if index is not None else None
            items.append(_detached(item))
    return items


def _tensors(item: Experience):
    """Every tensor a single-sample experience keeps alive: fields, multimodal inputs and info."""
    for f in dataclasses.fields(Experience):
        value = getattr(item, f.name)
        if isinstance(value, torch.Tensor):
            yield value
    for inputs in item.mm_train_inputs or []:
        if isinstance(inputs, dict):
            yield from (v for v in inputs.values() if isinstance(v, torch.Tensor))
    yield from (v for v in item.info.values() if isinstance(v, torch.Tensor))


def sample_bytes(items: Sequence[Experience]) -> List[float]:
    """Host bytes each experience keeps alive, for the SSR buffer's byte cap. A storage shared by k of `items`
    (e.g. one prompt pixel tensor per query) counts 1/k for each of them."""
    per_item = []
    users: Counter = Counter()
    for item in items:
        storages = {}
        for t in _tensors(item):
            storage = t.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        per_item.append(storages)
        users.update(storages.keys())
    return [sum(nbytes / users[ptr] for ptr, nbytes in storages.items()) for storages in per_item]


def _with_info(item: Experience, keys: Sequence[str], **flags: float) -> Experience:
    """A copy whose `info` has exactly `keys` (missing ones 0.0) plus the given flags.

    Actors batch `info` key by key, so a replayed sample must carry the same keys as this step's samples.
    """
    info = {k: item.info.get(k, torch.tensor(0.0)) for k in keys}
    info.update({k: torch.tensor(float(v)) for k, v in flags.items()})
    return dataclasses.replace(item, info=info)


def select_training_experiences(experiences: Sequence[Experience], replay: SelectiveSampleReplay,
                                rng: np.random.Generator) -> tuple[List[Experience], SSRSelection]:
    """SSR on one step: the experiences to hand to the actors (single-sample batches) and the selection.

    Every returned experience keeps its multimodal training inputs (`mm_train_inputs`), sequences, masks,
    behaviour log-probs and advantages; `info["ssr_replayed"]` marks samples drawn from the buffer.
    """
    items = split_samples(experiences)
    selection = replay.select(items, [scalar_advantage(it.advantages, it.action_mask) for it in items],
                              sample_bytes(items))
    if selection.skipped:
        return [], selection
    keys = sorted(set().union(*(it.info.keys() for it in items)) - {"ssr_replayed", "ssr_from_earlier_step"})
    chosen = [_with_info(it, keys, ssr_replayed=rep, ssr_from_earlier_step=old)
              for it, rep, old in zip(selection.items, selection.replayed, selection.from_earlier_step)]
    order = rng.permutation(len(chosen))  # spread fresh and replayed samples over data-parallel ranks
    return [make_experience_batch([chosen[i]]) for i in order], selection


# ---------------------------------------------------------------- the experience maker

class PixelReasonerExperienceMaker(RemoteExperienceMaker):
    """Upstream's experience maker with the group reward terms before advantages and SSR after them."""

    def __init__(self, *args, run: RunConfig, rollout_size: int, train_batch_size: int,
                 group_log_path: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.run = run
        self.reward_terms = run.rewards.active()
        self.replay = SelectiveSampleReplay(run.ssr, rollout_size, train_batch_size) if run.ssr.enabled else None
        self.rng = np.random.default_rng(run.ssr.seed + 1)
        self.group_log_path = group_log_path
        self.current_step = 0
        self.fresh_experiences: List[Experience] = []
        self.step_stats: Dict[str, float] = {}

    # upstream calls this with the step's experiences (log-probs and rewards filled in)
    @torch.no_grad()
    def compute_advantages_and_returns(self, experiences: List[Experience]) -> List[Experience]:
        self.step_stats = {}
        step = self._complete_rewards(experiences)
        experiences = super().compute_advantages_and_returns(experiences)
        self.fresh_experiences = list(experiences)
        self._log_groups(experiences, step)
        if self.replay is None:
            return experiences
        selected, selection = select_training_experiences(experiences, self.replay, self.rng)
        self.step_stats.update({f"ssr/{k}": v for k, v in selection.stats.items()})
        self.step_stats["ssr/batch_multiple_of_train_batch"] = float(
            len(selected) % self.args.train.batch_size == 0)
        if selection.skipped:
            raise SkipTrainingStep(selection.warning or "SSR: nothing to train on", dict(self.step_stats))
        if self.run.ssr.stale_logprobs == "recompute":
            self._recompute_log_probs([e for e in selected if float(e.info["ssr_from_earlier_step"][0]) > 0])
        return selected

    # -- resuming

    def state_dict(self) -> dict:
        """What this maker carries from step to step: the SSR replay (buffer, step count, random stream) and the
        random stream that spreads samples over ranks. Curiosity carries nothing (RaPR is per group and step)."""
        return {"ssr": None if self.replay is None else self.replay.state_dict(),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        if self.replay is not None and state["ssr"] is not None:
            self.replay.load_state_dict(state["ssr"])

    # -- the group reward terms

    @staticmethod
    def _in_rollout_order(experiences: Sequence[Experience], values: torch.Tensor) -> np.ndarray:
        """Per-sample values of the step's experiences, in the original rollout order (groups are contiguous)."""
        order = np.concatenate([np.asarray(e.index) for e in experiences])
        out = np.empty(len(order), dtype=np.float64)
        out[order] = values.numpy()
        return out

    def _complete_rewards(self, experiences: List[Experience]) -> StepRewards:
        """The agent's rewards plus the group terms, written back into the experiences (`rewards`, `info`)."""
        keys = set.intersection(*(set(e.info) for e in experiences))
        logs = {key: self._in_rollout_order(experiences, torch.cat([e.info[key].reshape(-1).float()
                                                                    for e in experiences]))
                for key in keys if key in SampleOutcome.LOG_KEYS or key.startswith(LOG_PREFIX)}
        rewards = self._in_rollout_order(experiences, torch.cat([e.rewards.reshape(-1).float() for e in experiences]))
        step = complete_rewards(rewards, logs, self.args.rollout.n_samples_per_prompt, self.reward_terms)
        for e in experiences:
            idx = np.asarray(e.index)
            dtype = e.rewards.dtype if e.rewards.is_floating_point() else torch.float32
            e.rewards = torch.as_tensor(step.rewards[idx], dtype=dtype)
            e.info["reward"] = e.rewards.clone()
            for key, values in step.terms.items():
                e.info[key] = torch.as_tensor(values[idx], dtype=torch.float32)
        self.step_stats.update(step.stats(self.run.log.uniform_tolerance))
        return step

    # -- records

    def _log_groups(self, experiences: List[Experience], step: StepRewards) -> None:
        if not (self.group_log_path and self.run.log.group_records):
            return
        adv = np.empty(len(step.rewards))
        labels: list = [None] * len(adv)
        for e in experiences:
            for i, pos in enumerate(e.index):
                adv[pos] = scalar_advantage(e.advantages[i], e.action_mask[i])
                labels[pos] = e.labels[i] if e.labels else None
        write_jsonl(self.group_log_path, step.group_records(self.current_step, adv, labels), append=True)

    # -- stale log-probs

    def _recompute_log_probs(self, replayed: List[Experience]) -> None:
        """Behaviour log-probs of replayed samples := the current policy's (before this step's update).

        One forward per sample on the actor ranks. Upstream hands rank k the k-th chunk of ceil(total / ranks)
        samples (`RayActorGroup.async_run_method_batch`), and under ZeRO-3 every forward all-gathers the
        parameters, a collective: ranks that run different numbers of forwards hang. So the list is padded
        with repeats to a multiple of the data-parallel ranks. With importance-sampling correction
        (`--algo.advantage.is_correction_level`), a replay's rollout log-probs become the recomputed ones too:
        "recompute" treats the current policy as the replay's behaviour policy, and the stale vLLM log-probs
        would otherwise make upstream mask or clip every replay away.
        """
        if not replayed:
            return
        group = self.actor_model_group
        ranks = len(group._actor_handlers) // group.duplicate_actors
        padded = [replayed[i % len(replayed)] for i in range(padded_forward_count(len(replayed), ranks))]
        kwargs = dict(sequences=[e.sequences for e in padded], action_mask=[e.action_mask for e in padded],
                      attention_mask=[e.attention_mask for e in padded])
        if any(e.mm_train_inputs for e in padded):
            kwargs["mm_train_inputs_list"] = [e.mm_train_inputs for e in padded]
        refs = group.async_run_method_batch(method_name="forward", **kwargs)
        log_probs = self._flatten_results(refs, group.duplicate_actors)
        for e, lp in zip(replayed, log_probs):
            e.action_log_probs = lp
            if e.rollout_log_probs is not None:
                e.rollout_log_probs = lp.clone()


def padded_forward_count(count: int, ranks: int) -> int:
    """The smallest multiple of `ranks` that is >= `count`: one forward each gives every rank the same number."""
    return math.ceil(count / ranks) * ranks


# ---------------------------------------------------------------- the controller (trainer) side

def _numeric(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def agent_sample_means(experiences: Sequence[Experience], config: RunConfig) -> Dict[str, float]:
    """`agent/<key>_mean` over the samples for each of `config.log.sample_means` they all carry, and
    `agent/operation_error_rate`: failed / requested operations (0.0 when none was requested)."""
    def values(key: str) -> torch.Tensor | None:
        if not experiences or not all(key in e.info for e in experiences):
            return None
        return torch.cat([e.info[key].reshape(-1).float() for e in experiences])

    stats = {}
    for key in config.log.sample_means:
        v = values(key)
        if v is not None:
            stats[f"agent/{key}_mean"] = float(v.mean())
    requested, failed = values("num_operations"), values("num_operation_errors")  # `SampleOutcome.LOG_KEYS`
    if requested is not None and failed is not None:
        stats["agent/operation_error_rate"] = float(failed.sum() / requested.sum()) if requested.sum() > 0 else 0.0
    return stats


class PixelReasonerTrainerMixin:
    """Hooks shared by the sync `PPOTrainer` and the async `TrainingActor` (both `BasePPOTrainer`s)."""

    def _pr_setup(self) -> None:
        self.pr_config: RunConfig = run_config.of(self.args)
        args = self.args
        self.pr_rollout_size = args.rollout.batch_size * args.rollout.n_samples_per_prompt
        run_dir = self.pr_config.log.run_dir or os.path.join(args.ckpt.output_dir, "pixel_reasoner")
        os.makedirs(run_dir, exist_ok=True)
        self.pr_run_dir = run_dir
        self.pr_metrics_path = os.path.join(run_dir, "metrics.jsonl")
        old = self.experience_maker
        self.experience_maker = PixelReasonerExperienceMaker(
            old.actor_model_group, old.critic_model_group, old.reward_model_group, old.initial_model_group,
            old.kl_ctl, old.strategy, old.tokenizer, run=self.pr_config, rollout_size=self.pr_rollout_size,
            train_batch_size=args.train.batch_size, group_log_path=os.path.join(run_dir, "groups.jsonl"))
        self.pr_started = time.time()
        self.pr_history: List[dict] = []
        self.pr_restored: dict | None = None
        logger.info(f"Pixel Reasoner trainer hooks installed: {json.dumps(self.pr_config.to_dict())}")

    def pr_describe(self) -> dict:
        """What is installed (used by tests and the launcher's log)."""
        maker = self.experience_maker
        generator = getattr(self, "samples_generator", None)
        return {"trainer": type(self).__name__, "experience_maker": type(maker).__name__,
                "ssr_target": None if maker.replay is None else maker.replay.target,
                "run_dir": self.pr_run_dir, "config": self.pr_config.to_dict(), "restored": self.pr_restored,
                **(describe_rollout_requests(generator) if generator is not None else {})}

    def init_checkpoint_states(self) -> Dict:
        """Upstream's checkpoint states (step, episode, data loader) and, when it resumes, our state saved with
        that checkpoint (the SSR buffer; `openrlhf_ext.resume`)."""
        states = super().init_checkpoint_states()
        if states.get("global_step", 0) > 0:
            self._pr_restore(states)
        return states

    def _pr_restore(self, states: Dict) -> None:
        step = states["global_step"]
        state = resume.load_state(self.args.ckpt.path, states)
        if state is None:
            logger.warning(f"resuming from step {step}: its checkpoint carries no Pixel Reasoner state (saved "
                           "without it), so the SSR buffer starts empty")
        else:
            self.experience_maker.load_state_dict(state["experience_maker"])
        self.pr_history, dropped = resume.trim_records(self.pr_metrics_path, step)
        group_log = self.experience_maker.group_log_path
        dropped_groups = resume.trim_records(group_log, step)[1] if group_log else 0
        entries = self.experience_maker.replay.buffer.entries() if self.experience_maker.replay else []
        self.pr_restored = {"global_step": step, "state": states.get(resume.STATE_KEY),
                            "ssr_buffer_size": len(entries), "ssr_buffer_steps": sorted({e.step for e in entries}),
                            "dropped_metric_lines": dropped, "dropped_group_lines": dropped_groups}
        logger.info(f"Pixel Reasoner state restored: {json.dumps(self.pr_restored)}")

    def train_step(self, rollout_samples, global_step: int):
        self.experience_maker.current_step = global_step + 1
        try:
            return super().train_step(rollout_samples, global_step)
        except SkipTrainingStep as skip:  # SSR has logged why
            status = dict(skip.stats)
            status.update(self._fresh_rollout_stats(self.experience_maker.fresh_experiences))
            return status, global_step + 1

    def _fresh_rollout_stats(self, experiences) -> Dict:
        """Upstream's rollout numbers and the agent's per-sample means, over the step's fresh samples."""
        if not experiences:
            return {}
        stats = super()._compute_rollout_stats(experiences)
        stats.update(agent_sample_means(experiences, self.pr_config))
        return stats

    def _compute_rollout_stats(self, experiences) -> Dict:
        """Rollout numbers of the fresh samples (not the SSR batch) plus the reward terms' and SSR numbers.
        Upstream logs what this returns to every configured logger (wandb, tensorboard, the "Global step" line)."""
        stats = self._fresh_rollout_stats(self.experience_maker.fresh_experiences or experiences)
        stats.update(self.experience_maker.step_stats)
        return stats

    def save_logs_and_checkpoints(self, global_step: int, logs_dict=None, client_states=None) -> None:
        """Our records, then upstream's loggers and checkpoint; at a checkpoint step our state is written first and
        named in the checkpoint's `client_states` (`openrlhf_ext.resume`)."""
        record = {"step": global_step, "time_s": round(time.time() - self.pr_started, 3), **_numeric(logs_dict or {})}
        write_jsonl(self.pr_metrics_path, [record], append=True)
        self.pr_history.append(record)
        client_states = {} if client_states is None else client_states
        saving = global_step % self.args.ckpt.save_steps == 0
        if saving:
            state = {"experience_maker": self.experience_maker.state_dict()}
            client_states[resume.STATE_KEY] = resume.save_state(self.args.ckpt.path, global_step, state)
        super().save_logs_and_checkpoints(global_step, logs_dict, client_states)
        if saving:
            resume.prune_states(self.args.ckpt.path, keep=client_states[resume.STATE_KEY])

    def fit(self, *args, **kwargs):
        result = super().fit(*args, **kwargs)
        self._write_summary()
        return result

    def _write_summary(self) -> None:
        steps = self.pr_history
        terms = [t.name for t in self.pr_config.rewards.active()]
        columns = ["reward/total_mean", "rollout/correct_mean", "rollout/rapr_mean",
                   *(f"{LOG_PREFIX}{name}_mean" for name in terms), "ssr/reward_uniform_group_ratio",
                   "ssr/replayed_share", "ssr/buffer_size", "ssr/batch_size"]
        headers = ["reward", "correct", "RaPR", *terms, "uniform groups", "replayed", "buffer", "batch"]
        lines = [f"# RL run summary ({len(steps)} steps, {time.time() - self.pr_started:.0f} s)", "",
                 "| step | " + " | ".join(headers) + " |", "|---" * (len(headers) + 1) + "|"]
        for r in steps:
            cells = ["" if r.get(key) is None else f"{r[key]:.4g}" for key in columns]
            lines.append(f"| {r['step']} | " + " | ".join(cells) + " |")
        lines += ["", f"Per-step records: {self.pr_metrics_path}", f"Config: {os.path.join(self.pr_run_dir, 'config.json')}"]
        with open(os.path.join(self.pr_run_dir, "summary.md"), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        logger.info("\n".join(lines))


def rollout_samples_generator(generator: SamplesGenerator, args) -> SamplesGenerator:
    """Upstream's samples generator built again with a `RolloutContext` as its tokenizer: every rollout request
    then carries the model path and the agent's configuration (a few KB) instead of the pickled processor."""
    run = run_config.of(args)
    context = RolloutContext(args.actor.model_name_or_path, run.rollout, run.rewards)
    return SamplesGenerator(strategy=generator.strategy, prompts_dataloader=generator.prompts_dataloader,
                            eval_dataloader=generator.eval_dataloader, tokenizer=context,
                            vllm_engines=generator.vllm_engines)


def describe_rollout_requests(generator: SamplesGenerator) -> dict:
    """What every rollout request of this generator carries as `hf_tokenizer`, and its pickled size."""
    return {"rollout_request_tokenizer": type(generator.tokenizer).__name__,
            "rollout_request_tokenizer_bytes": len(pickle.dumps(generator.tokenizer))}


def optimizer_steps_scale(args) -> float:
    """Optimizer steps per rollout with SSR relative to upstream's count (it trains the whole rollout)."""
    config = run_config.of(args)
    if not config.ssr.enabled:
        return 1.0
    rollout = args.rollout.batch_size * args.rollout.n_samples_per_prompt
    return target_size(rollout, args.train.batch_size, config.ssr.batch_fraction) / rollout


@ray.remote
class PixelReasonerPPOTrainer(PixelReasonerTrainerMixin, ppo_trainer.PPOTrainer.__ray_actor_class__):
    """Upstream's synchronous single controller, with the group reward terms and SSR, and small rollout requests."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.samples_generator = rollout_samples_generator(self.samples_generator, self.args)
        self._pr_setup()
        self.max_steps = math.ceil(self.max_steps * optimizer_steps_scale(self.args))


@ray.remote
class PixelReasonerTrainingActor(PixelReasonerTrainerMixin, ppo_trainer_async.TrainingActor.__ray_actor_class__):
    """Upstream's async-mode training actor, with the group reward terms and SSR."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pr_setup()


@ray.remote
class PixelReasonerGenerateSamplesActor(ppo_trainer_async.GenerateSamplesActor.__ray_actor_class__):
    """Upstream's async-mode rollout actor, with small rollout requests; it also reports the step count (which
    upstream's async trainer asks it for) scaled to what SSR trains per rollout."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.samples_generator = rollout_samples_generator(self.samples_generator, self.args)

    def get_max_steps(self):
        return math.ceil(super().get_max_steps() * optimizer_steps_scale(self.args))

    def pr_describe(self) -> dict:
        return {"actor": type(self).__name__, **describe_rollout_requests(self.samples_generator)}


def _class_key(cls) -> tuple[str, str]:
    """Where a (Ray actor) class is defined. Identity does not do: in async mode upstream's `PPOTrainerAsync` is
    itself a Ray actor, which Ray ships to its worker by value (its module name holds the actor handle, not the
    class), and with it copies of the actor handles it creates; their module and name are kept."""
    cls = getattr(cls, "__ray_actor_class__", cls)
    return cls.__module__, cls.__qualname__


def subclass_of(upstream_cls):
    """Our actor class for the upstream class `train()` is about to create (the async trainer itself is upstream's:
    it creates our rollout and training actors through the same hook)."""
    key = _class_key(upstream_cls)
    if key == _class_key(ppo_trainer_async.PPOTrainerAsync):
        return upstream_cls
    ours = {_class_key(ppo_trainer.PPOTrainer): PixelReasonerPPOTrainer,
            _class_key(ppo_trainer_async.TrainingActor): PixelReasonerTrainingActor,
            _class_key(ppo_trainer_async.GenerateSamplesActor): PixelReasonerGenerateSamplesActor}
    if key not in ours:
        raise ConfigError(f"--pr.enable: no Pixel Reasoner actor extends {upstream_cls!r}; openrlhf_ext.trainer "
                          "subclasses PPOTrainer, TrainingActor and GenerateSamplesActor of OpenRLHF 0.11.2")
    return ours[key]

"""Pixel Reasoner's multi-turn visual-operation agent for OpenRLHF 0.11.2 (`--train.agent_func_path` this file).

OpenRLHF's interface, implemented directly (`AgentExecutorBase.execute`, token in, token out): upstream
constructs `AgentExecutor()` once in every vLLM actor and calls `execute(prompt, label, sampling_params,
max_length, hf_tokenizer, llm_engine, images)` for every sample; the returned dict is upstream's response:
`observation_tokens`, `action_ranges`, `rollout_log_probs`, `mm_train_inputs`, `reward`, `scores`,
`extra_logs`, `truncated`, `prompt`, `label`, `images` (the dataset's references as given, not pixels).

One sample (`execute`), read top to bottom:
1. in a worker thread (`AgentRuntime.start`): the label is checked, the sample gets its own `Episode` over its
   media (images, or a video shown as a video), and the prompt is processed once per query (token ids and pixel
   tensors, shared by the query's samples); the sample's `RolloutSample` starts with them.
2. each turn: vLLM generates from the sample's token ids (capped at `max_turn_tokens`, stopped right after a
   tool call, vision tokens banned); in a worker thread (`AgentRuntime.advance`) the generated ids join the
   sample as trained tokens, the episode steps on the generated text (parse, run the operation), and the
   observation, processed into token ids and pixel tensors, joins as untrained tokens.
3. when the episode ends (answer, limit, truncation, or an observation that would leave fewer than
   `min_turn_tokens` to generate): the sample reward terms and the per-sample logs, and the pixel tensors
   concatenated once (`RolloutSample.response`), in a worker thread.
The event loop, which drives every sample of the actor, only awaits: decoding, operations, the processor and
every per-token loop run in the agent's threads.

`scores` = correctness in [0, 1] (`TaskLabel.reward`: `pixel_reasoner.scoring` on the extracted answer, 0 unless
the episode ended with an answer; for scoring "paper", the official rule on the whole trajectory; scoring and
choices from the label, see `openrlhf_ext.labels`). `reward` = the sum of the configured sample reward terms'
`weight * value` (`pixel_reasoner.rewards`: by default correctness and the efficiency penalty); group terms (the
curiosity bonus) need the whole group of samples: the trainer adds them.
`extra_logs` (per sample, floats; `Experience.info[key]`): the outcome (`SampleOutcome.LOG_KEYS`, what group
terms read) and each sample term's contribution under `reward/<name>`.

Configuration: the `RolloutContext` our trainer sends as `hf_tokenizer` (`openrlhf_ext.rollout_context`);
under plain upstream OpenRLHF (the processor itself as `hf_tokenizer`) the defaults. `AgentExecutor(config)`
for direct use (tests, benchmarks). This file is executed by upstream's loader without being registered in
`sys.modules`, so it holds plain classes only; the pieces live in importable modules.
"""
from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from typing import Any

import torch
from openrlhf.utils.agent import AgentExecutorBase
from openrlhf.utils.logging_utils import init_logger

from openrlhf_ext.forced_turns import ForcedTurns, TurnPlan
from openrlhf_ext.labels import TaskLabel
from openrlhf_ext.model_inputs import (PromptInputs, count_placeholders, encode_observation, encode_prompt)
from openrlhf_ext.rollout_config import RolloutConfig
from openrlhf_ext.rollout_context import RolloutContext, context_of
from openrlhf_ext.rollout_sample import RolloutSample
from pixel_reasoner.episode import Episode
from pixel_reasoner.errors import ConfigError, DataError
from pixel_reasoner.media import VIDEO_EXTENSIONS, DecodedImageCache, InMemoryImage, VideoSource
from pixel_reasoner.protocol import ProtocolProfile
from pixel_reasoner.protocol.chatml import IM_END
from pixel_reasoner.rewards import SampleOutcome
from pixel_reasoner.rewards.shaping import RewardConfig, sample_rewards

logger = init_logger(__name__)  # upstream's logger set-up, so our lines show in the vLLM actors' logs

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
BANNED_LOGIT_BIAS = -100.0  # the lowest bias vLLM accepts: the token is never sampled


class Rollout:
    """One sample in flight: its episode, label, token sequence, sampling parameters and forced turns."""

    def __init__(self, episode: Episode, task: TaskLabel, sample: RolloutSample, params: Any,
                 plans: list[TurnPlan]):
        self.episode, self.task, self.sample, self.params, self.plans = episode, task, sample, params, plans
        self.done = False
        self.correct = 0.0
        self.truncated = False

    def turn_params(self, max_turn_tokens: int) -> Any:
        """This turn's sampling parameters: what is left of `max_length`, capped at `max_turn_tokens`."""
        turn = self.episode.stats.turns + 1
        params = self.params
        if turn <= len(self.plans):
            params = deepcopy(self.params)
            self.plans[turn - 1].apply(params)
        params.max_tokens = min(max_turn_tokens, self.sample.room())
        return params

    def outcome(self) -> SampleOutcome:
        """The finished sample as the reward terms see it."""
        return SampleOutcome.from_episode(self.episode, self.correct, self.truncated)


class AgentRuntime:
    """What one vLLM actor's samples share: the configuration, the processor, the decoded-image cache (which
    also holds each query's processed prompt) and the worker threads."""

    def __init__(self, config: RolloutConfig, processor: Any, context: RolloutContext | None = None,
                 rewards: RewardConfig | None = None):
        self.config, self.processor, self.context = config, processor, context
        self.reward_terms = (rewards or (context.rewards if context is not None else RewardConfig())).active()
        self.profile = config.protocol()
        self.cache = DecodedImageCache(config.image_cache_bytes)
        self.pool = ThreadPoolExecutor(config.operation_threads, thread_name_prefix="pixel-reasoner-op")
        self.forced = ForcedTurns.from_rules(config.forced_turns)
        self.pixel_dtype = getattr(torch, config.pixel_dtype)
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.end_of_turn_id = self.tokenizer.convert_tokens_to_ids(IM_END)
        self.is_vlm = hasattr(processor, "image_processor")
        ids = [self.tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS] if self.is_vlm else []
        self.vision_token_ids = sorted({i for i in ids if i is not None and i != self.tokenizer.unk_token_id})

    # -- before the first turn (worker thread)

    def start(self, prompt: str, task: TaskLabel, images: Any, max_length: int, sampling_params: Any,
              plans: list[TurnPlan]) -> Rollout:
        episode = self.new_episode(images, task)
        inputs = self.prompt_inputs(episode, task, prompt)
        if len(inputs.token_ids) + self.config.min_turn_tokens > max_length:
            raise DataError(f"{task.where}: the prompt is {len(inputs.token_ids)} tokens (images included), which "
                            f"leaves less than min_turn_tokens={self.config.min_turn_tokens} of --data.max_len "
                            f"{max_length}; raise --data.max_len or lower the pixel budgets")
        sample = RolloutSample(inputs, max_length, with_log_probs=sampling_params.logprobs is not None)
        return Rollout(episode, task, sample, self.turn_sampling_params(sampling_params), plans)

    def new_episode(self, images: Any, task: TaskLabel) -> Episode:
        """The sample's episode over its own media: images, or a video (a file or a list of frame images) shown as
        a video, whose selected frames come back as images numbered from 1."""
        refs = [] if images is None else list(images) if isinstance(images, (list, tuple)) else [images]
        is_file = len(refs) == 1 and isinstance(refs[0], str) and refs[0].lower().endswith(VIDEO_EXTENSIONS)
        if task.is_video or is_file:
            if not refs or not all(isinstance(r, str) for r in refs):
                raise DataError(f"{task.where}: a video sample needs a video file path or a list of frame paths, "
                                f"got {refs!r}")
            video = VideoSource(path=refs[0], num_frames=self.config.video_frames) if is_file \
                else VideoSource(frame_paths=refs)
            return Episode(self.profile, video=video, config=self.config.episode_config(), cache=self.cache)
        if len(refs) >= self.config.limits.max_images:
            raise DataError(f"{task.where}: {len(refs)} input images leave no room for produced images under "
                            f"limits.max_images={self.config.limits.max_images}; raise it in the rollout config "
                            "(and --data.max_images_per_prompt)")
        return Episode(self.profile, images=refs, config=self.config.episode_config(), cache=self.cache)

    def prompt_inputs(self, episode: Episode, task: TaskLabel, prompt: str) -> PromptInputs:
        """The processed prompt, computed once per query (its samples ask concurrently; one computes it)."""
        shown, frames = episode.input_images(), episode.video_frames()
        images_in_text, videos_in_text = count_placeholders(prompt)
        if images_in_text != len(shown) or videos_in_text != int(bool(frames)):
            raise DataError(f"{task.where}: the prompt has {images_in_text} image and {videos_in_text} video "
                            f"placeholder(s) but the sample has {len(shown)} image(s) and {int(bool(frames))} "
                            "video(s); convert the data with `python -m openrlhf_ext.data convert`")

        def encode() -> PromptInputs:
            return encode_prompt(self.processor, prompt, shown, frames, self.config.video_fps, self.pixel_dtype)

        if any(isinstance(im.source, InMemoryImage) for im in episode.images):
            return encode()  # an in-memory image has no stable identity to share its pixels by
        media = tuple(im.source.key for im in episode.images) + ((episode.video.key,) if episode.video else ())
        return self.cache.get(("prompt", prompt, media), encode, PromptInputs.nbytes)

    def turn_sampling_params(self, sampling_params: Any) -> Any:
        """A per-sample copy that ends a turn right after a tool call (the stop string kept in the output) and
        never samples a vision token (one in an action would become an image placeholder without an image)."""
        params = deepcopy(sampling_params)
        params.stop = list(dict.fromkeys([*(params.stop or []), *self.config.stop]))
        params.include_stop_str_in_output = True
        if self.vision_token_ids:
            params.logit_bias = {**(params.logit_bias or {}),
                                 **{t: BANNED_LOGIT_BIAS for t in self.vision_token_ids}}
        return params

    # -- after each turn (worker thread)

    def advance(self, rollout: Rollout, output: Any) -> None:
        """One generated turn: its tokens join the sample, the episode steps, the observation joins (or it ends)."""
        ids = list(output.token_ids)
        log_probs = None
        if rollout.sample.log_probs is not None:
            log_probs = [position[token].logprob for position, token in zip(output.logprobs or [], ids)]
        rollout.sample.add_action(ids, log_probs)
        result = rollout.episode.step(output.text, truncated=output.finish_reason == "length")
        if result.done:
            rollout.done = True
            rollout.truncated = result.termination == "truncated"
            rollout.correct = rollout.task.reward(result.termination, result.answer, rollout.episode.messages,
                                                  self.config.scoring)
            return
        observation = result.observation
        assert observation is not None
        # a turn that stopped on the end-of-turn token has it among its ids: the observation must not add another
        closed = bool(ids) and ids[-1] == self.end_of_turn_id
        text = observation.continuation(close_assistant_turn=not closed)
        obs_ids, mm = encode_observation(self.processor, text, observation.images, self.pixel_dtype)
        if len(obs_ids) + self.config.min_turn_tokens > rollout.sample.room():
            rollout.done = rollout.truncated = True  # no room left to answer after it (the paper reward still reads
            rollout.correct = rollout.task.reward("truncated", None, rollout.episode.messages,  # the trajectory)
                                                  self.config.scoring)
            return
        rollout.sample.add_observation(obs_ids, mm, observation.images)

    # -- at the end (worker thread)

    def finish(self, rollout: Rollout) -> dict:
        response = rollout.sample.response()
        outcome = rollout.outcome()
        terms = sample_rewards(outcome, self.reward_terms)
        response.update(reward=sum(terms.values()), scores=rollout.correct,
                        extra_logs={**outcome.to_logs(), **terms}, truncated=rollout.truncated)
        return response


class AgentExecutor(AgentExecutorBase):
    """Entry point loaded by OpenRLHF (`--train.agent_func_path openrlhf_ext/agent.py`)."""

    def __init__(self, config: RolloutConfig | None = None, rewards: RewardConfig | None = None):
        self.config, self.rewards = config, rewards
        self.runtime: AgentRuntime | None = None
        self._starting: asyncio.Lock | None = None

    async def execute(self, prompt, label, sampling_params, max_length: int, hf_tokenizer, llm_engine, images=None):
        runtime = await self.runtime_for(hf_tokenizer, llm_engine)
        loop = asyncio.get_running_loop()
        task = TaskLabel.parse(label).validate(runtime.config.scoring)
        plans = runtime.forced.schedule(prompt)
        rollout = await loop.run_in_executor(runtime.pool, runtime.start, prompt, task, images, max_length,
                                             sampling_params, plans)
        while not rollout.done:
            output = await llm_engine.generate(rollout.sample.token_ids,
                                               rollout.turn_params(runtime.config.max_turn_tokens),
                                               multi_modal_data=rollout.sample.multi_modal_data())
            await loop.run_in_executor(runtime.pool, runtime.advance, rollout, output.outputs[0])
        response = await loop.run_in_executor(runtime.pool, runtime.finish, rollout)
        response.update(prompt=prompt, label=label, images=images)
        return response

    async def runtime_for(self, hf_tokenizer: Any, llm_engine: Any) -> AgentRuntime:
        """The actor's runtime, built at its first sample from the `RolloutContext` it carries."""
        if self.runtime is None:
            self._starting = self._starting or asyncio.Lock()
            async with self._starting:
                if self.runtime is None:
                    context, processor = await asyncio.to_thread(context_of, hf_tokenizer)
                    self.runtime = self.build_runtime(context, processor, getattr(llm_engine, "kwargs", None))
        elif isinstance(hf_tokenizer, RolloutContext) and hf_tokenizer != self.runtime.context:
            raise ConfigError("a rollout request carries another configuration than the first one this vLLM actor "
                              "received; one actor serves one run")
        return self.runtime

    def build_runtime(self, context: RolloutContext | None, processor: Any, engine_kwargs: dict | None) -> AgentRuntime:
        if context is not None and self.config is not None and context.config != self.config:
            raise ConfigError("AgentExecutor(config) differs from the configuration in the RolloutContext")
        config = context.config if context is not None else (self.config or RolloutConfig())
        origin = "the RolloutContext" if context is not None else \
            "the constructor" if self.config is not None else "defaults (no RolloutContext: plain OpenRLHF)"
        rewards = context.rewards if context is not None else (self.rewards or RewardConfig())
        check_compatibility(config, processor, engine_kwargs)
        logger.info("pixel-reasoner rollout agent, config from %s: %s; rewards: %s", origin,
                    json.dumps(config.to_dict(), sort_keys=True), json.dumps(rewards.to_dict(), sort_keys=True))
        return AgentRuntime(config, processor, context, rewards)


def check_compatibility(config: RolloutConfig, processor: Any, engine_kwargs: dict | None = None,
                        profile: ProtocolProfile | None = None) -> None:
    """Fail early when the model's processor or the vLLM engine would not show what the episode thinks it shows.

    - Every special token of the tokenizer must be among the profile's `reserved_tokens` (default: the
      rollout config's profile), or model text quoted in an observation could turn into one.
    - The processor must leave our resized images (and a video's frames) unchanged: its [min_pixels, max_pixels]
      must contain every budget, or it would resize them again and the model would see other pixels (and other
      coordinates).
    - vLLM's per-prompt image limit (`--data.max_images_per_prompt`) must cover `limits.max_images`.
    """
    profile = profile or config.protocol()
    uncovered = profile.uncovered_tokens(getattr(getattr(processor, "tokenizer", processor), "all_special_tokens", ()))
    if uncovered:
        raise ConfigError(f"the tokenizer's special tokens {uncovered} are not in profile {profile.name!r}'s "
                          "reserved_tokens: model text quoted in an observation could become one (e.g. an image "
                          "placeholder without an image); add them to the profile's reserved_tokens")
    checks = (("image_processor", ("original", "crop", "frame")), ("video_processor", ("frame",)))
    for attribute, kinds in checks:
        bounds = processor_pixel_bounds(getattr(processor, attribute, None))
        if bounds is None:
            continue
        low, high = bounds
        for kind in kinds:
            budget = config.budgets().for_kind(kind)
            if budget.max_pixels > high or budget.min_pixels < low:
                raise ConfigError(
                    f"budgets.{kind} = [{budget.min_pixels}, {budget.max_pixels}] pixels is outside the processor's "
                    f"{attribute} [{low}, {high}]: the processor would resize the images again. Lower the budget in "
                    "the rollout config or raise min/max_pixels in the model's preprocessor_config.json")
    limit = ((engine_kwargs or {}).get("limit_mm_per_prompt") or {}).get("image")
    if limit is not None and limit < config.limits.max_images:
        raise ConfigError(f"vLLM accepts {limit} images per prompt (--data.max_images_per_prompt) but a trajectory "
                          f"may show limits.max_images={config.limits.max_images}; set --data.max_images_per_prompt "
                          f"{config.limits.max_images} (or lower limits.max_images)")


def processor_pixel_bounds(image_processor: Any) -> tuple[int, int] | None:
    """(min_pixels, max_pixels) of a Qwen2-VL-style image or video processor, or None if it does not say."""
    if image_processor is None:
        return None
    low, high = getattr(image_processor, "min_pixels", None), getattr(image_processor, "max_pixels", None)
    size = getattr(image_processor, "size", None)
    if size is not None and (low is None or high is None):
        def get(key: str) -> Any:
            return size.get(key) if isinstance(size, dict) else getattr(size, key, None)
        low, high = low or get("shortest_edge"), high or get("longest_edge")
    return (int(low), int(high)) if low and high else None


__all__ = ["AgentExecutor", "AgentRuntime", "Rollout", "check_compatibility"]

"""Pixel Reasoner's multi-turn visual-operation agent for OpenRLHF 0.11.2 (`--train.agent_func_path` this file).

Interface (stable; the RL training loop builds on it)
-----------------------------------------------------
- `AgentExecutor()`: what OpenRLHF's `RolloutRayActor` instantiates (no arguments) in every vLLM actor. It reads
  `RolloutConfig` (see `openrlhf_ext.rollout_config`: env `PIXEL_REASONER_ROLLOUT_CONFIG` or
  `./pixel_reasoner_rollout.json`) and logs it. `AgentExecutor(config)` for direct use (tests, benchmarks).
- `await AgentExecutor.execute(prompt, label, sampling_params, max_length, hf_tokenizer, llm_engine, images=None)`
  returns OpenRLHF's response dict unchanged in form: `observation_tokens`, `action_ranges`, `rollout_log_probs`,
  `mm_train_inputs`, `reward`, `scores`, `extra_logs`, `truncated`, `prompt`, `label`, `images` (the dataset's
  image references as given, not pixels).
- `reward` = `scores` = correctness of the final answer in [0, 1] (`pixel_reasoner.scoring` on the extracted
  answer, kind/choices from the label, see `openrlhf_ext.labels`); 0 unless the episode ended with an answer.
  The curiosity bonus and efficiency penalty are not applied here: they need the whole group of samples.
- `extra_logs` (per sample, floats; OpenRLHF turns them into `Experience.info[key]`): `EXTRA_LOG_KEYS`:
  `num_operations` (n_vo: requested operations, failed ones included), `used_pixel_reasoning` (1_PR: 1.0 if
  n_vo > 0), `num_operation_errors`, `correct`, `turns`, `num_images` (images produced by operations),
  `is_video`, `answered` (ended with an answer), `truncated` (ran out of tokens or context).

How a sample runs
-----------------
`execute` binds the sample's media to its own `pixel_reasoner.episode.Episode` (a fresh per-call subclass of
`EpisodeAgentInstance` carries it, because OpenRLHF's `reset`/`step` never see the images and instantiate the
agent class with no arguments; nothing mutable is shared between concurrent samples). The dataset images (or a
video's frames) are decoded through a byte-bounded cache shared by the samples of the actor, so the n samples of
one query decode them once, resized to the pixel budgets, and handed to OpenRLHF as the prompt's images: the
pixels the model sees are exactly the episode's. OpenRLHF's `MultiTurnAgentExecutor` then drives the turns and
keeps vLLM's token ids (nothing is decoded and re-tokenized); each turn stops right after a tool call (stop
strings, included in the output); `step` feeds the turn's text to the episode and returns the observation:
its ChatML continuation with one `<|vision_start|><|image_pad|><|vision_end|>` per new image, plus the images.
Everything heavy (decoding, operations, resizing, and the processor on new images, which OpenRLHF would run
on the event loop that drives every sample of the actor) runs in the agent's thread pool. The continuation
closes the assistant turn with `<|im_end|>` only when vLLM did not already emit it (a turn stopped by the stop
string has none; a turn stopped by the end-of-turn token has it in its token ids). Observation tokens, image
tokens included, are outside `action_ranges`, so they are masked out of the loss.
"""
from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from typing import Any, Sequence

import torch
from openrlhf.utils.agent import AgentInstanceBase, MultiTurnAgentExecutor
from openrlhf.utils.logging_utils import init_logger

from openrlhf_ext.labels import TaskLabel
from openrlhf_ext.rollout_config import RolloutConfig, load_rollout_config
from pixel_reasoner.episode import Episode, EpisodeStats, StepResult
from pixel_reasoner.errors import ConfigError, DataError
from pixel_reasoner.media import DecodedImageCache, VideoSource
from pixel_reasoner.protocol import ProtocolProfile
from pixel_reasoner.protocol.chatml import IM_END, IMAGE_PLACEHOLDER

logger = init_logger(__name__)

EXTRA_LOG_KEYS = ("num_operations", "used_pixel_reasoning", "num_operation_errors", "correct", "turns",
                  "num_images", "is_video", "answered", "truncated")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpeg", ".mpg")
TOKENS_PER_IMAGE_PIXELS = 28 * 28  # Qwen2.5-VL: one visual token per 28x28 pixels of an already-resized image


class SampleState:
    """Everything one sample's turns share: its episode, label, and the engine's last output.

    (A plain class, not a dataclass: OpenRLHF executes this file without registering it in `sys.modules`,
    which `dataclasses` needs.)
    """

    def __init__(self, episode: Episode, task: TaskLabel, engine: "SampleEngine", processor: "PreparedProcessor",
                 config: RolloutConfig, max_length: int, pool: ThreadPoolExecutor):
        self.episode, self.task, self.engine, self.processor = episode, task, engine, processor
        self.config, self.max_length, self.pool = config, max_length, pool
        self.tokenizer = getattr(processor, "tokenizer", processor)  # text tokenizer, to size observations
        self.end_of_turn_id = self.tokenizer.convert_tokens_to_ids(IM_END)

    def logs(self, correct: float = 0.0, truncated: bool = False) -> dict[str, float]:
        stats: EpisodeStats = self.episode.stats
        return {"num_operations": float(stats.num_operations),
                "used_pixel_reasoning": float(stats.used_pixel_reasoning),
                "num_operation_errors": float(stats.num_operation_errors),
                "correct": float(correct),
                "turns": float(stats.turns),
                "num_images": float(stats.num_images_produced),
                "is_video": float(self.episode.video is not None),
                "answered": float(stats.termination == "answer"),
                "truncated": float(truncated or stats.termination == "truncated")}


class SampleEngine:
    """The rollout engine as one sample sees it: it caps each turn at `max_turn_tokens` (OpenRLHF gives a turn
    everything left of `max_len`) and remembers the last output, so `step` knows how the turn ended (stop
    string, end-of-turn token, or length) and how long the token sequence is."""

    def __init__(self, engine: Any, max_turn_tokens: int):
        self._engine = engine
        self.max_turn_tokens = max_turn_tokens
        self.last_output: Any = None
        self.last_prompt_length = 0

    async def generate(self, prompt_token_ids: list[int], sampling_params: Any, multi_modal_data: Any = None):
        # OpenRLHF hands over a fresh copy per call, so capping it in place touches nothing shared
        if sampling_params.max_tokens is None or sampling_params.max_tokens > self.max_turn_tokens:
            sampling_params.max_tokens = self.max_turn_tokens
        output = await self._engine.generate(prompt_token_ids, sampling_params, multi_modal_data=multi_modal_data)
        self.last_output, self.last_prompt_length = output, len(prompt_token_ids)
        return output


class EpisodeAgentInstance(AgentInstanceBase):
    """One trajectory. `AgentExecutor.execute` makes a subclass per sample whose `sample` is that sample's state."""

    sample: SampleState

    def __init__(self, *args, **kwargs):
        pass

    async def reset(self, states: dict, **kwargs) -> dict:
        return {"observation": states["observation"]}

    async def step(self, states: dict, **kwargs) -> dict:
        sample = self.sample
        return await asyncio.get_running_loop().run_in_executor(sample.pool, _advance, sample, states["action_text"])


def _advance(sample: SampleState, action_text: str) -> dict:
    """One turn's environment work, run in a worker thread: the episode step (parse, operation), the observation
    text, and the processor on its images (answered later from `sample.processor` when OpenRLHF asks)."""
    output = sample.engine.last_output.outputs[0]
    result: StepResult = sample.episode.step(action_text, truncated=output.finish_reason == "length")
    if result.done:
        correct = sample.task.reward(result.termination, result.answer, sample.episode.messages,
                                     sample.config.reward_kind)
        return _final(correct, sample.logs(correct))
    observation = result.observation
    assert observation is not None
    # A turn that vLLM stopped on the end-of-turn token already has it among its token ids: do not add another.
    close_turn = not (output.token_ids and output.token_ids[-1] == sample.end_of_turn_id)
    feedback = observation.continuation(close_assistant_turn=close_turn)
    images = observation.images
    if not _fits(sample, output, feedback, images):
        # OpenRLHF would drop the images and keep their text; end the trajectory here instead (reward 0).
        return _final(0.0, sample.logs(truncated=True))
    if images:
        sample.processor.prepare(feedback, images)
    return {"rewards": torch.tensor(0.0), "scores": torch.tensor(0.0), "environment_feedback": feedback,
            "environment_images": images or None, "done": False, "extra_logs": sample.logs()}


def _final(correct: float, logs: dict) -> dict:
    return {"rewards": torch.tensor(correct), "scores": torch.tensor(correct), "environment_feedback": "",
            "done": True, "extra_logs": logs}


def _fits(sample: SampleState, output: Any, feedback: str, images: Sequence) -> bool:
    """Whether the sequence after this observation still fits `max_length` (as OpenRLHF counts it)."""
    text_tokens = len(sample.tokenizer(feedback, add_special_tokens=False)["input_ids"])
    image_tokens = sum(im.width * im.height // TOKENS_PER_IMAGE_PIXELS - 1 for im in images)
    total = sample.engine.last_prompt_length + len(output.token_ids) + text_tokens + image_tokens
    return total <= sample.max_length


class PreparedProcessor:
    """The model's processor as one sample sees it. OpenRLHF runs the processor on the event loop that drives
    every sample of the actor (`process_prompt_with_images`: ~10-100 ms per large image); the agent runs those
    calls beforehand in its worker threads (`prepare`), and this object answers OpenRLHF's identical call (same
    text, same image objects, same options) with the prepared result. Anything else goes to the processor."""

    CALL_OPTIONS = {"add_special_tokens": False, "return_tensors": "pt"}  # as process_prompt_with_images calls it

    def __init__(self, processor: Any):
        self._processor = processor
        self._prepared: list[tuple[str, tuple, Any]] = []

    def __getattr__(self, name: str) -> Any:  # only called for names this object does not have
        if name == "_processor":
            raise AttributeError(name)
        return getattr(self._processor, name)

    def prepare(self, text: str, images: Sequence) -> None:
        output = self._processor(text=[text], images=list(images), **self.CALL_OPTIONS)
        self._prepared.append((text, tuple(images), output))

    def __call__(self, *args, text: Any = None, images: Any = None, **kwargs) -> Any:
        if images and not args and kwargs == self.CALL_OPTIONS:
            for i, (prepared_text, prepared_images, output) in enumerate(self._prepared):
                if text == [prepared_text] and len(images) == len(prepared_images) and all(
                        a is b for a, b in zip(images, prepared_images)):
                    del self._prepared[i]
                    return output
        return self._processor(*args, text=text, images=images, **kwargs)


class AgentExecutor(MultiTurnAgentExecutor):
    """Entry point loaded by OpenRLHF (`--train.agent_func_path openrlhf_ext/agent.py`)."""

    def __init__(self, config: RolloutConfig | None = None):
        origin = "constructor argument"
        if config is None:
            config, origin = load_rollout_config()
        self.config = config
        self.profile = config.protocol()
        self.cache = DecodedImageCache(config.image_cache_bytes)
        # Operations, decoding and the processor run in these threads, never on the event loop that drives all
        # samples; asyncio's default pool has only cpu_count + 4 threads.
        self.pool = ThreadPoolExecutor(config.operation_threads, thread_name_prefix="pixel-reasoner-op")
        self._checked = False
        logger.info("pixel-reasoner rollout agent, config from %s: %s", origin,
                    json.dumps(config.to_dict(), sort_keys=True))
        super().__init__(EpisodeAgentInstance)

    async def execute(self, prompt, label, sampling_params, max_length: int, hf_tokenizer, llm_engine, images=None):
        if not self._checked:
            check_compatibility(self.config, hf_tokenizer, getattr(llm_engine, "kwargs", None))
            self._checked = True
        task = TaskLabel.parse(label).validate(self.config.reward_kind)
        episode = self.new_episode(images, task)
        processor = PreparedProcessor(hf_tokenizer) if hasattr(hf_tokenizer, "image_processor") else hf_tokenizer
        shown = await asyncio.get_running_loop().run_in_executor(self.pool, self._prepare_prompt, episode, task,
                                                                 prompt, processor)
        sample = SampleState(episode, task, SampleEngine(llm_engine, self.config.max_turn_tokens), processor,
                             self.config, max_length, self.pool)
        bound = type("BoundEpisodeAgentInstance", (EpisodeAgentInstance,), {"sample": sample})
        response = await MultiTurnAgentExecutor(bound).execute(
            prompt, label, self.turn_sampling_params(sampling_params), max_length, processor, sample.engine,
            images=shown or None)
        response["images"] = images  # references, as OpenRLHF passed them: pixels travel in mm_train_inputs
        return response

    @staticmethod
    def _prepare_prompt(episode: Episode, task: TaskLabel, prompt: str, processor: Any) -> list:
        """In a worker thread: the prompt's images at their budgets (decoded once per query through the cache),
        checked against the prompt's placeholders, and the processor run on them."""
        shown = episode.input_images()
        placeholders = prompt.count(IMAGE_PLACEHOLDER)
        if placeholders != len(shown):
            raise DataError(f"{task.where}: the prompt has {placeholders} image placeholder(s) but the sample has "
                            f"{len(shown)} image(s){' (video frames)' if episode.video else ''}; convert the data "
                            "with `python -m openrlhf_ext.data convert`")
        if shown and isinstance(processor, PreparedProcessor):
            processor.prepare(prompt, shown)
        return shown

    def turn_sampling_params(self, sampling_params: Any) -> Any:
        """A per-sample copy that ends a turn right after a tool call, keeping the stop string in the output."""
        params = deepcopy(sampling_params)
        params.stop = list(dict.fromkeys([*(params.stop or []), *self.config.stop]))
        params.include_stop_str_in_output = True
        return params

    def new_episode(self, images: Any, task: TaskLabel) -> Episode:
        """The sample's episode over its own media: images, a video's frame list, or a video file."""
        refs = [] if images is None else list(images) if isinstance(images, (list, tuple)) else [images]
        is_video = task.is_video or (len(refs) == 1 and isinstance(refs[0], str)
                                     and refs[0].lower().endswith(VIDEO_EXTENSIONS))
        video = None
        if is_video:
            if not refs or not all(isinstance(r, str) for r in refs):
                raise DataError(f"{task.where}: a video sample needs a video file path or a list of frame paths, "
                                f"got {refs!r}")
            video = VideoSource(path=refs[0], num_frames=self.config.video_frames) \
                if len(refs) == 1 and refs[0].lower().endswith(VIDEO_EXTENSIONS) else VideoSource(frame_paths=refs)
            refs = video.frames()
        if len(refs) >= self.config.limits.max_images:
            raise DataError(f"{task.where}: {len(refs)} input images leave no room for produced images under "
                            f"limits.max_images={self.config.limits.max_images}; raise it in the rollout config "
                            "(and --data.max_images_per_prompt)")
        return Episode(self.profile, images=refs, video=video, config=self.config.episode_config(is_video),
                       cache=self.cache)


def check_compatibility(config: RolloutConfig, processor: Any, engine_kwargs: dict | None = None,
                        profile: ProtocolProfile | None = None) -> None:
    """Fail early when the model's processor or the vLLM engine would not show what the episode thinks it shows.

    - Every special token of the tokenizer must be among the profile's `reserved_tokens` (default: the
      rollout config's profile), or model text quoted in an observation could turn into one.
    - The processor must leave our resized images unchanged: its [min_pixels, max_pixels] must contain every
      budget, or it would resize them again and the model would see other pixels (and other coordinates).
    - vLLM's per-prompt image limit (`--data.max_images_per_prompt`) must cover `limits.max_images`.
    """
    profile = profile or config.protocol()
    uncovered = profile.uncovered_tokens(getattr(getattr(processor, "tokenizer", processor), "all_special_tokens", ()))
    if uncovered:
        raise ConfigError(f"the tokenizer's special tokens {uncovered} are not in profile {profile.name!r}'s "
                          "reserved_tokens: model text quoted in an observation could become one (e.g. an image "
                          "placeholder without an image); add them to the profile's reserved_tokens")
    bounds = processor_pixel_bounds(processor)
    if bounds is not None:
        low, high = bounds
        for kind in ("original", "crop", "frame"):
            budget = config.budgets.for_kind(kind)
            if budget.max_pixels > high or budget.min_pixels < low:
                raise ConfigError(
                    f"budgets.{kind} = [{budget.min_pixels}, {budget.max_pixels}] pixels is outside the processor's "
                    f"[{low}, {high}]: the processor would resize the images again. Lower the budget in the rollout "
                    "config or raise min/max_pixels in the model's preprocessor_config.json")
    limit = ((engine_kwargs or {}).get("limit_mm_per_prompt") or {}).get("image")
    if limit is not None and limit < config.limits.max_images:
        raise ConfigError(f"vLLM accepts {limit} images per prompt (--data.max_images_per_prompt) but a trajectory "
                          f"may show limits.max_images={config.limits.max_images}; set --data.max_images_per_prompt "
                          f"{config.limits.max_images} (or lower limits.max_images)")


def processor_pixel_bounds(processor: Any) -> tuple[int, int] | None:
    """(min_pixels, max_pixels) of a Qwen2-VL-style image processor, or None if it does not say."""
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None:
        return None
    low, high = getattr(image_processor, "min_pixels", None), getattr(image_processor, "max_pixels", None)
    size = getattr(image_processor, "size", None)
    if size is not None and (low is None or high is None):
        def get(key: str) -> Any:
            return size.get(key) if isinstance(size, dict) else getattr(size, key, None)
        low, high = low or get("shortest_edge"), high or get("longest_edge")
    return (int(low), int(high)) if low and high else None


__all__ = ["AgentExecutor", "EpisodeAgentInstance", "EXTRA_LOG_KEYS", "SampleState", "check_compatibility"]

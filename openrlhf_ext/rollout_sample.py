"""One rollout sample as the trainer will see it, assembled turn by turn: token ids and loss mask side by side.

    token_ids  [ prompt .................. | action 1 | observation 1 ........ | action 2 | ...
    loss_mask  [ 0 0 0 0 0 0 0 0 0 0 0 0 0 | 1 1 1 1  | 0 0 0 0 0 0 0 0 0 0 0 | 1 1 1 1  | ...
    log_probs  [ 0.0 ..................... | vLLM's  | 0.0 ................. | vLLM's   | ...
    mm_parts   [ prompt's pixels (shared by the query's samples) | observation 1's images | ... ]

Actions are vLLM's sampled token ids as they are (nothing is decoded and tokenized again); observations are the
processor's ids of the episode's observation text, image tokens included, and are never trained. The pixel
tensors of each image are kept as a list and concatenated once, when the sample is finished (`response`), in
the order their placeholders appear in `token_ids`. `images` is what vLLM is given every turn (it re-reads the
whole conversation); `video` is the prompt's video.
"""
from __future__ import annotations

from typing import Any, Sequence

from PIL import Image

from openrlhf_ext.model_inputs import PromptInputs, merge_parts


class RolloutSample:
    def __init__(self, prompt: PromptInputs, max_length: int, with_log_probs: bool):
        self.token_ids: list[int] = list(prompt.token_ids)
        self.loss_mask: list[int] = [0] * len(prompt.token_ids)
        self.log_probs: list[float] | None = [0.0] * len(prompt.token_ids) if with_log_probs else None
        self.mm_parts: list[dict] = [prompt.mm] if prompt.mm else []
        self.images: list[Image.Image] = list(prompt.images)
        self.video = prompt.video
        self.max_length = max_length

    def room(self) -> int:
        """Tokens left before `max_length`."""
        return self.max_length - len(self.token_ids)

    def add_action(self, token_ids: Sequence[int], log_probs: Sequence[float] | None) -> None:
        """A generated turn: trained."""
        self.token_ids += token_ids
        self.loss_mask += [1] * len(token_ids)
        if self.log_probs is not None:
            if log_probs is None or len(log_probs) != len(token_ids):
                raise RuntimeError("the engine returned no log-prob per generated token although they were asked for")
            self.log_probs += log_probs

    def add_observation(self, token_ids: Sequence[int], mm: dict | None, images: Sequence[Image.Image]) -> None:
        """What the environment shows next, images included: never trained."""
        self.token_ids += token_ids
        self.loss_mask += [0] * len(token_ids)
        if self.log_probs is not None:
            self.log_probs += [0.0] * len(token_ids)
        if mm:
            self.mm_parts.append(mm)
        self.images += images

    def multi_modal_data(self) -> dict | None:
        """The media of the whole conversation so far, as vLLM takes them."""
        data: dict[str, Any] = {}
        if self.images:
            data["image"] = list(self.images)
        if self.video is not None:
            data["video"] = [self.video]
        return data or None

    def action_ranges(self) -> list[tuple[int, int]]:
        """(start, end) of each run of trained tokens: OpenRLHF builds its action mask from them."""
        ranges, start = [], None
        for i, trained in enumerate(self.loss_mask + [0]):
            if trained and start is None:
                start = i
            elif not trained and start is not None:
                ranges.append((start, i))
                start = None
        return ranges

    def response(self) -> dict:
        """OpenRLHF's fields of an agent response that describe the sequence (the agent adds rewards and logs)."""
        return {"observation_tokens": self.token_ids, "action_ranges": self.action_ranges(),
                "rollout_log_probs": self.log_probs, "mm_train_inputs": merge_parts(self.mm_parts)}

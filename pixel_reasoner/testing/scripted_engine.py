"""A stand-in for the rollout engine that answers each assistant turn with fixed text, as vLLM returns it (token
ids + text; a turn that ends on a stop string keeps it and has no end-of-turn token, any other turn ends with
`<|im_end|>`; a turn longer than `max_tokens` is cut there with finish reason "length"), so the agent around the
engine can be tested without one (`tests/rollout/test_agent_unit.py`,
`tests/bench/test_gpu_cost.py`)."""
from __future__ import annotations

from types import SimpleNamespace


class ScriptedEngine:
    """Answers assistant turn k with `turns[k - 1]`, tokenized as the model would have produced it."""

    def __init__(self, tokenizer, turns: list[str]):
        self.tokenizer, self.turns = tokenizer, turns
        self.im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.max_tokens: list[int] = []

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        self.max_tokens.append(sampling_params.max_tokens)
        turn = self.tokenizer.decode(prompt_token_ids).count("<|im_start|>assistant")
        text = self.turns[turn - 1]
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        stopped_on_string = any(text.endswith(s) for s in sampling_params.stop)
        if not stopped_on_string:
            ids, text = ids + [self.im_end], text + "<|im_end|>"
        finish = "stop"
        if sampling_params.max_tokens is not None and len(ids) > sampling_params.max_tokens:
            ids, finish = ids[:sampling_params.max_tokens], "length"
            text = self.tokenizer.decode(ids)
        output = SimpleNamespace(token_ids=ids, text=text, finish_reason=finish, logprobs=None)
        return SimpleNamespace(outputs=[output], prompt_token_ids=prompt_token_ids)

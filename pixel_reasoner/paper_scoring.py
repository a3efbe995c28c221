"""The paper's correctness rule, as the official code runs it: one function for the eval and the RL reward.

Source: TIGER-AI-Lab/Pixel-Reasoner @ a3a6c3a, `curiosity_driven_rl/openrlhf/trainer/ppo_utils/experience_maker.py`
(`EM` below). Table 1's accuracies (V*, TallyQA-complex, MVBench) and the RL correctness reward both come from
`rule_reward` (EM:908) on the assistant part of the whole multi-turn conversation (`separate_qa`, EM:173/1582):
a response counts as correct iff its result is > 0 (EM:1724, 1743), and the per-question mean over samples is
averaged over questions (`curiosity_driven_rl/openrlhf/trainer/evaluator.py:233-249`).

How it is *called* matters: `convenient_get_batch_rewards_from_queries` (EM:1588) passes
`(solutions, gts, eos, format_type, self.executor, requires_box)` to `batch_rule_reward(sols, gts, eostoken,
format_type, *args)` (EM:973), which forwards `*args` to `rule_reward(sol, gt, eostoken, format_type,
requires_box, *args)`. So `requires_box` receives `self.executor`, which is None (EM:1446): the strict "box
required" branch never runs. What runs (the frozen fixtures in tests/eval/fixtures prove it on every case):

1. The ground truth (a string, or a list of acceptable strings) is lower-cased; a list with a "%" answer also
   accepts it without the "%" (EM:936-944). The trajectory text is lower-cased (EM:947).
2. For each ground truth (EM:949-970), `handle_boxed` (EM:818) with `requires_box` falsy: the gold is parsed by
   math-verify as `\\boxed{gold}`; then, in order, the text from the *last* `\\boxed` to the end of the whole
   trajectory (any turn, closed or not), the *first* single-line `<answer>...</answer>`, and finally the whole
   trajectory text are verified against it; the first that verifies wins, else the last attempt's result stands.
   (`Answer:` is also listed, EM:879, but never matches: the text was lower-cased.)
3. `do_verify` (EM:789): math-verify `parse` + `verify`; a parse that finds nothing or raises gives -1.
   `normalize_answer` (EM:806) first deletes `\\text`, `minutes` and `cm` anywhere, and maps `dfrac`/`varnothing`.
4. A gold with a comma (multi-span) that did not verify is correct when every comma-separated part of
   `gold[7:-1]` (a slice meant for `\\boxed{...}`, applied to the bare gold too) occurs in the text from the last
   `boxed` on (EM:955-970).

math-verify is pinned to 0.7.0, the release the paper's evaluation ran on (released 2025-02-27; the paper's
results date from May 2025, 0.8.0 came out in July 2025); later releases accept more (`15\\%` vs `15`).
math-verify is imported only when the rule runs, so the core stays pillow + numpy: it is in the `eval` and `rl`
extras. Its timeouts use SIGALRM, which only the main thread may set (in another thread every parse fails and
the official function returns -1): calls from other threads (the RL agent's worker pool) go to a child process
that runs the rule in its main thread, so the result never depends on the calling thread.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import re
import subprocess
import sys
import threading
from typing import Mapping, Sequence

from pixel_reasoner.protocol.chatml import IM_END, IM_START, render_content, render_message, render_messages

MATH_VERIFY_VERSION = "0.7.0"
KIND = "paper"  # the scoring kind that selects this rule (RL labels and `reward_kind`)
ASSISTANT_HEADER = IM_START + "assistant\n"
_BOXED = "\\boxed"
_FIRST_ANSWER_TAG = re.compile("<answer>(.*?)</answer>")  # the official pattern: first match, one line (EM:882)
_OPTION_LETTERS = "ABCDEFGHIJK"


def require_math_verify() -> None:
    """Raise ConfigError naming the install command when math-verify is missing (before any row is scored)."""
    _math_verify()


def _math_verify():
    try:
        from math_verify import parse, verify
        from math_verify.errors import TimeoutException
    except ImportError:
        from pixel_reasoner.errors import ConfigError

        raise ConfigError(f"the paper's scoring rule needs math-verify=={MATH_VERIFY_VERSION}: pip install "
                          f"'math-verify=={MATH_VERIFY_VERSION}' (in the `eval` and `rl` extras), or score with "
                          "the lenient protocol (--protocol lenient)") from None
    # math-verify logs a traceback for every answer it cannot parse, which would flood eval and RL logs; such
    # answers score as the official code scores them (-1, i.e. wrong)
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    return parse, verify, TimeoutException


def normalize_answer(text: str) -> str:
    """EM:806: the official clean-up, applied to the gold and to the whole text being verified."""
    for old, new in (("dfrac", "frac"), ("\\text", ""), ("\\varnothing", "\\emptyset"), ("minutes", ""), ("cm", "")):
        text = text.replace(old, new)
    return text


def do_verify(candidate: str, gold: list) -> float:
    """EM:789: 1.0 / 0.0 as math-verify decides, -1.0 when the candidate parses to nothing or raises."""
    parse, verify, timeout = _math_verify()
    try:
        parsed = parse(candidate)
        if len(gold) > 1 and gold[1] in _OPTION_LETTERS:  # a substring test on the gold's text, as in the original
            return float(candidate[len("\\boxed{"):].startswith(gold[1]))
        return float(verify(parsed, gold)) if parsed else -1.0
    except (Exception, timeout):
        return -1.0


def _verify_against(text: str, gold: str) -> float:
    """EM:818 `handle_boxed` with `requires_box` falsy, for one lower-cased gold and the lower-cased text: the
    first candidate that verifies wins; otherwise the whole text's result stands (EM:877-903)."""
    parse, _, _ = _math_verify()
    gold = normalize_answer(gold)
    parsed_gold = parse(gold if _BOXED in gold else f"\\boxed{{{gold}}}")  # parse returns [] instead of raising
    if not parsed_gold:
        return -1.0
    if _BOXED in text and do_verify(normalize_answer(text[text.rindex(_BOXED):].strip()), parsed_gold) > 0.99:
        return 1.0
    found = _FIRST_ANSWER_TAG.search(text)
    if found and do_verify(normalize_answer(f"\\boxed{{{found.group(1)}}}"), parsed_gold) > 0.99:
        return 1.0
    return do_verify(normalize_answer(text), parsed_gold)


def _official_reward(solution: str, answer: "str | int | float | Sequence[str]") -> float:
    if isinstance(answer, (list, tuple)):
        golds = [str(a).lower() for a in answer]
        with_percent = next((g for g in golds if "%" in g), None)
        if with_percent is not None and with_percent.replace("%", "") not in golds:
            golds.insert(0, with_percent.replace("%", ""))
    else:
        golds = [str(answer).lower()]
    text = solution.lower()
    result = 0.0
    for gold in golds:
        result = _verify_against(text, gold)
        if result > 0.5:
            break
        if "," in gold:
            parts = [p.lower().strip() for p in gold[len("\\boxed{"):-1].split(",")]
            last = text.rfind("boxed")
            if last == -1:
                continue
            tail = "\\" + text[last:]
            if all(p in tail for p in parts):
                result = 1.0
                break
    return result


class _MainThreadWorker:
    """A child Python process that runs the rule in its own main thread, one request at a time (JSON lines on its
    stdin and stdout), for callers outside the main thread. A plain subprocess rather than multiprocessing: that
    would re-run the caller's main module in the child (a Ray or vLLM worker, or a script read from stdin)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None

    def __call__(self, solution: str, answer: "str | int | float | Sequence[str]") -> float:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
                env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
                self._process = subprocess.Popen([sys.executable, "-m", "pixel_reasoner.paper_scoring"], env=env,
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert self._process.stdin is not None and self._process.stdout is not None
            self._process.stdin.write(json.dumps([solution, answer]) + "\n")
            self._process.stdin.flush()
            reply = self._process.stdout.readline()
        if not reply:
            raise RuntimeError("the paper-scoring worker process exited; its error is on stderr above")
        return float(json.loads(reply))

    def close(self) -> None:
        """End the child: closing its stdin ends its loop."""
        with self._lock:
            if self._process is not None:
                for stream in (self._process.stdin, self._process.stdout):
                    if stream is not None:
                        stream.close()
                self._process.wait(timeout=30)
                self._process = None


_WORKER = _MainThreadWorker()
atexit.register(_WORKER.close)


def official_reward(solution: str, answer: "str | int | float | Sequence[str]") -> float:
    """`rule_reward`'s correctness value (EM:908, last element) as the official eval and RL ran it: 1.0, 0.0,
    or -1.0 (nothing parseable). `solution` is the assistant part of the trajectory (`solution_text`)."""
    require_math_verify()  # a missing dependency is reported here, in the caller's thread
    if threading.current_thread() is threading.main_thread():
        return _official_reward(solution, answer)
    return _WORKER(solution, answer)


def paper_correct(solution: str, answer: "str | int | float | Sequence[str]") -> float:
    """1.0 when the paper counts the trajectory correct (`rule_reward` > 0, EM:1724), else 0.0."""
    return 1.0 if official_reward(solution, answer) > 0 else 0.0


def solution_text(messages: Sequence[Mapping], ended_with_end_of_turn: bool) -> str:
    """The text `rule_reward` scores, from a conversation (system, user, then assistant turns and observations),
    built as the official code builds it: the conversation rendered as ChatML (`apply_chat_template`, EM:2342, 2399)
    with image/video pad tokens removed (EM:2205), the last turn as generated (its `<|im_end|>` only if the model
    ended it), then `extract_qwen_query_and_response` (EM:173-189): everything after the first
    `<|im_start|>assistant\\n`, with the later ones removed."""
    rendered = render_messages(list(messages))
    if messages and messages[-1].get("role") == "assistant":
        rendered = rendered.removesuffix(IM_END + "\n") + (IM_END if ended_with_end_of_turn else "")
    rendered = rendered.replace("<|image_pad|>", "").replace("<|video_pad|>", "")
    return "".join(rendered.split(ASSISTANT_HEADER)[1:])


def eval_output_text(messages: Sequence[Mapping]) -> str:
    """The official eval output's `solutions` field (EM:2583-2616, written at EM:1880): the first assistant turn,
    then for each later one its observation(s) as `<|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n` and
    its text; no `<|im_end|>` after the turns, image pads removed. The paper's InfoVQA ANLS was computed from this
    file (Pixel-Reasoner GitHub issue #6)."""
    first = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), len(messages))
    pieces, pending = [], []
    for m in messages[first:]:
        if m.get("role") != "assistant":
            pending.append(m)
            continue
        if pieces or pending:
            previous = "assistant"
            for i, o in enumerate(pending):
                following = pending[i + 1]["role"] if i + 1 < len(pending) else "assistant"
                pieces.append(render_message(dict(o), previous, following))
                previous = o["role"]
            pieces.append(ASSISTANT_HEADER)
        pieces.append(render_content(m.get("content")))
        pending = []
    return "".join(pieces).replace("<|image_pad|>", "").replace("<|video_pad|>", "")


def _serve() -> None:
    """The worker's loop (`python -m pixel_reasoner.paper_scoring`): [solution, answer] in, the reward out."""
    replies, sys.stdout = sys.stdout, sys.stderr  # nothing but replies on the reply stream
    for line in sys.stdin:
        solution, answer = json.loads(line)
        replies.write(json.dumps(_official_reward(solution, answer)) + "\n")
        replies.flush()


if __name__ == "__main__":
    _serve()

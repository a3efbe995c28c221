"""Multiple-choice options: the data's order (the paper's protocol), or a seeded per-question shuffle.

The default is the order the data gives (`order_choices(q, None)`): the official evaluation shows the options
as its parquets list them, so only that order gives numbers comparable to the paper's Table 1. Shuffling
(`--shuffle-options SEED`) measures order bias: V* annotation files list the correct option first, and MVBench's
candidates are not balanced either, so a model biased towards "A" scores high for the wrong reason; the report
shows a shuffled run as its own row and the difference between the two orders. Each question gets its own
permutation from a hash of (seed, benchmark, id), so the order is the same on every machine, in every run, and
for every sample of that question, independent of how many questions are loaded (`--limit`) or in which order.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
import re

from pixel_reasoner.errors import DataError
from pixel_reasoner.scoring import choice_letter

from eval.question import Question

def letter(index: int) -> str:
    return chr(ord("A") + index)


def question_rng(seed: int, *parts: object) -> random.Random:
    """A random generator that depends only on its arguments (not on PYTHONHASHSEED or call order)."""
    digest = hashlib.sha256(":".join(str(p) for p in (seed, *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def correct_index(q: Question) -> int:
    """Index of the correct option of a multiple-choice question (its answer may be a letter or option text)."""
    found = choice_letter(str(q.answer), q.choices)
    if found is None:
        raise DataError(f"{q.benchmark} question {q.id}: answer {q.answer!r} is neither an option letter nor one of "
                        f"the options {q.choices}")
    return ord(found) - ord("A")


def option_order(shuffle_seed: int | None, sort: bool = False) -> str:
    """How a run lists the options, as recorded in its manifest: original | shuffled | sorted."""
    return "sorted" if sort else "original" if shuffle_seed is None else "shuffled"


def order_choices(q: Question, shuffle_seed: int | None, sort: bool = False) -> Question:
    """The question as shown: options in the data's order (`shuffle_seed` None), shuffled with that seed, or sorted
    by their text (`sort`), the answer rewritten as the letter of the correct option.

    The original order and the permutation are kept in `meta` so every row can be traced back.
    """
    if not q.choices:
        return q
    right = correct_index(q)
    order = list(range(len(q.choices)))
    if sort:
        order.sort(key=lambda i: q.choices[i])
    elif shuffle_seed is not None:
        question_rng(shuffle_seed, q.benchmark, q.id).shuffle(order)
    shown = [q.choices[i] for i in order]
    meta = dict(q.meta, original_choices=list(q.choices), original_answer=letter(right), permutation=order,
                option_order=option_order(shuffle_seed, sort))
    return dataclasses.replace(q, choices=shown, answer=letter(order.index(right)), meta=meta)


_IMAGE_TAG = re.compile(r"<image>\s*", re.I)
_CHOICES_HEADER = re.compile(r"\n\s*(?:choices|options)\s*:\s*\n", re.I)
_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])\s*[\).:]\s*(.*?)\s*$")


@dataclasses.dataclass(frozen=True)
class EmbeddedChoices:
    stem: str
    choices: list[str] | None
    trailer: str  # text after the option lines (instructions the profile adds itself)


def split_embedded_choices(text: str) -> EmbeddedChoices:
    """Split "question\\nchoices:\\nA: x\\nB: y\\n\\ninstructions" (the Pixel-Reasoner parquet format; also
    "(A) x" and "A. x" lines) into stem, options and trailing text. `<image>` tags are removed."""
    text = _IMAGE_TAG.sub("", text).strip()
    header = _CHOICES_HEADER.search(text)
    lines = text[header.end():].split("\n") if header else []
    stem = text[: header.start()].strip() if header else text
    if not header:  # V*-style "(A) x" lines directly after the question
        all_lines = text.split("\n")
        first = next((i for i, line in enumerate(all_lines) if (m := _OPTION_LINE.match(line)) and m.group(1) == "A"),
                     None)
        if not first:  # no option lines, or nothing before them
            return EmbeddedChoices(text, None, "")
        stem, lines = "\n".join(all_lines[:first]).strip(), all_lines[first:]
    choices: list[str] = []
    consumed = 0
    for line in lines:
        m = _OPTION_LINE.match(line)
        if not m or m.group(1) != letter(len(choices)):
            break
        choices.append(m.group(2))
        consumed += 1
    if len(choices) < 2:
        return EmbeddedChoices(text, None, "")
    return EmbeddedChoices(stem, choices, "\n".join(lines[consumed:]).strip())

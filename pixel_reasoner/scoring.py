"""Answer scoring: multiple choice, counting, exact match and ANLS. Pure Python, so scoring runs anywhere.

These are the *lenient* rules (the eval's `--protocol lenient`, the RL reward kinds other than "paper"): they
accept many answer formats so that a new model is not scored on its formatting. The paper's own rule, which
makes a number comparable to the paper's Table 1, is `pixel_reasoner.paper_scoring`. `anls` is the official
function for both (one ANLS, for local scores and the server's alike).

Normalisation of the lenient rules (applied to predictions and ground truths alike):
- `clean_answer`: unwraps LaTeX that models put in `\\boxed{}` (`\\text{...}`, `\\mathrm{...}`, `$...$`) and
  surrounding quotes; strips whitespace.
- `normalize_text`: `clean_answer`, lower-cased, runs of whitespace collapsed to one space.
- exact match additionally ignores one trailing period.
- ANLS (InfoVQA, τ = 0.5): `anls` is lmms-eval's function, unchanged in behaviour (see its docstring); the lenient
  kind "anls" applies `clean_answer` to the prediction first.
- multiple choice: a prediction may be a letter ("B", "(B)", "B.", "B: Sheep", "Option B") or an option's text;
  the ground truth may be a letter or an option's text. Both map to a letter and must agree.
- counting: an integer in digits or English words ("three", "twenty-one"; "no"/"none"/"zero" = 0); when the answer
  contains prose, its first number counts.
"""
from __future__ import annotations

import re
from typing import Sequence

ANLS_THRESHOLD = 0.5
_LATEX_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}")


def clean_answer(text: str) -> str:
    s = text.strip()
    for _ in range(3):
        s = _LATEX_WRAPPERS.sub(r"\1", s)
    s = s.replace("\\%", "%").replace("\\$", "$")
    if len(s) >= 2 and s[0] == s[-1] == "$":
        s = s[1:-1]
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'`":
        s = s[1:-1]
    return s.strip()


def normalize_text(text: str) -> str:
    return " ".join(clean_answer(text).lower().split())


def as_answer_list(answer: "str | int | Sequence[str] | None") -> list[str]:
    if answer is None:
        return []
    if isinstance(answer, (list, tuple)):
        return [str(a) for a in answer]
    return [str(answer)]


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def anls(prediction: str | None, answers: "str | Sequence[str]", threshold: float = ANLS_THRESHOLD) -> float:
    """ANLS of one prediction, the max over its ground truths, exactly as lmms-eval computes it
    (EvolvingLMMs-Lab/lmms-eval `lmms_eval/api/metrics.py:298-321`, taken from Qwen-VL's `infographicsvqa_eval.py`;
    the function the paper's InfoVQA number was computed with, per Pixel-Reasoner GitHub issue #6).

    The Levenshtein distance is taken between lower-cased, trimmed, whitespace-collapsed strings but divided by
    the longer of the *raw* lengths; a similarity 1 − NL below τ scores 0 and exactly 0.5 is kept. Two empty
    strings score 1. (The PyPI `anls` package differs in two places, checked in tests: it divides by the
    normalised lengths and scores NL = 0.5 as 0.)
    """
    pred = prediction or ""
    detected = " ".join(pred.strip().lower().split())
    distances = []
    for gt in as_answer_list(answers):
        dist = levenshtein(" ".join(gt.strip().lower().split()), detected)
        length = max(len(gt.upper()), len(pred.upper()))
        distances.append(0.0 if length == 0 else dist / length)
    if not distances:
        return 0.0
    similarity = 1 - min(distances)
    return 0.0 if similarity < threshold else similarity


def exact_match(prediction: str | None, answers: "str | Sequence[str]") -> float:
    pred = normalize_text(prediction or "").removesuffix(".")
    return float(any(pred == normalize_text(g).removesuffix(".") for g in as_answer_list(answers)))


_LETTER = re.compile(r"^(?:(?:the\s+)?(?:option|choice|answer)(?:\s+is)?\s*[:\-]?\s*)?"
                     r"\(?([A-Za-z])\)?(?:\s*[.:)\-]\s*.*)?$", re.I | re.S)


def choice_letter(text: str | None, choices: Sequence[str] | None) -> str | None:
    """The option letter a prediction or ground truth refers to ("B", "(B)", "B: Sheep", "Sheep"), or None."""
    if text is None:
        return None
    s = clean_answer(text)
    m = _LETTER.match(s)
    if m and ord(m.group(1).upper()) - ord("A") < (len(choices) if choices else 26):
        return m.group(1).upper()
    if choices:
        target = normalize_text(s).removesuffix(".")
        for i, c in enumerate(choices):
            if target == normalize_text(c).removesuffix("."):
                return chr(ord("A") + i)
    return None


def multiple_choice(prediction: str | None, answer: str, choices: Sequence[str] | None) -> float:
    gt = choice_letter(answer, choices)
    if gt is None:
        raise ValueError(f"ground truth {answer!r} is neither an option letter nor one of the choices {choices}")
    return float(choice_letter(prediction, choices) == gt)


_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i >= 2}
_ZERO_WORDS = {"no", "none", "nothing", "zero"}
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def parse_count(text: str | None) -> int | None:
    """An integer count from digits or English number words, or None."""
    if text is None:
        return None
    s = normalize_text(text).replace("-", " ")
    words = re.findall(r"[a-z]+|\d[\d,\.]*", s)
    if len(words) == 1 and words[0] in _ZERO_WORDS:
        return 0
    m = _NUMBER.search(s)
    word_value = _words_to_int(words)
    if m and (word_value is None or s.find(m.group(0)) <= _first_number_word(words, s)):
        value = float(m.group(0).replace(",", ""))
        return int(value) if value.is_integer() else None
    return word_value


def _first_number_word(words: list[str], s: str) -> int:
    for w in words:
        if w in _UNITS or w in _TENS or w == "hundred":
            return s.find(w)
    return len(s) + 1


def _words_to_int(words: list[str]) -> int | None:
    total, current, found = 0, 0, False
    for w in words:
        if w in _UNITS:
            current += _UNITS[w]
            found = True
        elif w in _TENS:
            current += _TENS[w]
            found = True
        elif w == "hundred" and found:
            current *= 100
        elif w == "and" and found:
            continue
        elif found:
            break
    return total + current if found else None


def count_match(prediction: str | None, answer: "str | int") -> float:
    gt = parse_count(str(answer))
    if gt is None:
        raise ValueError(f"counting ground truth {answer!r} is not an integer")
    return float(parse_count(prediction) == gt)


SCORERS = ("multiple_choice", "count", "exact_match", "anls")


def auto_scoring(answer, choices: Sequence[str] | None = None) -> str:
    """The scoring kind `auto` stands for: choices → multiple choice; a single integer answer → count; else exact
    match. Decided here only, for every stage that accepts `auto`."""
    if choices:
        return "multiple_choice"
    answers = as_answer_list(answer)
    if len(answers) == 1 and re.fullmatch(r"\s*\d+\s*", answers[0]):
        return "count"
    return "exact_match"


def score(prediction: str | None, answer, kind: str, choices: Sequence[str] | None = None) -> float:
    """Score one extracted answer. `kind` is one of SCORERS, or "auto" (`auto_scoring`)."""
    if kind == "auto":
        kind = auto_scoring(answer, choices)
    if kind == "multiple_choice":
        return multiple_choice(prediction, as_answer_list(answer)[0], choices)
    if kind == "count":
        return count_match(prediction, as_answer_list(answer)[0])
    if kind == "exact_match":
        return exact_match(prediction, answer)
    if kind == "anls":
        return anls(None if prediction is None else clean_answer(prediction), answer)
    raise ValueError(f"unknown scoring kind {kind!r}; choose one of {SCORERS} or 'auto'")

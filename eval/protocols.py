"""Scoring protocols: which rule turns a prediction row into a score. `paper` (the default) is the paper's own
evaluation, quirks included, so a number is comparable to Table 1; `lenient` accepts many answer formats.

paper (docs/eval.md "Protocols" has every rule with its source):
- benchmarks scored by correctness (V*, TallyQA, MVBench): `pixel_reasoner.paper_scoring.paper_correct` on the whole
  trajectory (every assistant turn and the observations between them), against the row's gold (the option letter
  as shown, the count).
- benchmarks scored by ANLS (InfoVQA): lmms-eval's ANLS (`pixel_reasoner.scoring.anls`) of the last complete
  `\\boxed{}` of the official eval output text (`eval_output_text`), as written (no clean-up); the same string
  goes to `submission.json`.

lenient (the harness's original rules, kept for new models whose formatting differs):
- the answer is extracted from the final turn only (last `\\boxed{}`, else `<answer>`, else an `Answer:` line);
- multiple choice accepts a letter in any common wrapping or an option's text; counting accepts number words and
  the first number in prose; InfoVQA strips LaTeX wrappers and quotes before the same ANLS.
"""
from __future__ import annotations

from pixel_reasoner.errors import DataError
from pixel_reasoner.parsing import extract_answer, extract_boxed
from pixel_reasoner.paper_scoring import eval_output_text, paper_correct, solution_text
from pixel_reasoner.scoring import anls, clean_answer, score


PROTOCOLS = ("paper", "lenient")
DEFAULT_PROTOCOL = "paper"


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise DataError(f"scoring protocol {protocol!r}; choose one of {PROTOCOLS} (--scoring_protocol)")
    return protocol


def _messages(row: dict) -> list[dict]:
    """The row's conversation; rows without one (written by other tools) are their final response alone."""
    return row.get("messages") or [{"role": "assistant", "content": row.get("response") or ""}]


def trajectory_text(row: dict) -> str:
    """What the paper's rule reads: the assistant part of the conversation, closed by `<|im_end|>` when the last
    turn ended on its own (an answer) rather than on a limit."""
    return solution_text(_messages(row), ended_with_end_of_turn=row.get("termination") == "answer")


def scoring_of(row: dict) -> str:
    """How the row's benchmark is scored (`Benchmark.scoring`); DataError naming the row for an unknown one."""
    # Imported here: the benchmarks package imports this module (InfoVQA's submission scoring), so a module-level
    # import made `import eval.protocols` (first, e.g. from eval.learning) fail as a circular import.
    from eval.benchmarks.registry import get_benchmark

    try:
        return get_benchmark(row["benchmark"]).scoring
    except DataError as e:
        raise DataError(f"row {row.get('id')!r}: {e}") from None


def answer_text(row: dict, protocol: str) -> str | None:
    """The answer string a protocol reads from a row (ANLS benchmarks: what ANLS compares and `submission.json`
    holds; elsewhere: for display and the `answer_extracted` rate). None when the response states none."""
    anls_scored = scoring_of(row) == "anls"
    if check_protocol(protocol) == "paper":
        if anls_scored:
            return extract_boxed(eval_output_text(_messages(row)))
        return extract_boxed(trajectory_text(row))
    extracted = extract_answer(row.get("response") or "")
    if anls_scored and extracted is not None:
        return clean_answer(extracted)
    return extracted


def has_answer(row: dict, protocol: str) -> bool:
    """Whether the response states an answer the protocol looks for (paper: a `\\boxed` anywhere in the
    trajectory, closed or not, which is what the official rule looks for first)."""
    if check_protocol(protocol) == "paper" and scoring_of(row) != "anls":
        return "\\boxed" in trajectory_text(row)
    return answer_text(row, protocol) is not None


def score_row(row: dict, protocol: str = DEFAULT_PROTOCOL) -> float | None:
    """Score of one response in [0, 1]; None when the split hides its answers."""
    if row["answer"] is None:
        return None
    scoring = scoring_of(row)
    try:
        if scoring == "anls":
            return anls(answer_text(row, protocol), row["answer"])
        if check_protocol(protocol) == "paper":
            return paper_correct(trajectory_text(row), row["answer"])
        return score(extract_answer(row.get("response") or ""), row["answer"], scoring, row.get("choices"))
    except ValueError as e:
        raise DataError(f"question {row['id']!r} sample {row.get('sample_idx', 0)}: {e}") from None

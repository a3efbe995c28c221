"""The paper protocol against the official scorers' frozen outputs (tests/eval/fixtures/official_scoring.json,
written by scripts/freeze_official_scoring.py from the official repositories; every value there came from running
the official function, whose repository, commit, file and line the fixture records)."""
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from pixel_reasoner.paper_scoring import official_reward, paper_correct
from pixel_reasoner.media import segment_centre_indices
from pixel_reasoner.scoring import anls

from eval.protocols import answer_text, score_row, trajectory_text
from eval.records import read_predictions
from eval.benchmarks.infovqa import submission
from eval.scoring import compute_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "tests", "eval", "fixtures", "official_scoring.json"), encoding="utf-8") as _f:
    OFFICIAL = json.load(_f)


def test_fixture_names_its_sources():
    sources = OFFICIAL["sources"]
    assert OFFICIAL["math_verify"] == "0.7.0"
    assert sources["pixel_reasoner.rule_reward"]["path"].endswith("ppo_utils/experience_maker.py")
    assert sources["pixel_reasoner.rule_reward"]["line"] == 908 and sources["pixel_reasoner.eval_call"]["line"] == 1588
    assert sources["lmms_eval.anls"]["path"] == "lmms_eval/api/metrics.py"
    assert all(len(s["commit"]) == 40 for s in sources.values())


@pytest.mark.parametrize("case", OFFICIAL["rule_reward"], ids=lambda c: repr(c["solution"])[:40] + f"|{c['answer']}")
def test_paper_rule_equals_the_official_rule_reward(case):
    assert official_reward(case["solution"], case["answer"]) == case["reward"]


def test_the_issue_edge_cases_are_scored_as_the_paper_scores_them():
    """Spelled out, the cases the lenient rules get wrong (all asserted against the official values above)."""
    rewards = {(c["solution"], json.dumps(c["answer"])): c["reward"] for c in OFFICIAL["rule_reward"]}
    for text in ("\\boxed{B: Sheep}", "\\boxed{B. Sheep}", "\\boxed{(B) Sheep}", "\\boxed{Option B}",
                 "\\boxed{\\textbf{B}}", "\\boxed{B.}", "\\boxed{Sheep}"):
        assert rewards[(text + "<|im_end|>", '"B"')] == 0.0 == paper_correct(text, "B")
    for text in ("\\boxed{three}", "\\boxed{3.}", "\\boxed{-3}", "\\boxed{3 or 4}", "\\boxed{3 people}"):
        assert paper_correct(text, "3") == 0.0
    assert paper_correct("\\boxed{none}", "0") == 0.0 and paper_correct("\\boxed{ B }", "B") == 1.0
    # no box: the official fallback verifies the whole text, so a plain number can still count; a letter cannot
    assert paper_correct("There are 3 apples.", "3") == 1.0 and paper_correct("Answer: B", "B") == 0.0
    # the last box anywhere in the trajectory, even an unclosed one, even in an earlier turn
    assert paper_correct("\\boxed{B} no, wait: \\boxed{A}", "B") == 0.0
    assert paper_correct("\\boxed{B}<|im_end|>\n<|im_start|>user\nobs<|im_end|>\nIt is B.<|im_end|>", "B") == 1.0


def test_paper_rule_is_the_same_in_worker_threads():
    """math-verify's SIGALRM timeouts fail outside the main thread (every parse would give -1): the RL agent scores
    in a thread pool, so those calls go through a one-process pool. Same values as in the main thread."""
    cases = OFFICIAL["rule_reward"][:6] + OFFICIAL["rule_reward"][26:30]
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda c: official_reward(c["solution"], c["answer"]), cases))
    assert got == [c["reward"] for c in cases] and 1.0 in got and 0.0 in got


@pytest.mark.parametrize("case", OFFICIAL["anls"], ids=lambda c: f"{c['prediction']!r}|{c['answers']}")
def test_anls_equals_lmms_eval(case):
    assert anls(case["prediction"], case["answers"]) == pytest.approx(case["anls"], abs=1e-12)


def _normalised(text: str) -> str:
    return " ".join(text.strip().lower().split())


def test_anls_against_the_independent_anls_package():
    """The PyPI `anls` package (an independent implementation of the RRC metric) agrees except in its two documented
    differences: it divides by the normalised lengths (lmms-eval: the raw ones) and scores NL = 0.5 as 0 (lmms-eval
    keeps 0.5). Every disagreeing case must be one of those two."""
    from anls import anls_score

    differences = 0
    for case in OFFICIAL["anls"]:
        pred, answers = case["prediction"], case["answers"]
        ours, theirs = anls(pred, answers), anls_score(pred, answers)
        if ours == pytest.approx(theirs, abs=1e-12):
            continue
        differences += 1
        raw_lengths_differ = any(max(len(a.upper()), len(pred.upper()))
                                 != max(len(_normalised(a)), len(_normalised(pred))) for a in answers)
        boundary = ours == 0.5 and theirs == 0.0
        assert raw_lengths_differ or boundary, (pred, answers, ours, theirs)
    assert differences >= 2  # both differences are exercised by the fixture
    assert anls("ab", ["abcd"]) == 0.5 and anls_score("ab", ["abcd"]) == 0.0


@pytest.mark.parametrize("case", OFFICIAL["mvbench_get_index"],
                         ids=lambda c: f"{c['bound']}@{c['fps']}/{c['max_frame']}")
def test_segment_centres_equal_mvbench_get_index(case):
    bound = tuple(case["bound"]) if case["bound"] else None
    assert segment_centre_indices(case["fps"], case["max_frame"], case["num_segments"], bound,
                                  first_index=case["first_idx"]) == case["indices"]


def _plausible_rows() -> list[dict]:
    path = os.path.join(ROOT, OFFICIAL["plausible_7b"]["file"])
    with open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == OFFICIAL["plausible_7b"]["sha256"], \
            "the plausible predictions changed: re-run scripts/freeze_official_scoring.py"
    with pytest.warns(FutureWarning, match="num_ops, op_errors were read as num_operations, num_operation_errors"):
        return read_predictions(path)  # rows written before the fields were renamed


def test_plausible_7b_outputs_are_scored_exactly_as_the_official_code_scores_them():
    rows = {r["id"]: r for r in _plausible_rows()}
    frozen = OFFICIAL["plausible_7b"]["rows"]
    assert len(frozen) == len(rows) > 50
    for expected in frozen:
        row = rows[expected["id"]]
        if row["benchmark"] == "infovqa":
            assert (answer_text(row, "paper") or "") == expected["prediction"]
        else:  # the text the official code scores: the whole conversation after the prompt
            assert trajectory_text(row) == expected["solution"]
        assert score_row(row, "paper") == pytest.approx(expected["score"], abs=1e-12), row["id"]


def test_lenient_disagrees_with_paper_on_the_plausible_outputs():
    rows = _plausible_rows()
    differ = [r["id"] for r in rows if score_row(r, "paper") != score_row(r, "lenient")]
    assert len(differ) >= 15  # the formats the paper's rule rejects and the lenient rules accept (and back)
    by_id = {r["id"]: r for r in rows}
    assert score_row(by_id["direct_attributes/2"], "lenient") == 1.0 > score_row(by_id["direct_attributes/2"], "paper")
    assert score_row(by_id["direct_attributes/8"], "paper") == 1.0 > score_row(by_id["direct_attributes/8"], "lenient")


def test_infovqa_local_score_and_submission_are_one_function_of_one_string():
    row = {"id": "65001", "benchmark": "infovqa", "sample_idx": 0, "answer": ["new york"],
           "meta": {"questionId": 65001}, "response": "The city is New York.\n\n\\boxed{\\text{New York}}"}
    for protocol, expected_answer in (("paper", "\\text{New York}"), ("lenient", "New York")):
        submitted = submission([row], protocol)[0]["answer"]
        assert submitted == expected_answer
        assert score_row(row, protocol) == anls(submitted, row["answer"])
    assert score_row(row, "lenient") == 1.0 and score_row(row, "paper") == pytest.approx(1 - 7 / 15)


def test_infovqa_answer_types_all_count():
    rows = [{"id": "1", "benchmark": "infovqa", "sample_idx": 0, "answer": ["a"], "response": "\\boxed{a}",
             "category": ["single span", "question span"]},
            {"id": "2", "benchmark": "infovqa", "sample_idx": 0, "answer": ["b"], "response": "\\boxed{c}",
             "category": ["single span"]}]
    per = compute_metrics(rows, 10)["per_category"]
    assert per["single span"]["n_questions"] == 2 and per["single span"]["score"] == 50.0
    assert per["question span"]["n_questions"] == 1 and per["question span"]["score"] == 100.0


def test_metrics_record_the_protocol_and_option_order():
    rows = [{"id": "q", "benchmark": "vstar", "sample_idx": 0, "answer": "B", "choices": ["x", "y"],
             "response": "\\boxed{B}", "meta": {"permutation": [1, 0]}}]
    shuffled = compute_metrics(rows, 10)["protocol"]
    assert shuffled == {"scoring": "paper", "option_order": "shuffled", "frame_sampling": None,
                        "comparable_to_table1": False, "math_verify": "0.7.0"}
    rows[0]["meta"] = {"permutation": [0, 1], "frame_sampling": "get_index"}
    original = compute_metrics(rows, 10, protocol="lenient")["protocol"]
    assert original == {"scoring": "lenient", "option_order": "original", "frame_sampling": ["get_index"],
                        "comparable_to_table1": False}
    assert compute_metrics(rows, 10)["protocol"]["comparable_to_table1"] is True

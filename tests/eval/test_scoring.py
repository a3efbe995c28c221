"""Scoring from predictions alone: golden answers (lenient rules; the paper's are in test_protocols.py), Avg@K and
its bootstrap CI, RaPR, crop faithfulness, report."""
import json
import os
import subprocess
import sys

import pytest

from pixel_reasoner.config import PixelBudgets, to_dict
from pixel_reasoner.errors import DataError

from eval.records import read_predictions, write_rows
from eval.report import build_report
from eval.benchmarks.infovqa import submission
from eval.scoring import box_iou, bootstrap_ci, compute_metrics, crop_faithfulness, score_row

PAPER_EVAL_BUDGETS = to_dict(PixelBudgets.paper_eval())  # what a run with --budget-preset paper_eval records


def row(qid, response, answer, benchmark="vstar", sample_idx=0, **extra):
    return {"id": qid, "benchmark": benchmark, "sample_idx": sample_idx, "response": response, "answer": answer,
            **extra}


@pytest.mark.parametrize("response, answers, expected", [
    ("\\boxed{}", [""], 1.0),                       # two empty strings match
    ("\\boxed{}", ["Paris"], 0.0),                  # empty prediction, non-empty answer
    ("no box, no answer line", ["Paris"], 0.0),    # nothing extracted counts as empty
    ("\\boxed{seed 200}", ["seed 200", "200"], 1.0),
    ("\\boxed{seed 20}", ["seed 200", "200"], 0.875),  # max over ground truths: 1 - 1/8
    ("\\boxed{abcx}", ["abcd"], 0.75),
    ("\\boxed{abxy}", ["abcd"], 0.5),               # NL = 0.5: kept, as lmms-eval keeps it
    ("\\boxed{abcdxyz}", ["abcdefg"], 1 - 3 / 7),   # NL = 3/7 < 0.5
    ("\\boxed{  Hello   World }", ["hello world"], 1.0),  # case and whitespace normalised
    ("Answer: 42%", ["42%", "42"], 1.0),
])
def test_anls_golden(response, answers, expected):
    assert score_row(row("q", response, answers, "infovqa"), "lenient") == pytest.approx(expected)


@pytest.mark.parametrize("response, expected", [
    ("\\boxed{B}", 1.0), ("\\boxed{(B)}", 1.0), ("\\boxed{B: blue}", 1.0), ("\\boxed{blue}", 1.0),
    ("\\boxed{Blue.}", 1.0), ("\\boxed{red}", 0.0), ("\\boxed{A}", 0.0), ("I think it is blue", 0.0),
])
def test_multiple_choice_accepts_letters_and_option_text(response, expected):
    assert score_row(row("q", response, "B", choices=["red", "blue", "green"]), "lenient") == expected


@pytest.mark.parametrize("response, answer, expected", [
    ("\\boxed{3}", "3", 1.0), ("\\boxed{three}", "3", 1.0), ("\\boxed{There are three people}", "3", 1.0),
    ("\\boxed{none}", "0", 1.0), ("\\boxed{twenty-one}", "21", 1.0), ("\\boxed{4}", "3", 0.0),
    ("\\boxed{about 3.5}", "3", 0.0),
])
def test_counting_accepts_words(response, answer, expected):
    assert score_row(row("q", response, answer, "tallyqa"), "lenient") == expected


def test_bad_ground_truth_names_the_question():
    with pytest.raises(DataError, match="question 'q7'"):
        score_row(row("q7", "\\boxed{A}", "purple", choices=["red", "blue"]), "lenient")


def test_avg_at_k_is_the_mean_over_questions_of_the_mean_over_samples():
    rows = [row("q1", r, "A", sample_idx=k, choices=["x", "y"]) for k, r in enumerate(["\\boxed{A}", "\\boxed{B}", "\\boxed{A}"])]
    rows += [row("q2", "\\boxed{B}", "A", sample_idx=k, choices=["x", "y"]) for k in range(3)]
    m = compute_metrics(rows, resamples=200, seed=0)
    assert m["score"] == pytest.approx(100 / 3)
    assert m["samples_per_question"] == 3 and m["avg_at_k"]["k"] == 3
    assert m["per_sample"]["scores"] == pytest.approx([50.0, 0.0, 50.0])
    assert m["incomplete_questions"] == []


def test_bootstrap_resamples_questions_not_rows():
    """Repeating each question's (identical) sample K times must not narrow the CI: samples are not independent."""
    outcomes = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0]
    once = [row(f"q{i}", f"\\boxed{{{'A' if o else 'B'}}}", "A", choices=["x", "y"]) for i, o in enumerate(outcomes)]
    four = [dict(r, sample_idx=k) for r in once for k in range(4)]
    a, b = compute_metrics(once, 500, seed=3), compute_metrics(four, 500, seed=3)
    assert a["score"] == b["score"] == pytest.approx(100 * 8 / 12)
    assert a["ci95"] == b["ci95"]
    lo, hi = a["ci95"]
    assert lo < a["score"] < hi and hi - lo > 20  # 12 questions: a wide interval
    assert compute_metrics(once, 500, seed=3)["ci95"] == a["ci95"]  # seeded: reproducible


def test_bootstrap_ci_shrinks_with_more_questions():
    small = bootstrap_ci([1, 0] * 10, 500, seed=0)
    large = bootstrap_ci([1, 0] * 1000, 500, seed=0)
    assert (large[1] - large[0]) < (small[1] - small[0]) / 5
    assert bootstrap_ci([1.0], 500, seed=0) is None


def test_pixel_reasoning_statistics():
    rows = [row("a", "\\boxed{A}", "A", num_operations=0, num_operation_errors=0, choices=["x", "y"]),
            row("b", "\\boxed{A}", "A", num_operations=1, num_operation_errors=1, choices=["x", "y"]),
            row("c", "\\boxed{B}", "A", num_operations=2, num_operation_errors=0, choices=["x", "y"]),
            row("d", "no answer", "A", num_operations=0, num_operation_errors=0, choices=["x", "y"], termination="truncated")]
    m = compute_metrics(rows, 100)
    assert m["rapr"] == 50.0 and m["ops_per_response"] == 0.75
    assert m["op_error_rate"] == pytest.approx(100 / 3)
    assert m["score_with_visual_ops"] == 50.0 and m["score_without_visual_ops"] == 50.0
    assert m["answer_extracted"] == 75.0
    assert m["terminations"] == {"None": 3, "truncated": 1}


def test_crop_faithfulness_against_target_boxes():
    target = [[10, 10, 20, 20]]
    rows = [row("a", "\\boxed{A}", "A", target_boxes=target, crops=[{"box": [0, 0, 50, 50], "image": 1}]),
            row("b", "\\boxed{B}", "A", target_boxes=target, crops=[{"box": [30, 30, 60, 60], "image": 1},
                                                                      {"box": [5, 5, 25, 25], "image": 1}]),
            row("c", "\\boxed{A}", "A", target_boxes=target, crops=[])]
    scores = [1.0, 0.0, 1.0]
    faith = crop_faithfulness(rows, scores)
    assert faith["all"]["crops"] == 3 and faith["all"]["responses_with_crops"] == 2
    assert faith["all"]["contains_target"] == pytest.approx(200 / 3)
    assert faith["all"]["mean_iou"] == pytest.approx((0.04 + 0.0 + 0.25) / 3)
    assert faith["all"]["responses_with_faithful_crop"] == 100.0
    assert faith["correct"]["crops"] == 1 and faith["correct"]["contains_target"] == 100.0
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(1 / 3)
    assert crop_faithfulness([row("x", "", "A")], [0.0]) is None


def test_hidden_answers_give_no_score_and_an_official_submission():
    rows = [row("65100", "\\boxed{Blue car}", None, "infovqa", meta={"questionId": 65100}),
            row("65101", "nothing", None, "infovqa", meta={"questionId": 65101})]
    m = compute_metrics(rows, 100)
    assert m["score"] is None and "submission" in m["note"]
    assert submission(rows) == [{"questionId": 65100, "answer": "Blue car"}, {"questionId": 65101, "answer": ""}]


def test_inconsistent_predictions_are_rejected(tmp_path):
    path = str(tmp_path / "p.jsonl")
    write_rows(path, [row("q1", "x", "A"), row("q2", "x", "A"), row("q1", "y", "A")])
    with pytest.raises(DataError, match="question 'q1' sample 0 appears twice \\(lines 1 and 3\\)"):
        read_predictions(path)
    with pytest.raises(DataError, match="mix benchmarks"):
        compute_metrics([row("q1", "x", "A"), row("q2", "x", "3", "tallyqa")])
    with open(path, "w") as f:
        f.write('{"id": "q1", "benchmark": "vstar"}\n')
    with pytest.raises(DataError, match="line 1: missing field"):
        read_predictions(path)


def test_incomplete_questions_are_reported():
    rows = [row("q1", "\\boxed{A}", "A", sample_idx=k, choices=["x", "y"]) for k in range(2)]
    rows.append(row("q2", "\\boxed{A}", "A", sample_idx=0, choices=["x", "y"]))
    assert compute_metrics(rows, 10)["incomplete_questions"] == ["q2"]


def _write_predictions(directory, benchmark, rows):
    os.makedirs(directory, exist_ok=True)
    write_rows(os.path.join(directory, "predictions.jsonl"), rows)
    with open(os.path.join(directory, "run_manifest.json"), "w") as f:
        json.dump({"settings": {"model": "/ckpt/PixelReasoner-RL-v1", "profile": "released", "tools": True,
                                "option_order": "original", "samples": 1, "benchmark": benchmark,
                                "budgets": PAPER_EVAL_BUDGETS}}, f)
    return os.path.join(directory, "predictions.jsonl")


def test_score_and_report_cli_import_only_the_core(tmp_path):
    """People score on laptops: the score and report commands must not import torch or vLLM."""
    vstar = _write_predictions(tmp_path / "vstar", "vstar", [
        row(f"q{i}", f"\\boxed{{{'A' if i % 4 else 'B'}}}", "A", choices=["x", "y"], num_operations=i % 2, num_operation_errors=0,
            category="direct_attributes") for i in range(8)])
    tally = _write_predictions(tmp_path / "tally", "tallyqa", [
        row(f"t{i}", "\\boxed{two}", "2", "tallyqa", num_operations=1, num_operation_errors=0) for i in range(4)])
    code = f"""
import sys
from eval.cli import main
main(["score", "--benchmark", "vstar", "--predictions", {vstar!r}, "--out", {str(tmp_path / 'vstar.json')!r}])
main(["score", "--benchmark", "tallyqa", "--predictions", {tally!r}, "--out", {str(tmp_path / 'tally.json')!r}])
main(["report", {str(tmp_path / 'vstar.json')!r}, {str(tmp_path / 'tally.json')!r}, "--out", {str(tmp_path / 'r.md')!r}])
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ("torch", "vllm", "transformers"))
assert not heavy, heavy
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))})
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "vstar.json").read_text())
    assert metrics["score"] == 75.0 and metrics["rapr"] == 50.0
    assert metrics["run"]["model"] == "/ckpt/PixelReasoner-RL-v1" and len(metrics["source"]["sha256"]) == 64
    report = (tmp_path / "r.md").read_text()
    assert "| **PixelReasoner-RL-v1 (released)** (ours; paper scoring, data's option order, paper_eval budgets) | " \
           "75.0 [" in report
    assert "| Pixel-Reasoner (paper) | 84.3 | 73.8 | 67.8 | 84.0 |" in report
    assert "| Warm-Start Model (w/o RL) | 79.0 | 67.9 | 59.0 | 74.3 |" in report
    assert "| Pixel-Reasoner (paper) | 78.53 | 57.78 | 66.95 | 58.95 |" in report  # RaPR, appendix D.1
    assert "| 100.0 | –" in report.split("RaPR")[1]  # our TallyQA RaPR; no MVBench run


def test_report_refuses_two_results_for_one_cell(tmp_path):
    paths = []
    for name in ("a", "b"):
        m = compute_metrics([row("q", "\\boxed{A}", "A", choices=["x", "y"])], 10)
        m["run"] = {"model": "m", "profile": "released", "budgets": PAPER_EVAL_BUDGETS}
        paths.append(str(tmp_path / f"{name}.json"))
        with open(paths[-1], "w") as f:
            json.dump(m, f)
    with pytest.raises(DataError, match="two metrics files for m \\(released\\) \\(paper scoring, data's option "
                                        "order, paper_eval budgets\\) on vstar"):
        build_report(paths)


def _metrics_file(tmp_path, name, responses, protocol="paper", permutation=(0, 1), model="m", seed=None,
                  budgets=PAPER_EVAL_BUDGETS):
    rows = [row(f"q{i}", r, "A", choices=["x", "y"], meta={"permutation": list(permutation)})
            for i, r in enumerate(responses)]
    m = compute_metrics(rows, 10, protocol=protocol)
    m["run"] = {"model": model, "profile": "released", "budgets": budgets,
                **({"shuffle_options": seed} if seed is not None else {})}
    path = str(tmp_path / f"{name}.json")
    with open(path, "w") as f:
        json.dump(m, f)
    return path


def test_report_keeps_non_paper_rows_out_of_the_table_1_block_and_shows_order_bias(tmp_path):
    paper = _metrics_file(tmp_path, "paper", ["\\boxed{A}", "\\boxed{A}", "\\boxed{A: x}", "\\boxed{B}"])
    lenient = _metrics_file(tmp_path, "lenient", ["\\boxed{A}", "\\boxed{A}", "\\boxed{A: x}", "\\boxed{B}"],
                            protocol="lenient")
    shuffled = _metrics_file(tmp_path, "shuffled", ["\\boxed{A}", "\\boxed{B}", "\\boxed{B}", "\\boxed{B}"],
                             permutation=(1, 0), seed=7)
    consistent = _metrics_file(tmp_path, "consistent", ["\\boxed{A}"] * 4, model="ours",
                               budgets=to_dict(PixelBudgets.consistent()))
    old = json.loads(open(paper).read())
    del old["protocol"]
    old["run"]["model"] = "old"
    with open(tmp_path / "old.json", "w") as f:
        json.dump(old, f)
    report = build_report([paper, lenient, shuffled, consistent, str(tmp_path / "old.json")])
    table1, rest = report.split("## Other protocols: NOT comparable to the paper's Table 1")
    assert "| **m (released)** (ours; paper scoring, data's option order, paper_eval budgets) | 50.0 [" in table1
    assert "lenient scoring" not in table1 and "shuffled" not in table1 and "**old" not in table1
    assert "**ours" not in table1
    assert "| **m (released)** (ours; lenient scoring, data's option order, paper_eval budgets) | 75.0 [" in rest
    assert "| **m (released)** (ours; paper scoring, options shuffled (seed 7), paper_eval budgets) | 25.0 [" in rest
    assert ("- m (released), lenient scoring, data's option order, paper_eval budgets: lenient scoring, not the "
            "paper's rules.") in rest
    assert "options shuffled, the paper shows the data's order" in rest
    assert "scoring protocol not recorded" in rest  # metrics written before protocols existed
    assert ("- ours (released), paper scoring, data's option order, consistent budgets: consistent pixel budgets, "
            "the paper's numbers were measured at paper_eval (`--budget-preset paper_eval`).") in rest
    assert "| m (released) | paper | V* | 50.0 | 25.0 (seed 7) | +25.0 |" in rest  # option-order bias

"""How far apart the paper and lenient scoring protocols land on the same predictions.

    python bench/protocols.py [PREDICTIONS.jsonl | RESULTS_DIR ...] [--json out.json]

Default input: bench/data/plausible_7b_predictions.jsonl, 61 hand-written responses in the formats a 7B
Qwen2.5-VL-based model writes when told to "put your final answer within \\boxed{}" (bare letters, "B: Sheep",
option text, number words, "12\\%", `\\text{}` wrappers, answers only in an earlier turn, `Answer:` lines, cut-off
responses), with their gold answers, on all four benchmarks. A RESULTS_DIR is an `eval run --out` directory (every
`*/predictions.jsonl` below it is read, e.g. the quickstart's `quickstart_out/eval/results`).

For each file and benchmark: questions, the score under each protocol (percent; ANLS x 100 for InfoVQA), the
difference, and how many responses the two protocols score differently, with one example of each kind of
disagreement. Measured, not estimated: every number comes from scoring the rows in this run.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from collections import defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from eval.protocols import score_row  # noqa: E402
from eval.records import read_predictions  # noqa: E402
from eval.scoring import compute_metrics  # noqa: E402

DEFAULT = os.path.join(ROOT, "bench", "data", "plausible_7b_predictions.jsonl")


def prediction_files(paths: list[str]) -> list[str]:
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(glob.glob(os.path.join(path, "**", "predictions.jsonl"), recursive=True))
            if not found:
                raise SystemExit(f"{path}: no predictions.jsonl below it")
            files += found
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise SystemExit(f"{path}: no such file or directory")
    return files


def compare(rows: list[dict]) -> dict:
    """Paper vs lenient on rows of one benchmark: both headline scores and the responses they disagree on."""
    paper, lenient = compute_metrics(rows, 200, protocol="paper"), compute_metrics(rows, 200, protocol="lenient")
    disagreements = []
    for r in rows:
        p, q = score_row(r, "paper"), score_row(r, "lenient")
        if p is not None and abs(p - q) > 1e-9:
            disagreements.append({"id": r["id"], "paper": p, "lenient": q,
                                  "final_turn": (r.get("response") or "")[-70:]})
    return {"questions": paper["n_questions"], "paper": paper["score"], "lenient": lenient["score"],
            "difference": None if paper["score"] is None else lenient["score"] - paper["score"],
            "disagreements": len(disagreements),
            "lenient_higher": sum(d["lenient"] > d["paper"] for d in disagreements),
            "paper_higher": sum(d["paper"] > d["lenient"] for d in disagreements), "examples": disagreements}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="*", default=[DEFAULT], help="predictions files or eval output directories")
    parser.add_argument("--json", help="write every number (and each disagreement) here")
    args = parser.parse_args()
    results = {}
    for path in prediction_files(args.inputs):
        by_benchmark: dict[str, list[dict]] = defaultdict(list)
        for r in read_predictions(path):
            by_benchmark[r["benchmark"]].append(r)
        name = os.path.relpath(path, ROOT) if os.path.abspath(path).startswith(ROOT + os.sep) else path
        results[name] = {b: compare(rows) for b, rows in sorted(by_benchmark.items())}
    print("| predictions | benchmark | questions | paper | lenient | lenient − paper | responses scored differently "
          "(lenient higher / paper higher) |")
    print("|---|---|---|---|---|---|---|")
    for path, by_benchmark in results.items():
        for b, c in by_benchmark.items():
            paper, lenient, diff = (("n/a" if x is None else f"{x:{spec}}") for x, spec in
                                    ((c["paper"], ".1f"), (c["lenient"], ".1f"), (c["difference"], "+.1f")))
            print(f"| {path} | {b} | {c['questions']} | {paper} | {lenient} | {diff} | "
                  f"{c['disagreements']} ({c['lenient_higher']} / {c['paper_higher']}) |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()

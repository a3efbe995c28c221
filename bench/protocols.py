"""How far apart the paper and lenient scoring protocols land on the same predictions.

    python bench/protocols.py [PREDICTIONS.jsonl | RESULTS_DIR ...] [--json out.json]

Default input: bench/data/plausible_7b_predictions.jsonl, 61 hand-written responses in the formats a 7B
Qwen2.5-VL-based model writes when told to "put your final answer within \\boxed{}" (bare letters, "B: Sheep",
option text, number words, "12\\%", `\\text{}` wrappers, answers only in an earlier turn, `Answer:` lines, cut-off
responses), with their gold answers, on all four benchmarks. A RESULTS_DIR is an `eval run --out` directory (every
`*/predictions.jsonl` below it is read, e.g. the quickstart's `quickstart_out/eval/results`).

For each file and benchmark: questions, the score under each protocol (percent; ANLS x 100 for InfoVQA), the
difference, and how many responses the two protocols score differently (`--json` lists each of them). Then the
cost of the paper rule per response (math-verify), called from the main thread (the eval) and from worker threads
(the RL agent, whose calls go to a child process). Measured, not estimated: every number comes from this run.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pixel_reasoner.paper_scoring import official_reward  # noqa: E402

from eval.protocols import score_row, trajectory_text  # noqa: E402
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


def paper_rule_cost(rows: list[dict], repeats: int = 3) -> str:
    """Median wall time per response of the paper rule, main thread vs worker threads (2 threads)."""
    cases = [(trajectory_text(r), r["answer"]) for r in rows if r["benchmark"] != "infovqa" and r["answer"] is not None]
    if not cases:
        return "paper rule cost: no accuracy-benchmark rows"
    official_reward(*cases[0])  # imports and the worker start are not part of the per-response cost

    def timed(run) -> float:
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            runs.append((time.perf_counter() - start) / len(cases))
        return 1000 * statistics.median(runs)

    main_ms = timed(lambda: [official_reward(s, a) for s, a in cases])
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda c: official_reward(*c), cases[:2]))
        thread_ms = timed(lambda: list(pool.map(lambda c: official_reward(*c), cases)))
    return (f"paper rule cost ({len(cases)} responses, median of {repeats}): {main_ms:.1f} ms per response in the main "
            f"thread, {thread_ms:.1f} ms from worker threads")


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
    print(paper_rule_cost([r for path in prediction_files(args.inputs) for r in read_predictions(path)]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()

"""Metrics recomputed from a predictions file alone. Imports only the core (no torch, no vLLM): score anywhere.

Per row: the scoring protocol (`eval.protocols`: `paper` by default, the official rules; or `lenient`) gives a
score in [0, 1]. Per question: the mean over its K samples (Avg@K). The headline `score` is the mean over
questions, in percent; its 95% CI comes from a seeded bootstrap that resamples questions (not rows: the K
samples of a question are not independent). `metrics["protocol"]` records the scoring protocol, the option
order and the frame sampling the rows were produced with, and whether the number is comparable to Table 1.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter, defaultdict
from typing import Iterable, Sequence

import numpy as np

from pixel_reasoner.errors import DataError
from pixel_reasoner.paper_scoring import MATH_VERIFY_VERSION, require_math_verify

from eval.benchmarks.registry import get_benchmark
from eval.protocols import DEFAULT_PROTOCOL, check_protocol, has_answer, score_row
from eval.records import read_predictions, row_key

DEFAULT_BOOTSTRAP = 1000
CI_LEVEL = 0.95


def bootstrap_ci(values: Sequence[float], resamples: int, seed: int, level: float = CI_LEVEL) -> list[float] | None:
    """Percentile bootstrap CI of the mean (in the units of `values`); None for fewer than two values."""
    if len(values) < 2 or resamples < 1:
        return None
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = []
    chunk = max(1, min(resamples, 20_000_000 // len(data)))
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, len(data), size=(min(chunk, resamples - start), len(data)))
        means.append(data[idx].mean(axis=1))
    stats = np.concatenate(means)
    alpha = (1 - level) / 2
    return [float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))]


def _pct(x: float | None) -> float | None:
    return None if x is None else 100.0 * x


def _mean(xs: Iterable[float]) -> float | None:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_contains(outer: Sequence[float], inner: Sequence[float]) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


def box_coverage(crop: Sequence[float], target: Sequence[float]) -> float:
    """Fraction of the target's area inside the crop."""
    area = (target[2] - target[0]) * (target[3] - target[1])
    iw = max(0.0, min(crop[2], target[2]) - max(crop[0], target[0]))
    ih = max(0.0, min(crop[3], target[3]) - max(crop[1], target[1]))
    return iw * ih / area if area > 0 else 0.0


def crop_faithfulness(rows: Sequence[dict], scores: Sequence[float | None]) -> dict | None:
    """Do the crops look where the answer is? For rows with annotated target boxes (V*).

    A crop (a region of input image 1 in source pixels) is faithful if it fully contains at least one target
    box. Also: mean best IoU with a target, mean share of the best-covered target inside the crop; all over
    every crop and over the crops of correct responses only.
    """
    def summarise(selected: list[tuple[dict, float | None]]) -> dict:
        crops = [(c["box"], r["target_boxes"]) for r, _ in selected for c in r.get("crops") or []
                 if c.get("image", 1) == 1]
        with_crops = [r for r, _ in selected if any(c.get("image", 1) == 1 for c in r.get("crops") or [])]
        faithful_responses = [r for r in with_crops if any(
            box_contains(c["box"], t) for c in r["crops"] if c.get("image", 1) == 1 for t in r["target_boxes"])]
        return {
            "responses": len(selected), "responses_with_crops": len(with_crops), "crops": len(crops),
            "contains_target": _pct(_mean(float(any(box_contains(b, t) for t in ts)) for b, ts in crops)),
            "mean_iou": _mean(max(box_iou(b, t) for t in ts) for b, ts in crops),
            "mean_target_coverage": _mean(max(box_coverage(b, t) for t in ts) for b, ts in crops),
            "responses_with_faithful_crop": _pct(len(faithful_responses) / len(with_crops)) if with_crops else None,
        }

    annotated = [(r, s) for r, s in zip(rows, scores) if r.get("target_boxes")]
    if not annotated:
        return None
    return {"definition": "crop contains >= 1 annotated target box (source pixels of input image 1)",
            "all": summarise(annotated), "correct": summarise([(r, s) for r, s in annotated if s == 1.0])}


def _group_scores(rows: Sequence[dict], scores: Sequence[float]) -> dict[str, list[float]]:
    per_question: dict[str, list[float]] = defaultdict(list)
    for r, s in zip(rows, scores):
        per_question[str(r["id"])].append(s)
    return per_question


def _headline(per_question: dict[str, list[float]], resamples: int, seed: int) -> dict:
    means = [sum(v) / len(v) for v in per_question.values()]
    ci = bootstrap_ci(means, resamples, seed)
    return {"score": _pct(_mean(means)), "ci95": [100 * c for c in ci] if ci else None, "n_questions": len(means)}


def _categories(row: dict) -> list[str]:
    category = row.get("category")
    return [str(c) for c in category] if isinstance(category, list) and category else [str(category)]


def option_order(rows: Sequence[dict]) -> str:
    """How the rows showed their options: "original" (the data's order), "shuffled", "sorted" (`--sort-options`),
    or "n/a" (no options)."""
    if {(r.get("meta") or {}).get("option_order") for r in rows if r.get("choices")} == {"sorted"}:
        return "sorted"
    permutations = [(r.get("meta") or {}).get("permutation") for r in rows if r.get("choices")]
    if not permutations:
        return "n/a"
    if any(p is not None and list(p) != sorted(p) for p in permutations):
        return "shuffled"
    return "original"


def frame_sampling(rows: Sequence[dict]) -> list[str] | None:
    """The frame samplings of the rows' videos (`meta.frame_sampling`, set by the loaders), or None."""
    found = sorted({str((r.get("meta") or {}).get("frame_sampling")) for r in rows
                    if (r.get("meta") or {}).get("frame_sampling")})
    return found or None


def protocol_record(rows: Sequence[dict], protocol: str) -> dict:
    """What makes a number comparable to the paper's Table 1: the official scoring on the data's option order."""
    order = option_order(rows)
    return {"scoring": protocol, "option_order": order, "frame_sampling": frame_sampling(rows),
            "comparable_to_table1": protocol == "paper" and order in ("original", "n/a"),
            **({"math_verify": MATH_VERIFY_VERSION} if protocol == "paper" else {})}


def compute_metrics(rows: Sequence[dict], resamples: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                    protocol: str = DEFAULT_PROTOCOL) -> dict:
    """Every metric of docs/eval.md from prediction rows (all of one benchmark), scored by `protocol`."""
    check_protocol(protocol)
    if not rows:
        raise DataError("no prediction rows to score")
    benchmarks = sorted({r["benchmark"] for r in rows})
    if len(benchmarks) != 1:
        raise DataError(f"predictions mix benchmarks {benchmarks}; score each benchmark's file separately")
    benchmark = benchmarks[0]
    spec = get_benchmark(benchmark)
    seen: set = set()
    for r in rows:
        if row_key(r) in seen:
            raise DataError(f"question {r['id']!r} sample {r.get('sample_idx', 0)} appears twice")
        seen.add(row_key(r))
    if protocol == "paper" and spec.scoring != "anls" and any(r["answer"] is not None for r in rows):
        require_math_verify()
    scores = [score_row(r, protocol) for r in rows]
    answered = [(r, s) for r, s in zip(rows, scores) if s is not None]
    samples = Counter(str(r["id"]) for r in rows)
    k = max(samples.values())
    metrics: dict = {"benchmark": benchmark, "metric": spec.headline,
                     "protocol": protocol_record(rows, protocol),
                     "n_responses": len(rows), "n_questions": len(samples), "samples_per_question": k}
    if answered:
        a_rows, a_scores = [r for r, _ in answered], [float(s) for _, s in answered]  # type: ignore[arg-type]
        per_question = _group_scores(a_rows, a_scores)
        head = _headline(per_question, resamples, seed)
        metrics.update(score=head["score"], ci95=head["ci95"])
        metrics["avg_at_k"] = {"k": k, **head, "bootstrap": {"resamples": resamples, "seed": seed,
                                                              "level": CI_LEVEL, "unit": "question"}}
        by_category: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
        for r, s in zip(a_rows, a_scores):
            for category in _categories(r):  # an InfoVQA question counts under each of its answer types
                by_category[category][0].append(r)
                by_category[category][1].append(s)
        metrics["per_category"] = {c: _headline(_group_scores(rs, ss), resamples, seed)
                                   for c, (rs, ss) in sorted(by_category.items())}
        per_sample: dict[int, list[float]] = defaultdict(list)
        for r, s in zip(a_rows, a_scores):
            per_sample[int(r.get("sample_idx", 0))].append(s)
        sample_scores = [100 * sum(v) / len(v) for _, v in sorted(per_sample.items())]
        metrics["per_sample"] = {"scores": sample_scores,
                                 "std": float(np.std(sample_scores, ddof=1)) if len(sample_scores) > 1 else None}
        with_ops = [s for r, s in zip(a_rows, a_scores) if r.get("num_operations", 0) > 0]
        without_ops = [s for r, s in zip(a_rows, a_scores) if not r.get("num_operations", 0) > 0]
        metrics["score_with_visual_ops"] = _pct(_mean(with_ops))
        metrics["score_without_visual_ops"] = _pct(_mean(without_ops))
    else:
        metrics.update(score=None, ci95=None, note="the answers of this split are hidden: submit the submission file")
    num_ops = [int(r.get("num_operations", 0)) for r in rows]
    op_errors = sum(int(r.get("num_operation_errors", 0)) for r in rows)
    metrics["rapr"] = _pct(_mean(float(n > 0) for n in num_ops))
    metrics["ops_per_response"] = _mean(num_ops)
    metrics["op_error_rate"] = _pct(op_errors / sum(num_ops)) if sum(num_ops) else None
    metrics["answer_extracted"] = _pct(_mean(float(has_answer(r, protocol)) for r in rows))
    metrics["terminations"] = dict(sorted(Counter(str(r.get("termination")) for r in rows).items()))
    metrics["crop_faithfulness"] = crop_faithfulness(rows, scores)
    metrics["incomplete_questions"] = sorted(q for q, n in samples.items() if n < k)
    return metrics


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def score_file(predictions: str, benchmark: str | None = None, resamples: int = DEFAULT_BOOTSTRAP,
               seed: int = 0, protocol: str = DEFAULT_PROTOCOL) -> dict:
    """Metrics of a predictions file, with the run manifest next to it (if any) for provenance."""
    rows = read_predictions(predictions)
    if benchmark is not None:
        other = sorted({r["benchmark"] for r in rows} - {benchmark})
        if other:
            raise DataError(f"{predictions} holds {other} rows but --benchmark is {benchmark!r}")
    metrics = compute_metrics(rows, resamples, seed, protocol)
    metrics["source"] = {"predictions": os.path.abspath(predictions), "sha256": file_digest(predictions)}
    manifest = os.path.join(os.path.dirname(os.path.abspath(predictions)), "run_manifest.json")
    if os.path.isfile(manifest):
        with open(manifest, encoding="utf-8") as f:
            metrics["run"] = json.load(f).get("settings")
    return metrics


def format_summary(metrics: dict) -> str:
    """A human summary of metrics.json (markdown)."""
    def f(x, digits=1):
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"

    ci = metrics.get("ci95")
    proto = metrics.get("protocol") or {}
    lines = [f"# {metrics['benchmark']}: {metrics['metric']} {f(metrics.get('score'))}"
             + (f" (95% CI {f(ci[0])}–{f(ci[1])})" if ci else ""), "",
             f"- protocol: {proto.get('scoring', 'unknown')} scoring, {proto.get('option_order', 'unknown')} option "
             f"order" + (f", frames: {', '.join(proto['frame_sampling'])}" if proto.get("frame_sampling") else "")
             + ("" if proto.get("comparable_to_table1") else " — NOT comparable to the paper's Table 1"),
             f"- questions: {metrics['n_questions']}, responses: {metrics['n_responses']}, "
             f"samples per question (K): {metrics['samples_per_question']}",
             f"- RaPR (responses using a visual operation): {f(metrics['rapr'])}%",
             f"- operations per response: {f(metrics['ops_per_response'], 2)}; operation error rate: "
             f"{f(metrics['op_error_rate'])}" + ("%" if metrics["op_error_rate"] is not None else ""),
             f"- answer extracted: {f(metrics['answer_extracted'])}%; terminations: {metrics['terminations']}"]
    if metrics.get("incomplete_questions"):
        lines.append(f"- WARNING: {len(metrics['incomplete_questions'])} questions have fewer than K samples")
    if metrics.get("per_category"):
        lines += ["", "| category | n | score |", "|---|---|---|"]
        lines += [f"| {c} | {v['n_questions']} | {f(v['score'])} |" for c, v in metrics["per_category"].items()]
    faith = metrics.get("crop_faithfulness")
    if faith:
        lines += ["", "| crops | responses with crops | crops | contain target % | mean IoU |", "|---|---|---|---|---|"]
        for name in ("all", "correct"):
            v = faith[name]
            lines.append(f"| {name} | {v['responses_with_crops']} | {v['crops']} | {f(v['contains_target'])} | "
                         f"{f(v['mean_iou'], 3)} |")
    return "\n".join(lines) + "\n"

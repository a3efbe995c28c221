"""The zoom task's learning metrics, from the predictions `eval run` wrote (docs/learning.md).

    python -m eval.learning RESULTS_DIR [--out metrics.json]

RESULTS_DIR is an `eval run --out` directory of the zoom task's benchmarks (`pixel_reasoner.zoom_task bench`):
`vstar/` (categories `detail` and `colour`), `tallyqa/` (counting), optionally `mvbench/` (video detail).
Every rate is in percent over responses, with a seeded bootstrap 95% CI over questions:

- accuracy_detail: detail questions (V* `detail`) right, by the scoring protocol of the run (paper by default);
- accuracy_coarse: coarse questions (V* `colour` and the TallyQA counts) right;
- accuracy_video: video detail questions (MVBench layout) right, when there are any;
- valid_call_rate: responses that follow the protocol: every call parsed and executed (no operation error),
  and the episode ended with a final answer that has a `\\boxed{}`;
- crop_contains_target: detail responses with a crop of the input image that contains the frame's box;
- first_crop_contains_target: detail responses whose first crop of the input image contains it (where it zooms);
- first_crop_spans_target_x / _y: detail responses whose first crop spans the target's horizontal / vertical
  extent (the right column / row of a grid; which coordinate a model that misses gets wrong);
- what the response did after its first crop, the judgement "is the target in this crop?" read from the crop's
  pixels (each over the detail responses of that case, so n is theirs):
  - cropped_again_after_target: the first crop contains the target and another call followed (with a crop
    tight enough to read, a wasted turn; after a loose one the teacher's further zoom-in does this);
  - answered_after_missed_crop: the first crop misses the target and no call followed (a guess: the crop cannot
    show the answer);
- rapr, rapr_detail, rapr_coarse: responses that requested a visual operation (all, detail, coarse).
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Callable, Sequence

from pixel_reasoner.parsing import extract_boxed

from eval.protocols import DEFAULT_PROTOCOL, score_row
from eval.records import read_predictions
from eval.scoring import DEFAULT_BOOTSTRAP, bootstrap_ci, box_contains

DETAIL, COLOUR = "detail", "colour"


def is_valid(row: dict) -> bool:
    """Calls parsed and executed, and a final answer in `\\boxed{}`."""
    return row.get("termination") == "answer" and not row.get("num_operation_errors") and \
        extract_boxed(row.get("response") or "") is not None


def crop_contains_target(row: dict) -> bool:
    return any(crop.get("image", 1) == 1 and box_contains(crop["box"], target)
               for crop in row.get("crops") or [] for target in row.get("target_boxes") or [])


def first_crop(row: dict) -> dict | None:
    """The response's first crop of the input image, or None."""
    return next((c for c in row.get("crops") or [] if c.get("image", 1) == 1), None)


def first_crop_contains_target(row: dict) -> bool:
    crop = first_crop(row)
    return crop is not None and any(box_contains(crop["box"], t) for t in row.get("target_boxes") or [])


def first_crop_spans_target(row: dict, axis: int) -> bool:
    """The first crop covers a target's extent along `axis` (0: x, 1: y)."""
    crop = first_crop(row)
    return crop is not None and any(crop["box"][axis] <= t[axis] and t[axis + 2] <= crop["box"][axis + 2]
                                    for t in row.get("target_boxes") or [])


def called_after_first_crop(row: dict) -> bool:
    """A call in a later turn than the first crop of the input image (`operations` holds every call, failed
    ones included, with its turn)."""
    crop = first_crop(row)
    return crop is not None and any(op["turn"] > crop["turn"] for op in row.get("operations") or [])


def rate(rows: Sequence[dict], value: Callable[[dict], float], seed: int = 0,
         resamples: int = DEFAULT_BOOTSTRAP) -> dict | None:
    """Mean of `value` over rows in percent, with its bootstrap CI; None without rows."""
    if not rows:
        return None
    values = [float(value(r)) for r in rows]
    ci = bootstrap_ci(values, resamples, seed)
    return {"value": 100 * sum(values) / len(values), "ci95": [100 * c for c in ci] if ci else None,
            "n": len(values)}


def read_results(results_dir: str) -> dict[str, list[dict]]:
    """{benchmark: prediction rows} of an `eval run --out` directory: OUT/<benchmark>/predictions.jsonl when the
    run evaluated several benchmarks, OUT/predictions.jsonl (rows name their benchmark) when it evaluated one."""
    rows: dict[str, list[dict]] = {}
    for benchmark in ("vstar", "tallyqa", "mvbench"):
        path = os.path.join(results_dir, benchmark, "predictions.jsonl")
        if os.path.isfile(path):
            rows[benchmark] = read_predictions(path)
    single = os.path.join(results_dir, "predictions.jsonl")
    if not rows and os.path.isfile(single):
        for row in read_predictions(single):
            rows.setdefault(row["benchmark"], []).append(row)
    return rows


def learning_metrics(results_dir: str, protocol: str = DEFAULT_PROTOCOL, seed: int = 0) -> dict:
    """The metrics above for one evaluated checkpoint."""
    rows = read_results(results_dir)
    if not rows:
        raise FileNotFoundError(f"{results_dir}: no predictions.jsonl, in it or in vstar/, tallyqa/ or mvbench/ (an "
                                "`eval run --out` directory of the zoom task's benchmarks is expected)")
    vstar = rows.get("vstar", [])
    detail = [r for r in vstar if r.get("category") == DETAIL]
    coarse = [r for r in vstar if r.get("category") == COLOUR] + rows.get("tallyqa", [])
    video = rows.get("mvbench", [])
    everything = [r for group in rows.values() for r in group]
    cropped = [r for r in detail if first_crop(r) is not None]
    on_target = [r for r in cropped if first_crop_contains_target(r)]
    missed = [r for r in cropped if not first_crop_contains_target(r)]
    correct = lambda r: score_row(r, protocol) == 1.0  # noqa: E731
    used_tools = lambda r: r.get("num_operations", 0) > 0  # noqa: E731
    return {
        "accuracy_detail": rate(detail, correct, seed), "accuracy_coarse": rate(coarse, correct, seed),
        "accuracy_video": rate(video, correct, seed), "valid_call_rate": rate(everything, is_valid, seed),
        "crop_contains_target": rate(detail, crop_contains_target, seed),
        "first_crop_contains_target": rate(detail, first_crop_contains_target, seed),
        "first_crop_spans_target_x": rate(detail, lambda r: first_crop_spans_target(r, 0), seed),
        "first_crop_spans_target_y": rate(detail, lambda r: first_crop_spans_target(r, 1), seed),
        "cropped_again_after_target": rate(on_target, called_after_first_crop, seed),
        "answered_after_missed_crop": rate(missed, lambda r: not called_after_first_crop(r), seed),
        "rapr": rate(everything, used_tools, seed), "rapr_detail": rate(detail, used_tools, seed),
        "rapr_coarse": rate(coarse, used_tools, seed),
        "protocol": protocol, "results": os.path.abspath(results_dir),
    }


def headline(metrics: dict) -> dict:
    """{name: value} of every rate (the `learning.<stage>` entries of the quickstart's metrics.json)."""
    return {k: (v["value"] if isinstance(v, dict) else None) for k, v in metrics.items()
            if k not in ("protocol", "results")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eval.learning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results_dir")
    parser.add_argument("--protocol", default=DEFAULT_PROTOCOL)
    parser.add_argument("--out", help="write the metrics JSON here too")
    args = parser.parse_args(argv)
    metrics = learning_metrics(args.results_dir, args.protocol)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=2)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()

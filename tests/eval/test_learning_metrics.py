"""eval.learning reads what `eval run` writes: RaPR from `num_operations`, crops against the target boxes."""
from __future__ import annotations

import json
import os

from eval.learning import learning_metrics


def _row(i: int, category: str, answer: str, operations: int, crop: list[int] | None) -> dict:
    response = ("<tool_call>...</tool_call>" if operations else "") + f"The answer is \\boxed{{{answer}}}."
    return {"id": f"eval-{category}-{i}", "benchmark": "vstar", "sample_idx": 0, "question": "q",
            "choices": ["a", "b", "c", "d"], "answer": "A", "category": category, "response": response,
            "prediction": answer, "num_operations": operations, "num_operation_errors": 0,
            "crops": [{"image": 1, "box": crop}] if crop else [], "target_boxes": [[120, 8, 224, 112]],
            "termination": "answer", "turns": 1 + operations,
            "messages": [{"role": "assistant", "content": response}]}


def test_rapr_and_crops_come_from_the_fields_eval_run_writes(tmp_path):
    rows = [_row(0, "detail", "A", 1, [112, 0, 224, 112]), _row(1, "detail", "B", 1, [0, 0, 112, 112]),
            _row(2, "colour", "A", 0, None), _row(3, "colour", "A", 0, None)]
    os.makedirs(tmp_path / "vstar")
    (tmp_path / "vstar" / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    metrics = learning_metrics(str(tmp_path))

    assert metrics["rapr_detail"]["value"] == 100.0
    assert metrics["rapr_coarse"]["value"] == 0.0
    assert metrics["rapr"]["value"] == 50.0
    assert metrics["crop_contains_target"]["value"] == 50.0
    assert metrics["accuracy_detail"]["value"] == 50.0
    assert metrics["accuracy_coarse"]["value"] == 100.0


def test_a_run_of_one_benchmark_is_read_from_the_output_directory_itself(tmp_path):
    """`eval run` with one benchmark writes OUT/predictions.jsonl (no per-benchmark folder)."""
    rows = [_row(0, "detail", "A", 1, [112, 0, 224, 112]), _row(1, "detail", "B", 0, None)]
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    metrics = learning_metrics(str(tmp_path))

    assert metrics["accuracy_detail"]["value"] == 50.0
    assert metrics["rapr_detail"]["value"] == 50.0
    assert metrics["crop_contains_target"]["value"] == 50.0


def test_a_response_whose_operation_failed_is_not_a_valid_call(tmp_path):
    """valid_call_rate counts a response only if every call executed (`num_operation_errors` 0) and it ended in a
    boxed answer."""
    failed = {**_row(0, "detail", "A", 1, None), "num_operation_errors": 1}
    unboxed = {**_row(1, "detail", "A", 1, [112, 0, 224, 112]), "response": "<tool_call>...</tool_call> A"}
    rows = [failed, unboxed, _row(2, "detail", "A", 1, [112, 0, 224, 112]), _row(3, "detail", "B", 0, None)]
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    assert learning_metrics(str(tmp_path))["valid_call_rate"]["value"] == 50.0


def test_where_the_first_crop_falls_and_what_followed_it(tmp_path):
    """The judgement after the first crop: another call although it holds the target, or an answer although it
    misses it. Rates over the responses of each case; calls are told apart by their turn."""
    def detail(i: int, boxes: list[list[int]]) -> dict:
        row = _row(i, "detail", "A", len(boxes), boxes[0] if boxes else None)
        row["crops"] = [{"image": 1, "box": b, "turn": t, "produced": t + 1} for t, b in enumerate(boxes, 1)]
        row["operations"] = [{"turn": t, "tool": "crop_image", "error": None} for t in range(1, len(boxes) + 1)]
        return row

    hit, miss = [112, 0, 224, 112], [0, 0, 112, 112]
    rows = [detail(0, [hit]), detail(1, [hit, hit]), detail(2, [hit, miss]),  # on target: 2 of 3 cropped again
            detail(3, [miss]), detail(4, [miss, hit]),  # missed: 1 of 2 answered anyway
            detail(5, [])]  # no crop: in neither case
    failed_call = detail(6, [miss])
    failed_call["operations"].append({"turn": 2, "tool": "crop_image", "error": "bbox_2d: out of the image"})
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + [failed_call]))

    metrics = learning_metrics(str(tmp_path))

    assert metrics["first_crop_contains_target"]["value"] == 100 * 3 / 7
    assert metrics["cropped_again_after_target"]["value"] == 100 * 2 / 3
    assert metrics["cropped_again_after_target"]["n"] == 3
    assert metrics["answered_after_missed_crop"]["value"] == 100 * 1 / 3  # the failed call was a call
    assert metrics["answered_after_missed_crop"]["n"] == 3
    assert metrics["crop_contains_target"]["value"] == 100 * 4 / 7
    # the target [120, 8, 224, 112]: the missed crop [0, 0, 112, 112] has its row (y) but not its column (x)
    assert metrics["first_crop_spans_target_x"]["value"] == 100 * 3 / 7
    assert metrics["first_crop_spans_target_y"]["value"] == 100 * 6 / 7

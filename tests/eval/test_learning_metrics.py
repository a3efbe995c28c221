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

"""How `pixel-reasoner view` shows an evaluation's `predictions.jsonl`: each (question, sample) row as a trajectory.

The rows are eval's own format (`eval.records`), so their reading lives here and the core viewer knows none of
their fields: importing this module registers the format, and `pixel-reasoner view` imports it by default
(`--row-format-module`). A row's messages are trajectory messages, with image paths when the run used
`--save-images`.
"""
from __future__ import annotations

from pixel_reasoner.trajectory import Trajectory
from pixel_reasoner.viewer.load import RowFormat, register_row_format

from eval.records import upgrade_row

# Row fields kept in the trajectory's `meta`, for whoever reads the trajectories back (`load_for_view`).
META_FIELDS = ("prediction", "termination", "num_operations", "num_operation_errors", "category", "sample_idx")


def is_prediction_row(row: dict) -> bool:
    return {"benchmark", "sample_idx", "messages"} <= set(row)


def prediction_trajectory(row: dict) -> Trajectory:
    row = upgrade_row(row)
    return Trajectory(id=f"{row['benchmark']}/{row['id']} sample {row['sample_idx']}", messages=row["messages"],
                      question=row.get("question"), choices=row.get("choices"), answer=row.get("answer"),
                      source=row["benchmark"], trajectory_type="eval",
                      meta={k: row[k] for k in META_FIELDS if k in row})


PREDICTIONS = register_row_format(RowFormat("prediction", is_prediction_row, prediction_trajectory))

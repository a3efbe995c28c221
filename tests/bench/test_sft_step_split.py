"""bench/sft_step_split.py refuses a split that does not divide the step's rows before it trains anything."""
from __future__ import annotations

import pytest


def test_a_split_that_does_not_divide_the_step_is_refused(tmp_path):
    from bench.sft_step_split import main

    with pytest.raises(SystemExit, match=r"--splits \[3\]: each must divide the step's 16 rows"):
        main(["--model", str(tmp_path), "--train", "t.jsonl", "--splits", "1", "3", "--out", str(tmp_path / "o.json")])
    assert not (tmp_path / "sft_step_split_runs").exists()

"""bench/orchestration.py at its smallest level (one query of 8 samples) runs on the current agent and writes the
issue's JSON schema with values that agree with its schedules (the docs' table comes from its full run)."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_one_query_level_writes_the_schema(tmp_path):
    out = tmp_path / "orchestration.json"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, str(REPO / "bench" / "orchestration.py"), "--levels", "8", "--out",
                           str(out), "--workdir", str(tmp_path / "work")], capture_output=True, text=True, env=env,
                          timeout=600, cwd=str(REPO))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["image_cache_budget_mb"] == 1024 and result["pre_change"] is None
    (level,) = result["levels"]
    assert level["in_flight"] == 8
    assert level["turns"] == 6 * 1 + 2 + 6  # six answer at once, one crops once, one crops four times and asks again
    assert len(level["event_loop_ms_by_turn"]) == 6 and all(v > 0 for v in level["event_loop_ms_by_turn"])
    assert 0 < level["event_loop_ms_p50"] <= level["event_loop_ms_p95"]
    assert level["turns_per_s"] > 0 and level["peak_rss_mb"] > level["rss_before_mb"] > 0
    # the prompt tensor is shared and pixels are bf16: a query pickles to less than the old layout's pixels alone
    assert 0 < level["controller_mb_per_query"] < level["controller_mb_per_query_fp32_unshared"]
    assert "| 8 |" in done.stdout

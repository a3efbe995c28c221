"""The files `openrlhf_ext.resume` keeps beside OpenRLHF's checkpoints: named by the checkpoint, written whole,
pruned with upstream's rotation, and the run records cut back to the resumed step."""
import json

import pytest

from openrlhf_ext import resume
from pixel_reasoner.errors import ConfigError


def test_state_round_trip_and_clear_errors(tmp_path):
    ckpt = str(tmp_path)
    name = resume.save_state(ckpt, 3, {"experience_maker": {"ssr": None, "rng": {"x": 1}}})
    assert name == "global_step3.pt" and sorted(p.name for p in (tmp_path / "pixel_reasoner").iterdir()) == [name]
    state = resume.load_state(ckpt, {"global_step": 3, resume.STATE_KEY: name})
    assert state["experience_maker"]["rng"] == {"x": 1} and state["global_step"] == 3
    assert resume.load_state(ckpt, {"global_step": 3}) is None  # a checkpoint saved without our state
    with pytest.raises(ConfigError, match="global_step9.pt.*missing"):
        resume.load_state(ckpt, {"global_step": 9, resume.STATE_KEY: "global_step9.pt"})
    with pytest.raises(ConfigError, match="holds the state of step 3.*step 4"):
        resume.load_state(ckpt, {"global_step": 4, resume.STATE_KEY: name})


def test_states_follow_upstreams_checkpoint_rotation(tmp_path):
    ckpt = str(tmp_path)
    for step in (1, 2, 3, 4):
        resume.save_state(ckpt, step, {})
    for tag in ("global_step3", "best_global_step1"):  # upstream kept these two (and is writing step 4)
        (tmp_path / "_actor" / tag).mkdir(parents=True)
    assert resume.prune_states(ckpt, keep="global_step4.pt") == ["global_step2.pt"]
    assert sorted(p.name for p in (tmp_path / "pixel_reasoner").iterdir()) == [
        "global_step1.pt", "global_step3.pt", "global_step4.pt"]


def test_records_after_the_resumed_step_are_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "v": s}) + "\n" for s in (1, 2, 3)) + '{"step": 4, "v"')
    kept, dropped = resume.trim_records(str(path), 2)
    assert [r["step"] for r in kept] == [1, 2] and dropped == 2  # step 3, and step 4's line cut short by the kill
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]
    assert resume.trim_records(str(tmp_path / "absent.jsonl"), 2) == ([], 0)

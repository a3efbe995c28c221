"""kill -9 a synthesis run mid-way, rerun it: nothing finished is lost or duplicated, a torn last line is discarded,
finished requests come from the cache, and the result equals an uninterrupted run's."""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from data_synthesis.cli import main
from data_synthesis.store import read_jsonl
from pixel_reasoner.config import PixelBudgets
from pixel_reasoner.media import smart_resize

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def lines(path):
    return list(read_jsonl(path)) if os.path.exists(path) else []


def content(trajectory):
    return {k: trajectory[k] for k in ("id", "trajectory_type", "source", "messages", "media", "question", "answer")}


def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path, seed_data, synth):
    os.environ["SYNTH_TEST_KEY"] = "sk-resume-test"
    budget = PixelBudgets.paper_rl().original
    held_width = smart_resize(600, 840, budget.min_pixels, budget.max_pixels)[1]  # sa1b-1 stops mid-way
    script = synth.PaperScript(seed_data["truths"], hold_widths=frozenset({held_width}))
    try:
        with synth.ScriptedServer(script) as server:
            reference = str(tmp_path / "reference")
            config = synth.write_config(str(tmp_path / "ref.yaml"), seed_data, server.base_url, reference,
                                        item_concurrency=2)
            script.release.set()
            assert main(["run", "--config", config, "--no-progress"]) == 0
            script.release.clear()
            expected = {t["id"]: t for t in lines(os.path.join(reference, "trajectories.jsonl"))}
            expected_rejects = {r["key"]: (r["stage"], r["reason"]) for r in
                                lines(os.path.join(reference, "rejects.jsonl"))}
            expected_usage = Counter((u["item_id"], u["stage"]) for u in
                                     lines(os.path.join(reference, "usage.jsonl")))

            out = str(tmp_path / "killed")
            config = synth.write_config(str(tmp_path / "run.yaml"), seed_data, server.base_url, out,
                                        item_concurrency=2)
            server.delay_s = 0.15  # slow enough to kill mid-run
            env = dict(os.environ, PYTHONPATH=REPO)
            with open(tmp_path / "killed.log", "w") as log:
                process = subprocess.Popen([sys.executable, "-m", "data_synthesis", "run", "--config", config,
                                            "--no-progress"], env=env, cwd=REPO, stdout=log, stderr=log)
                trajectories_path = os.path.join(out, "trajectories.jsonl")
                deadline = time.time() + 120
                while time.time() < deadline and process.poll() is None:
                    started = {u["item_id"] for u in lines(os.path.join(out, "usage.jsonl"))}
                    if len(lines(trajectories_path)) >= 2 and "sa1b-1" in started:
                        break
                    time.sleep(0.01)
                assert process.poll() is None, open(tmp_path / "killed.log").read()
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
            before = open(trajectories_path, "rb").read()
            finished = {t["id"] for t in lines(trajectories_path)} | \
                {r["item_id"] for r in lines(os.path.join(out, "rejects.jsonl")) if r["item_id"]}
            assert 2 <= len(finished) < len(expected) + sum(1 for k in expected_rejects if k.startswith("item:"))
            usage_before = lines(os.path.join(out, "usage.jsonl"))
            questions_before = {q["item_id"] for q in lines(os.path.join(out, "questions.jsonl"))}
            with open(trajectories_path, "a") as f:  # as if the kill had hit in the middle of a write
                f.write('{"schema_version": 1, "id": "torn-')

            server.delay_s = 0.0
            script.release.set()
            assert main(["run", "--config", config, "--no-progress"]) == 0
    finally:
        os.environ.pop("SYNTH_TEST_KEY", None)

    after = open(trajectories_path, "rb").read()
    assert after.startswith(before[: before.rfind(b"\n") + 1]) and b"torn-" not in after
    got = lines(trajectories_path)
    assert len(got) == len({t["id"] for t in got}) == len(expected)
    assert {t["id"]: content(t) for t in got} == {i: content(t) for i, t in expected.items()}
    got_rejects = lines(os.path.join(out, "rejects.jsonl"))
    assert len(got_rejects) == len({r["key"] for r in got_rejects})
    assert {r["key"]: (r["stage"], r["reason"]) for r in got_rejects} == expected_rejects
    # every request was paid once over both runs, and what the killed run had received came from the cache
    assert Counter((u["item_id"], u["stage"]) for u in lines(os.path.join(out, "usage.jsonl"))) == expected_usage
    hits_expected = sum(1 for u in usage_before if u["item_id"] not in finished and
                        not (u["stage"] == "question_generation" and u["item_id"] in questions_before))
    stats = json.load(open(os.path.join(out, "stats.json")))
    assert "sa1b-1" not in finished and hits_expected >= 1 and stats["this_run"]["cache_hits"] == hits_expected
    assert stats["this_run"]["requests_sent"] == len(lines(os.path.join(out, "usage.jsonl"))) - len(usage_before)
    assert stats["this_run"]["items_already_done"] == len(finished)


def test_items_whose_server_stayed_down_are_retried_by_the_next_run(tmp_path, seed_data, synth):
    os.environ["SYNTH_TEST_KEY"] = "sk-resume-test"
    try:
        with synth.ScriptedServer(synth.PaperScript(seed_data["truths"])) as server:
            out = str(tmp_path / "out")
            config = synth.write_config(str(tmp_path / "c.yaml"), seed_data, server.base_url, out,
                                        sources=[{"format": "web", "path": seed_data["web"]}],
                                        **{"text_only.share": 0.0})
            server.fail_next(503, times=100)
            assert main(["run", "--config", config, "--no-progress"]) == 0
            stats = json.load(open(os.path.join(out, "stats.json")))
            assert stats["this_run"]["items_unfinished"] == 4 and stats["trajectories"]["total"] == 0
            assert {r["stage"] for r in lines(os.path.join(out, "rejects.jsonl"))} == {"seed"}
            server.failures.clear()
            assert main(["run", "--config", config, "--no-progress"]) == 0
            stats = json.load(open(os.path.join(out, "stats.json")))
            assert stats["this_run"]["items_unfinished"] == 0 and stats["this_run"]["items_already_done"] == 0
            assert stats["trajectories"]["total"] + stats["rejections"]["by_stage"].get("expert", {}).get(
                "wrong_answer", 0) == 4
    finally:
        os.environ.pop("SYNTH_TEST_KEY", None)

"""Template trajectories (`template_trajectories.use`), the fallback for runs without a capable model (NOT the paper's method):
against the scripted OpenAI-compatible server answering garbage, `on_rejection` turns every stage-2 and text-only
rejection into a template trajectory that records the model's rejected output; `never` keeps the rejections;
`always` sends no stage-2 or text-only request. Every trajectory is replayed through the episode engine."""
import json
import os

import pytest

from data_synthesis.cli import main
from data_synthesis.config import TemplateConfig
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.trajectory import read_trajectories

OVERRIDES = {"seed": 1, "text_only.share": 0.3, "self_correction.video": {"single_pass": 0.5, "reselect": 0.5}}
NON_SA1B = {"web-p0", "web-p1", "web-p2", "web-p3", "star-q0", "star-q1", "star-q2", "generic-g0", "generic-g2"}


def garbage(body):
    return ["I am not sure what this is. Maybe blue"]


def run_with(tmp_path, seed_data, synth, use, script=garbage):
    out = str(tmp_path / use)
    with synth.ScriptedServer(script) as server:
        config = synth.write_config(str(tmp_path / f"{use}.yaml"), seed_data, server.base_url, out,
                                    **{"template_trajectories.use": use}, **OVERRIDES)
        os.environ["SYNTH_TEST_KEY"] = "sk-template-test"
        try:
            assert main(["run", "--config", config, "--no-progress"]) == 0
        finally:
            os.environ.pop("SYNTH_TEST_KEY", None)
        requests = list(server.requests)
    trajectories = {t.id: t for _, t in read_trajectories(os.path.join(out, "trajectories.jsonl"))}
    rejects = [json.loads(line) for line in open(os.path.join(out, "rejects.jsonl"))]
    stats = json.load(open(os.path.join(out, "stats.json")))
    return trajectories, rejects, stats, requests, out


def stage_of(request):
    text = " ".join(p.get("text", "") for m in request["messages"] if isinstance(m["content"], list)
                    for p in m["content"] if p.get("type") == "text")
    if text.startswith("You are an expert in generating questions"):
        return "question_generation"
    return "expert" if text.startswith("You are an expert in generating trajectories") else "text_only"


def test_on_rejection_replaces_rejected_model_output_by_templates(tmp_path, seed_data, synth):
    trajectories, rejects, stats, requests, _ = run_with(tmp_path, seed_data, synth, "on_rejection")
    assert set(trajectories) == NON_SA1B  # SA1B has no question without a model: stage 1 still rejects it
    assert {r["stage"] for r in rejects if r["item_id"]} == {"question_generation"}
    for t in trajectories.values():
        part = t.meta["text_only"] if t.trajectory_type == "text_only" else t.meta["expert"]
        assert part["template"] is True
        rejection = part["model_rejection"]
        assert rejection["stage"] in ("expert", "text_only") and rejection["reason"]
        assert ("text" in rejection) if t.trajectory_type != "text_only" else rejection["texts"]
        final = [m for m in t.messages if m["role"] == "assistant"][-1]["content"]
        assert f"\\boxed{{{t.answer[0] if isinstance(t.answer, list) else t.answer}}}" in final
    assert {"expert", "text_only"} <= {stage_of(r) for r in requests}  # the model was asked first
    kinds = {t.trajectory_type for t in trajectories.values()}
    assert "text_only" in kinds and len(kinds) >= 3  # self-correction types are composed around the templates
    templates = stats["trajectories"]["from_templates"]
    assert templates["total"] == len(trajectories)
    assert sum(templates["model_rejections"].values()) == len(trajectories)
    summary = open(os.path.join(stats["output_dir"], "summary.txt")).read()
    assert "composed from templates, without model text" in summary


def test_never_keeps_the_rejections(tmp_path, seed_data, synth):
    trajectories, rejects, stats, _, _ = run_with(tmp_path, seed_data, synth, "never")
    assert trajectories == {} and stats["trajectories"]["from_templates"]["total"] == 0
    assert {r["item_id"] for r in rejects if r["item_id"]} >= NON_SA1B


def test_always_sends_no_stage_two_or_text_only_request(tmp_path, seed_data, synth):
    trajectories, _, stats, requests, out = run_with(tmp_path, seed_data, synth, "always")
    assert set(trajectories) == NON_SA1B
    assert {stage_of(r) for r in requests} <= {"question_generation"}
    assert all("model_rejection" not in (t.meta.get("expert") or t.meta.get("text_only")) for t in trajectories.values())
    for t in trajectories.values():  # the files on disk are a valid dataset
        assert t.validate(root=out, where=t.id) == []


def test_templates_must_state_the_answer():
    with pytest.raises(ConfigError, match="boxed_answer"):
        TemplateConfig(local_image="The crop shows it.")
    with pytest.raises(ConfigError, match="use: .sometimes. is not one of never"):
        TemplateConfig(use="sometimes")

"""The whole pipeline through the CLI against the scripted OpenAI-compatible server: every source, every trajectory
type, rejections with reasons, the stats report; trajectories replayed through the episode engine reproduce every
observation and crop; a rerun costs nothing; dry runs send and write nothing."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from data_synthesis.cli import main
from data_synthesis.geometry import contains, intersects
from pixel_reasoner.budget_check import recorded_budgets
from pixel_reasoner.config import PixelBudgets
from pixel_reasoner.episode import Episode, EpisodeConfig
from pixel_reasoner.media import VideoSource, smart_resize
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.protocol.chatml import render_messages
from pixel_reasoner.trajectory import read_trajectories, resolve_path, to_hf_messages

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WRONG_QUESTION = "What is the title of section 3?"
# seed 1 draws every trajectory type for these items (routes depend only on seed and item id)
OVERRIDES = {"seed": 1, "text_only.share": 0.15, "self_correction.video": {"single_pass": 0.5, "reselect": 0.5}}
EXPECTED_MASKED = {"single_pass": 0, "recrop_once": 1, "recrop_twice": 2, "further_zoom_in": 1, "reselect": 1,
                   "text_only": 0}


@pytest.fixture(scope="module")
def run(tmp_path_factory, seed_data, synth):
    root = tmp_path_factory.mktemp("pipeline")
    os.environ["SYNTH_TEST_KEY"] = "sk-pipeline-test"
    budget = PixelBudgets.paper_rl().original
    not_valid_width = smart_resize(600, 880, budget.min_pixels, budget.max_pixels)[1]  # sa_2.jpg as sent
    script = synth.PaperScript(seed_data["truths"], wrong=frozenset({WRONG_QUESTION}),
                               not_valid_widths=frozenset({not_valid_width}))
    with synth.ScriptedServer(script) as server:
        out = str(root / "out")
        config = synth.write_config(str(root / "synth.yaml"), seed_data, server.base_url, out,
                                    **{"output.cache_dir": str(root / "cache")}, **OVERRIDES)
        assert main(["run", "--config", config, "--no-progress"]) == 0
        first_requests = len(server.requests)
        snapshot = {name: open(os.path.join(out, name), "rb").read()
                    for name in ("trajectories.jsonl", "rejects.jsonl", "usage.jsonl")}
        assert main(["run", "--config", config, "--no-progress"]) == 0
        rerun_requests = len(server.requests) - first_requests
        yield {"root": root, "out": out, "config": config, "first_requests": first_requests,
               "rerun_requests": rerun_requests, "snapshot": snapshot, "server": server}
    os.environ.pop("SYNTH_TEST_KEY", None)


def trajectories(out):
    return [t for _, t in read_trajectories(os.path.join(out, "trajectories.jsonl"))]


def rejects(out):
    return [json.loads(line) for line in open(os.path.join(out, "rejects.jsonl"))]


def test_every_item_ends_as_a_trajectory_or_an_explained_rejection(run):
    trajs, rejected = trajectories(run["out"]), rejects(run["out"])
    item_ids = {t.id for t in trajs} | {r["item_id"] for r in rejected if r["item_id"]}
    expected = {"sa1b-0", "sa1b-1", "sa1b-2", "web-p0", "web-p1", "web-p2", "web-p3", "star-q0", "star-q1",
                "star-q2", "generic-g0", "generic-g2"}
    assert item_ids == expected and len(trajs) + sum(1 for r in rejected if r["item_id"]) == len(expected)
    reasons = {(r["stage"], r["reason"]) for r in rejected if r["item_id"]}
    assert reasons == {("question_generation", "not_valid"), ("expert", "wrong_answer")}
    seed_rejects = [r for r in rejected if r["stage"] == "seed"]
    assert len(seed_rejects) == 5 and all(r["location"] and r["detail"] for r in seed_rejects)
    assert {t.trajectory_type for t in trajs} == set(EXPECTED_MASKED)
    assert {t.source for t in trajs} == {"sa1b", "web", "star", "generic"}


def test_stats_report_counts_what_is_on_disk(run):
    stats = json.load(open(os.path.join(run["out"], "stats.json")))
    trajs = trajectories(run["out"])
    assert stats["trajectories"]["total"] == len(trajs)
    assert sum(stats["trajectories"]["by_type"].values()) == len(trajs)
    assert stats["rejections"]["by_stage"] == {"expert": {"wrong_answer": 1}, "question_generation": {"not_valid": 1},
                                               "seed": {"malformed_seed": 5}}
    api = stats["api_all_runs"]
    assert api["endpoints"]["expert"]["requests"] + api["endpoints"]["base"]["requests"] == run["first_requests"]
    assert api["endpoints"]["expert"]["cost_usd"] > 0 and api["endpoints"]["base"]["cost_usd"] == 0
    assert stats["this_run"]["requests_sent"] == 0 and stats["this_run"]["items_already_done"] == 12
    summary = open(os.path.join(run["out"], "summary.txt")).read()
    assert "rejected: 7" in summary and "expert: wrong_answer 1" in summary and "API spend" in summary
    config = json.load(open(os.path.join(run["out"], "config.json")))
    assert config["seed"] == 1 and config["endpoints"]["expert"]["api_key_env"] == "SYNTH_TEST_KEY"


def test_loss_masks_follow_the_trajectory_type(run):
    for t in trajectories(run["out"]):
        turns = [m for m in t.messages if m["role"] == "assistant"]
        masked = [m for m in turns if m.get("loss") is False]
        assert len(masked) == EXPECTED_MASKED[t.trajectory_type], t.id
        # the official trainer's rule (train the last two assistant turns) gives the same mask
        assert masked == turns[:-2] if len(turns) > 2 else not masked
        assert all(m["content"].rstrip().endswith("</tool_call>") for m in masked)
        assert "\\boxed{" in turns[-1]["content"] and "<tool_call>" not in turns[-1]["content"]
        assert t.validate(root=run["out"], where=t.id) == []
        assert len(turns) == {"text_only": 1, "single_pass": 2, "recrop_twice": 4}.get(t.trajectory_type, 3)


def replay(trajectory, out):
    """Step every assistant turn through a fresh engine; each observation must equal the stored one, pixels too."""
    profile = get_profile(trajectory.profile)
    config = EpisodeConfig(budgets=recorded_budgets(trajectory.meta))
    media = trajectory.media[0]
    if media["type"] == "image":
        episode = Episode(profile, images=[resolve_path(media["path"], out)], config=config)
    else:
        frames = tuple(resolve_path(p, out) for p in media["frame_paths"])
        episode = Episode(profile, video=VideoSource(frame_paths=frames), config=config)
    body = trajectory.messages[2:]
    for i, message in enumerate(body):
        if message["role"] != "assistant":
            continue
        result = episode.step(message["content"])
        if result.done:
            assert i == len(body) - 1 and result.termination == "answer"
            continue
        stored = body[i + 1]
        assert result.observation.error is None and stored["role"] == result.observation.role
        assert result.observation.text == "".join(p["text"] for p in stored["content"] if p["type"] == "text")
        paths = [resolve_path(p["path"], out) for p in stored["content"] if p["type"] == "image"]
        assert len(paths) == len(result.observation.images) > 0
        for path, image in zip(paths, result.observation.images):
            assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), np.asarray(image)), path


def test_trajectories_replay_through_the_engine_with_identical_observations(run):
    for t in trajectories(run["out"]):
        replay(t, run["out"])


def test_the_qwen_profile_writes_pixel_boxes_and_tool_turns_that_replay(tmp_path, seed_data, synth):
    with synth.ScriptedServer(synth.PaperScript(seed_data["truths"])) as server:
        out = str(tmp_path / "qwen")
        config = synth.write_config(str(tmp_path / "q.yaml"), seed_data, server.base_url, out, profile="qwen",
                                    sources=[{"format": "web", "path": seed_data["web"]},
                                             {"format": "star", "path": seed_data["star"]}],
                                    **{"endpoints.expert.api_key_env": "", "text_only.share": 0.0, "seed": 1,
                                       "self_correction.video": {"single_pass": 0.5, "reselect": 0.5}})
        assert main(["run", "--config", config, "--no-progress"]) == 0
    produced = trajectories(out)
    assert len(produced) == 7 and all(t.profile == "qwen" for t in produced)
    for t in produced:
        replay(t, out)
        assert all(m["role"] != "user" for m in t.messages[2:])  # observations are Hermes tool turns
        crops = [op for op in t.meta["operations"] if op["tool"] == "crop_image"]
        assert all(isinstance(v, int) for op in crops for v in op["arguments"]["bbox_2d"])


def test_inserted_operations_obey_the_papers_rules(run):
    for t in trajectories(run["out"]):
        operations = t.meta.get("operations", [])
        reference = t.meta.get("reference", {})
        wrong = [op for op in operations if not op["loss"]]
        if t.trajectory_type in ("recrop_once", "recrop_twice"):
            assert all(not intersects(op["source_boxes"][0], reference["box"]) for op in wrong)
        if t.trajectory_type == "further_zoom_in":
            assert contains(wrong[0]["source_boxes"][0], reference["box"])
            assert operations[-1]["arguments"]["target_image"] == 2
        if t.trajectory_type == "reselect":
            assert not set(wrong[0]["arguments"]["target_frames"]) & set(reference["frames"])
        if reference.get("box"):
            assert contains(operations[-1]["source_boxes"][0], reference["box"])


def test_trajectories_render_with_the_profile_tools(run):
    for t in trajectories(run["out"]):
        text = render_messages(to_hf_messages(t, root=run["out"]), tools=get_profile(t.profile).tool_schemas())
        assert text.count("<|im_start|>assistant") == len(t.assistant_turns())
        assert "# Tools" in text and "crop_image_normalized" in text


def test_a_rerun_sends_nothing_and_writes_nothing(run):
    assert run["rerun_requests"] == 0
    for name, content in run["snapshot"].items():
        assert open(os.path.join(run["out"], name), "rb").read() == content, name


def test_dry_runs_send_nothing_and_write_only_the_request_list(run, synth, seed_data, tmp_path):
    server = run["server"]
    before = len(server.requests)
    fresh = str(tmp_path / "fresh")
    config = synth.write_config(str(tmp_path / "c.yaml"), seed_data, server.base_url, fresh,
                                **{"output.cache_dir": str(tmp_path / "empty_cache")}, **OVERRIDES)
    assert main(["run", "--config", config, "--dry-run", "--no-progress"]) == 0
    assert sorted(os.listdir(fresh)) == ["dry_run_requests.jsonl"]
    lines = [json.loads(line) for line in open(os.path.join(fresh, "dry_run_requests.jsonl"))]
    assert len(lines) == 12 and {line["item_id"] for line in lines} >= {"sa1b-0", "web-p0", "star-q0"}
    assert all("base64" not in json.dumps(line) for line in lines)
    shutil.rmtree(fresh)
    cached = synth.write_config(str(tmp_path / "c2.yaml"), seed_data, server.base_url, fresh,
                                **{"output.cache_dir": str(run["root"] / "cache")}, **OVERRIDES)
    assert main(["run", "--config", cached, "--dry-run", "--no-progress"]) == 0
    assert [json.loads(line) for line in open(os.path.join(fresh, "dry_run_requests.jsonl"))] == []
    assert len(server.requests) == before


@pytest.mark.slow
def test_output_passes_the_sft_validator_and_trains_in_the_tiny_sft_recipe(run, tiny_model_dir, tmp_path):
    """The SFT stage (open_r1_ext) validates every synthesised trajectory and takes real training steps on them."""
    from open_r1_ext.config import SFTScriptArguments
    from open_r1_ext.dataset import enforce_policy, prepare_samples
    from open_r1_ext.demo_data import demo_budget_fields
    from open_r1_ext.modeling import load_processor

    data = os.path.join(run["out"], "trajectories.jsonl")
    recipe = os.path.join(REPO, "recipes", "sft_tiny_cpu.yaml")
    args = SFTScriptArguments(data_files=[data], **demo_budget_fields())  # the tiny recipe's budgets
    processor = load_processor(tiny_model_dir, args.budgets())
    prepared = prepare_samples(args, processor, 4096, progress=False)
    assert not prepared.problems, [str(p) for p in prepared.problems]
    assert sorted(s.id for s in prepared.samples) == sorted(t.id for t in trajectories(run["out"]))
    enforce_policy(prepared, str(tmp_path / "validation.json"))
    masked = {s.id: sum(1 for m in s.messages if m.get("loss") is False) for s in prepared.samples}
    assert masked == {t.id: EXPECTED_MASKED[t.trajectory_type] for t in trajectories(run["out"])}

    from open_r1_ext.sft import main as train, parse_args

    train(*parse_args(["--config", recipe, "--model_name_or_path", tiny_model_dir, "--data_files", data,
                       "--output_dir", str(tmp_path / "sft"), "--max_steps", "2", "--save_strategy", "no",
                       "--per_device_train_batch_size", "1"]))
    state = json.load(open(tmp_path / "sft" / "trainer_state.json"))
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert state["global_step"] == 2 and len(losses) == 2 and all(np.isfinite(losses))

"""`eval run` with several benchmarks in one process: one engine for all of them, each benchmark's results in
OUT/<benchmark>/ exactly as a run of that benchmark alone writes them; per-benchmark options; clear errors."""
import json
import os

import pytest

from pixel_reasoner.errors import ConfigError

from eval.cli import build_parser, configs_from_args, run, run_many, run_values
from eval.testing import ScriptedGenerator

TASKS = "action_sequence,episodic_reasoning"  # the two MVBench tasks of the fixture
SMALL = ["--original-min-pixels", "3136", "--original-max-pixels", "100352", "--crop-min-pixels", "3136",
         "--crop-max-pixels", "50176", "--frame-min-pixels", "3136", "--frame-max-pixels", "12544", "--batch-size", "4"]


def parse(*argv):
    args = build_parser().parse_args(["run", "--model", "/models/scripted", *argv])
    return configs_from_args(run_values(args))


def test_one_engine_serves_every_benchmark_and_results_equal_separate_runs(benchmark_data, tmp_path):
    benchmarks = ["vstar", "tallyqa", "infovqa", "mvbench"]
    configs = parse("--benchmark", *benchmarks, "--data", *(benchmark_data[b] for b in benchmarks),
                    "--out", str(tmp_path / "all"), "--subset", f"mvbench={TASKS}", *SMALL)
    started = []

    def factory(config, video):
        started.append((config.benchmark, video))
        return ScriptedGenerator(config.profile, answer="A")

    metrics = run_many(configs, factory)
    assert started == [("vstar", True)]  # one engine, video enabled up front because MVBench is in the list
    assert set(metrics) == set(benchmarks)
    for b in benchmarks:
        subset = ["--subset", TASKS] if b == "mvbench" else []
        alone = run(parse("--benchmark", b, "--data", benchmark_data[b], "--out", str(tmp_path / b), *subset, *SMALL)[0],
                    lambda c, video: ScriptedGenerator(c.profile, answer="A"))
        together = json.loads((tmp_path / "all" / b / "metrics.json").read_text())
        assert together["score"] == alone["score"] and together["n_responses"] == alone["n_responses"] > 0
        rows = lambda d: [{k: v for k, v in json.loads(line).items() if k not in ("time", "elapsed_s")}  # noqa: E731
                          for line in open(os.path.join(d, "predictions.jsonl"))]
        assert rows(tmp_path / "all" / b) == rows(tmp_path / b)
    started.clear()
    run_many(configs, factory)  # everything is done: resuming starts no engine
    assert started == []


def test_per_benchmark_options_and_errors(benchmark_data, tmp_path):
    configs = parse("--benchmark", "tallyqa", "infovqa", "--data", "t", "i", "--out", "o", "--split", "infovqa=test",
                    "--subset", "tallyqa=simple")
    assert [(c.benchmark, c.data, c.out, c.split, c.subset) for c in configs] == [
        ("tallyqa", "t", os.path.join("o", "tallyqa"), None, "simple"),
        ("infovqa", "i", os.path.join("o", "infovqa"), "test", None)]
    single = parse("--benchmark", "infovqa", "--data", "i", "--out", "o", "--split", "test")
    assert [(c.out, c.split) for c in single] == [("o", "test")]  # one benchmark: as before
    with pytest.raises(ConfigError, match="one --data per --benchmark"):
        parse("--benchmark", "vstar", "tallyqa", "--data", "v", "--out", "o")
    with pytest.raises(ConfigError, match="BENCHMARK=VALUE"):
        parse("--benchmark", "vstar", "infovqa", "--data", "v", "i", "--out", "o", "--split", "test")
    with pytest.raises(ConfigError, match="twice"):
        parse("--benchmark", "vstar", "vstar", "--data", "v", "w", "--out", "o")


def test_a_yaml_recipe_and_flags_configure_a_run(tmp_path):
    recipe = os.path.join(os.path.dirname(__file__), "..", "..", "recipes", "eval_7b.yaml")
    configs = parse("--config", recipe, "--out", str(tmp_path), "--split", "infovqa=test", "--max_turns", "3")
    assert [c.benchmark for c in configs] == ["vstar", "tallyqa", "mvbench", "infovqa"]
    assert {c.budget_preset for c in configs} == {"paper_eval"} and {c.max_turns for c in configs} == {3}
    assert configs[3].split == "test" and configs[3].out == str(tmp_path / "infovqa")


def test_old_flag_names_are_read_as_the_new_ones_with_a_warning(benchmark_data, tmp_path):
    common = ["--benchmark", "vstar", "--data", benchmark_data["vstar"], "--out", str(tmp_path)]
    new = parse(*common, "--original_min_pixels", "3136", "--original_max_pixels", "100352", "--video_frames", "8",
                "--max_turn_tokens", "300", "--scoring_protocol", "lenient")
    with pytest.warns(FutureWarning) as caught:
        old = parse(*common, "--original-tokens", "4", "128", "--num-frames", "8", "--max-tokens-per-turn", "300",
                    "--protocol", "lenient")
    assert old == new
    assert sorted(str(w.message).split(" (")[0] for w in caught) == [
        "--original-tokens is deprecated, use --original_min_pixels 3136 --original_max_pixels 100352",
        "--protocol is deprecated, use --scoring_protocol", "max_tokens_per_turn is deprecated, use max_turn_tokens",
        "num_frames is deprecated, use video_frames"]

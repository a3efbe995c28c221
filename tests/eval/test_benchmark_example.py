"""The worked example of docs/adding_a_benchmark.md: `examples/benchmarks/hr_bench.py`, one file named on the
command line, is evaluated, scored and reported like a built-in benchmark."""
import base64
import io
import json
import os

import pytest

from pixel_reasoner.errors import DataError
from pixel_reasoner.testing.media import scene_image

from eval.benchmarks import benchmark_names, get_benchmark, load_questions
from eval.benchmarks.common import LoadOptions
from eval.cli import build_parser, configs_from_args, main, run_many, run_values
from eval.testing import SMALL_BUDGETS, ScriptedGenerator

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "benchmarks", "hr_bench.py")
HEADER = "index\tquestion\tanswer\tA\tB\tC\tD\tcategory\tcycle_category\timage\n"


def _jpeg_base64(seed: int) -> str:
    buffer = io.BytesIO()
    scene_image(320, 240, seed=seed).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def hr_bench(tmp_path) -> str:
    rows = [f"{i}\tWhat colour is the sign {i}?\t{'AB'[i % 2]}\tred\tblue\tgreen\t\tsingle\tc{i}\t{_jpeg_base64(i)}\n"
            for i in range(3)]
    (tmp_path / "hr_bench").mkdir()
    (tmp_path / "hr_bench" / "hr_bench_4k.tsv").write_text(HEADER + "".join(rows))
    return str(tmp_path / "hr_bench")


def test_one_file_adds_a_benchmark_to_run_score_and_report(hr_bench, tmp_path, capsys):
    args = build_parser().parse_args(["run", "--benchmark_modules", EXAMPLE, "--benchmark", "hr_bench", "--data",
                                      hr_bench, "--model", "/models/scripted", "--out", str(tmp_path / "out"),
                                      *(f"--{k}={v}" for k, v in SMALL_BUDGETS.items())])
    values = run_values(args)
    (config,) = configs_from_args(values)
    assert "hr_bench" in benchmark_names() and get_benchmark("hr_bench").headline == "accuracy"
    questions = load_questions("hr_bench", hr_bench, LoadOptions())
    assert [q.choices for q in questions] == [["red", "blue", "green"]] * 3 and questions[1].answer == "B"
    assert questions[0].images[0].full_size() == (320, 240)

    metrics = run_many([config], lambda c, video: ScriptedGenerator(c.profile, answer="A"))["hr_bench"]
    assert metrics["metric"] == "accuracy" and metrics["n_questions"] == 3
    assert metrics["score"] == pytest.approx(200 / 3)  # questions 0 and 2 have answer A
    out = tmp_path / "out"
    main(["score", "--benchmark_modules", EXAMPLE, "--benchmark", "hr_bench", "--predictions",
          str(out / "predictions.jsonl"), "--out", str(tmp_path / "rescored.json"), "--scoring_protocol", "lenient"])
    assert json.loads((tmp_path / "rescored.json").read_text())["score"] == pytest.approx(200 / 3)
    capsys.readouterr()
    main(["report", "--benchmark_modules", EXAMPLE, str(out / "metrics.json")])
    report = capsys.readouterr().out
    assert "| Model | V* Bench Acc | TallyQA-complex Acc | MVBench-test Acc | InfoVQA-test ANLS | HR-Bench Acc |" \
        in report
    assert "| Pixel-Reasoner (paper) | 84.3 | 73.8 | 67.8 | 84.0 | – |" in report


def test_its_errors_name_the_row_and_the_fix(hr_bench):
    with pytest.raises(DataError, match="HR-Bench --split '2k'; choose one of"):
        load_questions("hr_bench", hr_bench, LoadOptions(split="2k"))
    with pytest.raises(DataError, match="unknown benchmark 'hr_bench_16k'.*--benchmark_modules"):
        get_benchmark("hr_bench_16k")

"""A new visual operation in one file reaches `python -m eval run` through $PIXEL_REASONER_OPERATION_MODULES: the
profile its file registers (`qwen+rotate`) is a valid `--profile`, and the model is offered the new tool."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = """
import sys
from eval.cli import build_parser, run
from eval.config import RunConfig
from eval.testing import SMALL_BUDGETS, ScriptedGenerator
args = build_parser().parse_args(["run", "--model", "/models/scripted", "--benchmark", "vstar", "--data", sys.argv[1],
                                  "--out", sys.argv[2], "--profile", "qwen+rotate", "--limit", "1"])
config = RunConfig(benchmark="vstar", data=sys.argv[1], out=sys.argv[2], model="/models/scripted",
                   profile=args.profile, limit=1, **SMALL_BUDGETS)
generator = ScriptedGenerator("qwen+rotate")
run(config, lambda c, video: generator)
print(generator.requests[0].prompt)
"""


def test_eval_offers_the_new_tool(benchmark_data, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])),
           "PIXEL_REASONER_OPERATION_MODULES": os.path.join(REPO, "examples", "ops", "rotate_image.py")}
    result = subprocess.run([sys.executable, "-c", DRIVER, benchmark_data["vstar"], str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    prompt = result.stdout  # the first prompt the model got: its tools block lists the new tool
    assert '"name": "rotate_image"' in prompt and '"name": "crop_image"' in prompt
    manifest = json.loads((tmp_path / "run_manifest.json").read_text())
    assert "rotate_image" in manifest["settings"]["protocol"]["tools"]

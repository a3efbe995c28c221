"""The quickstart script's command line, without running the pipeline: help, bad arguments, and `--clean`
refusing to delete a directory it did not write."""
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "recipes" / "quickstart_cpu.sh"


def run(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_help_lists_the_stages_and_bad_arguments_are_refused(tmp_path):
    result = run(tmp_path, "--help")
    assert result.returncode == 0 and "--clean" in result.stdout
    assert all(stage in result.stdout for stage in ("model", "data", "base", "sft", "sft_eval", "rl", "rl_eval",
                                                    "outputs", "SFT_STEPS"))
    result = run(tmp_path, "--fast")
    assert result.returncode == 2 and "unknown argument '--fast'" in result.stderr


def test_clean_refuses_a_directory_it_did_not_write(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = run(tmp_path, "--clean")
    assert result.returncode == 2 and "refusing to delete" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_a_missing_python_environment_is_explained(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": str(tmp_path / "no-venv" / "python")}
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "scripts/install.sh" in result.stderr

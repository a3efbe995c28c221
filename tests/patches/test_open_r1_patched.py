"""The Open-R1 patches on the upstream commit they were made for (only where a local snapshot exists: Open-R1 is
not on PyPI, and no upstream code is committed here). Checks: the tool applies, completes a partial set and
reverses exactly; the patched `sft.py` imports with our stack (trl 1.16 / transformers 5.19) and parses the new
recipe; and (slow) it trains the tiny VLM a step with our data, template and collator."""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
RECIPE = "recipes/Qwen2.5-VL-7B-Instruct/sft/config_pixel_reasoner.yaml"


def tree_digest(root: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def open_r1_env() -> dict:
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(["src", str(REPO)])
    return env


@pytest.fixture(scope="module")
def patched_open_r1(open_r1_archive, patches_cli, tmp_path_factory) -> pathlib.Path:
    tree = tmp_path_factory.mktemp("open_r1_patched") / "open-r1"
    shutil.copytree(open_r1_archive, tree)
    done = patches_cli("apply", "--target", str(tree))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "src/open_r1/sft.py: 4 hunk(s)" in done.stdout and "(new file)" in done.stdout
    return tree


def test_apply_completes_a_partial_set_and_reverses_exactly(open_r1_archive, patches_cli, tmp_path):
    tree = tmp_path / "open-r1"
    shutil.copytree(open_r1_archive, tree)
    pristine = tree_digest(tree)
    first = REPO / "patches" / "open-r1" / "0001-port-to-trl-1.16.patch"
    subprocess.run(["git", "apply", str(first)], cwd=tree, check=True)  # a user applied one patch by hand

    done = patches_cli("apply", "--target", str(tree))
    assert done.returncode == 0, done.stderr
    assert "already applied: 0001-port-to-trl-1.16.patch" in done.stdout
    assert "0002-pixel-reasoner-vlm-sft.patch" in done.stdout and "checked against upstream commit" in done.stdout
    assert (tree / RECIPE).is_file()

    again = patches_cli("apply", "--target", str(tree))
    assert again.returncode == 0 and "nothing to do" in again.stdout
    reverse = patches_cli("apply", "--target", str(tree), "--reverse")
    assert reverse.returncode == 0, reverse.stderr
    assert tree_digest(tree) == pristine
    assert not (tree / "recipes" / "Qwen2.5-VL-7B-Instruct").exists()


def test_patched_sft_imports_and_parses_the_recipe_with_our_stack(patched_open_r1):
    script = """
import json, sys
import open_r1.sft as sft
import open_r1.utils.callbacks  # the utils package imports with trl 1.16 (get_kbit_device_map is gone)
from trl import TrlParser
parser = TrlParser((sft.ScriptArguments, sft.SFTConfig, sft.ModelConfig, sft.PixelReasonerArguments))
script, training, model, ours = parser.parse_args_and_config(sys.argv[1:])
print(json.dumps({"pixel_reasoner": script.pixel_reasoner, "dataset_name": script.dataset_name,
                  "data_files": ours.data_files, "budgets": ours.budgets().original.max_pixels,
                  "freeze": ours.freeze_vision_tower, "lr": training.learning_rate, "dtype": model.dtype,
                  "accumulation": training.gradient_accumulation_steps, "main_args": sft.main.__code__.co_varnames[:4]}))
"""
    done = subprocess.run([sys.executable, "-c", script, "--config", RECIPE, "--bf16", "false"], cwd=patched_open_r1,
                          env=open_r1_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    parsed = json.loads(done.stdout.strip().splitlines()[-1])
    assert parsed == {"pixel_reasoner": True, "dataset_name": None,
                      "data_files": ["data/PixelReasoner-SFT-Data/release.json"], "budgets": 2000 * 28 * 28,
                      "freeze": True, "lr": 1e-6, "dtype": "bfloat16", "accumulation": 16,
                      "main_args": ["script_args", "training_args", "model_args", "pixel_reasoner_args"]}


@pytest.mark.slow
def test_patched_sft_trains_the_tiny_vlm_with_our_collator(patched_open_r1, tiny_model_dir, tmp_path):
    from open_r1_ext.demo_data import demo_budget_fields, write_demo_data
    from pixel_reasoner.templates import chat_template

    data = write_demo_data(str(tmp_path / "demo"))
    out = tmp_path / "run"
    argv = ["src/open_r1/sft.py", "--config", RECIPE, "--model_name_or_path", tiny_model_dir, "--data_files", data,
            "--image_root", str(tmp_path / "demo"),
            "--dtype", "float32", "--attn_implementation", "sdpa", "--bf16", "false", "--use_cpu", "true",
            "--max_steps", "1", "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", "1",
            "--dataloader_num_workers", "0", "--save_strategy", "no", "--max_length", "4096",
            *[arg for name, value in demo_budget_fields().items() for arg in (f"--{name}", str(value))],
            "--output_dir", str(out)]
    done = subprocess.run([sys.executable, *argv], cwd=patched_open_r1, env=open_r1_env(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_config = json.loads((out / "sft_run_config.json").read_text())  # written by open_r1_ext
    assert run_config["model"]["frozen_vision_parameters"] > 0
    assert run_config["data"]["training_samples"] == 9
    assert (out / "chat_template.jinja").read_text() == chat_template()  # the processor saved with our template
    assert json.loads((out / "train_results.json").read_text())["train_loss"] > 0
    assert json.loads((out / "data_validation.json").read_text())["invalid_rows"] == 0

"""Real training on CPU with the tiny Qwen2.5-VL: the recipe through `accelerate launch` (checkpoint, logs,
resume), and overfitting one small batch through TRL's SFTTrainer with our collator."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys

import pytest
import yaml

from pixel_reasoner.errors import DataError

from open_r1_ext import sft
from open_r1_ext.config import SFTScriptArguments
from open_r1_ext.demo_data import demo_script_arguments as demo_args

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(REPO, "recipes", "sft_tiny_cpu.yaml")
ACCELERATE_CPU = os.path.join(REPO, "recipes", "accelerate", "cpu.yaml")


def recipe_overrides(model_dir: str, data: str, out: str, *extra: str) -> list[str]:
    return ["--config", RECIPE, "--model_name_or_path", model_dir, "--data_files", data, "--output_dir", out, *extra]


def test_the_tiny_recipe_uses_the_demo_budgets():
    with open(RECIPE) as f:
        recipe = yaml.safe_load(f)
    assert SFTScriptArguments(**{k: v for k, v in recipe.items() if k.endswith("_pixels") or k == "budget_preset"}
                              ).budgets() == demo_args().budgets()


@pytest.mark.slow
def test_accelerate_launch_trains_saves_a_checkpoint_and_resumes(tiny_model_dir, demo_data, tmp_path, caplog):
    import torch
    from safetensors.torch import load_file

    out = str(tmp_path / "run")
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [accelerate, "launch", "--config_file", ACCELERATE_CPU, "--num_cpu_threads_per_process", "2",
           os.path.join(REPO, "open_r1_ext", "sft.py"),
           *recipe_overrides(tiny_model_dir, demo_data["released"], out, "--max_steps", "2", "--save_steps", "2",
                             "--per_device_train_batch_size", "1")]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    checkpoint = os.path.join(out, "checkpoint-2")
    for name in ("model.safetensors", "optimizer.pt", "chat_template.jinja", "trainer_state.json"):
        assert os.path.exists(os.path.join(checkpoint, name)), name
    before = load_file(os.path.join(tiny_model_dir, "model.safetensors"))
    after = load_file(os.path.join(out, "model.safetensors"))
    assert before.keys() == after.keys()
    vision = [k for k in before if "visual" in k]
    language = [k for k in before if "layers" in k and "visual" not in k]
    assert vision and all(torch.equal(before[k], after[k]) for k in vision)  # the vision tower stayed frozen
    assert language and any(not torch.equal(before[k], after[k]) for k in language)
    state = json.load(open(os.path.join(checkpoint, "trainer_state.json")))
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 2 and all(0 < x < 20 for x in losses)
    config = json.load(open(os.path.join(out, sft.RUN_CONFIG_FILE)))
    assert config["training"]["max_steps"] == 2  # the flag overrides the recipe's 3
    assert config["training"]["learning_rate"] == 1e-4  # from the recipe
    assert config["budgets"]["crop"]["max_pixels"] == demo_args().budgets().crop.max_pixels
    assert config["model"]["frozen_vision_parameters"] > 0 and config["data"]["training_samples"] == 9
    report = json.load(open(os.path.join(out, sft.VALIDATION_REPORT_FILE)))
    assert report["invalid_rows"] == 0 and report["rows"] == 9

    assert "resolved config:" in run.stdout and '"frozen_vision_parameters"' in run.stdout

    # A crashed run is resumed from its last checkpoint, without redoing the finished steps.
    with caplog.at_level(logging.INFO, logger="open_r1_ext"):
        sft.main(*sft.parse_args(recipe_overrides(tiny_model_dir, demo_data["released"], out, "--max_steps", "3",
                                                  "--save_strategy", "no", "--per_device_train_batch_size", "1")))
    assert f"resuming from {checkpoint}" in caplog.text
    final = json.load(open(os.path.join(out, "trainer_state.json")))
    assert final["global_step"] == 3
    assert [h["step"] for h in final["log_history"] if "loss" in h] == [1, 2, 3]
    assert [h["loss"] for h in final["log_history"] if "loss" in h][:2] == losses


def test_bad_data_stops_before_the_model_is_loaded(tiny_model_dir, demo_data, tmp_path):
    rows = open(demo_data["released"]).read().splitlines()
    bad = json.loads(rows[2])
    bad["messages"][1]["content"][0]["path"] = "media/nowhere.png"
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join(rows[:2] + [json.dumps(bad)] + rows[3:]) + "\n")
    out = tmp_path / "run"
    media_root = os.path.dirname(demo_data["released"])
    with pytest.raises(DataError, match=r"1 invalid row\(s\).*\n.*bad.jsonl row 2 \(id recrop_twice_0\): "
                                        r"messages\[1\]\.content\[0\]: image file not found: .*media/nowhere.png"):
        sft.main(*sft.parse_args(recipe_overrides(tiny_model_dir, str(data), str(out), "--image_root", media_root)))
    assert not os.path.exists(out / sft.RUN_CONFIG_FILE)  # nothing trained
    assert json.load(open(out / sft.VALIDATION_REPORT_FILE))["invalid_rows"] == 1


def test_overfits_one_small_batch(tiny_model_dir, demo_specs, collator, tmp_path):
    """The loss on one small batch (a recrop-once trajectory: input image, two crops, a masked erroneous
    operation) falls by more than half within 50 steps: the labels carry a learnable signal end to end."""
    import torch
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from open_r1_ext.dataset import to_train_dataset
    from open_r1_ext.modeling import freeze_vision_tower, load_model

    class StopAtHalf(TrainerCallback):
        def __init__(self):
            self.losses: list[float] = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))
                control.should_training_stop = self.losses[-1] < self.losses[0] / 2

    torch.manual_seed(0)
    model = load_model(tiny_model_dir, "float32", "sdpa")
    freeze_vision_tower(model)
    # Without the tools block the sequences are 2-3x shorter: on CPU, TRL scores every position against the
    # whole 151k vocabulary, which dominates the step time. Masking does not depend on the tools block.
    specs = [dataclasses.replace(demo_specs["released"]["recrop_once_0"], tools=None)]
    args = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[], max_length=None,
                     remove_unused_columns=False, max_steps=50, per_device_train_batch_size=1,
                     learning_rate=1e-2, lr_scheduler_type="constant", logging_steps=1, save_strategy="no",
                     gradient_checkpointing=False, seed=0, dataloader_num_workers=0, disable_tqdm=True)
    stop = StopAtHalf()
    trainer = SFTTrainer(model=model, args=args, train_dataset=to_train_dataset(specs),
                         processing_class=collator.processor, data_collator=collator, callbacks=[stop])
    trainer.train()
    assert len(stop.losses) <= 50
    assert min(stop.losses) < stop.losses[0] / 2, stop.losses


def test_flash_attention_falls_back_to_sdpa_without_cuda_or_flash_attn(caplog):
    from open_r1_ext.modeling import resolve_attn_implementation

    assert resolve_attn_implementation("flash_attention_2") == "sdpa"
    assert "flash_attention_2 requested but" in caplog.text and "using sdpa" in caplog.text
    assert resolve_attn_implementation("eager") == "eager" and resolve_attn_implementation(None) is None

"""Fixtures of the rollout tests: one real vLLM rollout session shared by every test that needs it, and an
independent replay of each sample through the core episode engine to check tokens and pixels against."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
DRIVER = HERE / "vllm_driver.py"


@pytest.fixture(scope="session")
def tiny_bf16_model_dir() -> str:
    """The tiny Qwen2.5-VL stored in bf16 (as released Qwen checkpoints are): vLLM (fp32) and OpenRLHF's Actor
    (loads bf16, then upcast) then run on bit-identical fp32 weights."""
    from pixel_reasoner.testing.tiny_qwen import cached_build

    return cached_build(str(REPO / ".cache" / "tiny_models"), dtype="bfloat16")


@pytest.fixture(scope="session")
def rollouts(tiny_bf16_model_dir, tmp_path_factory, rl_env) -> dict:
    """Runs tests/rollout/vllm_driver.py once (engine start ~40 s) and loads what it saved."""
    import torch

    workdir = tmp_path_factory.mktemp("vllm_rollouts")
    out, log = workdir / "rollouts.pt", workdir / "driver.log"
    env = rl_env()  # this checkout and the patched OpenRLHF first on PYTHONPATH
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, str(DRIVER), "--model", tiny_bf16_model_dir, "--workdir",
                               str(workdir), "--out", str(out)], stdout=f, stderr=subprocess.STDOUT, env=env,
                              timeout=900)
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        pytest.fail(f"vLLM rollout driver failed (exit {proc.returncode}); last lines of {log}:\n{text[-4000:]}")
    data = torch.load(out, weights_only=False)
    data["log"] = text
    return data


class Oracle:
    """Replays a sample through a fresh episode (same media, same config) and the model's processor."""

    def __init__(self, data: dict):
        from transformers import AutoProcessor

        from openrlhf_ext.agent import AgentRuntime
        from openrlhf_ext.rollout_config import RolloutConfig
        from pixel_reasoner import settings

        self.data = data
        self.processor = AutoProcessor.from_pretrained(data["model"])
        self.tokenizer = self.processor.tokenizer
        self.runtime = AgentRuntime(settings.build(RolloutConfig, data["config"]), self.processor)

    def episode(self, qid: str):
        from openrlhf_ext.labels import TaskLabel

        _, label, images = self.data["prompts"][qid]
        return self.runtime.new_episode(images, TaskLabel.parse(label))

    def action_texts(self, response: dict) -> list[str]:
        obs = response["observation_tokens"]
        return [self.tokenizer.decode(obs[s:e]) for s, e in response["action_ranges"]]

    def replay(self, qid: str, response: dict) -> tuple[object, list]:
        """The episode after feeding it the sample's action texts, and each step's result."""
        episode, results = self.episode(qid), []
        for text in self.action_texts(response):
            if episode.done:
                break
            results.append(episode.step(text))
        return episode, results

    def pixel_values(self, images):
        return self.processor.image_processor(images=list(images), return_tensors="pt")["pixel_values"]

    def image_rows(self, response: dict) -> list:
        """`mm_train_inputs["pixel_values"]` split into one block of rows per image."""
        mm = response["mm_train_inputs"]
        sizes = mm["image_grid_thw"].prod(-1).tolist()
        return list(mm["pixel_values"].split(sizes))

    def records(self, qid: str, response: dict | None = None) -> list[dict]:
        """Engine calls of one sample, in turn order (matched by the exact token ids it generated)."""
        response = response or self.data["responses"][qid]
        obs = response["observation_tokens"]
        out = []
        for s, e in response["action_ranges"]:
            matches = [r for r in self.data["records"] if r["token_ids"] == obs[s:e] and r["prompt_ids"] == obs[:s]]
            assert len(matches) >= 1, f"{qid}: no engine call generated tokens {s}:{e}"
            out.append(matches[0])
        return out


@pytest.fixture(scope="session")
def oracle(rollouts) -> Oracle:
    return Oracle(rollouts)


"""Our trainer classes construct as Ray actors (sync and async), with our experience maker installed inside."""
import json
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_install_points_upstream_train_at_our_classes(monkeypatch):
    from openrlhf_ext import trainer  # first: it installs the flash_attn stub openrlhf.models needs on CPU
    from openrlhf.trainer import ppo_trainer, ppo_trainer_async

    for module, name in ((ppo_trainer, "PPOTrainer"), (ppo_trainer_async, "PPOTrainerAsync"),
                         (ppo_trainer_async, "TrainingActor")):
        monkeypatch.setattr(module, name, getattr(module, name))  # restored after the test
    trainer.install()
    assert ppo_trainer.PPOTrainer is trainer.PixelReasonerPPOTrainer
    assert ppo_trainer_async.PPOTrainerAsync is trainer.PixelReasonerPPOTrainerAsync
    assert issubclass(trainer.PixelReasonerPPOTrainer.__ray_actor_class__,
                      trainer._UPSTREAM_PPO_TRAINER.__ray_actor_class__)


def test_trainers_construct_under_ray(ray_head, tiny_rl_inputs, tmp_path):
    """Submitted as a Ray job (tests/rl/trainer_probe.py): both trainer actors construct on the cluster."""
    done = ray_head.submit([sys.executable, str(REPO / "tests" / "rl" / "trainer_probe.py"), tiny_rl_inputs["model"],
                            tiny_rl_inputs["prompts"], str(tmp_path)], timeout=400)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    report = json.loads(next(line for line in out.splitlines() if line.startswith("PROBE "))[len("PROBE "):])
    sync, asynchronous = report["sync"], report["async"]
    assert sync["trainer"] == "PixelReasonerPPOTrainer"
    assert asynchronous["trainer"] == "PixelReasonerTrainingActor"  # created by upstream's PPOTrainerAsync
    for described in (sync, asynchronous):
        assert described["experience_maker"] == "PixelReasonerExperienceMaker"
        assert described["ssr_target"] == 8  # one train batch: a rollout (4 samples) is smaller
        assert described["config"]["log"]["run_dir"] == str(tmp_path / "run")
        # upstream: 4 prompts x 4 samples // 8 = 2 optimizer steps; SSR trains 8 per 4-sample rollout: x2
        assert described["max_steps"] == 4
    assert (tmp_path / "run").is_dir()

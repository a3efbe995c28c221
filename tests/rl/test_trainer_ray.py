"""Our trainer classes construct as Ray actors (sync and async), with our experience maker installed inside."""
import os
import pathlib

import pytest

from openrlhf_ext.rl_config import ENV_VAR, RLConfig, RunLogConfig, to_json
from openrlhf_ext.train import WORKER_SETUP_HOOK
from openrlhf_ext.upstream_cli import parse_and_validate

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


def test_trainers_construct_under_ray(tiny_rl_inputs, tmp_path, monkeypatch):
    import ray

    from openrlhf_ext import trainer
    from openrlhf.utils import get_strategy

    for key, value in {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
                       "RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false"}.items():
        monkeypatch.setenv(key, value)
    args = parse_and_validate([
        "--actor.model_name_or_path", tiny_rl_inputs["model"], "--data.prompt_dataset", tiny_rl_inputs["prompts"],
        "--data.input_key", "input", "--data.label_key", "label", "--data.apply_chat_template",
        "--data.max_images_per_prompt", "32", "--algo.advantage.estimator", "group_norm",
        "--rollout.n_samples_per_prompt", "4", "--rollout.batch_size", "1", "--train.batch_size", "8",
        "--algo.kl.init_coef", "0", "--ckpt.output_dir", str(tmp_path / "out"),
        "--train.agent_func_path", str(REPO / "openrlhf_ext" / "agent.py")]).args
    config = RLConfig(log=RunLogConfig(run_dir=str(tmp_path / "run")))
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), ENV_VAR: to_json(config),
           "TOKENIZERS_PARALLELISM": "false"}
    ray.init(address="local", num_cpus=4, num_gpus=0, _node_ip_address="127.0.0.1", include_dashboard=False,
             runtime_env={"env_vars": env, "worker_process_setup_hook": WORKER_SETUP_HOOK},
             object_store_memory=256 * 1024**2)
    try:
        strategy = get_strategy(args)
        generate_kwargs = dict(do_sample=True, max_len=800, max_new_tokens=None, temperature=1.0, top_p=1.0)
        sync = trainer.PixelReasonerPPOTrainer.remote(tiny_rl_inputs["model"], strategy, None, None, None, None,
                                                      None, **generate_kwargs)
        described = ray.get(sync.pr_describe.remote())
        assert described["trainer"] == "PixelReasonerPPOTrainer"
        assert described["experience_maker"] == "PixelReasonerExperienceMaker"
        assert described["ssr_target"] == 8  # one train batch: a rollout (4 samples) is smaller
        assert described["config"]["log"]["run_dir"] == str(tmp_path / "run")
        # upstream: 4 prompts x 4 samples // 8 = 2 optimizer steps; SSR trains 8 per 4-sample rollout: x2
        assert ray.get(sync.get_max_steps.remote()) == 4
        assert (tmp_path / "run").is_dir()

        asynchronous = trainer.PixelReasonerPPOTrainerAsync.remote(tiny_rl_inputs["model"], strategy, None, None,
                                                                   None, None, None, **generate_kwargs)
        described = ray.get(asynchronous.pr_describe.remote())
        assert described["trainer"] == "PixelReasonerTrainingActor"
        assert described["experience_maker"] == "PixelReasonerExperienceMaker"
        assert ray.get(asynchronous.get_max_steps.remote()) == 4
    finally:
        ray.shutdown()

"""Our actor classes: the patch's hook picks them, and they construct as Ray actors with our experience maker and
small rollout requests inside."""
import json
import pathlib
import pickle
import sys
from types import SimpleNamespace

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_the_patch_hook_picks_our_actor_classes_only_with_pr_enable():
    from openrlhf_ext import patch_hooks, trainer  # first: the flash-attn stub openrlhf.models needs on CPU
    from openrlhf.trainer import ppo_trainer, ppo_trainer_async

    on, off = SimpleNamespace(pr=SimpleNamespace(enable=True)), SimpleNamespace(pr=SimpleNamespace(enable=False))
    assert patch_hooks.actor_class(on, ppo_trainer.PPOTrainer) is trainer.PixelReasonerPPOTrainer
    assert patch_hooks.actor_class(on, ppo_trainer_async.TrainingActor) is trainer.PixelReasonerTrainingActor
    assert patch_hooks.actor_class(on, ppo_trainer_async.GenerateSamplesActor) is \
        trainer.PixelReasonerGenerateSamplesActor
    assert patch_hooks.actor_class(on, ppo_trainer_async.PPOTrainerAsync) is ppo_trainer_async.PPOTrainerAsync
    for cls in (ppo_trainer.PPOTrainer, ppo_trainer_async.TrainingActor, ppo_trainer_async.GenerateSamplesActor):
        assert patch_hooks.actor_class(off, cls) is cls


def test_the_hook_recognises_actor_handles_ray_shipped_by_value():
    """Inside the async trainer's Ray worker, upstream's actor handles are copies (Ray ships `PPOTrainerAsync` by
    value): a cloudpickle round trip makes the same kind of copy, a different object of the same class."""
    from openrlhf_ext import patch_hooks, trainer
    from openrlhf.trainer import ppo_trainer_async
    from ray import cloudpickle

    on = SimpleNamespace(pr=SimpleNamespace(enable=True))
    for upstream, ours in ((ppo_trainer_async.GenerateSamplesActor, trainer.PixelReasonerGenerateSamplesActor),
                           (ppo_trainer_async.TrainingActor, trainer.PixelReasonerTrainingActor)):
        copy = cloudpickle.loads(cloudpickle.dumps(upstream))
        assert copy is not upstream and patch_hooks.actor_class(on, copy) is ours


def test_rollout_requests_carry_a_small_context_instead_of_the_processor(tiny_processor, tiny_model_dir):
    """Upstream's dispatch sends `SamplesGenerator.tokenizer` with every request: ours is the context."""
    from openrlhf_ext.trainer import rollout_samples_generator  # first: the flash-attn stub
    from openrlhf.trainer.ppo_utils.samples_generator import SamplesGenerator

    from openrlhf_ext.rollout_config import RolloutConfig
    from openrlhf_ext.rollout_context import RolloutContext, context_of
    from openrlhf_ext.run_config import RunConfig, attach

    args = SimpleNamespace(actor=SimpleNamespace(model_name_or_path=tiny_model_dir), pr=SimpleNamespace())
    attach(args, RunConfig(rollout=RolloutConfig(max_turn_tokens=100)))
    upstream = SamplesGenerator(SimpleNamespace(args=args), None, None, tiny_processor, [])
    ours = rollout_samples_generator(upstream, args)
    assert isinstance(ours, SamplesGenerator) and isinstance(ours.tokenizer, RolloutContext)
    assert ours.tokenizer.config.max_turn_tokens == 100
    context_bytes, processor_bytes = len(pickle.dumps(ours.tokenizer)), len(pickle.dumps(tiny_processor))
    assert context_bytes < 10_000 < 10_000_000 < processor_bytes  # ~2 KB instead of ~14 MB per request
    received = pickle.loads(pickle.dumps(ours.tokenizer))  # what an engine process unpickles
    assert context_of(received)[1] is context_of(pickle.loads(pickle.dumps(ours.tokenizer)))[1]  # loaded once


@pytest.mark.slow
def test_actors_construct_under_ray(ray_head, tiny_rl_inputs, tmp_path, dry_run):
    """Submitted as a Ray job (tests/rl/trainer_probe.py) with the namespace of a real dry run."""
    code, out, document = dry_run(["--actor.model_name_or_path", tiny_rl_inputs["model"], "--data.prompt_dataset",
                                   tiny_rl_inputs["prompts"], "--data.input_key", "input", "--data.label_key", "label",
                                   "--data.apply_chat_template", "--data.max_images_per_prompt", "16",
                                   "--algo.advantage.estimator", "group_norm", "--rollout.n_samples_per_prompt", "4",
                                   "--rollout.batch_size", "1", "--train.batch_size", "8", "--algo.kl.init_coef", "0",
                                   "--actor.num_gpus_per_node", "1", "--vllm.num_engines", "1",
                                   "--ckpt.output_dir", str(tmp_path / "out"),
                                   "--pr.log.run_dir", str(tmp_path / "run"),
                                   "--pr.config", tiny_rl_inputs["settings"]])
    assert code == 0, out[-3000:]
    path = tmp_path / "resolved.json"
    path.write_text(json.dumps(document))
    done = ray_head.submit([sys.executable, str(REPO / "tests" / "rl" / "trainer_probe.py"), str(path),
                            str(tmp_path)], timeout=400)  # the head's PYTHONPATH has the patched OpenRLHF
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    report = json.loads(next(line for line in out.splitlines() if line.startswith("PROBE "))[len("PROBE "):])
    sync, generator, training = report["sync"], report["async_generator"], report["async_training"]
    assert (sync["trainer"], training["trainer"]) == ("PixelReasonerPPOTrainer", "PixelReasonerTrainingActor")
    for described in (sync, training):
        assert described["experience_maker"] == "PixelReasonerExperienceMaker"
        assert described["ssr_target"] == 8  # one train batch: a rollout (4 samples) is smaller
        assert described["config"]["log"]["run_dir"] == str(tmp_path / "run")
    for described in (sync, generator):
        assert described["rollout_request_tokenizer"] == "RolloutContext"
        assert described["rollout_request_tokenizer_bytes"] < 10_000
        # upstream: 4 prompts x 4 samples // 8 = 2 optimizer steps; SSR trains 8 per 4-sample rollout: x2
        assert described["max_steps"] == 4
    assert (tmp_path / "run").is_dir()

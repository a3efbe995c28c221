"""Ray job entry point for test_trainer_ray.py: construct our sync and async trainer actors, print what is inside.

    python tests/rl/trainer_probe.py MODEL PROMPTS OUT_DIR      (RAY_ADDRESS set by `ray job submit`)
"""
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)


def main(model: str, prompts: str, out_dir: str) -> None:
    import ray

    from openrlhf_ext import trainer
    from openrlhf_ext.rl_config import ENV_VAR, RLConfig, RunLogConfig, to_json
    from openrlhf_ext.train import WORKER_SETUP_HOOK
    from openrlhf_ext.upstream_cli import parse_and_validate
    from openrlhf.utils import get_strategy

    args = parse_and_validate([
        "--actor.model_name_or_path", model, "--data.prompt_dataset", prompts, "--data.input_key", "input",
        "--data.label_key", "label", "--data.apply_chat_template", "--data.max_images_per_prompt", "32",
        "--algo.advantage.estimator", "group_norm", "--rollout.n_samples_per_prompt", "4",
        "--rollout.batch_size", "1", "--train.batch_size", "8", "--algo.kl.init_coef", "0",
        "--actor.num_gpus_per_node", "1", "--ckpt.output_dir", os.path.join(out_dir, "out"),
        "--train.agent_func_path", os.path.join(REPO, "openrlhf_ext", "agent.py")]).args
    config = RLConfig(log=RunLogConfig(run_dir=os.path.join(out_dir, "run")))
    env = {"PYTHONPATH": REPO, ENV_VAR: to_json(config), "TOKENIZERS_PARALLELISM": "false"}
    ray.init(runtime_env={"env_vars": env, "worker_process_setup_hook": WORKER_SETUP_HOOK})
    strategy = get_strategy(args)
    kwargs = dict(do_sample=True, max_len=800, max_new_tokens=None, temperature=1.0, top_p=1.0)
    report = {}
    for name, cls in (("sync", trainer.PixelReasonerPPOTrainer), ("async", trainer.PixelReasonerPPOTrainerAsync)):
        actor = cls.remote(model, strategy, None, None, None, None, None, **kwargs)
        report[name] = ray.get(actor.pr_describe.remote())
        report[name]["max_steps"] = ray.get(actor.get_max_steps.remote())
    print("PROBE " + json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:4])

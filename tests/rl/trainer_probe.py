"""Ray job entry point for test_trainer_ray.py: construct our actor classes on a Ray cluster, print what is inside.

    python tests/rl/trainer_probe.py DOCUMENT OUT_DIR      (RAY_ADDRESS set by `ray job submit`)

DOCUMENT is the resolved configuration a real `--dry-run` printed (upstream's post-processed namespace and ours);
the probe attaches our `RunConfig` to upstream's namespace as `prepare_run` does, then creates the sync trainer
and the async-mode rollout and training actors the patch's hook hands upstream.
"""
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)


def main(document_path: str, out_dir: str) -> None:
    import ray
    from ray.util.queue import Queue

    from openrlhf.trainer.ppo_trainer_async import VLLMLock
    from openrlhf.utils import get_strategy

    from openrlhf_ext import trainer
    from openrlhf_ext.run_config import RunConfig, attach
    from openrlhf_ext.train import WORKER_SETUP_HOOK, from_plain
    from pixel_reasoner import settings

    with open(document_path) as f:
        document = json.load(f)
    args = from_plain(document["openrlhf"])
    args.pr = from_plain({"enable": True})
    attach(args, settings.build(RunConfig, document["pixel_reasoner"]))
    ray.init(runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"], "TOKENIZERS_PARALLELISM": "false"},
                          "worker_process_setup_hook": WORKER_SETUP_HOOK})
    strategy = get_strategy(args)
    model = args.actor.model_name_or_path
    kwargs = dict(do_sample=True, max_len=800, max_new_tokens=None, temperature=1.0, top_p=1.0)
    report = {}
    sync = trainer.PixelReasonerPPOTrainer.remote(model, strategy, None, None, None, None, None, **kwargs)
    report["sync"] = ray.get(sync.pr_describe.remote())
    report["sync"]["max_steps"] = ray.get(sync.get_max_steps.remote())
    queues = dict(vllm_lock=VLLMLock.remote(), rollout_queue=Queue(maxsize=1), rollout_slots=Queue(maxsize=1))
    generator = trainer.PixelReasonerGenerateSamplesActor.remote(model, strategy, None, **queues, **kwargs)
    report["async_generator"] = ray.get(generator.pr_describe.remote())
    report["async_generator"]["max_steps"] = ray.get(generator.get_max_steps.remote())
    training = trainer.PixelReasonerTrainingActor.remote(model, strategy, None, None, None, None, None, **queues)
    report["async_training"] = ray.get(training.pr_describe.remote())
    print("PROBE " + json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:3])

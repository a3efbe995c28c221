"""Runs with a patched OpenRLHF tree first on PYTHONPATH: what the patched code calls, short of starting Ray.

    python tests/patches/openrlhf_probe.py DOCUMENT

DOCUMENT is the resolved configuration the patched CLI printed in a `--pr.enable --pr.dry_run` run (upstream's
post-processed namespace and ours). The probe checks which of our hooks the patched functions call, what the
hooks return without `--pr.enable`, and builds the trainer the patched `train()` would create, in-process, with
our configuration attached as `prepare_run` attaches it. Prints one line: `PROBE {json}`.
"""
import json
import os
import shutil
import sys
from types import SimpleNamespace


def main(document_path: str) -> None:
    from openrlhf.cli import train_ppo_ray  # the patched module: it imports our hooks first
    from openrlhf.trainer import ppo_trainer_async
    from openrlhf.trainer.ppo_trainer import PPOTrainer
    from openrlhf.utils import get_strategy

    from openrlhf_ext.run_config import RunConfig, attach
    from openrlhf_ext.train import from_plain
    from pixel_reasoner import settings

    hooks = train_ppo_ray.pixel_reasoner
    report = {"module": train_ppo_ray.__file__,
              "train_calls": sorted({"prepare_run", "actor_class", "vllm_engine_options", "finish_run"}
                                    & set(train_ppo_ray.train.__code__.co_names)),
              "async_calls": sorted({"actor_class"} & set(ppo_trainer_async.PPOTrainerAsync.__ray_actor_class__
                                                          .__init__.__code__.co_names))}
    plain = SimpleNamespace(pr=SimpleNamespace(enable=False))
    classes = {"PPOTrainer": PPOTrainer, "PPOTrainerAsync": ppo_trainer_async.PPOTrainerAsync,
               "GenerateSamplesActor": ppo_trainer_async.GenerateSamplesActor,
               "TrainingActor": ppo_trainer_async.TrainingActor}
    report["without_enable"] = {"prepare_run": hooks.prepare_run(plain),
                                "vllm_engine_options": hooks.vllm_engine_options(plain),
                                "classes_unchanged": all(hooks.actor_class(plain, c) is c for c in classes.values())}

    with open(document_path) as f:
        document = json.load(f)
    args = from_plain(document["openrlhf"])
    args.pr = SimpleNamespace(enable=True)
    attach(args, settings.build(RunConfig, document["pixel_reasoner"]))
    sync_cls = hooks.actor_class(args, PPOTrainer)
    trainer = sync_cls.__ray_actor_class__(args.actor.model_name_or_path, get_strategy(args), None, None, None, None,
                                           None, do_sample=True, max_len=args.data.max_len, max_new_tokens=None,
                                           temperature=1.0, top_p=1.0)
    report["enabled"] = {"classes": {name: hooks.actor_class(args, c).__ray_actor_class__.__name__
                                     for name, c in classes.items()}, "described": trainer.pr_describe(),
                         "max_steps": trainer.get_max_steps()}
    # what upstream's save leaves (weights, config, tokenizer: no processor), then the last hook of train()
    saved = args.ckpt.output_dir
    os.makedirs(saved, exist_ok=True)
    shutil.copyfile(os.path.join(args.actor.model_name_or_path, "config.json"), os.path.join(saved, "config.json"))
    hooks.finish_run(plain)
    report["finish_run"] = {"without_enable": sorted(os.listdir(saved))}
    hooks.finish_run(args)
    report["finish_run"]["enabled"] = sorted(os.listdir(saved))
    print("PROBE " + json.dumps(report, default=str))


if __name__ == "__main__":
    main(sys.argv[1])

"""Runs with a patched OpenRLHF tree first on PYTHONPATH: what the patched CLI builds, short of starting Ray.

    python tests/patches/openrlhf_probe.py RUN_DIR [upstream train_ppo_ray flags]

Every scenario parses with the patched module's own parser and main block (`openrlhf_ext.upstream_cli` reads
them from the patched file) and calls the hooks the patched `train()` calls, in its order. Prints one line:
`PROBE {json}` with one entry per scenario.
"""
import contextlib
import io
import json
import os
import shutil
import sys


def outcome(fn) -> dict:
    """Exit status and output of a call that may end the program (argparse errors, our validation)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            fn()
            code = None
        except SystemExit as stop:
            code = stop.code
    return {"exit": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def main(run_dir: str, upstream: list[str]) -> None:
    from openrlhf.cli import train_ppo_ray  # the patched module: it imports our hooks first
    from openrlhf.trainer.ppo_trainer import PPOTrainer
    from openrlhf.trainer.ppo_trainer_async import PPOTrainerAsync
    from openrlhf.utils import get_strategy

    from openrlhf_ext.upstream_cli import build_parser, parse_and_validate

    hooks = train_ppo_ray.pixel_reasoner
    report = {"module": train_ppo_ray.__file__,
              "pr_flags": sorted(o for a in build_parser()._actions for o in a.option_strings if o.startswith("--pr.")),
              "train_calls": sorted({"prepare_run", "trainer_class", "finish_run"} & set(train_ppo_ray.train.__code__.co_names))}

    plain = parse_and_validate(upstream).args
    report["without_enable"] = {
        "agent": plain.train.agent_func_path, "prepare_run": hooks.prepare_run(plain),
        "trainers_unchanged": hooks.trainer_class(plain, PPOTrainer) is PPOTrainer
        and hooks.trainer_class(plain, PPOTrainerAsync) is PPOTrainerAsync}
    report["pr_flag_without_enable"] = outcome(lambda: parse_and_validate(["--pr.ssr.capacity", "64", *upstream]))
    packing = parse_and_validate(["--pr.enable", "--train.dynamic_batch_enable", *upstream]).args
    report["packing"] = outcome(lambda: hooks.configure_run(packing))

    from openrlhf_ext import train  # our launcher keeps working where the installed OpenRLHF is patched
    agent = os.path.join(os.path.dirname(hooks.__file__), "agent.py")
    report["launcher_dry_run"] = outcome(lambda: sys.exit(train.main(["--dry-run", "--pr.curiosity.alpha", "0.3",
                                                                      "--train.agent_func_path", agent, *upstream])))

    args = parse_and_validate(["--pr.enable", "--pr.curiosity.alpha", "0.25", "--pr.log.run_dir", run_dir,
                               *upstream]).args
    launch = hooks.configure_run(args)
    sync_cls, async_cls = hooks.trainer_class(args, PPOTrainer), hooks.trainer_class(args, PPOTrainerAsync)
    trainer = sync_cls.__ray_actor_class__(args.actor.model_name_or_path, get_strategy(args), None, None, None, None,
                                           None, do_sample=True, max_len=args.data.max_len, max_new_tokens=None,
                                           temperature=1.0, top_p=1.0)
    report["enabled"] = {"agent": args.train.agent_func_path, "remote_url": args.reward.remote_url,
                         "run_dir": launch.config.log.run_dir, "sync": sync_cls.__ray_actor_class__.__name__,
                         "async": async_cls.__ray_actor_class__.__name__,
                         "described": trainer.pr_describe(), "max_steps": trainer.get_max_steps()}
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
    main(sys.argv[1], sys.argv[2:])

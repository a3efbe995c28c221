"""The OpenRLHF 0.11.2 wheel source, patched by `python -m patches`, runs our RL stage from its own CLI.

Each check runs in a subprocess with the patched tree first on PYTHONPATH (this process may already have the
unpatched, installed OpenRLHF imported): the real `python -m openrlhf.cli.train_ppo_ray` for dry runs, a probe
that builds the trainer the patched `train()` picks, and upstream's own bundled test suite. No Ray run here:
the full loop is tests/rl's (through our launcher, which is this patched CLI on a patched installed copy).
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
AGENT = str(REPO / "openrlhf_ext" / "agent.py")


def patched_env(patched_openrlhf: pathlib.Path, **extra: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(patched_openrlhf), str(REPO)])
    env.update({"TOKENIZERS_PARALLELISM": "false", **extra})
    return env


@pytest.fixture(scope="module")
def upstream_argv(rl_inputs, tmp_path_factory) -> list[str]:
    """A tiny VLM GRPO run (upstream flags only)."""
    out = tmp_path_factory.mktemp("patched_run")
    return ["--actor.model_name_or_path", rl_inputs["model"], "--data.prompt_dataset", rl_inputs["prompts"],
            "--data.input_key", "input", "--data.label_key", "label", "--data.apply_chat_template",
            "--data.max_images_per_prompt", "16", "--algo.advantage.estimator", "group_norm",
            "--rollout.n_samples_per_prompt", "4", "--rollout.batch_size", "1", "--train.batch_size", "8",
            "--algo.kl.init_coef", "0", "--actor.num_gpus_per_node", "1", "--vllm.num_engines", "1",
            "--ds.attn_implementation", "sdpa", "--ckpt.output_dir", str(out / "ckpt")]


def patched_cli(patched_openrlhf, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "openrlhf.cli.train_ppo_ray", *argv],
                          env=patched_env(patched_openrlhf), capture_output=True, text=True, timeout=300,
                          cwd=str(patched_openrlhf))


@pytest.fixture(scope="module")
def dry_run(patched_openrlhf, rl_inputs, upstream_argv, tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    """The real `python -m openrlhf.cli.train_ppo_ray --pr.enable --pr.dry_run` of the patched tree, our flags
    included, and the resolved configuration it printed."""
    run_dir = str(tmp_path_factory.mktemp("probe") / "run")
    done = patched_cli(patched_openrlhf, ["--pr.enable", "--pr.dry_run", "--pr.set",
                                          "rewards.settings.curiosity.weight=0.25", "--pr.log.run_dir", run_dir,
                                          "--pr.config", rl_inputs["settings"], *upstream_argv])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("==> resolved (JSON): "))
    return done, json.loads(line.split(": ", 1)[1])


@pytest.fixture(scope="module")
def probe(patched_openrlhf, dry_run, tmp_path_factory) -> dict:
    """tests/patches/openrlhf_probe.py's report: the patched code's hook calls and the trainer it builds."""
    path = tmp_path_factory.mktemp("probe_doc") / "resolved.json"
    path.write_text(json.dumps(dry_run[1]))
    done = subprocess.run([sys.executable, str(REPO / "tests" / "patches" / "openrlhf_probe.py"), str(path)],
                          env=patched_env(patched_openrlhf), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("PROBE "))[6:])
    assert report["module"].startswith(str(patched_openrlhf))  # the patched tree, not the installed OpenRLHF
    return report


def test_patched_cli_dry_run_validates_and_defaults_to_our_agent(dry_run):
    done, document = dry_run
    assert "dry run (--pr.dry_run): configuration valid" in done.stdout
    assert document["pixel_reasoner"]["rewards"]["settings"]["curiosity"]["weight"] == 0.25  # our flag reached it
    assert document["openrlhf"]["train"]["agent_func_path"] == AGENT  # the default agent is ours
    assert document["openrlhf"]["reward"]["remote_url"] == ["agent"]  # and upstream's post-processing saw it
    assert "ERROR" not in done.stdout


def test_patched_parser_has_our_flags_and_the_patched_code_calls_our_hooks(patched_openrlhf, probe):
    done = patched_cli(patched_openrlhf, ["--help"])
    for flag in ("--pr.enable", "--pr.dry_run", "--pr.config", "--pr.set", "--pr.ssr.enabled",
                 "--pr.ssr.batch_fraction", "--pr.rollout.limits.max_images", "--pr.rollout.budget_preset",
                 "--pr.rollout.crop_max_pixels", "--pr.rewards.terms", "--pr.cpu.enabled"):
        assert flag in done.stdout, flag
    assert probe["train_calls"] == ["actor_class", "finish_run", "prepare_run", "vllm_engine_options"]
    assert probe["async_calls"] == ["actor_class"]  # the async trainer creates our rollout and training actors


def test_patched_train_builds_our_trainer_and_experience_maker(probe, dry_run):
    enabled = probe["enabled"]
    assert enabled["classes"] == {"PPOTrainer": "PixelReasonerPPOTrainer", "PPOTrainerAsync": "PPOTrainerAsync",
                                  "GenerateSamplesActor": "PixelReasonerGenerateSamplesActor",
                                  "TrainingActor": "PixelReasonerTrainingActor"}
    described = enabled["described"]
    assert described["experience_maker"] == "PixelReasonerExperienceMaker"
    assert described["config"]["rewards"]["settings"]["curiosity"]["weight"] == 0.25  # inside upstream's args
    assert described["ssr_target"] == 8  # one train batch: a 4-sample rollout is smaller
    assert described["rollout_request_tokenizer"] == "RolloutContext"
    assert enabled["max_steps"] == 4  # upstream's 2 optimizer steps, scaled by SSR's 8 trained per 4 generated


def test_patched_train_gives_saved_models_the_processor(probe, rl_inputs):
    """Upstream saves no image processor; after its save, `finish_run` copies the warm-start model's."""
    from openrlhf_ext.saved_model import PROCESSOR_FILES

    processor_files = {name for name in PROCESSOR_FILES if os.path.isfile(os.path.join(rl_inputs["model"], name))}
    assert processor_files  # transformers 5 writes processor_config.json
    assert probe["finish_run"]["without_enable"] == ["config.json"]
    assert set(probe["finish_run"]["enabled"]) == {"config.json"} | processor_files


def test_without_enable_the_patched_cli_is_upstream(probe, patched_openrlhf, upstream_argv):
    assert probe["without_enable"] == {"prepare_run": None, "vllm_engine_options": None, "classes_unchanged": True}
    refused = patched_cli(patched_openrlhf, ["--pr.ssr.capacity", "64", *upstream_argv])
    assert refused.returncode == 2 and "--pr.ssr.capacity given without --pr.enable" in refused.stderr


def test_our_launcher_runs_the_patched_cli_and_reads_the_old_flags(patched_openrlhf, upstream_argv, rl_inputs):
    done = subprocess.run([sys.executable, "-m", "openrlhf_ext.train", "--dry-run", "--pr.curiosity.alpha", "0.3",
                           "--pr.config", rl_inputs["settings"], *upstream_argv],
                          env=patched_env(patched_openrlhf), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    resolved = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("==> resolved (JSON): "))
                          .split(": ", 1)[1])
    assert "configuration valid" in done.stdout
    assert resolved["pixel_reasoner"]["rewards"]["settings"]["curiosity"]["weight"] == 0.3
    assert "curiosity.alpha is deprecated, use rewards.settings.curiosity.weight" in done.stderr


def test_upstream_bundled_tests_pass_on_the_patched_tree(patched_openrlhf):
    """OpenRLHF's own tests (installed by its wheel as the top-level `tests` package) against patched code."""
    runner = ("from openrlhf_ext.compat import install_flash_attn_stub; install_flash_attn_stub(); "
              "import sys, pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-o', 'addopts=', "
              "'tests']))")
    done = subprocess.run([sys.executable, "-c", runner], cwd=str(patched_openrlhf), env=patched_env(patched_openrlhf),
                          capture_output=True, text=True, timeout=600)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    assert int(summary.split(" passed")[0].split()[-1]) >= 221, summary

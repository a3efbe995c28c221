"""The zoom task's learning pipeline as the command lines a user runs (docs/learning.md): built in one place for
`bench/learning.py` and the CPU quickstart (`recipes/quickstart_cpu.sh` through `python -m pixel_reasoner.quickstart`),
so both run exactly the same commands.

Only the standard library: each function returns an argv; `run` executes one with the repository on PYTHONPATH and
appends its output to a log.
"""
from __future__ import annotations

import os
import subprocess
import time

from pixel_reasoner.zoom_task.layouts import EVAL_FLAGS, TALLYQA_DIR, VSTAR_DIR

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SFT_RECIPE = "recipes/sft_zoom_cpu.yaml"
SYNTH_RECIPE = "recipes/synth_zoom_cpu.yaml"
WARMUP_CLOSEUPS = 1000  # close-ups of the warm-up stage, each in both forms (closeup, closeup_crop): 2,000 rows
WARMUP_STEPS = 200  # SFT steps on them (docs/learning.md, "Warm-up")
# the warm-up's schedule: reading the close-ups is a phase change at a step that varies from run to run (40-100 in
# the runs of docs/learning.md, not by 100 in one), and a decaying learning rate would stop a late one
WARMUP_SCHEDULE = "constant_with_warmup"
SHORT_RUN_SCHEDULE = "constant_with_warmup"  # the main run's schedule in the quickstart and the CI test
# the warm-up's last logged loss is ~0.05 once the close-ups are read and stays ~0.15 while they are not (the
# pattern line is then a guess): above this, the warm-up did not take and the main run may never read the crop
WARMUP_READ_LOSS = 0.1


def run(argv: list[str], log: str) -> float:
    """Run a command from the repository root with the repo on PYTHONPATH, its output appended to `log`; returns
    its wall seconds. A failure raises SystemExit with the command and the log's tail."""
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    start = time.time()
    with open(log, "a", encoding="utf-8") as f:
        f.write("$ " + " ".join(argv) + "\n")
        f.flush()
        result = subprocess.run(argv, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
    if result.returncode:
        with open(log, encoding="utf-8") as f:
            tail = f.read()[-3000:]
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(argv)}\n--- end of {log}:\n{tail}")
    return time.time() - start


def model(py: str, out: str, seed: int) -> list[str]:
    return [py, "-m", "pixel_reasoner.testing.tiny_qwen", out, "--preset", "zoom", "--seed", str(seed)]


def seeds(py: str, out: str, n: int, seed: int, closeups: int = 0, wrong_boxes: bool = False) -> list[str]:
    """Training seeds: `n` image questions, plus `closeups` close-ups (the warm-up stage's data); `wrong_boxes`:
    the re-crops' wrong crops are other grid cells."""
    return [py, "-m", "pixel_reasoner.zoom_task", "seeds", out, "--n", str(n), "--seed", str(seed)] \
        + (["--closeups", str(closeups)] if closeups else []) + (["--wrong-boxes"] if wrong_boxes else [])


def synthesis(py: str, seeds_jsonl: str, out: str, profile: str, limit: int | None = None) -> list[str]:
    """Teacher trajectories through the template path (`profile` qwen: tools; qwen-no-tools: tools disabled)."""
    source = f"{{format: jsonl, name: zoom, path: '{seeds_jsonl}'" + (f", limit: {limit}" if limit else "") + "}"
    return [py, "-m", "data_synthesis", "run", "--config", SYNTH_RECIPE, "--set", f"profile={profile}",
            "--set", f"sources=[{source}]", "--output.dir", out, "--no-progress"]


def bench(py: str, out: str, detail: int, colour: int, count: int, seed: int) -> list[str]:
    """Held-out questions (the task's `eval` split: no evaluated scene is trained on)."""
    return [py, "-m", "pixel_reasoner.zoom_task", "bench", out, "--detail", str(detail), "--colour", str(colour),
            "--count", str(count), "--seed", str(seed)]


def benchmarks(bench_dir: str) -> dict[str, str]:
    """{benchmark: directory} of what `bench` wrote (a kind asked for 0 questions has no directory)."""
    return {name: os.path.join(bench_dir, name) for name in (VSTAR_DIR, TALLYQA_DIR)
            if os.path.isdir(os.path.join(bench_dir, name))}


def sft(py: str, model_dir: str, data_files: list[str], out: str, steps: int, seed: int, threads: int) -> list[str]:
    """`recipes/sft_zoom_cpu.yaml` for `steps` optimizer steps on `data_files` (weight 1 each), `threads` CPU
    threads in the training process. The task's SFT is two such runs (docs/learning.md, "Warm-up"): the
    close-up trajectories from the random model (`WARMUP_STEPS`), then the main data from that checkpoint."""
    return [py, "-m", "accelerate.commands.launch", "--config_file", "recipes/accelerate/cpu.yaml",
            "--num_cpu_threads_per_process", str(threads), "open_r1_ext/sft.py", "--config", SFT_RECIPE,
            "--model_name_or_path", model_dir, "--data_files", *data_files, "--data_weights",
            *["1"] * len(data_files), "--output_dir", out, "--max_steps", str(steps), "--seed", str(seed)]


def closeup_data(py: str, seeds_dir: str, synthesis_dir: str, seed: int,
                 closeups: int = WARMUP_CLOSEUPS) -> list[list[str]]:
    """The warm-up stage's data: `closeups` close-ups as seeds in both forms, answered from the close-up and through
    a crop of it, then their teacher trajectories (profile qwen)."""
    return [seeds(py, seeds_dir, 0, seed, closeups),
            synthesis(py, os.path.join(seeds_dir, "seeds.jsonl"), synthesis_dir, "qwen")]


def task_data(py: str, out: str, train: int, no_tools_rows: int, detail: int, colour: int, count: int, seed: int,
              closeups: int = WARMUP_CLOSEUPS, wrong_boxes: bool = False) -> list[list[str]]:
    """All of the task's data under `out`, in the layout the quickstart and the benches share: training seeds
    (seeds/), their teacher trajectories with tools (synthesis/) and, for the first `no_tools_rows`, without
    (synthesis_no_tools/), the warm-up's close-ups (closeup_seeds/, synthesis_closeups/) and the held-out
    questions (bench/). `main_data_files` and `closeup_data_files` name the trajectory files it writes."""
    seeds_jsonl = os.path.join(out, "seeds", "seeds.jsonl")
    return [seeds(py, os.path.join(out, "seeds"), train, seed, wrong_boxes=wrong_boxes),
            synthesis(py, seeds_jsonl, os.path.join(out, "synthesis"), "qwen"),
            synthesis(py, seeds_jsonl, os.path.join(out, "synthesis_no_tools"), "qwen-no-tools", no_tools_rows),
            *closeup_data(py, os.path.join(out, "closeup_seeds"), os.path.join(out, "synthesis_closeups"), seed,
                          closeups),
            bench(py, os.path.join(out, "bench"), detail, colour, count, seed)]


def main_data_files(out: str) -> list[str]:
    """The main SFT run's trajectory files that `task_data` wrote: with tools, then tools disabled."""
    return [os.path.join(out, d, "trajectories.jsonl") for d in ("synthesis", "synthesis_no_tools")]


def closeup_data_files(out: str) -> list[str]:
    """The warm-up's trajectory file that `task_data` wrote."""
    return [os.path.join(out, "synthesis_closeups", "trajectories.jsonl")]


def warmup_sft(py: str, model_dir: str, closeup_files: list[str], warmup_dir: str, warmup_steps: int, seed: int,
               threads: int) -> list[str]:
    """The warm-up run (docs/learning.md, "Warm-up"): `warmup_steps` on the close-ups from `model_dir`, at
    `WARMUP_SCHEDULE`."""
    return sft(py, model_dir, closeup_files, warmup_dir, warmup_steps, seed, threads) \
        + ["--lr_scheduler_type", WARMUP_SCHEDULE]


def sft_with_warmup(py: str, model_dir: str, closeup_files: list[str], data_files: list[str], warmup_dir: str,
                    out: str, warmup_steps: int, steps: int, seed: int, threads: int,
                    main_schedule: str | None = None) -> list[list[str]]:
    """The task's SFT (docs/learning.md, "Warm-up"): `warmup_steps` on the close-ups from `model_dir` into
    `warmup_dir` (at `WARMUP_SCHEDULE`), then `steps` on `data_files` from that checkpoint into `out`;
    `main_schedule` replaces the recipe's learning-rate schedule in the main run (a short run keeps it
    `constant_with_warmup`: a cosine over a few hundred steps spends half of them decaying)."""
    main = sft(py, warmup_dir, data_files, out, steps, seed, threads)
    return [warmup_sft(py, model_dir, closeup_files, warmup_dir, warmup_steps, seed, threads),
            main + (["--lr_scheduler_type", main_schedule] if main_schedule else [])]


def plot_loss(py: str, sft_dir: str, out: str, title: str) -> list[str]:
    return [py, "-m", "open_r1_ext.plot_loss", os.path.join(sft_dir, "trainer_state.json"), "--out", out,
            "--title", title]


def evaluate(py: str, model_dir: str, bench: dict[str, str], out: str, tools: bool = True,
             save_images: bool = False) -> list[str]:
    """`eval run` with the task's flags; `tools=False` is the ablation that answers from the original alone."""
    names = sorted(bench)
    argv = [py, "-m", "eval", "run", "--model", model_dir, "--benchmark", *names, "--data",
            *[bench[n] for n in names], "--out", out, *EVAL_FLAGS]
    if TALLYQA_DIR in bench and len(names) > 1:
        argv += ["--subset", "tallyqa=all"]
    elif names == [TALLYQA_DIR]:
        argv += ["--subset", "all"]
    return argv + ([] if tools else ["--no-tools"]) + (["--save-images"] if save_images else [])


def learning(py: str, results_dir: str, out: str) -> list[str]:
    """The learning metrics of one evaluated checkpoint (`python -m eval.learning`), written to `out`."""
    return [py, "-m", "eval.learning", results_dir, "--out", out]

"""Helpers of the CPU quickstart (`bash recipes/quickstart_cpu.sh`) on the zoom task (docs/learning.md): each
subcommand runs the real command-line tools of one stage, built by `pixel_reasoner.zoom_task.commands` (the same
command lines `bench/learning.py` runs), appends their output to a log, and prints one summary line; `collect`
gathers every stage's numbers into `metrics.json` and writes `report.md`.

    python -m pixel_reasoner.quickstart model OUT --log LOG
    python -m pixel_reasoner.quickstart data OUT --log LOG [--train N --no-tools-rows N --detail N --colour N --count N]
    python -m pixel_reasoner.quickstart sft OUT --log LOG [--steps N --warmup-steps N --threads N]
    python -m pixel_reasoner.quickstart eval OUT STAGE MODEL --log LOG [--no-tools] [--save-images]
    python -m pixel_reasoner.quickstart collect OUT        # metrics.json (with the `learning` section) + report.md

Layout under OUT: model/, seeds/, closeup_seeds/, synthesis/, synthesis_no_tools/, synthesis_closeups/, bench/,
sft_warmup/, sft/ (+ sft_loss.png), rl/,
eval/<stage>/ (predictions and `learning.json` of `python -m eval.learning`). Only the standard library: the
learning metrics are computed by `python -m eval.learning`, this module reads its JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from pixel_reasoner.jsonl import read_jsonl
from pixel_reasoner.zoom_task import commands
from pixel_reasoner.zoom_task.layouts import CHANCE_DETAIL

LEARNING_KEYS = ("accuracy_detail", "accuracy_coarse", "valid_call_rate", "crop_contains_target", "rapr")
# where it zooms and what it does after the first crop (`eval.learning`): what holds detail accuracy back
ZOOM_KEYS = ("first_crop_contains_target", "cropped_again_after_target", "answered_after_missed_crop")
STAGE_LABELS = {"base": "untrained (before SFT)", "sft": "after SFT", "sft_no_tools": "after SFT, tools disabled",
                "rl": "after RL"}
RL_KEYS = ("step", "rollout/correct_mean", "rollout/rapr_mean", "reward/curiosity_mean", "reward/efficiency_mean",
           "ssr/reward_uniform_group_ratio", "ssr/replayed_share", "ssr/buffer_size", "ssr/batch_size",
           "ssr/batch_multiple_of_train_batch", "policy_loss")


def model(out: str, log: str, seed: int) -> str:
    """The tiny zoom-preset Qwen2.5-VL (random weights, the task's byte-level BPE)."""
    commands.run(commands.model(sys.executable, os.path.join(out, "model"), seed), log)
    return f"tiny Qwen2.5-VL, zoom preset (random init, seed {seed}): {os.path.join(out, 'model')}"


def data(out: str, log: str, train: int, no_tools_rows: int, detail: int, colour: int, count: int,
         seed: int) -> str:
    """Training seeds (split `train`), their teacher trajectories with tools and (the first `no_tools_rows`)
    without, the warm-up stage's close-up trajectories, and held-out questions (split `eval`)."""
    for argv in commands.task_data(sys.executable, out, train, no_tools_rows, detail, colour, count, seed):
        commands.run(argv, log)
    tools, no_tools, warmup = (_load(os.path.join(out, d, "stats.json"))["trajectories"]
                               for d in ("synthesis", "synthesis_no_tools", "synthesis_closeups"))
    return (f"{tools['total']} teacher trajectories with tools {tools['by_type']}, {no_tools['total']} with tools "
            f"disabled, {warmup['total']} close-ups for the warm-up; held-out questions: {detail} detail, "
            f"{colour} colour, {count} count")


def sft(out: str, log: str, steps: int, warmup_steps: int, seed: int, threads: int) -> str:
    """`recipes/sft_zoom_cpu.yaml` in two runs: `warmup_steps` on the close-ups (sft_warmup/), then `steps` on both
    trajectory files from that checkpoint (sft/) at a constant learning rate; then the main run's loss plot."""
    py, warmup_dir, sft_dir = sys.executable, os.path.join(out, "sft_warmup"), os.path.join(out, "sft")
    seconds = sum(commands.run(argv, log) for argv in commands.sft_with_warmup(
        py, os.path.join(out, "model"), commands.closeup_data_files(out), commands.main_data_files(out), warmup_dir,
        sft_dir, warmup_steps, steps, seed, threads, main_schedule=commands.SHORT_RUN_SCHEDULE))
    commands.run(commands.plot_loss(py, sft_dir, os.path.join(out, "sft_loss.png"),
                                    f"quickstart: zoom task SFT, {steps} steps after a {warmup_steps}-step warm-up"),
                 log)
    losses = sft_losses(out)
    return (f"{warmup_steps} warm-up + {steps} steps in {seconds:.0f}s; loss {losses[0]:.2f} -> {losses[-1]:.2f} "
            f"(plot: {os.path.join(out, 'sft_loss.png')}); {warmup_verdict(out, warmup_steps)}")


def warmup_verdict(out: str, warmup_steps: int) -> str:
    """The warm-up's last logged loss, with a warning when it says the close-ups were not read: the main run then
    may not read the crop either, and the user should know before reading the report (docs/learning.md)."""
    loss = sft_losses(out, "sft_warmup")[-1]
    if loss <= commands.WARMUP_READ_LOSS:
        return f"warm-up loss {loss:.3f} (close-ups read)"
    return (f"warm-up loss {loss:.3f}\nWARNING: a warm-up loss above {commands.WARMUP_READ_LOSS} means the close-ups"
            f" were not read, so the main run may not read the crop either (docs/learning.md, "
            f"\"Warm-up\"); rerun with more warm-up steps: SFT_WARMUP_STEPS={2 * warmup_steps} bash "
            f"recipes/quickstart_cpu.sh --clean")


def evaluate(out: str, stage: str, model: str, log: str, tools: bool, save_images: bool) -> str:
    """`eval run` of `model` on the held-out questions into eval/STAGE, then its learning metrics."""
    py, results = sys.executable, os.path.join(out, "eval", stage)
    bench = commands.benchmarks(os.path.join(out, "bench"))
    if not bench:
        raise SystemExit(f"{out}/bench has no held-out questions: run the data stage first")
    commands.run(commands.evaluate(py, model, bench, results, tools, save_images), log)
    commands.run(commands.learning(py, results, os.path.join(results, "learning.json")), log)
    metrics = _load(os.path.join(results, "learning.json"))
    return f"{stage}: " + ", ".join(f"{k} {_fmt(_value(metrics, k))}" for k in LEARNING_KEYS)


def sft_losses(out: str, run: str = "sft") -> list[float]:
    state = _load(os.path.join(out, run, "trainer_state.json")) or {}
    return [h["loss"] for h in state.get("log_history", []) if "loss" in h]


def learning_section(out: str) -> dict:
    """`learning.<stage>.{accuracy_detail, ..., rapr}` (percent) with `ci95` per metric, for every evaluated
    stage, plus `chance_detail`."""
    section: dict = {"chance_detail": CHANCE_DETAIL}
    for stage in STAGE_LABELS:
        metrics = _load(os.path.join(out, "eval", stage, "learning.json"))
        if metrics is None:
            continue
        keys = LEARNING_KEYS + ZOOM_KEYS if stage != "sft_no_tools" else (
            "accuracy_detail", "accuracy_coarse", "valid_call_rate")
        section[stage] = {**{k: _value(metrics, k) for k in keys},
                          "ci95": {k: (metrics.get(k) or {}).get("ci95") for k in keys},
                          "n_detail": (metrics["accuracy_detail"] or {}).get("n")}
        if stage != "sft_no_tools":
            section[stage]["n"] = {k: (metrics.get(k) or {}).get("n") for k in ZOOM_KEYS}
    return section


def report(out: str, section: dict, sft_steps: int | None, rl_steps: int) -> str:
    """The quickstart's report: the learning metrics per stage with their bootstrap 95% CIs."""
    def cell(stage: dict, key: str) -> str:
        value, ci = stage.get(key), (stage.get("ci95") or {}).get(key)
        if value is None:
            return "—"
        return f"{value:.1f} [{ci[0]:.0f}, {ci[1]:.0f}]" if ci else f"{value:.1f}"

    names = ("detail accuracy", "coarse accuracy", "valid calls", "crop contains target", "RaPR")
    lines = ["# Pixel Reasoner CPU quickstart: does the tiny model learn to zoom?", "",
             "Held-out zoom-task questions (`python -m pixel_reasoner.zoom_task bench`, scenes never trained on), "
             "greedy decoding, `python -m eval run` without forced calls, metrics by `python -m eval.learning` "
             "(percent, bootstrap 95% CI over questions). docs/learning.md explains the task and the metrics.", "",
             "| stage | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for stage, label in STAGE_LABELS.items():
        if stage in section:
            lines.append(f"| {label} | " + " | ".join(cell(section[stage], k) for k in LEARNING_KEYS) + " |")
    lines += ["", f"Chance on detail questions: {section['chance_detail']:.0f}% (one of the patterns). The pattern "
              "is legible only in a crop: with tools disabled, detail accuracy stays near chance.", ""]
    zooms = [_zoom_line(label, section[stage]) for stage, label in STAGE_LABELS.items()
             if stage in ("sft", "rl") and stage in section]
    if zooms:
        lines += ["Where it zooms on detail questions and what it does after its first crop "
                  "(docs/learning.md, \"After the first crop\"):", "", *zooms, ""]
    losses = sft_losses(out)
    if losses:
        lines.append(f"SFT: {sft_steps} steps, loss {losses[0]:.2f} -> {losses[-1]:.2f} (`sft_loss.png`).")
    lines.append(f"RL: {rl_steps} steps (`rl/run/summary.md`).")
    return "\n".join(lines) + "\n"


def _zoom_line(label: str, stage: dict) -> str:
    def pct(key: str) -> str:
        value, n = stage.get(key), (stage.get("n") or {}).get(key)
        return "—" if value is None else f"{value:.0f}% of {n}"

    return (f"- {label}: the first crop holds the target in {pct('first_crop_contains_target')}; with the target "
            f"in it, it cropped again in {pct('cropped_again_after_target')}; without, it answered anyway in "
            f"{pct('answered_after_missed_crop')}.")


def collect(out: str) -> dict:
    """Every stage's headline numbers in `metrics.json`, and `report.md`, from the files the stages wrote."""
    synthesis = _load(os.path.join(out, "synthesis", "stats.json")) or {}
    trajectories = synthesis.get("trajectories") or {}
    sft_state = _load(os.path.join(out, "sft", "trainer_state.json")) or {}
    steps = _rows(os.path.join(out, "rl", "run", "metrics.jsonl"))
    section = learning_section(out)
    metrics = {
        "stages": _rows(os.path.join(out, "timings.jsonl")),
        "synthesis": {"trajectories": trajectories.get("total"), "by_type": trajectories.get("by_type"),
                      "no_tools": ((_load(os.path.join(out, "synthesis_no_tools", "stats.json")) or {})
                                   .get("trajectories") or {}).get("total")},
        "sft": {"steps": sft_state.get("global_step"), "losses": sft_losses(out)},
        "rl": {"steps": len(steps), "per_step": [{k: r.get(k) for k in RL_KEYS} for r in steps]},
        "learning": section,
    }
    with open(os.path.join(out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write(report(out, section, sft_state.get("global_step"), len(steps)))
    return metrics


def _load(path: str):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _rows(path: str) -> list[dict]:
    """A stage's JSONL log, or nothing when the stage did not run."""
    return read_jsonl(path) if os.path.isfile(path) else []


def _value(metrics: dict, key: str) -> float | None:
    """A rate of an `eval.learning` JSON (None where it has no rows)."""
    return (metrics.get(key) or {}).get("value")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixel_reasoner.quickstart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    model_p = sub.add_parser("model", help="the tiny zoom-preset model")
    data_p = sub.add_parser("data", help="seeds, teacher trajectories (tools / tools disabled), held-out questions")
    sft_p = sub.add_parser("sft", help="SFT (recipes/sft_zoom_cpu.yaml) and the loss plot")
    eval_p = sub.add_parser("eval", help="eval run on the held-out questions + python -m eval.learning")
    collect_p = sub.add_parser("collect", help="metrics.json and report.md")
    for p in (model_p, data_p, sft_p, eval_p, collect_p):
        p.add_argument("out")
    data_p.add_argument("--train", type=int, default=3000, help="training image questions")
    data_p.add_argument("--no-tools-rows", type=int, default=600, help="tools-disabled rows (the first N seeds)")
    data_p.add_argument("--detail", type=int, default=100, help="held-out detail questions")
    data_p.add_argument("--colour", type=int, default=50)
    data_p.add_argument("--count", type=int, default=50)
    sft_p.add_argument("--steps", type=int, default=600, help="steps of the main run")
    sft_p.add_argument("--warmup-steps", type=int, default=commands.WARMUP_STEPS, help="steps on the close-ups first")
    sft_p.add_argument("--threads", type=int, default=2, help="CPU threads of the training process")
    eval_p.add_argument("stage", choices=list(STAGE_LABELS))
    eval_p.add_argument("model")
    eval_p.add_argument("--no-tools", action="store_true")
    eval_p.add_argument("--save-images", action="store_true")
    for p in (model_p, data_p, sft_p, eval_p):
        p.add_argument("--log", required=True, help="append every command's output here")
        p.add_argument("--seed", type=int, default=0, help="task and model seed")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    if args.command == "model":
        print(model(out, args.log, args.seed))
    elif args.command == "data":
        print(data(out, args.log, args.train, args.no_tools_rows, args.detail, args.colour, args.count, args.seed))
    elif args.command == "sft":
        print(sft(out, args.log, args.steps, args.warmup_steps, args.seed, args.threads))
    elif args.command == "eval":
        print(evaluate(out, args.stage, args.model, args.log, not args.no_tools, args.save_images))
    else:
        print(json.dumps(collect(out), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

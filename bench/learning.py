"""Does our SFT teach a tiny Qwen2.5-VL to zoom? One run, through the real commands, measured on held-out questions.

    python bench/learning.py [--out out/learning] [--train 3000] [--steps 1200] [--warmup-steps 100] [--seed 0]

Stages (each the command a user runs; every command line is recorded in the JSON):
  1. model     python -m pixel_reasoner.testing.tiny_qwen OUT/model --preset zoom --seed S
  2. data      python -m pixel_reasoner.zoom_task seeds / bench, python -m data_synthesis run (tools, no tools)
  3. base      python -m eval run on the untrained model (tools offered)
  4. sft       accelerate launch open_r1_ext/sft.py --config recipes/sft_zoom_cpu.yaml, twice (timed together): a
               warm-up on close-up questions, then the main data from that checkpoint (docs/learning.md, "Warm-up")
  5. sft eval  python -m eval run with tools, and with --no-tools (the ablation: answer from the original)
Writes OUT/learning.json (every metric of eval.learning per stage, the targets of docs/learning.md and whether
each is met, stage timings), OUT/sft_loss.png, and prints one summary line. Evaluation questions come from the
task's `eval` split, training scenes from `train`: no evaluated scene is trained on. Re-running into the same OUT
with the same settings keeps the finished stages (`--skip-base` first, the base evaluation later, is one report).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from eval.learning import headline, learning_metrics  # noqa: E402
from pixel_reasoner.zoom_task import commands  # noqa: E402
from pixel_reasoner.zoom_task.commands import evaluate, run  # noqa: E402
from pixel_reasoner.zoom_task.layouts import CHANCE_DETAIL  # noqa: E402

TARGETS = {  # docs/learning.md: the targets for the SFT checkpoint
    "valid_call_rate": (">=", 95.0), "crop_contains_target": (">=", 80.0), "accuracy_detail": (">=", 80.0),
    "accuracy_coarse": (">=", 90.0)}
NO_TOOLS_MARGIN = 10.0  # tools disabled: detail accuracy within this many points of chance
SFT_SECONDS = 600  # the budget for the SFT stage on 2 CPU cores


def finished_stages(report: str, settings: dict) -> dict[str, float]:
    """Seconds of the stages an earlier run into the same OUT finished, if it ran with the same settings (apart
    from --skip-base): re-running then only adds what is missing, e.g. the untrained model's evaluation."""
    if not os.path.exists(report):
        return {}
    with open(report, encoding="utf-8") as f:
        previous = json.load(f)
    same = lambda s: {k: v for k, v in s.items() if k != "skip_base"}  # noqa: E731
    return dict(previous["seconds"]) if same(previous.get("settings", {})) == same(settings) else {}


def check(value: float | None, op: str, bound: float) -> bool:
    return value is not None and (value >= bound if op == ">=" else value <= bound)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/learning")
    ap.add_argument("--train", type=int, default=3000, help="training image questions (26.7%% coarse)")
    ap.add_argument("--no-tools-rows", type=int, default=600, help="tools-disabled rows (the first N seeds)")
    ap.add_argument("--steps", type=int, default=1200, help="SFT optimizer steps of the main run")
    ap.add_argument("--closeups", type=int, default=commands.WARMUP_CLOSEUPS, help="close-ups (warm-up data: each in both forms)")
    ap.add_argument("--warmup-steps", type=int, default=commands.WARMUP_STEPS,
                    help="SFT steps on the close-ups before the main run (0: no warm-up)")
    ap.add_argument("--detail", type=int, default=100, help="held-out detail questions")
    ap.add_argument("--colour", type=int, default=50)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0, help="model and task seed")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of the SFT process: on 2 free cores two ran "
                    "a main step in 0.94 s, one in 1.66 s (2026-12-06, before sort_step_by_length; ~0.8 s with it); "
                    "on cores shared with another job one thread can be faster (OpenMP threads wait on each other "
                    "when a core is busy)")
    ap.add_argument("--skip-base", action="store_true", help="do not evaluate the untrained model")
    a = ap.parse_args(argv)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    log, py = os.path.join(out, "commands.log"), sys.executable
    timings = finished_stages(os.path.join(out, "learning.json"), vars(a))

    def stage(name: str, *commands: list[str]) -> None:
        if name not in timings:  # a finished stage of an earlier run with the same settings is kept
            timings[name] = sum(run(command, log) for command in commands)

    model, sft, warmup = os.path.join(out, "model"), os.path.join(out, "sft"), os.path.join(out, "sft_warmup")
    stage("model", commands.model(py, model, a.seed))
    stage("data", *commands.task_data(py, out, a.train, a.no_tools_rows, a.detail, a.colour, a.count, a.seed,
                                      a.closeups))
    bench = commands.benchmarks(os.path.join(out, "bench"))
    results = {}
    if not a.skip_base:
        stage("eval_base", evaluate(py, model, bench, os.path.join(out, "eval", "base")))
        results["base"] = learning_metrics(os.path.join(out, "eval", "base"))
    main_data = commands.main_data_files(out)
    if a.warmup_steps:
        stage("sft", *commands.sft_with_warmup(py, model, commands.closeup_data_files(out), main_data, warmup, sft,
                                               a.warmup_steps, a.steps, a.seed, a.threads))
    else:
        stage("sft", commands.sft(py, model, main_data, sft, a.steps, a.seed, a.threads))
    stage("eval_sft", evaluate(py, sft, bench, os.path.join(out, "eval", "sft")))
    stage("eval_sft_no_tools", evaluate(py, sft, bench, os.path.join(out, "eval", "sft_no_tools"), False))
    results["sft"] = learning_metrics(os.path.join(out, "eval", "sft"))
    results["sft_no_tools"] = learning_metrics(os.path.join(out, "eval", "sft_no_tools"))
    run(commands.plot_loss(py, sft, os.path.join(out, "sft_loss.png"), f"zoom task SFT, {a.steps} steps"), log)

    chance = CHANCE_DETAIL
    sft_values = headline(results["sft"])
    met = {name: check(sft_values.get(name), op, bound) for name, (op, bound) in TARGETS.items()}
    no_tools = headline(results["sft_no_tools"])["accuracy_detail"]
    met["no_tools_within_10_of_chance"] = no_tools is not None and abs(no_tools - chance) <= NO_TOOLS_MARGIN
    met["sft_within_10_minutes"] = timings["sft"] <= SFT_SECONDS
    with open(os.path.join(sft, "trainer_state.json"), encoding="utf-8") as f:
        losses = [h["loss"] for h in json.load(f)["log_history"] if "loss" in h]
    report = {"stages": results, "chance_detail": chance, "targets": {k: list(v) for k, v in TARGETS.items()},
              "met": met, "seconds": {k: round(v, 1) for k, v in timings.items()},
              "sft": {"steps": a.steps, "warmup_steps": a.warmup_steps, "first_loss": losses[0],
                      "last_loss": losses[-1]},
              "settings": vars(a), "commands": os.path.join(out, "commands.log"), "cpus": os.cpu_count(),
              "load_average": os.getloadavg()}
    with open(os.path.join(out, "learning.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    fmt = lambda v: "n/a" if v is None else f"{v:.0f}"  # noqa: E731
    base = headline(results["base"]) if "base" in results else {}
    missed = [k for k, v in met.items() if not v]
    print(f"learning: detail acc {fmt(base.get('accuracy_detail'))} -> {fmt(sft_values['accuracy_detail'])}% "
          f"(no tools {fmt(no_tools)}%, chance {chance:.0f}%), crop contains target "
          f"{fmt(sft_values['crop_contains_target'])}%, valid calls {fmt(base.get('valid_call_rate'))} -> "
          f"{fmt(sft_values['valid_call_rate'])}%, coarse {fmt(sft_values['accuracy_coarse'])}%, SFT "
          f"{timings['sft']:.0f}s for {a.warmup_steps} warm-up + {a.steps} steps; "
          f"targets met: {sum(met.values())}/{len(met)}"
          + (f" (missed: {', '.join(missed)})" if missed else ""))
    return report


if __name__ == "__main__":
    main()

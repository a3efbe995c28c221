"""The paper's training dynamics on the zoom task (issue 14): does plain RL drive pixel-space reasoning (RaPR) down
from a weak warm start (the "learning trap"), and does the curiosity bonus keep it up? What does SSR change?

    python bench/learning_dynamics.py [--out out/dynamics] [--steps 8] [--queries 4] [--group 8] [--seeds 0 1]
        [--warm-start-steps 100] [--lock /tmp/pr_heavy.lock] [--docs docs/learning]

Stages (each the command a user runs; every command line is recorded in the JSON):
  1. warm start: the tiny zoom model, 600 training questions (task seed 0), teacher trajectories, SFT for
     `--warm-start-steps` steps (`pixel_reasoner.zoom_task.commands`, as bench/learning.py), and its held-out
     evaluation (`python -m eval run`, greedy) on 100 detail questions of task seed 1. An early checkpoint is the
     weak warm start the paper's trap needs: it crops on every detail question but its crops rarely find the
     target, so answering with an operation is no better than guessing (the JSON records the measured numbers).
  2. RL: every arm x seed through `recipes/rl_toy_cpu.sh` (OpenRLHF's loop in CPU mode, no forced turns;
     `bench.rl_runs.run_recipe`), `--steps` rollout steps of `--queries` prompts x `--group` samples. Arms:
     `curiosity` (paper defaults α 0.5, β 0.05, H 0.3, N 1), `no_curiosity` (α = 0), `no_ssr` (SSR off, curiosity
     on), `async` (`--train.async_enable`, curiosity and SSR on). The seed (`--train.seed`, which also seeds vLLM's
     sampling, and `--pr.ssr.seed`) is what differs between a run's seeds; the prompts are the same.
  3. held-out: the final checkpoint of the runs named by `--heldout-arms` evaluated like the warm start.
Per step it reads the run's own records (`$WORK/run/metrics.jsonl` and `groups.jsonl`, see `step_series`).
Writes DOCS/dynamics.json (`arms.<name>.seeds[].steps[]`, `rl_gain`, `warm_start`, config, commands, wall times),
DOCS/dynamics_{rapr,accuracy,reward}.png (mean over seeds, each seed thin) and DOCS/dynamics.md (the table), and
prints a progress line per stage. Resumable: a stage or run whose results exist under OUT is not run again
(delete its directory to rerun it). Heavy (an RL run ~8 GiB): with `--lock` each heavy command holds that file's
lock (flock) while it runs, so other users of the machine can interleave.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import fcntl
import json
import os
import pathlib
import shlex
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/learning_dynamics.py` from anywhere: the bench package

from bench.rl_runs import read_jsonl, run_recipe  # noqa: E402
from eval.learning import crop_contains_target, rate  # noqa: E402
from eval.protocols import DEFAULT_PROTOCOL, score_row  # noqa: E402
from eval.records import read_predictions  # noqa: E402
from eval.scoring import bootstrap_ci  # noqa: E402
from pixel_reasoner.zoom_task import commands  # noqa: E402
from pixel_reasoner.zoom_task.items import COARSE_KINDS  # noqa: E402
from pixel_reasoner.zoom_task.layouts import CHANCE_DETAIL  # noqa: E402

RECIPE = REPO / "recipes" / "rl_toy_cpu.sh"
ARMS: dict[str, list[str]] = {
    "curiosity": [],
    "no_curiosity": ["--pr.rewards.settings", "{curiosity: {weight: 0}}"],
    "no_ssr": ["--pr.ssr.enabled", "false"],
    "async": ["--train.async_enable"],
}
GAIN_RESAMPLES = 10_000


@dataclass
class DynamicsConfig:
    """What the experiment varies; the RL hyperparameters are the recipe's (the paper's reward defaults)."""

    out: str = "out/dynamics"
    docs: str = "docs/learning"
    steps: int = 8  # rollout steps per run (one policy update each)
    queries: int = 4  # prompts per step
    group: int = 8  # samples per prompt: the paper's 8, so a group can sit below H = 0.3 without being all-zero
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    warm_start_steps: int = 100
    sft_questions: int = 600
    sft_threads: int = 2
    rl_threads: int = 1  # OMP_NUM_THREADS of every process of an RL run: on 2 shared cores a 2-thread update ran
    # 8x slower (11 s -> 100 s per step) as soon as one other single-threaded job started; one thread each holds up
    heldout_detail: int = 100
    heldout_seed: int = 1
    heldout_arms: list[str] = field(default_factory=lambda: ["curiosity"])
    gain_seed: int = 0  # the curiosity run whose final checkpoint gives rl_gain
    lock: str | None = None


# -- pure parts: records -> series, gain, table

def question_kind(label: str | dict) -> str:
    """`detail` or `coarse` from a group record's label: zoom-task ids are `{split}-{kind}-{index}`."""
    decoded = json.loads(label) if isinstance(label, str) else label
    qid = decoded.get("qid") or ""
    parts = qid.split("-")
    if len(parts) != 3 or parts[1] not in ("detail", *COARSE_KINDS):
        raise ValueError(f"label qid {qid!r}: expected a zoom-task id `split-kind-index` with kind detail, "
                         f"{', '.join(COARSE_KINDS)} (prompts from `python -m openrlhf_ext.zoom_prompts prepare`)")
    return "detail" if parts[1] == "detail" else "coarse"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def step_series(metrics: list[dict], groups: list[dict]) -> list[dict]:
    """One row per rollout step from a run's records: `metrics.jsonl` (the controller's per-step record) and
    `groups.jsonl` (one record per prompt group: per-sample correctness, pixel reasoning (an operation executed),
    operations requested, advantages).

    Accuracy and RaPR per question kind, and the share of zero-advantage groups, come from the group records
    (every fresh sample of the step); reward, operation error rate, bonus, penalty and samples trained from the
    metrics (samples trained: SSR's batch, or every fresh sample when SSR is off). wall_s is the time since the
    previous step's record (None for the first, which includes start-up)."""
    by_step: dict[int, list[dict]] = {}
    for g in groups:
        by_step.setdefault(g["step"], []).append(g)
    rows, previous = [], None
    for m in metrics:
        step_groups = by_step.get(m["step"], [])
        per_kind: dict[str, dict[str, list[float]]] = {k: {"correct": [], "pr": [], "asked": []}
                                                       for k in ("detail", "coarse")}
        for g in step_groups:
            kind = per_kind[question_kind(g["label"])]
            kind["correct"] += [float(c) for c in g["correct"]]
            kind["pr"] += [float(p) for p in g["pixel_reasoning"]]
            kind["asked"] += [float(n > 0) for n in g["num_operations"]]
        zero_adv = [all(a == 0.0 for a in g["advantage"]) for g in step_groups]
        informative = [float(a != 0.0) for g in step_groups for a in g["advantage"]]
        rows.append({
            "step": m["step"],
            "reward": m.get("rollout/reward_mean"),
            "accuracy_detail": _mean(per_kind["detail"]["correct"]),
            "accuracy_coarse": _mean(per_kind["coarse"]["correct"]),
            "rapr_detail": _mean(per_kind["detail"]["pr"]),
            "rapr_coarse": _mean(per_kind["coarse"]["pr"]),
            "rapr": m.get("rollout/rapr_mean"),
            # responses that requested an operation, executed or not (RaPR counts executed ones: docs/rl.md)
            "requested_detail": _mean(per_kind["detail"]["asked"]),
            "requested_coarse": _mean(per_kind["coarse"]["asked"]),
            "operation_error_rate": m.get("agent/operation_error_rate"),
            "curiosity_bonus": m.get("reward/curiosity_mean"),
            "efficiency_penalty": m.get("reward/efficiency_mean"),
            "zero_advantage_group_share": _mean([float(z) for z in zero_adv]),
            "samples_trained": 0.0 if m.get("ssr/skipped_step", 0.0) else m.get("ssr/batch_size",
                                                                             m.get("rollout/num_samples")),
            "fresh_samples": m.get("rollout/num_samples"),
            "informative_sample_share": _mean(informative),  # fresh samples with a non-zero advantage
            "replayed_share": m.get("ssr/replayed_share"),  # of the trained batch (None: SSR off)
            "policy_loss": m.get("policy_loss"),
            "wall_s": None if previous is None else round(m["time_s"] - previous, 3),
            "step_total_s": m.get("timing/step_total"),
        })
        previous = m["time_s"]
    return rows


def correct_by_question(rows: list[dict], protocol: str = DEFAULT_PROTOCOL) -> dict[str, float]:
    """{question id: 1.0 if right else 0.0} of `eval run` predictions (one sample per question)."""
    return {r["id"]: float(score_row(r, protocol) == 1.0) for r in rows}


def paired_gain(before: dict[str, float], after: dict[str, float], resamples: int = GAIN_RESAMPLES,
                seed: int = 0) -> dict:
    """Accuracy gain (percentage points) of `after` over `before` on the same questions, with a 95% CI from a
    paired bootstrap over questions (the per-question differences are resampled together)."""
    if set(before) != set(after):
        raise ValueError(f"paired gain: the two evaluations cover different questions "
                         f"({len(set(before) ^ set(after))} differ); evaluate both on the same bench")
    ids = sorted(before)
    diffs = [after[i] - before[i] for i in ids]
    ci = bootstrap_ci(diffs, resamples, seed)
    return {"sft_accuracy_detail": 100 * _mean([before[i] for i in ids]),
            "rl_accuracy_detail": 100 * _mean([after[i] for i in ids]), "gain": 100 * _mean(diffs),
            "ci95": None if ci is None else [100 * c for c in ci], "questions": len(ids),
            "ci_method": f"paired percentile bootstrap over questions, {resamples} resamples, seed {seed}"}


def _stat(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.mean(present) if present else None


def arm_summary(seeds: list[dict], window: int = 3) -> dict:
    """Per arm, averaged over seeds: the per-step series over the first and the last `window` steps (one step's
    rates rest on ~24 detail and ~8 coarse samples: a window evens that out a little), and whole-run means."""
    def over(rows: slice, key: str) -> float | None:
        return _stat([row[key] for s in seeds for row in s["steps"][rows]])

    def whole(key: str) -> float | None:
        return _stat([v for s in seeds for v in (row[key] for row in s["steps"])])

    keys = ("reward", "accuracy_detail", "accuracy_coarse", "rapr_detail", "rapr_coarse")
    out = {f"{k}_first": over(slice(0, window), k) for k in keys} | {f"{k}_last": over(slice(-window, None), k)
                                                                      for k in keys}
    out["window"] = window
    for k in ("operation_error_rate", "curiosity_bonus", "efficiency_penalty", "zero_advantage_group_share",
              "samples_trained", "replayed_share", "informative_sample_share", "wall_s"):
        out[f"{k}_mean"] = whole(k)
    out["heldout_accuracy_detail"] = _stat([(s.get("heldout") or {}).get("accuracy_detail") for s in seeds])
    out["seeds"] = len(seeds)
    out["steps"] = min((len(s["steps"]) for s in seeds), default=0)
    return out


def markdown_table(arms: dict[str, dict]) -> str:
    """The table of docs/learning.md: one row per arm, means over its seeds (first -> last steps, see arm_summary)."""
    def f(v: float | None, pct: bool = False, digits: int = 2) -> str:
        return "n/a" if v is None else (f"{100 * v:.0f}" if pct else f"{v:.{digits}f}")

    window = next(iter(arms.values()))["summary"]["window"]
    head = (f"| arm | seeds x steps | reward, first {window} → last {window} steps | detail acc % first → last "
            "| coarse acc % first → last | RaPR detail % first → last | RaPR coarse % first → last | op error % | bonus | penalty "
            "| zero-adv groups % | samples trained (replayed %) | wall s/step | held-out detail acc % |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, arm in arms.items():
        s = arm["summary"]
        pair = lambda k, pct=True: f"{f(s[k + '_first'], pct)} → {f(s[k + '_last'], pct)}"  # noqa: E731
        lines.append(
            f"| {name} | {s['seeds']} x {s['steps']} | {pair('reward', False)} | {pair('accuracy_detail')} | "
            f"{pair('accuracy_coarse')} | {pair('rapr_detail')} | {pair('rapr_coarse')} | "
            f"{f(s['operation_error_rate_mean'], True)} | {f(s['curiosity_bonus_mean'], digits=4)} | "
            f"{f(s['efficiency_penalty_mean'], digits=4)} | {f(s['zero_advantage_group_share_mean'], True)} | "
            f"{f(s['samples_trained_mean'], digits=1)} ({f(s['replayed_share_mean'], True)}) | "
            f"{f(s['wall_s_mean'], digits=1)} | "
            f"{f(s['heldout_accuracy_detail'], digits=0)} |")
    return "\n".join(lines) + "\n"


def plot(arms: dict[str, dict], docs: pathlib.Path) -> list[str]:
    """RaPR, accuracy (detail and coarse panels) and reward per step per arm: mean over seeds, each seed thin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {"rapr": [("rapr_detail", "RaPR, detail questions"), ("rapr_coarse", "RaPR, coarse questions")],
               "accuracy": [("accuracy_detail", "rollout accuracy, detail"),
                            ("accuracy_coarse", "rollout accuracy, coarse")],
               "reward": [("reward", "mean reward")]}
    written = []
    colours = dict(zip(arms, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for name, panels in figures.items():
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
        for ax, (key, title) in zip(axes[0], panels):
            for arm, data in arms.items():
                series = [[row["step"], row[key]] for s in data["seeds"] for row in s["steps"]]
                for s in data["seeds"]:
                    pts = [(r["step"], r[key]) for r in s["steps"] if r[key] is not None]
                    if pts:
                        ax.plot(*zip(*pts), color=colours[arm], linewidth=0.7, alpha=0.4)
                steps = sorted({step for step, _ in series})
                mean = [(st, _stat([v for s2, v in series if s2 == st])) for st in steps]
                mean = [(st, v) for st, v in mean if v is not None]
                if mean:
                    ax.plot(*zip(*mean), color=colours[arm], linewidth=2, label=arm)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("rollout step")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        path = docs / f"dynamics_{name}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(str(path))
    return written


# -- orchestration

@contextlib.contextmanager
def heavy(lock: str | None):
    """Hold the machine's shared lock for a heavy command (flock, as `flock LOCK command` does)."""
    if lock is None:
        yield
        return
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_json(path: pathlib.Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def executed_an_operation(row: dict) -> bool:
    """An `eval run` response with an operation that ran and showed pixels (RaPR's indicator in RL, docs/rl.md)."""
    return any(op.get("tool") and op.get("error") is None for op in row.get("operations") or [])


def heldout_metrics(rows: list[dict]) -> dict:
    """Held-out numbers of one checkpoint from its `eval run` predictions (percent; accuracy with a bootstrap CI)."""
    ops = sum(r.get("num_operations", 0) for r in rows)
    errors = sum(r.get("num_operation_errors", 0) for r in rows)
    right = correct_by_question(rows)
    accuracy = rate(rows, lambda r: right[r["id"]])
    return {"accuracy_detail": accuracy["value"], "ci95": accuracy["ci95"], "questions": len(rows),
            "requested_operation": rate(rows, lambda r: r.get("num_operations", 0) > 0)["value"],
            "executed_operation": rate(rows, executed_an_operation)["value"],
            "crop_contains_target": rate(rows, crop_contains_target)["value"],
            "operation_error_rate": 100 * errors / ops if ops else None,
            # a model that answers one letter whatever it sees scores that letter's share of the answers
            "predictions": dict(collections.Counter(str(r.get("prediction")) for r in rows).most_common()),
            "correct": right}


def heldout(cfg: DynamicsConfig, model: str, bench: dict[str, str], out: pathlib.Path, log: str) -> dict:
    """`eval run` of one checkpoint on the held-out bench (kept if it ran before), and its numbers."""
    done, predictions = out / "heldout.json", out / "eval" / "predictions.jsonl"  # one benchmark: no subfolder
    if (run := load_json(done)) is None:
        argv = commands.evaluate(sys.executable, model, bench, str(out / "eval"))
        with heavy(cfg.lock):
            seconds = commands.run(argv, log)
        run = {"seconds": round(seconds, 1), "command": shlex.join(argv)}
        done.write_text(json.dumps(run, indent=2))
    return heldout_metrics(read_predictions(str(predictions))) | {"seconds": run["seconds"], "command": run["command"]}


def warm_start(cfg: DynamicsConfig, out: pathlib.Path, log: str) -> tuple[str, dict[str, str], dict]:
    """The weak SFT warm start and the held-out bench; returns (checkpoint, bench, its record with the held-out
    evaluation, per-question correctness included until the report drops it)."""
    py, ws = sys.executable, out / "warm_start"
    sft, bench_dir, seeds = ws / "sft", ws / "bench", ws / "seeds"
    stages = [("model", [commands.model(py, str(ws / "model"), 0)], ws / "model" / "config.json"),
              ("data", [commands.seeds(py, str(seeds), cfg.sft_questions, 0),
                        commands.synthesis(py, str(seeds / "seeds.jsonl"), str(ws / "synthesis"), "qwen")],
               ws / "synthesis" / "trajectories.jsonl"),
              ("bench", [commands.bench(py, str(bench_dir), cfg.heldout_detail, 0, 0, cfg.heldout_seed)],
               bench_dir / "vstar" / "test_questions.jsonl"),
              ("sft", [commands.sft(py, str(ws / "model"), [str(ws / "synthesis" / "trajectories.jsonl")], str(sft),
                                    cfg.warm_start_steps, 0, cfg.sft_threads)], sft / "trainer_state.json")]
    timings = load_json(ws / "seconds.json") or {}
    for name, argvs, marker in stages:
        if marker.exists() and name in timings:
            continue
        progress(f"warm start: {name}")
        with heavy(cfg.lock if name == "sft" else None):
            timings[name] = round(sum(commands.run(argv, log) for argv in argvs), 1)
        (ws / "seconds.json").write_text(json.dumps(timings))
    bench = commands.benchmarks(str(bench_dir))
    progress("warm start: held-out evaluation")
    result = heldout(cfg, str(sft), bench, ws, log)
    return str(sft), bench, {"sft_steps": cfg.warm_start_steps, "checkpoint": str(sft), "seconds": timings,
                             "heldout": result, "chance_detail": CHANCE_DETAIL}


def run_dir(cfg: DynamicsConfig, out: pathlib.Path, arm: str, seed: int) -> pathlib.Path:
    """Where one arm x seed runs: named by the run's size and threads, so resuming never takes another run for it."""
    return out / "runs" / f"steps{cfg.steps}_q{cfg.queries}_g{cfg.group}_t{cfg.rl_threads}" / arm / f"seed{seed}"


def rl_run(cfg: DynamicsConfig, arm: str, seed: int, model: str, out: pathlib.Path) -> dict:
    """One arm x seed through the toy recipe (kept if its result exists): command, wall time, memory, checkpoint.
    Its per-step series is read from the run's records by `main`."""
    work = run_dir(cfg, out, arm, seed)
    if (result := load_json(work / "result.json")) is not None:
        return result
    if work.exists():  # an interrupted run: its records would mix with the new ones
        shutil.rmtree(work)
    extra = [*ARMS[arm], "--train.seed", str(seed), "--pr.ssr.seed", str(seed)]
    env = {"MODEL": model, "STEPS": str(cfg.steps), "QUERIES": str(cfg.queries), "GROUP": str(cfg.group),
           "OMP_NUM_THREADS": str(cfg.rl_threads)}
    with heavy(cfg.lock):
        run = run_recipe(RECIPE, work, extra, env=env)
    if run.returncode != 0:
        raise SystemExit(f"{arm} seed {seed} failed (exit {run.returncode}); see {run.log_path}")
    command = " ".join(f"{k}={v}" for k, v in env.items()) + " " + shlex.join(["bash", str(RECIPE), *extra])
    result = {"seed": seed, "command": command, "wall_s": round(run.wall_s, 1),
              "peak_pss_gib": round(run.peak_pss_bytes / 2**30, 2), "checkpoint": str(work / "ckpt")}
    (work / "result.json").write_text(json.dumps(result, indent=2))
    return result


def parse_config(argv: list[str] | None) -> DynamicsConfig:
    defaults = DynamicsConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(DynamicsConfig):
        value = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, list):
            kind = str if f.name.endswith("arms") else int
            ap.add_argument(flag, nargs="+", type=kind, default=value)
        else:
            ap.add_argument(flag, type=int if isinstance(value, int) else str, default=value)
    cfg = DynamicsConfig(**vars(ap.parse_args(argv)))
    unknown = sorted(set(cfg.arms + cfg.heldout_arms) - set(ARMS))
    if unknown:
        ap.error(f"--arms/--heldout-arms: unknown arm(s) {unknown}; known: {list(ARMS)}")
    if cfg.gain_seed not in cfg.seeds or "curiosity" not in cfg.arms:
        ap.error(f"--gain-seed {cfg.gain_seed}: must be one of --seeds {cfg.seeds}, with the curiosity arm run")
    return cfg


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(argv)
    started = time.time()
    out, docs = pathlib.Path(cfg.out).resolve(), pathlib.Path(cfg.docs)
    out.mkdir(parents=True, exist_ok=True)
    docs.mkdir(parents=True, exist_ok=True)
    log = str(out / "commands.log")
    sft, bench, warm = warm_start(cfg, out, log)
    progress(f"warm start: {cfg.warm_start_steps} SFT steps, held-out detail accuracy "
             f"{warm['heldout']['accuracy_detail']:.0f}% (chance {CHANCE_DETAIL:.0f}%)")
    arms: dict[str, dict] = {}
    total, number = len(cfg.arms) * len(cfg.seeds), 0
    for arm in cfg.arms:
        arms[arm] = {"extra_args": ARMS[arm], "seeds": []}
        for seed in cfg.seeds:
            number += 1
            progress(f"run {number}/{total}: {arm} seed {seed}")
            result = rl_run(cfg, arm, seed, sft, out)
            records = run_dir(cfg, out, arm, seed) / "run"
            result["steps"] = step_series(read_jsonl(records / "metrics.jsonl"), read_jsonl(records / "groups.jsonl"))
            if arm in cfg.heldout_arms:
                result["heldout"] = heldout(cfg, result["checkpoint"], bench, run_dir(cfg, out, arm, seed), log)
            walls = [s["wall_s"] for s in result["steps"] if s["wall_s"] is not None]
            progress(f"  {arm} seed {seed}: {len(result['steps'])} steps in {result['wall_s']:.0f} s "
                     f"({_stat(walls) or 0:.1f} s/step), RaPR detail "
                     f"{result['steps'][0]['rapr_detail']} -> {result['steps'][-1]['rapr_detail']}")
            arms[arm]["seeds"].append(result)
        arms[arm]["summary"] = arm_summary(arms[arm]["seeds"])
    gain_run = next(s for s in arms["curiosity"]["seeds"] if s["seed"] == cfg.gain_seed)
    gain_heldout = gain_run.get("heldout") or heldout(cfg, gain_run["checkpoint"], bench,
                                                      run_dir(cfg, out, "curiosity", cfg.gain_seed), log)
    warm_correct = warm["heldout"].pop("correct")
    rl_gain = paired_gain(warm_correct, gain_heldout["correct"]) | {
        "steps": len(gain_run["steps"]), "wall_s": gain_run["wall_s"],
        "command": f"{gain_run['command']}; {gain_heldout['command']}", "seed": cfg.gain_seed}
    for arm in arms.values():
        for s in arm["seeds"]:
            if "heldout" in s:
                s["heldout"] = {k: v for k, v in s["heldout"].items() if k != "correct"}
    plots = plot(arms, docs)
    table = markdown_table(arms)
    (docs / "dynamics.md").write_text(table)
    report = {"config": dataclasses.asdict(cfg), "command": shlex.join([sys.executable, *sys.argv]),
              "warm_start": warm, "arms": arms, "rl_gain": rl_gain, "plots": plots,
              "wall_s_this_invocation": round(time.time() - started, 1), "cpus": os.cpu_count(),
              "load_average": os.getloadavg()}
    (docs / "dynamics.json").write_text(json.dumps(report, indent=2))
    print(table)
    g = rl_gain
    progress(f"rl_gain: detail accuracy {g['sft_accuracy_detail']:.0f}% -> {g['rl_accuracy_detail']:.0f}% "
             f"({g['gain']:+.0f} points, 95% CI {g['ci95'][0]:+.0f} to {g['ci95'][1]:+.0f}) after {g['steps']} steps")
    return report


if __name__ == "__main__":
    main()

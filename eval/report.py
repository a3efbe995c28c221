"""Markdown report in the paper's Table 1 layout (+ the RaPR table of appendix D.1) from metrics files.

Runs are grouped into rows by what identifies a model configuration (model, profile, tools, samples) and by the
protocol the numbers were produced with (scoring rules, option order, pixel budgets); each metrics file fills one
benchmark cell. Only rows scored by the paper's rules on the data's option order at the official eval's pixel
budgets (`paper_eval`) go in the Table-1 block, next to the paper's rows; every other row goes in a block that
says why it is not comparable. When one configuration was
run with the data's order and shuffled, the difference is shown as the option-order bias. Every row names its
protocol, option order and (MVBench) frame sampling.
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import NamedTuple, Sequence

from pixel_reasoner.config import BUDGET_PRESETS, PixelBudgets
from pixel_reasoner.errors import ConfigError, DataError

from eval.benchmarks import benchmark_names, get_benchmark
from eval.paper import ABLATIONS, BASELINES, PIXEL_REASONER

PAPER_BUDGETS = "paper_eval"  # the pixel budgets the paper's numbers were measured with


def load_metrics(path: str) -> dict:
    if not os.path.isfile(path):
        raise DataError(f"metrics file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            metrics = json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e.msg})") from None
    for key in ("benchmark", "score"):
        if key not in metrics:
            raise DataError(f"{path}: missing `{key}`; is this a metrics.json written by `eval score`?")
    metrics["_path"] = path
    return metrics


def run_label(metrics: dict) -> str:
    """The model configuration: model (profile, tools, samples)."""
    run = metrics.get("run") or {}
    if not run:
        return os.path.basename(os.path.dirname(os.path.abspath(metrics["_path"]))) or metrics["_path"]
    label = f"{os.path.basename(str(run.get('model', '?')).rstrip('/'))} ({run.get('profile', '?')}"
    if run.get("tools") is False:
        label += ", no tools"
    if run.get("samples", 1) > 1:
        label += f", Avg@{run['samples']}"
    return label + ")"


class Protocol(NamedTuple):
    scoring: str  # paper | lenient | unknown (metrics written before protocols were recorded)
    shuffled: bool
    seed: int | None
    budgets: str = PAPER_BUDGETS  # the preset the run's pixel budgets equal, "custom", or "unknown" (not recorded)
    order: str = "original"  # original | shuffled | sorted (eval.choices.option_order)

    @classmethod
    def of(cls, metrics: dict) -> "Protocol":
        record = metrics.get("protocol") or {}
        run = metrics.get("run") or {}
        order = record.get("option_order", "original")
        seed = run.get("shuffle_options") if order == "shuffled" else None
        return cls(record.get("scoring", "unknown"), order != "original", seed, budget_label(run.get("budgets")),
                   order)

    @property
    def comparable(self) -> bool:
        return self.scoring == "paper" and not self.shuffled and self.budgets == PAPER_BUDGETS

    def describe(self) -> str:
        order = "options sorted" if self.order == "sorted" else "options shuffled" + (
            f" (seed {self.seed})" if self.seed is not None else "") if self.shuffled else "data's option order"
        return f"{self.scoring} scoring, {order}, {self.budgets} budgets"

    def why_not_comparable(self) -> str:
        reasons = []
        if self.scoring == "unknown":
            reasons.append("scoring protocol not recorded (metrics from an older version: re-run `eval score`)")
        elif self.scoring != "paper":
            reasons.append(f"{self.scoring} scoring, not the paper's rules")
        if self.shuffled:
            reasons.append(f"options {self.order}, the paper shows the data's order")
        if self.budgets == "unknown":
            reasons.append("pixel budgets not recorded (no run_manifest.json next to the predictions)")
        elif self.budgets != PAPER_BUDGETS:
            reasons.append(f"{self.budgets} pixel budgets, the paper's numbers were measured at {PAPER_BUDGETS} "
                           f"(`--budget-preset {PAPER_BUDGETS}`)")
        return "; ".join(reasons)


def budget_label(recorded: dict | None) -> str:
    """Which preset a run's recorded per-kind budgets equal ("custom" if none, "unknown" if not recorded)."""
    if recorded is None:
        return "unknown"
    try:
        budgets = PixelBudgets.from_dict(recorded)
    except ConfigError:
        return "unknown"
    return next((name for name in BUDGET_PRESETS if PixelBudgets.preset(name) == budgets), "custom")


def _row_label(config: str, protocol: Protocol, by_bench: dict[str, dict]) -> str:
    frames = sorted({f for m in by_bench.values() for f in ((m.get("protocol") or {}).get("frame_sampling") or [])})
    return f"**{config}** (ours; {protocol.describe()}" + (f"; frames: {', '.join(frames)}" if frames else "") + ")"


def _cell(value: float | None, ci: Sequence[float] | None = None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "")


def columns(measured: set[str]) -> list[tuple[str, str]]:
    """(benchmark, header) of the report's columns: the benchmarks the paper reports (its Table-1 headers), then
    any other measured one (its short name and headline metric)."""
    out = []
    for name in benchmark_names():
        spec = get_benchmark(name)
        if spec.paper is not None:
            out.append((name, spec.paper.column))
        elif name in measured:
            out.append((name, f"{spec.short_name} {'ANLS' if spec.headline == 'anls' else 'Acc'}"))
    return out


def _paper_row(label: str, cols: Sequence[tuple[str, str]]) -> str:
    values = [(get_benchmark(b).paper.table1.get(label) if get_benchmark(b).paper else None) for b, _ in cols]
    return f"| {label} | " + " | ".join(_cell(v) for v in values) + " |"


def build_report(paths: Sequence[str]) -> str:
    runs: "OrderedDict[tuple[str, Protocol], dict[str, dict]]" = OrderedDict()
    for path in paths:
        m = load_metrics(path)
        get_benchmark(m["benchmark"])  # an unknown benchmark names --benchmark_modules
        key = (run_label(m), Protocol.of(m))
        if m["benchmark"] in runs.setdefault(key, {}):
            raise DataError(f"two metrics files for {key[0]} ({key[1].describe()}) on {m['benchmark']}: "
                            f"{runs[key][m['benchmark']]['_path']} and {path}")
        runs[key][m["benchmark"]] = m
    cols = columns({b for by_bench in runs.values() for b in by_bench})
    header = "| Model | " + " | ".join(name for _, name in cols) + " |"
    rule = "|---" * (len(cols) + 1) + "|"

    def cells(by_bench: dict[str, dict], key: str = "score", ci: bool = True) -> str:
        return " | ".join(_cell(by_bench[b].get(key), by_bench[b].get("ci95") if ci else None) if b in by_bench
                          else "–" for b, _ in cols)

    lines = ["## Main results (paper Table 1 layout)", "",
             "Our rows here are scored by the paper's rules (`--protocol paper`) on the data's option order.", "",
             header, rule]
    lines += [f"| {_row_label(c, p, b)} | {cells(b)} |" for (c, p), b in runs.items() if p.comparable]
    lines += [_paper_row(label, cols) for label in (PIXEL_REASONER, *BASELINES)]
    lines.append("| *Ablations (paper)* |" + " |" * len(cols))
    lines += [_paper_row(label, cols) for label in ABLATIONS]
    lines += ["", "Ours: score [95% bootstrap CI over questions]. The paper's InfoVQA number was computed with "
              "lmms-eval's ANLS from its own eval output, which holds the ground truths (see docs/eval.md), and "
              "MVBench on its 4,000 questions from the Pixel-Reasoner parquet (16 pre-extracted frames)."]
    others = [(c, p, b) for (c, p), b in runs.items() if not p.comparable]
    if others:
        lines += ["", "## Other protocols: NOT comparable to the paper's Table 1", "", header, rule]
        lines += [f"| {_row_label(c, p, b)} | {cells(b)} |" for c, p, b in others]
        lines += [""] + [f"- {c}, {p.describe()}: {p.why_not_comparable()}." for c, p, _ in others]
    lines += _bias_section(runs)
    lines += ["", "## RaPR: share of responses using a visual operation, % (paper appendix D.1)", "",
              "| Model | " + " | ".join(get_benchmark(b).short_name for b, _ in cols) + " |", rule]
    lines += [f"| {_row_label(c, p, b)} | {cells(b, 'rapr', ci=False)} |" for (c, p), b in runs.items()]
    paper_rapr = [get_benchmark(b).paper.rapr if get_benchmark(b).paper else None for b, _ in cols]
    lines.append(f"| {PIXEL_REASONER} | " + " | ".join("–" if v is None else f"{v:.2f}" for v in paper_rapr) + " |")
    details = ["", "## Details", "", "| run | protocol | benchmark | questions | K | ops/response | op error % | "
               "crops containing target % | source |", "|---|---|---|---|---|---|---|---|---|"]
    for (config, protocol), by_bench in runs.items():
        for b, m in by_bench.items():
            faith = (m.get("crop_faithfulness") or {}).get("all") or {}
            details.append(f"| {config} | {protocol.describe()} | {b} | {m.get('n_questions')} | "
                           f"{m.get('samples_per_question')} | {_cell(m.get('ops_per_response'), digits=2)} | "
                           f"{_cell(m.get('op_error_rate'))} | {_cell(faith.get('contains_target'))} | {m['_path']} |")
    return "\n".join(lines + details) + "\n"


def _bias_section(runs: "OrderedDict[tuple[str, Protocol], dict[str, dict]]") -> list[str]:
    """Option-order bias: for a configuration scored the same way on the data's order and shuffled, the score on
    the data's order minus the score shuffled (V* annotation files list the correct option first)."""
    rows = []
    for (config, protocol), shuffled in runs.items():
        if not protocol.shuffled:
            continue
        original = runs.get((config, Protocol(protocol.scoring, False, None, protocol.budgets)), {})
        for b in [b for b in benchmark_names() if get_benchmark(b).scoring == "multiple_choice"]:
            if b in original and b in shuffled and original[b].get("score") is not None \
                    and shuffled[b].get("score") is not None:
                diff = original[b]["score"] - shuffled[b]["score"]
                seed = f" (seed {protocol.seed})" if protocol.seed is not None else ""
                rows.append(f"| {config} | {protocol.scoring} | {get_benchmark(b).short_name} | "
                            f"{_cell(original[b]['score'])} | "
                            f"{_cell(shuffled[b]['score'])}{seed} | {diff:+.1f} |")
    if not rows:
        return []
    return ["", "## Option-order bias (data's order − shuffled, points)", "",
            "| Model | scoring | benchmark | data's order | shuffled | bias |", "|---|---|---|---|---|---|", *rows]

"""The stats report of a synthesis directory: what was made, what was rejected and why, what it cost.

Counts come from the output files (so after any number of resumed runs they describe the whole dataset); API
spend comes from `usage.jsonl` (every live response of every run, killed runs included). Written as
`stats.json` and a human summary `summary.txt`.
"""
from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from typing import Any

from data_synthesis.store import read_jsonl

TRAJECTORIES = "trajectories.jsonl"
REJECTS = "rejects.jsonl"
QUESTIONS = "questions.jsonl"
USAGE = "usage.jsonl"


def build_report(output_dir: str, this_run: dict | None = None) -> dict:
    by_source: dict[str, Counter] = defaultdict(Counter)
    fallbacks: Counter = Counter()
    masked_turns = 0
    total = 0
    from_templates = 0
    model_rejections: Counter = Counter()
    for t in read_jsonl(os.path.join(output_dir, TRAJECTORIES)):
        total += 1
        trajectory_type = t.get("trajectory_type") or t.get("kind")  # `kind`: written before 0.2
        by_source[t.get("source") or "?"][trajectory_type or "?"] += 1
        planned = (t.get("meta") or {}).get("planned_type") or (t.get("meta") or {}).get("planned_kind")
        if planned and planned != trajectory_type:
            fallbacks[f"{planned}->{trajectory_type}"] += 1
        masked_turns += sum(1 for m in t["messages"] if m.get("role") == "assistant" and m.get("loss") is False)
        template = _template_record(t.get("meta") or {})
        if template is not None:
            from_templates += 1
            rejection = template.get("model_rejection")
            if rejection:
                model_rejections[f"{rejection['stage']}/{rejection['reason']}"] += 1
    by_type: Counter = Counter()
    for counts in by_source.values():
        by_type.update(counts)
    rejections: dict[str, Counter] = defaultdict(Counter)
    rejections_by_source: dict[str, Counter] = defaultdict(Counter)
    for r in read_jsonl(os.path.join(output_dir, REJECTS)):
        rejections[r["stage"]][r["reason"]] += 1
        rejections_by_source[r.get("source") or "?"][f"{r['stage']}/{r['reason']}"] += 1
    spend: dict[str, dict[str, Any]] = {}
    for u in read_jsonl(os.path.join(output_dir, USAGE)):
        entry = spend.setdefault(u["endpoint"], {"model": u.get("model"), "requests": 0, "prompt_tokens": 0,
                                                 "completion_tokens": 0, "cost_usd": 0.0, "by_stage": {}})
        stage = entry["by_stage"].setdefault(u["stage"], {"requests": 0, "prompt_tokens": 0,
                                                          "completion_tokens": 0, "cost_usd": 0.0})
        for target in (entry, stage):
            target["requests"] += 1
            target["prompt_tokens"] += u["prompt_tokens"]
            target["completion_tokens"] += u["completion_tokens"]
            target["cost_usd"] += u["cost_usd"]
    report = {
        "output_dir": os.path.abspath(output_dir),
        "trajectories": {"total": total, "by_type": dict(sorted(by_type.items())),
                         "by_source": {s: dict(sorted(c.items())) for s, c in sorted(by_source.items())},
                         "loss_masked_turns": masked_turns, "fallbacks": dict(fallbacks),
                         "from_templates": {"total": from_templates,
                                            "model_rejections": dict(model_rejections.most_common())}},
        "rejections": {"total": sum(sum(c.values()) for c in rejections.values()),
                       "by_stage": {s: dict(c.most_common()) for s, c in sorted(rejections.items())},
                       "by_source": {s: dict(c.most_common()) for s, c in sorted(rejections_by_source.items())}},
        "api_all_runs": {"total_cost_usd": round(sum(e["cost_usd"] for e in spend.values()), 6),
                         "endpoints": spend},
    }
    if this_run is not None:
        report["this_run"] = this_run
    return report


def write_report(output_dir: str, report: dict) -> str:
    with open(os.path.join(output_dir, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    text = summarize(report)
    with open(os.path.join(output_dir, "summary.txt"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    return text


def summarize(report: dict) -> str:
    t, r, api = report["trajectories"], report["rejections"], report["api_all_runs"]
    lines = [f"Synthesis report for {report['output_dir']}",
             f"trajectories: {t['total']}  (assistant turns with loss=false: {t['loss_masked_turns']})"]
    if t["total"]:
        lines.append("  by type:   " + ", ".join(f"{k} {v} ({100 * v / t['total']:.1f}%)"
                                              for k, v in t["by_type"].items()))
    for source, counts in t["by_source"].items():
        lines.append(f"  {source}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if t["fallbacks"]:
        lines.append("  fallbacks (no room for the drawn type): " +
                     ", ".join(f"{k} {v}" for k, v in t["fallbacks"].items()))
    templates = t.get("from_templates") or {}
    if templates.get("total"):
        lines.append(f"  composed from templates, without model text (smoke runs only, NOT training data for a real "
                     f"model): {templates['total']}")
        if templates["model_rejections"]:
            lines.append("    replacing model outputs rejected for: " +
                         ", ".join(f"{k} {v}" for k, v in templates["model_rejections"].items()))
    lines.append(f"rejected: {r['total']}")
    for stage, reasons in r["by_stage"].items():
        lines.append(f"  {stage}: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
    lines.append(f"API spend, all runs: ${api['total_cost_usd']:.4f}")
    for name, e in api["endpoints"].items():
        lines.append(f"  {name} ({e['model']}): {e['requests']} requests, {e['prompt_tokens']} prompt + "
                     f"{e['completion_tokens']} completion tokens, ${e['cost_usd']:.4f}")
    run = report.get("this_run")
    if run:
        lines.append(f"this run: {run['items_processed']} items processed, {run['items_already_done']} already "
                     f"done, {run['requests_sent']} requests sent, {run['cache_hits']} cache hits, "
                     f"{run['retries']} retries, ${run['cost_usd']:.4f}")
        if run.get("items_unfinished"):
            lines.append(f"  {run['items_unfinished']} item(s) left unfinished: the server stayed unavailable "
                         "through every retry; rerun the same command to retry them")
        if run.get("dry_run"):
            d = run["dry_run"]
            lines.append(f"dry run: {d['requests_would_send']} request(s) would be sent "
                         f"({', '.join(f'{k} {v}' for k, v in d['by_stage'].items()) or 'none'}), "
                         f"{d['images']} images; requests written to {d['requests_file']}")
    return "\n".join(lines)


def _template_record(meta: dict) -> dict | None:
    """The `template` part of a trajectory's meta (stage 2 or text-only composed from templates), else None."""
    for key in ("expert", "text_only"):
        part = meta.get(key)
        if isinstance(part, dict) and part.get("template"):
            return part
    return None

"""`python -m eval {run,score,report}`: see docs/eval.md."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from typing import Any, Sequence

from pixel_reasoner import settings
from pixel_reasoner.budget_check import compare_with_checkpoint
from pixel_reasoner.config import TOKEN_PIXELS
from pixel_reasoner.episode import EpisodeConfig
from pixel_reasoner.errors import ConfigError, DataError, PixelReasonerError

from eval.benchmarks import get_benchmark, load_benchmark_modules
from eval.config import (MANIFEST, PREDICTIONS, SUBMISSION, RunConfig, ScoreConfig, check_resume, now,
                         package_versions)
from eval.records import read_predictions, recover_predictions, row_key, write_json_atomic

logger = logging.getLogger("eval")


def _load_manifest(path: str) -> dict | None:
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(f"{path} is not valid JSON ({e.msg}); move it away to start a new run") from None


def vllm_generator(config: RunConfig, video: bool):
    from eval.engine import VLLMGenerator, engine_config

    return VLLMGenerator(engine_config(config, video))


def run(config: RunConfig, make_generator=vllm_generator) -> dict:
    """`eval run`: evaluate, resuming what an earlier run with the same settings left; returns the metrics.

    `make_generator(config, video)` builds the generation function (vLLM; tests inject a scripted one).
    """
    from tqdm import tqdm

    from eval.benchmarks import load_questions
    from eval.choices import order_choices
    from eval.records import PredictionWriter
    from eval.runner import RunnerSettings, run_trajectories
    from eval.scoring import format_summary, score_file

    os.makedirs(config.out, exist_ok=True)
    manifest_path = os.path.join(config.out, MANIFEST)
    manifest = _load_manifest(manifest_path)
    if manifest is not None:
        differences = check_resume(manifest, config)
        if differences:
            raise ConfigError(f"{config.out} holds a run with different settings; use another --out or the same "
                              "settings. Differences:\n  " + "\n  ".join(differences))
    if config.samples > 1 and config.temperature == 0:
        logger.warning("--samples %d with greedy decoding (--temperature 0): the samples will be identical",
                       config.samples)
    questions = load_questions(config.benchmark, config.data, config.load_options())
    if config.limit is not None:
        questions = questions[: config.limit]
    questions = [order_choices(q, config.shuffle_options, config.sort_options) for q in questions]
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        duplicated = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise DataError(f"{config.data}: question ids are not unique (e.g. {duplicated})")

    predictions = os.path.join(config.out, PREDICTIONS)
    recover_predictions(predictions)
    existing = read_predictions(predictions) if os.path.isfile(predictions) else []
    wanted = {(q.id, k) for q in questions for k in range(config.samples)}
    done = {row_key(r) for r in existing}
    if done - wanted:
        logger.warning("%d rows in %s are for questions outside this run (a larger --limit earlier?); they are kept "
                       "and scored", len(done - wanted), predictions)
    session = {"started": now(), "versions": package_versions(), "limit": config.limit, "rows_before": len(existing),
               "scoring_protocol": config.scoring_protocol}
    mismatch = compare_with_checkpoint(config.model, config.budgets(), "eval")
    if mismatch:
        logger.warning("%s", mismatch)
        session["budget_mismatch"] = mismatch
    manifest = manifest or {"created": session["started"], "settings": config.settings(), "sessions": []}
    manifest["sessions"].append(session)
    write_json_atomic(manifest_path, manifest)

    todo = len(wanted - done)
    logger.info("%s: %d questions x %d samples; %d rows done, %d to run", config.benchmark, len(questions),
                config.samples, len(wanted & done), todo)
    if todo:
        generator = make_generator(config, any(q.video is not None for q in questions))
        settings = RunnerSettings(
            profile=config.protocol(), config=EpisodeConfig(config.budgets(), config.limits()), tools=config.tools,
            samples=config.samples, seed=config.seed, max_turn_tokens=config.max_turn_tokens,
            max_response_tokens=config.max_response_tokens, batch_size=config.batch_size,
            force_first_call=config.force_first_call,
            image_dir=os.path.join(config.out, "images") if config.save_images else None)
        with PredictionWriter(predictions) as writer, \
                tqdm(total=len(wanted), initial=len(wanted & done), desc=config.benchmark, unit="resp") as bar:
            stats = run_trajectories(questions, generator, settings, writer, done & wanted, bar)
        session.update(finished=now(), rows_written=stats.written, terminations=stats.terminations)
        write_json_atomic(manifest_path, manifest)

    metrics = score_file(predictions, config.benchmark, protocol=config.scoring_protocol)
    write_json_atomic(os.path.join(config.out, "metrics.json"), metrics)
    summary = format_summary(metrics)
    with open(os.path.join(config.out, "summary.md"), "w", encoding="utf-8") as f:
        f.write(summary)
    submission = get_benchmark(config.benchmark).submission
    if metrics.get("score") is None and submission is not None:
        write_json_atomic(os.path.join(config.out, SUBMISSION), submission(read_predictions(predictions),
                                                                        config.scoring_protocol))
        logger.info("answers are hidden in this split: wrote %s", os.path.join(config.out, SUBMISSION))
    print(summary)
    return metrics


PER_BENCHMARK_FIELDS = ("split", "subset", "image_root")


def _as_list(value: Any, key: str) -> list[str]:
    if value is None:
        raise ConfigError(f"{key}: required key is missing (give `{key}:` in the recipe or --{key})")
    return [value] if isinstance(value, str) else list(value)


def configs_from_args(values: dict) -> list[RunConfig]:
    """One RunConfig per `--benchmark`/`--data` pair (a recipe mapping: `settings.values`). With several
    benchmarks each writes to OUT/<benchmark>/ and `--split`/`--subset`/`--image_root` name the benchmark they
    apply to (`--split infovqa=test`)."""
    values = settings.upgrade_names(RunConfig, values)
    benchmarks, data = _as_list(values.pop("benchmark", None), "benchmark"), _as_list(values.pop("data", None), "data")
    if len(benchmarks) != len(data):
        raise ConfigError(f"give one --data per --benchmark, in the same order: got {len(benchmarks)} benchmark(s) "
                          f"({' '.join(benchmarks)}) and {len(data)} data path(s)")
    if len(set(benchmarks)) != len(benchmarks):
        raise ConfigError(f"--benchmark lists a benchmark twice ({' '.join(benchmarks)}); run a second layout of the "
                          "same benchmark with its own --out")
    if len(benchmarks) == 1:
        return [settings.build(RunConfig, {**values, "benchmark": benchmarks[0], "data": data[0]})]
    per_benchmark: dict[str, dict] = {b: {} for b in benchmarks}
    for name in PER_BENCHMARK_FIELDS:
        value = values.pop(name, None)
        if value is None:
            continue
        target, sep, setting = value.partition("=")
        if not sep or target not in per_benchmark:
            raise ConfigError(f"--{name.replace('_', '-')} {value!r}: with several benchmarks write BENCHMARK=VALUE "
                              f"with BENCHMARK one of {' '.join(benchmarks)} (e.g. --split infovqa=test)")
        per_benchmark[target][name] = setting
    out = values.pop("out", None)
    if out is None:
        raise ConfigError("out: required key is missing (give `out:` in the recipe or --out)")
    return [settings.build(RunConfig, {**values, "benchmark": b, "data": d, "out": os.path.join(out, b),
                                       **per_benchmark[b]})
            for b, d in zip(benchmarks, data)]


def run_many(configs: Sequence[RunConfig], make_generator=vllm_generator) -> dict[str, dict]:
    """`eval run` of several benchmarks in one process: the first that has work starts the engine and the others
    reuse it (one vLLM start instead of one per benchmark). The engine enables video when any benchmark may need
    it (MVBench), so every benchmark sees the same engine settings; results do not depend on the order."""
    shared: list = []
    video = any(get_benchmark(c.benchmark).video for c in configs)

    def shared_generator(config: RunConfig, needs_video: bool):
        if not shared:
            shared.append(make_generator(config, video or needs_video))
        return shared[0]

    return {c.benchmark: run(c, shared_generator if len(configs) > 1 else make_generator) for c in configs}


def score_command(config: ScoreConfig) -> None:
    from eval.scoring import format_summary, score_file

    metrics = score_file(config.predictions, config.benchmark, config.bootstrap, config.seed, config.scoring_protocol)
    if config.out:
        write_json_atomic(config.out, metrics)
    else:
        print(json.dumps(metrics, indent=2))
    submission = get_benchmark(config.benchmark).submission
    if config.submission and submission is None:
        raise ConfigError(f"--submission: benchmark {config.benchmark!r} has no submission format")
    if submission is not None and (metrics.get("score") is None or config.submission):
        path = config.submission or os.path.join(os.path.dirname(os.path.abspath(config.out or config.predictions)),
                                                 SUBMISSION)
        write_json_atomic(path, submission(read_predictions(config.predictions), config.scoring_protocol))
        logger.info("wrote the submission file %s", path)
    print(format_summary(metrics), file=sys.stderr if not config.out else sys.stdout)


def report_command(args: argparse.Namespace) -> None:
    from eval.report import build_report

    text = build_report(args.metrics)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    print(text)


TOKEN_OVERRIDES = ("original_tokens", "crop_tokens", "frame_tokens")  # before 0.2: per-kind budgets in tokens


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="evaluate a model (vLLM, multi-turn, resumable)",
                                usage="python -m eval run [--config YAML] [--FIELD VALUE ...]")
    settings.add_arguments(run_parser, RunConfig)
    _add_protocol_flag(run_parser)
    for name in TOKEN_OVERRIDES:
        kind = name.removesuffix("_tokens")
        run_parser.add_argument(f"--{name.replace('_', '-')}", f"--{name}", dest=f"deprecated.{name}", type=int,
                                nargs=2, metavar=("MIN", "MAX"),
                                help=f"deprecated: use --{kind}_min_pixels / --{kind}_max_pixels (tokens x 784)")
    score_parser = sub.add_parser("score", help="metrics from a predictions file alone (no torch, no vLLM)")
    settings.add_arguments(score_parser, ScoreConfig)
    _add_protocol_flag(score_parser)
    report_parser = sub.add_parser("report", help="markdown table in the paper's Table 1 layout + RaPR")
    report_parser.add_argument("metrics", nargs="+", help="metrics.json files")
    report_parser.add_argument("--out", help="write the markdown here too")
    report_parser.add_argument("--benchmark_modules", "--benchmark-modules", action="append", default=[],
                               metavar="MODULE", help="a module or .py file that registers more benchmarks "
                                                      "(repeatable)")
    return parser


def _add_protocol_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", dest="deprecated.protocol", default=None,
                        help="deprecated: use --scoring_protocol")


def command_values(cls: type, args: argparse.Namespace) -> dict:
    """A command's recipe mapping (recipe file, --set, flags), with the deprecated `--protocol` read as
    `--scoring_protocol`."""
    values = settings.values(cls, args)
    protocol = getattr(args, "deprecated.protocol", None)
    if protocol is not None:
        warnings.warn("--protocol is deprecated, use --scoring_protocol (the old flag is removed in the next release)",
                      FutureWarning, stacklevel=2)
        values.setdefault("scoring_protocol", protocol)
    return values


def run_values(args: argparse.Namespace) -> dict:
    """The `eval run` recipe mapping, with the deprecated token overrides as pixels."""
    values = command_values(RunConfig, args)
    for name in TOKEN_OVERRIDES:
        tokens = getattr(args, f"deprecated.{name}", None)
        if tokens is None:
            continue
        kind = name.removesuffix("_tokens")
        warnings.warn(f"--{name.replace('_', '-')} is deprecated, use --{kind}_min_pixels {tokens[0] * TOKEN_PIXELS} "
                      f"--{kind}_max_pixels {tokens[1] * TOKEN_PIXELS} (the old flag is removed in the next release)",
                      FutureWarning, stacklevel=2)
        values[f"{kind}_min_pixels"], values[f"{kind}_max_pixels"] = (t * TOKEN_PIXELS for t in tokens)
    return values


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            values = run_values(args)
            load_benchmark_modules(values.get("benchmark_modules") or [])
            run_many(configs_from_args(values))
        elif args.command == "score":
            score_command(settings.build(ScoreConfig, command_values(ScoreConfig, args)))
        else:
            load_benchmark_modules(args.benchmark_modules)
            report_command(args)
    except PixelReasonerError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)

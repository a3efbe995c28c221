"""`python -m eval {run,score,report}`: see docs/eval.md."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from typing import Sequence

from pixel_reasoner.budget_check import compare_with_checkpoint
from pixel_reasoner.episode import EpisodeConfig
from pixel_reasoner.errors import ConfigError, DataError, PixelReasonerError

from eval.config import MANIFEST, PREDICTIONS, RunConfig, check_resume, now, package_versions
from eval.protocols import DEFAULT_PROTOCOL, PROTOCOLS
from eval.records import read_predictions, recover_predictions, row_key, write_json_atomic

logger = logging.getLogger("eval")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field (help, default and choices come from the dataclass)."""
    for f in dataclasses.fields(RunConfig):
        meta = dict(f.metadata)
        flag = meta.pop("flag", "--" + f.name.replace("_", "-"))
        kwargs = {"dest": f.name, "help": meta.pop("help")}
        action = meta.pop("action", None)
        if action:
            kwargs["action"] = action
        else:
            type_name = str(f.type)
            kwargs["type"] = int if "int" in type_name else float if "float" in type_name else str
            kwargs["default"] = f.default
            if f.default is not None and not meta.get("required"):
                kwargs["help"] += f" (default: {f.default})"
        kwargs.update(meta)
        parser.add_argument(flag, **kwargs)


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
    from eval.scoring import format_summary, score_file, submission

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
            samples=config.samples, seed=config.seed, max_tokens_per_turn=config.max_tokens_per_turn,
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
    if metrics.get("score") is None and config.benchmark == "infovqa":
        write_json_atomic(os.path.join(config.out, "submission.json"),
                          submission(read_predictions(predictions), config.scoring_protocol))
        logger.info("answers are hidden in this split: wrote %s", os.path.join(config.out, "submission.json"))
    print(summary)
    return metrics


PER_BENCHMARK_FIELDS = ("split", "subset", "image_root")


def configs_from_args(values: dict) -> list[RunConfig]:
    """One RunConfig per `--benchmark`/`--data` pair. With several benchmarks each writes to OUT/<benchmark>/ and
    `--split`/`--subset`/`--image-root` name the benchmark they apply to (`--split infovqa=test`)."""
    values = dict(values)
    benchmarks, data = list(values.pop("benchmark")), list(values.pop("data"))
    if len(benchmarks) != len(data):
        raise ConfigError(f"give one --data per --benchmark, in the same order: got {len(benchmarks)} benchmark(s) "
                          f"({' '.join(benchmarks)}) and {len(data)} data path(s)")
    if len(set(benchmarks)) != len(benchmarks):
        raise ConfigError(f"--benchmark lists a benchmark twice ({' '.join(benchmarks)}); run a second layout of the "
                          "same benchmark with its own --out")
    if len(benchmarks) == 1:
        return [RunConfig(benchmark=benchmarks[0], data=data[0], **values)]
    per_benchmark: dict[str, dict] = {b: {} for b in benchmarks}
    for name in PER_BENCHMARK_FIELDS:
        value = values.pop(name)
        if value is None:
            continue
        target, sep, setting = value.partition("=")
        if not sep or target not in per_benchmark:
            raise ConfigError(f"--{name.replace('_', '-')} {value!r}: with several benchmarks write BENCHMARK=VALUE "
                              f"with BENCHMARK one of {' '.join(benchmarks)} (e.g. --split infovqa=test)")
        per_benchmark[target][name] = setting
    out = values.pop("out")
    return [RunConfig(benchmark=b, data=d, out=os.path.join(out, b), **values, **per_benchmark[b])
            for b, d in zip(benchmarks, data)]


def run_many(configs: Sequence[RunConfig], make_generator=vllm_generator) -> dict[str, dict]:
    """`eval run` of several benchmarks in one process: the first that has work starts the engine and the others
    reuse it (one vLLM start instead of one per benchmark). The engine enables video when any benchmark may need
    it (MVBench), so every benchmark sees the same engine settings; results do not depend on the order."""
    shared: list = []
    video = any(c.benchmark == "mvbench" for c in configs)

    def shared_generator(config: RunConfig, needs_video: bool):
        if not shared:
            shared.append(make_generator(config, video or needs_video))
        return shared[0]

    return {c.benchmark: run(c, shared_generator if len(configs) > 1 else make_generator) for c in configs}


def score_command(args: argparse.Namespace) -> None:
    from eval.scoring import format_summary, score_file, submission

    metrics = score_file(args.predictions, args.benchmark, args.bootstrap, args.seed, args.protocol)
    if args.out:
        write_json_atomic(args.out, metrics)
    else:
        print(json.dumps(metrics, indent=2))
    if metrics.get("score") is None or args.submission:
        path = args.submission or os.path.join(os.path.dirname(os.path.abspath(args.out or args.predictions)),
                                               "submission.json")
        write_json_atomic(path, submission(read_predictions(args.predictions), args.protocol))
        logger.info("wrote the submission file %s", path)
    print(format_summary(metrics), file=sys.stderr if not args.out else sys.stdout)


def report_command(args: argparse.Namespace) -> None:
    from eval.report import build_report

    text = build_report(args.metrics)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    print(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="evaluate a model (vLLM, multi-turn, resumable)")
    add_config_arguments(run_parser)
    score_parser = sub.add_parser("score", help="metrics from a predictions file alone (no torch, no vLLM)")
    score_parser.add_argument("--benchmark", required=True, help="benchmark of the predictions")
    score_parser.add_argument("--predictions", required=True, help="predictions.jsonl written by `eval run`")
    score_parser.add_argument("--out", help="write metrics JSON here (default: print it)")
    score_parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the CI")
    score_parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    score_parser.add_argument("--protocol", choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                              help="scoring rules: paper (the official evaluation's, comparable to Table 1; needs "
                                   "math-verify) or lenient (accepts more answer formats) (default: paper)")
    score_parser.add_argument("--submission", help="also write an InfoVQA submission file here (written next to "
                                                   "the metrics anyway when the split hides its answers)")
    report_parser = sub.add_parser("report", help="markdown table in the paper's Table 1 layout + RaPR")
    report_parser.add_argument("metrics", nargs="+", help="metrics.json files")
    report_parser.add_argument("--out", help="write the markdown here too")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            names = {f.name for f in dataclasses.fields(RunConfig)}
            run_many(configs_from_args({k: v for k, v in vars(args).items() if k in names}))
        elif args.command == "score":
            score_command(args)
        else:
            report_command(args)
    except PixelReasonerError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)

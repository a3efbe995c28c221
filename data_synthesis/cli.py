"""Command line: `python -m data_synthesis run --config recipes/synth.yaml [--dry-run] [--max-items N]`.

Every field of the recipe (`SynthesisConfig`) is also a flag (`--expert.sampling.temperature 0.2`,
`--output.dir out/`); `--set KEY=VALUE` reaches the rest (`--set endpoints.expert.model=gpt-4o-mini`).

Subcommands:
    run      synthesise trajectories (resumable: rerun the same command after an interruption)
    prompts  write the paper's default prompts to a directory, to edit and use via `prompts_dir`
    report   print (and rewrite) the stats report of an output directory
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from data_synthesis.config import SynthesisConfig
from data_synthesis.prompts import write_default_prompts
from data_synthesis.report import build_report, write_report
from pixel_reasoner import settings
from pixel_reasoner.errors import PixelReasonerError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_synthesis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="synthesise trajectories")
    run.add_argument("--dry-run", action="store_true",
                     help="send nothing, write nothing: show the requests that would be sent (uncached ones)")
    run.add_argument("--max-items", type=int, default=None, help="process at most this many unfinished items")
    run.add_argument("--output-dir", default=None, help="deprecated: use --output.dir")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    settings.add_arguments(run, SynthesisConfig)
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging (each rejection)")
    prompts = sub.add_parser("prompts", help="write the default prompts to a directory")
    prompts.add_argument("--write", required=True, metavar="DIR")
    report = sub.add_parser("report", help="print the stats of an output directory")
    report.add_argument("output_dir")
    args = parser.parse_args(argv)

    if args.command == "prompts":
        for path in write_default_prompts(args.write):
            print(path)
        return 0
    if args.command == "report":
        print(write_report(args.output_dir, build_report(args.output_dir)))
        return 0

    try:
        if args.output_dir:
            warnings.warn("--output-dir is deprecated, use --output.dir (the old flag is removed in the next release)",
                          FutureWarning, stacklevel=1)
            args.set.append(f"output.dir={args.output_dir}")
        config = settings.build(SynthesisConfig, settings.values(SynthesisConfig, args))
    except PixelReasonerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _setup_logging(config.output.dir, args.verbose, args.dry_run)
    from data_synthesis.client import FatalRequestError
    from data_synthesis.pipeline import SynthesisRun

    try:
        SynthesisRun(config, dry_run=args.dry_run, max_items=args.max_items, progress=not args.no_progress).run()
    except (PixelReasonerError, FatalRequestError) as e:
        logging.getLogger("data_synthesis").error("%s", e)
        return 2
    return 0


def _setup_logging(output_dir: str, verbose: bool, dry_run: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if not dry_run:
        os.makedirs(output_dir, exist_ok=True)
        handlers.append(logging.FileHandler(os.path.join(output_dir, "run.log"), encoding="utf-8"))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)  # other libraries (HTTP clients) only warn
    for name in ("data_synthesis", "pixel_reasoner"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)

"""`python -m patches`: apply Pixel Reasoner's features onto upstream OpenRLHF / Open-R1 checkouts.

    python -m patches apply --target DIR [--dry-run] [--reverse] [--allow-dirty]
    python -m patches list

Exit status: 0 done (or nothing to do), 1 refused (nothing was changed; the message says why), 2 usage error.
"""
from __future__ import annotations

import argparse
import sys

from patches import apply
from patches.engine import EngineError
from patches.upstreams import PATCH_SETS, TargetError, load_patch_set


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m patches", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("apply", help="apply (or reverse) the patch set that fits the checkout")
    run.add_argument("--target", required=True,
                     help="upstream checkout: an OpenRLHF git checkout, unpacked wheel or install directory, or "
                          "an Open-R1 git checkout")
    run.add_argument("--dry-run", action="store_true", help="check every hunk and report; change nothing")
    run.add_argument("--reverse", action="store_true", help="remove the patches (exactly restores the files)")
    run.add_argument("--allow-dirty", action="store_true",
                     help="apply even though the git work tree has uncommitted changes to tracked files")
    commands.add_parser("list", help="supported upstreams, versions and what each patch changes")
    return parser


def list_patch_sets() -> None:
    for spec in PATCH_SETS:
        patch_set = load_patch_set(spec)
        checked = f", checked against commit {spec.checked_commit}" if spec.checked_commit else ""
        print(f"{spec.upstream} {spec.version}{checked}: {spec.description}")
        for line in apply.report_lines(patch_set.patches):
            print(line)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        list_patch_sets()
        return 0
    try:
        apply.run(args.target, dry_run=args.dry_run, reverse=args.reverse, allow_dirty=args.allow_dirty)
    except (apply.Refused, TargetError, EngineError) as refusal:
        print(f"refused: {refusal}", file=sys.stderr)
        return 1
    return 0

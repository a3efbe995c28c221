"""The `pixel-reasoner` command line.

    pixel-reasoner run-op --profile released --image scene.jpg --text '<tool_call>...</tool_call>' --out out/
    pixel-reasoner view trajectories.jsonl --out report.html
    pixel-reasoner demo --out demo_out

`run-op` executes one model turn through `Episode` (exactly what a rollout does with that text) and prints one
JSON object: {"kind": "observation" | "answer" | "error", "message": ..., "images": [...], "answer": ...}.
Anything the *model text* gets wrong is a normal result (`kind: "error"`, the observation the model would see,
exit status 0); anything the *command* gets wrong (a missing file, an unknown profile) is an error message on
stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Sequence

from pixel_reasoner.config import EpisodeLimits, PixelBudgets
from pixel_reasoner.errors import PixelReasonerError

# Packages of this distribution whose own JSONL rows `view` reads (each registers its format when imported).
VIEW_ROW_FORMAT_MODULES = ("eval.view",)

TERMINATION_MESSAGES = {
    "answer": "final answer",
    "no_answer": "the turn neither calls a tool nor states a final answer (\\boxed{...})",
    "max_turns": "the turn limit was reached (--max-turns); the call was not executed",
    "max_operations": "the operation limit was reached (--max-operations); the call was not executed",
    "truncated": "the turn was truncated",
}


class UsageError(Exception):
    """A mistake in the command line (not in the model text): reported on stderr with exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except (UsageError, PixelReasonerError) as e:
        print(f"pixel-reasoner {args.command}: error: {e}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pixel-reasoner", description="Pixel-space reasoning for VLMs: run one "
                                     "visual operation, view trajectories, or run the demo.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run-op", help="execute one model turn (tool call or answer) on images or a video",
                         description="Execute one model turn through the episode engine and print one JSON object "
                                     "{kind, message, images, answer}.")
    run.add_argument("--profile", required=True, help="protocol profile: released (normalized boxes, as the released "
                     "models) or qwen (pixel boxes of the image as shown, tool turns)")
    run.add_argument("--image", action="append", default=[], metavar="PATH",
                     help="an input image (repeat for several; image 1 is the first)")
    run.add_argument("--video", metavar="PATH", help="an input video file (sampled to --num-frames frames)")
    run.add_argument("--video-frames", nargs="+", metavar="PATH", help="a video given as frame images")
    run.add_argument("--num-frames", type=int, default=16, help="frames sampled from --video (paper: 16)")
    run.add_argument("--frames-as-images", action="store_true",
                     help="show the video's frames as images 1..N (as OpenRLHF rollouts do) instead of as a video")
    text = run.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="the model's output for this turn ('-' reads stdin)")
    text.add_argument("--text-file", metavar="PATH", help="read the model's output from a file")
    run.add_argument("--out", metavar="DIR", help="write produced images here as PNG (listed in `images`)")
    run.add_argument("--budgets", default="consistent",
                     help="pixel-budget preset: consistent (every stage's default), or the official per-stage "
                          "paper_sft, paper_rl, paper_eval")
    run.add_argument("--max-operations", type=int, default=EpisodeLimits.max_operations)
    run.add_argument("--max-images", type=int, default=None,
                     help=f"images allowed in the conversation (default {EpisodeLimits.max_images}, or frames + "
                          f"{EpisodeLimits.max_images} with --frames-as-images)")
    run.add_argument("--max-turns", type=int, default=EpisodeLimits.max_turns)
    run.add_argument("--operation-module", action="append", default=[], metavar="MODULE_OR_FILE",
                     help="import extra operations (a module name or a .py file) and expose them as tools")
    run.add_argument("--details", action="store_true", help="add a `details` object: shown image sizes, the "
                     "executed operation with its source boxes, the termination")
    run.set_defaults(handler=cmd_run_op)

    view = sub.add_parser("view", help="render trajectories (JSONL) as one self-contained HTML page",
                          description="Render trajectories as a self-contained HTML page: every turn, every image, "
                                      "crops drawn as boxes on their sources, masked turns and errors marked.")
    view.add_argument("trajectories", nargs="+", metavar="TRAJECTORIES.jsonl",
                      help="schema-v1 JSONL files, a released SFT .json list, or files of a row format that a "
                           "--row-format-module registers (by default eval predictions.jsonl)")
    view.add_argument("--out", required=True, metavar="HTML")
    view.add_argument("--root", help="directory relative image paths resolve against (default: each file's directory)")
    view.add_argument("--limit", type=int, default=200, help="render at most this many trajectories (default 200)")
    view.add_argument("--thumb-size", type=int, default=768, help="longest side of embedded images (default 768)")
    view.add_argument("--title", default="Pixel Reasoner · trajectories")
    view.add_argument("--no-replay", action="store_true", help="do not replay tool calls to recover missing boxes")
    view.add_argument("--row-format-module", action="append", default=list(VIEW_ROW_FORMAT_MODULES), metavar="MODULE",
                      help="import a module that registers a JSONL row format (pixel_reasoner.viewer.RowFormat); "
                           f"repeat for several (always imported: {', '.join(VIEW_ROW_FORMAT_MODULES)})")
    view.set_defaults(handler=cmd_view)

    demo = sub.add_parser("demo", help="a few-second end-to-end demo on synthetic media (no model needed)")
    demo.add_argument("--out", default="demo_out", metavar="DIR")
    demo.set_defaults(handler=cmd_demo)
    return parser


def _require_file(path: str, what: str) -> str:
    if not os.path.isfile(path):
        raise UsageError(f"{what} not found: {path}" + (f" (resolved to {os.path.abspath(path)})"
                                                         if not os.path.isabs(path) else ""))
    return path


def _model_text(args: argparse.Namespace) -> str:
    if args.text_file:
        with open(_require_file(args.text_file, "--text-file"), encoding="utf-8") as f:
            return f.read()
    return sys.stdin.read() if args.text == "-" else args.text


def cmd_run_op(args: argparse.Namespace) -> int:
    from pixel_reasoner.episode import Episode, EpisodeConfig
    from pixel_reasoner.media import ImageFile, VideoSource, save_image
    from pixel_reasoner.protocol import get_profile

    profile = get_profile(args.profile)
    if args.operation_module:
        profile = profile.with_operation_modules(args.operation_module)
    images = [ImageFile(_require_file(p, "--image")) for p in args.image]
    if args.video and args.video_frames:
        raise UsageError("give either --video or --video-frames, not both")
    video = None
    if args.video:
        video = VideoSource(path=_require_file(args.video, "--video"), num_frames=args.num_frames)
    elif args.video_frames:
        video = VideoSource(frame_paths=[_require_file(p, "--video-frames") for p in args.video_frames])
    if not images and video is None:
        raise UsageError("give at least one --image or a --video / --video-frames")
    if args.frames_as_images and video is None:
        raise UsageError("--frames-as-images needs --video or --video-frames")
    if args.frames_as_images:
        images = [*video.frames(), *images]
    max_images = args.max_images or (EpisodeLimits.max_images + (video.num_frames if args.frames_as_images else 0))
    config = EpisodeConfig(budgets=PixelBudgets.preset(args.budgets),
                           limits=EpisodeLimits(args.max_operations, max_images, args.max_turns))
    text = _model_text(args)
    episode = Episode(profile, images=images, video=video, config=config)
    shown = episode.input_images()  # decode now: an unreadable input is a usage error, not an observation
    if video is not None:
        episode.video_frames()
    result = episode.step(text)
    written: list[str] = []
    if result.done:
        message = TERMINATION_MESSAGES.get(result.termination or "", f"episode ended ({result.termination})")
        if result.answer is not None:
            message += f": {result.answer}"
        output = {"kind": "answer", "message": message, "images": [], "answer": result.answer}
    else:
        observation = result.observation
        assert observation is not None
        if args.out:
            for image in observation.new_images:
                path = os.path.join(args.out, f"image_{image.index}.png")
                written.append(save_image(image.shown, path))
        output = {"kind": "error" if observation.error else "observation", "message": observation.text,
                  "images": written, "answer": None}
    if args.details:
        record = episode.stats.operations[-1] if episode.stats.operations else None
        output["details"] = {
            "profile": profile.name, "termination": result.termination,
            "inputs": [{"index": im.index, "source": im.source.describe(), "source_size": list(im.source.full_size()),
                        "shown_size": list(s.size)} for im, s in zip(episode.images, shown)],
            "operation": None if record is None else {"tool": record.tool_name, "arguments": record.arguments,
                                                      "error": record.error, "produced": record.produced,
                                                      "source_boxes": record.source_boxes},
            "shown_sizes": [list(im.shown.size) for im in (result.observation.new_images if result.observation else [])
                            if im.shown is not None]}
    print(json.dumps(output, ensure_ascii=False))
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from pixel_reasoner.viewer import ViewerConfig, write_report

    for module in args.row_format_module:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise UsageError(f"--row-format-module {module}: cannot import it ({e})") from e
    for path in args.trajectories:
        _require_file(path, "trajectory file")
    if args.limit < 1 or args.thumb_size < 16:
        raise UsageError("--limit must be >= 1 and --thumb-size >= 16")
    config = ViewerConfig(thumb_size=args.thumb_size, limit=args.limit, title=args.title, replay=not args.no_replay)
    report = write_report(args.trajectories, args.out, root=args.root, config=config)
    for note in report["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {report['out']}: {report['shown']} of {report['trajectories']} trajectories, "
          f"{report['bytes'] / 1e6:.1f} MB")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pixel_reasoner.demo import run_demo

    run_demo(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

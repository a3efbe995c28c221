"""`python -m pixel_reasoner.zoom_task {seeds,bench,premise}`: see the package docstring."""
from __future__ import annotations

import argparse
import json

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.zoom_task.layouts import EVAL_FLAGS, Mix, write_benchmarks, write_seeds
from pixel_reasoner.zoom_task.oracle import premise
from pixel_reasoner.zoom_task.scene import ZoomTaskConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixel_reasoner.zoom_task", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    seeds = sub.add_parser("seeds", help="training seeds for python -m data_synthesis (split `train`)")
    seeds.add_argument("out_dir")
    seeds.add_argument("--n", type=int, default=2000, help="image questions; the paper's text-only share "
                                                           "(2000/7500) are coarse, the rest detail")
    seeds.add_argument("--videos", type=int, default=0, help="video questions on top")
    seeds.add_argument("--closeups", type=int, default=0,
                       help="close-ups on top, each twice (answered from the close-up, and through a crop of it): "
                            "the SFT warm-up stage's data (docs/learning.md, 'Warm-up')")
    seeds.add_argument("--wrong-boxes", action="store_true",
                       help="detail seeds give the other grid cells as `wrong_boxes`, so the re-crops' wrong crops "
                            "are cells like the right one instead of random boxes (docs/learning.md, 'After the "
                            "first crop')")
    bench = sub.add_parser("bench", help="held-out questions in V*/TallyQA/MVBench layouts (split `eval`)")
    bench.add_argument("out_dir")
    bench.add_argument("--detail", type=int, default=100)
    bench.add_argument("--colour", type=int, default=50)
    bench.add_argument("--count", type=int, default=50)
    bench.add_argument("--video", type=int, default=0)
    sub.add_parser("eval-flags", help="print the `python -m eval run` flags the task needs")
    check = sub.add_parser("premise", help="pixel oracle accuracy on the original vs on the crop, and the dot "
                                           "count on the original")
    check.add_argument("--n", type=int, default=200)
    for p in (seeds, bench, check):
        p.add_argument("--seed", type=int, default=0, help="task seed (scenes are a function of it)")
        p.add_argument("--position-code", type=int, default=ZoomTaskConfig.position_code,
                       help="tint of the frame's inner band that names its cell (ZoomTaskConfig.code_colour); 0: "
                            "none, the model must then learn positions from M-RoPE alone")
        p.add_argument("--dot-radius", type=int, default=ZoomTaskConfig.dot_radius,
                       help="radius of the dots to count, in source pixels (docs/learning.md, \"Counting\")")
    args = parser.parse_args(argv)
    try:
        config = ZoomTaskConfig(position_code=getattr(args, "position_code", ZoomTaskConfig.position_code),
                                dot_radius=getattr(args, "dot_radius", ZoomTaskConfig.dot_radius))
    except ConfigError as error:
        parser.error(str(error))
    if args.command == "seeds":
        print(write_seeds(args.out_dir, Mix.for_training(args.n, args.videos, args.closeups), args.seed, config,
                          args.wrong_boxes))
    elif args.command == "eval-flags":
        print(" ".join(EVAL_FLAGS))
    elif args.command == "bench":
        mix = Mix(detail=args.detail, colour=args.colour, count=args.count, video=args.video)
        print(json.dumps(write_benchmarks(args.out_dir, mix, args.seed, config)))
    else:
        result = premise(config, config.budgets(), args.n, args.seed)
        print(json.dumps({"n": result.n, "oracle_accuracy_original": result.original_accuracy,
                          "oracle_accuracy_crop": result.crop_accuracy, "chance": 1 / len(config.patterns),
                          "oracle_count_accuracy_original": result.count_original_accuracy}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

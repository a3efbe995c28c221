"""Plot an SFT run's training loss from the trainer's own log (`trainer_state.json`).

    python -m open_r1_ext.plot_loss OUTPUT_DIR/trainer_state.json --out loss.png [--title "..."]

Needs matplotlib (the `sft` extra). The curve is exactly what the trainer logged every `logging_steps`.
"""
from __future__ import annotations

import argparse
import json


def logged_losses(trainer_state: str) -> tuple[list[int], list[float]]:
    with open(trainer_state, encoding="utf-8") as f:
        history = json.load(f).get("log_history", [])
    points = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
    if not points:
        raise ValueError(f"{trainer_state}: no logged training loss (log_history has no `loss` entries)")
    steps, losses = zip(*points)
    return list(steps), list(losses)


def plot_loss(trainer_state: str, out: str, title: str = "SFT training loss") -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = logged_losses(trainer_state)
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(steps, losses, color="#1f6fb4", linewidth=1.5)
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (trained tokens, log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m open_r1_ext.plot_loss", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trainer_state")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--title", default="SFT training loss")
    args = parser.parse_args(argv)
    print(plot_loss(args.trainer_state, args.out, args.title))


if __name__ == "__main__":
    main()

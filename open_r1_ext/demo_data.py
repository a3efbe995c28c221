"""Small SFT trajectories produced by the real episode engine from scripted model turns.

    python -m open_r1_ext.demo_data OUT_DIR [--profile released] [--copies 1]

writes OUT_DIR/trajectories.jsonl (schema v1) and the images it references, one trajectory per type the paper
trains on: single pass, each self-correction type of its Table 2 (recrop once, recrop twice, further zoom-in,
reselect on video frames), a failed operation followed by a fix, text-only reasoning over an image, a
language-only question, and three input/produced images of different sizes in one trajectory. Inserted wrong
operations are flagged `loss: false`, as the paper's loss masks require.

Why the engine and not hand-written JSON: SFT must train on exactly what the engine shows a model at RL and
eval time (observation texts, image sizes, indices), so the CPU smoke run, the tests and the benchmark all use
these. Pixel budgets are tiny so a CPU step stays fast; `recipes/sft_tiny_cpu.yaml` uses the same budgets.
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from typing import Callable, Sequence

from pixel_reasoner.config import EpisodeLimits, PixelBudget, PixelBudgets, budget_fields, to_dict
from pixel_reasoner.episode import Episode, EpisodeConfig
from pixel_reasoner.media import VideoSource
from pixel_reasoner.testing.media import save_scene, scene_image
from pixel_reasoner.trajectory import Trajectory, messages_to_records, write_trajectories

from open_r1_ext.config import SFTScriptArguments

DEMO_BUDGETS = PixelBudgets(original=PixelBudget.tokens(4, 64), crop=PixelBudget.tokens(4, 32),
                            frame=PixelBudget.tokens(4, 8))
CHOICES = ["red", "green", "blue", "yellow"]


def demo_budget_fields() -> dict[str, int]:
    """The per-kind SFT fields (`original_min_pixels`, ...) that set the demo budgets whatever the preset."""
    return budget_fields(DEMO_BUDGETS)


def demo_script_arguments(**overrides) -> SFTScriptArguments:
    """SFT script arguments with the budgets the demo data is rendered with (as recipes/sft_tiny_cpu.yaml)."""
    return SFTScriptArguments(**{**demo_budget_fields(), **overrides})


@dataclass(frozen=True)
class Turn:
    """A scripted assistant turn: prose, then an action (a tool call made from the episode's state, or nothing).
    `loss=False` marks an inserted erroneous operation."""

    prose: str
    action: "Callable[[Episode], str] | None" = None
    loss: bool = True

    def text(self, episode: Episode) -> str:
        return self.prose + ("\n" + self.action(episode) if self.action else "")


def call(operation: str, **arguments) -> Callable[[Episode], str]:
    """A tool call in the episode profile's format, exactly as a model would write it."""
    def write(ep: Episode) -> str:
        tool = ep.profile.tool_names()[operation]
        return "<tool_call>\n" + json.dumps({"name": tool, "arguments": arguments}) + "\n</tool_call>"
    return write


def crop(box: Sequence[float], target: int) -> Callable[[Episode], str]:
    """A crop of a box given as fractions, written in the coordinates the profile declares (the qwen profile
    takes pixels of the target image as the model saw it)."""
    def write(ep: Episode) -> str:
        settings = ep.profile.binding(ep.profile.tool_names()["crop_image"]).settings
        coords = list(box)
        if settings.coordinates == "pixels":
            w, h = ep.shown_image(ep.images[target - 1]).size
            coords = [round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)]
        return call("crop_image", bbox_2d=coords, target_image=target)(ep)
    return write


@dataclass(frozen=True)
class DemoMedia:
    """How large the demo media are: source images are `scale` times the base sizes (320x240 etc.) and every
    image is shown under `budgets`. The defaults keep a CPU step fast; the benchmark also uses paper-size ones."""

    budgets: PixelBudgets = DEMO_BUDGETS
    scale: float = 1.0

    def image(self, width: int, height: int, seed: int):
        return scene_image(round(width * self.scale), round(height * self.scale), seed=seed)

    def config(self, limits: EpisodeLimits | None = None) -> EpisodeConfig:
        return EpisodeConfig(budgets=self.budgets, limits=limits or EpisodeLimits())


Scenario = Callable[[str, str, DemoMedia], tuple[Episode, str, list[Turn], str]]


def _image_scenario(turns: Callable[[], list[Turn]]) -> Scenario:
    def build(profile: str, media_dir: str, media: DemoMedia) -> tuple[Episode, str, list[Turn], str]:
        ep = Episode(profile, images=[media.image(320, 240, seed=1)], config=media.config())
        return ep, "What colour is the shape in the top-left corner?", turns(), "A"
    return build


TOP_LEFT, BOTTOM_RIGHT, TOP_RIGHT = [0.05, 0.05, 0.4, 0.4], [0.6, 0.6, 0.95, 0.95], [0.55, 0.1, 0.9, 0.45]


def single_pass() -> list[Turn]:
    return [Turn("The top-left corner is small; let me zoom in.", crop(TOP_LEFT, 1)),
            Turn("The zoomed region shows the shape clearly. \\boxed{A}")]


def recrop_once() -> list[Turn]:
    return [Turn("Let me zoom in.", crop(BOTTOM_RIGHT, 1), loss=False),
            Turn("This region is the bottom-right corner, not the top-left. Let me crop again.", crop(TOP_LEFT, 1)),
            Turn("Now the shape is visible. \\boxed{A}")]


def recrop_twice() -> list[Turn]:
    return [Turn("Let me zoom in.", crop(BOTTOM_RIGHT, 1), loss=False),
            Turn("Still not the top-left. Again.", crop(TOP_RIGHT, 1), loss=False),
            Turn("Both crops missed the corner. Cropping the top-left.", crop(TOP_LEFT, 1)),
            Turn("Found it. \\boxed{A}")]


def further_zoom_in() -> list[Turn]:
    return [Turn("Let me zoom in.", crop([0.0, 0.0, 0.85, 0.85], 1), loss=False),
            Turn("The crop is too large to see details. Zooming further into it.", crop([0.0, 0.0, 0.5, 0.5], 2)),
            Turn("The shape is clear now. \\boxed{A}")]


def failed_operation() -> list[Turn]:
    return [Turn("Let me zoom in.", call("crop_image", bbox_2d=[0.1, 0.1, 0.4], target_image=1), loss=False),
            Turn("The box needs four numbers. Retrying.", crop(TOP_LEFT, 1)),
            Turn("Now I can see it. \\boxed{A}")]


def text_only() -> list[Turn]:
    return [Turn("The shape in the top-left corner is large enough to see without zooming. \\boxed{A}")]


def reselect(profile: str, media_dir: str, media: DemoMedia) -> tuple[Episode, str, list[Turn], str]:
    w, h = round(96 * media.scale), round(64 * media.scale)
    frames = [save_scene(os.path.join(media_dir, "clip", f"frame_{i:02d}.png"), w, h, seed=100 + i)
              for i in range(16)]
    ep = Episode(profile, video=VideoSource(frame_paths=frames), config=media.config(EpisodeLimits(max_images=24)))
    turns = [Turn("Let me look at the end of the clip.", call("select_frames", target_frames=[13, 14, 15]),
                  loss=False),
             Turn("These frames are after the event. Selecting earlier frames.",
                  call("select_frames", target_frames=[2, 3])),
             Turn("Frames 2 and 3 show the event. \\boxed{B}")]
    return ep, "What happens at the start of the video?", turns, "B"


def multi_image(profile: str, media_dir: str, media: DemoMedia) -> tuple[Episode, str, list[Turn], str]:
    ep = Episode(profile, images=[media.image(320, 240, seed=2), media.image(150, 300, seed=3)], config=media.config())
    turns = [Turn("The second image is tall; let me zoom into its top half.", crop([0.1, 0.0, 0.9, 0.4], 2)),
             Turn("The two images show the same colour. \\boxed{C}")]
    return ep, "Do the two images share a colour?", turns, "C"


def language_only(profile: str, media_dir: str, media: DemoMedia) -> tuple[Episode, str, list[Turn], str]:
    ep = Episode(profile, config=media.config())
    return ep, "Which colour is a primary colour of light?", [Turn("Red is one of them. \\boxed{A}")], "A"


SCENARIOS: dict[str, Scenario] = {
    "single_pass": _image_scenario(single_pass),
    "recrop_once": _image_scenario(recrop_once),
    "recrop_twice": _image_scenario(recrop_twice),
    "further_zoom_in": _image_scenario(further_zoom_in),
    "reselect": reselect,
    "failed_operation": _image_scenario(failed_operation),
    "text_only": _image_scenario(text_only),
    "multi_image": multi_image,
    "language_only": language_only,
}


def run_scenario(name: str, profile: str, out_dir: str, copy: int = 0, media: DemoMedia = DemoMedia()) -> Trajectory:
    """Drive a fresh episode through the scripted turns; raise if the engine does not end where the script does."""
    media_dir = os.path.join(out_dir, "media")
    ep, question, turns, answer = SCENARIOS[name](profile, media_dir, media)
    prompt = ep.prompt_messages(question, CHOICES)
    for i, turn in enumerate(turns):
        result = ep.step(turn.text(ep))
        if result.done != (i == len(turns) - 1):
            raise RuntimeError(f"scenario {name}: the engine {'ended' if result.done else 'continued'} at turn {i}")
        if not turn.loss:
            ep.messages[-1 if result.done else -2]["loss"] = False
        elif result.observation is not None and result.observation.error is not None:
            raise RuntimeError(f"scenario {name}: trained turn {i} failed: {result.observation.error}")
    stem = f"{name}_{copy}"
    messages = messages_to_records(prompt + ep.messages, os.path.join(media_dir, stem), out_dir, stem)
    media = [p for p in messages[1]["content"] if p["type"] in ("image", "video")]
    return Trajectory(id=stem, messages=messages, profile=ep.profile.name, media=media, question=question,
                      choices=CHOICES, answer=answer, source="demo", trajectory_type=name,
                      meta={"stats": ep.stats.to_dict(), "budgets": to_dict(ep.config.budgets)})


def write_demo_data(out_dir: str, profile: str = "released", copies: int = 1,
                    scenarios: Sequence[str] = tuple(SCENARIOS), media: DemoMedia = DemoMedia()) -> str:
    """Write `copies` of each scenario to OUT_DIR/trajectories.jsonl; returns its path."""
    out_dir = os.path.abspath(out_dir)  # media paths are written relative to it
    os.makedirs(out_dir, exist_ok=True)
    trajectories = [run_scenario(name, profile, out_dir, c, media) for c in range(copies) for name in scenarios]
    path = os.path.join(out_dir, "trajectories.jsonl")
    write_trajectories(path, trajectories)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--profile", default="released", help="protocol profile (released | qwen)")
    ap.add_argument("--copies", type=int, default=1, help="copies of each scenario (more rows for longer runs)")
    a = ap.parse_args()
    path = write_demo_data(a.out_dir, a.profile, a.copies)
    print(f"wrote {len(SCENARIOS) * a.copies} trajectories to {path}")


if __name__ == "__main__":
    main()

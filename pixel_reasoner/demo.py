"""`pixel-reasoner demo`: the engine end to end in a few seconds, with nothing but the core.

It draws a 12-MP street-like scene whose answer (a number on a small sign) is unreadable at the resolution the
model sees the whole image at, and a short clip whose answer is a small digit in its last frames. Scripted model
turns then go through `Episode` on both protocol profiles: a crop, a crop of the crop, a malformed call the model
recovers from (masked from the SFT loss, as synthesised self-correction data is), and `select_frames` followed by a
crop of a selected frame. Trajectories are written as schema-v1 JSONL (images as PNG files) and rendered with the
viewer. The turns are scripted (no model runs here); everything else is the code the trainers and the eval use.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pixel_reasoner.config import EpisodeLimits, PixelBudgets
from pixel_reasoner.episode import Episode, EpisodeConfig, StepResult
from pixel_reasoner.media import ImageFile, VideoSource, uniform_frame_indices
from pixel_reasoner.scoring import score
from pixel_reasoner.trajectory import Trajectory, trajectory_from_episode, write_trajectories
from pixel_reasoner.viewer import ViewerConfig, write_report


@dataclass(frozen=True)
class DemoConfig:
    width: int = 4000  # a V*-sized source: small details vanish when it is shown at <= 2000 visual tokens
    height: int = 3000
    sign_box: tuple[int, int, int, int] = (2980, 2180, 3150, 2260)  # where the answer is written, source pixels
    answer: str = "42"
    video_frames: int = 64
    video_size: tuple[int, int] = (640, 360)
    video_fps: int = 16
    video_answer: str = "7"
    seed: int = 0


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def draw_scene(config: DemoConfig) -> Image.Image:
    """A busy high-resolution scene with a few small signs; only one carries the answer."""
    rng = np.random.default_rng(config.seed)
    w, h = config.width, config.height
    y, x = np.mgrid[0:h:4, 0:w:4]
    sky = np.stack([90 + 60 * y / h, 140 + 50 * y / h, 200 - 40 * y / h], -1)
    ground = np.stack([70 + 30 * x / w, 110 + 20 * y / h, 60 + 10 * x / w], -1)
    base = np.where((y > 0.55 * h)[..., None], ground, sky).astype(np.uint8)
    image = Image.fromarray(base, "RGB").resize((w, h), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    for _ in range(26):  # buildings
        bx = int(rng.integers(0, w - 300))
        bw, bh = int(rng.integers(180, 520)), int(rng.integers(500, 1500))
        top = int(0.55 * h) - bh
        color = tuple(int(c) for c in rng.integers(60, 200, 3))
        draw.rectangle([bx, top, bx + bw, int(0.55 * h)], fill=color, outline=(40, 40, 40), width=4)
        for wy in range(top + 40, int(0.55 * h) - 60, 90):
            for wx in range(bx + 25, bx + bw - 40, 70):
                lit = (250, 230, 150) if rng.random() < 0.3 else (50, 60, 80)
                draw.rectangle([wx, wy, wx + 30, wy + 45], fill=lit)
    for _ in range(40):  # people / cars as blobs on the ground
        cx, cy = int(rng.integers(0, w)), int(rng.integers(int(0.6 * h), h - 40))
        r = int(rng.integers(15, 60))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    font = _font(30)
    decoys = [((600, 2300), "17"), ((1700, 2500), "85"), ((3500, 1900), "31")]
    for (sx, sy), text in decoys + [((config.sign_box[0], config.sign_box[1]), config.answer)]:
        x1, y1 = sx, sy
        x2, y2 = (config.sign_box[2], config.sign_box[3]) if text == config.answer else (sx + 170, sy + 80)
        draw.rectangle([x1 + 80, y2, x1 + 90, y2 + 160], fill=(90, 90, 90))  # pole
        draw.rectangle([x1, y1, x2, y2], fill=(250, 250, 245), outline=(200, 30, 30), width=6)
        draw.text(((x1 + x2) // 2, (y1 + y2) // 2), text, fill=(20, 20, 20), font=font, anchor="mm")
    return image


def write_clip(path: str, config: DemoConfig) -> VideoSource:
    """A short clip: a ball crossing the frame; a small panel shows a digit, which changes in the last quarter."""
    frames = []
    w, h = config.video_size
    font, small = _font(28), _font(14)
    for i in range(config.video_frames):
        im = Image.new("RGB", (w, h), (30, 34, 48))
        draw = ImageDraw.Draw(im)
        t = i / max(config.video_frames - 1, 1)
        cx = int(40 + t * (w - 80))
        draw.ellipse([cx - 22, h // 2 - 22, cx + 22, h // 2 + 22], fill=(235, 80, 60))
        draw.text((16, 12), f"t = {i / config.video_fps:.2f} s", fill=(230, 230, 230), font=font)
        digit = config.video_answer if i >= 0.75 * config.video_frames else "3"
        draw.rectangle([w - 70, h - 50, w - 20, h - 16], fill=(240, 240, 240))
        draw.text((w - 45, h - 33), digit, fill=(10, 10, 10), font=small, anchor="mm")
        frames.append(im)
    try:
        import av  # noqa: F401
    except ImportError:  # the core alone: the sampled frames as images, as in the released data
        paths = []
        for i in uniform_frame_indices(len(frames), 16):
            paths.append(os.path.join(os.path.dirname(path), f"frame_{i:03d}.png"))
            frames[i].save(paths[-1])
        return VideoSource(frame_paths=paths)
    _encode_mp4(path, frames, config.video_fps)
    return VideoSource(path=path, num_frames=16)


def _encode_mp4(path: str, frames: list[Image.Image], fps: int) -> None:
    import av

    with av.open(path, mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        for im in frames:
            for packet in stream.encode(av.VideoFrame.from_image(im)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def call(name: str, **arguments) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


class Box:
    """Helpers that turn a region in source pixels into arguments of either profile's crop tool."""

    def __init__(self, episode: Episode):
        self.episode = episode

    def args(self, region: tuple[int, int, int, int], target: int) -> list[float]:
        """`bbox_2d` selecting `region` (source pixels) on image `target`, in the profile's coordinates."""
        image = self.episode.images[target - 1]
        bx1, by1, bx2, by2 = image.box or (0, 0, *image.source.full_size(self.episode.cache))
        fx = [(region[0] - bx1) / (bx2 - bx1), (region[1] - by1) / (by2 - by1),
              (region[2] - bx1) / (bx2 - bx1), (region[3] - by1) / (by2 - by1)]
        binding = next(t for t in self.episode.profile.tools if t.operation == "crop_image")
        if binding.settings.coordinates == "normalized":
            return [round(v, 3) for v in fx]
        w, h = self.episode.shown_image(image).size
        return [round(fx[0] * w), round(fx[1] * h), round(fx[2] * w), round(fx[3] * h)]

    def tool(self) -> str:
        return next(t.tool_name for t in self.episode.profile.tools if t.operation == "crop_image")


ScriptedTurns = Callable[[Episode, Box, int], tuple[str, bool]]  # turn k -> (model text, masked from the loss)


def run_scripted(episode: Episode, turns: ScriptedTurns) -> list[int]:
    """Feed scripted turns (computed from what the episode has shown so far) until it ends; returns masked turns."""
    masked, k = [], 0
    box = Box(episode)
    while not episode.done:
        text, is_masked = turns(episode, box, k)
        if is_masked:
            masked.append(k)
        result: StepResult = episode.step(text)
        if result.observation is not None and result.observation.error and not is_masked:
            raise RuntimeError(f"demo script error at turn {k}: {result.observation.error}")
        k += 1
    return masked


def zoom_twice(config: DemoConfig) -> ScriptedTurns:
    sx1, sy1, sx2, sy2 = config.sign_box
    area = (sx1 - 500, sy1 - 400, sx2 + 500, sy2 + 300)

    def turns(ep: Episode, box: Box, k: int) -> tuple[str, bool]:
        if k == 0:
            return ("The signs are too small to read at this resolution. Let me zoom in on the area with the red-framed "
                    "sign on the right.\n" + call(box.tool(), bbox_2d=box.args(area, 1), target_image=1), False)
        if k == 1:
            return ("There is a sign in this crop, still small. Zooming in on it.\n"
                    + call(box.tool(), bbox_2d=box.args(config.sign_box, 2), target_image=2), False)
        return f"The sign reads {config.answer}.\n\\boxed{{{config.answer}}}", False
    return turns


def recover_from_error(config: DemoConfig) -> ScriptedTurns:
    def turns(ep: Episode, box: Box, k: int) -> tuple[str, bool]:
        good = box.args(config.sign_box, 1)
        if k == 0:  # the other coordinate system: what a model trained on the other profile would write
            normalized = box.tool() == "crop_image_normalized"
            x1, y1, x2, y2 = config.sign_box
            wrong = list(config.sign_box) if normalized else [round(x1 / config.width, 3), round(y1 / config.height, 3),
                                                               round(x2 / config.width, 3), round(y2 / config.height, 3)]
            return "Let me zoom in on the sign.\n" + call(box.tool(), bbox_2d=wrong, target_image=1), True
        if k == 1:
            return ("That call used the wrong coordinates. Trying again.\n"
                    + call(box.tool(), bbox_2d=good, target_image=1), False)
        return f"Now the sign is readable: {config.answer}.\n\\boxed{{{config.answer}}}", False
    return turns


def video_then_crop(config: DemoConfig, first_frame_index: int) -> ScriptedTurns:
    w, h = config.video_size

    def turns(ep: Episode, box: Box, k: int) -> tuple[str, bool]:
        if k == 0:
            return ("The digit on the panel changes near the end. Let me look at the last frames closely.\n"
                    + call("select_frames", target_frames=[13, 14, 15, 16]), False)
        if k == 1:
            last = first_frame_index + 3
            return ("The panel in the bottom right corner is tiny. Zooming in on it in the last frame.\n"
                    + call(box.tool(), bbox_2d=box.args((w - 110, h - 80, w, h), last), target_image=last), False)
        return f"The panel shows {config.video_answer}.\n\\boxed{{{config.video_answer}}}", False
    return turns


def run_demo(out: str, config: DemoConfig = DemoConfig(), log: Callable[[str], None] = print) -> dict:
    """Generate media, run the scripted episodes on both profiles, write trajectories and the HTML view."""
    t0 = time.time()
    media_dir = os.path.join(out, "media")
    os.makedirs(media_dir, exist_ok=True)
    scene_path = os.path.join(media_dir, "scene.jpg")
    draw_scene(config).save(scene_path, quality=92)
    video = write_clip(os.path.join(media_dir, "clip.mp4"), config)
    budgets = PixelBudgets.paper_rl()
    question = "What number is written on the small red-framed sign on the right?"
    video_question = "What digit does the small panel in the bottom-right corner show at the end of the video?"
    trajectories: list[Trajectory] = []
    lines = []
    for profile in ("released", "qwen"):
        runs = [("zoom_twice", question, zoom_twice(config), {"images": [ImageFile(scene_path)]}, config.answer),
                ("recover_from_error", question, recover_from_error(config), {"images": [ImageFile(scene_path)]},
                 config.answer)]
        if profile == "released":  # the video shown as a video; selected frames become images 1..k
            runs.append(("select_frames_then_crop", video_question, video_then_crop(config, 1),
                         {"video": video, "video_as": "video"}, config.video_answer))
        else:  # the 16 frames shown as images (as in OpenRLHF rollouts); selected frames become images 17..
            runs.append(("select_frames_then_crop", video_question, video_then_crop(config, 17),
                         {"video": video, "images": video.frames(), "video_as": "images"}, config.video_answer))
        for kind, q, script, media, answer in runs:
            limits = EpisodeLimits(max_images=32) if media.get("video_as") == "images" else EpisodeLimits()
            episode = Episode(profile, images=media.get("images", ()), video=media.get("video"),
                              config=EpisodeConfig(budgets=budgets, limits=limits))
            prompt = episode.prompt_messages(q, video_as=media.get("video_as", "video"))
            masked = run_scripted(episode, script)
            value = score(episode.stats.answer, answer, "auto")
            traj = trajectory_from_episode(
                episode, prompt, id=f"{profile}-{kind}", root=out, question=q, answer=answer, source="demo",
                trajectory_type=kind, masked_turns=masked, reference_inputs=True, meta={"score": value})
            trajectories.append(traj)
            ops = " -> ".join(r.tool_name or "?" for r in episode.stats.operations)
            lines.append(f"  {profile:<9} {kind:<24} {ops} -> \\boxed{{{episode.stats.answer}}} "
                         f"{'correct' if value == 1 else 'wrong'}")
    jsonl = os.path.join(out, "trajectories.jsonl")
    write_trajectories(jsonl, trajectories)
    view = os.path.join(out, "view.html")
    report = write_report([jsonl], view, config=ViewerConfig(title="pixel-reasoner demo"))
    with open(os.path.join(out, "demo_config.json"), "w") as f:
        json.dump({"demo": asdict(config), "budgets": asdict(budgets)}, f, indent=2)
    elapsed = time.time() - t0
    first = trajectories[0].messages
    first_call = next(m["content"] for m in first if m["role"] == "assistant")
    crop_call = first_call[first_call.index("<tool_call>"):].replace("\n", "")
    log(f"pixel-reasoner demo: {len(trajectories)} trajectories on 2 protocol profiles in {elapsed:.1f} s")
    log(f"  media:         {scene_path} ({config.width}x{config.height}), {video.describe()}")
    log(f"  trajectories:  {jsonl} (schema v1; images as PNG under {os.path.join(out, 'images')})")
    log(f"  view:          {view} ({report['bytes'] / 1e6:.1f} MB, self-contained) <- open it in a browser")
    log("\n".join(lines))
    log("One model turn by hand:")
    log(f"  pixel-reasoner run-op --profile released --image {scene_path} --out {os.path.join(out, 'run_op')} "
        f"--text '{crop_call}'")
    return {"trajectories": jsonl, "view": view, "count": len(trajectories), "seconds": elapsed}

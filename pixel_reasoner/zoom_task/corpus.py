"""Every kind of text the zoom task shows a model or asks it to write, rendered by the core's own ChatML renderer
and episode engine: what a small byte-level BPE is trained on (`pixel_reasoner.testing.tiny_qwen --vocab zoom`).

A BPE that has seen these texts spells the fixed protocol (system prompt, tool schemas, guidelines,
observation texts) in a few tokens, so a CPU training step spends its time on the image and the decisions,
not on re-reading boilerplate. Any other text still encodes (byte-level), just in more tokens.
"""
from __future__ import annotations

import json
from typing import Iterator, Sequence

from pixel_reasoner.config import EpisodeLimits
from pixel_reasoner.episode import Episode, EpisodeConfig
from pixel_reasoner.media import VideoSource
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.protocol.chatml import render_messages
from pixel_reasoner.zoom_task.items import KINDS, make_item
from pixel_reasoner.zoom_task.scene import ZoomTaskConfig


def _call(name: str, arguments: dict) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def _crop_arguments(episode: Episode, tool: str, box: tuple[int, int, int, int], target: int) -> dict:
    settings = episode.profile.binding(tool).settings  # type: ignore[union-attr]
    region = episode.images[target - 1].box or (0, 0, *episode.images[target - 1].source.load().size)
    shown = episode.shown_image(episode.images[target - 1]).size
    fx = [(box[0] - region[0]) / (region[2] - region[0]), (box[2] - region[0]) / (region[2] - region[0])]
    fy = [(box[1] - region[1]) / (region[3] - region[1]), (box[3] - region[1]) / (region[3] - region[1])]
    if settings.coordinates == "normalized":
        bbox = [round(fx[0], 3), round(fy[0], 3), round(fx[1], 3), round(fy[1], 3)]
    else:
        bbox = [round(fx[0] * shown[0]), round(fy[0] * shown[1]), round(fx[1] * shown[0]), round(fy[1] * shown[1])]
    return {"bbox_2d": bbox, "target_image": target}


def episode_texts(profile_name: str, config: ZoomTaskConfig, index: int, assistant_texts: Sequence[str]
                  ) -> Iterator[str]:
    """The rendered prompt of one item of each kind, then (with tools) a call, its observation and an answer."""
    budgets = config.budgets()
    prose = "\n".join(assistant_texts)
    for kind in KINDS:
        item = make_item(kind, 0, "train", index, config)
        profile = get_profile(profile_name)
        video = VideoSource(frame_paths=tuple(f"frame{k}.png" for k in range(len(item.frames)))) \
            if item.frames is not None else None
        episode = Episode(profile, images=[] if video else [item.image], config=EpisodeConfig(
            budgets, EpisodeLimits(max_images=config.video_frames + 4)))
        user = [{"type": "video"}] if video else [{"type": "image"}]
        user.append({"type": "text", "text": profile.format_question(item.question, item.choices)})
        tools = profile.tool_schemas() or None
        yield render_messages([{"role": "system", "content": profile.system_prompt},
                               {"role": "user", "content": user}], tools, add_generation_prompt=True)
        answer = f"{prose}\nThe answer is \\boxed{{{item.answer}}}."
        if not tools or video:
            if video and tools:
                frames_tool = profile.tool_names()["select_frames"]
                yield _call(frames_tool, {"target_frames": [item.frame_index]})
            yield answer
            continue
        crop_tool = profile.tool_names()["crop_image"]
        text = prose + "\n" + _call(crop_tool, _crop_arguments(episode, crop_tool, item.scene.cell_box, 1))
        step = episode.step(text)
        assert step.observation is not None, "the corpus crop must execute"
        yield text + step.observation.continuation() + answer


def corpus_texts(config: ZoomTaskConfig = ZoomTaskConfig(), assistant_texts: Sequence[str] = (),
                 items_per_kind: int = 64, profiles: Sequence[str] = ("qwen", "released")) -> list[str]:
    """Prompts and turns of `items_per_kind` training items of every kind, in each profile with and without
    tools. `assistant_texts`: the sentences teacher trajectories are written with (synthesis templates)."""
    names = [n for p in profiles for n in (p, get_profile(p).without_tools().name)]
    return [text for index in range(items_per_kind) for name in names
            for text in episode_texts(name, config, index, assistant_texts)]

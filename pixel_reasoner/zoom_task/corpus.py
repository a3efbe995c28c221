"""Every kind of text the zoom task shows a model or asks it to write, rendered by the core's own ChatML renderer
and episode engine: what a small byte-level BPE is trained on (`pixel_reasoner.testing.tiny_qwen --vocab zoom`).

A BPE that has seen these texts spells the fixed protocol (system prompt, tool schemas, guidelines,
observation texts) in a few tokens, so a CPU training step spends its time on the image and the decisions,
not on re-reading boilerplate. Any other text still encodes (byte-level), just in more tokens.

`TEACHER_TEMPLATES` are the synthesis templates of `recipes/synth_zoom_cpu.yaml` (a test keeps them equal): the
teacher writes what it sees on a line of its own, then the option with that text as the question lists it, then
the letter. The vocabulary keeps a line (with its line break) as one token, so "vertical stripes\n" is the same
token in the choices and in the answer, right after the option's letter in the choices. The options are listed
in one sorted order (`items`), so the letter after a pattern's line is always the same: a shuffled order, which
made it a per-question lookup, had the letter at chance after 1,300 steps (docs/learning.md).
"""
from __future__ import annotations

import json
from typing import Iterator, Sequence

from pixel_reasoner.config import EpisodeLimits
from pixel_reasoner.episode import Episode, EpisodeConfig
from pixel_reasoner.media import VideoSource
from pixel_reasoner.protocol import get_profile
from pixel_reasoner.protocol.chatml import render_messages
from pixel_reasoner.zoom_task.items import CLOSEUP_KINDS, KINDS, ZoomItem, make_item
from pixel_reasoner.zoom_task.scene import ZoomTaskConfig

TEACHER_TEMPLATES = {
    "global_text": "The question asks: {question} The details it needs are too small to see in the whole {medium}.",
    "transition_image": "Now I will zoom in to look clearer at {target}.",
    "transition_video": "Now I will select some frames to look clearer at {target}.",
    "local_image": "The cropped part shows:\n{answer_text}\n{answer_option}The answer is {boxed_answer}.",
    "local_video": "The cropped frame shows:\n{answer_text}\n{answer_option}The answer is {boxed_answer}.",
    "text_only": "Looking at the whole {medium}:\n{answer_text}\n{answer_option}The answer is {boxed_answer}.",
    "target_image": "the region that answers the question",
    "target_video": "the moment that answers the question",
}
FRAME_ZOOM_TEXT = "Let me zoom in on the selected frame."  # expert.frame_zoom_text of the recipe


def fill(template: str, item: ZoomItem) -> str:
    """A teacher template filled for `item` (the placeholders of data_synthesis' TemplateConfig)."""
    video = item.frames is not None
    answer_text = item.choices[ord(item.answer) - ord("A")] if item.choices else item.answer
    fields = {"question": item.question, "medium": "video" if video else "image",
              "target": TEACHER_TEMPLATES["target_video" if video else "target_image"],
              "boxed_answer": "\\boxed{" + item.answer + "}", "answer_text": answer_text,
              "answer_option": f"{item.answer}: {answer_text}\n" if item.choices else ""}
    for name, value in fields.items():
        template = template.replace("{" + name + "}", value)
    return template


def _call(name: str, arguments: dict) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def _crop_arguments(episode: Episode, tool: str, box: tuple[int, int, int, int], target: int) -> dict:
    image = episode.images[target - 1]
    settings = episode.profile.binding(tool).settings  # type: ignore[union-attr]
    region = image.box or (0, 0, *image.source.load().size)
    shown = episode.shown_image(image).size
    fx = [(box[0] - region[0]) / (region[2] - region[0]), (box[2] - region[0]) / (region[2] - region[0])]
    fy = [(box[1] - region[1]) / (region[3] - region[1]), (box[3] - region[1]) / (region[3] - region[1])]
    if settings.coordinates == "normalized":
        bbox = [round(fx[0], 3), round(fy[0], 3), round(fx[1], 3), round(fy[1], 3)]
    else:
        bbox = [round(fx[0] * shown[0]), round(fy[0] * shown[1]), round(fx[1] * shown[0]), round(fy[1] * shown[1])]
    return {"bbox_2d": bbox, "target_image": target}


def _step(episode: Episode, text: str) -> str:
    step = episode.step(text)
    assert step.observation is not None and step.observation.error is None, "a corpus operation must execute"
    return text + step.observation.continuation()


def episode_texts(profile_name: str, config: ZoomTaskConfig, index: int) -> Iterator[str]:
    """One item of each kind: the rendered prompt, then the teacher's turns (operations executed by the engine)."""
    profile = get_profile(profile_name)
    tools = profile.tool_schemas() or None
    for kind in KINDS:
        if kind in CLOSEUP_KINDS:  # a detail question's texts, about a whole image: the vocabulary is kept as it was
            continue
        item = make_item(kind, 0, "train", index, config)
        video = VideoSource(frame_paths=tuple(f"frame{k}.png" for k in range(config.video_frames))) \
            if item.frames is not None else None
        episode = Episode(profile, images=[] if video else [item.image], video=video, config=EpisodeConfig(
            config.budgets(), EpisodeLimits(max_images=config.video_frames + 4)))
        user = [{"type": "video" if video else "image"},
                {"type": "text", "text": profile.format_question(item.question, item.choices)}]
        yield render_messages([{"role": "system", "content": profile.system_prompt},
                               {"role": "user", "content": user}], tools, add_generation_prompt=True)
        lead = f"{fill(TEACHER_TEMPLATES['global_text'], item)}\n\n"
        if not tools or kind in ("colour", "count"):
            yield fill(TEACHER_TEMPLATES["text_only"], item)
        elif video is None:
            lead += fill(TEACHER_TEMPLATES["transition_image"], item) + "\n"
            crop = profile.tool_names()["crop_image"]
            yield _step(episode, lead + _call(crop, _crop_arguments(episode, crop, item.scene.cell_box, 1))) \
                + fill(TEACHER_TEMPLATES["local_image"], item)
        else:
            lead += fill(TEACHER_TEMPLATES["transition_video"], item) + "\n"
            frames = _call(profile.tool_names()["select_frames"], {"target_frames": [item.frame_index]})
            yield lead + frames + "\n" + FRAME_ZOOM_TEXT + "\n" + _call(
                profile.tool_names()["crop_image"], {"bbox_2d": [0, 0, 28, 28], "target_image": 1}) \
                + fill(TEACHER_TEMPLATES["local_video"], item)


def corpus_texts(config: ZoomTaskConfig = ZoomTaskConfig(), extra_texts: Sequence[str] = (),
                 items_per_kind: int = 64, profiles: Sequence[str] = ("qwen", "released")) -> list[str]:
    """Prompts and teacher turns of `items_per_kind` training items of every kind, in each profile with and
    without tools, plus `extra_texts` (e.g. the synthesis recovery templates)."""
    names = [n for p in profiles for n in (p, get_profile(p).without_tools().name)]
    texts = [text for index in range(items_per_kind) for name in names
             for text in episode_texts(name, config, index)]
    return texts + list(extra_texts) * items_per_kind

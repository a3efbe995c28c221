"""Fixtures of the synthesis tests: seed data made at run time, a deterministic script for the scripted
OpenAI-compatible server (`pixel_reasoner.testing.openai_server`), configs.

`PaperScript` answers in the formats the paper's prompts ask for, reading each request to tell the stage and the
question, so the whole pipeline runs against a real HTTP server with known content.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import threading

import pytest
import yaml
from PIL import Image, ImageDraw

from pixel_reasoner.testing.media import save_scene, write_video
from pixel_reasoner.testing.openai_server import ScriptedServer

SA1B_QUESTION = "What is the color of the small square near the lower right?"
SA1B_CHOICES = ["Red", "Blue", "Green", "Yellow"]


def user_text(body: dict) -> str:
    texts = []
    for m in body["messages"]:
        if m["role"] == "user":
            content = m["content"]
            texts += [content] if isinstance(content, str) else [p.get("text", "") for p in content
                                                                 if p.get("type") == "text"]
    return "\n".join(texts)


def first_image_size(body: dict) -> tuple[int, int]:
    for m in body["messages"]:
        for p in m["content"] if isinstance(m["content"], list) else []:
            if p.get("type") == "image_url":
                data = base64.b64decode(p["image_url"]["url"].split(",", 1)[1])
                with Image.open(io.BytesIO(data)) as im:
                    return im.size
    return (0, 0)


class PaperScript:
    """Deterministic replies in the formats the paper's prompts ask for, answering from a table of truths.

    `wrong` lists questions the expert answers wrongly; images whose width (as sent) is in `not_valid_widths`
    are judged not information-rich by the question writer. The question writer's second turn for images whose
    width is in `hold_widths` waits until `release` is set (an item stuck mid-way, to kill a run there).
    """

    def __init__(self, truths: dict[str, str], wrong: frozenset = frozenset(),
                 not_valid_widths: frozenset = frozenset(), hold_widths: frozenset = frozenset()):
        self.truths = truths
        self.wrong = wrong
        self.not_valid_widths = not_valid_widths
        self.hold_widths = hold_widths
        self.release = threading.Event()

    def __call__(self, body: dict) -> list[str]:
        text = user_text(body)
        if text.startswith("You are an expert in generating questions"):
            if len(body["messages"]) == 1:
                if first_image_size(body)[0] in self.not_valid_widths:
                    return ["The image is mostly empty. Not valid"]
                return ['I will zoom in on the small square.\n<tool_call>\n{"name": "crop_image_normalized", '
                        '"arguments": {"bbox_2d": [0.70, 0.70, 0.80, 0.80], "target_image": 1}}\n</tool_call>']
            if first_image_size(body)[0] in self.hold_widths:
                self.release.wait(timeout=60)
            choices = "\n".join(f"{chr(65 + i)}: {c}" for i, c in enumerate(SA1B_CHOICES))
            return [f"<question>\nquestion:{SA1B_QUESTION}\nchoices:\n{choices}\ncorrect_answer: B\n</question>"]
        if text.startswith("You are an expert in generating trajectories"):
            question = re.findall(r"question: (.*)", text)[-1].strip()
            answer = self.truths[question]
            if question in self.wrong:
                answer = "D" if answer != "D" else "A"
            video = "frame selection" in text
            if video:
                return [f"Analyzing the video:\nThe video shows a person in a room.\n\nNow I will select some frames "
                        f"to look clearer at what the person holds.\n\nAnalyzing the selected frames:\nThe person "
                        f"holds the object clearly.\n\n\\boxed{{{answer}}}"]
            return [f"Analyzing the whole image: The image shows coloured shapes and some text.\n\nNow I will zoom in "
                    f"to look clearer at 'the region the question asks about'.\n\nAnalyzing the cropped part: The "
                    f"cropped part shows it clearly.\n\n\\boxed{{{answer}}}"]
        question = text.split("\n")[0].strip()
        answer = self.truths.get(question, "unknown")
        return ["I think the answer is \\boxed{zzz}.", f"Looking at the image, the answer is clear.\n\n\\boxed{{{answer}}}"]


def make_seed_data(root: str, n_sa1b: int = 3, n_web: int = 4, n_star: int = 3) -> dict:
    """SA1B pairs, web screenshots with QA + answer boxes, STAR videos + annotation JSON, a generic JSONL, with
    one malformed record in each line-based file. Returns paths and the table of truths."""
    truths = {SA1B_QUESTION: "B"}
    sa1b = os.path.join(root, "sa1b")
    os.makedirs(sa1b, exist_ok=True)
    for i in range(n_sa1b):
        save_scene(os.path.join(sa1b, f"sa_{i}.jpg"), 800 + 40 * i, 600, seed=i)
        with open(os.path.join(sa1b, f"sa_{i}.json"), "w") as f:
            json.dump({"image": {"image_id": i, "file_name": f"sa_{i}.jpg", "width": 800 + 40 * i, "height": 600},
                       "annotations": [{"bbox": [10, 10, 50, 50]}, {"bbox": [500, 400, 40, 30]}]}, f)
    with open(os.path.join(sa1b, "sa_broken.json"), "w") as f:
        f.write("{not json")
    web = os.path.join(root, "web")
    os.makedirs(web, exist_ok=True)
    with open(os.path.join(web, "qa.jsonl"), "w") as f:
        for i in range(n_web):
            img = Image.new("RGB", (900, 1200), (250, 250, 250))
            draw = ImageDraw.Draw(img)
            for line in range(30):
                draw.text((40, 30 + 38 * line), f"Paragraph {line}: lorem ipsum text of page {i}", fill=(0, 0, 0))
            img.save(os.path.join(web, f"page_{i}.png"))
            question = f"What is the title of section {i}?"
            truths[question] = f"Section title {i}"
            f.write(json.dumps({"id": f"p{i}", "image": f"page_{i}.png", "question": question,
                                "answer": f"Section title {i}", "bbox": [40, 600 + 10 * i, 420, 640 + 10 * i]}) + "\n")
        f.write(json.dumps({"id": "bad", "image": "page_0.png", "question": "Where?", "answer": "here",
                            "bbox": [10, 10, 5000, 20]}) + "\n")
        f.write("this line is not json\n")
    star = os.path.join(root, "star")
    os.makedirs(star, exist_ok=True)
    records = []
    for i in range(n_star):
        write_video(os.path.join(star, f"vid{i}.mp4"), num_frames=64, width=64, height=48, fps=16)
        question = f"Which object was put down by the person in clip {i}?"
        choices = ["The cup.", "The book.", "The bag.", "The clothes."]
        truths[question] = "B"
        records.append({"question_id": f"q{i}", "video_id": f"vid{i}", "question": question,
                        "choices": [{"choice_id": k, "choice": c} for k, c in enumerate(choices)],
                        "answer": "The book.", "start": 1.0, "end": 2.5})
    records.append({"question_id": "qbad", "video_id": "missing", "question": "?", "choices": ["a", "b"],
                    "answer": "a", "start": 0, "end": 1})
    with open(os.path.join(star, "STAR_train.json"), "w") as f:
        json.dump(records, f)
    generic = os.path.join(root, "generic.jsonl")
    with open(generic, "w") as f:
        question = "How many shapes are in the highlighted region?"
        truths[question] = "3"
        save_scene(os.path.join(root, "generic_0.png"), 700, 500, seed=7)
        f.write(json.dumps({"id": "g0", "image": "generic_0.png", "question": question, "answer": "3",
                            "scoring": "count", "ref_box": [100, 100, 220, 200]}) + "\n")
        f.write(json.dumps({"id": "g1", "image": "generic_0.png", "question": "no box?", "answer": "x"}) + "\n")
        frames = []
        for k in range(8):  # a video given as 8 frame images, the reference as frame indices
            frames.append(f"frames/f{k}.png")
            save_scene(os.path.join(root, frames[-1]), 96, 72, seed=20 + k)
        question = "What appears in the middle of the clip?"
        truths[question] = "C"
        f.write(json.dumps({"id": "g2", "frames": frames, "question": question, "choices": ["a cat", "a car",
                            "a tree", "a boat"], "answer": "C", "ref_frames": [4, 5]}) + "\n")
    return {"root": root, "sa1b": sa1b, "web": os.path.join(web, "qa.jsonl"), "web_root": web,
            "star": os.path.join(star, "STAR_train.json"), "star_root": star, "generic": generic, "truths": truths}


def write_config(path: str, seeds: dict, base_url: str, output_dir: str, **overrides) -> str:
    config = {
        "endpoints": {"expert": {"base_url": base_url, "model": "scripted", "api_key_env": "SYNTH_TEST_KEY",
                                 "max_concurrency": 4, "max_retries": 3, "backoff_initial_s": 0.01,
                                 "backoff_max_s": 0.05, "timeout_s": 30},
                      "base": {"base_url": base_url, "model": "scripted-base", "api_key_env": "",
                               "max_concurrency": 4, "price_input_per_1m": 0.0, "price_output_per_1m": 0.0}},
        "sources": [{"format": "sa1b", "path": seeds["sa1b"]},
                    {"format": "web", "path": seeds["web"]},
                    {"format": "star", "path": seeds["star"]},
                    {"format": "jsonl", "name": "generic", "path": seeds["generic"]}],
        "budget_preset": "paper_rl",
        "item_concurrency": 4,
        "text_only": {"share": 0.25, "num_samples": 2},
        "output": {"dir": output_dir},
    }
    for key, value in overrides.items():
        node = config
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


@pytest.fixture(scope="session")
def seed_data(tmp_path_factory) -> dict:
    return make_seed_data(str(tmp_path_factory.mktemp("seeds")))


class SynthHelpers:
    """What tests need besides fixtures: the scripted server, the paper script, seed data and config writers."""

    ScriptedServer = ScriptedServer
    PaperScript = PaperScript
    make_seed_data = staticmethod(make_seed_data)
    write_config = staticmethod(write_config)


@pytest.fixture(scope="session")
def synth() -> type[SynthHelpers]:
    return SynthHelpers


@pytest.fixture
def api_key(monkeypatch) -> str:
    secret = "sk-test-SECRET-value-that-must-never-be-written-9f8e7d"
    monkeypatch.setenv("SYNTH_TEST_KEY", secret)
    return secret

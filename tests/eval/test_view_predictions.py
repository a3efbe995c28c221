"""`pixel-reasoner view` on an evaluation's predictions.jsonl: each (question, sample) is a trajectory on the page,
with the images the run saved (`--save-images`) embedded and the crop drawn on its source."""
import json
import re

from pixel_reasoner.cli import main as cli

from eval.cli import run
from eval.config import RunConfig
from eval.testing import SMALL_BUDGETS, ScriptedGenerator


def test_predictions_render_with_images_and_crop_boxes(benchmark_data, tmp_path):
    config = RunConfig(model="/models/scripted", benchmark="vstar", data=benchmark_data["vstar"], out=str(tmp_path),
                       **SMALL_BUDGETS, limit=2, save_images=True)
    run(config, lambda c, video: ScriptedGenerator(c.profile, answer="A"))
    rows = [json.loads(line) for line in open(tmp_path / "predictions.jsonl")]
    page_path = str(tmp_path / "view.html")
    assert cli(["view", str(tmp_path / "predictions.jsonl"), "--out", page_path]) == 0
    page = open(page_path, encoding="utf-8").read()
    articles = page.split("<article")[1:]
    assert len(articles) == len(rows) == 2
    for article, row in zip(articles, rows):
        assert f"vstar/{row['id']} sample 0" in article
        images = re.findall(r"src='(data:image/jpeg;base64,[^']*)'", article)
        assert len(images) == 2  # the input and the crop, embedded
        assert "<span>#2</span>" in article  # the crop's box drawn on the input image
    # without saved images the rows still render (text, tool calls)
    plain = tmp_path / "plain"
    run(RunConfig(model="/models/scripted", benchmark="vstar", data=benchmark_data["vstar"], out=str(plain),
                  **SMALL_BUDGETS, limit=1),
        lambda c, video: ScriptedGenerator(c.profile, answer="A"))
    assert cli(["view", str(plain / "predictions.jsonl"), "--out", str(plain / "view.html")]) == 0
    assert "tool call" in open(plain / "view.html", encoding="utf-8").read()

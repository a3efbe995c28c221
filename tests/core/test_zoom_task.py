"""The zoom task (pixel_reasoner.zoom_task): its premise, its determinism, and its files in the layouts the
pipeline reads (synthesis seeds, V*/TallyQA/MVBench for eval)."""
import json

import numpy as np
import pytest
from PIL import Image

from pixel_reasoner.errors import ConfigError
from pixel_reasoner.media import resize_to_budget
from pixel_reasoner.zoom_task.items import KINDS, make_item, same_scene_all_patterns
from pixel_reasoner.zoom_task.layouts import Mix, write_benchmarks, write_seeds
from pixel_reasoner.zoom_task.oracle import premise
from pixel_reasoner.zoom_task.scene import FRAME_COLOURS, PATTERNS, ZoomTaskConfig

CONFIG = ZoomTaskConfig()


def test_the_original_shows_the_same_pixels_whatever_the_pattern():
    """At the original's budget the four patterns resample to byte-identical images: nothing can read them."""
    budget = CONFIG.budgets().original
    for index in range(60):
        scenes = same_scene_all_patterns(7, index, CONFIG)
        assert [s.pattern for s in scenes] == list(PATTERNS)
        shown = [np.asarray(resize_to_budget(s.image, budget)) for s in scenes]
        assert shown[0].shape == (112, 112, 3)
        assert all(np.array_equal(shown[0], other) for other in shown[1:]), f"scene {index} leaks its pattern"
        full = [np.asarray(s.image) for s in scenes]
        assert not any(np.array_equal(full[0], other) for other in full[1:])  # the source pixels do differ


def _band_colour(scene, config: ZoomTaskConfig) -> np.ndarray:
    """Mean colour, as shown at the original's budget, of the ring where the frame's inner band lies."""
    shown = np.asarray(resize_to_budget(scene.image, config.budgets().original), dtype=np.float64)
    scale = shown.shape[0] / config.image_size
    x1, y1, x2, y2 = (round(v * scale) for v in scene.frame_box)
    inset = round((config.frame - config.code_band / 2) * scale)
    ring = np.concatenate([shown[y1 + inset, x1 + inset:x2 - inset], shown[y2 - inset - 1, x1 + inset:x2 - inset],
                           shown[y1 + inset:y2 - inset, x1 + inset], shown[y1 + inset:y2 - inset, x2 - inset - 1]])
    return ring.mean(axis=0)


def test_the_position_code_says_where_the_frame_is_at_the_original_budget():
    """With `position_code`, the frame's inner band names its cell (red: column, green: row) in the shown
    original, and the patterns still resample to identical pixels; without it, the band is the frame's colour."""
    coded = ZoomTaskConfig(position_code=48)
    levels = np.linspace(-coded.position_code, coded.position_code, coded.grid) + 128
    right = 0
    for index in range(80):
        scene = make_item("detail", 3, "eval", index, coded).scene
        red, green, _ = _band_colour(scene, coded)
        read = (int(np.abs(levels - green).argmin()), int(np.abs(levels - red).argmin()))
        right += read == scene.cell
    assert right == 80
    for index in range(20):
        shown = [np.asarray(resize_to_budget(s.image, coded.budgets().original))
                 for s in same_scene_all_patterns(7, index, coded)]
        assert all(np.array_equal(shown[0], other) for other in shown[1:]), f"scene {index} leaks its pattern"
    plain = ZoomTaskConfig(position_code=0)
    for index in range(10):
        scene = make_item("detail", 3, "eval", index, plain).scene
        x = scene.frame_box[0] + plain.frame - plain.code_band // 2
        assert scene.image.getpixel((x, (scene.frame_box[1] + scene.frame_box[3]) // 2)) == FRAME_COLOURS[scene.colour]


def test_premise_oracle_is_at_chance_on_the_original_and_right_on_the_crop():
    result = premise(CONFIG, CONFIG.budgets(), n=400)
    assert result.crop_accuracy >= 0.99
    assert abs(result.original_accuracy - 0.25) <= 0.06  # identical pixels: it names one pattern for all four
    # the counting questions need no tool: the dots can be counted in the original's shown pixels
    assert result.count_original_accuracy >= 0.99


def test_items_are_a_function_of_seed_split_and_index():
    a, b = make_item("detail", 3, "train", 5, CONFIG), make_item("detail", 3, "train", 5, CONFIG)
    assert (a.answer, a.choices, a.scene.cell) == (b.answer, b.choices, b.scene.cell)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    held_out = make_item("detail", 3, "eval", 5, CONFIG)
    assert not np.array_equal(np.asarray(a.image), np.asarray(held_out.image))
    video = make_item("video", 3, "eval", 2, CONFIG)
    assert len(video.frames) == 16 and video.frames[video.frame_index - 1] is video.image
    assert sum(not np.array_equal(np.asarray(f), np.asarray(video.frames[0])) for f in video.frames) in (1, 15)


def test_answers_are_balanced_and_consistent():
    letters, cells = [], set()
    for index in range(200):
        item = make_item("detail", 0, "train", index, CONFIG)
        assert item.choices[ord(item.answer) - ord("A")] == PATTERNS[item.scene.pattern]
        x1, y1, x2, y2 = item.scene.cell_box
        assert x1 <= item.scene.frame_box[0] and item.scene.frame_box[2] <= x2  # the frame inside its cell
        letters.append(item.answer)
        cells.add(item.scene.cell)
    assert all(30 <= letters.count(letter) <= 70 for letter in "ABCD") and len(cells) == 16
    count = make_item("count", 0, "train", 1, CONFIG)
    assert count.choices is None and count.answer == str(count.scene.dots) and 1 <= count.scene.dots <= 4


@pytest.mark.parametrize("overrides, message", [
    ({"shown_size": 224}, "must equal period"), ({"patch": 42}, "multiple of period"),
    ({"frame": 32}, "does not fit"), ({"patterns": ("zigzag",)}, "unknown pattern"),
    ({"position_code": 200}, "position_code=200"), ({"position_code": 48, "code_band": 16}, "code_band=16")])
def test_bad_geometry_is_refused_with_the_reason(overrides, message):
    with pytest.raises(ConfigError, match=message):
        ZoomTaskConfig(**overrides)


def test_seeds_load_as_synthesis_seeds_with_routes(tmp_path):
    from data_synthesis.config import SourceConfig
    from data_synthesis.seeds import SeedItem, load_source

    path = write_seeds(str(tmp_path), Mix.for_training(30, videos=2))
    items = list(load_source(SourceConfig(format="jsonl", name="zoom", path=path)))
    assert all(isinstance(i, SeedItem) for i in items) and len(items) == 32
    by_kind = {}
    for item in items:
        by_kind.setdefault(item.meta["kind"], []).append(item)
    assert {k: len(v) for k, v in by_kind.items()} == {"detail": 22, "colour": 4, "count": 4, "video": 2}
    assert all(i.route == "pixel" and i.ref_box is not None for i in by_kind["detail"] + by_kind["video"])
    assert all(i.route == "text_only" for i in by_kind["colour"] + by_kind["count"])
    assert by_kind["count"][0].scoring == "count"
    assert by_kind["video"][0].ref_frames and len(by_kind["video"][0].frame_paths) == 16


def test_benchmarks_load_through_the_eval_loaders(tmp_path):
    from eval.benchmarks import load_questions
    from eval.benchmarks.common import LoadOptions
    from eval.choices import order_choices

    written = write_benchmarks(str(tmp_path), Mix(detail=6, colour=3, count=3, video=2))
    vstar = [order_choices(q, 0) for q in load_questions("vstar", written["vstar"])]
    assert [q.category for q in vstar].count("detail") == 6 and len(vstar) == 9
    for q in vstar:
        item = make_item(q.category, 0, "eval", int(q.id.rsplit("-", 1)[1]), CONFIG)
        assert q.choices[ord(q.answer) - ord("A")] == item.choices[ord(item.answer) - ord("A")]
        if q.category == "detail":
            x, y, x2, y2 = item.scene.frame_box
            assert q.target_boxes == [[x, y, x2, y2]]
    counts = load_questions("tallyqa", written["tallyqa"], LoadOptions(subset="all"))
    assert [q.answer for q in counts] == [make_item("count", 0, "eval", i, CONFIG).answer for i in range(3)]
    videos = load_questions("mvbench", written["mvbench"], LoadOptions(subset="episodic_reasoning"))
    assert len(videos) == 2 and videos[0].video.num_frames == 16
    rows = json.loads((tmp_path / "mvbench" / "json" / "episodic_reasoning.json").read_text())
    assert rows[0]["answer"] == videos[0].choices[ord(videos[0].answer) - ord("A")]


def test_a_closeup_is_the_frames_cell_readable_at_the_original_budget(tmp_path):
    """The warm-up stage's items: the detail question on the frame's cell alone, whose pattern the pixel oracle
    reads at the budget an original is shown at (no tool needed), each close-up twice: routed to a text-only
    trajectory, and to a crop whose reference box is the whole close-up; boxes in the close-up's own pixels; a
    benchmark refuses both kinds."""
    from pixel_reasoner.zoom_task.oracle import read_pattern, shown_box

    budget = CONFIG.budgets().for_kind("original")
    right = 0
    for index in range(200):
        closeup = make_item("closeup", 0, "train", index, CONFIG)
        detail = make_item("detail", 0, "train", index, CONFIG)
        assert closeup.answer == detail.answer and closeup.choices == detail.choices
        assert np.array_equal(np.asarray(closeup.image), np.asarray(detail.image.crop(detail.scene.cell_box)))
        shown = resize_to_budget(closeup.image, budget)
        cell = closeup.scene.cell_box
        patch = closeup.scene.patch_box
        local = (patch[0] - cell[0], patch[1] - cell[1], patch[2] - cell[0], patch[3] - cell[1])
        right += read_pattern(shown, shown_box(local, (0, 0, *closeup.image.size), shown.size)) == closeup.scene.pattern
    assert right / 200 >= 0.99

    rows = [json.loads(line) for line in open(write_seeds(str(tmp_path), Mix.for_training(0, closeups=3)))]
    assert [r["kind"] for r in rows] == ["closeup", "closeup_crop"] * 3
    assert [r["route"] for r in rows] == ["text_only", "pixel"] * 3
    assert [r["image"] for r in rows[::2]] != [r["image"] for r in rows[1::2]]  # own files (ids differ) ...
    for plain, cropped in zip(rows[::2], rows[1::2]):  # ... of one image
        assert np.array_equal(np.asarray(Image.open(tmp_path / plain["image"])),
                              np.asarray(Image.open(tmp_path / cropped["image"])))
    item = make_item("closeup", 0, "train", 0, CONFIG)
    cx, cy = item.scene.cell_box[:2]
    fx1, fy1, fx2, fy2 = item.scene.frame_box
    for row in rows[:2]:
        assert row["ref_box"] == [0, 0, CONFIG.cell, CONFIG.cell]
        assert row["target_box"] == [fx1 - cx, fy1 - cy, fx2 - cx, fy2 - cy]
    for mix in (Mix(detail=1, closeup=1), Mix(detail=1, closeup_crop=1)):
        with pytest.raises(ConfigError, match="close-ups are training data"):
            write_benchmarks(str(tmp_path / "bench"), mix)

"""Seed loaders: each source's layout, and malformed records reported with their line and reason, then skipped."""
import json

import pytest

from data_synthesis.config import SourceConfig
from data_synthesis.reference import resolve_reference, video_frame_times
from data_synthesis.seeds import SeedItem, SeedReject, load_source
from pixel_reasoner.errors import DataError
from pixel_reasoner.testing.media import save_scene, write_video


def split(entries):
    entries = list(entries)
    return [e for e in entries if isinstance(e, SeedItem)], [e for e in entries if isinstance(e, SeedReject)]


def test_all_four_sources_load_and_report_their_malformed_records(seed_data):
    sa1b, bad = split(load_source(SourceConfig(format="sa1b", path=seed_data["sa1b"])))
    assert [i.id for i in sa1b] == ["sa1b-0", "sa1b-1", "sa1b-2"] and all(i.needs_question for i in sa1b)
    assert sa1b[0].meta["num_segments"] == 2
    assert [r.location.endswith("sa_broken.json") for r in bad] == [True] and "not valid JSON" in bad[0].detail

    web, bad = split(load_source(SourceConfig(format="web", path=seed_data["web"])))
    assert len(web) == 4 and web[1].ref_box == (40, 610, 420, 650) and web[1].answer == "Section title 1"
    assert web[0].scoring == "anls" and web[0].template == "web"
    assert [r.location.rsplit(":", 1)[1] for r in bad] == ["5", "6"]
    assert "lies outside the image (900x1200 pixels)" in bad[0].detail and "not valid JSON" in bad[1].detail
    assert bad[1].record == "this line is not json"

    star, bad = split(load_source(SourceConfig(format="star", path=seed_data["star"])))
    assert len(star) == 3 and star[0].answer == "B" and star[0].ref_window == (1.0, 2.5)
    assert star[0].choices[1] == "The book." and star[0].is_video
    assert "missing.mp4" in bad[0].detail

    generic, bad = split(load_source(SourceConfig(format="jsonl", name="generic", path=seed_data["generic"])))
    assert generic[0].id == "generic-g0" and generic[0].scoring == "count"
    assert "needs `ref_box`" in bad[0].detail and bad[0].location.endswith("generic.jsonl:2")


def test_limits_boxes_in_other_formats_and_min_segments(tmp_path, seed_data):
    save_scene(str(tmp_path / "a.png"), 400, 200)
    lines = [{"image": "a.png", "question": "q?", "answer": "x", "bbox": [0.25, 0.5, 0.25, 0.25]},
             {"image": "a.png", "question": "q2?", "answer": "x", "bbox": [0.1, 0.1, 0.2, 0.2]}]
    (tmp_path / "w.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    items, _ = split(load_source(SourceConfig(format="web", path=str(tmp_path / "w.jsonl"), bbox_format="xywh",
                                              bbox_units="normalized", limit=1)))
    assert len(items) == 1 and items[0].ref_box == (100, 100, 200, 150)
    items, bad = split(load_source(SourceConfig(format="sa1b", path=seed_data["sa1b"], min_segments=3)))
    assert not items and {r.reason for r in bad} == {"too_few_segments", "malformed_seed"}


@pytest.mark.parametrize("record, message", [
    ({"image": "a.png", "question": "q", "answer": "B", "choices": ["x", "y"], "ref_box": [0, 0, 9, 9]}, None),
    ({"image": "a.png", "question": "q", "answer": "Z", "choices": ["x", "y"], "ref_box": [0, 0, 9, 9]},
     "neither an option letter"),
    ({"image": "a.png", "video": "v.mp4", "question": "q", "answer": "x"}, "exactly one of"),
    ({"image": "nope.png", "question": "q", "answer": "x", "ref_box": [0, 0, 9, 9]}, "file not found"),
    ({"image": "a.png", "question": "", "answer": "x", "ref_box": [0, 0, 9, 9]}, "`question` must be"),
    ({"image": "a.png", "question": "q", "answer": "many", "scoring": "count", "ref_box": [0, 0, 9, 9]},
     "not a count"),
    ({"image": "a.png", "question": "q", "answer": "x", "ref_box": [9, 9, 0, 0]}, "has no area"),
    ({"video": "v.mp4", "question": "q", "answer": "x", "ref_frames": [0]}, "1-based"),
    ({"video": "v.mp4", "question": "q", "answer": "x"}, "exactly one of `ref_frames`"),
    ({"image": "a.png", "question": "q", "answer": "x", "ref_box": [0, 0, 9, 9], "wrong_boxes": [[20, 0, 29, 9]]},
     None),
    ({"image": "a.png", "question": "q", "answer": "x", "ref_box": [0, 0, 9, 9],
      "wrong_boxes": [[20, 0, 29, 9], [5, 5, 14, 14]]}, "`wrong_boxes[1]` [5, 5, 14, 14] overlaps `ref_box`"),
    ({"image": "a.png", "question": "q", "answer": "x", "ref_box": [0, 0, 9, 9], "wrong_boxes": [20, 0, 29, 9]},
     "`wrong_boxes[0]` must be 4 numbers"),
    ({"image": "a.png", "question": "q", "answer": "x", "ref_box": [0, 0, 9, 9], "wrong_boxes": []},
     "non-empty list"),
])
def test_generic_jsonl_validation(tmp_path, record, message):
    save_scene(str(tmp_path / "a.png"), 100, 80)
    (tmp_path / "v.mp4").write_bytes(b"")
    (tmp_path / "g.jsonl").write_text(json.dumps(record) + "\n")
    items, bad = split(load_source(SourceConfig(format="jsonl", path=str(tmp_path / "g.jsonl"))))
    if message is None:
        assert len(items) == 1 and items[0].answer == record["answer"]
        assert items[0].wrong_boxes == ([tuple(b) for b in record["wrong_boxes"]] if "wrong_boxes" in record else None)
        assert "wrong_boxes" not in items[0].meta
    else:
        assert not items and message in bad[0].detail and bad[0].location.endswith("g.jsonl:1")


def test_a_missing_source_path_is_an_error_naming_it():
    with pytest.raises(DataError, match="path not found: /no/such/dir"):
        list(load_source(SourceConfig(format="sa1b", path="/no/such/dir")))


def test_star_windows_become_the_engines_sampled_frames(tmp_path):
    video = write_video(str(tmp_path / "v.mp4"), num_frames=64, fps=16)  # 4 s; frame i at i/16 s
    times = video_frame_times(video, 16)
    assert times[0] == 0 and abs(times[-1] - 63 / 16) < 1e-9
    item = SeedItem(id="s", source="star", template="star", location="-", video=video, ref_window=(1.0, 2.5))
    frames = resolve_reference(item, 16, 8, 0, None).frames
    assert frames == [i + 1 for i, t in enumerate(times) if 1.0 <= t <= 2.5]
    item.ref_window = (0.0, 4.0)
    assert len(resolve_reference(item, 16, 8, 0, None).frames) == 8

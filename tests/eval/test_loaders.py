"""Loaders on tiny copies of each real layout, option shuffling, and clear errors for missing files."""
import json
import os
import shutil

import pytest

from pixel_reasoner.errors import ConfigError, DataError
from pixel_reasoner.media import VideoSource, segment_centre_indices

from eval.benchmarks import load_questions
from eval.benchmarks.common import LoadOptions
from eval.choices import order_choices, split_embedded_choices
from eval.config import RunConfig
from eval.scoring import option_order as scored_option_order
from eval.testing import make_mvbench, make_pixel_reasoner_parquet, make_vstar


def test_vstar_reads_annotations_targets_and_categories(benchmark_data):
    qs = load_questions("vstar", benchmark_data["vstar"])
    assert [q.category for q in qs] == ["direct_attributes"] * 3 + ["relative_position"] * 2
    q = qs[0]
    assert q.id == "0" and q.answer == "A" and q.choices[0] == "red" and len(q.choices) == 4
    assert q.target_boxes == [[40.0, 30.0, 80.0, 70.0]]  # [x, y, w, h] -> [x1, y1, x2, y2]
    assert q.images[0].path.endswith("direct_attributes/sa_1000.jpg")


def test_vstar_without_listing_scans_the_category_folders(tmp_path):
    root = make_vstar(str(tmp_path / "v"), n_direct=2, n_relative=1, listing=False)
    assert [q.id for q in load_questions("vstar", root)] == [
        "direct_attributes/sa_1000", "direct_attributes/sa_1001", "relative_position/sa_1002"]


def test_missing_files_are_errors_naming_the_path(tmp_path, benchmark_data):
    root = shutil.copytree(benchmark_data["vstar"], str(tmp_path / "v"))
    os.remove(os.path.join(root, "direct_attributes", "sa_1001.json"))
    with pytest.raises(DataError, match="annotation file not found: .*direct_attributes/sa_1001.json"):
        load_questions("vstar", root)
    tally = shutil.copytree(benchmark_data["tallyqa"], str(tmp_path / "t"))
    os.remove(os.path.join(tally, "VG_100K", "img_1.jpg"))
    with pytest.raises(DataError, match="TallyQA image of .*test.json item 1 not found: tried .*VG_100K/img_1.jpg"):
        load_questions("tallyqa", tally)
    with pytest.raises(DataError, match="annotation file not found: .*train.json"):
        load_questions("tallyqa", tally, LoadOptions(split="train"))
    with pytest.raises(DataError, match="does not exist"):
        load_questions("vstar", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="expected exactly one \\*train\\*.json"):
        load_questions("infovqa", benchmark_data["infovqa"], LoadOptions(split="train"))


def test_tallyqa_subsets(benchmark_data):
    complex_ = load_questions("tallyqa", benchmark_data["tallyqa"])
    simple = load_questions("tallyqa", benchmark_data["tallyqa"], LoadOptions(subset="simple"))
    everything = load_questions("tallyqa", benchmark_data["tallyqa"], LoadOptions(subset="all"))
    assert [q.id for q in complex_] == ["501", "502", "504", "505"]
    assert [q.id for q in simple] == ["500", "503"] and len(everything) == 6
    assert {q.category for q in complex_} == {"complex"} and complex_[0].answer == "1"
    with pytest.raises(DataError, match="choose one of"):
        load_questions("tallyqa", benchmark_data["tallyqa"], LoadOptions(subset="hard"))


def test_infovqa_val_has_answer_lists_and_test_has_none(benchmark_data):
    val = load_questions("infovqa", benchmark_data["infovqa"])
    test = load_questions("infovqa", benchmark_data["infovqa"], LoadOptions(split="test"))
    assert val[0].answer == ["seed 200", "200"] and val[0].category == ["non-extractive"]  # every answer type
    assert val[0].meta["questionId"] == 65000
    assert [q.answer for q in test] == [None] * 4 and test[0].id == "65100"


def test_mvbench_videos_and_frame_folders(benchmark_data):
    qs = load_questions("mvbench", benchmark_data["mvbench"],
                        LoadOptions(subset="action_sequence,Episodic Reasoning"))
    assert [q.category for q in qs] == ["Action Sequence"] * 2 + ["Episodic Reasoning"] * 2
    video_q, frames_q = qs[0], qs[2]
    assert video_q.video.path.endswith("star/Charades_v1_480/clip0.mp4") and video_q.video.num_frames == 16
    assert video_q.answer == "B" and video_q.meta["bound"] == [0.5, 2.0]
    assert video_q.meta["frame_sampling"] == "get_index"
    assert (video_q.video.sampling, video_q.video.bound) == ("segment_centres", (0.5, 2.0))
    # TVQA frame folder (20 files, 00001.jpg..00020.jpg) at 3 fps with bound [1 s, 5 s]: MVBench's read_frame takes
    # frames 3..15 by their 1-based file numbers, segment centres of 12/16 frames each
    names = [os.path.basename(p) for p in frames_q.video.frame_paths]
    expected = segment_centre_indices(3, 20, 16, (1.0, 5.0), first_index=1)
    assert names == [f"{i:05d}.jpg" for i in expected] and names[0] == "00003.jpg" and names[-1] == "00014.jpg"
    assert frames_q.answer == "C"
    with pytest.raises(DataError, match="json/action_prediction.json"):
        load_questions("mvbench", benchmark_data["mvbench"])  # all 20 tasks expected unless --subset
    with pytest.raises(DataError, match="unknown MVBench task 'dancing'"):
        load_questions("mvbench", benchmark_data["mvbench"], LoadOptions(subset="dancing"))


@pytest.mark.parametrize("decoder", ["pyav", "default"])
def test_mvbench_video_frames_are_segment_centres_within_the_bound(tmp_path, monkeypatch, decoder):
    """clip0.mp4: 40 frames at 16 fps, frame i coloured with red = 4 i; bound [0.5 s, 2.0 s] = frames 8..32."""
    if decoder == "pyav":
        monkeypatch.setitem(__import__("sys").modules, "decord", None)
    root = make_mvbench(str(tmp_path / "mv"), n_per_task=1)
    q = load_questions("mvbench", root, LoadOptions(subset="action_sequence", video_frames=8))[0]
    frames = q.video.load_frames()
    # red = 4 i and blue = 255 - 4 i, both shifted alike by the codec's colour conversion: average them
    decoded = [round((f.getpixel((10, 10))[0] + 255 - f.getpixel((10, 10))[2]) / 8) for f in frames]
    assert decoded == segment_centre_indices(16.0, 39, 8, (0.5, 2.0)) == [9, 12, 15, 18, 21, 24, 27, 30]


@pytest.mark.parametrize("benchmark", ["vstar", "tallyqa", "infovqa", "mvbench"])
def test_pixel_reasoner_parquet(tmp_path, benchmark):
    path = make_pixel_reasoner_parquet(str(tmp_path / f"{benchmark}.parquet"), benchmark, n=3)
    qs = load_questions(benchmark, str(tmp_path))  # a directory with one parquet works too
    assert [q.id for q in qs] == [f"{benchmark}-{i}" for i in range(3)]
    if benchmark == "vstar":
        assert qs[1].question == "What is the color of the sign?"
        assert qs[1].choices == ["red", "blue", "green", "white"] and qs[1].answer == "B"
        assert os.path.isfile(qs[1].images[0].path)
    elif benchmark == "mvbench":
        assert isinstance(qs[0].video, VideoSource) and len(qs[0].video.frame_paths) == 16 and not qs[0].images
        assert qs[0].choices == ["Walk", "Run", "Sit"]
    elif benchmark == "infovqa":
        assert qs[2].answer == ["title 2"] and qs[2].choices is None
    else:
        assert qs[2].answer == "2"
    os.rename(os.path.join(tmp_path, f"{benchmark}_images"), os.path.join(tmp_path, "moved"))
    with pytest.raises(DataError, match=f"image of {path} row 0 not found: tried "):
        load_questions(benchmark, path)


def test_embedded_choices_formats():
    parsed = split_embedded_choices("<image>\nWhat animal?\nchoices:\nA: Lion  \nB: Sheep\n\nPlease reason step by step.")
    assert (parsed.stem, parsed.choices, parsed.trailer) == ("What animal?", ["Lion", "Sheep"], "Please reason step by step.")
    parsed = split_embedded_choices("What color?\n(A) rubber\n(B) cotton\nAnswer with the option's letter.")
    assert parsed.choices == ["rubber", "cotton"] and parsed.trailer == "Answer with the option's letter."
    assert split_embedded_choices("How many dogs?").choices is None


def test_option_shuffling_is_seeded_per_question_and_remaps_the_answer(benchmark_data):
    qs = load_questions("vstar", benchmark_data["vstar"])
    shown = [order_choices(q, 0) for q in qs]
    again = [order_choices(q, 0) for q in reversed(qs)][::-1]
    assert [q.choices for q in shown] == [q.choices for q in again]  # independent of order and of other questions
    for original, q in zip(qs, shown):
        assert sorted(q.choices) == sorted(original.choices)
        assert q.choices[ord(q.answer) - 65] == original.choices[0]  # the correct option, wherever it went
        assert q.meta["permutation"] and q.meta["original_answer"] == "A"
    assert {q.answer for q in shown} != {"A"}  # the correct option is not always first any more
    assert [q.choices for q in (order_choices(q, 1) for q in qs)] != [q.choices for q in shown]
    kept = [order_choices(q, None) for q in qs]
    assert [q.choices for q in kept] == [q.choices for q in qs] and {q.answer for q in kept} == {"A"}


def test_sorted_options_are_one_order_for_every_question(benchmark_data):
    qs = load_questions("vstar", benchmark_data["vstar"])
    for original, q in zip(qs, (order_choices(q, None, sort=True) for q in qs)):
        assert q.choices == sorted(original.choices)
        assert q.choices[ord(q.answer) - 65] == original.choices[0]
        assert q.meta["option_order"] == "sorted"
    rows = [{"choices": q.choices, "meta": q.meta} for q in (order_choices(q, None, sort=True) for q in qs)]
    assert scored_option_order(rows) == "sorted"  # what metrics.json records, not "shuffled"
    with pytest.raises(ConfigError, match="--sort_options and --shuffle_options"):
        RunConfig(model="m", benchmark="vstar", data="d", out="o", shuffle_options=0, sort_options=True)


def test_unmappable_multiple_choice_answer_is_an_error(benchmark_data):
    q = load_questions("vstar", benchmark_data["vstar"])[0]
    q.answer = "purple"
    with pytest.raises(DataError, match="vstar question 0: answer 'purple' is neither an option letter"):
        order_choices(q, 0)


def test_bad_json_names_file_and_line(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / "test.json").write_text('[{"image": "a.jpg", ')
    with pytest.raises(DataError, match="test.json: not valid JSON"):
        load_questions("tallyqa", str(root))
    (root / "test.json").write_text(json.dumps([{"image": "a.jpg", "question": "?", "answer": 1}]))
    with pytest.raises(DataError, match="test.json item 0: missing field `issimple`"):
        load_questions("tallyqa", str(root))


def test_mvbench_gold_is_the_candidate_text_even_when_that_text_is_a_letter(tmp_path):
    root = make_mvbench(str(tmp_path / "mv"), n_per_task=1)
    path = os.path.join(root, "json", "action_sequence.json")
    items = json.load(open(path))
    items[0].update(candidates=["B", "A", "C"], answer="A")
    json.dump(items, open(path, "w"))
    q = order_choices(load_questions("mvbench", root, LoadOptions(subset="action_sequence"))[0], None)
    assert q.answer == "B" and q.choices == ["B", "A", "C"]  # option B's text is "A"

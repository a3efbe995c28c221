"""`pixel-reasoner run-op` and `view` behave per their contract on both profiles, images and videos."""
import json
import os
import re
import subprocess
import sys

import pytest
from PIL import Image

from pixel_reasoner.cli import main
from pixel_reasoner.episode import Episode
from pixel_reasoner.testing.media import frame_color, save_scene, write_video
from pixel_reasoner.trajectory import Trajectory, trajectory_from_episode, write_trajectories

BOX = re.compile(r"class='box[ ']")  # a drawn crop box (not the `boxed` answer mark)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def call(name, **arguments):
    return "I will look closer.\n<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    return {"image": save_scene(str(root / "scene.jpg"), 1200, 900, seed=3),
            "image2": save_scene(str(root / "second.png"), 400, 300, seed=4),
            "video": write_video(str(root / "clip.mp4"), num_frames=48, width=96, height=64)}


def run_op(capsys, *args):
    code = main(["run-op", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def check_contract(result):
    assert set(result) == {"kind", "message", "images", "answer"}
    assert result["kind"] in ("observation", "answer", "error")
    assert isinstance(result["message"], str) and isinstance(result["images"], list)


@pytest.mark.parametrize("profile, tool, box, text", [
    ("released", "crop_image_normalized", [0.2, 0.2, 0.5, 0.6], r"^\nHere is the cropped image \(Image Size: (\d+)x(\d+)\):$"),
    ("qwen", "crop_image", [100, 100, 400, 380], r"^Here is the cropped image \(image 2, (\d+)x(\d+) pixels\):$"),
])
def test_a_valid_crop_is_an_observation_with_the_image_written(capsys, tmp_path, media, profile, tool, box, text):
    code, result, _ = run_op(capsys, "--profile", profile, "--image", media["image"], "--out", str(tmp_path),
                             "--text", call(tool, bbox_2d=box, target_image=1))
    assert code == 0
    check_contract(result)
    assert result["kind"] == "observation" and result["answer"] is None
    w, h = map(int, re.match(text, result["message"]).groups())
    assert result["images"] == [str(tmp_path / "image_2.png")]
    with Image.open(result["images"][0]) as im:
        assert im.size == (w, h) and im.format == "PNG"


@pytest.mark.parametrize("profile, tool, prefix", [("released", "crop_image_normalized", "\nExecution error:\n"),
                                                   ("qwen", "crop_image", "Error: ")])
@pytest.mark.parametrize("arguments, fragment", [
    ({"bbox_2d": [0.5, 0.5, 0.1, 0.1], "target_image": 1}, "degenerate"),
    ({"bbox_2d": [0.1, 0.1, 0.5, 0.5], "target_image": 7}, "out of range"),
    ({"bbox_2d": [0.1, 0.1, 0.5, 0.5]}, "missing required argument"),
])
def test_an_invalid_call_is_a_recoverable_error_not_a_failure(capsys, tmp_path, media, profile, tool, prefix,
                                                              arguments, fragment):
    code, result, _ = run_op(capsys, "--profile", profile, "--image", media["image"], "--out", str(tmp_path),
                             "--text", call(tool, **arguments))
    assert code == 0
    check_contract(result)
    assert result["kind"] == "error" and result["images"] == [] and result["answer"] is None
    assert result["message"].startswith(prefix) and fragment in result["message"]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("text, fragment", [
    ("<tool_call>{not json</tool_call>", "not valid JSON"),
    (call("zoom_in", bbox_2d=[0, 0, 1, 1], target_image=1), "Unknown tool `zoom_in`"),
    (call("select_frames", target_frames=[1]), "works on a video"),
])
def test_malformed_and_misdirected_calls(capsys, media, text, fragment):
    code, result, _ = run_op(capsys, "--profile", "released", "--image", media["image"], "--text", text)
    assert code == 0 and result["kind"] == "error" and fragment in result["message"]


def test_a_final_answer_and_a_turn_without_one(capsys, media):
    code, result, _ = run_op(capsys, "--profile", "qwen", "--image", media["image"], "--text", "It is \\boxed{B}.")
    assert code == 0 and result == {"kind": "answer", "message": "final answer: B", "images": [], "answer": "B"}
    code, result, _ = run_op(capsys, "--profile", "qwen", "--image", media["image"], "--text", "I am not sure.")
    assert result["kind"] == "answer" and result["answer"] is None and "neither" in result["message"]


@pytest.mark.parametrize("profile", ["released", "qwen"])
def test_select_frames_on_a_video(capsys, tmp_path, media, profile):
    code, result, _ = run_op(capsys, "--profile", profile, "--video", media["video"], "--out", str(tmp_path),
                             "--text", call("select_frames", target_frames=[16, 1]))
    assert code == 0 and result["kind"] == "observation"
    assert result["images"] == [str(tmp_path / "image_1.png"), str(tmp_path / "image_2.png")]
    with Image.open(result["images"][0]) as last, Image.open(result["images"][1]) as first:
        assert abs(last.convert("RGB").getpixel((40, 30))[0] - frame_color(47)[0]) <= 6
        assert abs(first.convert("RGB").getpixel((40, 30))[0] - frame_color(0)[0]) <= 6
    code, result, _ = run_op(capsys, "--profile", profile, "--video", media["video"],
                             "--text", call("select_frames", target_frames=[3, 3]))
    assert result["kind"] == "error" and "more than once" in result["message"]


def test_frames_shown_as_images_are_numbered_first_and_can_be_cropped(capsys, tmp_path, media):
    code, result, _ = run_op(capsys, "--profile", "released", "--video", media["video"], "--frames-as-images",
                             "--out", str(tmp_path), "--text", call("select_frames", target_frames=[2, 3]))
    assert result["kind"] == "observation" and "Numbered 17 to 18" in result["message"]
    code, result, _ = run_op(capsys, "--profile", "released", "--video", media["video"], "--frames-as-images",
                             "--out", str(tmp_path), "--text",
                             call("crop_image_normalized", bbox_2d=[0, 0, 0.9, 0.9], target_image=16))
    assert result["kind"] == "observation" and result["images"] == [str(tmp_path / "image_17.png")]


def test_several_images_and_details(capsys, media):
    code, result, _ = run_op(capsys, "--profile", "qwen", "--image", media["image"], "--image", media["image2"],
                             "--details", "--text", call("crop_image", bbox_2d=[10, 10, 200, 150], target_image=2))
    details = result.pop("details")
    assert result["kind"] == "observation"
    assert [i["source_size"] for i in details["inputs"]] == [[1200, 900], [400, 300]]
    assert details["operation"]["produced"] == [3] and details["operation"]["error"] is None
    x1, y1, x2, y2 = details["operation"]["source_boxes"][0]
    sw, sh = details["inputs"][1]["shown_size"]
    assert abs(x2 - 200 * 400 / sw) <= 2 and abs(y2 - 150 * 300 / sh) <= 2


def test_model_text_from_stdin_and_file(capsys, tmp_path, media, monkeypatch):
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("so \\boxed{7}"))
    assert run_op(capsys, "--profile", "released", "--image", media["image"], "--text", "-")[1]["answer"] == "7"
    path = tmp_path / "turn.txt"
    path.write_text(call("crop_image_normalized", bbox_2d=[0, 0, 1, 1], target_image=1))
    assert run_op(capsys, "--profile", "released", "--image", media["image"],
                  "--text-file", str(path))[1]["kind"] == "observation"


@pytest.mark.parametrize("args, fragment", [
    (["--profile", "released", "--image", "missing.jpg", "--text", "x"], "--image not found: missing.jpg"),
    (["--profile", "nope", "--image", "{image}", "--text", "x"], "unknown protocol profile 'nope'; choose one of"),
    (["--profile", "released", "--text", "x"], "give at least one --image"),
    (["--profile", "released", "--video", "missing.mp4", "--text", "x"], "--video not found"),
    (["--profile", "released", "--image", "{image}", "--budgets", "huge", "--text", "x"], "pixel-budget preset"),
    (["--profile", "released", "--image", "{image}", "--max-operations", "0", "--text", "x"], "max_operations"),
    (["--profile", "released", "--image", "{image}", "--operation-module", "no_such_mod", "--text", "x"],
     "cannot import visual operation module"),
    (["--profile", "released", "--image", "{not_an_image}", "--text", "x"], "cannot decode"),
])
def test_bad_usage_is_a_clear_error_with_exit_status_2(capsys, tmp_path, media, args, fragment):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    args = [a.format(image=media["image"], not_an_image=str(bad)) for a in args]
    code, _, err = run_op(capsys, *args)
    assert code == 2
    assert err.startswith("pixel-reasoner run-op: error: ") and fragment in err


def test_console_entry_prints_only_the_json_object(media):
    proc = subprocess.run([sys.executable, "-m", "pixel_reasoner.cli", "run-op", "--profile", "released", "--image",
                           media["image"], "--text", call("crop_image_normalized", bbox_2d=[2, 2, 1, 1],
                                                          target_image=1)],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kind"] == "error"  # stdout is exactly one JSON object
    proc = subprocess.run([sys.executable, "-m", "pixel_reasoner.cli", "run-op", "--profile", "released"],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO), timeout=120)
    assert proc.returncode == 2 and "--text" in proc.stderr and proc.stdout == ""


# ---------------------------------------------------------------------------------------------------------------
# view
@pytest.fixture(scope="module")
def trajectories(tmp_path_factory, media):
    """Two episodes through the engine: a crop of a crop; an erroneous (masked) call then a crop."""
    root = str(tmp_path_factory.mktemp("traj"))
    out = []
    ep = Episode("released", images=[media["image"]])
    prompt = ep.prompt_messages("What is written on the sign?")
    ep.step(call("crop_image_normalized", bbox_2d=[0.5, 0.5, 0.9, 0.9], target_image=1))
    ep.step(call("crop_image_normalized", bbox_2d=[0.2, 0.2, 0.6, 0.6], target_image=2))
    ep.step("It says \\boxed{STOP}")
    out.append(trajectory_from_episode(ep, prompt, "zoom-twice", root, question="What is written on the sign?",
                                       answer="STOP"))
    ep = Episode("qwen", images=[media["image"]])
    prompt = ep.prompt_messages("How many cars?", ["1", "2", "3"])
    ep.step(call("crop_image", bbox_2d=[0.1, 0.1, 0.5, 0.5], target_image=1))  # fractions to a pixel tool: error
    w, h = ep.input_images()[0].size
    ep.step(call("crop_image", bbox_2d=[0, 0, w // 2, h // 2], target_image=1))
    ep.step("\\boxed{A}")
    out.append(trajectory_from_episode(ep, prompt, "recover", root, question="How many cars?", choices=["1", "2", "3"],
                                       answer="B", masked_turns=[0]))
    path = os.path.join(root, "trajectories.jsonl")
    write_trajectories(path, out)
    return path


def test_view_is_self_contained_with_boxes_and_marked_turns(capsys, tmp_path, trajectories):
    out = str(tmp_path / "report.html")
    assert main(["view", trajectories, "--out", out]) == 0
    assert "wrote" in capsys.readouterr().out
    page = open(out, encoding="utf-8").read()
    sources = re.findall(r"src='([^']*)'", page)
    assert sources and all(s.startswith("data:image/jpeg;base64,") for s in sources)  # nothing external
    assert len(sources) == 5  # zoom-twice: input, crop, crop of the crop; recover: input, crop
    assert "http://" not in page and "https://" not in page
    articles = page.split("<article")[1:]
    zoom, recover = articles
    # crop #2 on #1; crop #3 on #1 (dashed: a crop of a crop) and on its parent #2
    assert len(BOX.findall(zoom)) == 3 and zoom.count("class='box indirect") == 1
    assert zoom.count("<span>#2</span>") == 1 and zoom.count("<span>#3</span>") == 2
    assert "masked · loss: false" not in zoom and "✓" in zoom
    assert recover.count("masked · loss: false") == 1 and "turn assistant masked" in recover
    assert "turn obs error" in recover and "looks like fractions" in recover and "call failed" in recover
    assert "✗" in recover  # answered A, truth B
    assert "data-flags='error masked wrong ops'" in recover


def test_view_replays_released_sft_records_to_draw_their_boxes(capsys, tmp_path, media):
    record = {"qid": "vstar-1", "answer": "B", "message_list": [
        {"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]},
        {"role": "user", "content": [{"type": "image", "image": media["image"]}, {"type": "text", "text": "Q?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": call("crop_image_normalized",
                                                                        bbox_2d=[0.2, 0.2, 0.4, 0.4], target_image=1)}]},
        {"role": "user", "content": [{"type": "text", "text": "\nHere is the cropped image (Image Size: 28x28):"},
                                     {"type": "image", "image": media["image2"]}]},
        {"role": "assistant", "content": [{"type": "text", "text": "\\boxed{B}"}]}]}
    path = tmp_path / "released.json"
    path.write_text(json.dumps([record]))
    out = str(tmp_path / "released.html")
    assert main(["view", str(path), "--out", out]) == 0
    page = open(out, encoding="utf-8").read()
    assert "boxes replayed" in page and len(BOX.findall(page)) == 1
    # 10% padding around [0.2, 0.4]: the box spans 10%..50% of the source
    assert "left:10.000%;top:10.000%;width:40.000%;height:40.000%" in page
    assert main(["view", str(path), "--out", out, "--no-replay"]) == 0
    assert not BOX.findall(open(out, encoding="utf-8").read())


def test_view_reports_what_it_leaves_out(capsys, tmp_path, trajectories):
    broken = tmp_path / "mixed.jsonl"
    rows = open(trajectories, encoding="utf-8").read().splitlines()
    broken.write_text(rows[0] + "\n{not json\n" + rows[1] + "\n")
    out = str(tmp_path / "mixed.html")
    assert main(["view", str(broken), "--out", out, "--limit", "1", "--root", os.path.dirname(trajectories)]) == 0
    captured = capsys.readouterr()
    assert "row 1 (line 2): not valid JSON" in captured.err and "1 of 2 trajectories" in captured.out
    page = open(out, encoding="utf-8").read()
    assert "showing the first 1 of 2 trajectories" in page and "row 1 (line 2)" in page
    assert main(["view", str(tmp_path / "nope.jsonl"), "--out", out]) == 2


TOY_ROW_FORMAT = '''
from pixel_reasoner.trajectory import Trajectory
from pixel_reasoner.viewer import RowFormat, register_row_format

register_row_format(RowFormat(
    "toy", matches=lambda row: "chat" in row,
    to_trajectory=lambda row: Trajectory(id=f"toy {row['n']}", messages=row["chat"], answer=row.get("gold"))))
'''


def test_view_reads_a_row_format_registered_by_a_module(capsys, tmp_path, monkeypatch):
    """A package's own rows (not schema-v1) are shown through the format its module registers; bad rows are notes."""
    (tmp_path / "toy_rows_for_view.py").write_text(TOY_ROW_FORMAT)
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = tmp_path / "toy.jsonl"
    rows.write_text(json.dumps({"n": 1, "gold": "7", "chat": [{"role": "user", "content": "How many?"},
                                                              {"role": "assistant", "content": "\\boxed{7}"}]})
                    + "\n" + json.dumps({"chat": []}) + "\n")
    out = str(tmp_path / "toy.html")
    assert main(["view", str(rows), "--out", out]) == 0  # without the module: not schema-v1, every row skipped
    assert "0 of 0 trajectories" in capsys.readouterr().out
    assert main(["view", str(rows), "--out", out, "--row-format-module", "toy_rows_for_view"]) == 0
    captured = capsys.readouterr()
    assert "1 of 1 trajectories" in captured.out and "row 1: not a toy row (KeyError: 'n')" in captured.err
    page = open(out, encoding="utf-8").read()
    assert page.count("<article") == 1 and "toy 1" in page and "✓" in page  # answered 7, truth 7
    assert main(["view", str(rows), "--out", out, "--row-format-module", "no_such_module_here"]) == 2
    assert "--row-format-module no_such_module_here: cannot import it" in capsys.readouterr().err


def test_demo_writes_valid_trajectories_and_a_view(capsys, tmp_path):
    out = str(tmp_path / "demo")
    assert main(["demo", "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "view.html" in printed and "wrong" not in printed
    rows = [Trajectory.from_dict(json.loads(line)) for line in open(os.path.join(out, "trajectories.jsonl"))]
    assert {(t.profile, t.trajectory_type) for t in rows} == {(p, k) for p in ("released", "qwen") for k in (
        "zoom_twice", "recover_from_error", "select_frames_then_crop")}
    for t in rows:
        assert t.validate(root=out) == [], t.id
        assert t.meta["score"] == 1.0
        ops = [r["tool_name"] for r in t.meta["episode"]["stats"]["operations"]]
        if t.trajectory_type == "recover_from_error":
            assert [m.get("loss") for m in t.assistant_turns()] == [False, None, None]
            assert t.meta["episode"]["stats"]["num_operation_errors"] == 1
        if t.trajectory_type == "select_frames_then_crop":
            assert ops[0] == "select_frames"
    page = open(os.path.join(out, "view.html"), encoding="utf-8").read()
    assert page.count("<article") == 6 and len(BOX.findall(page)) >= 8
    for t in rows:
        for path in t.image_paths():
            assert path.endswith((".png", ".jpg")) and os.path.exists(os.path.join(out, path))

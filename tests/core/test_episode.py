"""The episode engine on both profiles: successful operations, every failure as an observation, limits."""
import json

import pytest

from pixel_reasoner.config import EpisodeLimits, PixelBudget, PixelBudgets
from pixel_reasoner.episode import Episode, EpisodeConfig
from pixel_reasoner.media import DecodedImageCache, ImageFile, VideoSource
from pixel_reasoner.testing.media import frame_color, save_scene, scene_image, write_video


def call(name, **arguments):
    return f"Let me look closer.\n<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def test_released_crop_uses_normalized_box_with_padding_and_official_text():
    ep = Episode("released", images=[scene_image(1000, 800)])
    r = ep.step(call("crop_image_normalized", bbox_2d=[0.1, 0.1, 0.5, 0.5], target_image=1))
    assert not r.done and r.observation.error is None
    w, h = r.observation.images[0].size
    assert r.observation.role == "user"
    assert r.observation.text == f"\nHere is the cropped image (Image Size: {w}x{h}):"
    assert ep.stats.operations[-1].source_boxes == [[0, 0, 600, 480]]  # 10% padding each side, clamped
    assert (w % 28, h % 28) == (0, 0)


def test_crop_of_a_crop_is_cut_from_the_source_at_full_resolution():
    ep = Episode("released", images=[scene_image(1000, 800)])
    ep.step(call("crop_image_normalized", bbox_2d=[0.1, 0.1, 0.5, 0.5], target_image=1))
    r = ep.step(call("crop_image_normalized", bbox_2d=[0.0, 0.0, 0.5, 0.5], target_image=2))
    assert r.observation.error is None
    assert ep.stats.operations[-1].source_boxes == [[0, 0, 360, 288]]
    assert ep.stats.operations[-1].source_images == [1]


def test_qwen_profile_takes_pixels_of_the_resized_image_and_answers_in_tool_turns():
    budgets = PixelBudgets(original=PixelBudget.tokens(4, 256))
    ep = Episode("qwen", images=[scene_image(1000, 800)], config=EpisodeConfig(budgets=budgets))
    shown_w, shown_h = ep.input_images()[0].size
    assert shown_w * shown_h <= 256 * 28 * 28
    r = ep.step(call("crop_image", bbox_2d=[0, 0, shown_w // 2, shown_h // 2], target_image=1))
    assert r.observation.role == "tool" and r.observation.error is None
    x1, y1, x2, y2 = ep.stats.operations[-1].source_boxes[0]
    assert (x1, y1) == (0, 0) and abs(x2 - 500) <= 3 and abs(y2 - 400) <= 3
    assert "<tool_response>" in r.observation.continuation()


@pytest.mark.parametrize("text, fragment", [
    ("<tool_call>{not json}</tool_call>", "not valid JSON"),
    ("<tool_call>\n</tool_call>", "empty"),
    (call("zoom", bbox_2d=[0, 0, 1, 1]), "Unknown tool `zoom`"),
    (call("crop_image_normalized", bbox_2d=[0, 0, 1, 1]), "missing required argument"),
    (call("crop_image_normalized", bbox_2d=[0, 0, 1], target_image=1), "list of 4 numbers"),
    (call("crop_image_normalized", bbox_2d=[0.5, 0.5, 0.2, 0.9], target_image=1), "degenerate"),
    (call("crop_image_normalized", bbox_2d=[10, 20, 300, 400], target_image=1), "pixel coordinates were given"),
    (call("crop_image_normalized", bbox_2d=[0.1, 0.1, 0.5, 0.5], target_image=3), "out of range"),
    (call("crop_image_normalized", bbox_2d=[0.1, 0.1, 0.5, 0.5], target_image="1"), "must be an integer"),
    (call("select_frames", target_frames=[1, 2]), "works on a video"),
])
def test_every_failure_is_a_recoverable_observation(text, fragment):
    ep = Episode("released", images=[scene_image(640, 480)])
    r = ep.step(text)
    assert not r.done and r.observation.error is not None
    assert fragment in r.observation.error
    assert r.observation.text.startswith("\nExecution error:\n")
    assert ep.stats.num_operations == 1 and ep.stats.num_operation_errors == 1
    r = ep.step("Never mind. \\boxed{C}")
    assert r.done and r.answer == "C" and r.termination == "answer"


def test_min_size_applies_to_source_pixels_after_padding():
    ep = Episode("released", images=[scene_image(100, 100)])
    r = ep.step(call("crop_image_normalized", bbox_2d=[0.4, 0.4, 0.42, 0.42], target_image=1))
    assert "too small: 22x22" in r.observation.error  # 0.02 + 2 x 10% padding of 100 px
    ep = Episode("qwen", images=[scene_image(1000, 800)])
    r = ep.step(call("crop_image", bbox_2d=[10, 10, 20, 20], target_image=1))
    assert "too small" in r.observation.error


def test_operation_limit_warns_once_then_ends():
    ep = Episode("released", images=[scene_image(640, 480)],
                 config=EpisodeConfig(limits=EpisodeLimits(max_operations=2, max_turns=10)))
    crop = call("crop_image_normalized", bbox_2d=[0.2, 0.2, 0.6, 0.6], target_image=1)
    assert ep.step(crop).observation.error is None
    assert ep.step(crop).observation.error is None
    r = ep.step(crop)
    assert not r.done and "all 2 visual operations" in r.observation.error
    r = ep.step(crop)
    assert r.done and r.termination == "max_operations"
    assert ep.stats.num_operations == 4


def test_turn_limit_and_truncation_end_the_episode():
    ep = Episode("released", images=[scene_image(640, 480)], config=EpisodeConfig(limits=EpisodeLimits(max_turns=1)))
    r = ep.step(call("crop_image_normalized", bbox_2d=[0.2, 0.2, 0.6, 0.6], target_image=1))
    assert r.done and r.termination == "max_turns"
    ep = Episode("released", images=[scene_image(640, 480)])
    r = ep.step("I think the answer is", truncated=True)
    assert r.done and r.termination == "truncated" and r.answer is None


def test_select_frames_on_a_video_file(tmp_path):
    path = write_video(str(tmp_path / "clip.mp4"), num_frames=64)
    ep = Episode("released", video=VideoSource(path=path))
    r = ep.step(call("select_frames", target_frames=[1, 16, 8]))
    assert r.observation.error is None
    assert len(r.observation.images) == 3
    assert "Numbered 1 to 3" in r.observation.text
    expected = [0, 63, 29]  # uniform 16 of 64: round(linspace(0, 63, 16))
    for img, idx in zip(r.observation.images, expected):
        red = img.convert("RGB").getpixel((img.width // 2, img.height // 2))[0]
        assert abs(red - frame_color(idx)[0]) <= 6
    r = ep.step(call("crop_image_normalized", bbox_2d=[0.0, 0.0, 1.0, 1.0], target_image=2))
    assert r.observation.error is None


@pytest.mark.parametrize("frames, fragment", [([], "non-empty"), (list(range(1, 10)), "at most 8"),
                                              ([0, 3], "out of range"), ([17], "out of range"),
                                              ([2, 2], "more than once"), ([1.5], "must be an integer")])
def test_select_frames_validation(tmp_path, frames, fragment):
    frame_paths = [save_scene(str(tmp_path / f"f{i}.png"), 64, 48, seed=i) for i in range(16)]
    ep = Episode("released", video=VideoSource(frame_paths=frame_paths))
    r = ep.step(call("select_frames", target_frames=frames))
    assert fragment in (r.observation.error or "")


def test_video_frames_presented_as_images_are_addressable_by_crop(tmp_path):
    video = VideoSource(frame_paths=[save_scene(str(tmp_path / f"f{i}.png"), 96, 64, seed=i) for i in range(16)])
    ep = Episode("released", images=video.frames(), video=video,
                 config=EpisodeConfig(limits=EpisodeLimits(max_images=32)))
    r = ep.step(call("crop_image_normalized", bbox_2d=[0.0, 0.0, 0.8, 0.8], target_image=16))
    assert r.observation.error is None
    r = ep.step(call("select_frames", target_frames=[1, 2]))
    assert "Numbered 18 to 19" in r.observation.text


def test_image_limit_is_an_observation(tmp_path):
    video = VideoSource(frame_paths=[save_scene(str(tmp_path / f"f{i}.png"), 64, 48, seed=i) for i in range(16)])
    ep = Episode("released", video=video, config=EpisodeConfig(limits=EpisodeLimits(max_images=4)))
    r = ep.step(call("select_frames", target_frames=[1, 2, 3, 4, 5]))
    assert "limit of 4" in r.observation.error


def test_samples_of_one_query_decode_the_source_once(tmp_path):
    path = save_scene(str(tmp_path / "big.jpg"), 1200, 900)
    cache = DecodedImageCache(max_bytes=64 << 20)
    for _ in range(8):
        ep = Episode("released", images=[ImageFile(path)], cache=cache)
        ep.input_images()
        ep.step(call("crop_image_normalized", bbox_2d=[0.2, 0.2, 0.4, 0.4], target_image=1))
    assert cache.stats()["misses"] == 2  # the decoded source and its resized view, once each
    assert cache.stats()["hits"] >= 14


def test_cache_never_exceeds_its_byte_budget(tmp_path):
    cache = DecodedImageCache(max_bytes=3 * 640 * 480 * 3)
    for i in range(10):
        ImageFile(save_scene(str(tmp_path / f"{i}.png"), 640, 480, seed=i)).load(cache)
        assert cache.nbytes <= cache.max_bytes
    assert cache.stats()["evictions"] >= 7


def test_prompt_messages_render_the_profile_question_and_tools():
    ep = Episode("released", images=[scene_image(320, 240)])
    msgs = ep.prompt_messages("What animal is on the sign?", ["Lion", "Sheep"])
    text = msgs[1]["content"][-1]["text"]
    assert text.startswith("What animal is on the sign?\nchoices:\nA: Lion\nB: Sheep\n\nGuidelines:")
    assert msgs[1]["content"][0]["type"] == "image"


@pytest.mark.parametrize("text", [
    call("crop_image_normalized", bbox_2d="<|image_pad|>", target_image=1),  # echoed as the argument's value
    call("<|vision_start|><|image_pad|><|vision_end|>", target_image=1),  # echoed as the unknown tool name
    call("crop_image_normalized", bbox_2d=[0.1, 0.1, 0.5, 0.5], target_image=1, **{"<|im_end|>": 1}),  # as a key
    '<tool_call>\n{"name": "crop_image_normalized", "<|video_pad|>": {}}\n</tool_call>',  # by the parser
])
def test_special_tokens_echoed_from_the_model_stay_text(text):
    """An error observation quotes what the model wrote; a quoted `<|image_pad|>` must not become a real image
    placeholder (N+1 placeholders for N images crash the rollout) nor `<|im_end|>` a turn boundary."""
    ep = Episode("released", images=[scene_image(400, 300)])
    r = ep.step(text)
    assert r.observation.error is not None
    assert not any(token in r.observation.text for token in ep.profile.reserved_tokens), r.observation.text
    continuation = r.observation.continuation()
    assert continuation.count("<|im_start|>") == 2 and continuation.count("<|im_end|>") == 2  # only the turns
    assert "<|image_pad|>" not in continuation and "<|vision_start|>" not in continuation
    assert "image_pad" in r.observation.text or "im_end" in r.observation.text or "video_pad" in r.observation.text


def test_special_tokens_in_success_fields_stay_text():
    from pixel_reasoner.episode import Episode as E

    assert E._observation_text("t", "got {value}", {"value": "<|image_pad|>"}, ("<|image_pad|>",)) \
        == "got <\\|image_pad|>"

"""The Python ChatML renderer, the Jinja template and the real processor agree; released strings are exact."""
import json

import pytest
import torch
from PIL import Image

from pixel_reasoner.protocol import get_profile
from pixel_reasoner.protocol.chatml import render_continuation, render_messages

IMG = Image.new("RGB", (112, 84), (255, 0, 0))


def conversations():
    call = '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0.1, 0.2, 0.3, 0.4], "target_image": 1}}\n</tool_call>'
    yield [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    yield [{"role": "system", "content": "Sys."},
           {"role": "user", "content": [{"type": "image", "image": IMG}, {"type": "text", "text": "Q?"}]},
           {"role": "assistant", "content": "look " + call, "loss": False},
           {"role": "user", "content": [{"type": "text", "text": "\nExecution error:\nbad\n"}]},
           {"role": "assistant", "content": call},
           {"role": "user", "content": [{"type": "text", "text": "\nHere is the cropped image (Image Size: 56x56):"},
                                        {"type": "image", "image": IMG}]},
           {"role": "assistant", "content": "\\boxed{B}"}]
    yield [{"role": "user", "content": [{"type": "video", "video": [IMG] * 4}, {"type": "text", "text": "V?"}]},
           {"role": "assistant", "content": "ok", "tool_calls": [{"type": "function", "function": {
               "name": "select_frames", "arguments": {"target_frames": [1, 2]}}}]},
           {"role": "tool", "content": [{"type": "text", "text": "a"}, {"type": "image", "image": IMG}]},
           {"role": "tool", "content": "b"},
           {"role": "assistant", "content": "done"}]


@pytest.mark.parametrize("profile", ["released", "qwen"])
@pytest.mark.parametrize("index", range(3))
def test_python_renderer_equals_chat_template(tiny_processor, profile, index):
    msgs = list(conversations())[index]
    tools = get_profile(profile).tool_schemas()
    for t in (None, tools):
        for gen in (False, True):
            assert render_messages(msgs, t, gen) == tiny_processor.apply_chat_template(
                msgs, tools=t, tokenize=False, add_generation_prompt=gen)


def test_continuation_appends_exactly_what_a_full_render_would():
    msgs = list(conversations())[1]
    head = render_messages(msgs[:3], None)[: -len("<|im_end|>\n")]
    assert head + render_continuation([msgs[3]]) == render_messages(msgs[:4], None, add_generation_prompt=True)


def test_assistant_masks_train_only_flagged_assistant_text_and_never_image_tokens(tiny_processor):
    msgs = list(conversations())[1]
    out = tiny_processor.apply_chat_template(msgs, tools=get_profile("released").tool_schemas(), tokenize=True,
                                             return_dict=True, return_tensors="pt", return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"][0], torch.as_tensor(out["assistant_masks"])[0]
    assert mask.sum() > 0, "regression: all-zero assistant mask when images are present"
    trained = tiny_processor.tokenizer.decode(ids[mask.bool()])
    assert "look" not in trained and "Execution error" not in trained
    assert trained.count("<|im_end|>") == 2 and trained.endswith("\\boxed{B}<|im_end|>")
    assert not ((ids == tiny_processor.image_token_id) & mask.bool()).any()


def test_released_profile_reproduces_the_official_tools_block():
    text = render_messages([{"role": "user", "content": "x"}], get_profile("released").tool_schemas())
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\nYou may call one or more")
    crop = json.loads(text.split("<tools>\n")[1].split("\n")[0])
    assert crop["function"]["name"] == "crop_image_normalized"
    assert crop["function"]["parameters"]["properties"]["target_image"]["description"] == (
        "The index of the image to crop. Index from 1 to the number of images. Choose 1 to operate on original image.")
    assert '{"type": "function", "function": {"name": "select_frames", "description": "Select frames from a video."' in text
    assert text.endswith('<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
                         '<|im_end|>\n<|im_start|>user\nx<|im_end|>\n')


def test_profiles_declare_their_coordinate_systems():
    released = get_profile("released").binding("crop_image_normalized")
    qwen = get_profile("qwen").binding("crop_image")
    assert released.settings.coordinates == "normalized" and released.settings.padding == 0.1
    assert qwen.settings.coordinates == "pixels" and qwen.settings.padding == 0.0


@pytest.mark.parametrize("content", ["", None, "Let me look closer."])
def test_tool_calls_render_exactly_as_qwen2_5s_own_template(tiny_processor, content):
    """OpenAI-style `tool_calls` (e.g. an API that returns only tool calls) against Qwen2.5's real template, which
    TRL ships: without content the first call follows the header's newline directly, with no extra "\\n"."""
    import pathlib

    import trl

    qwen2_5 = (pathlib.Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text()
    calls = [{"type": "function", "function": {"name": "crop_image", "arguments": {"bbox_2d": [1, 2, 30, 40],
                                                                                  "target_image": 1}}},
             {"type": "function", "function": {"name": "select_frames", "arguments": {"target_frames": [2, 5]}}}]
    msgs = [{"role": "system", "content": "Sys."}, {"role": "user", "content": "Q?"},
            {"role": "assistant", "content": content, "tool_calls": calls},
            {"role": "tool", "content": "done"}, {"role": "assistant", "content": "\\boxed{A}"}]
    tools = get_profile("qwen").tool_schemas()
    expected = tiny_processor.tokenizer.apply_chat_template(msgs, chat_template=qwen2_5, tools=tools, tokenize=False)
    assert ("<|im_start|>assistant\n<tool_call>\n" in expected) == (not content)
    assert render_messages(msgs, tools) == expected
    assert tiny_processor.apply_chat_template(msgs, tools=tools, tokenize=False) == expected

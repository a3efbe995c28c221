"""ChatML rendering of conversations exactly as the Qwen2.5-VL chat template (with Hermes tools) renders them.

Why a Python renderer next to the Jinja template (`templates/qwen2_5_vl_tools.jinja`): the token-level agents
(RL rollout, eval) must append an observation turn to a conversation whose tokens already exist, which a
whole-conversation template cannot do. The tests render many conversations both ways and require equality.

Message form (plain dicts, as in HF/TRL): {"role": ..., "content": str | [parts]}; parts are {"type": "text",
"text": ...}, {"type": "image", ...} or {"type": "video", ...}. Assistant content is the model's raw text
(tool calls included as `<tool_call>` blocks); OpenAI-style `tool_calls` are rendered in Qwen2.5's format.
"""
from __future__ import annotations

import json
from typing import Iterable, Sequence

IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
VIDEO_PLACEHOLDER = "<|vision_start|><|video_pad|><|vision_end|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"
DEFAULT_SYSTEM = "You are a helpful assistant."
# Qwen2.5-VL's special tokens (`special=True` in its tokenizer). Text that quotes one of them would tokenize into
# the token itself: an image placeholder without an image, or a turn boundary.
QWEN2_5_VL_SPECIAL_TOKENS = ("<|endoftext|>", IM_START, IM_END, "<|object_ref_start|>", "<|object_ref_end|>",
                             "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                             "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")


def neutralize(text: str, reserved: Sequence[str]) -> str:
    """`text` with every occurrence of a reserved token broken by a backslash after its first character
    (`<|image_pad|>` -> `<\\|image_pad|>`), so it tokenizes as plain text and still reads as what was written."""
    changed = True
    while changed:
        changed = False
        for token in reserved:
            if token in text:
                text = text.replace(token, token[0] + "\\" + token[1:])
                changed = True
    return text


def tools_block(schemas: Sequence[dict]) -> str:
    """The Hermes `# Tools` section appended to the system prompt (Qwen2.5 / Qwen-Agent "nous" format)."""
    lines = "".join("\n" + json.dumps(s, ensure_ascii=False) for s in schemas)
    return ("\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>" + lines +
            "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
            "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
            "<args-json-object>}\n</tool_call>")


def render_content(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    out = []
    for part in content:
        kind = part.get("type")
        if kind == "image" or (kind is None and ("image" in part or "image_url" in part)):
            out.append(IMAGE_PLACEHOLDER)
        elif kind == "video" or (kind is None and "video" in part):
            out.append(VIDEO_PLACEHOLDER)
        elif kind == "text" or "text" in part:
            out.append(part.get("text") or "")
    return "".join(out)


def render_tool_calls(tool_calls: Iterable[dict]) -> str:
    out = []
    for call in tool_calls:
        fn = call.get("function", call)
        args = fn.get("arguments", {})
        args_text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        out.append('\n<tool_call>\n{"name": "' + fn["name"] + '", "arguments": ' + args_text + "}\n</tool_call>")
    return "".join(out)


def assistant_text(content, tool_calls: Iterable[dict] | None) -> str:
    """An assistant turn's text with its OpenAI-style `tool_calls` in Qwen2.5's format: `content`, then each call
    as "\n<tool_call>...</tool_call>"; without content the first call's newline is dropped, since the header's
    own "\n" precedes it (Qwen2.5's template writes "assistant" + ("\n" + content if content) + calls)."""
    body = render_content(content)
    calls = render_tool_calls(tool_calls or [])
    return body + calls if body else calls.removeprefix("\n")


def render_system(messages: Sequence[dict], tools: Sequence[dict] | None) -> str:
    first_is_system = bool(messages) and messages[0]["role"] == "system"
    system = render_content(messages[0]["content"]) if first_is_system else DEFAULT_SYSTEM
    return IM_START + "system\n" + system + (tools_block(tools) if tools else "") + IM_END + "\n"


def render_message(message: dict, previous_role: str | None = None, next_role: str | None = None) -> str:
    """One message; consecutive `tool` messages share one user turn (Hermes), so neighbours' roles matter."""
    role = message["role"]
    if role == "tool":
        head = IM_START + "user" if previous_role != "tool" else ""
        tail = IM_END + "\n" if next_role != "tool" else ""
        return head + "\n<tool_response>\n" + render_content(message["content"]) + "\n</tool_response>" + tail
    if role == "assistant":
        body = assistant_text(message.get("content"), message.get("tool_calls"))
    else:
        body = render_content(message.get("content"))
    return IM_START + role + "\n" + body + IM_END + "\n"


def render_messages(messages: Sequence[dict], tools: Sequence[dict] | None = None,
                    add_generation_prompt: bool = False) -> str:
    """The whole conversation, identical to `processor.apply_chat_template(messages, tools=tools)`."""
    out = [render_system(messages, tools)]
    start = 1 if messages and messages[0]["role"] == "system" else 0
    for i in range(start, len(messages)):
        prev = messages[i - 1]["role"] if i > 0 else None
        nxt = messages[i + 1]["role"] if i + 1 < len(messages) else None
        out.append(render_message(messages[i], prev, nxt))
    if add_generation_prompt:
        out.append(IM_START + "assistant\n")
    return "".join(out)


def render_continuation(observation_messages: Sequence[dict], close_assistant_turn: bool = True) -> str:
    """Text that follows an assistant turn's generated text: its `<|im_end|>` (unless the engine already produced
    it as a token), the observation turn(s), and the next assistant header."""
    out = [IM_END + "\n" if close_assistant_turn else "\n"]
    for i, m in enumerate(observation_messages):
        prev = observation_messages[i - 1]["role"] if i > 0 else "assistant"
        nxt = observation_messages[i + 1]["role"] if i + 1 < len(observation_messages) else None
        out.append(render_message(m, prev, nxt))
    out.append(IM_START + "assistant\n")
    return "".join(out)

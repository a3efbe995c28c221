"""The API client against a real OpenAI-compatible HTTP server on loopback: retries (429/5xx/timeouts, not other
4xx), fatal errors, the response cache, concurrency bound, usage accounting, and the key never written."""
import asyncio
import json
import logging
import os
import threading
import time

import pytest

from data_synthesis.client import (Accounting, ChatClient, DryRunRecorder, DryRunStop, FatalRequestError,
                                   RequestFailed, request_messages)
from data_synthesis.config import EndpointConfig, SamplingConfig
from data_synthesis.store import JsonlStore, ResponseCache
from pixel_reasoner.testing.media import scene_image
from pixel_reasoner.testing.openai_server import ScriptedServer


def make_client(server, tmp_path, **endpoint):
    settings = dict(base_url=server.base_url, model="scripted", api_key_env="SYNTH_TEST_KEY", max_retries=3,
                    backoff_initial_s=0.01, backoff_max_s=0.05, timeout_s=5, price_input_per_1m=2.0,
                    price_output_per_1m=8.0)
    config = EndpointConfig(**{**settings, **endpoint})
    accounting = Accounting(log=JsonlStore(str(tmp_path / "usage.jsonl")))
    return ChatClient("expert", config, ResponseCache(str(tmp_path / "cache")), accounting), accounting


def ask(client, text="hello", **sampling):
    request = client.build_request([{"role": "user", "content": text}], SamplingConfig(**sampling))
    return asyncio.run(client.chat(request, "expert", "item-1"))


def test_rate_limits_and_server_errors_are_retried_then_cached(tmp_path, api_key):
    with ScriptedServer(lambda body: ["answer"]) as server:
        client, accounting = make_client(server, tmp_path)
        server.fail_next(429, headers={"Retry-After": "0"})
        server.fail_next(500)
        server.fail_next(503)
        result = ask(client)
        assert result.texts == ["answer"] and not result.cached and len(server.requests) == 4
        usage = accounting.usage("expert", "expert")
        assert (usage.retries, usage.requests, usage.cache_hits) == (3, 1, 0)
        assert usage.cost_usd == pytest.approx((result.prompt_tokens * 2 + result.completion_tokens * 8) / 1e6)
        again = ask(client)
        assert again.cached and again.texts == ["answer"] and len(server.requests) == 4
        assert usage.cache_hits == 1
        ask(client, temperature=0.1)  # another sampling parameter is another request
        assert len(server.requests) == 5


def test_client_errors_are_not_retried_and_exhausted_retries_give_a_reason(tmp_path, api_key):
    with ScriptedServer(lambda body: ["answer"]) as server:
        client, accounting = make_client(server, tmp_path)
        server.fail_next(400)
        with pytest.raises(RequestFailed) as e:
            ask(client)
        assert e.value.reason == "http_400" and len(server.requests) == 1
        server.fail_next(500, times=4)
        with pytest.raises(RequestFailed) as e:
            ask(client, text="other")
        assert e.value.reason == "http_500_after_retries" and len(server.requests) == 5
        assert accounting.usage("expert", "expert").failures == 2


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_and_model_errors_stop_the_run(tmp_path, api_key, status):
    with ScriptedServer(lambda body: ["answer"]) as server:
        client, _ = make_client(server, tmp_path)
        server.fail_next(status)
        with pytest.raises(FatalRequestError, match=f"HTTP {status}.*SYNTH_TEST_KEY"):
            ask(client)
        assert len(server.requests) == 1


def test_timeouts_are_retried(tmp_path, api_key):
    with ScriptedServer(lambda body: ["slow answer"], delay_s=1.5) as server:
        client, accounting = make_client(server, tmp_path, timeout_s=0.5)
        client.config.max_retries = 1
        with pytest.raises(RequestFailed) as e:
            ask(client)
        assert e.value.reason == "timeout_after_retries" and len(server.requests) == 2
        assert accounting.usage("expert", "expert").retries == 1


def test_concurrency_is_bounded_per_endpoint(tmp_path, api_key):
    in_flight, peak, lock = [0], [0], threading.Lock()

    def script(body):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.1)
        with lock:
            in_flight[0] -= 1
        return ["ok"]

    with ScriptedServer(script) as server:
        client, _ = make_client(server, tmp_path, max_concurrency=2)

        async def many():
            requests = [client.build_request([{"role": "user", "content": f"q{i}"}], SamplingConfig())
                        for i in range(6)]
            return await asyncio.gather(*(client.chat(r, "expert", f"i{k}") for k, r in enumerate(requests)))

        results = asyncio.run(many())
        assert len(results) == 6 and peak[0] == 2


def test_n_samples_stop_strings_and_usage_log(tmp_path, api_key):
    with ScriptedServer(lambda body: ["first </tool_call> cut", "second"]) as server:
        client, _ = make_client(server, tmp_path)
        request = client.build_request([{"role": "user", "content": "x"}], SamplingConfig(seed=3), n=2,
                                       extra_stop=["</tool_call>"])
        assert request["stop"] == ["</tool_call>"] and request["seed"] == 3 and request["n"] == 2
        result = asyncio.run(client.chat(request, "text_only", "item-9"))
        assert result.texts == ["first ", "second"]
        client.accounting.log.close()
        (entry,) = [json.loads(line) for line in open(tmp_path / "usage.jsonl")]
        assert entry["item_id"] == "item-9" and entry["stage"] == "text_only" and entry["completion_tokens"] > 0


def test_the_api_key_is_sent_but_never_written_or_logged(tmp_path, api_key, caplog):
    with ScriptedServer(lambda body: ["ok"]) as server:
        client, accounting = make_client(server, tmp_path)
        server.fail_next(500)
        with caplog.at_level(logging.DEBUG):
            ask(client)
        accounting.log.close()
    assert server.authorizations == [f"Bearer {api_key}"] * 2
    assert api_key not in caplog.text
    for folder, _, files in os.walk(tmp_path):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                assert api_key.encode() not in f.read(), name


def test_a_missing_key_variable_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("SYNTH_TEST_KEY", raising=False)
    with ScriptedServer(lambda body: ["ok"]) as server:
        client, _ = make_client(server, tmp_path)
        with pytest.raises(Exception, match="environment variable SYNTH_TEST_KEY .* is not set"):
            ask(client)
        assert not server.requests


def test_dry_run_records_requests_without_image_bytes(tmp_path, api_key):
    with ScriptedServer(lambda body: ["ok"]) as server:
        client, _ = make_client(server, tmp_path)
        client.dry_run = DryRunRecorder(str(tmp_path / "dry.jsonl"))
        image = scene_image(2000, 1000)
        messages = request_messages([{"role": "user", "content": [{"type": "text", "text": "look"},
                                                                  {"type": "image", "image": image}]}],
                                    max_pixels=500_000, detail="high")
        with pytest.raises(DryRunStop):
            asyncio.run(client.chat(client.build_request(messages, SamplingConfig()), "expert", "i"))
        client.dry_run.close()
        assert not server.requests
        text = (tmp_path / "dry.jsonl").read_text()
        assert "base64" not in text and "<image/png 1000x500," in text and client.dry_run.images == 1


def test_an_answer_of_only_tool_calls_becomes_the_text_the_model_would_write():
    """An API that returns `tool_calls` and no content: the turn's text starts with the call, as Qwen2.5 renders it
    after the header's newline (a leading "\\n" would merge with that newline into one trained token)."""
    from openai.types.chat import ChatCompletion

    from data_synthesis.client import _result

    call = {"id": "c1", "type": "function",
            "function": {"name": "crop_image", "arguments": "{\"bbox_2d\": [1, 2, 30, 40], \"target_image\": 1}"}}
    response = ChatCompletion.model_validate({
        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
                     "message": {"role": "assistant", "content": None, "tool_calls": [call]}},
                    {"index": 1, "finish_reason": "tool_calls",
                     "message": {"role": "assistant", "content": "Zooming in.", "tool_calls": [call]}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    rendered = '<tool_call>\n{"name": "crop_image", "arguments": {"bbox_2d": [1, 2, 30, 40], "target_image": 1}}' \
               '\n</tool_call>'
    assert _result(response).texts == [rendered, "Zooming in.\n" + rendered]

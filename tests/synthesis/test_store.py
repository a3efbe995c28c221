"""Crash-safe JSONL outputs and the response cache."""
import json
import os

import pytest

from data_synthesis.store import JsonlStore, ResponseCache, read_jsonl, request_key


def test_appends_are_durable_and_keys_are_skipped_on_reopen(tmp_path):
    path = str(tmp_path / "out.jsonl")
    with JsonlStore(path, "id") as store:
        store.append({"id": "a", "x": 1})
        store.append({"id": "b", "x": 2})
        with pytest.raises(ValueError, match="'a' is already written"):
            store.append({"id": "a", "x": 3})
    with JsonlStore(path, "id") as store:
        assert "a" in store and "b" in store and "c" not in store
        store.append({"id": "c"})
    assert [r["id"] for r in read_jsonl(path)] == ["a", "b", "c"]


@pytest.mark.parametrize("torn", ['{"id": "c", "x": ', '{"id": "c"}', "garbage\n"])
def test_a_torn_last_line_is_discarded_and_the_next_append_is_clean(tmp_path, torn):
    path = str(tmp_path / "out.jsonl")
    with open(path, "w") as f:
        f.write(json.dumps({"id": "a"}) + "\n" + json.dumps({"id": "b"}) + "\n" + torn)
    with JsonlStore(path, "id") as store:
        assert store.keys == {"a", "b"} and store.repaired == len(torn)
        store.append({"id": "c", "ok": True})
    assert [json.loads(line) for line in open(path)] == [{"id": "a"}, {"id": "b"}, {"id": "c", "ok": True}]


def test_corruption_before_the_last_line_is_an_error_naming_the_file(tmp_path):
    path = str(tmp_path / "out.jsonl")
    with open(path, "w") as f:
        f.write('{"id": "a"}\nbroken\n{"id": "b"}\n')
    with pytest.raises(ValueError, match="out.jsonl line 2: not valid JSON"):
        JsonlStore(path, "id")


def test_cache_keys_cover_the_whole_request_and_entries_are_atomic(tmp_path):
    request = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}], "temperature": 0.7, "n": 1}
    changed_image = json.loads(json.dumps(request))
    changed_image["messages"][0]["content"][0]["image_url"]["url"] = "data:image/png;base64,AAAB"
    keys = {request_key(request), request_key(dict(request, temperature=0.8)), request_key(dict(request, model="o")),
            request_key(changed_image), request_key(dict(request, extra_body={"x": 1}))}
    assert len(keys) == 5
    assert request_key(dict(reversed(list(request.items())))) == request_key(request)  # order-independent
    cache = ResponseCache(str(tmp_path / "cache"))
    key = request_key(request)
    assert cache.get(key) is None
    cache.put(key, {"texts": ["hi"]})
    assert cache.get(key) == {"texts": ["hi"]}
    files = [f for _, _, fs in os.walk(tmp_path / "cache") for f in fs]
    assert files == [key + ".json"]  # no temp files left behind

"""An async client for any OpenAI-compatible chat endpoint, built for long paid runs.

- bounded concurrency per endpoint (`max_concurrency` requests in flight);
- retries with exponential backoff and jitter on 408/429 (honouring `Retry-After`), 5xx, timeouts and dropped
  connections; other 4xx are the request's fault and are not retried; 401/403/404 (key, permission, model name)
  stop the run, since every later request would fail the same way;
- an on-disk response cache keyed by the full request, so a rerun (or a resumed run) pays nothing twice;
- token and cost accounting, live requests only, appended to `usage.jsonl` as they finish (a killed run's spend
  is still counted);
- dry runs: a request that is not cached is recorded (images shown by size, not bytes) instead of sent.

The API key is read from the environment variable named in the config, passed to the `openai` client and
nowhere else: it is not logged, cached or written.
"""
from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import math
import os
import random
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from PIL import Image

from data_synthesis.config import EndpointConfig, SamplingConfig
from data_synthesis.store import JsonlStore, ResponseCache, request_key
from pixel_reasoner.errors import ConfigError
from pixel_reasoner.media import RESAMPLE
from pixel_reasoner.protocol.chatml import assistant_text
from pixel_reasoner.trajectory import to_openai_messages

logger = logging.getLogger(__name__)

RETRY_STATUS = (408, 429)  # plus every 5xx
FATAL_STATUS = (401, 403, 404)


class RequestFailed(Exception):
    """A request failed: refused (a 4xx: the item is rejected with `reason`) or, `transient`, the server stayed
    unavailable through every retry (the item is left for a rerun)."""

    def __init__(self, reason: str, detail: str = "", transient: bool = False):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.transient = transient


class FatalRequestError(RuntimeError):
    """The endpoint refuses every request (bad key, no permission, unknown model): the run stops."""


class DryRunStop(Exception):
    """Raised in a dry run at the first request that would be sent; the item stops there."""


@dataclass
class ChatResult:
    texts: list[str]
    finish_reasons: list[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False


@dataclass
class Usage:
    requests: int = 0  # sent and answered
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: "Usage") -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class Accounting:
    """Usage of this process, per endpoint and stage; live responses are also appended to a log file."""

    log: JsonlStore | None = None
    by_key: dict[tuple[str, str], Usage] = field(default_factory=dict)

    def usage(self, endpoint: str, stage: str) -> Usage:
        return self.by_key.setdefault((endpoint, stage), Usage())

    def total(self) -> Usage:
        out = Usage()
        for u in self.by_key.values():
            out.add(u)
        return out


def request_messages(messages: Sequence[dict], max_pixels: int, detail: str) -> list[dict]:
    """HF-style messages with PIL images -> OpenAI messages with PNG data URIs, images downscaled to `max_pixels`."""
    def shrink(part: dict) -> dict:
        if part.get("type") == "image" and isinstance(part.get("image"), Image.Image):
            return dict(part, image=_downscale(part["image"], max_pixels))
        if part.get("type") == "video" and isinstance(part.get("video"), list):
            return dict(part, video=[_downscale(f, max_pixels) for f in part["video"]])
        return part

    shrunk = [{"role": m["role"], "content": [shrink(p) for p in m["content"]]
               if isinstance(m.get("content"), list) else m.get("content")} for m in messages]
    out = to_openai_messages(shrunk)
    for m in out:
        for part in m["content"] if isinstance(m["content"], list) else []:
            if part.get("type") == "image_url":
                part["image_url"]["detail"] = detail
    return out


def _downscale(image: Image.Image, max_pixels: int) -> Image.Image:
    if image.width * image.height <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (image.width * image.height))
    return image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))), RESAMPLE)


_DATA_URI = re.compile(r"^data:(image/[a-z]+);base64,(.*)$", re.S)


def summarize_request(request: dict) -> dict:
    """The request with each image's base64 replaced by its type, size and byte count (for dry runs, logs)."""
    def shorten(url: str) -> str:
        m = _DATA_URI.match(url)
        if not m:
            return url
        raw = base64.b64decode(m.group(2))
        with Image.open(io.BytesIO(raw)) as im:
            return f"<{m.group(1)} {im.width}x{im.height}, {len(raw) / 1024:.1f} KiB>"

    out = json.loads(json.dumps(request))
    for m in out.get("messages", []):
        for part in m["content"] if isinstance(m.get("content"), list) else []:
            if part.get("type") == "image_url":
                part["image_url"]["url"] = shorten(part["image_url"]["url"])
    return out


class DryRunRecorder:
    """Collects the requests a dry run would send, written to a JSONL file, the first few also shown in full."""

    def __init__(self, path: str, show: int = 2):
        self.path = path
        self.show = show
        self.count: dict[str, int] = {}
        self.images = 0
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._file = open(path, "w", encoding="utf-8")

    def record(self, endpoint: str, stage: str, item_id: str, request: dict) -> None:
        summary = summarize_request(request)
        self.images += sum(1 for m in summary["messages"] if isinstance(m.get("content"), list)
                           for p in m["content"] if p.get("type") == "image_url")
        entry = {"endpoint": endpoint, "stage": stage, "item_id": item_id, "request": summary}
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()
        if sum(self.count.values()) < self.show:
            logger.info("dry run: request %s/%s for %s:\n%s", endpoint, stage, item_id,
                        json.dumps(summary, indent=2, ensure_ascii=False))
        self.count[f"{endpoint}/{stage}"] = self.count.get(f"{endpoint}/{stage}", 0) + 1

    def close(self) -> None:
        self._file.close()


class ChatClient:
    """One endpoint. `chat` returns the choices' texts (tool calls rendered as `<tool_call>` text)."""

    def __init__(self, name: str, config: EndpointConfig, cache: ResponseCache, accounting: Accounting,
                 dry_run: DryRunRecorder | None = None):
        self.name = name
        self.config = config
        self.cache = cache
        self.accounting = accounting
        self.dry_run = dry_run
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._client: Any = None

    def _api(self) -> Any:
        if self._client is None:
            from openai import AsyncOpenAI

            env = self.config.api_key_env
            if env and not os.environ.get(env):
                raise ConfigError(f"endpoint {self.name!r}: the environment variable {env} (its API key) is not set; "
                                  "export it, or set api_key_env: '' for a server that needs no key")
            key = os.environ[env] if env else "EMPTY"
            self._client = AsyncOpenAI(base_url=self.config.base_url, api_key=key, max_retries=0,
                                       timeout=self.config.timeout_s)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connections (inside the event loop that opened them)."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    def build_request(self, messages: list[dict], sampling: SamplingConfig, n: int = 1,
                      extra_stop: Sequence[str] = ()) -> dict:
        request: dict[str, Any] = {"model": self.config.model, "messages": messages,
                                   "temperature": sampling.temperature, "top_p": sampling.top_p,
                                   "max_tokens": sampling.max_turn_tokens, "n": n}
        stop = list(sampling.stop) + [s for s in extra_stop if s not in sampling.stop]
        if stop:
            request["stop"] = stop
        if sampling.seed is not None:
            request["seed"] = sampling.seed
        if sampling.extra_body:
            request["extra_body"] = sampling.extra_body
        return request

    async def chat(self, request: dict, stage: str, item_id: str) -> ChatResult:
        key = request_key(request)
        usage = self.accounting.usage(self.name, stage)
        cached = self.cache.get(key)
        if cached is not None:
            usage.cache_hits += 1
            return ChatResult(cached["texts"], cached["finish_reasons"], cached["prompt_tokens"],
                              cached["completion_tokens"], cached=True)
        if self.dry_run is not None:
            self.dry_run.record(self.name, stage, item_id, request)
            raise DryRunStop()
        async with self._semaphore:
            result = await self._send_with_retries(request, usage, stage, item_id)
        # cached first: a crash between the two writes never makes a rerun pay again (at worst the log misses it)
        self.cache.put(key, {"texts": result.texts, "finish_reasons": result.finish_reasons,
                             "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens})
        cost = (result.prompt_tokens * self.config.price_input_per_1m
                + result.completion_tokens * self.config.price_output_per_1m) / 1e6
        usage.requests += 1
        usage.prompt_tokens += result.prompt_tokens
        usage.completion_tokens += result.completion_tokens
        usage.cost_usd += cost
        if self.accounting.log is not None:
            self.accounting.log.append({"time": time.time(), "endpoint": self.name, "model": self.config.model,
                                        "stage": stage, "item_id": item_id, "prompt_tokens": result.prompt_tokens,
                                        "completion_tokens": result.completion_tokens, "cost_usd": cost})
        return result

    async def _send_with_retries(self, request: dict, usage: Usage, stage: str, item_id: str) -> ChatResult:
        import openai

        body = {k: v for k, v in request.items() if k != "extra_body"}
        extra = request.get("extra_body")
        cfg = self.config
        for attempt in range(cfg.max_retries + 1):
            retry_after = 0.0
            try:
                response = await self._api().chat.completions.create(**body, extra_body=extra)
                return _result(response)
            except openai.APIStatusError as e:
                status = e.status_code
                if status in FATAL_STATUS:
                    raise FatalRequestError(f"endpoint {self.name!r} ({cfg.base_url}, model {cfg.model!r}) answered "
                                            f"HTTP {status}: {_error_text(e)}. Check the model name, the key in "
                                            f"${cfg.api_key_env} and its permissions.") from None
                if status not in RETRY_STATUS and status < 500:
                    usage.failures += 1
                    raise RequestFailed(f"http_{status}", _error_text(e)) from None
                reason = f"http_{status}"
                retry_after = _retry_after(e)
            except (openai.APITimeoutError, openai.APIConnectionError) as e:
                reason = "timeout" if isinstance(e, openai.APITimeoutError) else "connection_error"
            if attempt == cfg.max_retries:
                usage.failures += 1
                raise RequestFailed(f"{reason}_after_retries", f"gave up after {cfg.max_retries} retries",
                                    transient=True)
            delay = min(cfg.backoff_max_s, cfg.backoff_initial_s * 2 ** attempt)
            delay = max(retry_after, random.uniform(delay / 2, delay))
            usage.retries += 1
            logger.info("%s/%s %s: %s, retry %d/%d in %.1fs", self.name, stage, item_id, reason, attempt + 1,
                        cfg.max_retries, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")


def _result(response: Any) -> ChatResult:
    texts, reasons = [], []
    for choice in response.choices:
        message = choice.message
        calls = [tc.model_dump() for tc in getattr(message, "tool_calls", None) or []]
        texts.append(assistant_text(message.content, calls))
        reasons.append(choice.finish_reason or "")
    usage = response.usage
    return ChatResult(texts, reasons, getattr(usage, "prompt_tokens", 0) or 0,
                      getattr(usage, "completion_tokens", 0) or 0)


def _retry_after(error: Any) -> float:
    try:
        return max(0.0, float(error.response.headers.get("retry-after", 0)))
    except (AttributeError, TypeError, ValueError):
        return 0.0


def _error_text(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body["error"] if isinstance(body.get("error"), dict) else body
        if inner.get("message"):
            return str(inner["message"])[:300]
    return str(error)[:300]

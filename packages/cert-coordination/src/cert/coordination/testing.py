"""A fake Anthropic Messages API on 127.0.0.1 for tests, benchmarks and the offline demo.

This is the one honest mock of the package: the real API is outside this machine, so the real SDK
(``anthropic.AsyncAnthropic(base_url=server.url)``) talks to a small threaded HTTP server that
speaks the wire format of ``POST /v1/messages``: success bodies with ``content`` blocks (text or
``tool_use``) and ``usage``, and error bodies ``{"type": "error", "error": {"type", "message"}}``
with the real status codes (400, 401, 429, 500, 529...) and headers (``retry-after``,
``anthropic-ratelimit-*``, ``request-id``).

Replies come from a scripted FIFO queue (:meth:`FakeAnthropicServer.enqueue`) and, once it is
empty, from an optional ``responder`` callable that builds a reply from the request body. Every
request is recorded (arrival time, headers with the API key masked, JSON body) and each reply can
carry an injected latency, so tests can assert what the client really sent and when.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class FakeReply:
    """One scripted HTTP reply: status, JSON body, headers and a delay before answering."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server saw it (``x-api-key`` masked)."""

    at: float
    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]


def _message_id() -> str:
    return "msg_fake_" + uuid.uuid4().hex[:20]


def text_reply(
    text: str,
    *,
    input_tokens: int = 10,
    output_tokens: int | None = None,
    model: str = "claude-sonnet-5",
    headers: Mapping[str, str] | None = None,
    delay_s: float = 0.0,
    stop_reason: str = "end_turn",
) -> FakeReply:
    """A 200 reply with one text block; ``output_tokens`` defaults to the word count."""
    body = {
        "id": _message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": len(text.split()) if output_tokens is None else output_tokens,
        },
    }
    return FakeReply(200, body, dict(headers or {}), delay_s)


def tool_use_reply(
    name: str,
    tool_input: Any,
    *,
    input_tokens: int = 10,
    output_tokens: int = 20,
    model: str = "claude-sonnet-5",
    delay_s: float = 0.0,
) -> FakeReply:
    """A 200 reply whose content is one ``tool_use`` block (``tool_input`` may be malformed)."""
    body = {
        "id": _message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            {
                "type": "tool_use",
                "id": "toolu_fake_" + uuid.uuid4().hex[:16],
                "name": name,
                "input": tool_input,
            }
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }
    return FakeReply(200, body, {}, delay_s)


def error_reply(
    status: int,
    message: str = "scripted error",
    *,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    delay_s: float = 0.0,
) -> FakeReply:
    """An error reply in the API's format; ``error_type`` defaults from the status code."""
    kind = error_type or _ERROR_TYPES.get(status, "api_error")
    body = {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_fake_" + uuid.uuid4().hex[:16],
    }
    return FakeReply(status, body, dict(headers or {}), delay_s)


Responder = Callable[[Mapping[str, Any]], FakeReply]


class FakeAnthropicServer:
    """Threaded HTTP server on 127.0.0.1 (port 0) that replays scripted Messages API replies.

    Use as a context manager; ``url`` is the ``base_url`` for the SDK. ``latency_s`` is added to
    every reply (on top of each reply's own ``delay_s``). ``token_counter`` (a request body to
    a token count) enables ``/v1/messages/count_tokens``; it is a test stand-in, not a tokenizer.
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        latency_s: float = 0.0,
        token_counter: Callable[[Mapping[str, Any]], int] | None = None,
    ) -> None:
        self.responder = responder
        self.token_counter = token_counter
        self.latency_s = latency_s
        self._queue: deque[FakeReply] = deque()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self.max_in_flight = 0
        self.disconnects = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeAnthropicServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-anthropic",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeAnthropicServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ script and records
    def enqueue(self, *replies: FakeReply | Iterable[FakeReply]) -> None:
        """Append replies (or iterables of replies) to the script, served in order."""
        with self._lock:
            for item in replies:
                if isinstance(item, FakeReply):
                    self._queue.append(item)
                else:
                    self._queue.extend(item)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self.max_in_flight = 0

    def _next_reply(self, body: Mapping[str, Any]) -> FakeReply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(body)
        return error_reply(400, "FakeAnthropicServer: no scripted reply left for this request")

    def _count_tokens_reply(self, body: Mapping[str, Any]) -> FakeReply:
        """``count_tokens``: ``token_counter(body)`` if set, else 404 like a server without it."""
        if self.token_counter is None:
            return error_reply(404, "FakeAnthropicServer: count_tokens is not enabled")
        return FakeReply(200, {"input_tokens": self.token_counter(body)})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                """Silence the default stderr access log."""

            def do_POST(self) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_unparsed": raw.decode("utf-8", "replace")}
                headers = {
                    k.lower(): ("***" if k.lower() in {"x-api-key", "authorization"} else v)
                    for k, v in self.headers.items()
                }
                with fake._lock:
                    fake._requests.append(RecordedRequest(arrived, self.path, headers, body))
                    fake._in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
                try:
                    route = self.path.split("?")[0]
                    if route == "/v1/messages/count_tokens":
                        reply = fake._count_tokens_reply(body)
                    elif route != "/v1/messages":
                        reply = error_reply(404, f"FakeAnthropicServer has no route {self.path}")
                    else:
                        reply = fake._next_reply(body)
                    delay = fake.latency_s + reply.delay_s
                    if delay > 0:
                        time.sleep(delay)
                    payload = json.dumps(reply.body).encode("utf-8")
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.send_header("request-id", "req_fake_" + uuid.uuid4().hex[:16])
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up (its timeout fired): what a real server sees too.
                    with fake._lock:
                        fake.disconnects += 1
                    self.close_connection = True
                finally:
                    with fake._lock:
                        fake._in_flight -= 1

        return Handler

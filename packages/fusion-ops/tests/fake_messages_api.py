"""A small fake of the Anthropic Messages API on 127.0.0.1 (port 0), for tests and benchmarks.

``POST /v1/messages`` answers from a script of :class:`Reply` (served in order), then with
``default``. Every request is recorded with its JSON body and the SDK's retry-count header, so a
test can tell an SDK retry (``x-stainless-retry-count`` > 0) from a second call by our code.
Loaded by path (tests have no package), see conftest.py and the benchmark.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    usage: dict[str, int] = field(default_factory=lambda: {"input_tokens": 11, "output_tokens": 7})
    text: str = "fine"
    delay_s: float = 0.0


@dataclass(frozen=True)
class Recorded:
    body: dict[str, Any]
    retry_count: int
    api_key: str | None  # x-api-key or the bearer token, whichever the SDK sent


class FakeMessagesAPI:
    """Context manager: ``with FakeMessagesAPI() as api: Anthropic(base_url=api.url)``."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self.requests: list[Recorded] = []
        self.max_in_flight = 0
        self._script: deque[Reply] = deque()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def __enter__(self) -> FakeMessagesAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next(self, body: dict[str, Any], headers: Any) -> Reply:
        with self._lock:
            self.requests.append(
                Recorded(
                    body=body,
                    retry_count=int(headers.get("x-stainless-retry-count") or 0),
                    api_key=headers.get("x-api-key")
                    or (headers.get("authorization") or "").removeprefix("Bearer ")
                    or None,
                )
            )
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return self._script.popleft() if self._script else self.default

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out as two writes: without this, Nagle + delayed ACK add 40 ms
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/messages":
                    self._send(404, {"type": "error", "error": {"type": "not_found_error"}}, {})
                    return
                reply = api._next(body, self.headers)
                try:
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    if reply.status == 200:
                        self._send(200, _message(body, reply), {})
                    else:
                        error = {
                            "type": _ERROR_TYPES.get(reply.status, "api_error"),
                            "message": f"scripted {reply.status}",
                        }
                        self._send(
                            reply.status,
                            {"type": "error", "error": error},
                            {"retry-after-ms": "5"},
                        )
                finally:
                    api._done()

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", "req_fake")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "unknown"),
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": dict(reply.usage),
    }

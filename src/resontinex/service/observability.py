"""What every request costs and what the service decided: request ids, HTTP, pipeline and process
metrics, and the body limit, in one plain ASGI middleware.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which re-wraps every request and
response in extra tasks and streams) so the plumbing stays cheap next to a gate that takes a
microsecond. The route label is the route's template (``/audit/proof/{index}``), or ``unmatched``,
so callers cannot create label values.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from cert.runtime.logging import correlation_id as cert_correlation_id
from fusion_ops.logs import correlation_id as fusion_correlation_id
from resontinex.service.problems import problem_response
from resontinex.trust.logs import correlation_id as trust_correlation_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServiceMetrics:
    """HTTP, pipeline and process metrics of the service, on the service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "resontinex_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "resontinex_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=registry,
        )
        # Gauge modes say how prometheus-client's multiprocess mode combines workers.
        self.in_flight = Gauge(
            "resontinex_http_requests_in_flight",
            "HTTP requests being served.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.decisions = Counter(
            "resontinex_pipeline_decisions_total",
            "Governed pipeline decisions (execute, review, defer, abort).",
            ["decision"],
            registry=registry,
        )
        self.backend_errors = Counter(
            "resontinex_pipeline_backend_errors_total",
            "Pipeline requests aborted because the generation backend failed.",
            registry=registry,
        )
        self.audit_entries = Gauge(  # set at each scrape; every worker sees the same log
            "resontinex_audit_log_entries",
            "Records in the decision audit log.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.adhoc = Counter(
            "resontinex_adhoc_trust_evaluations_total",
            "Ungoverned /trust/evaluate calculations by decision (anonymous callers; never alerted on).",
            ["decision"],
            registry=registry,
        )
        self.ready = Gauge(  # several workers: 1 once every live worker is ready
            "resontinex_ready",
            "1 once the pipeline is built and serving.",
            registry=registry,
            multiprocess_mode="livemin",
        )
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        # labels() builds and locks on every call; the label sets are few (routes x statuses)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request and its latency."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class _FreshRequestIds:
    """32 hex digits: a random prefix per process and a counter. Unique across workers and
    replicas like ``uuid4`` (ids need uniqueness, not secrecy), without reading the OS's random
    source on every request (3 % of a /trust/evaluate request's CPU in a profile under wrk)."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count()

    def __call__(self) -> str:
        if self._pid != os.getpid():  # a forked worker must not repeat its parent's ids
            self._pid, self._prefix = os.getpid(), secrets.token_hex(8)
            self._counter = itertools.count()
        return f"{self._prefix}{next(self._counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


fresh_request_id = _FreshRequestIds()


def request_id_of(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token, else a fresh one (never echo junk)."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return fresh_request_id()


_CORRELATION_VARS = (cert_correlation_id, trust_correlation_id, fusion_correlation_id)


@contextmanager
def correlation_scope(request_id: str) -> Iterator[None]:
    """Bind the request id as the correlation id of every member's log lines.

    Each member keeps its own ``ContextVar`` (members never import each other); the umbrella,
    which composes them, binds them all. The id was validated by :func:`request_id_of`.
    """
    tokens = [var.set(request_id) for var in _CORRELATION_VARS]
    try:
        yield
    finally:
        for var, token in zip(_CORRELATION_VARS, tokens, strict=True):
            var.reset(token)


class _BodyTooLargeError(Exception):
    pass


FastAnswer = Callable[[bytes], bytes | None]


class ServiceMiddleware:
    """Request id (header in, header out, correlation id of every log line), body limit, metrics,
    and fast JSON POST routes.

    A fast route (``fast_json_posts``: path -> answer) gets the raw JSON body of a POST to its
    path and returns the 200 JSON response body, or ``None`` to pass the request, body replayed,
    to the framework's route of the same path, which owns its schema and every error. It serves
    the hot calculation endpoint without the router, dependency solving and response machinery
    that cost several times the gate itself.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServiceMetrics,
        max_body_bytes: int,
        fast_json_posts: Mapping[str, FastAnswer] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.fast_json_posts = dict(fast_json_posts or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        declared = _content_length(scope)
        too_large = declared is not None and declared > self.max_body_bytes
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLargeError
            return message

        fast = self._fast_answer(scope)
        template = None
        began = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            with correlation_scope(request_id):
                if too_large or declared == -1:
                    await self._reject_size(scope, send_with_id, request_id, declared == -1)
                else:
                    try:
                        receive_rest: Receive | None = bounded_receive
                        if fast is not None:
                            receive_rest = await _answer_fast(fast, bounded_receive, send_with_id)
                        if receive_rest is None:
                            template = scope["path"]
                        else:
                            await self.app(scope, receive_rest, send_with_id)
                    except _BodyTooLargeError:
                        if started:
                            raise
                        await self._reject_size(scope, send_with_id, request_id, False)
        finally:
            self.metrics.in_flight.dec()
            if template is None:
                template = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - began)

    def _fast_answer(self, scope: Scope) -> FastAnswer | None:
        """The fast route of a POST with a JSON body, if its path has one."""
        if scope["method"] != "POST":
            return None
        answer = self.fast_json_posts.get(scope["path"])
        if answer is None:
            return None
        for name, value in scope.get("headers", ()):
            if name == b"content-type":
                return (
                    answer if value.split(b";")[0].strip().lower() == b"application/json" else None
                )
        return None

    async def _reject_size(
        self, scope: Scope, send: Send, request_id: str, malformed: bool
    ) -> None:
        if malformed:
            response = problem_response(
                400, "the Content-Length header is not a number", request_id=request_id
            )
        else:
            response = problem_response(
                413, f"request body over {self.max_body_bytes} bytes", request_id=request_id
            )
        await response(scope, _drained, send)


async def _answer_fast(answer: FastAnswer, receive: Receive, send: Send) -> Receive | None:
    """Read the body and let ``answer`` respond: ``None`` once it has, else a receive that
    replays what was read, so the framework sees the request exactly as sent."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    payload = answer(b"".join(chunks)) if messages[-1]["type"] == "http.request" else None
    if payload is None:
        replay = iter(messages)

        async def replayed() -> Message:
            message = next(replay, None)
            return message if message is not None else await receive()

        return replayed
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
    return None


def _content_length(scope: Scope) -> int | None:
    """The declared body length; -1 when the header is malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


async def _drained() -> Message:
    return {"type": "http.disconnect"}

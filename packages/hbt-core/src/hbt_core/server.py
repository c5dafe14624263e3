"""A minimal HTTP model endpoint on 127.0.0.1 (stdlib only) and the matching client.

``POST /v1/next_token`` with ``{"prompt": <latin-1 text>, "positions": n}`` answers
``{"model": name, "probs": [[256 floats] * n]}``; ``POST /v1/generate`` with
``{"prompt", "max_new_tokens", "seed"}`` answers ``{"model", "text"}``. The served model can be
swapped while running (``endpoint.model = other``), which is how monitoring is tested.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from hbt_core.errors import EndpointError, InvalidInputError
from hbt_core.models import FloatArray, LogitModel, TextModel

MAX_BODY = 1 << 20


class ModelEndpoint:
    """Serve a model over HTTP on a background thread; use as a context manager."""

    def __init__(
        self, model: LogitModel | TextModel, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.model = model
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    if not 0 < length <= MAX_BODY:
                        raise InvalidInputError(f"body length {length} out of range")
                    req = json.loads(self.rfile.read(length))
                    prompt = str(req["prompt"]).encode("latin-1")
                    model = endpoint.model
                    if self.path == "/v1/next_token" and isinstance(model, LogitModel):
                        probs = model.next_token_distributions(prompt, int(req["positions"]))
                        body = {"model": model.name, "probs": probs.tolist()}
                    elif self.path == "/v1/generate" and isinstance(model, TextModel):
                        text = model.generate(prompt, int(req["max_new_tokens"]), int(req["seed"]))
                        body = {"model": model.name, "text": text.decode("latin-1")}
                    else:
                        self.send_error(404, "unknown route")
                        return
                    data = json.dumps(body).encode()
                    self.send_response(200)
                except (ValueError, KeyError, TypeError, UnicodeError) as exc:
                    data = json.dumps({"error": str(exc)}).encode()
                    self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ModelEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ModelEndpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def public_url(url: str) -> str:
    """``url`` without credentials, query or fragment: what errors and logs may show."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable url>"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _post(url: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.loads(resp.read(MAX_BODY * 4))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise EndpointError(f"endpoint {public_url(url)!r} failed: {exc}") from None
    if not isinstance(body, dict):
        raise EndpointError(f"endpoint {public_url(url)!r} answered a non-object")
    return body


class HTTPModel:
    """Client for :class:`ModelEndpoint` (or any server speaking the same two routes)."""

    def __init__(self, url: str, timeout: float = 10.0, name: str = "remote") -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            shown = public_url(url) if isinstance(url, str) else type(url).__name__
            raise InvalidInputError(f"model_endpoint must be an http(s) URL, got {shown!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.name = name
        self.last_served_by = ""

    def next_token_distributions(self, prompt: bytes, positions: int) -> FloatArray:
        body = _post(
            self.url + "/v1/next_token",
            {"prompt": prompt.decode("latin-1"), "positions": positions},
            self.timeout,
        )
        try:
            probs = np.asarray(body["probs"], dtype=np.float64)
        except (KeyError, ValueError, TypeError) as exc:
            raise EndpointError(f"endpoint answered malformed probs: {exc}") from None
        if probs.ndim != 2 or probs.shape[1] != 256 or not np.all(np.isfinite(probs)):
            raise EndpointError(f"endpoint probs have shape {probs.shape}, expected (n, 256)")
        self.last_served_by = str(body.get("model", ""))
        return probs

    def generate(self, prompt: bytes, max_new_tokens: int, seed: int) -> bytes:
        body = _post(
            self.url + "/v1/generate",
            {"prompt": prompt.decode("latin-1"), "max_new_tokens": max_new_tokens, "seed": seed},
            self.timeout,
        )
        text = body.get("text")
        if not isinstance(text, str):
            raise EndpointError("endpoint answered without text")
        return text.encode("latin-1")

"""A local HTTP server that speaks OpenRouter's protocol, for tests of the OpenRouter providers.

    with OpenRouterServer(dimension=8) as server:
        settings.OPENROUTER_BASE_URL = server.base_url   # http://127.0.0.1:PORT/api/v1
        settings.OPENROUTER_API_KEY = server.api_key
        server.fail_next(status=429, headers={"Retry-After": "1"})
        ...
        assert len(server.requests) == 2

It validates requests as strictly as the real service is documented to (a malformed request
gets a 400 with an OpenRouter error body), records every request, and answers deterministically.
Scripted responses (`fail_next`) are served first, in order, to whichever requests come next.

To add an endpoint, write a method `(request) -> Reply` that raises BadRequest for invalid
input, and register it in `self.routes` under its path below /api/v1.
"""

from __future__ import annotations

import base64
import binascii
import io
import json as jsonlib  # `json` is also a keyword argument of fail_next
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

API_PREFIX = "/api/v1"


def error_body(status: int, message: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """OpenRouter's error shape; `code` repeats the HTTP status, as OpenRouter's does."""
    return {"error": {"code": status, "message": message, "metadata": metadata or {}}}


def decode_data_uri(url: str) -> Image.Image:
    """The image inside a `data:image/...;base64,` URI; ValueError if it is not one."""
    header, _, payload = url.partition(",")
    if not (header.startswith("data:image/") and header.endswith(";base64") and payload):
        raise ValueError("image_url.url must be a data:image/...;base64,... URI")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        image.load()
    except (binascii.Error, OSError, ValueError) as exc:
        raise ValueError(f"image data cannot be decoded: {exc}") from None
    return image


class BadRequest(Exception):
    """Raised by a route handler: the request breaks the protocol (answered with a 400)."""


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, jsonlib.dumps(payload).encode(),
                   {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def error(cls, status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
        return cls.json(error_body(status, message), status, headers)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    json: Any  # None when the body is not JSON


@dataclass
class _Script:
    reply: Reply | None  # None: answer normally after the delay
    delay: float


class OpenRouterServer:
    """ThreadingHTTPServer on 127.0.0.1 (a free port) run in a background thread."""

    def __init__(self, *, api_key: str = "test-openrouter-key", dimension: int = 8) -> None:
        self.api_key = api_key
        self.dimension = dimension
        self.shuffle_data = False  # answer embeddings out of order: clients must sort by index
        self.requests: list[RecordedRequest] = []
        self.routes: dict[str, Callable[[RecordedRequest], Reply]] = {
            "/embeddings": self.embeddings,
        }
        self._scripts: deque[_Script] = deque()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True  # a handler in a scripted delay must not block exit
        # A short poll interval: shutdown() waits up to one interval, at every test's teardown.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{API_PREFIX}"

    def __enter__(self) -> OpenRouterServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def fail_next(self, *, status: int | None = None, headers: dict[str, str] | None = None,
                  body: bytes | None = None, json: Any = None, delay: float = 0.0,
                  times: int = 1) -> None:
        """Script the next `times` responses.

        status alone answers an OpenRouter error body for it; `body` (raw bytes) or `json`
        replace the body (status 200 unless given); `delay` sleeps first, and with nothing
        else the request is then answered normally (too late for a client with a short timeout).
        """
        if body is None and json is None:
            reply = None if status is None else Reply.error(
                status, f"Scripted failure with HTTP {status}", headers)
        elif json is not None:
            reply = Reply.json(json, status or 200, headers)
        else:
            reply = Reply(status or 200, body or b"", dict(headers or {}))
        with self._lock:
            self._scripts.extend(_Script(reply, delay) for _ in range(times))

    # ------------------------------------------------------------------ dispatch

    def respond(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        try:
            payload = jsonlib.loads(raw) if raw else None
        except ValueError:
            payload = None
        request = RecordedRequest(method, path, headers, payload)
        with self._lock:
            self.requests.append(request)
            script = self._scripts.popleft() if self._scripts else None
        if script:
            time.sleep(script.delay)
            if script.reply:
                return script.reply
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply.error(401, "No auth credentials found")
        route_path = path.partition("?")[0]
        route = self.routes.get(route_path.removeprefix(API_PREFIX))
        if route is None or not route_path.startswith(API_PREFIX):
            return Reply.error(404, f"No route for {method} {path}")
        if method == "POST" and not isinstance(payload, dict):
            return Reply.error(400, "Request body must be a JSON object")
        try:
            return route(request)
        except BadRequest as exc:
            return Reply.error(400, str(exc))

    # ------------------------------------------------------------------ routes

    def embeddings(self, request: RecordedRequest) -> Reply:
        body = request.json
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise BadRequest("model is required")
        if body.get("encoding_format", "float") != "float":
            raise BadRequest("this server only answers encoding_format 'float'")
        items = body.get("input")
        if not isinstance(items, list) or not items:
            raise BadRequest("input must be a non-empty list")
        vectors = [self.vector_for(self._image_of(item, n)) for n, item in enumerate(items)]
        data = [{"object": "embedding", "index": n, "embedding": v} for n, v in enumerate(vectors)]
        if self.shuffle_data:
            data.reverse()  # every batch of two or more comes back out of order
        return Reply.json({"object": "list", "data": data, "model": body["model"],
                           "usage": {"prompt_tokens": 256 * len(data),
                                     "total_tokens": 256 * len(data), "cost": 0}})

    @staticmethod
    def _image_of(item: Any, n: int) -> Image.Image:
        parts = item.get("content") if isinstance(item, dict) else None
        if not isinstance(parts, list) or not parts:
            raise BadRequest(f"input[{n}] must be an object with a non-empty content list")
        for part in parts:
            if not isinstance(part, dict) or part.get("type") != "image_url":
                raise BadRequest(f"input[{n}].content parts must be of type image_url")
            image_url = part.get("image_url")
            url = image_url.get("url") if isinstance(image_url, dict) else None
            if not isinstance(url, str):
                raise BadRequest(f"input[{n}].content image_url.url is required")
            try:
                image = decode_data_uri(url)
            except ValueError as exc:
                raise BadRequest(f"input[{n}]: {exc}") from None
        return image

    def vector_for(self, image: Image.Image) -> list[float]:
        """A smooth function of the mean colour: similar images get similar vectors."""
        mean = image.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
        return [math.cos(3 * mean[i % 3] / 255 + i) for i in range(self.dimension)]


def _handler_for(server: OpenRouterServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {key.lower(): value for key, value in self.headers.items()}
            reply = server.respond(self.command, self.path, headers, raw)
            try:
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a scripted delay): nothing to answer

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; `server.requests` is the log

    return Handler

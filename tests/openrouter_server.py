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

Routes: /embeddings (one vector per image) and /chat/completions (a style prompt for analysis
requests; a small PNG at the requested aspect ratio for requests with `modalities`; for
requests with a `response_format` JSON schema, a quality report of that schema: every check
passes unless `qa_failures` names it, and garment fidelity is measured, image 1's mean colour
against the centre of image 2). Faults beyond
`fail_next`: `next_reply_without_image()`, `next_reply_with_malformed_image()`,
`next_reply_with_blank_image()` and the `images_in_content` switch (images as parts of
`content` instead of `message.images`). For fault runs (bench/faults.py): `latency` before every
answer, and `fault_rate` of chat answers replaced by a random fault of `FAULTS`.

The server keeps the provider's side of the money the way OpenRouter does: an answer is billed
the moment it is produced, whether or not the client is still there to read it (a client killed
or timed out while waiting is billed all the same; errors such as 429 and 5xx are not). `bills`
lists every billed answer. Each answer gets a unique generation id (`gen-…`), and the server
answers OpenRouter's account routes: `GET /generation?id=…` (that generation's total_cost and
model; 404 for `generation_record_delay` seconds after the answer, as OpenRouter's record appears
a few seconds late) and `GET /key` (`data.usage`: everything the key has spent, plus
`other_usage`, spend on the same key by something else). `in_flight` lists the requests being
worked on right now (a fault run prints how many calls a kill caught in flight).

`rate_limit=(calls, seconds)` limits chat completions the way OpenRouter limits a key, per
model over a sliding window: a request beyond `calls` admitted in the last `seconds` is answered
at once with a 429 (not billed) carrying Retry-After (whole seconds until the oldest admitted
call leaves the window) and X-RateLimit-Limit, -Remaining and -Reset (epoch milliseconds);
`rate_limited` lists (time, model, reset in epoch seconds) of each. Every recorded request
has the time it arrived (`at`), and `peak_in_flight` is the most requests answered at once.

To add an endpoint, write a method `(request) -> Reply` that raises BadRequest for invalid
input, and register it in `self.routes` under its path below /api/v1.
"""

from __future__ import annotations

import base64
import binascii
import io
import json as jsonlib  # `json` is also a keyword argument of fail_next
import math
import random
import re
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw

from generation.sizes import ONE_K

API_PREFIX = "/api/v1"
IMAGE_COST = {"0.5K": 0.045, "1K": 0.067, "2K": 0.101, "4K": 0.151}  # USD per image, by image_size
MAX_INPUT_IMAGES = 14  # Google's limit per request
STYLE_PROMPT = (
    "Bright high-key studio photo on a plain white background, soft even light, warm "
    "neutral palette with camel accents, relaxed standing pose, full-body framing."
)


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


def png_data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def chat_completion(
    model: str,
    text: str | None,
    *,
    images: list[str] | None = None,
    images_in_content: bool = False,
    cost: float = 0.0012,
) -> dict[str, Any]:
    """A chat completion body as OpenRouter sends it; `images` are data URIs, put in
    `message.images` or, with `images_in_content`, as image_url parts of `message.content`."""
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in images or []]
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if images_in_content:
        message["content"] = [{"type": "text", "text": text or ""}, *parts]
    elif parts:
        message["images"] = parts
    completion_tokens = 1290 * len(parts) + len((text or "").split())
    return {
        "id": "gen-test",
        "object": "chat.completion",
        "created": 1767225600,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": completion_tokens,
            "total_tokens": 1000 + completion_tokens,
            "cost": cost,
        },
    }


class BadRequest(Exception):
    """Raised by a route handler: the request breaks the protocol (answered with a 400)."""


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(
            status,
            jsonlib.dumps(payload).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    @classmethod
    def error(cls, status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
        return cls.json(error_body(status, message), status, headers)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    json: Any  # None when the body is not JSON
    at: float = field(default_factory=time.time)  # when it arrived


@dataclass
class _Script:
    reply: Reply | None  # None: answer normally after the delay
    delay: float


@dataclass
class Bill:
    path: str
    kind: str  # "embedding", "analysis", "image", "scene" or "qa"
    subject: str  # the product's sku (chat calls) or "" (embeddings)
    cost: float
    generation_id: str = ""
    model: str = ""
    at: float = field(default_factory=time.time)  # when it was produced (and billed)


# What a fault run injects: transient failures the client must retry, and billed answers
# that cannot be used.
FAULTS = ("429", "500", "hang", "no image", "malformed image", "blank image")


class OpenRouterServer:
    """ThreadingHTTPServer on 127.0.0.1 (a free port) run in a background thread."""

    def __init__(
        self,
        *,
        api_key: str = "test-openrouter-key",
        dimension: int = 8,
        port: int = 0,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        seed: int = 0,
        hang_seconds: float = 30.0,
        rate_limit: tuple[int, float] | None = None,
    ) -> None:
        self.api_key = api_key
        self.latency = latency
        self.rate_limit = rate_limit
        self.rate_limited: list[tuple[float, str, float]] = []
        self._admitted: dict[str, deque[float]] = {}  # per model: when its calls were admitted
        self.peak_in_flight = 0
        self.fault_rate = fault_rate
        self.hang_seconds = hang_seconds
        self.faults_injected: list[str] = []
        self.bills: list[Bill] = []
        self.generation_record_delay = 0.0  # seconds before GET /generation knows an answer
        self.other_usage = 0.0  # spend on the same key by another application
        self.in_flight: dict[int, RecordedRequest] = {}  # requests being answered, by serial
        self._serial = 0
        self._random = random.Random(seed)
        self.dimension = dimension
        self.shuffle_data = False  # answer embeddings out of order: clients must sort by index
        self.images_in_content = False  # answer generated images as parts of message.content
        self.style_prompt = STYLE_PROMPT  # what analysis requests are answered
        self.qa_failures: set[str] = set()  # quality checks to answer as failed
        self.requests: list[RecordedRequest] = []
        self.routes: dict[str, Callable[[RecordedRequest], Reply]] = {
            "/embeddings": self.embeddings,
            "/chat/completions": self.chat_completions,
            "/generation": self.generation,
            "/key": self.key,
        }
        self._scripts: deque[_Script] = deque()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
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

    def fail_next(
        self,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        json: Any = None,
        delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Script the next `times` responses.

        status alone answers an OpenRouter error body for it; `body` (raw bytes) or `json`
        replace the body (status 200 unless given); `delay` sleeps first, and with nothing
        else the request is then answered normally (too late for a client with a short timeout).
        """
        if body is None and json is None:
            reply = (
                None
                if status is None
                else Reply.error(status, f"Scripted failure with HTTP {status}", headers)
            )
        elif json is not None:
            reply = Reply.json(json, status or 200, headers)
        else:
            reply = Reply(status or 200, body or b"", dict(headers or {}))
        with self._lock:
            self._scripts.extend(_Script(reply, delay) for _ in range(times))

    def next_reply_without_image(self, text: str = "I can't make that image.") -> None:
        """The next answer is a valid completion that carries only text (a refusal)."""
        self.fail_next(json=chat_completion("google/test-image-model", text))

    def next_reply_with_malformed_image(self) -> None:
        self.fail_next(
            json=chat_completion(
                "google/test-image-model",
                "Here it is.",
                images=["data:image/png;base64,iVBOR#not-base64#"],
            )
        )

    def next_reply_with_blank_image(self, size: tuple[int, int] = (128, 128)) -> None:
        """A valid PNG of the requested... nothing: one flat colour (billed like any image)."""
        self.fail_next(json=_blank_image_reply(size))

    def _random_fault(self, request: RecordedRequest) -> Reply | None:
        """With probability fault_rate, a fault in place of a chat answer (None: answer)."""
        if (
            not request.path.endswith("/chat/completions")
            or self._random.random() >= self.fault_rate
        ):
            return None
        fault = self._random.choice(FAULTS)
        is_image = "modalities" in (request.json or {})
        if fault in ("no image", "malformed image", "blank image") and not is_image:
            fault = "500"  # an analysis answer is text: it fails as a server error instead
        self.faults_injected.append(fault)
        if fault == "429":
            return Reply.error(429, "Rate limit exceeded", {"Retry-After": "1"})
        if fault == "500":
            return Reply.error(500, "Internal Server Error")
        if fault == "hang":
            # Long after the client stopped waiting, the answer is produced and billed anyway.
            time.sleep(self.hang_seconds)
            return None
        if fault == "no image":
            return Reply.json(
                chat_completion("google/test-image-model", "I cannot draw that.", cost=0.067)
            )
        if fault == "malformed image":
            return Reply.json(
                chat_completion(
                    "google/test-image-model",
                    "Here it is.",
                    cost=0.067,
                    images=["data:image/png;base64,iVBOR#not-base64#"],
                )
            )
        ratio = (request.json.get("image_config") or {}).get("aspect_ratio", "1:1")
        width, height = ONE_K.get(ratio, (1024, 1024))
        return Reply.json(_blank_image_reply((width // 8, height // 8)))

    def bill(self, request: RecordedRequest, reply: Reply) -> Reply:
        """Bill an answer as it is produced: one that carries a usage.cost gets a unique
        generation id and a line in `bills`, whoever reads it. Returns the reply to send."""
        try:
            payload = jsonlib.loads(reply.body) if reply.status == 200 else None
        except ValueError:
            return reply
        usage = payload.get("usage") if isinstance(payload, dict) else None
        cost = usage.get("cost") if isinstance(usage, dict) else None
        if cost is None:
            return reply
        body = request.json or {}
        kind = (
            "embedding"
            if request.path.endswith("/embeddings")
            else ("scene" if _is_scene(body) else "image")
            if "modalities" in body
            else "qa"
            if "response_format" in body
            else "analysis"
        )
        with self._lock:
            self._serial += 1
            generation_id = f"gen-{self._serial:06d}-{self._random.getrandbits(48):012x}"
            self.bills.append(
                Bill(
                    request.path,
                    kind,
                    _sku_of(body),
                    float(cost),
                    generation_id,
                    str(payload.get("model") or body.get("model") or ""),
                )
            )
        payload["id"] = generation_id
        return Reply.json(payload, reply.status, reply.headers)

    def billed_total(self) -> float:
        """What the key has been billed by this server (OpenRouter's `usage` of the key)."""
        with self._lock:
            return sum(bill.cost for bill in self.bills)

    # ------------------------------------------------------------------ dispatch

    def respond(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[RecordedRequest, Reply]:
        """Record the request and work out its answer."""
        try:
            payload = jsonlib.loads(raw) if raw else None
        except ValueError:
            payload = None
        request = RecordedRequest(method, path, headers, payload)
        with self._lock:
            self._serial += 1
            serial = self._serial
            self.in_flight[serial] = request
            self.peak_in_flight = max(self.peak_in_flight, len(self.in_flight))
        try:
            return request, self.bill(request, self._answer(request))
        finally:
            with self._lock:
                del self.in_flight[serial]

    def _answer(self, request: RecordedRequest) -> Reply:
        path, headers, method, payload = request.path, request.headers, request.method, request.json
        with self._lock:
            self.requests.append(request)
            script = self._scripts.popleft() if self._scripts else None
        if script is None and (over := self._over_rate_limit(request)) is not None:
            return over  # answered at once, as the real limit is: no latency, no bill
        if self.latency:
            time.sleep(self.latency)
        if script:
            time.sleep(script.delay)
            if script.reply:
                return script.reply
        if self.fault_rate and (fault := self._random_fault(request)) is not None:
            return fault
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

    def _over_rate_limit(self, request: RecordedRequest) -> Reply | None:
        """A 429 when the request's model has had `calls` admitted in the last `seconds`;
        None admits it (and counts it)."""
        if self.rate_limit is None or not request.path.endswith("/chat/completions"):
            return None
        calls, seconds = self.rate_limit
        model = (
            str((request.json or {}).get("model") or "") if isinstance(request.json, dict) else ""
        )
        now = time.time()
        with self._lock:
            admitted = self._admitted.setdefault(model, deque())
            while admitted and admitted[0] <= now - seconds:
                admitted.popleft()
            if len(admitted) < calls:
                admitted.append(now)
                return None
            reset = admitted[0] + seconds
            self.rate_limited.append((now, model, reset))
        return Reply.error(
            429,
            f"Rate limit exceeded: {calls} requests per {seconds:g} s for {model}",
            {
                "Retry-After": str(math.ceil(reset - now)),
                "X-RateLimit-Limit": str(calls),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(reset * 1000)),
            },
        )

    # ------------------------------------------------------------------ routes

    def generation(self, request: RecordedRequest) -> Reply:
        """OpenRouter's record of one generation: GET /generation?id=gen-…"""
        wanted = parse_qs(urlsplit(request.path).query).get("id", [""])[0]
        if not wanted:
            raise BadRequest("id is required")
        with self._lock:
            bill = next((b for b in self.bills if b.generation_id == wanted), None)
        if bill is None or time.time() - bill.at < self.generation_record_delay:
            return Reply.error(404, f"Generation {wanted} not found")
        return Reply.json(
            {
                "data": {
                    "id": bill.generation_id,
                    "model": bill.model,
                    "total_cost": bill.cost,
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(bill.at)),
                    "provider_name": "Test",
                    "cancelled": False,
                    "finish_reason": "stop",
                }
            }
        )

    def key(self, request: RecordedRequest) -> Reply:
        """OpenRouter's account of the key: GET /key (usage: credits spent, all time)."""
        return Reply.json(
            {
                "data": {
                    "label": "sk-or-v1-tes...key",
                    "usage": round(self.billed_total() + self.other_usage, 6),
                    "limit": None,
                    "limit_remaining": None,
                    "is_free_tier": False,
                }
            }
        )

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
        return Reply.json(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {
                    "prompt_tokens": 256 * len(data),
                    "total_tokens": 256 * len(data),
                    "cost": 0,
                },
            }
        )

    @staticmethod
    def _image_of(item: Any, n: int) -> Image.Image:
        parts = item.get("content") if isinstance(item, dict) else None
        if not isinstance(parts, list) or not parts:
            raise BadRequest(f"input[{n}] must be an object with a non-empty content list")
        images = [_image_part(part, f"input[{n}].content[{p}]") for p, part in enumerate(parts)]
        return images[-1]

    def chat_completions(self, request: RecordedRequest) -> Reply:
        body = request.json
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise BadRequest("model is required")
        images = _chat_images(body.get("messages"))
        if "modalities" in body:
            return self._generate(body, images)
        if "response_format" in body:
            return self._quality_report(body, images)
        return Reply.json(chat_completion(body["model"], self.style_prompt))

    def _quality_report(self, body: dict[str, Any], images: list[Image.Image]) -> Reply:
        """A structured answer of the requested schema: one verdict per check it names."""
        response_format = body["response_format"]
        spec = response_format.get("json_schema") if isinstance(response_format, dict) else None
        if (
            response_format.get("type") != "json_schema"
            or not isinstance(spec, dict)
            or not isinstance(spec.get("name"), str)
            or not isinstance(spec.get("schema"), dict)
        ):
            raise BadRequest(
                "response_format must be {type: json_schema, json_schema: {name, schema}}"
            )
        try:
            names = spec["schema"]["properties"]["checks"]["items"]["properties"]["name"]["enum"]
        except (KeyError, TypeError):
            raise BadRequest("this server answers quality-report schemas only") from None
        if len(images) != 2:
            raise BadRequest(f"a quality check compares 2 images, not {len(images)}")
        flat_lay, promo = images
        width, height = promo.size
        centre = promo.crop((width * 2 // 5, height * 2 // 5, width * 3 // 5, height * 3 // 5))
        distance = math.dist(_mean_colour(flat_lay), _mean_colour(centre))
        checks = []
        for name in names:
            passed = name not in self.qa_failures and (name != "garment_fidelity" or distance < 40)
            note = (
                f"Mean colour distance {distance:.0f}."
                if name == "garment_fidelity"
                else "Looks right."
                if passed
                else "Scripted failure."
            )
            checks.append(
                {"name": name, "passed": passed, "score": 0.9 if passed else 0.2, "note": note}
            )
        return Reply.json(
            chat_completion(body["model"], jsonlib.dumps({"checks": checks}), cost=0.002)
        )

    def _generate(self, body: dict[str, Any], images: list[Image.Image]) -> Reply:
        """A PNG at 1/8 of the 1K size of the requested ratio (its exact ratio), showing the
        mean colour of the first input image (the flat-lay)."""
        modalities, config = body["modalities"], body.get("image_config")
        if (
            not isinstance(modalities, list)
            or "image" not in modalities
            or not set(modalities) <= {"image", "text"}
        ):
            raise BadRequest(f"modalities must be ['image', 'text'], not {modalities!r}")
        if not isinstance(config, dict):
            raise BadRequest("image_config must be an object with aspect_ratio and image_size")
        if config.get("aspect_ratio") not in ONE_K:
            raise BadRequest(
                f"image_config.aspect_ratio {config.get('aspect_ratio')!r} is not "
                f"supported; use one of {', '.join(ONE_K)}"
            )
        if config.get("image_size") not in IMAGE_COST:
            raise BadRequest(
                f"image_config.image_size {config.get('image_size')!r} is not "
                f"supported; use one of {', '.join(IMAGE_COST)}"
            )
        if not images or len(images) > MAX_INPUT_IMAGES:
            raise BadRequest(
                f"image generation takes 1 to {MAX_INPUT_IMAGES} input images, not {len(images)}"
            )
        width, height = (side // 8 for side in ONE_K[config["aspect_ratio"]])
        promo = Image.new("RGB", (width, height), (236, 232, 224))
        ImageDraw.Draw(promo).ellipse(
            (width * 0.3, height * 0.1, width * 0.7, height * 0.9), fill=_mean_colour(images[0])
        )
        return Reply.json(
            chat_completion(
                body["model"],
                "Here is your promotional photo.",
                images=[png_data_uri(promo)],
                images_in_content=self.images_in_content,
                cost=IMAGE_COST[config["image_size"]],
            )
        )

    def vector_for(self, image: Image.Image) -> list[float]:
        """A smooth function of the mean colour: similar images get similar vectors."""
        mean = _mean_colour(image)
        return [math.cos(3 * mean[i % 3] / 255 + i) for i in range(self.dimension)]


def _blank_image_reply(size: tuple[int, int]) -> dict[str, Any]:
    return chat_completion(
        "google/test-image-model",
        "Here it is.",
        cost=0.067,
        images=[png_data_uri(Image.new("RGB", size, (240, 240, 240)))],
    )


_SKU = re.compile(r'"sku": "([^"]+)"')


def _is_scene(body: dict[str, Any]) -> bool:
    """A staged preset's first call: its first input image is a style reference, not the
    product (the app labels every input image before sending it)."""
    for message in body.get("messages") or []:
        parts = message.get("content") if isinstance(message, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict) and part.get("type") == "text":
                return str(part.get("text", "")).startswith("Image 1: style reference")
    return False


def _sku_of(body: dict[str, Any]) -> str:
    """The new product's sku in a chat request's prompt (its data block), or ""."""
    texts = [
        part.get("text", "")
        for message in body.get("messages") or []
        if isinstance(message, dict)
        for part in (message.get("content") if isinstance(message.get("content"), list) else [])
        if isinstance(part, dict) and part.get("type") == "text"
    ]
    found = _SKU.findall(texts[-1]) if texts else []
    return found[-1] if found else ""


def _client_gone(sock: socket.socket) -> bool:
    """True when the client closed its end (a killed process): it would read no answer."""
    try:
        ready, _, _ = select.select([sock], [], [], 0)
        return bool(ready) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _mean_colour(image: Image.Image) -> tuple[int, int, int]:
    return image.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))


def _image_part(part: Any, where: str) -> Image.Image:
    """The decoded image of an image_url content part; BadRequest naming `where` otherwise."""
    if not isinstance(part, dict) or part.get("type") != "image_url":
        raise BadRequest(f"{where} must be a part of type image_url")
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, dict) else None
    if not isinstance(url, str):
        raise BadRequest(f"{where}.image_url.url is required")
    try:
        return decode_data_uri(url)
    except ValueError as exc:
        raise BadRequest(f"{where}: {exc}") from None


def _chat_images(messages: Any) -> list[Image.Image]:
    """The images of the user messages, in order, after checking every message and part."""
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    images: list[Image.Image] = []
    for m, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "user", "assistant"):
            raise BadRequest(f"messages[{m}].role must be system, user or assistant")
        content = message.get("content")
        if role != "user":
            continue
        if not isinstance(content, list) or not content:
            raise BadRequest(f"messages[{m}].content must be a non-empty list of parts")
        for p, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "text":
                if not isinstance(part.get("text"), str) or not part["text"].strip():
                    raise BadRequest(f"messages[{m}].content[{p}].text must be non-empty text")
            else:
                images.append(_image_part(part, f"messages[{m}].content[{p}]"))
    if not any(isinstance(m, dict) and m.get("role") == "user" for m in messages):
        raise BadRequest("messages need a user message")
    return images


def _handler_for(server: OpenRouterServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {key.lower(): value for key, value in self.headers.items()}
            _, reply = server.respond(self.command, self.path, headers, raw)  # billed already
            if _client_gone(self.connection):
                return  # the client gave up waiting or died: it reads nothing, and pays anyway
            try:
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up waiting (a scripted delay): nothing to answer

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; `server.requests` is the log

    return Handler

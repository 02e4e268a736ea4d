"""A local HTTP server that receives webhooks the way a storefront would, for the webhook tests.

    with WebhookReceiver(secret) as receiver:
        ... deliveries POST to receiver.url ...
        receiver.wait_for(1)
        assert receiver.received[0].verified

Every request's signature is verified with the standardwebhooks library (a request that fails
verification gets a 400 and is recorded with verified=False). `statuses` scripts the answers of
the next requests (then 204); with `hold_first` the first request is recorded and then left
unanswered until `release` is set (`holding` is set once it arrived), for a sender killed while
it waits. It can be made on a port before it listens (`start()` later), so
a test can have the receiver down for a while: connections are refused until then.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

from tests.conftest import free_port


@dataclass
class Received:
    webhook_id: str
    timestamp: str
    body: bytes
    verified: bool
    error: str = ""

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(
        self,
        secret: str = "",
        *,
        port: int | None = None,
        path: str = "/hooks",
        hold_first: bool = False,
    ):
        self.secret = secret
        self.hold_first = hold_first
        self.holding, self.release = threading.Event(), threading.Event()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.received: list[Received] = []
        self.statuses: list[int] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name: value for name, value in self.headers.items()}
                try:
                    Webhook(receiver.secret).verify(body, headers)
                    verified, error = True, ""
                except Exception as exc:  # noqa: BLE001 - recorded for the test to assert on
                    verified, error = False, str(exc)
                receiver.received.append(
                    Received(
                        self.headers.get("webhook-id", ""),
                        self.headers.get("webhook-timestamp", ""),
                        body,
                        verified,
                        error,
                    )
                )
                if receiver.hold_first and len(receiver.received) == 1:
                    receiver.holding.set()
                    receiver.release.wait(30)
                    return
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                status = status if verified else 400
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.received) >= count, f"received {len(self.received)} of {count} webhooks"
        return self.received

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

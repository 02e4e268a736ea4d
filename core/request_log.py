"""A request id in every log line of a request, and of the tasks the request sent.

The web's RequestIdMiddleware takes the caller's X-Request-ID (a proxy or a load balancer that
made one) when it is short and plain, or makes one, and answers with it. While the request
runs the id sits in a context variable: RequestIdFilter copies it into every log record, and
the Dramatiq middleware DramatiqRequestId copies it into each message sent meanwhile
(`message.options`), and back into the variable in the worker that processes the message. So
a person on call can follow one click from the web's log into the worker's, and a task's own
messages carry the id on.

With LOG_FORMAT=json each record is one JSON object a line (JsonFormatter), for a log
collector; the default stays the plain text a person reads in a terminal.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime

import dramatiq
from dramatiq.middleware import Middleware

NO_REQUEST = "-"
HEADER = "X-Request-ID"
OPTION = "request_id"  # the key in a Dramatiq message's options
# A caller's id is kept when it is this short and plain; anything else (a log injection, a
# 10 KB header) is replaced by one of ours.
VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default=NO_REQUEST)


def new_request_id() -> str:
    return uuid.uuid4().hex


def usable_request_id(value: str | None) -> str:
    """The caller's id when it is short and plain, else a new one."""
    if value and VALID_ID.fullmatch(value):
        return value
    return new_request_id()


class RequestIdMiddleware:
    """Give each request an id: in its log records, its tasks and its response's header.

    First in MIDDLEWARE, so even a redirect or a refused host carries it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        value = usable_request_id(request.headers.get(HEADER))
        request.request_id = value
        # Not reset on the way out: Django logs a 4xx or 5xx answer after the middleware has
        # returned it. The request_finished signal clears it (end_of_request).
        request_id.set(value)
        response = self.get_response(request)
        response[HEADER] = value
        return response


def end_of_request(**kwargs) -> None:
    """Receiver of request_finished: what the thread logs next belongs to no request."""
    request_id.set(NO_REQUEST)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record: the current request's or task's, or "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id, and
    the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", NO_REQUEST),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


class DramatiqRequestId(Middleware):
    """Carries the request id from the code that sends a message to the worker that runs it."""

    def before_enqueue(self, broker, message: dramatiq.Message, delay) -> None:
        current = request_id.get()
        # A retry is enqueued again by the worker with its options: the id is already there.
        if current != NO_REQUEST and OPTION not in message.options:
            message.options[OPTION] = current

    def before_process_message(self, broker, message: dramatiq.Message) -> None:
        # Worker threads live on from message to message: each message sets its own id.
        request_id.set(usable_request_id(message.options.get(OPTION)))

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        request_id.set(NO_REQUEST)

    after_skip_message = after_process_message

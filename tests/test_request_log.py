"""A request id in every log line of a request and of the tasks it sends, and JSON logs."""

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.request_log import JsonFormatter, RequestIdFilter

ROOT = Path(__file__).resolve().parent.parent
HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_lines():
    """The root logger's records as the LOG_FORMAT=json handler writes them, one dict each."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logging.getLogger().removeHandler(handler)


def test_each_answer_carries_a_new_request_id(client):
    first, second = client.get("/healthz"), client.get("/no/such/page")

    assert HEX_ID.fullmatch(first["X-Request-ID"])
    assert HEX_ID.fullmatch(second["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("lb-7f3a.42:edge_1", True),
        ("x" * 64, True),
        ("x" * 65, False),  # too long
        ("abc def", False),  # a space
        ("abc\u00e9", False),  # not ASCII
        ("", False),
    ],
)
def test_a_callers_id_is_kept_only_when_short_and_plain(client, sent, kept):
    answered = client.get("/healthz", HTTP_X_REQUEST_ID=sent)["X-Request-ID"]

    if kept:
        assert answered == sent
    else:
        assert HEX_ID.fullmatch(answered)


@pytest.mark.django_db(transaction=True)
def test_a_tasks_log_lines_carry_the_id_of_the_request_that_sent_it(
    client, settings, broker, worker, json_lines
):
    settings.ROOT_URLCONF = "tests.request_log_urls"

    response = client.get("/test-log/", HTTP_X_REQUEST_ID="req-42")
    broker.join("test-request-log", fail_fast=True)
    worker.join()

    assert response.status_code == 200
    lines = {line["message"]: line for line in json_lines()}
    assert lines["request line"]["request_id"] == "req-42"
    assert lines["task line for SKU1"]["request_id"] == "req-42"
    assert lines["task line for SKU1"]["logger"] == "tests.request_log"


@pytest.mark.django_db
def test_django_logs_a_refused_request_with_its_id(client, json_lines):
    client.get("/no/such/page", HTTP_X_REQUEST_ID="req-404")

    [line] = [line for line in json_lines() if line["logger"] == "django.request"]
    assert line["message"] == "Not Found: /no/such/page"
    assert line["request_id"] == "req-404"


def test_a_line_outside_any_request_says_so(client, json_lines):
    client.get("/healthz", HTTP_X_REQUEST_ID="over")
    logging.getLogger("tests.after").warning("after the request")

    [line] = [line for line in json_lines() if line["logger"] == "tests.after"]
    assert line["request_id"] == "-"


def test_log_format_json_writes_one_object_a_line():
    env = {**os.environ, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "config.settings"}
    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('promo').warning('hello %s', 'world')"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert run.returncode == 0, run.stderr
    line = json.loads(run.stderr.strip().splitlines()[-1])
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "promo", "hello world")
    assert line["request_id"] == "-"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])

"""/healthz and /readyz, the load balancer's questions: is the process alive, and can it work.

/readyz is checked against real parts: the test database, the limiter's redis-server, Milvus
Lite (in process, and as a `milvus-lite server` that the test stops and starts again) and the
media folder."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for_port

BIN = Path(sys.executable).parent


def test_healthz_answers_without_the_database(client):
    # No django_db mark: a query would fail the test.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert "no-cache" in response["Cache-Control"]


def test_probes_are_not_redirected_to_https(client, settings, db):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/healthz").status_code == 200
    assert client.get("/admin/login/").status_code == 301  # everything else is


@pytest.mark.django_db
def test_readyz_is_200_when_every_part_answers(client, milvus):
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json() == {"database": "ok", "redis": "ok", "milvus": "ok", "storage": "ok"}


@pytest.mark.django_db
def test_readyz_names_redis_when_it_is_down_and_tells_no_address(client, milvus, settings):
    port = free_port()  # nothing listens there
    settings.OPENROUTER_LIMITER_URL = f"redis://:hunter2@127.0.0.1:{port}/0"
    settings.READYZ_TIMEOUT_SECONDS = 1

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["redis"] == "down: did not answer"
    assert {body["database"], body["milvus"], body["storage"]} == {"ok"}
    for secret in ("127.0.0.1", str(port), "hunter2", "redis://"):
        assert secret not in response.content.decode()


@pytest.mark.django_db
def test_readyz_answers_within_its_timeout_when_milvus_hangs(client, settings):
    silent = socket.socket()  # accepts connections and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    settings.MILVUS_URI = f"http://127.0.0.1:{silent.getsockname()[1]}"
    settings.READYZ_TIMEOUT_SECONDS = 1  # the client itself waits MILVUS_TIMEOUT (10 s)

    started = time.monotonic()
    response = client.get("/readyz")
    took = time.monotonic() - started
    silent.close()

    assert response.status_code == 503
    assert response.json()["milvus"] == "down: Timed out after 1 seconds"
    assert took < 5


@pytest.mark.django_db
def test_readyz_names_the_storage_when_it_cannot_write(client, milvus, settings, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = blocked

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["storage"] == "down: could not write, read and delete a file"
    assert response.json()["database"] == "ok"


@pytest.fixture
def milvus_server(settings, tmp_path):
    """A `milvus-lite server` on a free port that the test can stop and start again."""
    port = free_port()
    command = [
        str(BIN / "milvus-lite"),
        *("server", "--data-dir", str(tmp_path / "milvus")),
        *("--host", "127.0.0.1", "--port", str(port)),
    ]
    state = {"process": None}

    def start():
        state["process"] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for_port(port, timeout=60)

    def stop():
        state["process"].terminate()
        state["process"].wait(timeout=30)

    start()
    settings.MILVUS_URI = f"http://127.0.0.1:{port}"
    settings.MILVUS_TOKEN = ""
    yield start, stop
    if state["process"].poll() is None:
        stop()


def wait_for_readyz(client, status: int, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while True:
        response = client.get("/readyz")
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


@pytest.mark.django_db
def test_readyz_goes_503_naming_milvus_while_it_is_stopped_and_200_after(client, milvus_server):
    start, stop = milvus_server
    assert wait_for_readyz(client, 200).status_code == 200

    stop()
    down = client.get("/readyz")

    assert down.status_code == 503
    body = json.loads(down.content)
    assert body["milvus"] == "down: did not answer"
    assert {body["database"], body["redis"], body["storage"]} == {"ok"}

    start()
    up = wait_for_readyz(client, 200)

    assert up.status_code == 200, up.content
    assert up.json()["milvus"] == "ok"


@pytest.fixture
def s3_storage(settings):
    """A private bucket on a local moto S3 server, as the production storage (STORAGES)."""
    import boto3

    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60)
        endpoint = f"http://127.0.0.1:{port}"
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", **credentials
        ).create_bucket(Bucket="promo-private")
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": "promo-private",
                    "access_key": "testing",
                    "secret_key": "testing",
                    "endpoint_url": endpoint,
                    "region_name": "us-east-1",
                    "addressing_style": "path",
                    "file_overwrite": False,
                    "default_acl": None,
                },
            },
        }
        yield server
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)


@pytest.mark.django_db
def test_readyz_checks_an_s3_storage_and_names_it_when_it_is_gone(client, milvus, s3_storage):
    assert client.get("/readyz").json()["storage"] == "ok"

    s3_storage.terminate()
    s3_storage.wait(timeout=30)
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["storage"] in {
        "down: could not write, read and delete a file",
        "down: Timed out after 3 seconds",  # botocore retries a refused connection
    }
    assert "promo-private" not in response.content.decode()

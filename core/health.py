"""Answers for load balancers: /healthz (the process is alive) and /readyz (it can work).

/healthz touches nothing but the process: a load balancer that restarts processes on its
failure must not restart every web process when the database is slow.

/readyz checks what a request needs, each part in parallel and within READYZ_TIMEOUT_SECONDS:
the database (SELECT 1), Redis (a PING of the broker's, and of the rate limiter's when it is
another), Milvus (a listing of collections over the app's own connection) and the storage (a
small file written, read and deleted). It answers 200 when all are up and 503 when one is
down, with a JSON body naming each part:

    {"database": "ok", "redis": "ok", "milvus": "down: did not answer", "storage": "ok"}

The checks are django-health-check's (its base class runs them with a timeout and turns any
surprise into an error without a traceback in the answer): its database and storage checks,
with plainer messages; Redis and Milvus are checks of our own on its base (Milvus's in
catalog/health.py, added by the catalog app). The body names parts and says what failed in a
few fixed words, never an address, a host name or a password: the full error goes to the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import redis
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from health_check.base import HealthCheck
from health_check.checks import Database, Storage
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


@dataclasses.dataclass
class RedisCheck(HealthCheck):
    """A Redis server answers PING."""

    url: str = dataclasses.field(default="", repr=False)  # may hold a password

    def run(self) -> None:
        seconds = self.timeout.total_seconds()
        client = redis.Redis.from_url(
            self.url, socket_timeout=seconds, socket_connect_timeout=seconds
        )
        try:
            client.ping()
        except redis.RedisError as exc:
            raise ServiceUnavailable("did not answer") from exc
        finally:
            client.close()


class DatabaseCheck(Database):
    """The library's SELECT 1 over a connection of its own. Its message quotes the driver's,
    which may name the database host: the answer says less, the log has it all."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - refused, timed out, pool empty: all "down"
            raise ServiceUnavailable("did not answer") from exc


class StorageCheck(Storage):
    """The library's file written, read and deleted; its errors (S3's name the bucket) are
    said in plain words."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - permissions, network, a full disk
            raise ServiceUnavailable("could not write, read and delete a file") from exc


# Checks of parts that belong to an app (Milvus: catalog), added in its AppConfig.ready().
_app_checks: dict[str, Callable[[], HealthCheck]] = {}


def add_readiness_check(name: str, make: Callable[[], HealthCheck]) -> None:
    """Have /readyz check one more part, shown under `name`."""
    _app_checks[name] = make


def readiness_checks() -> dict[str, HealthCheck]:
    """What /readyz checks, by the name it shows: each with READYZ_TIMEOUT_SECONDS."""
    checks: dict[str, HealthCheck] = {"database": DatabaseCheck()}
    broker_is_redis = settings.DRAMATIQ_BROKER["BROKER"].endswith("RedisBroker")
    redis_urls = {"redis": settings.REDIS_URL} if broker_is_redis else {}
    if settings.OPENROUTER_LIMITER_URL not in ("", *redis_urls.values()):
        redis_urls["redis_limiter" if redis_urls else "redis"] = settings.OPENROUTER_LIMITER_URL
    checks.update({name: RedisCheck(url=url) for name, url in redis_urls.items()})
    checks.update({name: make() for name, make in _app_checks.items()})
    checks["storage"] = StorageCheck()
    timeout = datetime.timedelta(seconds=settings.READYZ_TIMEOUT_SECONDS)
    for check in checks.values():
        check.timeout = timeout
    return checks


def _answer(error) -> str:
    # Every check's message is a fixed phrase ("did not answer"), as are the library's for a
    # timeout ("Timed out after 3 seconds") and for a surprise ("unknown error").
    return "ok" if error is None else f"down: {error.message}"


@contextlib.contextmanager
def _threads() -> Iterator[ThreadPoolExecutor]:
    """Threads for one answer's checks, not waited for at its end: a check past its timeout
    (a Milvus client still connecting, for MILVUS_TIMEOUT) finishes in the background instead
    of holding the answer, as the event loop's default executor would."""
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="readyz")
    try:
        yield pool
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


class ReadinessView(HealthCheckView):
    """GET /readyz: 200 when every part answers, 503 naming those that do not."""

    def get_executor(self):
        return _threads()

    async def get(self, request, *args, **kwargs):
        checks = readiness_checks()
        with self.get_executor() as executor:
            results = await asyncio.gather(
                *(check.get_result(executor) for check in checks.values())
            )
        body = {name: _answer(result.error) for name, result in zip(checks, results, strict=True)}
        down = any(result.error for result in results)
        return JsonResponse(body, status=503 if down else 200)


readyz = ReadinessView.as_view()


@never_cache
def healthz(request):
    """GET /healthz: the process answers. Nothing else is asked."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")

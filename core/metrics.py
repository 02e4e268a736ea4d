"""Prometheus metrics on /metrics: the web's requests, and the studio's own figures.

Two kinds:

- The web's requests (RequestMetricsMiddleware): `promo_http_requests_total` and the latency
  histogram `promo_http_request_duration_seconds`, by view name, method and status. They count
  in the process; with several gunicorn workers set PROMETHEUS_MULTIPROC_DIR (an empty folder,
  cleared at each start) and every worker's counts are added up at the scrape.
- The studio's figures (StudioCollector), read at each scrape from the database and Redis, so
  they are the same whichever process answers: the Dramatiq queues' depth, provider calls,
  cost, errors, 429s and latency per model, this month's spend against the cap (here), assets
  by status (generation/metrics.py) and the vector index's drift from its last reconcile
  (catalog/metrics.py), each a part added with add_metrics_part().

The workers' own metrics (messages, errors, durations per actor) come from Dramatiq's
Prometheus middleware on the worker's port (DRAMATIQ_PROMETHEUS; docs/deploy.md).

Access: from the addresses in METRICS_ALLOWED_IPS (REMOTE_ADDR) without a token, from anywhere
with `Authorization: Bearer <METRICS_TOKEN>`; anyone else gets a 403.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator

import redis
from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

REQUESTS = Counter(
    "promo_http_requests",
    "Web requests answered, by view, method and status.",
    ["view", "method", "status"],
)
LATENCY = Histogram(
    "promo_http_request_duration_seconds",
    "Time to answer a web request, by view and method.",
    ["view", "method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
UNMATCHED = "<unmatched>"  # a path no URL pattern knows: one label for all, not one per path


class RequestMetricsMiddleware:
    """Counts each request and its time by view name (never by path, which anyone can vary)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None else UNMATCHED
        method = request.method if request.method in KNOWN_METHODS else "other"
        LATENCY.labels(view, method).observe(time.perf_counter() - started)
        REQUESTS.labels(view, method, str(response.status_code)).inc()
        return response


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class StudioCollector(Collector):
    """The studio's figures, computed at scrape time. A part that cannot be read (Redis down)
    is left out and counted in `promo_metrics_errors`, the rest is still answered."""

    def __init__(self) -> None:
        self.parts: dict[str, Callable[[], Iterable[Metric]]] = {}

    def describe(self) -> list[Metric]:
        # Without it registering would run collect(): database queries at import time.
        return []

    def collect(self) -> Iterator[Metric]:
        failed = GaugeMetricFamily(
            "promo_metrics_errors",
            "1 when a part of the studio's metrics could not be read at this scrape.",
            labels=["part"],
        )
        for part, read in self.parts.items():
            try:
                metrics = list(read())
            except Exception:  # noqa: BLE001 - one unreadable part must not hide the others
                logger.warning("metrics: cannot read %s", part, exc_info=True)
                failed.add_metric([part], 1)
                continue
            failed.add_metric([part], 0)
            yield from metrics
        yield failed


def queue_metrics() -> Iterator[Metric]:
    """The Dramatiq queues' depth."""
    gauge = GaugeMetricFamily(
        "promo_queue_messages",
        "Dramatiq messages per queue: waiting, being worked on, delayed (retries, later "
        "sends) and dead-lettered.",
        labels=["queue", "state"],
    )
    for queue, state, count in queue_depths():
        gauge.add_metric([queue, state], count)
    yield gauge


def provider_metrics() -> Iterator[Metric]:
    """The ledger's billed answers per model."""
    from core.models import ProviderCall

    calls = CounterMetricFamily(
        "promo_provider_calls",
        "Billed provider answers booked in the ledger, by model and kind.",
        labels=["model", "kind"],
    )
    cost = CounterMetricFamily(
        "promo_provider_cost_usd",
        "What the booked answers cost (USD), by model and kind.",
        labels=["model", "kind"],
    )
    rejected = CounterMetricFamily(
        "promo_provider_rejected_answers",
        "Billed answers that could not be used (no image, malformed), by model.",
        labels=["model"],
    )
    rows = ProviderCall.objects.order_by().values("model", "kind")
    for row in rows.annotate(n=Count("pk"), usd=Sum("cost")):
        calls.add_metric([row["model"], row["kind"]], row["n"])
        cost.add_metric([row["model"], row["kind"]], float(row["usd"] or 0))
    refused = rows.exclude(rejected_reason="").values("model").annotate(n=Count("pk"))
    for row in refused:
        rejected.add_metric([row["model"]], row["n"])
    yield from (calls, cost, rejected)


def limiter_metrics() -> Iterator[Metric]:
    """Every worker's calls per model, from the rate limiter's Redis."""
    from core.ratelimit import limiter_state

    families = {
        "ok": CounterMetricFamily(
            "promo_provider_requests_ok",
            "Provider calls that succeeded, by model (every worker, from the rate limiter).",
            labels=["model"],
        ),
        "rate_limited": CounterMetricFamily(
            "promo_provider_rate_limited",
            "Provider calls answered 429, by model.",
            labels=["model"],
        ),
        "errors": CounterMetricFamily(
            "promo_provider_errors",
            "Provider calls that failed otherwise (timeouts, 5xx, unusable answers), by model.",
            labels=["model"],
        ),
        "latency": GaugeMetricFamily(
            "promo_provider_call_seconds",
            "A successful call's time, a moving average over the latest calls, by model.",
            labels=["model"],
        ),
        "in_flight": GaugeMetricFamily(
            "promo_provider_calls_in_flight", "Calls in flight now, by model.", labels=["model"]
        ),
        "limit": GaugeMetricFamily(
            "promo_provider_concurrency_limit",
            "Calls the rate limiter lets be in flight now, by model.",
            labels=["model"],
        ),
        "waited": CounterMetricFamily(
            "promo_provider_slot_wait_seconds",
            "Time callers spent waiting for a call slot, added up, by model.",
            labels=["model"],
        ),
    }
    for model, pace in limiter_state().items():
        families["ok"].add_metric([model], pace.calls)
        families["rate_limited"].add_metric([model], pace.rate_limited)
        families["errors"].add_metric([model], pace.errors)
        families["latency"].add_metric([model], pace.latency_seconds)
        families["in_flight"].add_metric([model], pace.in_flight)
        families["limit"].add_metric([model], pace.limit)
        families["waited"].add_metric([model], pace.waited_seconds)
    yield from families.values()


def spend_metrics() -> Iterator[Metric]:
    """This month's spend against the cap."""
    from core.spending import current_month, reserved_now, spending_cap

    month = current_month()
    spent = float(month.spent) if month else 0.0
    reserved = float(reserved_now(month)) if month else 0.0
    yield GaugeMetricFamily(
        "promo_spend_month_usd", "Booked provider spend this calendar month (USD).", spent
    )
    yield GaugeMetricFamily(
        "promo_spend_reserved_usd",
        "Worst case held for calls in flight or in doubt this month (USD).",
        reserved,
    )
    cap = spending_cap()
    if cap is not None:
        yield GaugeMetricFamily("promo_spend_cap_usd", "MONTHLY_SPENDING_CAP (USD).", float(cap))
        yield GaugeMetricFamily(
            "promo_spend_cap_ratio",
            "(spent + reserved) / cap: at 1 no paid call starts.",
            (spent + reserved) / float(cap) if cap else 1.0,
        )


def queue_depths() -> list[tuple[str, str, int]]:
    """(queue, state, messages) for each declared Dramatiq queue."""
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.common import dq_name, xq_name

    broker = dramatiq.get_broker()
    queues = sorted(q for q in broker.get_declared_queues() if not q.endswith((".DQ", ".XQ")))
    if isinstance(broker, StubBroker):
        return [
            (queue, state, broker.queues[name].qsize())
            for queue in queues
            for state, name in (("waiting", queue), ("delayed", dq_name(queue)))
            if name in broker.queues
        ]
    if not isinstance(broker, RedisBroker):
        return []
    client = _redis(settings.REDIS_URL)
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        key = f"{broker.namespace}:{queue}"
        pipe.llen(key)  # waiting
        pipe.hlen(f"{key}.msgs")  # waiting and being worked on
        pipe.hlen(f"{broker.namespace}:{dq_name(queue)}.msgs")  # delayed
        pipe.zcard(f"{broker.namespace}:{xq_name(queue)}")  # dead letters
    answers = pipe.execute()
    depths = []
    for i, queue in enumerate(queues):
        waiting, held, delayed, dead = answers[4 * i : 4 * i + 4]
        depths += [
            (queue, "waiting", waiting),
            (queue, "in_progress", max(held - waiting, 0)),
            (queue, "delayed", delayed),
            (queue, "dead", dead),
        ]
    return depths


@functools.lru_cache(maxsize=4)
def _redis_for(pid: int, url: str) -> redis.Redis:
    # Short timeouts: a scrape must answer, with the queues left out, when Redis hangs.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _redis(url: str) -> redis.Redis:
    return _redis_for(os.getpid(), url)


STUDIO = StudioCollector()
REGISTRY.register(STUDIO)


def add_metrics_part(name: str, read: Callable[[], Iterable[Metric]]) -> None:
    """Have each scrape read one more part of the studio's figures (an app's, added in its
    AppConfig.ready(): assets by generation, the index by catalog)."""
    STUDIO.parts[name] = read


add_metrics_part("queues", queue_metrics)
add_metrics_part("providers", provider_metrics)
add_metrics_part("limiter", limiter_metrics)
add_metrics_part("spend", spend_metrics)


def registry() -> CollectorRegistry:
    """The registry a scrape reads: this process's, or with PROMETHEUS_MULTIPROC_DIR every
    web process's counts added up (and the studio's figures once)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)
    combined.register(STUDIO)
    return combined


def metrics_allowed(request) -> bool:
    """From METRICS_ALLOWED_IPS, or with the bearer token METRICS_TOKEN."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer":
        # Constant time: the answer's timing tells nothing about how much of a guess was right.
        if hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(settings.METRICS_ALLOWED_IPS)))


@functools.lru_cache(maxsize=4)
def _networks(
    entries: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    # Settings checked each entry at startup; an address is a network of one.
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


@never_cache
def metrics_view(request):
    """GET /metrics in Prometheus' text format."""
    if not metrics_allowed(request):
        return HttpResponseForbidden(
            "Metrics are read from METRICS_ALLOWED_IPS or with the METRICS_TOKEN bearer token.\n",
            content_type="text/plain; charset=utf-8",
        )
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)

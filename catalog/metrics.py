"""The catalog's part of /metrics: the vector index (core/metrics.py)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from catalog.models import IndexRun, Product


def index_metrics() -> Iterator[Metric]:
    """Products by index state and the drift the latest reconcile found (core/metrics.py reads
    it at each scrape)."""
    states = dict(Product.objects.order_by().values_list("index_state").annotate(n=Count("pk")))
    products = GaugeMetricFamily(
        "promo_products_index_state",
        "Products by their vector index state (pending, synced, failed).",
        labels=["state"],
    )
    for state, count in sorted(states.items()):
        products.add_metric([state], count)
    yield products
    reconciles = IndexRun.objects.filter(
        kind=IndexRun.Kind.RECONCILE, finished_at__isnull=False
    ).order_by("-finished_at", "-pk")
    latest = reconciles.first()
    if latest is None:
        return
    yield GaugeMetricFamily(
        "promo_index_reconcile_failed",
        "1 when the latest index reconcile failed (Milvus down, a provider error).",
        1 if latest.error else 0,
    )
    clean = reconciles.filter(error="").first()
    if clean is None:
        return
    drift = GaugeMetricFamily(
        "promo_index_drift_rows",
        "Rows the latest finished reconcile found differing between the database and Milvus "
        "(before it repaired them).",
        labels=["kind"],
    )
    for kind in ("missing", "stale", "orphaned"):
        drift.add_metric([kind], getattr(clean, kind))
    yield drift
    yield GaugeMetricFamily(
        "promo_index_reconcile_age_seconds",
        "Seconds since the latest finished reconcile without an error.",
        (timezone.now() - clean.finished_at).total_seconds(),
    )

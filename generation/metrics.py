"""The generation app's part of /metrics (core/metrics.py)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from generation.models import AssetStatus, GeneratedAsset


def asset_metrics() -> Iterator[Metric]:
    """Generated images by status (core/metrics.py reads it at each scrape)."""
    counts = dict(GeneratedAsset.objects.order_by().values_list("status").annotate(n=Count("pk")))
    gauge = GaugeMetricFamily("promo_assets", "Generated images by status.", labels=["status"])
    for status in AssetStatus.values:
        gauge.add_metric([status], counts.get(status, 0))
    yield gauge

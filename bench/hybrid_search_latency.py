"""How long one similar-bestsellers search takes in Milvus Lite, before and after a flush.

Runs the app's own VectorIndex (dense COSINE + sparse IP legs, category and sales filter, RRF)
on synthetic rows in a throw-away Milvus Lite file, and prints p50/p95 latencies and the ratio
between unflushed and flushed search, measured in one run (these machines are shared and noisy).

    .venv/bin/python bench/hybrid_search_latency.py [--rows 5000] [--dim 256] [--queries 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import logging  # noqa: E402

import django  # noqa: E402

django.setup()
# Milvus Lite's in-process server logs a traceback for each RPC it does not implement.
logging.getLogger("grpc._server").setLevel(logging.CRITICAL)

from django.conf import settings  # noqa: E402

from catalog.selectors import bestseller_filter  # noqa: E402
from catalog.vector_index import VectorIndex  # noqa: E402

CATEGORIES = [f"category_{i}" for i in range(20)]


def rows(count: int, dim: int, rng: np.random.Generator) -> list[dict]:
    dense = rng.normal(size=(count, dim)).astype("float32")
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    result = []
    for i in range(count):
        terms = rng.choice(2000, size=8, replace=False) + 1
        result.append({
            "id": i + 1, "dense": dense[i].tolist(),
            "sparse": {int(t): float(w) for t, w in zip(terms, rng.random(8))},
            "sku": f"SKU{i}", "category": CATEGORIES[i % len(CATEGORIES)], "color": "", "style": "",
            "season": "", "sales_count": int(rng.integers(0, 5000)), "price": 10.0,
            "image_sha256": "", "text_sha256": "", "text_version": 1,
        })
    return result


def measure(index: VectorIndex, queries: list[dict], dim: int) -> list[float]:
    timings = []
    for query in queries:
        expr = bestseller_filter(category=query["category"], min_sales=1500, exclude_id=query["id"])
        started = time.perf_counter()
        index.hybrid_search(dense=query["dense"], sparse=query["sparse"], expr=expr, limit=3,
                            candidates=settings.RETRIEVAL_CANDIDATES, rrf_k=settings.RETRIEVAL_RRF_K)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def summary(label: str, timings: list[float]) -> str:
    p95 = sorted(timings)[int(len(timings) * 0.95) - 1]
    return f"{label:<12} p50 {statistics.median(timings):7.1f} ms   p95 {p95:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()

    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as folder:
        settings.MILVUS_URI = str(Path(folder) / "bench.db")
        settings.MILVUS_WRITE_LOCK_FILE = Path(folder) / "bench.lock"
        settings.MILVUS_COLLECTION_PREFIX = "bench"
        index = VectorIndex(embedder_name="synthetic", dimension=args.dim)
        index.ensure()
        data = rows(args.rows, args.dim, rng)
        started = time.perf_counter()
        index.upsert(data)
        insert_seconds = time.perf_counter() - started
        queries = [data[int(i)] for i in rng.choice(len(data), size=args.queries, replace=False)]

        unflushed = measure(index, queries, args.dim)
        index.flush()
        flushed = measure(index, queries, args.dim)

    print(f"Milvus Lite, {args.rows} rows × {args.dim}-d dense + sparse, {len(CATEGORIES)} categories, "
          f"{args.queries} hybrid searches (filter: category and sales_count > 1500, RRF k=60)")
    print(f"insert       {args.rows / insert_seconds:7.0f} rows/s")
    print(summary("unflushed", unflushed))
    print(summary("flushed", flushed))
    print(f"ratio        unflushed / flushed p50 = "
          f"{statistics.median(unflushed) / statistics.median(flushed):.1f}×")


if __name__ == "__main__":
    main()

"""What the index status page spends its time on, at catalog scale, with Milvus idle and busy.

In a throw-away folder: SQLite with --rows products (half of them synced, as in the middle of
an index sync), the Procfile's milvus-lite server on a free port with the catalog's collection,
and then --writers processes upserting batches of 256 rows into it (with a flush every
--flush-every batches) the way the index sync does. Each part of `index_status()` is timed
--repeat times with Milvus idle, then busy, and so is the whole page through the test client;
the page waits INDEX_STATUS_MILVUS_WAIT_MS (--wait-ms) at most for Milvus' figures.

    .venv/bin/python bench/index_status.py [--rows 100000] [--writers 2] [--repeat 20]
                                           [--flush-every 20] [--wait-ms 1000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from stack import Process, free_port, procfile_commands
from throwaway import setup_django

WRITE_BATCH = 256


def write_forever(uri: str, alias: str, dimension: int, flush_every: int, stop) -> None:
    """Upserts into the collection until `stop` is set (a process of its own, like a worker)."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri)
    rng = random.Random()
    batch = 0
    while not stop.is_set():
        first = rng.randrange(1, 10_000_000)
        rows = [
            {
                "id": first + n,
                "dense": [rng.random() for _ in range(dimension)],
                "sparse": {rng.randrange(5000): rng.random() for _ in range(12)},
                "sku": f"B{first + n}",
                "category": "Dress",
                "color": "red",
                "style": "casual",
                "season": "Summer",
                "sales_count": 10,
                "price": 9.9,
                "image_sha256": "0" * 64,
                "text_sha256": "0" * 64,
                "text_version": 1,
            }
            for n in range(WRITE_BATCH)
        ]
        client.upsert(alias, rows)
        batch += 1
        if flush_every and batch % flush_every == 0:
            client.flush(alias)


def timed(call, repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def line(name: str, seconds: list[float]) -> str:
    return (
        f"  {name:<34} p50 {statistics.median(seconds) * 1000:8.1f} ms   "
        f"max {max(seconds) * 1000:8.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--flush-every", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--wait-ms", type=int, help="INDEX_STATUS_MILVUS_WAIT_MS (default: the setting's)"
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="index-status-"))
    ports = {name: free_port() for name in ("redis", "milvus", "web")}
    port = ports["milvus"]
    milvus = Process("milvus", procfile_commands(folder, ports)["milvus"], folder, port)
    milvus.start()
    try:
        run(folder, f"http://127.0.0.1:{port}", args)
    finally:
        milvus.stop()


def run(folder: Path, uri: str, args) -> None:
    setup_django(folder, MILVUS_SINGLE_WRITER="0")
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.urls import reverse

    from catalog import indexing
    from catalog.embedders import get_embedder
    from catalog.models import ColourVocabulary, IndexRun, IndexState, Product
    from catalog.sparse import active_vectorizer

    settings.MILVUS_URI = uri
    if args.wait_ms is not None:
        settings.INDEX_STATUS_MILVUS_WAIT_MS = args.wait_ms
    settings.ALLOWED_HOSTS = ["*"]
    settings.STORAGES = {  # no collectstatic in a throw-away folder
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    started = time.monotonic()
    Product.objects.bulk_create(
        (
            Product(
                sku=f"SKU-{n:07d}",
                category="Dress",
                index_state=IndexState.SYNCED if n % 2 else IndexState.PENDING,
            )
            for n in range(args.rows)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"{args.rows:,} products in {time.monotonic() - started:.1f} s; SQLite in {folder}")
    embedder = get_embedder()
    index = indexing.get_index(embedder)
    index.ensure()

    states = Product.objects.order_by().values_list("index_state").annotate(n=Count("pk"))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + str(states.query))
        print("  group-by plan:", "; ".join(row[-1] for row in cursor.fetchall()))

    User.objects.create_superuser("bench", password="bench")
    client = Client()
    client.force_login(User.objects.get(username="bench"))
    page = reverse("admin:catalog_product_index_status")
    parts = {
        "Product.objects.count()": lambda: Product.objects.count(),
        "per-state Count (group-by)": lambda: list(states.all()),
        "vectorizer, colours, last runs": lambda: (
            active_vectorizer(),
            ColourVocabulary.objects.filter(embedder=embedder.name).first(),
            IndexRun.objects.filter(kind=IndexRun.Kind.RECONCILE).first(),
            IndexRun.objects.filter(kind=IndexRun.Kind.REBUILD).first(),
        ),
        "Milvus collection_name()": index.collection_name,
        "Milvus describe()": index.describe,
        "index_status() whole": indexing.index_status,
        "the page (test client)": lambda: client.get(page),
    }

    def measure(label: str) -> None:
        print(label)
        for name, call in parts.items():
            print(line(name, timed(call, args.repeat)))
        late = sum(bool(indexing.index_status().get("figures_late")) for _ in range(args.repeat))
        print(
            f"  the page waits {settings.INDEX_STATUS_MILVUS_WAIT_MS} ms at most for Milvus; "
            f"{late} of {args.repeat} loads showed the last figures instead"
        )
        sys.stdout.flush()

    measure("Milvus idle:")
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    writers = [
        context.Process(
            target=write_forever,
            args=(uri, index.alias, embedder.dimension, args.flush_every, stop),
        )
        for _ in range(args.writers)
    ]
    for writer in writers:
        writer.start()
    time.sleep(3)  # the writers are under way
    try:
        measure(
            f"Milvus busy ({args.writers} processes upserting, a flush every "
            f"{args.flush_every} batches each):"
        )
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=60)


if __name__ == "__main__":
    main()

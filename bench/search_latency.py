"""How long the app's similar-bestsellers search takes, beside the raw Milvus call it makes.

    .venv/bin/python bench/search_latency.py [--sizes 10000,50000,100000] [--queries 100]

For each catalog size, in one run (these machines are shared and noisy): synthetic products
(20 categories, sales 0..5,000, TF-IDF text) with cached offline-size vectors are indexed by
the app's own rebuild into a throw-away Milvus Lite and SQLite, then each query product is
searched twice, alternately: by `catalog.selectors.similar_bestsellers` (embedding from the
cache, TF-IDF query, one hybrid_search that also yields each leg's rank, products from the
database) and by the bare pymilvus `hybrid_search` with the same two legs, filter and RRF,
asking for the top 3 ids only: the floor. The same raw call is also timed on a copy of the
rows in a collection with category as Milvus's partition key (16 partitions), to decide
whether the app's collection should have one.

Then 20 products are saved one at a time through the app's sync: the search is measured with
their rows unflushed, and again after the periodic flush job (`index_flush_due`) has run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from throwaway import setup_django

CATEGORIES = [f"category{i}" for i in range(20)]
WORDS = [f"word{i}" for i in range(400)]
COLOURS = ["navy", "red", "black", "white", "cream", "olive", "camel", "pink", "grey", "mustard"]
STYLES = ["casual", "elegant", "minimalist", "bohemian", "classic", "romantic", "ethnic", "sporty"]
SEASONS = ["spring", "summer", "autumn", "winter"]
SINGLE_SYNCS = 20


def add_products(start: int, stop: int, rng: np.random.Generator) -> None:
    """Products start..stop-1 with a cached vector each (no image files: never embedded)."""
    from catalog.embedders import get_embedder
    from catalog.models import ImageEmbedding, IndexState, Product

    embedder = get_embedder()
    vectors = rng.normal(size=(stop - start, embedder.dimension)).astype("<f4")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    products, embeddings = [], []
    for i, vector in zip(range(start, stop), vectors, strict=True):
        sha = f"{i:064x}"
        products.append(
            Product(
                sku=f"SKU{i:06d}",
                lifecycle=Product.Lifecycle.HISTORICAL,
                image=f"bench/{i}.jpg",
                image_sha256=sha,
                category=CATEGORIES[i % len(CATEGORIES)],
                color=str(rng.choice(COLOURS)),
                style=str(rng.choice(STYLES)),
                season=str(rng.choice(SEASONS)),
                description=" ".join(rng.choice(WORDS, size=10)),
                sales_count=int(rng.integers(0, 5000)),
                index_state=IndexState.SYNCED,
            )
        )
        embeddings.append(
            ImageEmbedding(
                embedder=embedder.name,
                image_sha256=sha,
                dimension=embedder.dimension,
                vector=vector.tobytes(),
            )
        )
    Product.objects.bulk_create(products, batch_size=2000)
    ImageEmbedding.objects.bulk_create(embeddings, batch_size=2000)


def partitioned_copy(size: int) -> str:
    """The catalog's rows again, in a collection whose category is the partition key."""
    from catalog.indexing import _rows, _text_version, chunks, embeddings_for, get_index
    from catalog.models import Product
    from catalog.vector_index import client

    index = get_index()
    schema = index._schema()
    next(field for field in schema.fields if field.name == "category").is_partition_key = True
    name = f"bench_partition_key_{size}"
    client().create_collection(name, schema=schema, num_partitions=16)
    fields = client().describe_collection(name)["fields"]
    assert [f["name"] for f in fields if f.get("is_partition_key")] == ["category"], fields
    client().create_index(name, index._index_params())
    version = _text_version()
    for chunk in chunks(Product.objects.order_by("pk").iterator(chunk_size=2000), 2000):
        client().upsert(name, _rows(chunk, embeddings_for(chunk), version))
    client().flush(name)
    client().load_collection(name)
    return name


def raw_search(product, dense, sparse, collection: str | None = None):
    """The floor: the same hybrid request, straight through pymilvus, top 3 ids only."""
    from django.conf import settings
    from pymilvus import AnnSearchRequest, RRFRanker

    from catalog.indexing import get_index
    from catalog.models import bestseller_threshold
    from catalog.selectors import bestseller_filter
    from catalog.vector_index import client

    expr = bestseller_filter(
        category=product.category, min_sales=bestseller_threshold(), exclude_id=product.pk
    )
    limit = settings.RETRIEVAL_CANDIDATES
    requests = [
        AnnSearchRequest([dense.tolist()], "dense", {"metric_type": "COSINE"}, limit, expr=expr),
        AnnSearchRequest([sparse], "sparse", {"metric_type": "IP"}, limit, expr=expr),
    ]
    return client().hybrid_search(
        collection or get_index().alias,
        requests,
        RRFRanker(settings.RETRIEVAL_RRF_K),
        limit=settings.RETRIEVAL_TOP_K,
        consistency_level="Strong",
    )


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def p95(timings: list[float]) -> float:
    return sorted(timings)[max(0, int(len(timings) * 0.95) - 1)]


def measure(
    queries, partitioned: str | None = None
) -> tuple[list[float], list[float], list[float]]:
    from catalog.indexing import embeddings_for
    from catalog.selectors import similar_bestsellers
    from catalog.sparse import active_vectorizer, encode, query_document

    version = active_vectorizer().version
    app, raw, keyed = [], [], []
    for product in queries:
        dense = embeddings_for([product])[product.image_sha256]
        sparse = encode([query_document(product)], version, for_query=True)[0]
        app.append(timed(lambda p=product: similar_bestsellers(product=p)))
        raw.append(timed(lambda p=product, d=dense, s=sparse: raw_search(p, d, s)))
        if partitioned:
            keyed.append(
                timed(lambda p=product, d=dense, s=sparse: raw_search(p, d, s, partitioned))
            )
    return app, raw, keyed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000,100000")
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))

    with tempfile.TemporaryDirectory() as folder:
        setup_django(Path(folder), DJANGO_DEBUG="1")
        from catalog.indexing import index_flush_due, index_rebuild, products_sync
        from catalog.models import Product

        rng = np.random.default_rng(7)
        lines, ratios, count = [], [], 0
        for size in sizes:
            add_products(count, size, rng)
            count = size
            started = time.perf_counter()
            index_rebuild(refit=True)
            indexed = time.perf_counter() - started
            ids = rng.choice(size, size=args.queries + 5, replace=False)
            queries = list(Product.objects.filter(sku__in=[f"SKU{i:06d}" for i in ids]))
            partitioned = partitioned_copy(size)
            measure(queries[:5], partitioned)  # warm the caches and the connection
            app, raw, keyed = measure(queries[5:], partitioned)

            singles = queries[5 : 5 + SINGLE_SYNCS]
            for product in singles:
                product.save()  # saved one at a time, as a merchandiser's edits are
                products_sync(product_ids=[product.pk])
            unflushed = measure(queries[5:])[0]
            index_flush_due()
            flushed = measure(queries[5:])[0]

            lines.append(
                f"{size:>7,}  {statistics.median(app):7.1f} {p95(app):7.1f}   "
                f"{statistics.median(raw):7.1f} {p95(raw):7.1f}   "
                f"{statistics.median(app) / statistics.median(raw):5.2f}x {p95(app) / p95(raw):5.2f}x   "
                f"{statistics.median(unflushed):7.1f} {statistics.median(flushed):7.1f}   {indexed:5.0f} s   "
                f"{statistics.median(keyed):7.1f} {p95(keyed):7.1f}  {p95(keyed) / p95(raw):5.2f}x"
            )
            ratios.append((size, p95(app) / p95(raw), p95(keyed) / p95(raw)))
            print(lines[-1], flush=True)

    print(
        f"\nMilvus Lite, offline-size vectors + TF-IDF, {len(CATEGORIES)} categories, "
        f"{args.queries} queries per size, alternating app and raw; times in ms"
    )
    print(
        f"{'rows':>7}  {'app p50':>7} {'p95':>7}   {'raw p50':>7} {'p95':>7}   "
        f"{'p50':>6} {'p95':>6}   {'unflushed':>9} {'flushed':>7}   {'rebuild':>7}   "
        f"{'keyed p50':>9} {'p95':>7} {'÷raw':>6}"
    )
    print("\n".join(lines))
    print(
        f"(unflushed / flushed: app p50 with {SINGLE_SYNCS} single-product syncs in memory, "
        f"then after the flush job; keyed: the raw call on a copy with category as the "
        f"partition key, its p95 ÷ the raw p95)"
    )
    for size, ratio, keyed_ratio in ratios:
        print(
            f"{size:>7,} rows: app p95 {ratio:.2f}× the raw call, "
            f"{'meets' if ratio <= 1.2 else 'misses'} the target (≤ 1.2×); category as partition key: "
            f"raw p95 {keyed_ratio:.2f}× ({'faster' if keyed_ratio < 0.9 else 'no faster'})"
        )


if __name__ == "__main__":
    main()

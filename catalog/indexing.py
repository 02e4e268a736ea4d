"""Keeping the vector index in step with the catalog (the database is the source of truth).

Services called by the Dramatiq actors in catalog.tasks and by the management commands:
`products_sync` upserts or removes products, `index_rebuild` fills a fresh collection and
swaps the alias, `index_check` finds (and repairs) drift between the database and Milvus.
Dense vectors come from the embedding cache whenever the image was embedded before.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice

import numpy as np
from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from catalog.colours import ColourSamples, colour_vocabulary_save
from catalog.embedders import Embedder, get_embedder
from catalog.models import ColourVocabulary, ImageEmbedding, IndexRun, IndexState, Product
from catalog.sparse import EMPTY_MARKER, active_vectorizer, encode, product_document, vectorizer_fit
from catalog.vector_index import IndexUnavailable, VectorIndex, write_lock
from core.openrouter import ProviderError
from core.spending import SpendingCapReached

logger = logging.getLogger(__name__)
SYNC_CHUNK = 256


def get_index(embedder: Embedder | None = None) -> VectorIndex:
    embedder = embedder or get_embedder()
    return VectorIndex(embedder_name=embedder.name, dimension=embedder.dimension)


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """Lists of `size` items (the last one shorter) from any iterable."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# --- dense vectors, cached by (embedder, image hash) ---------------------------------------


def embeddings_for(
    products: Iterable[Product], embedder: Embedder | None = None
) -> dict[str, np.ndarray]:
    """Vectors of the products' images by image hash; only images never embedded are sent."""
    embedder = embedder or get_embedder()
    by_sha = {p.image_sha256: p for p in products}
    vectors = {
        row.image_sha256: np.frombuffer(row.vector, dtype="<f4")
        for row in ImageEmbedding.objects.filter(embedder=embedder.name, image_sha256__in=by_sha)
        if row.dimension == embedder.dimension
    }
    missing = [p for sha, p in by_sha.items() if sha not in vectors]
    # One provider call per chunk, its vectors saved before the next: nothing paid is lost.
    for chunk in chunks(missing, embedder.batch_size):
        images = []
        for product in chunk:
            with product.image.storage.open(product.image.name, "rb") as handle:
                images.append(handle.read())
        new = dict(zip((p.image_sha256 for p in chunk), embedder.embed_images(images), strict=True))
        embeddings_keep(embedder=embedder, vectors=new)
        vectors.update(new)
    return vectors


def embeddings_cached(*, embedder: Embedder, shas: Iterable[str]) -> set[str]:
    """Which of these image hashes already have a vector from this embedder."""
    return set(
        ImageEmbedding.objects.filter(
            embedder=embedder.name, image_sha256__in=list(shas)
        ).values_list("image_sha256", flat=True)
    )


def embeddings_keep(*, embedder: Embedder, vectors: dict[str, np.ndarray]) -> None:
    """Cache vectors by image hash (a vector already cached stays). Callers save each chunk as
    it comes, so an interrupted rebuild or import never computes or pays for these again."""
    ImageEmbedding.objects.bulk_create(
        [
            ImageEmbedding(
                embedder=embedder.name,
                image_sha256=sha,
                dimension=embedder.dimension,
                vector=np.asarray(v, dtype="<f4").tobytes(),
            )
            for sha, v in vectors.items()
        ],
        ignore_conflicts=True,
    )


def _text_version() -> int:
    """The active TF-IDF version, fitting the first one on demand."""
    active = active_vectorizer()
    if active is None:
        active = vectorizer_fit()
    return active.version if active else 0


def _rows(products: list[Product], vectors: dict[str, np.ndarray], version: int) -> list[dict]:
    documents = [product_document(p) for p in products]
    sparse = encode(documents, version) if version else [dict(EMPTY_MARKER) for _ in products]
    return [
        {
            "id": p.pk,
            "dense": vectors[p.image_sha256].tolist(),
            "sparse": s,
            **_scalars(p, version),
        }
        for p, s in zip(products, sparse, strict=True)
    ]


def _scalars(product: Product, version: int) -> dict:
    """Everything a row holds besides its vectors, and hashes of what the vectors are made of:
    comparing these finds every row that no longer matches its product."""
    return {
        "sku": product.sku,
        "category": product.category,
        "color": product.color,
        "style": product.style,
        "season": product.season,
        "sales_count": product.sales_count,
        "price": float(product.price or 0),
        "image_sha256": product.image_sha256,
        "text_sha256": hashlib.sha256(product_document(product).encode()).hexdigest(),
        "text_version": version,
    }


def _mark(product_ids: Iterable[int], state: IndexState, error: str = "", *, before=None) -> None:
    queryset = Product.objects.filter(pk__in=list(product_ids))
    if before is not None:
        # A product edited after we read it stays pending: its own sync is queued.
        queryset = queryset.filter(updated_at__lte=before)
    queryset.update(index_state=state, index_error=error[:2000], index_state_at=timezone.now())


# --- services ------------------------------------------------------------------------------


def products_sync(*, product_ids: list[int]) -> None:
    """Upsert these products into the index; ids no longer in the database are removed.

    Raises IndexUnavailable or ProviderError after recording the failure on the products,
    so the calling task can retry.
    """
    index = get_index()
    read_at = timezone.now()
    try:
        _ready(index)
        vectors = embeddings_for(Product.objects.filter(pk__in=product_ids))
        version = _text_version()
        # Read the rows again under the write lock, so an older read never overwrites a newer.
        with write_lock():
            products = list(Product.objects.filter(pk__in=product_ids))
            vectors.update(embeddings_for([p for p in products if p.image_sha256 not in vectors]))
            index.upsert(_rows(products, vectors, version))
            index.delete(set(product_ids) - {p.pk for p in products})
            _flush_or_mark(index, len(product_ids))
    except (IndexUnavailable, ProviderError, SpendingCapReached) as exc:
        _mark(product_ids, IndexState.FAILED, str(exc))
        raise
    _mark([p.pk for p in products], IndexState.SYNCED, before=read_at)


def _flush_or_mark(index: VectorIndex, rows: int) -> None:
    """Milvus Lite searches unflushed rows by brute force (bench/search_latency.py measures
    it): a bulk sync flushes at once; small ones leave a mark, and one flush every
    INDEX_FLUSH_INTERVAL_SECONDS covers them all (`index_flush_due`), as a flush per save
    would write a segment per product."""
    if rows >= settings.INDEX_FLUSH_MIN_ROWS:
        index.flush()
    else:
        index.mark_flush_due()


def index_flush_due() -> bool:
    """Flush the index if small syncs left rows unflushed; True when it flushed."""
    return get_index().flush_if_due()


def _ready(index: VectorIndex) -> None:
    """The collection exists and has this version's schema; an older one is rebuilt first."""
    index.ensure()
    if not index.schema_current():
        logger.warning("the index %s predates this version's schema: rebuilding it", index.alias)
        index_rebuild()


def products_sync_waiting() -> int:
    """Sync the products whose own sync never came: pending for a minute, or failed ten
    minutes ago (a broker or Milvus outage, a sample loaded before the workers ran)."""
    now = timezone.now()
    waiting = Product.objects.filter(
        Q(index_state=IndexState.PENDING, updated_at__lt=now - timedelta(seconds=60))
        | Q(index_state=IndexState.FAILED, index_state_at__lt=now - timedelta(minutes=10))
    )
    ids = list(waiting.values_list("pk", flat=True))
    for chunk in chunks(ids, SYNC_CHUNK):
        products_sync(product_ids=chunk)
    return len(ids)


def products_remove(*, product_ids: list[int]) -> None:
    get_index().delete(product_ids)


@contextmanager
def _recorded(kind: IndexRun.Kind, embedder: Embedder) -> Iterator[IndexRun]:
    """An IndexRun row for the status page, finished (with the error, if any) however it ends."""
    run = IndexRun.objects.create(kind=kind, embedder=embedder.name)
    try:
        yield run
    except Exception as exc:
        run.error = str(exc)
        raise
    finally:
        run.finished_at = timezone.now()
        run.save()


@dataclass
class Drift:
    missing: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    orphaned: list[int] = field(default_factory=list)
    repaired: int = 0

    @property
    def total(self) -> int:
        return len(self.missing) + len(self.stale) + len(self.orphaned)


def index_check(*, repair: bool = False) -> Drift:
    """Compare the database with Milvus: rows missing, stale (different data) and orphaned."""
    embedder = get_embedder()
    index = get_index(embedder)
    with _recorded(IndexRun.Kind.RECONCILE, embedder) as run:
        _ready(index)
        active = active_vectorizer()
        version = active.version if active else 0
        expected = {p.pk: _scalars(p, version) for p in Product.objects.all().iterator()}
        stored = {row.pop("id"): row for row in index.rows()}
        drift = Drift(
            missing=sorted(expected.keys() - stored.keys()),
            orphaned=sorted(stored.keys() - expected.keys()),
            stale=sorted(
                pk for pk in expected.keys() & stored.keys() if not _same(expected[pk], stored[pk])
            ),
        )
        if repair and drift.total:
            for chunk in chunks(drift.missing + drift.stale, SYNC_CHUNK):
                products_sync(product_ids=chunk)
            index.delete(drift.orphaned)
            drift.repaired = drift.total
        if repair:
            # Whatever a sync left unflushed (Milvus Lite searches it by brute force), even if
            # the flush job has not run: the repair flushes too.
            index.flush()
            _colours_if_missing(embedder)
            in_step = expected.keys() - set(drift.missing) - set(drift.stale)
            Product.objects.filter(pk__in=in_step).exclude(index_state=IndexState.SYNCED).update(
                index_state=IndexState.SYNCED, index_error="", index_state_at=timezone.now()
            )
        run.collection = index.collection_name() or ""
        run.missing, run.stale, run.orphaned = (
            len(drift.missing),
            len(drift.stale),
            len(drift.orphaned),
        )
        run.repaired = drift.repaired
        return drift


def _colours_if_missing(embedder: Embedder) -> None:
    """An index filled by syncs alone (a new embedder, an upgraded descriptor) gets its colour
    words from the reconcile; a rebuild renews them."""
    if (
        not embedder.measures_colour
        or ColourVocabulary.objects.filter(embedder=embedder.name).exists()
    ):
        return
    samples = ColourSamples(embedder)
    coloured = Product.objects.exclude(color="").order_by("pk").iterator()
    for chunk in chunks(coloured, SYNC_CHUNK):
        samples.add(chunk, embeddings_for(chunk, embedder))
    colour_vocabulary_save(samples=samples)


def _same(expected: dict, stored: dict) -> bool:
    return all(
        round(float(stored.get(key) or 0), 2) == round(value, 2)
        if key == "price"
        else stored.get(key) == value
        for key, value in expected.items()
    )


def index_rebuild(
    *, refit: bool = False, progress: Callable[[int], None] = lambda n: None
) -> IndexRun:
    """Rebuild the whole index into a new collection and swap the alias to it.

    With refit, a new TF-IDF vocabulary is fitted first: every sparse vector changes. The
    colour words (catalog.colours) are measured again from the vectors the rebuild reads.
    """
    embedder = get_embedder()
    index = get_index(embedder)
    started = timezone.now()
    with _recorded(IndexRun.Kind.REBUILD, embedder) as run:
        version = (vectorizer_fit() or active_vectorizer()) if refit else None
        version = version.version if version else _text_version()

        samples = ColourSamples(embedder)

        def batches():
            for chunk in chunks(Product.objects.order_by("pk").iterator(), SYNC_CHUNK):
                vectors = embeddings_for(chunk, embedder)
                samples.add(chunk, vectors)
                progress(len(chunk))
                yield _rows(chunk, vectors, version)

        run.collection = index.rebuild(batches())
        colour_vocabulary_save(samples=samples)
        run.repaired = Product.objects.count()
        _mark(Product.objects.values_list("pk", flat=True), IndexState.SYNCED, before=started)
        # Edits that landed in the old collection while the new one was filling.
        changed = list(Product.objects.filter(updated_at__gt=started).values_list("pk", flat=True))
        for chunk in chunks(changed, SYNC_CHUNK):
            products_sync(product_ids=chunk)
        return run


def refit_needed(*, changed: int) -> bool:
    """An import that changes a large share of the catalog shifts the vocabulary: refit."""
    if active_vectorizer() is None:
        return True
    total = Product.objects.count()
    return bool(total) and changed / total >= settings.SPARSE_REFIT_CHANGED_SHARE


_figures_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="milvus-figures")
_figures_lock = threading.Lock()
_figures_reading: dict[tuple[str, str], Future] = {}  # one read in flight per index
_figures_last: dict[tuple[str, str], dict] = {}  # the last figures each index gave


def _read_figures(index: VectorIndex, key: tuple[str, str]) -> dict:
    figures = {**index.describe(), "figures_at": timezone.now()}
    _figures_last[key] = figures
    return figures


def index_figures(index: VectorIndex) -> dict:
    """Milvus' own figures for the status page (the collection, its rows), waiting for them
    no longer than INDEX_STATUS_MILVUS_WAIT_MS.

    A Milvus busy with a sync's upserts and flushes answers its statistics late (from 2 ms
    idle to hundreds of ms, and seconds on a loaded machine: bench/index_status.py), and
    nothing bounds how late. The read goes on in a thread; one that answers in time gives
    fresh figures, else the page gets the last figures this process read, with
    `figures_late` and their time `figures_at`, and the late answer is kept for the next
    load. One read per index is in flight at a time, so a stuck Milvus piles up no threads.
    Raises IndexUnavailable when Milvus answers with an error in time.
    """
    key = (str(settings.MILVUS_URI), index.alias)
    with _figures_lock:
        reading = _figures_reading.get(key)
        if reading is None or reading.done():
            reading = _figures_reading[key] = _figures_pool.submit(_read_figures, index, key)
    try:
        return reading.result(timeout=settings.INDEX_STATUS_MILVUS_WAIT_MS / 1000)
    except FutureTimeout:
        last = _figures_last.get(key)
        if last is None:
            raise IndexUnavailable(
                f"Milvus has not answered within {settings.INDEX_STATUS_MILVUS_WAIT_MS} ms "
                "(busy with writes, or unreachable); reload the page for its figures."
            ) from None
        return {**last, "figures_late": True}


def index_status() -> dict:
    """What the index status page shows."""
    embedder = get_embedder()
    index = get_index(embedder)
    status = {
        "alias": index.alias,
        "embedder": embedder.name,
        "offline": embedder.is_offline,
        "dimension": embedder.dimension,
        "products": Product.objects.count(),
        "states": dict(
            Product.objects.order_by().values_list("index_state").annotate(n=Count("pk"))
        ),
        "vectorizer": active_vectorizer(),
        "colours": ColourVocabulary.objects.filter(embedder=embedder.name).first(),
        "measures_colour": embedder.measures_colour,
        "last_reconcile": IndexRun.objects.filter(kind=IndexRun.Kind.RECONCILE).first(),
        "last_rebuild": IndexRun.objects.filter(kind=IndexRun.Kind.REBUILD).first(),
        "figures_wait_ms": settings.INDEX_STATUS_MILVUS_WAIT_MS,
    }
    status["colour_words"] = list(status["colours"].colours) if status["colours"] else []
    try:
        status.update(index_figures(index))
    except IndexUnavailable as exc:
        status["error"] = str(exc)
    return status

"""The Milvus collection that indexes the catalog: the only module that talks to pymilvus.

One collection per embedder (its dimension is part of the schema). The app reads and writes
through an alias, `<prefix>_<embedder>`; a rebuild fills a new collection
`<prefix>_<embedder>_<build>` and moves the alias to it in one step.

The client is created lazily in each process: gRPC channels do not survive fork(), and
Dramatiq forks its workers. Milvus Lite takes one writer per collection, so with it every write
goes through `write_lock()`, held in Redis so that every host's processes queue on it.
"""

from __future__ import annotations

import bisect
import fcntl
import functools
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis
from django.conf import settings
from pymilvus import AnnSearchRequest, DataType, MilvusClient, MilvusException, RRFRanker

logger = logging.getLogger(__name__)

SCALAR_FIELDS = (
    "sku",
    "category",
    "color",
    "style",
    "season",
    "sales_count",
    "price",
    "image_sha256",
    "text_sha256",
    "text_version",
)
WRITE_BATCH = 256
_clients: dict[tuple, MilvusClient] = {}
_redis_clients: dict[tuple, redis.Redis] = {}
_client_lock = threading.Lock()
_write_thread_lock = threading.Lock()
_rebuild_thread_lock = threading.Lock()
_held = threading.local()
_current_schemas: set[str] = set()  # collections seen to have this version's schema
_flush_due_here: set[str] = set()  # without a Redis broker: aliases with unflushed writes
_flush_due_lock = threading.Lock()


class IndexUnavailable(Exception):
    """Milvus could not be reached or refused the call; the message says what it said."""


class IndexNotReady(IndexUnavailable):
    """Milvus answers, but the index does not hold the catalog yet: its collection was missing
    (and was created empty) or is still being filled. Waiting a few minutes fixes it."""


def client() -> MilvusClient:
    """This process's client for the configured Milvus (created on first use)."""
    key = (os.getpid(), settings.MILVUS_URI, settings.MILVUS_TOKEN)
    with _client_lock:
        if key not in _clients:
            _clients[key] = _connect()
        return _clients[key]


def _connect() -> MilvusClient:
    try:
        return MilvusClient(
            uri=settings.MILVUS_URI, token=settings.MILVUS_TOKEN, timeout=settings.MILVUS_TIMEOUT
        )
    except MilvusException as exc:
        raise IndexUnavailable(
            f"Milvus at {settings.MILVUS_URI} is unavailable: {exc.message}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - connection errors come in many types
        raise IndexUnavailable(f"Milvus at {settings.MILVUS_URI} is unavailable: {exc}") from exc


@contextmanager
def write_lock() -> Iterator[None]:
    """Serialise writes where Milvus needs it (MILVUS_SINGLE_WRITER: Milvus Lite takes one
    writer per collection); a Milvus server takes concurrent writes, and nothing waits.

    Re-entrant within a thread, so a caller can hold it around a read-then-write.
    """
    if getattr(_held, "depth", 0) or not settings.MILVUS_SINGLE_WRITER:
        _held.depth = getattr(_held, "depth", 0) + 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    with shared_lock("milvus-write", _write_thread_lock, timeout=300):
        _held.depth = 1
        try:
            yield
        finally:
            _held.depth = 0


@contextmanager
def shared_lock(name: str, thread_lock: threading.Lock, *, timeout: int) -> Iterator[None]:
    """A lock every process of the deployment sees: in Redis when the task broker is Redis
    (any number of hosts), else a file lock (one machine: tests, scripts). A holder that dies
    frees a Redis lock after `timeout` seconds."""
    with thread_lock:
        if _redis_broker():
            lock = _redis().lock(
                f"promo:{name}:{settings.MILVUS_COLLECTION_PREFIX}",
                timeout=timeout,
                blocking_timeout=timeout,
            )
            if not lock.acquire():
                raise IndexUnavailable(f"another process has held the {name} lock for {timeout} s")
            try:
                yield
            finally:
                try:
                    lock.release()
                except redis.exceptions.LockError:  # expired meanwhile: nothing to release
                    pass
            return
        path = Path(f"{settings.MILVUS_WRITE_LOCK_FILE}.{name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _redis_broker() -> bool:
    return settings.DRAMATIQ_BROKER["BROKER"].endswith("RedisBroker")


def _redis() -> redis.Redis:
    key = (os.getpid(), settings.REDIS_URL)
    with _client_lock:
        if key not in _redis_clients:
            _redis_clients[key] = redis.Redis.from_url(settings.REDIS_URL)
        return _redis_clients[key]


def filter_literal(value: str) -> str:
    """A string as a Milvus expression literal: quotes and backslashes cannot end it early."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


@dataclass(frozen=True)
class FusedHit:
    id: int
    score: float  # the RRF score Milvus fused
    dense_rank: int | None  # 1-based rank in each leg; None when that leg did not find it
    sparse_rank: int | None


class VectorIndex:
    """The catalog's collection for one embedder, reached through its alias."""

    def __init__(self, *, embedder_name: str, dimension: int):
        self.embedder_name = embedder_name
        self.dimension = dimension
        self.alias = f"{settings.MILVUS_COLLECTION_PREFIX}_{embedder_name}"

    # --- schema and lifecycle ------------------------------------------------------------

    def _schema(self):
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)  # the Django pk
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=self.dimension)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("sku", DataType.VARCHAR, max_length=64)
        schema.add_field("category", DataType.VARCHAR, max_length=100)
        schema.add_field("color", DataType.VARCHAR, max_length=100)
        schema.add_field("style", DataType.VARCHAR, max_length=100)
        schema.add_field("season", DataType.VARCHAR, max_length=50)
        schema.add_field("sales_count", DataType.INT64)
        schema.add_field("price", DataType.FLOAT)
        schema.add_field("image_sha256", DataType.VARCHAR, max_length=64)
        schema.add_field("text_sha256", DataType.VARCHAR, max_length=64)  # of the sparse document
        schema.add_field("text_version", DataType.INT64)
        return schema

    def _index_params(self):
        params = MilvusClient.prepare_index_params()
        if settings.MILVUS_DENSE_INDEX == "HNSW":
            params.add_index(
                "dense",
                index_type="HNSW",
                metric_type="COSINE",
                params={"M": 16, "efConstruction": 200},
            )
        else:
            params.add_index("dense", index_type="FLAT", metric_type="COSINE")
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        params.add_index("category", index_type="INVERTED")
        return params

    def _call(self, method: str, *args, **kwargs):
        """A pymilvus call with Milvus errors turned into IndexUnavailable.

        After a server restart collections come back released; load once and retry.
        """
        for attempt in (1, 2):
            try:
                return getattr(client(), method)(*args, **kwargs)
            except MilvusException as exc:
                if attempt == 1 and "load()" in (exc.message or ""):
                    client().load_collection(self.alias)
                    continue
                raise IndexUnavailable(f"Milvus {method} failed: {exc.message}") from exc
            except IndexUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - gRPC errors: connection refused, deadline
                raise IndexUnavailable(f"Milvus {method} failed: {exc}") from exc

    def collection_name(self) -> str | None:
        """The collection the alias points at, or None before the first build."""
        if self.alias not in self._call("list_aliases").get("aliases", []):
            return None
        return self._call("describe_alias", self.alias)["collection_name"]

    def ensure(self) -> str:
        """Create an empty collection behind the alias if there is none yet."""
        name = self.collection_name()
        if name is None:
            with write_lock():  # two first syncs at once must not both create one
                name = self.collection_name()
                if name is None:
                    name = self._create_collection()
                    self._call("create_alias", name, self.alias)
        return name

    def schema_current(self) -> bool:
        """Whether the collection behind the alias has every field this version writes."""
        name = self.collection_name()
        if name is None or name in _current_schemas:
            return True
        fields = {field["name"] for field in self._call("describe_collection", name)["fields"]}
        if {"id", "dense", "sparse", *SCALAR_FIELDS} <= fields:
            _current_schemas.add(name)
            return True
        return False

    def _create_collection(self) -> str:
        name = f"{self.alias}_{time.strftime('%Y%m%d%H%M%S')}_{os.urandom(2).hex()}"
        self._call("create_collection", name, schema=self._schema())
        # Milvus builds indexes in the background; pymilvus would otherwise poll each of the
        # three for half a second. Loading works on an index that is still being built.
        self._call("create_index", name, self._index_params(), sync=False)
        self._call("load_collection", name)
        return name

    def describe(self) -> dict:
        """Facts for the status page: collection, row count, index types."""
        name = self.collection_name()
        if name is None:
            return {"collection": None, "rows": 0}
        stats = self._call("get_collection_stats", name)
        return {"collection": name, "rows": int(stats.get("row_count", 0))}

    # --- writes --------------------------------------------------------------------------

    def upsert(self, rows: list[dict], *, collection: str | None = None) -> None:
        target = collection or self.alias
        for start in range(0, len(rows), WRITE_BATCH):
            with write_lock():
                self._call("upsert", target, rows[start : start + WRITE_BATCH])

    def delete(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if ids:
            with write_lock():
                self._call("delete", self.alias, ids=ids)

    def flush(self, collection: str | None = None) -> None:
        with write_lock():
            self._call("flush", collection or self.alias)

    def mark_flush_due(self) -> None:
        """Note that writes wait in memory, for whichever process flushes next
        (`flush_if_due`); in Redis when the task broker is Redis, so every host sees it."""
        if _redis_broker():
            _redis().set(self._flush_key(), 1)
        else:
            with _flush_due_lock:
                _flush_due_here.add(self.alias)

    def flush_if_due(self) -> bool:
        """Flush when a write was marked since the last flush; True when it flushed.

        The mark is cleared before the flush, so a write landing meanwhile marks it again.
        """
        if _redis_broker():
            due = _redis().delete(self._flush_key()) > 0
        else:
            with _flush_due_lock:
                due = self.alias in _flush_due_here
                _flush_due_here.discard(self.alias)
        if due:
            self.flush()
        return due

    def _flush_key(self) -> str:
        return f"promo:flush-due:{self.alias}"

    def rebuild(self, batches: Iterable[list[dict]]) -> str:
        """Fill a new collection, then point the alias at it and drop the old one.

        One rebuild at a time on this machine: a second one waits, then runs on fresh data.
        """
        with shared_lock("milvus-rebuild", _rebuild_thread_lock, timeout=3600):
            new = self._create_collection()
            try:
                for rows in batches:
                    self.upsert(rows, collection=new)
                self.flush(new)
                self._call("load_collection", new)
                with write_lock():
                    old = self.collection_name()
                    self._call("alter_alias" if old else "create_alias", new, self.alias)
            except BaseException:
                self._call("drop_collection", new)
                raise
            if old is not None:
                self._call("drop_collection", old)
            return new

    # --- reads ---------------------------------------------------------------------------

    ROWS_PAGE = 1000  # rows per query when reading them all

    def rows(self, output_fields: tuple[str, ...] = SCALAR_FIELDS) -> Iterator[dict]:
        """Every row's scalars, in pages (for drift checks). The rows are the caller's to change."""
        last_id = -1
        while True:
            batch = self._call(
                "query",
                self.alias,
                filter=f"id > {last_id}",
                output_fields=["id", *output_fields],
                limit=self.ROWS_PAGE,
                consistency_level="Strong",
            )
            batch = sorted(batch, key=lambda row: row["id"])
            if batch:
                last_id = batch[-1]["id"]  # before the caller sees (and may pop from) the rows
            yield from batch
            if len(batch) < self.ROWS_PAGE:
                return

    def _requests(self, dense, sparse, expr: str, limit: int):
        return [
            AnnSearchRequest(
                [list(map(float, dense))], "dense", {"metric_type": "COSINE"}, limit, expr=expr
            ),
            AnnSearchRequest([sparse], "sparse", {"metric_type": "IP"}, limit, expr=expr),
        ]

    def hybrid_search(
        self, *, dense, sparse: dict, expr: str, limit: int, candidates: int, rrf_k: int
    ) -> list[FusedHit]:
        """Dense and sparse legs, both filtered by expr, fused by reciprocal rank (RRF): one
        request, which also tells each hit's rank in each leg.

        Milvus returns only the fused score, so the request asks for every candidate either leg
        found (at most 2 × candidates) with its two vectors; scoring those here (COSINE, IP) is
        each leg's own ordering of the same rows. Cheaper than a search per leg (bench/
        search_latency.py): the legs' results are already in hand.
        """
        result = self._call(
            "hybrid_search",
            self.alias,
            self._requests(dense, sparse, expr, candidates),
            RRFRanker(rrf_k),
            limit=2 * candidates,
            output_fields=["dense", "sparse"],
            consistency_level="Strong",
        )
        hits = list(result[0])
        if not hits:  # nothing matched the filter: no vectors to score
            return []
        query = np.asarray(dense, dtype=np.float32)
        vectors = np.asarray([hit["entity"]["dense"] for hit in hits], dtype=np.float32).reshape(
            len(hits), -1
        )
        cosines = (
            vectors
            @ query
            / np.maximum(np.linalg.norm(vectors, axis=1) * np.linalg.norm(query), 1e-12)
        )
        products = [_sparse_dot(sparse, hit["entity"]["sparse"]) for hit in hits]
        ids = [hit["id"] for hit in hits]
        dense_ranks = _leg_ranks(ids, cosines.tolist(), candidates)
        sparse_ranks = _leg_ranks(
            [i for i, p in zip(ids, products, strict=True) if p > 0],
            [p for p in products if p > 0],
            candidates,
        )
        return [
            FusedHit(
                hit["id"],
                float(hit["distance"]),
                *_rrf_ranks(
                    float(hit["distance"]),
                    dense_ranks.get(hit["id"]),
                    sparse_ranks.get(hit["id"]),
                    rrf_k,
                    candidates,
                ),
            )
            for hit in hits[:limit]
        ]


def _sparse_dot(query: dict, row: dict) -> float:
    return sum(weight * row.get(term, 0.0) for term, weight in query.items())


def _leg_ranks(ids: list[int], scores: list[float], candidates: int) -> dict[int, int]:
    """1-based ranks of the best `candidates` ids by score."""
    order = sorted(range(len(ids)), key=lambda i: -scores[i])[:candidates]
    return {ids[i]: rank for rank, i in enumerate(order, start=1)}


def _rrf_ranks(
    score: float, dense: int | None, sparse: int | None, rrf_k: int, candidates: int
) -> tuple[int | None, int | None]:
    """The (dense, sparse) ranks whose RRF sum is Milvus' fused score, nearest to the ranks
    scored here: rows that tie on a leg's score (or differ by its float rounding) can come in
    either order, and the fused score says which order Milvus used."""
    values, pairs = _rrf_table(rrf_k, candidates)
    tolerance = score * 1e-6  # far below the smallest gap between two sums (~3e-5 relative)
    low, high = (
        bisect.bisect_left(values, score - tolerance),
        bisect.bisect_right(values, score + tolerance),
    )
    if low == high:
        return dense, sparse
    outside = candidates + 1
    return min(
        pairs[low:high],
        key=lambda pair: (
            abs((pair[0] or outside) - (dense or outside))
            + abs((pair[1] or outside) - (sparse or outside))
        ),
    )


@functools.lru_cache(maxsize=8)
def _rrf_table(
    rrf_k: int, candidates: int
) -> tuple[list[float], list[tuple[int | None, int | None]]]:
    """Every RRF score a hit can have, sorted, beside its (dense rank, sparse rank)."""
    ranks = [None, *range(1, candidates + 1)]
    table = sorted(
        (
            (sum(1 / (rrf_k + rank) for rank in pair if rank), pair)
            for pair in itertools.product(ranks, ranks)
            if pair != (None, None)
        ),
        key=lambda entry: entry[0],
    )
    return [value for value, _ in table], [pair for _, pair in table]

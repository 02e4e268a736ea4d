"""An import's photos, prepared and embedded on every core while its rows are checked.

Each photo an import reads is checked, re-encoded, given its thumbnail and hashed
(catalog.images.image_prepare) and, with a local embedder (one with `stream_side`), described
from the thumbnail's pixels, so the index sync after the import only reads cached vectors.
From CATALOG_IMPORT_POOL_MIN_ROWS rows all of that runs on a pool of CATALOG_IMPORT_PROCESSES
processes (one per core), a chunk of photos per task: the import's own process reads ahead in
the CSV, hands over each photo's bytes, stores the files that come back, caches the vectors
and plans rows. Below that size the import's process does it all itself.

Why the whole photo goes to the pool: when only the embedding did, the one process that
prepared every photo capped the import at about 7× one core, whatever the host
(bench/import_profile.py). Processes, not threads: Pillow's encoders and the descriptor's numpy
on small arrays hold the GIL most of the time (on the 2-core machines 2 threads gained 1.4×,
2 processes 1.85×).

A pool process has no Django: the image limits travel with each task, and the files and
vectors are written by the import's process. A photo's hash is known only once the pool has
prepared it, so a photo whose vector is cached already is described again there and the vector
dropped: an import of photos seen before spends that CPU, on every core.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context

from PIL import Image

from catalog.embedders import Embedder
from catalog.images import ImageLimits, PreparedImage
from catalog.indexing import embeddings_cached, embeddings_keep
from catalog.photo_work import LocalFiles, Outcome, embeddable, prepare_in_pool, prepare_photos

logger = logging.getLogger(__name__)


class PhotoStream:
    """Photos in, by key and bytes; outcomes out, in the order they were put in. Use as a
    context manager: leaving it waits for the last outcomes (or, after an error, drops them).

    With `files` (local storage) the pool stores each photo's files too; the outcome says
    which it created. `put` queues a photo (a chunk goes to the pool when full); `take` returns the outcomes that
    are ready, or waits for the oldest chunk with `wait=True`. Without a pool (`processes`
    of 1) `put` prepares the photo at once, its outcome is ready at once, and its vector
    follows a chunk at a time (cached vectors are not computed again).
    """

    CHUNK = 32  # photos per pool task
    MAX_CHUNK_BYTES = 16 * 1024 * 1024  # a chunk of large photos goes sooner
    EMBED_CHUNK = 64  # photos per cache look-up and embedding call without a pool

    def __init__(
        self, embedder: Embedder | None, *, processes: int, files: LocalFiles | None = None
    ):
        self.embedder = embedder
        self.files = files if processes > 1 else None
        self.limits = ImageLimits.current()
        self.processes = processes
        # spawn: the import may run in a threaded web or task worker, where fork() is unsafe;
        # the pool processes import only the image code and the embedder, never Django's apps.
        self.pool = (
            ProcessPoolExecutor(processes, mp_context=get_context("spawn"))
            if processes > 1
            else None
        )
        self.backend = (
            f"{type(embedder).__module__}.{type(embedder).__qualname__}" if embedder else ""
        )
        self.queued: list[tuple[str, bytes]] = []
        self.queued_bytes = 0
        self.running: deque[Future] = deque()
        self.ready: list[Outcome] = []
        self.to_embed: list[tuple[str, Image.Image]] = []  # without a pool: hash, small copy
        self.embedded = 0

    @property
    def lookahead(self) -> int:
        """How many photos ahead a reader should put, to keep every pool process busy."""
        return self.CHUNK * (2 * self.processes + 1) if self.pool is not None else 0

    def __enter__(self) -> PhotoStream:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is None:
            self.flush()
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=error_type is not None)

    def put(self, key: str, data: bytes) -> None:
        if self.pool is None:
            [outcome] = prepare_photos(None, self.limits, [(key, data)])
            image = outcome.image
            if self.embedder is not None and image and embeddable(image, self.embedder.stream_side):
                self.to_embed.append((image.sha256, image.small))
                if len(self.to_embed) >= self.EMBED_CHUNK:
                    self._embed_here()
            self.ready.append(replace(outcome, image=_without_small(image)))
            return
        self.queued.append((key, data))
        self.queued_bytes += len(data)
        if len(self.queued) >= self.CHUNK or self.queued_bytes >= self.MAX_CHUNK_BYTES:
            self.submit()

    def submit(self) -> None:
        """Send what is queued to the pool now (without a pool: embed what waits)."""
        if self.pool is None:
            self._embed_here()
            return
        if not self.queued:
            return
        items, self.queued, self.queued_bytes = self.queued, [], 0
        self.running.append(
            self.pool.submit(prepare_in_pool, self.backend, self.limits, self.files, items)
        )
        # Two chunks per process keep every core busy; more would only hold photos.
        while len(self.running) > 2 * self.processes:
            self._collect()

    def take(self, *, wait: bool = False) -> list[Outcome]:
        while self.running and (self.running[0].done() or (wait and not self.ready)):
            self._collect()
        ready, self.ready = self.ready, []
        return ready

    def flush(self) -> None:
        self.submit()
        while self.running:
            self._collect()

    def _collect(self) -> None:
        outcomes = self.running.popleft().result()
        self._keep_vectors(outcomes)
        self.ready += outcomes

    def _embed_here(self) -> None:
        chunk, self.to_embed = dict(self.to_embed), []
        cached = embeddings_cached(embedder=self.embedder, shas=chunk) if chunk else set()
        todo = {sha: small for sha, small in chunk.items() if sha not in cached}
        if todo:
            vectors = self.embedder.embed_decoded(list(todo.values()))
            embeddings_keep(embedder=self.embedder, vectors=dict(zip(todo, vectors, strict=True)))
            self.embedded += len(todo)

    def _keep_vectors(self, outcomes: list[Outcome]) -> None:
        vectors = {o.image.sha256: o.vector for o in outcomes if o.vector is not None}
        if not vectors:
            return
        cached = embeddings_cached(embedder=self.embedder, shas=vectors)
        new = {sha: vector for sha, vector in vectors.items() if sha not in cached}
        if new:
            embeddings_keep(embedder=self.embedder, vectors=new)
            self.embedded += len(new)


def _without_small(image: PreparedImage | None) -> PreparedImage | None:
    return replace(image, small=None) if image is not None else None

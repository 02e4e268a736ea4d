"""Embedding photos while they are imported, from the decode the import makes anyway.

A local embedder (one with `stream_side`) describes each new photo as soon as it is checked:
its small decoded copy goes to a pool of processes, one per core, and the vectors go straight
to the embedding cache. The index sync after the import then only reads them, so an import
and its indexing take about as long as the embedder alone (bench/import_index.py).

Processes, not threads: the descriptor is numpy on small arrays and holds the GIL most of the
time; on the 2-core machines 2 threads gained 1.4×, 2 processes 1.85×. The cache is not
catalog data: an import that ends without writing keeps the vectors for its next attempt.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
from PIL import Image

from catalog.embedders import Embedder
from catalog.embedders.base import embed_in_pool
from catalog.images import PreparedImage
from catalog.indexing import embeddings_cached, embeddings_keep

logger = logging.getLogger(__name__)


class EmbeddingStream:
    """Prepared photos in; their vectors cached, a chunk at a time. Use as a context manager:
    leaving it waits for the last vectors (or, after an error, drops them)."""

    CHUNK = 64  # photos per cache look-up, pool task and cache write

    def __init__(self, embedder: Embedder, *, processes: int):
        self.embedder = embedder
        self.backend = f"{type(embedder).__module__}.{type(embedder).__qualname__}"
        self.waiting: list[tuple[str, Image.Image]] = []
        self.running: deque[tuple[list[str], Future]] = deque()
        self.processes = processes
        # spawn: the import may run in a threaded web or task worker, where fork() is unsafe;
        # the pool processes import only the embedder, never Django's apps.
        self.pool = (
            ProcessPoolExecutor(processes, mp_context=get_context("spawn"))
            if processes > 1
            else None
        )
        self.embedded = 0

    def __enter__(self) -> EmbeddingStream:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is None:
            self._submit()
            while self.running:
                self._collect()
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=error_type is not None)

    def add(self, image: PreparedImage) -> None:
        """Embed this photo unless its small copy is too small for the embedder (the index
        sync embeds those from the stored photo)."""
        small = image.small
        if small is None or (
            max(small.size) < self.embedder.stream_side
            and small.size != (image.width, image.height)
        ):
            return
        self.waiting.append((image.sha256, small))
        if len(self.waiting) >= self.CHUNK:
            self._submit()

    def _submit(self) -> None:
        chunk, self.waiting = self.waiting, []
        cached = embeddings_cached(embedder=self.embedder, shas=[sha for sha, _ in chunk])
        chunk = [(sha, small) for sha, small in dict(chunk).items() if sha not in cached]
        if not chunk:
            return
        shas, images = [sha for sha, _ in chunk], [small for _, small in chunk]
        if self.pool is None:
            self._keep(shas, self.embedder.embed_decoded(images))
            return
        self.running.append((shas, self.pool.submit(embed_in_pool, self.backend, images)))
        # Two chunks per process keep every core busy; more would only hold images.
        while len(self.running) > 2 * self.processes or (
            self.running and self.running[0][1].done()
        ):
            self._collect()

    def _collect(self) -> None:
        shas, future = self.running.popleft()
        self._keep(shas, future.result())

    def _keep(self, shas: list[str], vectors: list[np.ndarray]) -> None:
        embeddings_keep(embedder=self.embedder, vectors=dict(zip(shas, vectors, strict=True)))
        self.embedded += len(shas)

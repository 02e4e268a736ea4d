"""Import + index end to end beside the slowest stage alone, and the import's memory per row.

Writes synthetic flat-lay photos for the largest of --sizes (a garment shape on a plain sweep,
400×500 JPEG, each one different) and a historical-catalog CSV naming them, into a throw-away folder with its own
SQLite database and Milvus Lite file. Then, in one run:

  floor   the offline embedder alone on the same photo files, on every core: each photo read,
          decoded and embedded, spread over as many processes as the import's pool
          (CATALOG_IMPORT_PROCESSES), started and warmed before the clock starts
  app     `catalog_import` of the CSV (as `manage.py import_catalog` runs it), then the index
          work it queues (a real Dramatiq worker on the stub broker), until every product is in
          Milvus and flushed
  job     the same through the admin's import job (the files staged as an upload stores them,
          a ZIP of the photos): the worker's check (photos stored and embedded on the pool),
          then, confirmed, its write a chunk at a time, then the index work, until every
          product is in Milvus; the clock starts after the upload is stored
  RSS     the peak resident size of the bench process with its pool during each import (the
          index worker runs in the same process; the milvus-lite server is not its child),
          sampled every 0.2 s, and for the job in each phase
  memory  tracemalloc's peak during imports of --memory-rows and 3 × --memory-rows rows
          (the lowest of three each): the growth per row between them (target ≤ 1 KB per row)

    .venv/bin/python bench/import_index.py [--sizes 10000,50000] [--memory-rows 1000]
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import shutil
import tempfile
import threading
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from stack import tree_rss
from throwaway import setup_django

HEADER = [
    "product_id",
    "image_path",
    "category",
    "color",
    "style",
    "season",
    "sales_count",
    "description",
    "price",
]


def write_photos(
    folder: Path, count: int, start: int = 0, size: tuple[int, int] = (400, 500)
) -> None:
    """`count` different flat-lays named P<n>.jpg from `start` (the shapes scale with `size`)."""
    rng = np.random.default_rng(start)
    width, height = size
    folder.mkdir(parents=True, exist_ok=True)

    def scaled(value) -> int:
        return int(value * width / 400)

    for n in range(start, start + count):
        sweep, cloth, accent = (
            tuple(int(v) for v in rng.integers(lo, hi, 3))
            for lo, hi in ((215, 256), (0, 200), (0, 256))
        )
        image = Image.new("RGB", size, sweep)
        draw = ImageDraw.Draw(image)
        left, top = (scaled(v) for v in rng.integers(40, 110, 2))
        draw.rectangle([left, top, width - left, height - top], fill=cloth)
        draw.ellipse(
            [left + scaled(40), top + scaled(60), left + scaled(160), top + scaled(180)],
            fill=accent,
        )
        grain = rng.normal(0, 5, (height, width, 3))
        pixels = np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"P{n:07}.jpg", quality=88)


def catalog_csv(count: int, start: int = 0) -> bytes:
    lines = [",".join(HEADER)]
    for n in range(start, start + count):
        lines.append(
            f"P{n:07},P{n:07}.jpg,category_{n % 20},colour_{n % 30},style_{n % 40},"
            f"season_{n % 5},{(n * 7919) % 5000},Synthetic product {n},49.90"
        )
    return ("\n".join(lines) + "\n").encode()


def embed_files(backend: str, paths: list[str]) -> int:
    """In a pool process: read, decode and embed these photo files; how many were embedded."""
    return len(_process_embedder(backend).embed_images([Path(p).read_bytes() for p in paths]))


@functools.cache
def _process_embedder(backend: str):
    from django.utils.module_loading import import_string

    return import_string(backend)()


def embedder_alone(photos: Path, count: int, processes: int) -> float:
    """Seconds the offline embedder takes for the photo files alone, read from disk, on
    `processes` processes (the work only: the pool is started and each process has made its
    embedder before the clock starts)."""
    from django.conf import settings

    from catalog.indexing import chunks
    from catalog.photo_stream import PhotoStream

    backend = settings.EMBEDDER_BACKEND
    names = (str(photos / f"P{n:07}.jpg") for n in range(count))
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn")) as pool:
        warm = [str(photos / "P0000000.jpg")]
        assert sum(pool.map(embed_files, [backend] * processes, [warm] * processes)) == processes
        started = time.perf_counter()
        batches = [list(batch) for batch in chunks(names, PhotoStream.CHUNK)]
        embedded = sum(pool.map(embed_files, [backend] * len(batches), batches))
        seconds = time.perf_counter() - started
    assert embedded == count, f"{embedded} of {count} photos embedded"
    return seconds


def import_and_index(photos: Path, count: int) -> float:
    """Seconds from the CSV to every product synced in Milvus (the queued index work done)."""
    import dramatiq

    from catalog.importer import DirectoryImages, catalog_import
    from catalog.models import IndexState, Product

    broker = dramatiq.get_broker()
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:
        started = time.perf_counter()
        result = catalog_import(csv_data=catalog_csv(count), images=DirectoryImages(photos))
        assert result.applied, result.errors[:3]
        imported = time.perf_counter() - started
        broker.join("index")
        worker.join()
        seconds = time.perf_counter() - started
        print(
            f"{count:>7,} rows: the import {imported:.1f} s, the index work after it "
            f"{seconds - imported:.1f} s"
        )
    finally:
        worker.stop()
    synced = Product.objects.filter(index_state=IndexState.SYNCED).count()
    assert synced == count, f"{synced} of {count} products synced"
    return seconds


def write_zip(photos: Path, count: int, target: Path) -> None:
    """The photos in one ZIP, as a merchandiser uploads them (JPEGs stored, not deflated)."""
    import zipfile

    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for n in range(count):
            archive.write(photos / f"P{n:07}.jpg", f"P{n:07}.jpg")


def import_job_and_index(
    photos_zip: Path, count: int, memory: PeakMemory
) -> tuple[float, dict[str, float]]:
    """Seconds from the stored upload to every product synced in Milvus, through the import
    job and a real Dramatiq worker; and each phase's seconds."""
    import dramatiq
    from django.core.files import File
    from django.core.files.base import ContentFile

    from catalog.importer.jobs import import_job_confirm, import_job_create
    from catalog.models import CatalogImport, IndexState, Product

    broker = dramatiq.get_broker()
    with photos_zip.open("rb") as handle:
        job = import_job_create(
            user=None,
            csv_file=ContentFile(catalog_csv(count), name="catalog.csv"),
            zip_file=File(handle, name="photos.zip"),
        )
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    phases = {}
    try:
        started = time.perf_counter()
        memory.phase("check")
        broker.join("imports")
        job.refresh_from_db()
        assert job.state == CatalogImport.State.CHECKED, (job.state, job.note)
        phases["check"] = time.perf_counter() - started
        assert import_job_confirm(job=job)
        memory.phase("write")
        broker.join("imports")
        job.refresh_from_db()
        assert job.state == CatalogImport.State.DONE and job.created == count, job.note
        phases["write"] = time.perf_counter() - started - phases["check"]
        memory.phase("index")
        broker.join("index")
        worker.join()
        seconds = time.perf_counter() - started
        phases["index"] = seconds - phases["check"] - phases["write"]
    finally:
        worker.stop()
    synced = Product.objects.filter(index_state=IndexState.SYNCED).count()
    assert synced == count, f"{synced} of {count} products synced"
    return seconds, phases


def memory_per_row(photos: Path, rows: int, repeats: int = 3) -> tuple[float, int, int]:
    """Bytes of peak traced memory per row, between an import of `rows` and one of 3 × rows.

    Each size is imported `repeats` times (new products each time) and its lowest peak kept:
    now and then an import happens to be the one during which the interpreter reallocates its
    table of interned strings (pathlib interns every file name it parses), a one-off block of
    several MB that tracemalloc counts as new while the old table it replaced was never traced.
    """
    from catalog.importer import DirectoryImages, catalog_import

    peaks = {rows: [], 3 * rows: []}
    start = 10_000_000
    for _ in range(repeats):
        for count in peaks:
            write_photos(photos / str(start), count, start)
            data = catalog_csv(count, start)
            gc.collect()
            tracemalloc.start()
            result = catalog_import(
                csv_data=data, images=DirectoryImages(photos / str(start)), sync_index=False
            )
            peaks[count].append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            assert result.applied, result.errors[:3]
            start += 1_000_000
    small, large = min(peaks[rows]), min(peaks[3 * rows])
    return (large - small) / (2 * rows), small, large


class PeakMemory:
    """The peak resident size of this process and every process it started (the import's pool;
    the index worker runs in this process), sampled every 0.2 s while the block runs: `bytes`
    over the block, and `phases`, the peak in each phase named by `phase()`."""

    def __init__(self, every: float = 0.2):
        self.every, self.bytes = every, 0
        self.phases: dict[str, int] = {}
        self.current = ""
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join()

    def phase(self, name: str) -> None:
        self.current = name

    def _sample(self) -> None:
        while not self.stopping.is_set():
            rss = tree_rss(os.getpid())
            self.bytes = max(self.bytes, rss)
            if self.current:
                self.phases[self.current] = max(self.phases.get(self.current, 0), rss)
            self.stopping.wait(self.every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="10000,50000",
        help="catalog sizes, each imported into an empty catalog (default 10000,50000)",
    )
    parser.add_argument("--memory-rows", type=int, default=1_000)
    parser.add_argument(
        "--photo-size", default="400x500", help="the catalog's photos, WIDTHxHEIGHT (400x500)"
    )
    parser.add_argument(
        "--paths",
        default="cli,job",
        help="which imports to measure beside the floor: cli (import_catalog), job (the admin's)",
    )
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))

    folder = Path(tempfile.mkdtemp(prefix="bench-import-"))
    setup_django(folder)
    import dramatiq
    from django.conf import settings

    from catalog.indexing import index_rebuild
    from catalog.models import ImageEmbedding, Product

    # First, while the process is fresh: the import's memory per row.
    per_row, small, large = memory_per_row(folder / "memory", args.memory_rows)
    started = time.perf_counter()
    width, height = (int(side) for side in args.photo_size.split("x"))
    starts = range(0, sizes[-1], 1000)  # drawn on every core, 1,000 photos a task
    with ProcessPoolExecutor(mp_context=get_context("spawn")) as pool:
        counts = [min(1000, sizes[-1] - start) for start in starts]
        size = (width, height)
        list(
            pool.map(
                write_photos,
                [folder / "photos"] * len(counts),
                counts,
                starts,
                [size] * len(counts),
            )
        )
    print(
        f"{sizes[-1]:,} synthetic {width}×{height} JPEG photos written in {time.perf_counter() - started:.0f} s "
        f"({folder}); {os.cpu_count()} cores, pool of {settings.CATALOG_IMPORT_PROCESSES} processes"
    )
    write_zip(folder / "photos", sizes[-1], folder / "photos.zip")

    def empty() -> None:
        """Each import into an empty catalog, index, embedding cache and media folder."""
        Product.objects.all().delete()
        ImageEmbedding.objects.all().delete()
        shutil.rmtree(folder / "media", ignore_errors=True)
        index_rebuild()
        dramatiq.get_broker().flush_all()  # the deletes' index messages: the rebuild did them

    figures = []
    for size in sizes:
        empty()
        floor = embedder_alone(folder / "photos", size, settings.CATALOG_IMPORT_PROCESSES)
        app = job = None
        phases, peaks = {}, {}
        if "cli" in args.paths:
            with PeakMemory() as peak:
                app = import_and_index(folder / "photos", size)
            peaks["import_catalog + index"] = peak
            empty()
        if "job" in args.paths:
            with PeakMemory() as peak:
                job, phases = import_job_and_index(folder / "photos.zip", size, peak)
            peaks["import job + index"] = peak
        figures.append((size, floor, app, job, phases, peaks))
    processes = settings.CATALOG_IMPORT_PROCESSES
    for size, floor, app, job, phases, peaks in figures:
        print(
            f"{size:>7,} rows  offline embedder alone on {processes} processes {floor:6.1f} s "
            f"{size / floor:5.0f} rows/s (floor)"
        )
        for name, seconds in (("import_catalog + index", app), ("import job + index", job)):
            if seconds is None:
                continue
            ratio = seconds / floor
            print(
                f"{'':>13}{name:<24}{seconds:6.1f} s {size / seconds:5.0f} rows/s   "
                f"{ratio:.2f}× the floor: {'meets' if ratio <= 1.3 else 'misses'} the target "
                "(≤ 1.3×)"
            )
            peak = peaks[name]
            print(
                f"{'':>13}  peak resident memory with its pool and the index worker: "
                f"{peak.bytes / 1e6:.0f} MB"
                + "".join(f"; {k} {v / 1e6:.0f} MB" for k, v in peak.phases.items())
            )
        if phases:
            print(
                f"{'':>13}the job's phases: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items())
            )
    print(
        f"import memory: peak {small / 1e6:.1f} MB at {args.memory_rows:,} rows, "
        f"{large / 1e6:.1f} MB at {3 * args.memory_rows:,}: {per_row / 1024:.2f} KB per row, "
        f"{'meets' if per_row <= 1024 else 'misses'} the target (≤ 1 KB per row)"
    )


if __name__ == "__main__":
    main()

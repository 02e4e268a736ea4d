"""Where an import's CPU goes, per photo, and what that means for its floor on N cores.

Writes --photos synthetic flat-lays (the import bench's, 400×500 JPEG) and times, per photo,
the best of three passes:

  read + decode + embed   what the floor does (bench/import_index.py: the embedder alone)
  prepare                 what the import does besides: decode, check, re-encode the stored
                          JPEG, the 160 px thumbnail, the SHA-256 (catalog.images.image_prepare)
  embed the small copy    what the import does with prepare's small copy
  the import's process    what is left to the import's own process when the pool prepares and
                          embeds: read each photo, store its files, cache its vector, plan and
                          write its row (a whole import on a pool, its own CPU time only)

The pool (catalog.photo_stream) runs prepare + embed on N processes while the import's process
does the rest, so a photo takes at best max(own, (own + prepare + embed) / N) against the
floor's (read + decode + embed) / N: the ratio is (own + prepare + embed) / floor until N is
so large that the import's own process is the bottleneck.

    .venv/bin/python bench/import_profile.py [--photos 300]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from import_index import write_photos
from throwaway import setup_django


def best_of(runs: int, work) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        setup_django(Path(folder))
        from catalog.embedders import get_embedder
        from catalog.images import image_prepare
        from catalog.importer.service import local_files

        write_photos(Path(folder) / "photos", args.photos)
        files = [Path(folder) / "photos" / f"P{n:07}.jpg" for n in range(args.photos)]
        data = [path.read_bytes() for path in files]
        embedder = get_embedder()
        prepared = [image_prepare(raw) for raw in data]
        floor = best_of(3, lambda: embedder.embed_images([p.read_bytes() for p in files]))
        prepare = best_of(3, lambda: [image_prepare(raw) for raw in data])
        embed = best_of(3, lambda: embedder.embed_decoded([p.small for p in prepared]))
        store = best_of(3, lambda: store_anew(local_files(), prepared))
        own = own_process_time(Path(folder) / "photos", args.photos)
        pool = prepare + embed + store
        n = args.photos
        print(f"{n} photos, 400×500 JPEG, CPU ms per photo on one core (best of 3):")
        print(f"  floor: read + decode + embed         {1000 * floor / n:6.2f}")
        print(f"  import's pool: prepare               {1000 * prepare / n:6.2f}")
        print(f"  import's pool: embed the small copy  {1000 * embed / n:6.2f}")
        print(f"  import's pool: store the two files   {1000 * store / n:6.2f}")
        print(f"  import's own process                 {1000 * own / n:6.2f}")
        ratio = (own + pool) / floor
        print(f"  the import's CPU per photo is {ratio:.2f}× the floor's")
        for cores in (2, 4, 16, 32):
            best = max(own, (own + pool) / cores) / (floor / cores)
            was = max(own + prepare + store, (own + pool) / cores) / (floor / cores)
            print(
                f"  {cores:>2} cores: at best {best:.2f}× the floor "
                f"(with photos prepared and stored by the import's own process: {was:.2f}×)"
            )


def store_anew(files, prepared) -> None:
    """What a pool process does to store the photos' files, into an empty media folder (the
    clearing is timed too: a few unlinks, small beside the writes)."""
    shutil.rmtree(files.root, ignore_errors=True)
    for image in prepared:
        files.write(image.storage_name, image.content)
        files.write(image.thumbnail_name, image.thumbnail)


def own_process_time(photos: Path, count: int) -> float:
    """CPU seconds of the import's own process (not its pool's) for a whole import of the
    photos on a pool of 2, the best of three (each into a fresh catalog)."""
    from django.conf import settings
    from import_index import catalog_csv

    from catalog.importer import DirectoryImages, catalog_import
    from catalog.models import ImageEmbedding, Product

    settings.CATALOG_IMPORT_POOL_MIN_ROWS, settings.CATALOG_IMPORT_PROCESSES = 1, 2
    data = catalog_csv(count)

    best = float("inf")
    for _ in range(3):
        Product.objects.all().delete()
        ImageEmbedding.objects.all().delete()
        shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)  # every file stored anew
        started = time.process_time()
        result = catalog_import(csv_data=data, images=DirectoryImages(photos), sync_index=False)
        best = min(best, time.process_time() - started)
        assert result.applied, result.errors[:3]
    return best


if __name__ == "__main__":
    main()

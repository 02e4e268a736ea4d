"""Where an import's CPU goes, per photo, and what that means for its floor on N cores.

Writes --photos synthetic flat-lays (the import bench's, 400×500 JPEG) and times, on one core
and per photo, each stage an import runs on them, the best of three passes:

  read + decode + embed   what the floor does (bench/import_index.py: the embedder alone)
  prepare                 what the import does besides: decode, check, re-encode the stored
                          JPEG, the 160 px thumbnail, the SHA-256 (catalog.images.image_prepare)
  embed the small copy    what the import's pool does with prepare's small copy
  plan + write a row      the database side of a row (measured as the rest, from the bench)

The import's CPU per photo is prepare + embed; the floor's is read + decode + embed, spread
over N cores. Today the import's main process prepares every photo while a pool of N processes
embeds, so at best it takes max(prepare, (prepare + embed) / N) per photo: on few cores the
cores are shared and it is (prepare + embed) / floor; on many, the one process that prepares is
the bottleneck. With prepare in the pool too it would be (prepare + embed) / floor on any N.
(Both leave out the database side of a row, which the import bench measures with the rest.)

    .venv/bin/python bench/import_profile.py [--photos 300]
"""

from __future__ import annotations

import argparse
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

        write_photos(Path(folder) / "photos", args.photos)
        files = [Path(folder) / "photos" / f"P{n:07}.jpg" for n in range(args.photos)]
        data = [path.read_bytes() for path in files]
        embedder = get_embedder()
        prepared = [image_prepare(raw) for raw in data]
        floor = best_of(3, lambda: embedder.embed_images([p.read_bytes() for p in files]))
        prepare = best_of(3, lambda: [image_prepare(raw) for raw in data])
        embed = best_of(3, lambda: embedder.embed_decoded([p.small for p in prepared]))
        n = args.photos
        print(f"{n} photos, 400×500 JPEG, CPU ms per photo on one core (best of 3):")
        print(f"  floor: read + decode + embed   {1000 * floor / n:6.2f}")
        print(f"  import: prepare                {1000 * prepare / n:6.2f}")
        print(f"  import: embed the small copy   {1000 * embed / n:6.2f}")
        ratio = (prepare + embed) / floor
        print(f"  the import's CPU per photo is {ratio:.2f}× the floor's")
        for cores in (2, 4, 16):
            today = max(prepare, (prepare + embed) / cores) / (floor / cores)
            print(
                f"  {cores:>2} cores: prepare in the main process (today) at best {today:.2f}× "
                f"the floor; prepare in the pool too {ratio:.2f}×"
            )


if __name__ == "__main__":
    main()

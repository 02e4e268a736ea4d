"""How well the offline embedder finds look-alikes among real product photos.

Usage: .venv/bin/python bench/offline_embedder_eval.py [--limit N] [--seed S]

Every photo of ../shared/eval-catalog (third-party, read in place, never copied) is a query
against all the others. Precision@5 is the share of its 5 nearest neighbours by cosine that
share a label; a random ranking, drawn in the same run, is the baseline. The labels are the
dataset's own (somewhat noisy) and the photos are mostly worn by models, not flat-lays, so
these figures are a sanity check of the descriptor, not its contract (the sample-catalog
tests are).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EVAL_DIR = ROOT.parent / "shared" / "eval-catalog"
K = 5
RANDOM_DRAWS = 20


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DJANGO_DEBUG"] = "1"  # a benchmark needs no production secrets
    import django

    django.setup()


def image_path(row: dict[str, str]) -> Path:
    return EVAL_DIR / "images" / f"{row['id']}.jpg"


def load_rows(limit: int | None) -> list[dict[str, str]]:
    with (EVAL_DIR / "catalog.csv").open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if image_path(row).is_file()]
    return rows[:limit] if limit else rows


def precision_at_k(rankings: np.ndarray, labels: np.ndarray) -> float:
    """Mean over queries of the share of the first K ranked items with the query's label."""
    return float((labels[rankings[:, :K]] == labels[:, None]).mean())


def nearest(vectors: np.ndarray) -> np.ndarray:
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)  # a photo is not its own neighbour
    return np.argsort(-similarity, axis=1, kind="stable")[:, :K]


def random_rankings(count: int, rng: np.random.Generator) -> np.ndarray:
    """K distinct random other items per query."""
    picks = np.argsort(rng.random((count, count - 1)), axis=1)[:, :K]
    return picks + (picks >= np.arange(count)[:, None])  # skip the query itself


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    args = parser.parse_args()
    setup_django()
    from catalog.embedders.offline import OfflineEmbedder
    from demo.sample import COLOURS, draw_flatlay

    rows = load_rows(args.limit)
    if len(rows) <= K:
        parser.error(f"need more than {K} photos, found {len(rows)} in {EVAL_DIR}")
    images = [image_path(row).read_bytes() for row in rows]
    embedder = OfflineEmbedder()
    start = time.perf_counter()
    vectors = np.stack(embedder.embed_images(images))
    per_image = (time.perf_counter() - start) / len(images)

    labels = {
        "same articleType": [row["articleType"] for row in rows],
        "same colorgroup": [row["colorgroup"] for row in rows],
        "same articleType and colorgroup": [
            f"{row['articleType']}|{row['colorgroup']}" for row in rows
        ],
    }
    ranked = nearest(vectors)
    rng = np.random.default_rng(args.seed)
    baselines = [random_rankings(len(rows), rng) for _ in range(RANDOM_DRAWS)]

    print(f"eval-catalog: {len(rows)} photos, {embedder.name} ({embedder.dimension} dims)")
    print(f"{'precision@5':<34}{'offline':>9}{'random':>9}{'lift':>7}")
    for title, values in labels.items():
        encoded = np.unique(np.array(values), return_inverse=True)[1]
        ours = precision_at_k(ranked, encoded)
        chance = float(np.mean([precision_at_k(r, encoded) for r in baselines]))
        print(f"{title:<34}{ours:>9.3f}{chance:>9.3f}{ours / chance:>6.1f}x")

    # The budget is for the site's own photos, which are larger than the eval set's.
    buffer = io.BytesIO()
    draw_flatlay("midi_dress", COLOURS["navy"], "dots", seed="bench").save(buffer, format="JPEG")
    start = time.perf_counter()
    embedder.embed_images([buffer.getvalue()] * 50)
    per_flatlay = (time.perf_counter() - start) / 50
    print(
        f"embedding time: {per_image * 1000:.1f} ms per eval photo (225×300), "
        f"{per_flatlay * 1000:.1f} ms per 512×640 flat-lay JPEG"
    )


if __name__ == "__main__":
    main()

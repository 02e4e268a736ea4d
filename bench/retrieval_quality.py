"""How often the offline hybrid retrieval's top 3 share a new product's colour and article type.

    .venv/bin/python bench/retrieval_quality.py [--part tuning|held-out|both]

The photos are those of ../shared/eval-catalog (third-party: read in place, never copied into
the project; the app stores its re-encoded copies in a temporary folder deleted at the end).

The split, made once and never to be changed: the ids as integers, sorted, shuffled by
random.Random(SEED) with SEED = 18; the first third (rounded up: 182 of 545) is the
held-out part, the rest (363) the tuning part. Any tuning (descriptor, colour words, fusion)
may look at the tuning part's figures only; the held-out part is for the final report.

A round fills a fresh catalogue and asks the app's own `similar_bestsellers` (the real Milvus
Lite index, rebuilt by `index_rebuild(refit=True)`) for each of its queries:
- historical bestsellers, as a products.csv row makes them: category = subCategory (Topwear,
  Shoes, ...), color = baseColour, style = usage, season = season, description =
  productDisplayName, 2,000 sales;
- queries, as a new_products.csv row makes them: category, style, season, no colour, no
  description, no prompt hint (the eval catalog has none), 0 sales, so that nothing in their
  text gives the colour away and no query is a candidate of another.
Tuning part: five rounds; round i's queries are the tuning photos at positions i, i + 5, ...
of the shuffled order, its bestsellers the other four fifths of the tuning part.
Held-out part: one round; its 182 photos are the queries, the 363 tuning photos the
bestsellers. So no query is ever its own candidate or among the bestsellers it is searched
in, its colour is never in the colour vocabulary or the TF-IDF fit, and no held-out photo or
label is in any tuning round.

Each round runs twice: "hint", as the app runs (the sparse query also holds the photo's
colour word: of the colour values of the round's bestsellers, the one whose photos' garment
colours most likely hold the photo's, catalog.colours), and "photo"
(settings.RETRIEVAL_COLOUR_WORDS off: no colour word, the dense leg carries the colour).

precision@3 is the share of the 3 hits with the query's label; "colour family" compares the
colorgroup (Navy Blue and Blue are both Blue), "exact colour" the baseColour, "article type"
the articleType (the category filter holds the subCategory, not the type). The random
baseline is exact: the share of the query's candidates (its category's bestsellers in its
round) with its label, which is what 3 random candidates score on average. A query with fewer
than 3 candidates is left out.
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from throwaway import setup_django

ROOT = Path(__file__).resolve().parents[1]
EVAL_DIR = ROOT.parent / "shared" / "eval-catalog"
SEED = 18
HELD_OUT_SHARE = 1 / 3
TUNING_FOLDS = 5
TOP_K = 3
LABELS = {
    "colour family": "colorgroup",
    "exact colour": "baseColour",
    "article type": "articleType",
}
MODES = ("hint", "photo")


def load_rows() -> list[dict[str, str]]:
    with (EVAL_DIR / "catalog.csv").open(encoding="utf-8", newline="") as handle:
        return [
            row
            for row in csv.DictReader(handle)
            if (EVAL_DIR / "images" / f"{row['id']}.jpg").is_file()
        ]


def split(rows: list[dict[str, str]]) -> tuple[list[dict], list[dict]]:
    """(tuning, held_out), each in the shuffled order; see the module docstring."""
    ordered = sorted(rows, key=lambda row: int(row["id"]))
    random.Random(SEED).shuffle(ordered)
    cut = math.ceil(len(ordered) * HELD_OUT_SHARE)
    return ordered[cut:], ordered[:cut]


def rounds(part: str, tuning: list[dict], held_out: list[dict]) -> list[tuple[list, list]]:
    """(queries, bestsellers) of each round of a part."""
    if part == "held-out":
        return [(held_out, tuning)]
    return [
        (tuning[i::TUNING_FOLDS], [row for j, row in enumerate(tuning) if j % TUNING_FOLDS != i])
        for i in range(TUNING_FOLDS)
    ]


@dataclass
class Score:
    queries: int = 0
    random: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    found: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))


def run_round(queries: list[dict], bestsellers: list[dict], images: dict, score: Score) -> None:
    from django.conf import settings

    from catalog.indexing import index_rebuild
    from catalog.models import Product
    from catalog.selectors import similar_bestsellers
    from catalog.services import product_use_image

    Product.objects.all().delete()
    products = []
    for row, historical in [(row, True) for row in bestsellers] + [(row, False) for row in queries]:
        product = Product(
            sku=f"E{row['id']}",
            lifecycle=Product.Lifecycle.HISTORICAL if historical else Product.Lifecycle.NEW,
            category=row["subCategory"],
            color=row["baseColour"] if historical else "",
            style=row["usage"],
            season=row["season"],
            description=row["productDisplayName"] if historical else "",
            sales_count=2000 if historical else 0,
        )
        product_use_image(product=product, image=images[row["id"]])
        products.append(product)
    Product.objects.bulk_create(products)
    index_rebuild(refit=True)

    by_sku = {f"E{row['id']}": row for row in bestsellers}
    pools = defaultdict(list)
    for row in bestsellers:
        pools[row["subCategory"]].append(row)
    for row in queries:
        pool = pools[row["subCategory"]]
        if len(pool) < TOP_K:
            continue
        score.queries += 1
        for name, column in LABELS.items():
            score.random[name] += sum(other[column] == row[column] for other in pool) / len(pool)
        product = Product.objects.get(sku=f"E{row['id']}")
        for mode in MODES:
            settings.RETRIEVAL_COLOUR_WORDS = mode == "hint"
            hits = [by_sku[hit.product.sku] for hit in similar_bestsellers(product=product).hits]
            for name, column in LABELS.items():
                score.found[mode, name] += sum(hit[column] == row[column] for hit in hits) / TOP_K
    settings.RETRIEVAL_COLOUR_WORDS = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("tuning", "held-out", "both"), default="both")
    args = parser.parse_args()
    parts = ("tuning", "held-out") if args.part == "both" else (args.part,)
    with tempfile.TemporaryDirectory() as folder:
        setup_django(Path(folder), DJANGO_DEBUG="1")
        from django.conf import settings

        from catalog.embedders import get_embedder
        from catalog.images import image_prepare, image_store

        rows = load_rows()
        tuning, held_out = split(rows)
        images = {}
        for row in rows:
            prepared = image_prepare((EVAL_DIR / "images" / f"{row['id']}.jpg").read_bytes())
            image_store(prepared)
            images[row["id"]] = prepared.ref()

        print(
            f"eval-catalog: {len(rows)} photos, split by seed {SEED}: {len(tuning)} tuning, "
            f"{len(held_out)} held-out; {get_embedder().name}, hybrid dense + sparse, "
            f"RRF k={settings.RETRIEVAL_RRF_K}, top {TOP_K}"
        )
        print("hint: the photo's colour word in the sparse query (as the app runs); photo: none")
        print(
            f"{'part':<10}{'queries':>8}  {'precision@3':<15}{'random':>8}{'hint':>8}{'photo':>8}"
        )
        for part in parts:
            score = Score()
            for queries, bestsellers in rounds(part, tuning, held_out):
                run_round(queries, bestsellers, images, score)
            for name in LABELS:
                figures = [score.random[name]] + [score.found[m, name] for m in MODES]
                print(
                    f"{part:<10}{score.queries:>8}  {name:<15}"
                    + "".join(f"{value / score.queries:>8.3f}" for value in figures)
                )


if __name__ == "__main__":
    main()

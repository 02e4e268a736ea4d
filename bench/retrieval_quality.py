"""How often the offline hybrid retrieval's top 3 share a real photo's colour and article type.

    .venv/bin/python bench/retrieval_quality.py

Protocol. Every photo of ../shared/eval-catalog (third-party: read in place, never copied into
the project; the app stores its re-encoded copies in a temporary media folder that is deleted
at the end) becomes a historical product, as a products.csv row would make it:
category = subCategory (Topwear, Shoes, ...), color = baseColour, style = usage,
season = season, description = productDisplayName, 2,000 sales (all are bestsellers).
The app indexes them itself (offline embedder, TF-IDF fitted on the catalog, Milvus Lite).

Each photo is then the query of the app's own `similar_bestsellers`, as a new product:
a new product has no colour column and no description (new_products.csv: category, style,
season, prompt_hint), so its sparse query is "category style season" and nothing in the text
gives its colour away; its own row is filtered out as always. Colour must come from the photo.

precision@3 is the share of the 3 hits with the query's label; "colour" compares the coarse
colour family (colorgroup: Navy Blue and Blue are both Blue), "baseColour" the exact label,
"article type" the articleType (the category filter holds the subCategory, not the type).
The random baseline is exact: the share of the query's candidates (same category, itself
excluded) with its label, which is what 3 random candidates score on average.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from throwaway import setup_django

ROOT = Path(__file__).resolve().parents[1]
EVAL_DIR = ROOT.parent / "shared" / "eval-catalog"
TOP_K = 3
LABELS = {"colour": "colorgroup", "baseColour": "baseColour", "article type": "articleType"}


def load_rows() -> list[dict[str, str]]:
    with (EVAL_DIR / "catalog.csv").open(encoding="utf-8", newline="") as handle:
        return [
            row
            for row in csv.DictReader(handle)
            if (EVAL_DIR / "images" / f"{row['id']}.jpg").is_file()
        ]


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        setup_django(Path(folder), DJANGO_DEBUG="1")
        from catalog.embedders import get_embedder
        from catalog.images import image_prepare
        from catalog.indexing import index_rebuild
        from catalog.models import Product
        from catalog.selectors import similar_bestsellers
        from catalog.services import product_save

        rows = load_rows()
        by_sku = {}
        for row in rows:
            product = Product(
                sku=f"E{row['id']}",
                lifecycle=Product.Lifecycle.HISTORICAL,
                category=row["subCategory"],
                color=row["baseColour"],
                style=row["usage"],
                season=row["season"],
                description=row["productDisplayName"],
                sales_count=2000,
            )
            data = (EVAL_DIR / "images" / f"{row['id']}.jpg").read_bytes()
            product_save(product=product, image=image_prepare(data))
            by_sku[product.sku] = row
        index_rebuild(refit=True)

        hits_total, found = 0, {name: 0.0 for name in LABELS}
        chance = {name: 0.0 for name in LABELS}
        queries = 0
        for product in Product.objects.all():
            row = by_sku[product.sku]
            # As a new product: no colour, no description (query_document reads neither).
            product.color, product.description = "", ""
            result = similar_bestsellers(product=product, top_k=TOP_K)
            pool = [
                other
                for sku, other in by_sku.items()
                if other["subCategory"] == row["subCategory"] and sku != product.sku
            ]
            if len(pool) < TOP_K:
                continue
            queries += 1
            hits = [by_sku[hit.product.sku] for hit in result.hits]
            hits_total += len(hits)
            for name, column in LABELS.items():
                found[name] += sum(hit[column] == row[column] for hit in hits) / TOP_K
                chance[name] += sum(other[column] == row[column] for other in pool) / len(pool)

        embedder = get_embedder()
        print(
            f"eval-catalog: {len(rows)} photos, {queries} queries, {embedder.name}, "
            f"hybrid dense + sparse, RRF k=60, top {TOP_K} ({hits_total} hits)"
        )
        print(f"{'precision@3':<16}{'offline':>9}{'random':>9}{'lift':>7}")
        for name in LABELS:
            ours, base = found[name] / queries, chance[name] / queries
            print(f"{name:<16}{ours:>9.3f}{base:>9.3f}{ours / base:>6.1f}x")


if __name__ == "__main__":
    main()

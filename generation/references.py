"""Reads: the style references a request for a product uses, and why each was chosen.

The pipeline's retrieve step and `manage.py explain_request` both call `request_references`,
so what the command prints is what the next image of that product would be made from.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from catalog.models import Product
from catalog.selectors import SimilarBestsellers, similar_bestsellers


def request_references(*, product: Product, reference_count: int) -> SimilarBestsellers:
    """The bestsellers a new image of `product` takes its style from.

    Any sales at all in the category count before the search widens to the whole catalog's
    bestsellers: a new category still gets its images, and the result's note says where the
    style came from. No hits means there is nothing to take the style from
    (`no_references_reason`).
    """
    return similar_bestsellers(product=product, top_k=reference_count, relax_to=0, widen=True)


def no_references_reason(product: Product) -> str:
    return (
        f"No bestsellers to take the style from: category {product.category!r} has "
        "no other product with sales, and neither has the rest of the catalog. Import "
        "products with their sales (sales_count) first, then regenerate this image."
    )


@dataclass(frozen=True)
class SalesRank:
    """Where a product's sales place it in its category: 1 is the best seller; products with
    the same sales share a rank."""

    rank: int
    of: int  # products of the category with any sales (new products have none yet)
    category: str


@dataclass(frozen=True)
class ExplainedReference:
    rank: int  # its place among the request's references
    product: Product
    sales: SalesRank
    score: float  # the fused (RRF) look-alike score
    dense_rank: int | None  # its rank by photo; None when outside that leg's candidates
    sparse_rank: int | None  # its rank by words


@dataclass(frozen=True)
class ReferencesExplained:
    product: Product
    references: list[ExplainedReference]
    note: str  # what a person should know (lowered threshold, wider search), or ""


def references_explain(*, product: Product, reference_count: int) -> ReferencesExplained:
    """The references a request for `product` would use now, each with why: its sales rank
    in its category and its look-alike ranks. Raises what `similar_bestsellers` raises when
    the index cannot be searched."""
    result = request_references(product=product, reference_count=reference_count)
    ranks = sales_ranks([hit.product for hit in result.hits])
    return ReferencesExplained(
        product=product,
        references=[
            ExplainedReference(
                rank=rank,
                product=hit.product,
                sales=ranks[hit.product.pk],
                score=hit.score,
                dense_rank=hit.dense_rank,
                sparse_rank=hit.sparse_rank,
            )
            for rank, hit in enumerate(result.hits, start=1)
        ],
        note=result.note,
    )


def sales_ranks(products: list[Product]) -> dict[int, SalesRank]:
    """Each product's sales rank in its own category, by product id: one query per product
    (a request has at most a dozen references)."""
    ranks = {}
    for product in products:
        counts = Product.objects.filter(category=product.category).aggregate(
            above=Count("pk", filter=Q(sales_count__gt=product.sales_count)),
            of=Count("pk", filter=Q(sales_count__gt=0)),
        )
        ranks[product.pk] = SalesRank(counts["above"] + 1, counts["of"], product.category)
    return ranks

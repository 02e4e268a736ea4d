"""Reads: the bestsellers most similar to a product, by Milvus hybrid search.

As in the seed: a dense request with the product's image embedding and a sparse request with
the TF-IDF of "category style season prompt_hint", both filtered to the product's category
and to more than `min_sales` sales, fused by reciprocal rank fusion (RRF, k=60).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from catalog.colours import colour_words
from catalog.embedders import get_embedder
from catalog.indexing import embeddings_for, get_index
from catalog.models import Product, bestseller_threshold
from catalog.sparse import active_vectorizer, encode, query_document
from catalog.vector_index import filter_literal


@dataclass(frozen=True)
class SimilarHit:
    product: Product
    score: float  # the fused RRF score
    dense_rank: int | None  # 1-based rank in each leg; None when outside its candidates
    sparse_rank: int | None


@dataclass
class SimilarBestsellers:
    product: Product
    top_k: int
    min_sales: int
    hits: list[SimilarHit] = field(default_factory=list)
    relaxed_from: int | None = None  # the threshold asked for, when it had to be lowered

    @property
    def complete(self) -> bool:
        return len(self.hits) >= self.top_k

    @property
    def note(self) -> str:
        """What a person should know about this result, or "" when it is as asked."""
        notes = []
        if self.relaxed_from is not None:
            notes.append(
                f"Too few products in {self.product.category!r} sold more than "
                f"{self.relaxed_from:,}; the threshold was lowered to {self.min_sales:,}."
            )
        if not self.complete:
            notes.append(
                f"Only {len(self.hits)} of {self.top_k} requested bestsellers qualify: "
                f"category {self.product.category!r} has {len(self.hits)} other "
                f"product(s) with more than {self.min_sales:,} sales in the index."
            )
        return " ".join(notes)


def bestseller_filter(*, category: str, min_sales: int, exclude_id: int) -> str:
    """The Milvus filter expression; the category is a quoted literal, never expression text."""
    return (
        f"category == {filter_literal(category)} and sales_count > {int(min_sales)} "
        f"and id != {int(exclude_id)}"
    )


def similar_bestsellers(
    *,
    product: Product,
    top_k: int | None = None,
    min_sales: int | None = None,
    relax_to: int | None = None,
) -> SimilarBestsellers:
    """The top-k bestsellers of the product's category that look and read most like it.

    With `relax_to`, a search that finds fewer than k bestsellers is repeated with that lower
    threshold, and the result records it. Raises IndexUnavailable when Milvus is down.
    """
    top_k = top_k or settings.RETRIEVAL_TOP_K
    min_sales = bestseller_threshold() if min_sales is None else min_sales
    result = _search(product, top_k, min_sales)
    if not result.complete and relax_to is not None and relax_to < min_sales:
        relaxed = _search(product, top_k, relax_to)
        relaxed.relaxed_from = min_sales
        return relaxed
    return result


def _search(product: Product, top_k: int, min_sales: int) -> SimilarBestsellers:
    index = get_index()
    embedder = get_embedder()
    dense = embeddings_for([product], embedder)[product.image_sha256]
    active = active_vectorizer()
    colours = (
        colour_words(embedder=embedder, vector=dense) if settings.RETRIEVAL_COLOUR_WORDS else []
    )
    document = query_document(product, colours)
    sparse = encode([document], active.version, for_query=True)[0] if active else {}
    expr = bestseller_filter(category=product.category, min_sales=min_sales, exclude_id=product.pk)
    candidates = max(settings.RETRIEVAL_CANDIDATES, top_k)

    fused = index.hybrid_search(
        dense=dense,
        sparse=sparse,
        expr=expr,
        limit=top_k,
        candidates=candidates,
        rrf_k=settings.RETRIEVAL_RRF_K,
    )
    products = Product.objects.in_bulk([hit.id for hit in fused])
    hits = [
        SimilarHit(products[hit.id], hit.score, hit.dense_rank, hit.sparse_rank)
        for hit in fused
        if hit.id in products  # a product deleted since its last sync
    ]
    return SimilarBestsellers(product=product, top_k=top_k, min_sales=min_sales, hits=hits)

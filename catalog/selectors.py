"""Reads: the bestsellers most similar to a product, by Milvus hybrid search.

As in the seed: a dense request with the product's image embedding and a sparse request with
the TF-IDF of "category style season prompt_hint", both filtered to the product's category
and to more than `min_sales` sales, fused by reciprocal rank fusion (RRF, k=60).

When the category has no other product with sales at all (a new category), a caller may ask
to widen the search to the whole catalog's bestsellers (`widen=True`); the result says so. An
index that does not hold what the database has (a collection dropped or lost, being rebuilt or
still being filled) raises IndexNotReady instead of answering "no bestsellers".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from catalog.colours import colour_words
from catalog.embedders import get_embedder
from catalog.indexing import embeddings_for, get_index
from catalog.models import Product, bestseller_threshold
from catalog.periodic import reconcile_index
from catalog.sparse import active_vectorizer, encode, query_document
from catalog.vector_index import IndexNotReady, IndexUnavailable, VectorIndex, filter_literal
from core.queue import enqueue_after_commit


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
    widened_from: str | None = None  # the category that had none, when the search was widened

    @property
    def complete(self) -> bool:
        return len(self.hits) >= self.top_k

    @property
    def note(self) -> str:
        """What a person should know about this result, or "" when it is as asked."""
        notes = []
        if self.widened_from is not None:
            categories = ", ".join(sorted({repr(hit.product.category) for hit in self.hits}))
            notes.append(
                f"No other product of category {self.widened_from!r} has sales to take the "
                "style from, so the references came from a wider search: the bestsellers of "
                f"the whole catalog most like this product (from {categories})."
            )
        if self.relaxed_from is not None:
            where = "the catalog" if self.widened_from else repr(self.product.category)
            notes.append(
                f"Too few products in {where} sold more than "
                f"{self.relaxed_from:,}; the threshold was lowered to {self.min_sales:,}."
            )
        if not self.complete:
            where = "the catalog" if self.widened_from else f"category {self.product.category!r}"
            notes.append(
                f"Only {len(self.hits)} of {self.top_k} requested bestsellers qualify: "
                f"{where} has {len(self.hits)} other "
                f"product(s) with more than {self.min_sales:,} sales in the index."
            )
        return " ".join(notes)


def bestseller_filter(*, category: str | None, min_sales: int, exclude_id: int) -> str:
    """The Milvus filter expression (category None: the whole catalog); the category is a
    quoted literal, never expression text."""
    expr = f"sales_count > {int(min_sales)} and id != {int(exclude_id)}"
    return expr if category is None else f"category == {filter_literal(category)} and {expr}"


def similar_bestsellers(
    *,
    product: Product,
    top_k: int | None = None,
    min_sales: int | None = None,
    relax_to: int | None = None,
    widen: bool = False,
) -> SimilarBestsellers:
    """The top-k bestsellers of the product's category that look and read most like it.

    With `relax_to`, a search that finds fewer than k bestsellers is repeated with that lower
    threshold, and the result records it. With `widen`, a category with no other product
    selling more than the lowest threshold is searched across the whole catalog instead, and
    the result records that too. A result with no hits means the catalog has none to give.

    Raises IndexUnavailable when Milvus is down, and IndexNotReady when the index lacks
    bestsellers the database has (a missing collection is created empty on the way, for the
    reconcile to fill).
    """
    top_k = top_k or settings.RETRIEVAL_TOP_K
    min_sales = bestseller_threshold() if min_sales is None else min_sales
    floor = min_sales if relax_to is None else min(relax_to, min_sales)
    index = get_index()
    try:
        result = _relaxed_search(index, product, top_k, min_sales, floor, product.category)
        if not result.hits:
            _index_holds_all(product, floor, product.category)
            if widen:
                result = _relaxed_search(index, product, top_k, min_sales, floor, None)
                result.widened_from = product.category
                if not result.hits:
                    _index_holds_all(product, floor, None)
    except IndexNotReady:
        raise
    except IndexUnavailable:
        _collection_recreated(index)
        raise
    return result


def _relaxed_search(
    index: VectorIndex,
    product: Product,
    top_k: int,
    min_sales: int,
    floor: int,
    category: str | None,
) -> SimilarBestsellers:
    result = _search(index, product, top_k, min_sales, category)
    if not result.complete and floor < min_sales:
        relaxed = _search(index, product, top_k, floor, category)
        relaxed.relaxed_from = min_sales
        return relaxed
    return result


def _index_holds_all(product: Product, min_sales: int, category: str | None) -> None:
    """Raise IndexNotReady when the database has bestsellers that a search found none of:
    the index is behind the catalog (rebuilt, refilled or still syncing), not the catalog
    short of bestsellers."""
    waiting = Product.objects.filter(sales_count__gt=min_sales).exclude(pk=product.pk)
    if category is not None:
        waiting = waiting.filter(category=category)
    count = waiting.count()
    if count:
        where = "the catalog" if category is None else f"category {category!r}"
        raise IndexNotReady(
            f"The index does not hold the {count:,} bestseller(s) of {where} yet: it is being "
            "rebuilt or filled. Try again in a few minutes."
        )


def _collection_recreated(index: VectorIndex) -> None:
    """After a failed search: a collection that is gone (never built, dropped, or lost with
    Milvus' data) is created empty at once and the reconcile is queued to fill it; raise
    IndexNotReady saying so. A Milvus that does not answer raises IndexUnavailable from here
    too."""
    if index.collection_name() is None:
        index.ensure()
        # now rather than at its next interval: refilled within a minute
        enqueue_after_commit(reconcile_index)
        raise IndexNotReady(
            "The index is being rebuilt (its collection was missing: it was created again, "
            "empty, and is being filled from the catalog). Try again in a few minutes."
        )


def most_alike(*, product: Product, among: list[int], top_k: int) -> list[SimilarHit]:
    """Of the products `among` (ids; the product itself left out), the top-k that look and
    read most like `product`: the same hybrid search, limited to those products. Raises
    IndexUnavailable when Milvus is down; a product not in the index yet is not found."""
    ids = sorted({int(pk) for pk in among} - {product.pk})
    if not ids or top_k < 1:
        return []
    expr = f"id in [{', '.join(map(str, ids))}]"
    return _hybrid_hits(get_index(), product, top_k, expr)


def _search(
    index: VectorIndex, product: Product, top_k: int, min_sales: int, category: str | None
) -> SimilarBestsellers:
    expr = bestseller_filter(category=category, min_sales=min_sales, exclude_id=product.pk)
    hits = _hybrid_hits(index, product, top_k, expr)
    return SimilarBestsellers(product=product, top_k=top_k, min_sales=min_sales, hits=hits)


def _hybrid_hits(index: VectorIndex, product: Product, top_k: int, expr: str) -> list[SimilarHit]:
    embedder = get_embedder()
    dense = embeddings_for([product], embedder)[product.image_sha256]
    active = active_vectorizer()
    colours = (
        colour_words(embedder=embedder, vector=dense) if settings.RETRIEVAL_COLOUR_WORDS else []
    )
    document = query_document(product, colours)
    sparse = encode([document], active.version, for_query=True)[0] if active else {}
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
    return [
        SimilarHit(products[hit.id], hit.score, hit.dense_rank, hit.sparse_rank)
        for hit in fused
        if hit.id in products  # a product deleted since its last sync
    ]

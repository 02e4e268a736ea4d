"""Sparse text vectors: scikit-learn TF-IDF over each product's description and attributes.

The vocabulary is fitted on the whole catalog and stored as a versioned TextVectorizer row,
so every process encodes with the same active version. A refit makes every stored sparse
vector meaningless (term columns move), which is why a refit always goes with a full rebuild
of the index (catalog.indexing.index_rebuild).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from django.db import transaction
from django.db.models import Max
from sklearn.feature_extraction.text import TfidfVectorizer

from catalog.models import Product, TextVectorizer

SparseVector = dict[int, float]


def product_document(product: Product) -> str:
    """What a product's sparse vector is made of. The name is product text like the
    description ("Camel wool turtleneck dress"): its words find a bestseller as its
    description's do. A product without one keeps the document (and the stored text hash) it
    had, so adding the field made no index entry stale."""
    parts = (
        product.name,
        product.category,
        product.color,
        product.style,
        product.season,
        product.description,
        product.prompt_hint,
    )
    return " ".join(part for part in parts if part)


def query_document(product: Product, colours: Sequence[str] = ()) -> str:
    """The seed's retrieval query: category, style, season and the product's hint, and the
    colour words its photo shows (a new product has no colour column)."""
    parts = (product.category, product.style, product.season, product.prompt_hint, *colours)
    return " ".join(part for part in parts if part)


def _new_vectorizer(**kwargs) -> TfidfVectorizer:
    return TfidfVectorizer(stop_words="english", **kwargs)


@lru_cache(maxsize=4)
def _loaded(version: int) -> TfidfVectorizer:
    row = TextVectorizer.objects.get(version=version)
    vectorizer = _new_vectorizer(vocabulary=row.vocabulary)
    vectorizer.idf_ = np.asarray(row.idf, dtype=np.float64)
    return vectorizer


def active_vectorizer() -> TextVectorizer | None:
    return TextVectorizer.objects.filter(is_active=True).only("version").first()


def vectorizer_fit() -> TextVectorizer | None:
    """Fit a new vocabulary on the current catalog and make it the active version."""
    documents = [product_document(p) for p in Product.objects.all().iterator()]
    if not any(documents):
        return None
    fitted = _new_vectorizer()
    try:
        fitted.fit(documents)
    except ValueError:  # only stop words in the whole catalog
        return None
    with transaction.atomic():
        version = (TextVectorizer.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        TextVectorizer.objects.filter(is_active=True).update(is_active=False)
        return TextVectorizer.objects.create(
            version=version,
            vocabulary={term: int(col) for term, col in fitted.vocabulary_.items()},
            idf=fitted.idf_.tolist(),
            document_count=len(documents),
            is_active=True,
        )


# Milvus refuses a sparse vector without a non-zero weight, and a product whose text has no
# known term would have one. Term columns therefore start at 1, and column 0 holds a
# negligible weight that no query ever asks for, so it never changes a score.
EMPTY_MARKER: SparseVector = {0: 1e-9}


def encode(texts: list[str], version: int, *, for_query: bool = False) -> list[SparseVector]:
    """TF-IDF vectors as {column: weight}, the form Milvus takes for SPARSE_FLOAT_VECTOR."""
    if not texts:
        return []
    matrix = _loaded(version).transform(texts).tocsr()
    vectors = []
    for row in range(matrix.shape[0]):
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        vector = {
            int(col) + 1: float(value)
            for col, value in zip(matrix.indices[start:end], matrix.data[start:end], strict=True)
        }
        vectors.append(vector or ({} if for_query else dict(EMPTY_MARKER)))
    return vectors

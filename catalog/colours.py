"""Colour words for a new product's text query, taken from the catalog's own colour values.

A new product's CSV has no colour column, yet colour is much of what makes a bestseller look
like it. The words merchandisers typed in the `color` column of the catalog are the words its
sparse vectors know, so those are the words a query may use: each value carried by at least
MIN_PRODUCTS products gets a reference colour, the median of the garment colours the
embedder measured on their photos (`Embedder.garment_colour`), and a new photo's word is the
value whose reference is nearest its own garment colour. The table is built from the vectors
an index rebuild reads anyway (and by the reconcile when the embedder has none yet), so a
search only reads it; an embedder that measures no colour, or a catalog without colours, has
no words, and its queries carry none.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import numpy as np
from django.db import transaction

from catalog.embedders import Embedder
from catalog.models import ColourVocabulary, Product

# A value on a single product may be a one-off name or a slip, and one photo is no reference.
MIN_PRODUCTS = 2
# Light and shadow on cloth move lightness more than hue and chroma (textile colour
# tolerances, CMC l:c = 2:1, weigh it half as well).
LIGHTNESS_WEIGHT = 0.5


def colour_word(value: str) -> str:
    """The form a colour value is grouped and queried in: "Navy  Blue" -> "navy blue"."""
    return " ".join(value.split()).casefold()


class ColourSamples:
    """Garment colours of coloured products, gathered while their vectors pass by."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.by_word: dict[str, list[np.ndarray]] = defaultdict(list)
        self.products = 0

    def add(self, products: Iterable[Product], vectors: dict[str, np.ndarray]) -> None:
        if not self.embedder.measures_colour:
            return
        for product in products:
            word = colour_word(product.color)
            colour = self.embedder.garment_colour(vectors[product.image_sha256]) if word else None
            if colour is not None:
                self.by_word[word].append(colour)
                self.products += 1

    def references(self) -> dict[str, list[float]]:
        """word -> [L, a, b, products] for each word on at least MIN_PRODUCTS products."""
        return {
            word: [*(round(float(v), 2) for v in np.median(colours, axis=0)), len(colours)]
            for word, colours in sorted(self.by_word.items())
            if len(colours) >= MIN_PRODUCTS
        }


def colour_vocabulary_save(*, samples: ColourSamples) -> ColourVocabulary:
    """Replace the embedder's colour vocabulary with the one these samples make."""
    with transaction.atomic():
        ColourVocabulary.objects.filter(embedder=samples.embedder.name).delete()
        return ColourVocabulary.objects.create(
            embedder=samples.embedder.name,
            colours=samples.references(),
            products=samples.products,
        )


def colour_words(*, embedder: Embedder, vector: np.ndarray) -> list[str]:
    """The catalog's colour word nearest the garment colour of this vector, or [] when the
    embedder measures no colour or the catalog has no colour words yet."""
    colour = embedder.garment_colour(vector) if embedder.measures_colour else None
    if colour is None:
        return []
    rows = ColourVocabulary.objects.filter(embedder=embedder.name)
    if (key := rows.values_list("pk", "created_at").first()) is None:
        return []
    words, references = _references(*key)
    if not words:
        return []
    weights = np.array([LIGHTNESS_WEIGHT, 1.0, 1.0])
    distances = (((references - colour) * weights) ** 2).sum(axis=1)
    return [words[int(np.argmin(distances))]]


@functools.lru_cache(maxsize=8)
def _references(pk: int, created_at: datetime) -> tuple[tuple[str, ...], np.ndarray]:
    """A vocabulary's words and their reference colours. Every build makes a new row, and
    its time tells it apart from an older row whose id the database gave out again."""
    colours = ColourVocabulary.objects.get(pk=pk).colours
    return tuple(colours), np.array([v[:3] for v in colours.values()]).reshape(-1, 3)

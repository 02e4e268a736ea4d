"""Colour words for a new product's text query, taken from the catalog's own colour values.

A new product's CSV has no colour column, yet colour is much of what makes a bestseller look
like it. The words merchandisers typed in the `color` column of the catalog are the words its
sparse vectors know, so those are the words a query may use: each value carried by at least
MIN_PRODUCTS products gets a reference colour, the median of the garment colours the
embedder measured on their photos (`Embedder.garment_colour`), with their spread and their
number. A new photo's word is the value most likely to hold its garment colour: nearest its
reference in units of that value's own spread (navy varies little, "multi" a lot), the more
common values favoured as they are in the catalog. The table is built from the vectors
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
# A value's spread, measured on few products, leans towards the typical spread of all values
# as if this many products of typical spread were added; and no spread is below 1 CIELAB unit.
PRIOR_PRODUCTS = 2
MIN_SPREAD = 1.0


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

    def references(self) -> dict[str, dict]:
        """word -> {"colour": median CIELAB, "spread": its spread per channel, "products"} for
        each word on at least MIN_PRODUCTS products; the spread is robust (1.4826 × the median
        absolute deviation: a standard deviation that a few odd photos do not inflate)."""
        words = [w for w, colours in sorted(self.by_word.items()) if len(colours) >= MIN_PRODUCTS]
        if not words:
            return {}
        colours = [np.asarray(self.by_word[w]) for w in words]
        medians = np.array([np.median(c, axis=0) for c in colours])
        spreads = np.array(
            [
                1.4826 * np.median(np.abs(c - m), axis=0)
                for c, m in zip(colours, medians, strict=True)
            ]
        )
        counts = np.array([len(c) for c in colours])[:, None]
        typical = np.median(spreads**2, axis=0)
        variances = (counts * spreads**2 + PRIOR_PRODUCTS * typical) / (counts + PRIOR_PRODUCTS)
        spreads = np.maximum(np.sqrt(variances), MIN_SPREAD)
        return {
            word: {
                "colour": [round(float(v), 2) for v in median],
                "spread": [round(float(v), 2) for v in spread],
                "products": int(count[0]),
            }
            for word, median, spread, count in zip(words, medians, spreads, counts, strict=True)
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
    words, medians, spreads, log_prior = _references(*key)
    if not words:
        return []
    # The log-likelihood of a normal distribution per word (per channel, around its median).
    score = log_prior - (((colour - medians) / spreads) ** 2 / 2 + np.log(spreads)).sum(axis=1)
    return [words[int(np.argmax(score))]]


@functools.lru_cache(maxsize=8)
def _references(pk: int, created_at: datetime) -> tuple:
    """A vocabulary's words, medians, spreads and log product counts. Every build makes a new
    row, and its time tells it apart from an older row whose id the database gave out again."""
    colours = ColourVocabulary.objects.get(pk=pk).colours
    values = colours.values()
    return (
        tuple(colours),
        np.array([v["colour"] for v in values]).reshape(-1, 3),
        np.array([v["spread"] for v in values]).reshape(-1, 3),
        np.log([v["products"] for v in values]),
    )

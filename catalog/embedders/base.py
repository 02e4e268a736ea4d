"""The embedder base class and the backend named in settings."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.utils.module_loading import import_string
from PIL import Image

from core.images import ImageUnreadable, open_image
from core.openrouter import ProviderError

# Every setting an embedder reads in __init__: a change to any of them yields a new instance.
_EMBEDDER_SETTINGS = (
    "OPENROUTER_API_KEY",
    "OPENROUTER_BASE_URL",
    "OPENROUTER_SITE_URL",
    "OPENROUTER_APP_TITLE",
    "OPENROUTER_TIMEOUT",
    "EMBEDDING_MODEL",
    "EMBEDDING_DIMENSION",
    "EMBEDDING_BATCH_SIZE",
    "EMBEDDING_PRICE_PER_IMAGE",
)


class Embedder:
    """Turns product photos into vectors that are compared by cosine similarity.

    Subclasses set:
      name        stable id of the vector space: a cache key and part of Milvus collection
                  names, so lowercase letters, digits and underscores only. Vectors from
                  embedders with different names must never be compared.
      dimension   length of every vector.
      is_offline  True when no network or paid service is involved (results are previews).
      batch_size  how many images one paid call takes (callers keep each call's vectors).
      measures_colour True when `garment_colour` reads a colour from the vectors.
      stream_side for a local embedder that describes pixels: the longest side it works at.
                  The import then embeds each photo from the decode it made anyway, through
                  `embed_decoded`, on every core. 0 (paid embedders): the index sync embeds.
    and implement `embed_images`. Instances are built without arguments from settings and
    may be shared between threads.
    """

    name: str = ""
    dimension: int = 0
    is_offline: bool = False
    batch_size: int = 64  # images per call; callers save the vectors after each call
    measures_colour: bool = False
    stream_side: int = 0

    def embed_images(self, images: Sequence[bytes]) -> list[np.ndarray]:
        """One float32 vector of length `dimension` with L2 norm 1 per image, in input order.

        `images` are encoded image files (JPEG, PNG or WebP). A paid embedder books each of its
        calls (core.spending). Raises core.openrouter's ProviderError (an unreadable image is
        one too, not retryable) or core.spending's SpendingCapReached.
        """
        raise NotImplementedError

    def garment_colour(self, vector: np.ndarray) -> np.ndarray | None:
        """The CIELAB colour (L, a, b) of the garment a vector of this embedder describes, for
        an embedder that `measures_colour`; None otherwise. Retrieval turns it into the
        catalog's nearest colour word for a new product's text query (catalog.colours), since
        a new product's CSV has no colour column."""
        return None

    def embed_decoded(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        """Like embed_images, for decoded RGB images (transparency already on white) that are
        at least `stream_side` on their longest side or whole. It may run in a pool process:
        it reads neither settings nor the database."""
        raise NotImplementedError


def get_embedder() -> Embedder:
    """The embedder named by settings.EMBEDDER_BACKEND, shared until its settings change."""
    values = (repr(getattr(settings, name, None)) for name in _EMBEDDER_SETTINGS)
    return _embedder_for((settings.EMBEDDER_BACKEND, *values))


@functools.lru_cache(maxsize=8)
def _embedder_for(key: tuple[str, ...]) -> Embedder:
    return import_string(key[0])()


@functools.cache
def pool_embedder(backend: str) -> Embedder:
    """The embedder class at this dotted path, made once per process: for a pool process that
    has no Django set up (catalog.photo_stream), where `embed_decoded` is all it calls."""
    return import_string(backend)()


def unit(vector: np.ndarray) -> np.ndarray:
    """The vector scaled to length 1 (a zero vector stays zero), as float32."""
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def shrunk(image: Image.Image, max_side: int) -> Image.Image:
    """A copy no larger than max_side, resampled as open_image does."""
    image = image.copy()
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def read_image(data: bytes, index: int, *, max_side: int) -> Image.Image:
    """The index-th image of a request, decoded; an unreadable one fails the whole request."""
    try:
        return open_image(data, max_side=max_side)
    except ImageUnreadable as exc:
        raise ProviderError(f"image {index + 1} cannot be read: {exc}", retryable=False) from None

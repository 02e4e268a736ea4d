"""What a pool process does with an import's photos (catalog.photo_stream): prepare them and
embed them. This module and what it imports stay clear of Django's apps and database, which a
pool process does not set up."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from catalog.embedders.base import Embedder, pool_embedder
from catalog.images import ImageLimits, ImageRejected, PreparedImage, image_prepare


@dataclass(frozen=True, slots=True)
class Outcome:
    """One photo prepared: the image (without its decoded copy once it has crossed from a pool
    process), or why it was rejected; its vector when it was embedded."""

    key: str
    image: PreparedImage | None
    rejected: str = ""
    vector: np.ndarray | None = None


def embeddable(image: PreparedImage, stream_side: int) -> bool:
    """Whether the embedder can describe this photo from its small copy: the copy is at least
    `stream_side` on its longest side, or the whole photo. (The index sync embeds the others
    from the stored file.)"""
    small = image.small
    return bool(stream_side) and (
        small is not None
        and (max(small.size) >= stream_side or small.size == (image.width, image.height))
    )


def prepare_photos(
    embedder: Embedder | None, limits: ImageLimits, items: list[tuple[str, bytes]]
) -> list[Outcome]:
    """Prepare each photo (by key, its bytes) and embed those the embedder can describe."""
    outcomes = []
    for key, data in items:
        try:
            outcomes.append(Outcome(key, image_prepare(data, limits)))
        except ImageRejected as exc:
            outcomes.append(Outcome(key, None, rejected=str(exc)))
    if embedder is not None:
        side = embedder.stream_side
        todo = [n for n, o in enumerate(outcomes) if o.image and embeddable(o.image, side)]
        vectors = embedder.embed_decoded([outcomes[n].image.small for n in todo])
        for n, vector in zip(todo, vectors, strict=True):
            outcomes[n] = replace(outcomes[n], vector=vector)
    return outcomes


def prepare_in_pool(
    backend: str, limits: ImageLimits, items: list[tuple[str, bytes]]
) -> list[Outcome]:
    """`prepare_photos` in a pool process, with the embedder class at this dotted path (or
    none); the decoded copies stay here."""
    embedder = pool_embedder(backend) if backend else None
    return [
        replace(o, image=replace(o.image, small=None)) if o.image else o
        for o in prepare_photos(embedder, limits, items)
    ]

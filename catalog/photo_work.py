"""What a pool process does with an import's photos (catalog.photo_stream): prepare them,
embed them and, on local storage, store their files. This module and what it imports stay
clear of Django's apps, settings and database, which a pool process does not set up."""

from __future__ import annotations

import os
import tempfile
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
    # Stored by the pool (LocalFiles): whether the photo and its thumbnail were new files.
    stored: tuple[bool, bool] | None = None


@dataclass(frozen=True, slots=True)
class LocalFiles:
    """Django's FileSystemStorage at `root`, as a pool process writes to it: each file written
    whole under a temporary name and linked into place only if no file has that name yet (the
    names are content hashes: a file there already holds the same bytes), with the storage's
    permissions."""

    root: str
    file_mode: int | None
    dir_mode: int | None

    def write(self, name: str, content: bytes) -> bool:
        """Store the file unless it is there; True when this call created it."""
        path = os.path.join(self.root, name)
        if os.path.exists(path):
            return False
        folder = os.path.dirname(path)
        if self.dir_mode is None:
            os.makedirs(folder, exist_ok=True)
        else:
            old_umask = os.umask(0o777 & ~self.dir_mode)  # as FileSystemStorage does
            try:
                os.makedirs(folder, self.dir_mode, exist_ok=True)
            finally:
                os.umask(old_umask)
        handle, incoming = tempfile.mkstemp(dir=folder, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(content)
            os.chmod(incoming, self.file_mode if self.file_mode is not None else _default_mode())
            try:
                os.link(incoming, path)
            except FileExistsError:
                return False
            return True
        finally:
            os.unlink(incoming)


def _default_mode() -> int:
    """What a file FileSystemStorage creates gets without FILE_UPLOAD_PERMISSIONS: 0o666 less
    the umask (mkstemp makes 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


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
    backend: str,
    limits: ImageLimits,
    files: LocalFiles | None,
    items: list[tuple[str, bytes]],
) -> list[Outcome]:
    """`prepare_photos` in a pool process, with the embedder class at this dotted path (or
    none), storing the files when `files` says where. What is sent back is the image's name and
    size (with its bytes only when the caller stores them) and its vector."""
    embedder = pool_embedder(backend) if backend else None
    outcomes = []
    for outcome in prepare_photos(embedder, limits, items):
        image = outcome.image
        if image is None:
            outcomes.append(outcome)
            continue
        stored = None
        if files is not None:
            stored = (
                files.write(image.storage_name, image.content),
                files.write(image.thumbnail_name_at(limits.thumbnail_size), image.thumbnail),
            )
            image = replace(image, content=b"", thumbnail=b"")
        outcomes.append(replace(outcome, image=replace(image, small=None), stored=stored))
    return outcomes

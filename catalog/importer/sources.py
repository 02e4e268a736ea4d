"""Where the images named in image_path come from: a folder on disk or an uploaded ZIP."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.storage import default_storage

from catalog.images import ImageRef, ImageRejected, image_store
from catalog.photo_stream import Outcome, PhotoStream


class ImageSourceError(Exception):
    pass


def safe_relative_path(raw: str) -> PurePosixPath:
    """The image path as written in the CSV, refused if it could leave the images folder."""
    text = raw.strip().replace("\\", "/")
    if not text:
        raise ImageSourceError("is empty")
    if "\x00" in text:
        raise ImageSourceError("contains a NUL character")
    path = PurePosixPath(text)
    if path.is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise ImageSourceError(f"{raw!r} is an absolute path; give a path relative to the images")
    if ".." in path.parts:
        raise ImageSourceError(f"{raw!r} leaves the images folder ('..' is not allowed)")
    return path


class DirectoryImages:
    """Images in a folder on disk (the management command)."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ImageSourceError(f"images folder {str(root)!r} does not exist")

    def describe(self) -> str:
        return f"the images folder {str(self.root)!r}"

    def read(self, relative: PurePosixPath) -> bytes:
        path = (self.root / relative).resolve()
        if self.root not in path.parents:  # a symlink pointing outside
            raise ImageSourceError(f"{str(relative)!r} leaves the images folder")
        if not path.is_file():
            raise ImageSourceError(f"{str(relative)!r} is not in {self.describe()}")
        size = path.stat().st_size
        if size > settings.CATALOG_IMAGE_MAX_BYTES:
            raise ImageSourceError(
                f"{str(relative)!r} is {size:,} bytes; the limit is "
                f"{settings.CATALOG_IMAGE_MAX_BYTES:,} bytes"
            )
        return path.read_bytes()


def _is_archiver_litter(name: str) -> bool:
    """Entries that macOS Finder adds to every ZIP it makes."""
    return name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1] == ".DS_Store"


class ZipImages:
    """Images inside an uploaded ZIP (the admin page). Members are read, never extracted.

    A ZIP made by compressing the images folder itself has one top-level folder; paths are
    then looked up inside it too, so both ways of zipping work.
    """

    def __init__(self, file):
        try:
            self.zip = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError):
            raise ImageSourceError("the images file is not a valid ZIP archive") from None
        self.members = {
            info.filename: info
            for info in self.zip.infolist()
            if not info.is_dir() and not _is_archiver_litter(info.filename)
        }
        tops = {name.split("/", 1)[0] for name in self.members}
        self.prefix = ""
        if len(tops) == 1 and all("/" in name for name in self.members):
            self.prefix = tops.pop() + "/"

    def describe(self) -> str:
        return "the images ZIP"

    def read(self, relative: PurePosixPath) -> bytes:
        info = self.members.get(str(relative)) or self.members.get(self.prefix + str(relative))
        if info is None:
            raise ImageSourceError(f"{str(relative)!r} is not in {self.describe()}")
        # file_size is what the archive claims; reading stops one byte past the limit anyway.
        limit = settings.CATALOG_IMAGE_MAX_BYTES
        if info.file_size > limit:
            raise ImageSourceError(
                f"{str(relative)!r} is {info.file_size:,} bytes; the limit is {limit:,} bytes"
            )
        try:
            with self.zip.open(info) as member:
                data = member.read(limit + 1)
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
            raise ImageSourceError(
                f"{str(relative)!r} cannot be read from the ZIP ({exc})"
            ) from None
        if len(data) > limit:
            raise ImageSourceError(f"{str(relative)!r} is larger than {limit:,} bytes")
        return data


def images_for_path(path: str | os.PathLike | None) -> DirectoryImages | ZipImages | None:
    """The image source for a command-line argument: a folder or a .zip file."""
    if path is None:
        return None
    if str(path).lower().endswith(".zip"):
        return ZipImages(open(path, "rb"))
    return DirectoryImages(path)


class Photos:
    """The photos an import reads, each distinct path read, prepared and checked once, however
    many rows name it. When the import writes, each photo is stored as soon as it is checked,
    so no row holds image bytes and memory stays flat in the number of rows; `discard()`
    removes what this import stored when it ends without writing.

    With a `stream` on a pool (catalog.photo_stream), the reader announces the paths of the
    rows ahead (`expect`): their photos are prepared on every core while earlier rows are
    cleaned, and `get` waits for one only if it is not back yet.
    """

    def __init__(
        self,
        source: DirectoryImages | ZipImages,
        *,
        store: bool,
        stream: PhotoStream | None = None,
    ):
        self.source, self.store = source, store
        self.stream = stream or PhotoStream(None, processes=1)
        # What this import stored, to remove if it ends without writing: the photo's ref (its
        # file names follow from it) and whether the photo, its thumbnail or both were new.
        self.created: list[tuple[ImageRef, bool, bool]] = []
        self._seen: dict[str, ImageRef | Exception] = {}
        self._expected: set[str] = set()  # put in the stream, outcome not back yet

    @property
    def lookahead(self) -> int:
        """How many rows ahead the reader should announce (0: none)."""
        return self.stream.lookahead

    def expect(self, raw_path: str) -> None:
        """A row ahead names this photo: start preparing it."""
        try:
            key = str(safe_relative_path(raw_path))
        except ImageSourceError:
            return  # `get` says why, for that row
        if key not in self._seen and key not in self._expected:
            self._put(key)
        self._receive(self.stream.take())

    def get(self, raw_path: str) -> ImageRef:
        """The photo at a CSV path; raises ImageSourceError or ImageRejected."""
        key = str(safe_relative_path(raw_path))
        if key not in self._seen and key not in self._expected:
            self._put(key)
        if key in self._expected:
            self._receive(self.stream.take())
        if key in self._expected:
            self.stream.submit()
            while key in self._expected:
                outcomes = self.stream.take(wait=True)
                if not outcomes:
                    raise RuntimeError(f"the photo {key!r} went to be prepared and never came back")
                self._receive(outcomes)
        found = self._seen[key]
        if isinstance(found, Exception):
            raise found
        return found

    def _put(self, key: str) -> None:
        try:
            data = self.source.read(PurePosixPath(key))
        except ImageSourceError as exc:
            self._seen[key] = exc
            return
        self._expected.add(key)
        self.stream.put(key, data)

    def _receive(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            self._expected.discard(outcome.key)
            if outcome.image is None:
                self._seen[outcome.key] = ImageRejected(outcome.rejected)
                continue
            image = outcome.image
            if outcome.stored is not None:  # stored by the pool
                new_image, new_thumbnail = outcome.stored
            elif self.store and (stored := image_store(image)):
                new_image = image.storage_name in stored
                new_thumbnail = image.thumbnail_name in stored
            else:
                new_image = new_thumbnail = False
            if new_image or new_thumbnail:
                self.created.append((image.ref(), new_image, new_thumbnail))
            self._seen[outcome.key] = image.ref()

    @property
    def seen(self) -> int:
        """Distinct photo paths read so far."""
        return len(self._seen)

    def refs(self) -> dict[str, ImageRef]:
        """The good photos read so far, by path (what a later write needs of them)."""
        return {key: ref for key, ref in self._seen.items() if isinstance(ref, ImageRef)}

    def discard(self) -> None:
        for ref, image, thumbnail in self.created:
            for name, new in ((ref.storage_name, image), (ref.thumbnail_name, thumbnail)):
                if new:
                    default_storage.delete(name)
        self.created = []


class KnownPhotos:
    """The photos a checked import stored, by path: its write reads none of them again."""

    def __init__(self, refs: dict[str, ImageRef]):
        self.known = refs

    def get(self, raw_path: str) -> ImageRef:
        key = str(safe_relative_path(raw_path))
        if key not in self.known:
            raise ImageSourceError(f"{key!r} was not among the photos the check stored")
        return self.known[key]

    @property
    def seen(self) -> int:
        return len(self.known)

    lookahead = 0

    def discard(self) -> None:
        """Nothing to discard: the check's photos are the job's (catalog.importer.jobs)."""

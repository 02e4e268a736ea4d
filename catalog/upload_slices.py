"""An import's files sent by the import page in slices, one request per slice.

A 1 GB ZIP cannot arrive in one request within 2 s over a real network, and the web server's
timeout would kill a slow upload. The page's script (catalog/static/catalog/import-upload.js)
first declares the files (names and sizes, refused at once over their field's limit), then
sends each file in slices of CATALOG_IMPORT_SLICE_BYTES cut with Blob.slice, each slice a POST
of its own, and last asks for the import job. The slices wait in the upload's staging folder:

    import-staging/<token>/name.txt                      the CSV's name (as a form upload)
    import-staging/<token>/upload.json                   who, which files, the slice size
    import-staging/<token>/slices/<field>/<000000>       one object per slice

Each slice is an object of its own because the default storage may be an object store (S3
through django-storages) that cannot append. A request reads, checks and stores one slice:
its length must be exactly what the declared size gives for its place, so what arrives can
never pass the declared size, which is within the field's limit.

The slices are assembled by the worker, as the first step of the import's check
(`upload_assemble`, called by catalog.importer.jobs), into the files a form upload leaves
(catalog.csv, images.zip), streamed one slice at a time. Why there and not in staging's
readers: the ZIP must be one seekable file (zipfile reads its directory at the end, then the
members in any order) and the CSV is read by the check and again by the write, so reading
through the slices each time will not do; assembled once by the check, a refusal (over the
limit, a slice missing, then not a ZIP at all) is the check's refusal shown on the import's
page like any other, and the write, a resumed write, the discard and the sweep see the same
files as after a form upload. Why not in a request: it copies the whole file. An upload whose
files fit in one slice together is assembled by the finish request, one slice of work, so its
preview is there at once as with the form.
"""

from __future__ import annotations

import io
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage

from catalog.importer.formats import ImportKind
from catalog.models import CatalogImport
from catalog.staging import CSV, NAME, TOKEN_RE, ZIP, StagedImport, staging_files
from catalog.uploads import too_large, upload_limits

MANIFEST = "upload.json"
SLICES = "slices"
FILES = {"csv_file": CSV, "images_zip": ZIP}  # the form's fields and the staged files
COLUMN = {"csv_file": "csv", "images_zip": "images"}  # as the check's errors name them
BEAT_SECONDS = 5


class UploadRefused(Exception):
    """The request cannot be taken; the message says why, for the merchandiser."""

    status = 400

    def __init__(self, message: str, *, field: str = "csv_file"):
        super().__init__(message)
        self.column = COLUMN.get(field, "csv")


class UploadTooLarge(UploadRefused):
    status = 413


class UploadNotYours(UploadRefused):
    status = 403


class UploadFinished(UploadRefused):
    status = 409


@dataclass(frozen=True)
class SlicedUpload:
    """An upload arriving in slices: who sends it, its files' names and sizes by field."""

    staged: StagedImport
    owner: int
    slice_bytes: int
    files: dict[str, dict]  # field -> {"name": ..., "size": ...}
    kind: str = ""

    @property
    def token(self) -> str:
        return self.staged.token

    @property
    def has_images(self) -> bool:
        return "images_zip" in self.files

    @property
    def fits_one_slice(self) -> bool:
        """Every file together no larger than one slice: assembling it is one slice's work."""
        return sum(file["size"] for file in self.files.values()) <= self.slice_bytes

    def slice_count(self, field: str) -> int:
        return math.ceil(self.files[field]["size"] / self.slice_bytes)

    def slice_size(self, field: str, index: int) -> int:
        """The exact length of a slice; refuses a field or a place the upload has not."""
        if field not in self.files:
            raise UploadRefused(f"This upload has no {field}.", field=field)
        count = self.slice_count(field)
        if not 0 <= index < count:
            raise UploadRefused(
                f"{self.files[field]['name']} has {count} slices; there is no slice {index}.",
                field=field,
            )
        return min(self.slice_bytes, self.files[field]["size"] - index * self.slice_bytes)

    def slice_name(self, field: str, index: int) -> str:
        return f"{self.staged.folder}/{SLICES}/{field}/{index:06d}"

    def read_slice(self, field: str, index: int) -> bytes:
        with default_storage.open(self.slice_name(field, index), "rb") as handle:
            return handle.read()


def _manifest(staged: StagedImport) -> SlicedUpload | None:
    name = staged.name_of(MANIFEST)
    if not default_storage.exists(name):
        return None
    with default_storage.open(name, "rb") as handle:
        data = json.loads(handle.read())
    return SlicedUpload(staged=staged, **data)


def upload_start(*, user, files: dict[str, tuple[str, int]], kind: str = "") -> SlicedUpload:
    """Declare an upload: the files by field (name and size in bytes), each within its field's
    limit, and the format asked for. Returns it with its token and the slice size."""
    if "csv_file" not in files:
        raise UploadRefused("Choose a CSV file.")
    limits = upload_limits()
    declared = {}
    for field, (name, size) in files.items():
        if field not in FILES:
            raise UploadRefused(f"{field} is not a file of the import.")
        name = PurePosixPath(str(name).replace("\\", "/")).name[:255] or field
        if size <= 0:
            raise UploadRefused(f"{name}: the submitted file is empty.", field=field)
        if size > limits[field]:
            raise UploadTooLarge(too_large(name, limits[field]), field=field)
        declared[field] = {"name": name, "size": size}
    if kind and kind not in ImportKind.values:
        raise UploadRefused(f"{kind} is not one of the import's formats.")
    upload = SlicedUpload(
        staged=StagedImport(uuid.uuid4().hex),
        owner=user.pk,
        slice_bytes=settings.CATALOG_IMPORT_SLICE_BYTES,
        files=declared,
        kind=kind,
    )
    default_storage.save(
        upload.staged.name_of(NAME), ContentFile(declared["csv_file"]["name"].encode())
    )
    manifest = {
        "owner": upload.owner,
        "slice_bytes": upload.slice_bytes,
        "files": upload.files,
        "kind": upload.kind,
    }
    default_storage.save(upload.staged.name_of(MANIFEST), ContentFile(json.dumps(manifest)))
    return upload


def upload_get(*, token: str, user) -> SlicedUpload:
    """The upload under `token`, if `user` is the one sending it and it is still arriving."""
    upload = _manifest(StagedImport(token)) if TOKEN_RE.match(token or "") else None
    if upload is None:
        raise UploadRefused("No such upload (it may have been finished or removed).")
    if upload.owner != user.pk:
        raise UploadNotYours("This upload belongs to someone else.")
    if CatalogImport.objects.filter(token=token).exists():
        raise UploadFinished("This upload is finished already: its import has started.")
    return upload


def upload_slice_store(*, upload: SlicedUpload, field: str, index: int, body, length) -> int:
    """Store one slice read from `body` (a request); its length must be exactly the one its
    place in the declared file gives. Sending a slice again replaces it. Returns its length."""
    expected = upload.slice_size(field, index)
    name = upload.files[field]["name"]
    if length is not None and length > expected:
        raise UploadTooLarge(
            f"Slice {index} of {name} is {length:,} bytes; it may be {expected:,} bytes at most. "
            f"Nothing of it was stored.",
            field=field,
        )
    data = body.read(expected + 1)
    if len(data) != expected:
        error = UploadTooLarge if len(data) > expected else UploadRefused
        raise error(
            f"Slice {index} of {name} is {len(data):,} bytes; it must be {expected:,} bytes. "
            f"Nothing of it was stored.",
            field=field,
        )
    target = upload.slice_name(field, index)
    default_storage.delete(target)
    stored = default_storage.save(target, ContentFile(data))
    if stored != target:  # the same slice sent twice at once: the other copy is kept
        default_storage.delete(stored)
    return expected


def upload_missing(upload: SlicedUpload) -> dict[str, list[int]]:
    """The slices that have not arrived, by field (one listing per file, no file read)."""
    missing = {}
    for field in upload.files:
        try:
            _, names = default_storage.listdir(f"{upload.staged.folder}/{SLICES}/{field}")
        except FileNotFoundError:
            names = []
        there = set(names)
        gaps = [i for i in range(upload.slice_count(field)) if f"{i:06d}" not in there]
        if gaps:
            missing[field] = gaps
    return missing


class _Slices(io.RawIOBase):
    """A file's slices read one after another as one stream (never seekable)."""

    def __init__(self, upload: SlicedUpload, field: str, beat: Callable[[], None] | None):
        self.upload, self.field, self.beat = upload, field, beat
        self.index, self.handle, self.read_bytes = 0, None, 0
        self.beaten = time.monotonic()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self.handle is None:
                if self.index == self.upload.slice_count(self.field):
                    return 0
                self.handle = self._open(self.index)
            data = self.handle.read(len(buffer))
            if data:
                self.read_bytes += len(data)
                if self.read_bytes > self.upload.files[self.field]["size"]:
                    raise UploadTooLarge(
                        f"{self.upload.files[self.field]['name']} grew past its declared size.",
                        field=self.field,
                    )
                buffer[: len(data)] = data
                return len(data)
            self.handle.close()
            self.handle, self.index = None, self.index + 1
            if self.beat and time.monotonic() - self.beaten >= BEAT_SECONDS:
                self.beat()
                self.beaten = time.monotonic()

    def _open(self, index: int):
        try:
            return default_storage.open(self.upload.slice_name(self.field, index), "rb")
        except FileNotFoundError:
            raise UploadRefused(
                f"{self.upload.files[self.field]['name']} is incomplete: slice {index} of "
                f"{self.upload.slice_count(self.field)} never arrived. Nothing imported.",
                field=self.field,
            ) from None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
        super().close()


def upload_assemble(staged: StagedImport, *, beat: Callable[[], None] | None = None) -> None:
    """Join the slices of an upload sent in slices into the staged files, streaming one slice
    at a time, then remove the slices; a no-op for a form upload or one assembled already.
    Raises UploadRefused when a file passes its field's limit or a slice is missing.

    Idempotent: the manifest goes only after every file is whole, so a worker killed in the
    middle assembles again from the slices."""
    upload = _manifest(staged)
    if upload is None:
        return
    limits = upload_limits()
    for field, file in upload.files.items():
        if file["size"] > limits[field]:  # the limit may have been lowered since
            raise UploadTooLarge(too_large(file["name"], limits[field]), field=field)
    for field in upload.files:
        target = staged.name_of(FILES[field])
        default_storage.delete(target)
        with _Slices(upload, field, beat) as stream:
            stored = default_storage.save(target, File(stream, name=target))
        if stored != target:
            raise RuntimeError(f"{target} was stored as {stored}")
        if default_storage.size(target) != upload.files[field]["size"]:
            raise UploadRefused(
                f"{upload.files[field]['name']} arrived as {default_storage.size(target):,} "
                f"bytes of the {upload.files[field]['size']:,} declared. Nothing imported.",
                field=field,
            )
    default_storage.delete(staged.name_of(MANIFEST))
    for name in staging_files(f"{staged.folder}/{SLICES}"):
        default_storage.delete(name)

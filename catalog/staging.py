"""Uploaded import files kept between the dry-run preview and the confirmation.

They live in the default (private) storage under import-staging/<token>/, so the preview and
the confirmation may be served by different web hosts. Each upload gets a random token; only
the person who uploaded the files (or a superuser) confirms them (catalog.import_admin). A file
sent in slices by the import page waits there as its slices until a worker assembles it
(catalog.upload_slices). Stale uploads, abandoned ones among them, are purged on schedule
(catalog.periodic).
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath
from typing import IO

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.utils import timezone

ROOT = "import-staging"
MAX_AGE = timedelta(days=1)
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
CSV, ZIP, NAME = "catalog.csv", "images.zip", "name.txt"


@dataclass(frozen=True)
class StagedImport:
    token: str

    def name_of(self, file: str) -> str:
        """The storage name of one of its files."""
        return f"{ROOT}/{self.token}/{file}"

    @property
    def folder(self) -> str:
        return f"{ROOT}/{self.token}"

    def csv_data(self) -> bytes:
        with default_storage.open(self.name_of(CSV), "rb") as handle:
            return handle.read()

    def open_zip(self) -> IO[bytes] | None:
        """The images ZIP, opened for reading (the caller closes it), or None without one."""
        name = self.name_of(ZIP)
        return default_storage.open(name, "rb") if default_storage.exists(name) else None

    @property
    def csv_name(self) -> str:
        with default_storage.open(self.name_of(NAME), "rb") as handle:
            return handle.read().decode()


def staging_create(*, csv_file, zip_file=None) -> StagedImport:
    """Store the uploaded files under a new token."""
    staged = StagedImport(uuid.uuid4().hex)
    default_storage.save(
        staged.name_of(NAME), ContentFile(PurePosixPath(csv_file.name).name.encode())
    )
    default_storage.save(staged.name_of(CSV), File(csv_file))
    if zip_file is not None:
        default_storage.save(staged.name_of(ZIP), File(zip_file))
    return staged


def staging_get(token: str) -> StagedImport | None:
    if not TOKEN_RE.match(token or ""):
        return None
    staged = StagedImport(token)
    return staged if default_storage.exists(staged.name_of(CSV)) else None


def staging_files(folder: str) -> list[str]:
    """Every file under a folder of the storage, at any depth (an upload's slices sit in
    sub-folders)."""
    try:
        folders, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return []
    names = [f"{folder}/{file}" for file in files]
    for sub in folders:
        names += staging_files(f"{folder}/{sub}")
    return names


def staging_discard(staged: StagedImport) -> None:
    """Remove the upload's folder: its files, and the slices of one that came in slices."""
    folder = staged.folder
    for name in staging_files(folder):
        default_storage.delete(name)
    try:  # local storage keeps the emptied folders; object stores have none
        for path, _, _ in sorted(os.walk(default_storage.path(folder)), reverse=True):
            os.rmdir(path)
    except (NotImplementedError, OSError):
        pass


def staging_tokens() -> list[str]:
    """The tokens of every staged upload."""
    try:
        folders, _ = default_storage.listdir(ROOT)
    except FileNotFoundError:
        return []
    return sorted(token for token in folders if TOKEN_RE.match(token))


def staging_purge_stale(max_age: timedelta = MAX_AGE, keep: set[str] = frozenset()) -> int:
    """Remove uploads untouched for `max_age` but those in `keep`; returns how many.

    An upload still arriving in slices counts from its newest slice, so a slow upload is kept
    while slices come and an abandoned one goes `max_age` after its last slice.
    """
    cutoff = timezone.now() - max_age
    purged = 0
    for token in staging_tokens():
        if token in keep:
            continue
        staged = StagedImport(token)
        files = staging_files(staged.folder)
        if staged.name_of(NAME) not in files or all(
            default_storage.get_modified_time(name) < cutoff for name in files
        ):
            staging_discard(staged)
            purged += 1
    return purged

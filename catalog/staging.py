"""Uploaded import files kept between the dry-run preview and the confirmation.

They live in the default (private) storage under import-staging/<token>/, so the preview and
the confirmation may be served by different web hosts. Each upload gets a random token; the
admin keeps the tokens a user staged in their session, so nobody confirms another person's
upload. Stale uploads are purged on schedule (catalog.periodic).
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

    def _name(self, file: str) -> str:
        return f"{ROOT}/{self.token}/{file}"

    def csv_data(self) -> bytes:
        with default_storage.open(self._name(CSV), "rb") as handle:
            return handle.read()

    def open_zip(self) -> IO[bytes] | None:
        """The images ZIP, opened for reading (the caller closes it), or None without one."""
        name = self._name(ZIP)
        return default_storage.open(name, "rb") if default_storage.exists(name) else None

    @property
    def csv_name(self) -> str:
        with default_storage.open(self._name(NAME), "rb") as handle:
            return handle.read().decode()


def staging_create(*, csv_file, zip_file=None) -> StagedImport:
    """Store the uploaded files under a new token."""
    staged = StagedImport(uuid.uuid4().hex)
    default_storage.save(
        staged._name(NAME), ContentFile(PurePosixPath(csv_file.name).name.encode())
    )
    default_storage.save(staged._name(CSV), File(csv_file))
    if zip_file is not None:
        default_storage.save(staged._name(ZIP), File(zip_file))
    return staged


def staging_get(token: str) -> StagedImport | None:
    if not TOKEN_RE.match(token or ""):
        return None
    staged = StagedImport(token)
    return staged if default_storage.exists(staged._name(CSV)) else None


def staging_discard(staged: StagedImport) -> None:
    for file in (CSV, ZIP, NAME):
        default_storage.delete(staged._name(file))
    try:  # local storage keeps the emptied folder; object stores have none
        os.rmdir(default_storage.path(f"{ROOT}/{staged.token}"))
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
    """Remove uploads older than `max_age` but those in `keep`; returns how many."""
    cutoff = timezone.now() - max_age
    purged = 0
    for token in staging_tokens():
        if token in keep:
            continue
        staged = StagedImport(token)
        name = staged._name(NAME)
        if not default_storage.exists(name) or default_storage.get_modified_time(name) < cutoff:
            staging_discard(staged)
            purged += 1
    return purged

"""Uploaded import files kept between the dry-run preview and the confirmation.

Each upload gets a random token and a folder of its own under CATALOG_IMPORT_STAGING_DIR.
The admin keeps the tokens a user staged in their session, so nobody confirms another
person's upload. Folders older than a day are removed whenever a new upload arrives.
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

MAX_AGE_SECONDS = 24 * 3600
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class StagedImport:
    token: str
    folder: Path

    @property
    def csv_path(self) -> Path:
        return self.folder / "catalog.csv"

    @property
    def zip_path(self) -> Path | None:
        path = self.folder / "images.zip"
        return path if path.exists() else None

    @property
    def csv_name(self) -> str:
        return (self.folder / "name.txt").read_text()


def _root() -> Path:
    return Path(settings.CATALOG_IMPORT_STAGING_DIR)


def staging_create(*, csv_file, zip_file=None) -> StagedImport:
    """Copy the uploaded files into a new staging folder."""
    staging_purge_stale()
    token = uuid.uuid4().hex
    staged = StagedImport(token, _root() / token)
    staged.folder.mkdir(parents=True)
    (staged.folder / "name.txt").write_text(Path(csv_file.name).name)
    for upload, target in ((csv_file, staged.csv_path), (zip_file, staged.folder / "images.zip")):
        if upload is None:
            continue
        with open(target, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    return staged


def staging_get(token: str) -> StagedImport | None:
    if not TOKEN_RE.match(token or ""):
        return None
    folder = _root() / token
    return StagedImport(token, folder) if folder.is_dir() else None


def staging_discard(staged: StagedImport) -> None:
    shutil.rmtree(staged.folder, ignore_errors=True)


def staging_purge_stale(max_age: float = MAX_AGE_SECONDS) -> None:
    root = _root()
    if not root.is_dir():
        return
    cutoff = time.time() - max_age
    for folder in root.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)

"""The restore drill of docs/operations.md, step by step, with the commands it gives.

A studio with a catalog and published images is backed up (its database: pg_dump in custom
format on PostgreSQL, SQLite's online `.backup` on one machine; a tar of its stored files),
then restored into a fresh stack: a new database (on the same PostgreSQL server, or a new
SQLite file), a new files folder, an empty Redis and an empty milvus-lite server. Milvus is
filled again from the database (`manage.py reindex`), `manage.py check_index` finds nothing
missing, stale or orphaned, a look-alike search answers, and every published URL answers on
the restored site with the same bytes as before.

It runs in both passes of .ci/run: PostgreSQL's commands in the PostgreSQL pass, SQLite's in
the other. The figures it prints (pytest -s) are in docs/operations.md.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from catalog.indexing import index_rebuild
from catalog.models import Product
from generation.models import AssetStatus, ChannelPreset, GeneratedAsset
from generation.review import asset_approve, asset_publish
from generation.services import BatchRequest, batch_create
from generation.views import published_url
from tests.factories import sample_catalog_import
from tests.milvus_server import MilvusLiteServer
from tests.test_topology import BIN, Stack, free_port, stack_env

# The source studio is made in this process, and the backup must see it: committed rows.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def run(*command: str | Path) -> str:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


class PostgreSQL:
    """docs/operations.md's commands for PostgreSQL, on the server the tests use."""

    def __init__(self):
        db = connection.settings_dict
        self.host, self.port = db["HOST"] or "127.0.0.1", str(db["PORT"] or 5432)
        self.user, self.password = db["USER"], db["PASSWORD"] or ""
        self.source = db["NAME"]  # the test database: the studio being backed up
        self.restored = f"restored_{uuid.uuid4().hex[:8]}"
        # The server's own client programs (pg_dump refuses a server newer than itself).
        major = connection.cursor().connection.info.server_version // 10000
        self.bin = Path(f"/usr/lib/postgresql/{major}/bin")

    def url(self, name: str) -> str:
        auth = f"{self.user}:{self.password}" if self.password else self.user
        return f"postgres://{auth}@{self.host}:{self.port}/{name}"

    def back_up(self, backup: Path) -> Path:
        dump = backup / "promo.dump"
        run(
            self.bin / "pg_dump",
            *("--format=custom", "--no-owner", "--no-acl", f"--file={dump}"),
            self.url(self.source),
        )
        return dump

    def restore(self, dump: Path, folder: Path) -> str:
        run(
            self.bin / "createdb",
            *("-h", self.host, "-p", self.port, "-U", self.user),
            self.restored,
        )
        restored = self.url(self.restored)
        run(
            self.bin / "pg_restore",
            *("--no-owner", "--no-acl", "--exit-on-error", f"--dbname={restored}"),
            dump,
        )
        return restored

    def drop_restored(self) -> None:
        import psycopg

        with psycopg.connect(
            self.url("postgres").replace("postgres://", "postgresql://"), autocommit=True
        ) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.restored}" WITH (FORCE)')


class SQLite:
    """docs/operations.md's commands for the one-machine setup: SQLite's online backup (the
    database is in WAL mode, so a plain copy of a live file is not safe)."""

    def back_up(self, backup: Path) -> Path:
        copy = backup / "db.sqlite3"
        run("sqlite3", connection.settings_dict["NAME"], f".backup '{copy}'")
        return copy

    def restore(self, copy: Path, folder: Path) -> str:
        var = folder / "restored-var"
        var.mkdir()
        shutil.copy(copy, var / "db.sqlite3")
        return f"sqlite:///{var / 'db.sqlite3'}"

    def drop_restored(self) -> None:
        pass  # in the test's own folder


@pytest.fixture
def database():
    """The database's backup and restore commands, PostgreSQL's or SQLite's."""
    if connection.vendor == "postgresql":
        database = PostgreSQL()
    elif shutil.which("sqlite3"):
        database = SQLite()
    else:
        pytest.skip(
            "the restore drill on SQLite needs the sqlite3 program (apt-get install sqlite3)"
        )
    yield database
    database.drop_restored()


def make_studio(sample_catalog, broker, worker) -> list[GeneratedAsset]:
    """The sample catalog, indexed; the four new products' images made by the offline
    providers, two of them approved and published."""
    sample_catalog_import(sample_catalog)
    index_rebuild()
    boss = User.objects.create_superuser("boss", "boss@example.com", "drill-pass-1")
    batch = batch_create(
        user=boss,
        request=BatchRequest(
            list(Product.objects.awaiting_promos().order_by("sku")),
            [ChannelPreset.objects.get(name="Marketplace main image")],
            "0.5K",
            2,
        ),
        estimated_cost=Decimal("0"),
    )
    broker.join("generation")
    worker.join()
    assets = list(batch.assets.order_by("pk"))
    assert {a.status for a in assets} == {AssetStatus.IN_REVIEW}, [a.last_error for a in assets]
    return [
        asset_publish(asset=asset_approve(asset=asset, user=boss), user=boss)
        for asset in assets[:2]
    ]


def test_backup_restore_into_a_fresh_stack_rebuild_milvus_and_published_urls_answer(
    database,
    milvus,
    broker,
    worker,
    sample_catalog,
    settings,
    tmp_path,
    capsys,
):
    settings.PUBLISH_OFFLINE_PREVIEWS = True
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(step: str) -> None:
        nonlocal clock
        timings[step] = time.monotonic() - clock
        clock = time.monotonic()

    published = make_studio(sample_catalog, broker, worker)
    before = {}
    for asset in published:
        answer = Client().get(published_url(asset))
        assert answer.status_code == 200
        before[published_url(asset)] = hashlib.sha256(b"".join(answer.streaming_content))
    products = Product.objects.count()
    lap("the studio made (44 products indexed, 4 images, 2 published)")

    # --- docs/operations.md, "Back up": the database first, then the files -----------------
    backup = tmp_path / "backup"
    backup.mkdir()
    dump = database.back_up(backup)
    run("tar", "-C", settings.MEDIA_ROOT, "-czf", backup / "promo-media.tar.gz", ".")
    lap("backup: the database and a tar of the files")

    # --- "Restore", steps 1-2: a new database, the files in a new folder -------------------
    restored_url = database.restore(dump, tmp_path)
    media = tmp_path / "restored-media"
    media.mkdir()
    run("tar", "-C", media, "-xzf", backup / "promo-media.tar.gz")
    lap("restore: the database, the files untarred")

    # --- steps 3-4: an empty Redis and an empty Milvus, then the app on them ----------------
    ports = {name: free_port() for name in ("redis", "web")}
    env = stack_env(
        tmp_path,
        restored_url,
        ports["redis"],
        DJANGO_STATIC_MANIFEST="0",
        DJANGO_MEDIA_ROOT=str(media),
        PUBLISH_OFFLINE_PREVIEWS="1",
    )
    stack = Stack(tmp_path, env)
    milvus_server = MilvusLiteServer(tmp_path / "restored-milvus")
    try:
        stack.start(
            "redis",
            [
                str(BIN / "redis-server"),
                *("--bind", "127.0.0.1", "--port", str(ports["redis"])),
                *("--dir", str(tmp_path), "--save", ""),
            ],
            ports["redis"],
        )
        milvus_server.start()
        env["MILVUS_URI"] = milvus_server.uri
        stack.manage("migrate", "--noinput")
        lap("fresh Redis and Milvus started, migrate")

        # --- step 5: Milvus filled from the database --------------------------------------
        rebuilt = stack.manage("reindex", "--verbosity", "0")
        assert f"Indexed {products} products" in rebuilt
        lap("rebuild: manage.py reindex")

        # --- "Verify" ----------------------------------------------------------------------
        assert stack.manage("check_index").split() == [
            *("missing:", "0", "stale:", "0", "orphaned:", "0")
        ]
        table = stack.manage("similar_bestsellers", "NEW003")
        assert "SKU003" in table  # a look-alike search answers from the new index
        stack.start(
            "web",
            [
                str(BIN / "gunicorn"),
                "config.wsgi",
                *("--bind", f"127.0.0.1:{ports['web']}", "--workers", "1", "--threads", "2"),
            ],
            ports["web"],
        )
        for path, digest in before.items():
            answer = requests.get(f"http://127.0.0.1:{ports['web']}{path}", timeout=30)
            assert answer.status_code == 200, path
            assert hashlib.sha256(answer.content).hexdigest() == digest.hexdigest(), path
        lap("verify: check_index, a search, the published URLs")
    finally:
        stack.stop()
        milvus_server.stop()

    with capsys.disabled():  # the figures for docs/operations.md (shown with pytest -s)
        print(
            "\nrestore drill: "
            + "; ".join(f"{step} {seconds:.1f} s" for step, seconds in timings.items())
            + f"; database copy {dump.stat().st_size / 1024:.0f} KiB, files "
            f"{(backup / 'promo-media.tar.gz').stat().st_size / 1024:.0f} KiB"
        )

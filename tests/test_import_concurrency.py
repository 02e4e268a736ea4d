"""Writes never wait on a long import (issue 23, item 2).

A large import is written by a worker thread, a chunk of rows per transaction, while other
threads do what people and the periodic jobs do at the same time: a login (the session and
last_login), an approval at the review desk, and the spending reconcile that settles
reservations. Each must succeed within a few seconds, while the import is still writing.

The import is started both ways people start one: confirmed in the admin (written by the
worker's job) and `manage.py import_catalog` (the same job in the shell's own process, which
until issue 23 wrote the whole file in one transaction: a login waited 10.7 s for 12,000 rows
on SQLite, and failed "database is locked" past the 20 s busy timeout for 80,000). A shell
import killed half way stays listed as writing and `import_catalog --resume` finishes it.

Real parts: the admin's import pages and the import job, the admin's login page, the review
service, the reconcile against the OpenRouter-protocol server, a shell process killed with
SIGKILL, and the test database (a file for SQLite; run with DATABASE_URL for PostgreSQL),
shared by the threads through a transactional test.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.core.files import File
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.importer import ZipImages
from catalog.importer.jobs import (
    import_job_in_shell,
    import_job_interrupted,
    import_job_run,
    job_preview,
    shell_worker,
)
from catalog.models import CatalogImport, Product
from core.reconcile import spend_reconcile
from generation.models import AssetStatus
from generation.review import asset_approve
from tests.test_admin import post_import, staff_user
from tests.test_import_jobs import IMPORT_PERMS, big_upload
from tests.test_reliability import ROOT, _database_url
from tests.test_review import make_asset, user_in

State = CatalogImport.State
ROWS = 12_000  # long enough that the write lasts several seconds on either database
WAIT_LIMIT = 5.0  # seconds a short write may take while the import runs


class Timed(threading.Thread):
    """Run one write in a thread of its own (its own database connection); record how long it
    took, whether it failed, and the import's state the moment it ended."""

    def __init__(self, name: str, work, job_id: int):
        super().__init__(name=name)
        self.work, self.job_id = work, job_id
        self.seconds: float | None = None
        self.error: BaseException | None = None
        self.import_state = ""

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.work()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.seconds = time.monotonic() - started
            self.import_state = CatalogImport.objects.get(pk=self.job_id).state
            connection.close()


def log_in() -> None:
    client = Client()
    page = client.post(
        reverse("admin:login"),
        {"username": "desk", "password": "pw", "next": "/admin/"},
    )
    assert page.status_code == 302, page.status_code
    assert client.get("/admin/").status_code == 200


def in_thread(work) -> threading.Thread:
    def run() -> None:
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="import-writer")
    thread.start()
    return thread


def start_in_the_admin(client, csv_data: bytes, zip_data: bytes, tmp_path) -> threading.Thread:
    """Upload and check through the admin, confirm, and write as the worker does."""
    page = post_import(client, csv_data, zip_data)
    job = page.context["job"]
    assert job.state == State.CHECKED and job.to_create == ROWS
    client.post(page.wsgi_request.path, {"action": "confirm"})
    return in_thread(lambda: import_job_run(job_id=job.pk, worker="writer"))


def start_in_the_shell(client, csv_data: bytes, zip_data: bytes, tmp_path) -> threading.Thread:
    """`manage.py import_catalog`: its check and its write in the shell's own process."""
    (tmp_path / "big.csv").write_bytes(csv_data)
    (tmp_path / "big.zip").write_bytes(zip_data)
    return in_thread(
        lambda: call_command(
            "import_catalog",
            str(tmp_path / "big.csv"),
            images=str(tmp_path / "big.zip"),
            verbosity=0,
        )
    )


def wait_until_writing(timeout: float = 120) -> CatalogImport:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = CatalogImport.objects.filter(rows_written__gt=0).first()
        if job is not None:
            return job
        time.sleep(0.01)
    raise AssertionError(f"the import did not start writing: {list(CatalogImport.objects.all())}")


@pytest.mark.parametrize("start", [start_in_the_admin, start_in_the_shell], ids=["admin", "shell"])
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_logins_approvals_and_the_reconcile_go_on_while_a_large_import_writes(
    start, client, settings, openrouter, tmp_path
):
    settings.CATALOG_IMPORT_POOL_MIN_ROWS = 10**9  # no photo pool to start in a test
    importer = staff_user("importer", *IMPORT_PERMS)
    client.force_login(importer)
    reviewer = user_in("Reviewer", "desk")
    asset = make_asset(sku="DESK-1")
    writer = start(client, *big_upload(ROWS), tmp_path)
    job = wait_until_writing()
    started = time.monotonic()
    writes = [
        Timed("login", log_in, job.pk),
        Timed("approve", lambda: asset_approve(asset=asset, user=reviewer), job.pk),
        Timed("reconcile", spend_reconcile, job.pk),
    ]
    for thread in writes:
        thread.start()
    for thread in writes:
        thread.join(timeout=120)
    writer.join(timeout=600)
    took = time.monotonic() - started

    figures = {thread.name: round(thread.seconds, 3) for thread in writes}
    print(
        f"\nimport of {ROWS} rows: writes went on for {took:.1f} s more; concurrent writes (s): {figures}"
    )
    for thread in writes:
        assert thread.error is None, f"{thread.name}: {thread.error!r}"
        assert thread.seconds < WAIT_LIMIT, figures
        assert thread.import_state == State.WRITING, f"{thread.name} ended after the import"
    job.refresh_from_db()
    assert job.state == State.DONE, job.note
    assert Product.objects.count() == ROWS + 1  # the desk's own product too
    asset.refresh_from_db()
    assert asset.status == AssetStatus.APPROVED


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_shell_import_killed_half_way_is_listed_as_writing_and_finished_with_resume(
    settings, tmp_path, capsys
):
    rows = 1500
    csv_data, zip_data = big_upload(rows)
    (tmp_path / "big.csv").write_bytes(csv_data)
    (tmp_path / "big.zip").write_bytes(zip_data)
    shell = subprocess.Popen(
        [sys.executable, "manage.py", "import_catalog", str(tmp_path / "big.csv")]
        + ["--images", str(tmp_path / "big.zip"), "--verbosity", "0"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": _database_url(),
            "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "CATALOG_IMPORT_CHUNK_ROWS": "100",
            "CATALOG_IMPORT_POOL_MIN_ROWS": "1000000",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        job = wait_until_writing()
    finally:
        shell.send_signal(signal.SIGKILL)
        shell.wait()
    job.refresh_from_db()
    assert job.state == State.WRITING, shell.stderr.read().decode()[-2000:]
    assert 0 < job.rows_written < rows
    assert Product.objects.count() == job.rows_written  # each chunk with its checkpoint

    with pytest.raises(CommandError, match="try again"):  # the killed shell's lease still holds
        call_command("import_catalog", resume=job.pk, verbosity=0)
    CatalogImport.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    call_command("import_catalog", resume=job.pk, verbosity=0)

    assert f"{rows} created, 0 updated, 0 unchanged, 0 failed (import {job.pk})" in (
        capsys.readouterr().out
    )
    job.refresh_from_db()
    assert (job.state, job.rows_written, job.created) == (State.DONE, rows, rows)
    skus = list(Product.objects.values_list("sku", flat=True))
    assert len(skus) == len(set(skus)) == rows


def interrupt_after(rows: int):
    """A progress callback that raises KeyboardInterrupt (Ctrl-C) once it has heard `rows`."""
    heard = [0]

    def hear(n: int) -> None:
        heard[0] += n
        if heard[0] >= rows:
            raise KeyboardInterrupt

    return hear


def shell_import(tmp_path, rows: int, **callbacks):
    """`import_catalog`'s import of a generated catalog, its photos in a ZIP."""
    csv_data, zip_data = big_upload(rows)
    (tmp_path / "big.zip").write_bytes(zip_data)
    with open(tmp_path / "big.zip", "rb") as photos:
        return import_job_in_shell(
            csv_file=File(io.BytesIO(csv_data), name="big.csv"),
            images=ZipImages(photos),
            **callbacks,
        )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_ctrl_c_in_a_shell_import_cancels_its_check_or_leaves_its_write_to_resume(
    settings, tmp_path, capsys
):
    settings.CATALOG_IMPORT_CHUNK_ROWS = 100
    with pytest.raises(KeyboardInterrupt):
        shell_import(tmp_path, 300, checked=interrupt_after(150))
    stopped = import_job_interrupted(worker=shell_worker())
    assert (stopped.state, stopped.rows_written) == (State.CANCELLED, 0)
    assert Product.objects.count() == 0

    with pytest.raises(KeyboardInterrupt):
        shell_import(tmp_path, 300, written=interrupt_after(100))
    stopped = import_job_interrupted(worker=shell_worker())
    assert (stopped.state, stopped.rows_written) == (State.WRITING, 100)
    assert Product.objects.count() == 100
    call_command("import_catalog", resume=stopped.pk, verbosity=0)  # no lease to wait for
    stopped.refresh_from_db()
    assert (stopped.state, stopped.rows_written, Product.objects.count()) == (State.DONE, 300, 300)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_shell_import_killed_in_its_check_is_refused_by_the_worker_that_picks_it_up(
    settings, tmp_path
):
    with pytest.raises(KeyboardInterrupt):  # and the shell is gone: nobody cleans up
        shell_import(tmp_path, 50, checked=interrupt_after(10))
    job = CatalogImport.objects.get()
    assert job.state == State.CHECKING
    CatalogImport.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )

    import_job_run(job_id=job.pk, worker="worker")

    job.refresh_from_db()
    assert job.state == State.REFUSED
    [error] = job_preview(job)["errors"]
    assert error["column"] == "images"
    assert error["message"].endswith("run manage.py import_catalog again")
    assert Product.objects.count() == 0

"""Imports as jobs: uploaded through the admin, checked and written by a worker, resumed after a
kill, cancelled, followed, reported. Real parts: the admin views, the import service, a worker
process killed with SIGKILL in the middle of a write."""

from __future__ import annotations

import csv
import io
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.importer.jobs import (
    ImportBusy,
    import_job_run,
    imports_expire_unconfirmed,
    imports_requeue_stalled,
)
from catalog.models import CatalogImport, ImageEmbedding, Product
from tests.factories import make_product
from tests.test_admin import (
    HISTORICAL_HEADER,
    IMPORT,
    csv_bytes,
    historical_row,
    image_bytes,
    post_import,
    run_import_jobs,
    staff_user,
    zip_bytes,
)
from tests.test_reliability import ROOT, _database_url

State = CatalogImport.State
IMPORT_PERMS = ("catalog.view_product", "catalog.import_products")


@pytest.fixture
def importer(client, db):
    user = staff_user("importer", *IMPORT_PERMS)
    user.email = "importer@example.com"
    user.save()
    client.force_login(user)
    return client


def big_upload(rows: int, photos: int = 8) -> tuple[bytes, bytes]:
    """A historical catalog of `rows` rows naming a few photos (each read once)."""
    csv_data = csv_bytes(
        HISTORICAL_HEADER,
        [historical_row(f"SKU-{n:05d}", f"p{n % photos}.jpg") for n in range(rows)],
    )
    zip_data = zip_bytes({f"p{n}.jpg": image_bytes((n * 20, 40, 90)) for n in range(photos)})
    return csv_data, zip_data


def worker_process(job: CatalogImport, settings, name: str) -> subprocess.Popen:
    """A worker of its own, running the import's message, as `rundramatiq` would."""
    code = (
        "from catalog.importer.jobs import import_job_run; "
        f"import_job_run(job_id={job.pk}, worker={name!r})"
    )
    env = {
        **__import__("os").environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CATALOG_IMPORT_CHUNK_ROWS": str(settings.CATALOG_IMPORT_CHUNK_ROWS),
        "CATALOG_IMPORT_POOL_MIN_ROWS": "1000000",  # no embedding pool to start in a test
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def half_written_import(client, settings, rows: int = 1500) -> CatalogImport:
    """An import confirmed through the admin whose worker was killed with SIGKILL after some
    chunks had committed and before the last."""
    settings.CATALOG_IMPORT_CHUNK_ROWS = 100
    page = post_import(client, *big_upload(rows))
    job = page.context["job"]
    assert job.state == State.CHECKED and job.to_create == rows
    client.post(page.wsgi_request.path, {"action": "confirm"})

    worker = worker_process(job, settings, "doomed")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.poll() is None:
        job.refresh_from_db()
        if job.written_through_line > 0:
            break
        time.sleep(0.005)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    job.refresh_from_db()
    assert job.state == State.WRITING, worker.stderr.read().decode()[-2000:]
    assert 0 < job.rows_written < rows
    assert Product.objects.count() == job.rows_written  # each chunk with its checkpoint
    return job


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_in_the_middle_of_a_write_is_resumed_and_every_row_written_once(
    importer, settings
):
    rows = 1500
    job = half_written_import(importer, settings, rows)
    written_before = job.rows_written

    with pytest.raises(ImportBusy):  # the message comes back while the lease still holds
        import_job_run(job_id=job.pk, worker="second")
    CatalogImport.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    worker = worker_process(job, settings, "restarted")
    assert worker.wait(timeout=120) == 0, worker.stderr.read().decode()[-2000:]

    job.refresh_from_db()
    assert job.state == State.DONE, job.note
    assert (job.rows_written, job.created, job.updated, job.unchanged) == (rows, rows, 0, 0)
    assert job.written_through_line == rows + 1  # the last data line
    skus = list(Product.objects.values_list("sku", flat=True))
    assert len(skus) == len(set(skus)) == rows
    assert sorted(skus) == [f"SKU-{n:05d}" for n in range(rows)]
    page = importer.get(reverse("admin:catalog_catalogimport_change", args=[job.pk]))
    assert f"{rows} created, 0 updated, 0 unchanged, 0 failed" in page.content.decode()
    assert 0 < written_before < rows


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_running_import_can_be_stopped_and_what_it_wrote_stays(importer, settings):
    job = half_written_import(importer, settings)
    importer.post(
        reverse("admin:catalog_catalogimport_change", args=[job.pk]), {"action": "cancel"}
    )
    CatalogImport.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )

    import_job_run(job_id=job.pk, worker="w2")

    job.refresh_from_db()
    assert job.state == State.CANCELLED
    assert Product.objects.count() == job.rows_written == job.created
    assert f"the {job.rows_written} rows written before it stay" in job.note


@pytest.mark.django_db
def test_the_upload_request_only_stores_the_files_and_the_page_follows_the_check(
    importer, settings
):
    settings.CATALOG_IMPORT_INLINE_ROWS = 20  # a larger file waits for a worker
    csv_data, zip_data = big_upload(30)
    upload = {
        "csv_file": io.BytesIO(csv_data),
        "images_zip": io.BytesIO(zip_data),
        "kind": "",
    }
    upload["csv_file"].name, upload["images_zip"].name = "big.csv", "photos.zip"

    response = importer.post(IMPORT, upload)

    job = CatalogImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:catalog_catalogimport_change", args=[job.pk])
    assert job.state == State.QUEUED and job.rows_checked == 0  # nothing read in the request
    waiting = importer.get(response["Location"])
    assert "Waiting to be checked" in waiting.content.decode()
    assert 'id="import-progress"' in waiting.content.decode()
    listing = importer.get(reverse("admin:catalog_product_changelist")).content.decode()
    assert f"Import {job.pk} of big.csv is running" in listing

    run_import_jobs()

    progress = importer.get(reverse("admin:catalog_import_progress", args=[job.pk])).json()
    assert progress | {"seconds_left": None} == progress | {
        "state": "checked",
        "done": 30,
        "total": 30,
        "photos": 8,
        "errors": 0,
        "running": False,
        "seconds_left": None,
    }
    assert (
        "is running"
        not in importer.get(reverse("admin:catalog_product_changelist")).content.decode()
    )


@pytest.mark.django_db
def test_the_error_report_downloads_as_csv_with_every_error(importer):
    rows = [historical_row(f"SKU-{n}", "p0.jpg", price="=cmd()") for n in range(3)]
    page = post_import(
        importer, csv_bytes(HISTORICAL_HEADER, rows), zip_bytes({"p0.jpg": image_bytes()})
    )
    job = page.context["job"]
    assert job.state == State.REFUSED and job.errors == 3

    report = importer.get(reverse("admin:catalog_import_errors", args=[job.pk]))

    assert report["Content-Type"] == "text/csv"
    assert f'filename="import-{job.pk}-errors.csv"' in report["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert lines[0] == ["line", "column", "reason"]
    assert [(line, column) for line, column, _ in lines[1:]] == [
        ("2", "price"),
        ("3", "price"),
        ("4", "price"),
    ]
    assert all(reason.startswith("'") for _, _, reason in lines[1:])  # no formula runs


@pytest.mark.django_db
def test_the_requester_hears_when_a_long_import_is_done(importer, settings):
    settings.CATALOG_IMPORT_NOTIFY_SECONDS = 0  # every import counts as long
    page = post_import(importer, *big_upload(4))
    importer.post(page.wsgi_request.path, {"action": "confirm"})
    run_import_jobs()

    subjects = [message.subject for message in mail.outbox]
    assert subjects == [
        f"Import {page.context['job'].pk} (catalog.csv) is ready to confirm",
        f"Import {page.context['job'].pk} (catalog.csv) is imported",
    ]
    assert mail.outbox[-1].to == ["importer@example.com"]
    assert "4 created, 0 updated, 0 unchanged, 0 failed" in mail.outbox[-1].body


@pytest.mark.django_db
def test_a_stalled_import_is_sent_again_and_one_that_keeps_dying_fails(
    importer, broker, django_capture_on_commit_callbacks
):
    page = post_import(importer, *big_upload(4))
    job = page.context["job"]
    importer.post(page.wsgi_request.path, {"action": "confirm"})
    broker.flush_all()
    CatalogImport.objects.filter(pk=job.pk).update(
        claimed_by="dead", heartbeat_at=timezone.now() - timedelta(minutes=5)
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert imports_requeue_stalled() == 1
    assert broker.queues["imports"].qsize() == 1

    CatalogImport.objects.filter(pk=job.pk).update(attempts=5, claimed_by="")
    import_job_run(job_id=job.pk, worker="w")
    job.refresh_from_db()
    assert job.state == State.FAILED and "Gave up after 5 attempts" in job.note


@pytest.mark.django_db
def test_a_checked_import_nobody_confirms_expires_with_its_files(importer, settings):
    page = post_import(importer, *big_upload(4))
    job = page.context["job"]
    CatalogImport.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(days=2))

    assert imports_expire_unconfirmed() == 1

    job.refresh_from_db()
    assert job.state == State.CANCELLED and "Not confirmed within a day" in job.note
    assert not (settings.MEDIA_ROOT / "import-staging" / job.token).exists()


@pytest.mark.django_db
def test_the_write_reads_no_photo_again_the_check_stored_and_embedded_them(importer, settings):
    page = post_import(importer, *big_upload(6, photos=3))
    job = page.context["job"]
    (settings.MEDIA_ROOT / "import-staging" / job.token / "images.zip").unlink()  # gone

    importer.post(page.wsgi_request.path, {"action": "confirm"})
    run_import_jobs()

    job.refresh_from_db()
    assert job.state == State.DONE and job.created == 6
    assert Product.objects.exclude(image_sha256="").count() == 6
    assert ImageEmbedding.objects.count() == 3  # embedded once each, during the check


@pytest.mark.django_db
def test_a_small_file_is_checked_in_the_upload_request_and_its_preview_is_there_at_once(
    importer, settings
):
    settings.CATALOG_IMPORT_INLINE_ROWS = 5
    csv_data, zip_data = big_upload(5)
    upload = {"csv_file": io.BytesIO(csv_data), "images_zip": io.BytesIO(zip_data), "kind": ""}
    upload["csv_file"].name, upload["images_zip"].name = "small.csv", "photos.zip"

    page = importer.post(IMPORT, upload, follow=True)  # no worker ran

    assert page.context["job"].state == State.CHECKED
    assert "5 to create" in page.content.decode()
    assert 'id="catalog-import-confirm"' in page.content.decode()


@pytest.mark.django_db
def test_the_preview_shows_each_rows_photo_and_name_served_behind_the_login(importer):
    """Whoever confirms sees which photo goes with which row: a small lazy thumbnail with its
    file name, beside the row's SKU and name. The thumbnails are private media."""
    rows = [historical_row(f"SKU-{n}", f"photos/p{n}.jpg") for n in range(3)]
    csv_data = csv_bytes(
        [*HISTORICAL_HEADER, "name"],
        [
            [*row, name]
            for row, name in zip(rows, ["Red dress", "", "Blue <b>top</b>"], strict=True)
        ],
    )
    zip_data = zip_bytes({f"photos/p{n}.jpg": image_bytes((n * 80, 40, 90)) for n in range(3)})

    page = post_import(importer, csv_data, zip_data)

    assert page.context["job"].state == State.CHECKED
    html = page.content.decode()
    shown = page.context["preview"]["rows"]
    assert [(row["sku"], row["name"], row["photo"]) for row in shown] == [
        ("SKU-0", "Red dress", "photos/p0.jpg"),
        ("SKU-1", "", "photos/p1.jpg"),
        ("SKU-2", "Blue <b>top</b>", "photos/p2.jpg"),
    ]
    for row in shown:
        url = row["thumbnail_url"]
        assert url.startswith("/media/products/thumbs/")
        tag = html[html.index(f'<img src="{url}"') :].split(">", 1)[0]
        assert f'alt="Photo of line {row["line"]}, {row["sku"]}: {row["photo"]}"' in tag
        assert 'loading="lazy"' in tag
        assert importer.get(url)["Content-Type"] == "image/jpeg"
        assert Client().get(url).status_code == 404  # private: only for a logged-in user
    assert "Blue &lt;b&gt;top&lt;/b&gt;" in html and "<b>top</b>" not in html


@pytest.mark.django_db
def test_a_refused_preview_shows_no_thumbnails_of_the_photos_it_did_not_keep(importer):
    rows = [historical_row("SKU-0", "p0.jpg"), historical_row("SKU-1", "p0.jpg", price="x")]
    page = post_import(
        importer, csv_bytes(HISTORICAL_HEADER, rows), zip_bytes({"p0.jpg": image_bytes()})
    )

    assert page.context["job"].state == State.REFUSED
    assert "/media/products/thumbs/" not in page.content.decode()


@pytest.mark.django_db
def test_a_sales_update_preview_has_no_photo_column(importer):
    make_product("SKU-0")
    page = post_import(importer, csv_bytes(["sku", "sales_count"], [["SKU-0", 5]]))

    assert page.context["job"].state == State.CHECKED
    assert page.context["preview"]["rows"][0]["sku"] == "SKU-0"
    assert "<th>Photo</th>" not in page.content.decode()

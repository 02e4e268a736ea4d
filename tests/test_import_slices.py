"""The import page's upload in slices: each slice its own request (as import-upload.js sends
them), the worker assembles the files and checks them, refusals are said, abandoned uploads
are swept. Real parts: the admin views through the test client, the storage, the import job."""

from __future__ import annotations

import io
import os
import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import CatalogImport, Product
from catalog.periodic import purge_import_staging
from tests.test_admin import (
    HISTORICAL_HEADER,
    IMPORT,
    csv_bytes,
    historical_row,
    image_bytes,
    run_import_jobs,
    staff_user,
    zip_bytes,
)
from tests.test_import_jobs import IMPORT_PERMS, big_upload

State = CatalogImport.State
START = reverse("admin:catalog_product_import_upload")
SLICE = 1024


@pytest.fixture
def slices(settings):
    settings.CATALOG_IMPORT_SLICE_BYTES = SLICE  # several slices from a small file
    return settings


@pytest.fixture
def importer(client, db, slices):
    client.force_login(staff_user("importer", *IMPORT_PERMS))
    return client


def start(client, files: dict[str, tuple[str, bytes]], kind: str = ""):
    """Declare the files, as the page's script does before the first slice."""
    fields = {"kind": kind}
    for field, (name, data) in files.items():
        fields[f"{field}_name"], fields[f"{field}_size"] = name, str(len(data))
    return client.post(START, fields)


def send_slice(client, started: dict, field: str, index: int, data: bytes):
    return client.post(
        f"{started['upload_url']}{field}/{index}/",
        data=data,
        content_type="application/octet-stream",
    )


def pieces(data: bytes, size: int = SLICE) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def upload_in_slices(client, files: dict[str, tuple[str, bytes]], kind: str = "") -> dict:
    """Declare, send every slice, finish: the page's script in three kinds of request."""
    started = start(client, files, kind)
    assert started.status_code == 201, started.content
    started = started.json()
    for field, (_, data) in files.items():
        for index, piece in enumerate(pieces(data, started["slice_bytes"])):
            answer = send_slice(client, started, field, index, piece)
            assert answer.status_code == 200, answer.content
            assert answer.json() == {"received": len(piece)}
    return started


def finish(client, started: dict):
    return client.post(started["finish_url"])


def staging(settings, token: str):
    return settings.MEDIA_ROOT / "import-staging" / token


def test_a_csv_and_zip_sent_in_slices_are_assembled_by_the_worker_and_imported_exactly(
    importer, settings
):
    settings.CATALOG_IMPORT_INLINE_ROWS = 5  # 40 rows: the worker checks them
    csv_data, zip_data = big_upload(40, photos=6)
    assert len(csv_data) > 2 * SLICE and len(zip_data) > 2 * SLICE

    started = upload_in_slices(
        importer, {"csv_file": ("spring.csv", csv_data), "images_zip": ("photos.zip", zip_data)}
    )
    folder = staging(settings, started["token"])
    assert len(list((folder / "slices" / "images_zip").iterdir())) == -(-len(zip_data) // SLICE)
    answer = finish(importer, started)

    job = CatalogImport.objects.get()
    assert answer.status_code == 200
    assert answer.json() == {
        "job": job.pk,
        "url": reverse("admin:catalog_catalogimport_change", args=[job.pk]),
    }
    assert job.state == State.QUEUED and job.csv_name == "spring.csv" and job.has_images
    assert not (folder / "catalog.csv").exists()  # nothing assembled in a request
    assert finish(importer, started).json()["job"] == job.pk  # asked again: the same import

    run_import_jobs()

    job.refresh_from_db()
    assert job.state == State.CHECKED, job.note
    assert (job.to_create, job.total_rows, job.photos) == (40, 40, 6)
    assert (folder / "catalog.csv").read_bytes() == csv_data
    assert (folder / "images.zip").read_bytes() == zip_data
    assert not (folder / "slices").exists() or not any((folder / "slices").rglob("0*"))
    assert not (folder / "upload.json").exists()

    importer.post(
        reverse("admin:catalog_catalogimport_change", args=[job.pk]), {"action": "confirm"}
    )
    run_import_jobs()

    job.refresh_from_db()
    assert job.state == State.DONE
    assert (job.created, job.updated, job.unchanged, job.failed) == (40, 0, 0, 0)
    assert sorted(Product.objects.values_list("sku", flat=True)) == [
        f"SKU-{n:05d}" for n in range(40)
    ]
    assert Product.objects.exclude(image_sha256="").count() == 40
    assert not folder.exists()


def test_a_small_upload_in_one_slice_is_checked_in_the_finish_request(importer, slices):
    slices.CATALOG_IMPORT_SLICE_BYTES = 64 * 1024
    csv_data, zip_data = big_upload(3, photos=2)
    started = upload_in_slices(
        importer, {"csv_file": ("small.csv", csv_data), "images_zip": ("p.zip", zip_data)}
    )

    page = importer.get(finish(importer, started).json()["url"])  # no worker ran

    assert page.context["job"].state == State.CHECKED
    assert "3 to create" in page.content.decode()


def test_a_sales_update_needs_no_zip(importer, db):
    Product.objects.create(sku="SKU-1", category="Dress", sales_count=1)
    csv_data = csv_bytes(["sku", "sales_count"], [["SKU-1", 2500]])
    started = upload_in_slices(importer, {"csv_file": ("sales.csv", csv_data)}, kind="sales")

    page = importer.get(finish(importer, started).json()["url"])

    assert page.context["job"].state == State.CHECKED and page.context["job"].to_update == 1


def test_a_file_that_is_not_a_zip_is_refused_on_the_import_page_and_nothing_imported(
    importer, settings
):
    settings.CATALOG_IMPORT_INLINE_ROWS = 0
    csv_data, _ = big_upload(4)
    not_a_zip = b"these are not the photos you are looking for\n" * 300
    started = upload_in_slices(
        importer, {"csv_file": ("c.csv", csv_data), "images_zip": ("photos.zip", not_a_zip)}
    )
    url = finish(importer, started).json()["url"]
    run_import_jobs()

    page = importer.get(url).content.decode()
    job = CatalogImport.objects.get()
    assert job.state == State.REFUSED
    assert "the images file is not a valid ZIP archive" in page  # the form's message
    assert "nothing imported" in page and Product.objects.count() == 0
    assert not staging(settings, started["token"]).exists()


def test_a_declared_size_over_the_fields_limit_is_refused_before_any_slice(importer, settings):
    settings.CATALOG_IMPORT_MAX_ZIP_BYTES = 10_000
    answer = importer.post(
        START,
        {
            "csv_file_name": "c.csv",
            "csv_file_size": "100",
            "images_zip_name": "huge.zip",
            "images_zip_size": "10001",
        },
    )

    assert answer.status_code == 413
    assert answer.json() == {
        "error": "huge.zip is larger than 10,000 bytes, the limit for this field; nothing was stored."
    }
    assert not (settings.MEDIA_ROOT / "import-staging").exists()


def test_a_slice_larger_than_its_place_is_refused_and_not_stored(importer, settings):
    csv_data, _ = big_upload(40)
    started = start(importer, {"csv_file": ("c.csv", csv_data)}).json()

    too_big = send_slice(importer, started, "csv_file", 0, csv_data[: SLICE + 1])
    past_the_end = send_slice(importer, started, "csv_file", 99, b"x")
    short = send_slice(importer, started, "csv_file", 0, csv_data[:10])

    assert too_big.status_code == 413
    assert (
        "Slice 0 of c.csv is 1,025 bytes; it may be 1,024 bytes at most" in too_big.json()["error"]
    )
    assert (
        past_the_end.status_code == 400 and "there is no slice 99" in past_the_end.json()["error"]
    )
    assert short.status_code == 400 and "it must be 1,024 bytes" in short.json()["error"]
    assert not (staging(settings, started["token"]) / "slices").exists()


def test_finishing_with_slices_missing_is_refused_and_says_which(importer):
    csv_data, zip_data = big_upload(40)
    started = start(
        importer, {"csv_file": ("c.csv", csv_data), "images_zip": ("p.zip", zip_data)}
    ).json()
    for index, piece in enumerate(pieces(csv_data)):
        if index != 1:
            send_slice(importer, started, "csv_file", index, piece)

    answer = finish(importer, started)

    assert answer.status_code == 400
    zip_slices = len(pieces(zip_data))
    assert answer.json()["error"] == (
        f"Slices have not arrived: 1 of c.csv (the first: slice 1), {zip_slices} of p.zip "
        f"(the first: slice 0). Send them, then finish."
    )
    assert not CatalogImport.objects.exists()


def test_a_slice_sent_again_replaces_the_first(importer, settings):
    settings.CATALOG_IMPORT_INLINE_ROWS = 0
    csv_data, zip_data = big_upload(40)
    started = upload_in_slices(
        importer, {"csv_file": ("c.csv", csv_data), "images_zip": ("p.zip", zip_data)}
    )
    again = send_slice(importer, started, "csv_file", 0, pieces(csv_data)[0])
    assert again.status_code == 200
    assert len(list((staging(settings, started["token"]) / "slices" / "csv_file").iterdir())) == (
        len(pieces(csv_data))
    )
    finish(importer, started)
    run_import_jobs()
    assert CatalogImport.objects.get().to_create == 40


def test_another_users_upload_is_refused(importer, client, django_user_model, settings):
    csv_data, _ = big_upload(40)
    started = start(importer, {"csv_file": ("c.csv", csv_data)}).json()
    importer.logout()
    client.force_login(staff_user("someone-else", *IMPORT_PERMS))

    stolen = send_slice(client, started, "csv_file", 0, pieces(csv_data)[0])
    finished = finish(client, started)

    assert stolen.status_code == 403 and finished.status_code == 403
    assert stolen.json() == {"error": "This upload belongs to someone else."}
    assert not (staging(settings, started["token"]) / "slices").exists()
    assert not CatalogImport.objects.exists()


def test_the_slice_requests_need_the_import_permission_and_a_post(client, db, slices):
    client.force_login(staff_user("viewer", "catalog.view_product"))
    assert client.post(START, {"csv_file_name": "c.csv", "csv_file_size": "10"}).status_code == 403
    client.force_login(staff_user("importer", *IMPORT_PERMS))
    assert client.get(START).status_code == 405
    client.logout()
    assert client.post(START, {}).status_code == 302  # to the login page


def test_a_slice_arriving_after_the_import_started_is_refused(importer, settings):
    settings.CATALOG_IMPORT_INLINE_ROWS = 0
    csv_data, zip_data = big_upload(40)
    files = {"csv_file": ("c.csv", csv_data), "images_zip": ("p.zip", zip_data)}
    started = upload_in_slices(importer, files)
    finish(importer, started)

    late = send_slice(importer, started, "csv_file", 0, pieces(csv_data)[0])

    assert late.status_code == 409


def test_an_abandoned_upload_is_swept_and_one_still_arriving_is_kept(importer, settings):
    csv_data, _ = big_upload(40)
    abandoned = start(importer, {"csv_file": ("old.csv", csv_data)}).json()
    send_slice(importer, abandoned, "csv_file", 0, pieces(csv_data)[0])
    arriving = start(importer, {"csv_file": ("new.csv", csv_data)}).json()
    send_slice(importer, arriving, "csv_file", 0, pieces(csv_data)[0])
    two_days_ago = time.time() - 2 * 86400
    for token in (abandoned["token"], arriving["token"]):
        for path in staging(settings, token).rglob("*"):
            os.utime(path, (two_days_ago, two_days_ago))
    send_slice(importer, arriving, "csv_file", 1, pieces(csv_data)[1])  # a slice just now

    purge_import_staging()  # the hourly sweep

    assert not staging(settings, abandoned["token"]).exists()
    assert staging(settings, arriving["token"]).exists()
    assert send_slice(importer, abandoned, "csv_file", 1, pieces(csv_data)[1]).status_code == 400


def test_the_import_page_loads_the_slicing_script_and_the_form_still_posts_without_it(
    importer, settings
):
    page = importer.get(IMPORT).content.decode()
    assert '<script src="/static/catalog/import-upload.js"></script>' in page
    assert f'data-upload-url="{START}"' in page

    rows = [historical_row("SKU-1", "p0.jpg")]
    upload = {"csv_file": _named(csv_bytes(HISTORICAL_HEADER, rows), "c.csv")}
    upload["images_zip"] = _named(zip_bytes({"p0.jpg": image_bytes()}), "p.zip")
    answer = importer.post(IMPORT, upload, follow=True)  # the fallback: one multipart POST
    assert answer.context["job"].state == State.CHECKED


def _named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def test_a_finished_upload_leaves_no_manifest_for_the_sweep_to_mistake(importer, settings):
    settings.CATALOG_IMPORT_INLINE_ROWS = 0
    csv_data, zip_data = big_upload(40)
    files = {"csv_file": ("c.csv", csv_data), "images_zip": ("p.zip", zip_data)}
    started = upload_in_slices(importer, files)
    finish(importer, started)
    job = CatalogImport.objects.get()
    old = timezone.now() - timedelta(days=2)
    CatalogImport.objects.filter(pk=job.pk).update(created_at=old)

    purge_import_staging()  # a queued import's files are kept, however old

    assert staging(settings, started["token"]).exists()
    run_import_jobs()
    job.refresh_from_db()
    assert job.state == State.CHECKED


def test_a_zip_over_the_limit_when_the_worker_assembles_it_is_refused_on_the_import_page(
    importer, settings
):
    settings.CATALOG_IMPORT_INLINE_ROWS = 0
    csv_data, zip_data = big_upload(40)
    started = upload_in_slices(
        importer, {"csv_file": ("c.csv", csv_data), "images_zip": ("photos.zip", zip_data)}
    )
    url = finish(importer, started).json()["url"]
    settings.CATALOG_IMPORT_MAX_ZIP_BYTES = 1000  # lowered while the import waited

    run_import_jobs()

    page = importer.get(url).content.decode()
    assert CatalogImport.objects.get().state == State.REFUSED
    assert "photos.zip is larger than 1,000 bytes, the limit for this field" in page
    assert "nothing imported" in page and Product.objects.count() == 0

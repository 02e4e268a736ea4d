"""The import's answers to the bad-input probe of issue 23: a price of 1e30, numbers written in
other digits or with separators, the same import confirmed three times at once, and a preview
of a file whose every row is bad.

Real parts: the admin's import pages and the import job, `manage.py import_catalog`, the stub
broker, and (for the confirmations) threads with their own database connections on a
transactional test, so they meet in the database as three web requests would.
"""

from __future__ import annotations

import threading

import pytest
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from catalog.importer import DirectoryImages, catalog_import
from catalog.importer.cleaning import SHOWN_CHARS
from catalog.importer.formats import KEPT_ERRORS, MAX_ERROR_CHARS, RowError, RowErrors
from catalog.importer.jobs import PREVIEW_ERRORS, import_job_run
from catalog.models import CatalogImport, Product
from tests.factories import HISTORICAL_HEADER, csv_bytes, historical_row, write_images
from tests.test_admin import post_import, run_import_jobs, staff_user
from tests.test_import_jobs import IMPORT_PERMS, big_upload

State = CatalogImport.State


@pytest.fixture
def images(tmp_path):
    return write_images(tmp_path / "images", ["SKU001.jpg"])


def checked(images, **cells):
    """The errors of a dry run of one historical row with these cells."""
    row = historical_row(price=cells.get("price", "49.90"), sales=cells.get("sales_count", "2000"))
    result = catalog_import(
        csv_data=csv_bytes(HISTORICAL_HEADER, [row]),
        images=DirectoryImages(images),
        dry_run=True,
    )
    return result


# --- a price of 1e30 ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_price_of_1e30_is_a_row_error_naming_line_column_and_reason_in_the_admin(client):
    client.force_login(staff_user("importer", *IMPORT_PERMS))
    csv_data, zip_data = big_upload(3)
    rows = csv_data.decode().splitlines()
    rows[2] = rows[2].rsplit(",", 1)[0] + ",1e30"
    rows[3] = rows[3].rsplit(",", 1)[0] + "," + "1" + "0" * 30

    page = post_import(client, ("\n".join(rows) + "\n").encode(), zip_data)

    assert page.status_code == 200
    assert page.context["job"].state == State.REFUSED
    errors = [(e["line"], e["column"], e["message"]) for e in page.context["preview"]["errors"]]
    assert errors == [
        (
            3,
            "price",
            "'1e30' is not a number; expected a price such as 49.90 "
            "(write it in full, without an exponent)",
        ),
        (4, "price", f"'1{'0' * 30}' is too large; a price must be below 100,000,000"),
    ]
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_import_catalog_dry_run_reports_a_price_of_1e30_without_a_traceback(
    images, tmp_path, capsys
):
    csv_path = tmp_path / "huge.csv"
    csv_path.write_bytes(csv_bytes(HISTORICAL_HEADER, [historical_row(price="1e30")]))

    with pytest.raises(CommandError, match="1 error"):
        call_command("import_catalog", str(csv_path), "--images", str(images), "--dry-run")

    err = capsys.readouterr().err
    assert "huge.csv: line 2, column 'price': '1e30' is not a number" in err
    assert "Traceback" not in err


# --- the digits 0-9 only -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("sales_count", "1_000", "without thousands separators"),
        ("sales_count", "1,000", "without thousands separators"),
        ("sales_count", "1\u00a0000", "without thousands separators"),
        ("sales_count", "\u0661\u0660\u0660\u0660", "digits other than 0-9"),  # Arabic-Indic
        ("sales_count", "\uff11\uff10\uff10", "digits other than 0-9"),  # full width
        ("sales_count", "\u00b2", "digits other than 0-9"),  # superscript two
        ("sales_count", "1e3", "without an exponent"),
        ("sales_count", "12.0", "not a whole number"),
        ("sales_count", "9" * 5000, "too large"),
        ("price", "1_000", "without thousands separators"),
        ("price", "\u0664\u0669.\u0669\u0660", "digits other than 0-9"),
        ("price", "4.99e1", "without an exponent"),
        ("price", "nan", "not a number"),
        ("price", "Infinity", "not a number"),
        ("price", "-inf", "not a number"),
        ("price", "0x10", "not a number"),
        ("price", "1E+30", "without an exponent"),
        ("price", "100000000", "too large"),
        ("price", "9" * 5000, "too large"),
    ],
)
def test_numeric_cells_take_the_digits_0_to_9_only(images, column, value, reason):
    result = checked(images, **{column: value})

    [error] = result.errors
    assert (error.line, error.column) == (2, column)
    assert reason in error.message
    assert len(error.message) < 200  # a 5,000-digit cell is quoted short


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("cells", "field", "value"),
    [
        ({"sales_count": "+5"}, "sales_count", 5),
        ({"sales_count": "007"}, "sales_count", 7),
        ({"sales_count": " 2147483647 "}, "sales_count", 2_147_483_647),
        ({"price": "49.9"}, "price", "49.90"),
        ({"price": ".5"}, "price", "0.50"),
        ({"price": "5."}, "price", "5.00"),
        ({"price": "-0"}, "price", "0.00"),
        ({"price": "99999999.99"}, "price", "99999999.99"),
    ],
)
def test_plain_numbers_in_ascii_digits_are_read_as_before(images, cells, field, value):
    result = checked(images, **cells)
    assert result.ok, [str(e) for e in result.errors]
    catalog_import(
        csv_data=csv_bytes(
            HISTORICAL_HEADER,
            [historical_row(price=cells.get("price", "1"), sales=cells.get("sales_count", "1"))],
        ),
        images=DirectoryImages(images),
    )
    assert str(getattr(Product.objects.get(), field)) == str(value)


def test_an_error_quoting_a_huge_cell_stays_short():
    from catalog.importer.cleaning import clean_price, shown

    assert len(shown("x" * 10_000)) < SHOWN_CHARS + 30
    with pytest.raises(ValueError, match="10,000 characters"):
        clean_price("x" * 10_000)
    assert len(RowError(2, "sku", "y" * 10_000).message) == MAX_ERROR_CHARS


# --- the same import confirmed three times at once ----------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_import_confirmed_three_times_at_once_is_written_once(client, broker):
    user = staff_user("importer", *IMPORT_PERMS)
    client.force_login(user)
    rows = 300
    page = post_import(client, *big_upload(rows))
    job = page.context["job"]
    assert job.state == State.CHECKED
    broker.flush_all()
    gate = threading.Barrier(3)
    answers: list = [None] * 3

    def confirm(n: int) -> None:
        browser = Client()
        browser.force_login(user)
        try:
            gate.wait()
            answers[n] = browser.post(page.wsgi_request.path, {"action": "confirm"})
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [answer.status_code for answer in answers] == [302, 302, 302]
    heard = sorted(
        str(message) for answer in answers for message in get_messages(answer.wsgi_request)
    )
    assert heard == [
        f"Import {job.pk} is not waiting for a confirmation any more: it is already "
        "confirmed, and is written once.",
        f"Import {job.pk} is not waiting for a confirmation any more: it is already "
        "confirmed, and is written once.",
        f"Import {job.pk} is queued to be written.",
    ]
    assert len(broker.queues["imports"].queue) == 1  # one message: one write
    run_import_jobs()
    import_job_run(job_id=job.pk, worker="late")  # a late duplicate is a no-op
    job.refresh_from_db()
    assert (job.state, job.created, job.rows_written, job.attempts) == (State.DONE, rows, rows, 2)
    assert Product.objects.count() == rows


# --- a preview of 200,000 bad rows ----------------------------------------------------------


@pytest.mark.django_db
def test_a_preview_of_many_bad_rows_shows_the_first_errors_and_offers_them_all_as_csv(client):
    client.force_login(staff_user("importer", *IMPORT_PERMS))
    rows = 5_000
    long_cell = "many" * 250  # 1 KB a cell: quoted short
    data = csv_bytes(["sku", "sales_count"], [[f"S{n}", long_cell] for n in range(rows)])

    page = post_import(client, data, kind="sales")

    html = page.content.decode()
    assert page.context["job"].state == State.REFUSED
    assert len(page.context["preview"]["errors"]) == PREVIEW_ERRORS
    assert f"{rows} errors found" in html
    assert f"The first {PREVIEW_ERRORS} are shown, and {rows - PREVIEW_ERRORS} more are in" in html
    assert 'id="import-more-errors"' in html
    assert len(page.content) < 120_000, len(page.content)
    report = client.get(f"{page.wsgi_request.path.rsplit('/change/', 1)[0]}/errors.csv")
    lines = b"".join(report.streaming_content).decode().splitlines()
    assert len(lines) == rows + 1  # the header and every error
    assert lines[-1].startswith(f"{rows + 1},sales_count,\"'manymany")
    assert len(lines[-1]) < 200


@pytest.mark.django_db
def test_an_import_keeps_its_first_errors_and_counts_the_rest(client, capsys, tmp_path):
    client.force_login(staff_user("importer", *IMPORT_PERMS))
    rows = KEPT_ERRORS + 2_000
    data = csv_bytes(["sku", "sales_count"], [[f"S{n}", "x"] for n in range(rows)])

    page = post_import(client, data, kind="sales")

    job = page.context["job"]
    assert (job.state, job.errors, job.failed) == (State.REFUSED, rows, rows)
    html = page.content.decode()
    assert f"{rows} errors found" in html
    assert f"The report lists the first {KEPT_ERRORS}; 2000 more were counted, not kept." in html
    report = client.get(f"{page.wsgi_request.path.rsplit('/change/', 1)[0]}/errors.csv")
    assert len(b"".join(report.streaming_content).splitlines()) == KEPT_ERRORS + 1

    (tmp_path / "bad.csv").write_bytes(data)
    with pytest.raises(CommandError, match=f"{rows} error"):
        call_command("import_catalog", str(tmp_path / "bad.csv"), "--kind", "sales")
    assert "bad.csv: and 2,000 more errors (counted, not listed)" in capsys.readouterr().err


def test_errors_of_one_row_count_as_one_failed_row():
    errors = RowErrors(keep=2)
    errors.extend([RowError(2, "sku", "a"), RowError(2, "price", "b"), RowError(3, "sku", "c")])
    errors.append(RowError(5, "price", "d"))

    assert list(errors) == [RowError(2, "sku", "a"), RowError(2, "price", "b")]
    assert (errors.total, errors.lines) == (4, 3)

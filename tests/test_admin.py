"""The catalog admin: product list and form, photo upload, and the CSV import flow.

Everything goes through the real admin views with the test client; images and ZIPs are built
in memory. MEDIA_ROOT and the import staging folder are per-test (see conftest.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from catalog.images import image_prepare
from catalog.importer.jobs import import_job_run
from catalog.models import CatalogImport, Product
from catalog.services import product_save

CHANGELIST = reverse("admin:catalog_product_changelist")
IMPORT = reverse("admin:catalog_product_import")

HISTORICAL_HEADER = [
    "product_id",
    "image_path",
    "category",
    "color",
    "style",
    "season",
    "sales_count",
    "description",
    "price",
]
CONTENT_ADDRESSED = re.compile(r"^products/([0-9a-f]{2})/([0-9a-f]{64})\.jpg$")


# --- builders ------------------------------------------------------------------------------


def image_bytes(color=(200, 30, 30), size=(64, 80), fmt="JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def csv_bytes(header: list[str], rows: list[list[object]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode()


def historical_row(
    sku,
    image_path,
    *,
    category="Dress",
    color="red",
    style="casual",
    season="Summer",
    sales_count=100,
    description="A light summer dress",
    price="49.90",
):
    return [sku, image_path, category, color, style, season, sales_count, description, price]


def upload(name: str, data: bytes, content_type: str = "application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def make_product(sku, *, color=(10, 120, 200), **fields) -> Product:
    """A stored product with a real re-encoded image and thumbnail."""
    defaults = {"category": "Dress", "lifecycle": Product.Lifecycle.HISTORICAL}
    product = Product(sku=sku, **{**defaults, **fields})
    return product_save(product=product, image=image_prepare(image_bytes(color)))


def staff_user(username="editor", *perms: str) -> User:
    user = User.objects.create_user(username=username, password="pw", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


EDIT_PERMS = ("catalog.view_product", "catalog.change_product", "catalog.add_product")
IMPORT_PERMS = ("catalog.view_product", "catalog.import_products")


@pytest.fixture
def editor_client(client, db):
    client.force_login(staff_user("editor", *EDIT_PERMS))
    return client


@pytest.fixture
def importer_client(client, db):
    client.force_login(staff_user("importer", *IMPORT_PERMS))
    return client


def change_url(product: Product) -> str:
    return reverse("admin:catalog_product_change", args=[product.pk])


def change_form_data(product: Product, **overrides) -> dict:
    data = {
        "sku": product.sku,
        "lifecycle": product.lifecycle,
        "category": product.category,
        "color": product.color,
        "style": product.style,
        "season": product.season,
        "description": product.description,
        "prompt_hint": product.prompt_hint,
        "price": "" if product.price is None else str(product.price),
        "sales_count": str(product.sales_count),
        "_save": "Save",
    }
    data.update(overrides)
    return data


def result_skus(response) -> list[str]:
    return [product.sku for product in response.context["cl"].result_list]


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def post_import(
    client,
    csv_data: bytes,
    zip_data: bytes | None = None,
    *,
    kind="",
    csv_name="catalog.csv",
    zip_name="images.zip",
):
    """Upload through the admin, let a worker check the files, and return the import's page
    (or the upload form again when the upload itself was refused)."""
    data = {"csv_file": upload(csv_name, csv_data, "text/csv"), "kind": kind}
    if zip_data is not None:
        data["images_zip"] = upload(zip_name, zip_data, "application/zip")
    response = client.post(IMPORT, data)
    if response.status_code != 302:
        return response
    run_import_jobs()
    return client.get(response["Location"])


def run_import_jobs() -> None:
    """What the worker does with the queued imports (their messages are on the stub broker)."""
    for job in CatalogImport.objects.filter(state__in=CatalogImport.RUNNING):
        import_job_run(job_id=job.pk, worker="test-worker")


def confirm(client, page, **extra):
    """Press "Confirm import" on the import's page, let the worker write, follow to the page."""
    response = client.post(page.wsgi_request.path, {"action": "confirm"}, **extra)
    run_import_jobs()
    return client.get(page.wsgi_request.path) if response.status_code == 302 else response


def preview_rows(page) -> list[tuple]:
    return [(row["line"], row["sku"], row["action"]) for row in page.context["preview"]["rows"]]


def preview_errors(page) -> list[tuple]:
    return [(e["line"], e["column"]) for e in page.context["preview"]["errors"]]


def staging_folders(settings) -> list[Path]:
    """The staged uploads, as folders of the (private, local) storage."""
    root = Path(settings.MEDIA_ROOT) / "import-staging"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def two_product_upload():
    csv_data = csv_bytes(
        HISTORICAL_HEADER,
        [
            historical_row("DR-001", "images/dr-001.jpg", sales_count=2000, price="59.00"),
            historical_row(
                "TS-002",
                "images/ts-002.png",
                category="T-shirt",
                sales_count=10,
                description="Plain cotton tee",
                price="12.50",
            ),
        ],
    )
    zip_data = zip_bytes(
        {
            "images/dr-001.jpg": image_bytes((200, 20, 20)),
            "images/ts-002.png": image_bytes((20, 200, 20), fmt="PNG"),
        }
    )
    return csv_data, zip_data


# --- changelist ----------------------------------------------------------------------------


@pytest.fixture
def catalog(db):
    return {
        "hit": make_product(
            "DR-100",
            color=(250, 0, 0),
            category="Dress",
            season="Summer",
            style="boho",
            sales_count=5000,
            description="Flowing maxi dress with floral print",
        ),
        "plain": make_product(
            "TS-200",
            color=(0, 250, 0),
            category="T-shirt",
            season="Winter",
            style="basic",
            sales_count=40,
            description="Plain cotton tee",
        ),
        "fresh": make_product(
            "JK-300",
            color=(0, 0, 250),
            category="Jacket",
            season="Autumn",
            style="street",
            sales_count=0,
            lifecycle=Product.Lifecycle.NEW,
            description="Cropped denim jacket",
        ),
    }


def test_changelist_shows_thumbnails_of_stored_renditions_and_bestseller_mark(
    editor_client, catalog
):
    hit = catalog["hit"]
    response = editor_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    assert hit.thumbnail.name.startswith("products/thumbs/")
    assert f'<img src="{hit.thumbnail.url}" alt="DR-100"' in html
    assert hit.image.url not in html  # the list never loads the full photo
    with default_storage.open(hit.thumbnail.name) as thumb:
        assert max(Image.open(thumb).size) <= 160
    # One bestseller (True icon) and two others (False icons) in the bestseller column.
    assert html.count('alt="True"') == 1
    assert html.count('alt="False"') == 2


def test_changelist_requires_view_permission(client, catalog):
    client.force_login(staff_user("nobody"))
    assert client.get(CHANGELIST).status_code == 403


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"category": "Dress"}, ["DR-100"]),
        ({"season": "Winter"}, ["TS-200"]),
        ({"style": "street"}, ["JK-300"]),
        ({"bestseller": "yes"}, ["DR-100"]),
        ({"bestseller": "no"}, ["JK-300", "TS-200"]),
        ({"lifecycle": "new"}, ["JK-300"]),
        ({"lifecycle": "historical"}, ["DR-100", "TS-200"]),
    ],
)
def test_changelist_filters_narrow_the_list(editor_client, catalog, query, expected):
    response = editor_client.get(CHANGELIST, query)
    assert response.status_code == 200
    assert result_skus(response) == expected


def test_bestseller_filter_uses_the_configured_threshold(editor_client, catalog, settings):
    settings.CATALOG_BESTSELLER_MIN_SALES = 10
    response = editor_client.get(CHANGELIST, {"bestseller": "yes"})
    assert result_skus(response) == ["DR-100", "TS-200"]
    assert "more than 10 sales" in response.content.decode()


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("TS-200", ["TS-200"]),
        ("jk-300", ["JK-300"]),
        ("floral maxi", ["DR-100"]),
        ("cotton", ["TS-200"]),
        ("nothing-matches", []),
    ],
)
def test_changelist_search_by_sku_and_description_words(editor_client, catalog, q, expected):
    response = editor_client.get(CHANGELIST, {"q": q})
    assert response.status_code == 200
    assert result_skus(response) == expected


def test_changelist_sorts_by_sales_count(editor_client, catalog):
    column = list_display_position("sales")
    ascending = editor_client.get(CHANGELIST, {"o": str(column)})
    descending = editor_client.get(CHANGELIST, {"o": f"-{column}"})
    assert result_skus(ascending) == ["JK-300", "TS-200", "DR-100"]
    assert result_skus(descending) == ["DR-100", "TS-200", "JK-300"]


def list_display_position(name: str) -> int:
    """The 1-based column number the admin's ?o= parameter uses for a list_display entry."""
    return admin.site._registry[Product].list_display.index(name) + 1


# --- change form ---------------------------------------------------------------------------


def test_change_form_shows_the_photo_at_the_top_linking_to_its_full_size(editor_client, db):
    product = make_product("DR-1")
    response = editor_client.get(change_url(product))

    assert response.status_code == 200
    html = response.content.decode()
    photo = html[html.index('id="product-photo"') : html.index('id="product_form"')]
    assert f'<a href="{product.image.url}" target="_blank"' in photo
    assert f'<img src="{product.image.url}" alt="DR-1, flat-lay photo">' in photo
    assert "64×80 px" in html
    assert product.image_sha256[:12] in html


def test_uploading_a_photo_reencodes_it_under_a_content_addressed_name(editor_client, db):
    product = make_product("DR-1")
    old_image = product.image.name
    # A PNG upload: the stored file must be the re-encoded JPEG, never these bytes.
    photo = image_bytes((1, 2, 3), size=(64, 80), fmt="PNG")

    response = editor_client.post(
        change_url(product),
        change_form_data(product, image=upload("new photo.png", photo, "image/png")),
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.image.name != old_image
    assert product.image.name == (f"products/{product.image_sha256[:2]}/{product.image_sha256}.jpg")
    stored = default_storage.open(product.image.name).read()
    assert stored != photo
    assert product.image_sha256 == hashlib.sha256(stored).hexdigest()
    assert (product.image_width, product.image_height) == (64, 80)
    assert (
        product.thumbnail.name
        == f"products/thumbs/{product.image_sha256[:2]}/{product.image_sha256}-160.jpg"
    )
    assert default_storage.exists(product.thumbnail.name)


def test_uploading_a_photo_stores_reencoded_image_and_thumbnail_under_its_hash(editor_client, db):
    """What does work today: the content-addressed file and thumbnail are written and the
    product's hash/size fields describe them (the image *name* is the bug above)."""
    product = make_product("DR-1")
    photo = image_bytes((1, 2, 3), fmt="PNG")
    expected = image_prepare(photo)

    response = editor_client.post(
        change_url(product), change_form_data(product, image=upload("new.png", photo, "image/png"))
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.image_sha256 == expected.sha256
    assert (product.image_width, product.image_height) == (64, 80)
    assert product.thumbnail.name == expected.thumbnail_name
    assert default_storage.exists(expected.storage_name)
    assert default_storage.open(expected.storage_name).read() == expected.content
    assert default_storage.exists(expected.thumbnail_name)


def test_uploading_a_non_image_is_rejected_and_changes_nothing(editor_client, db):
    product = make_product("DR-1", sales_count=7)
    before = Product.objects.values().get(pk=product.pk)
    files_before = sorted(p for p in Path(default_storage.location).rglob("*") if p.is_file())

    response = editor_client.post(
        change_url(product),
        change_form_data(
            product,
            sales_count="9",
            image=upload("photo.jpg", b"%PDF-1.4 definitely not a photo", "image/jpeg"),
        ),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "image" in errors
    assert "valid image" in " ".join(errors["image"])
    assert Product.objects.values().get(pk=product.pk) == before
    assert (
        sorted(p for p in Path(default_storage.location).rglob("*") if p.is_file()) == files_before
    )


def test_uploading_an_unsupported_image_format_is_rejected_by_the_photo_check(editor_client, db):
    """A GIF passes Django's own image check; the catalog's image_prepare refuses it."""
    product = make_product("DR-1")
    sha_before = product.image_sha256

    response = editor_client.post(
        change_url(product),
        change_form_data(product, image=upload("anim.gif", image_bytes(fmt="GIF"), "image/gif")),
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["image"] == [
        "This photo cannot be used: GIF images are not accepted; use JPEG, PNG or WebP."
    ]
    product.refresh_from_db()
    assert product.image_sha256 == sha_before


def test_uploading_a_too_large_photo_is_rejected_with_the_limit(editor_client, db, settings):
    product = make_product("DR-1")
    sha_before = product.image_sha256
    files_before = sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())
    photo = image_bytes((5, 5, 5))
    settings.CATALOG_IMAGE_MAX_BYTES = len(photo) - 1

    response = editor_client.post(
        change_url(product),
        change_form_data(product, image=upload("big.jpg", photo, "image/jpeg")),
        follow=True,
    )

    assert response.status_code == 200
    assert (
        f"Nothing was saved. big.jpg is larger than {len(photo) - 1:,} bytes"
        in response.content.decode()
    )
    product.refresh_from_db()
    assert product.image_sha256 == sha_before
    assert sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()) == files_before


def test_editing_sales_count_sets_sales_updated_at(editor_client, db):
    product = make_product("DR-1", sales_count=10)
    Product.objects.filter(pk=product.pk).update(sales_updated_at=None)

    response = editor_client.post(change_url(product), change_form_data(product, sales_count="11"))

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.sales_count == 11
    assert product.sales_updated_at is not None


def test_editing_other_fields_leaves_sales_updated_at_alone(editor_client, db):
    product = make_product("DR-1", sales_count=10)
    Product.objects.filter(pk=product.pk).update(sales_updated_at=None)

    response = editor_client.post(change_url(product), change_form_data(product, color="navy"))

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.color == "navy"
    assert product.sales_updated_at is None


# --- import page and permissions -------------------------------------------------------------


def test_import_page_renders_for_a_user_with_the_import_permission(importer_client):
    response = importer_client.get(IMPORT)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="catalog-import-form"' in html
    assert 'name="csv_file"' in html and 'name="images_zip"' in html


def test_import_page_is_forbidden_without_the_import_permission(client, db):
    client.force_login(staff_user("editor", *EDIT_PERMS))
    assert client.get(IMPORT).status_code == 403
    csv_data, zip_data = two_product_upload()
    assert post_import(client, csv_data, zip_data).status_code == 403
    assert Product.objects.count() == 0


def test_import_page_redirects_anonymous_users_to_login(client, db):
    response = client.get(IMPORT)
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_changelist_shows_import_link_only_with_the_permission(client, db):
    link = f'href="{IMPORT}"'
    client.force_login(staff_user("importer", *IMPORT_PERMS))
    assert link in client.get(CHANGELIST).content.decode()
    client.force_login(staff_user("editor", *EDIT_PERMS))
    assert link not in client.get(CHANGELIST).content.decode()


# --- import: preview, confirm ------------------------------------------------------------------


def test_import_preview_lists_rows_to_create_and_writes_nothing(importer_client, settings):
    csv_data, zip_data = two_product_upload()

    page = post_import(importer_client, csv_data, zip_data, csv_name="spring.csv")

    assert page.status_code == 200
    assert page.templates[0].name == "admin/catalog/product/import_job.html"
    job = page.context["job"]
    assert job.state == CatalogImport.State.CHECKED and (job.to_create, job.errors) == (2, 0)
    assert preview_rows(page) == [
        (2, "DR-001", "will be created"),
        (3, "TS-002", "will be created"),
    ]
    html = page.content.decode()
    assert html.count("will be created") == 2
    assert "spring.csv" in html and "Historical catalog" in html
    assert 'id="catalog-import-confirm"' in html
    assert Product.objects.count() == 0
    assert [f.name for f in staging_folders(settings)] == [job.token]
    # The check stored the photos (the write reads none again); no product uses them yet, and
    # cancelling the import removes them.
    media = Path(default_storage.location)

    def photos():
        return sorted(p.name for p in (media / "products").rglob("*") if p.is_file())

    assert len(photos()) == 4  # two photos and their thumbnails
    importer_client.post(page.wsgi_request.path, {"action": "cancel"})
    assert photos() == [] and staging_folders(settings) == []


def test_import_confirm_creates_products_with_images_and_removes_the_staged_files(
    importer_client, settings
):
    csv_data, zip_data = two_product_upload()
    page = post_import(importer_client, csv_data, zip_data)

    confirm(importer_client, page)

    dress, tee = Product.objects.order_by("sku")
    assert (dress.sku, dress.category, dress.sales_count, dress.price) == (
        "DR-001",
        "Dress",
        2000,
        Decimal("59.00"),
    )
    assert (tee.sku, tee.category, tee.description, tee.price) == (
        "TS-002",
        "T-shirt",
        "Plain cotton tee",
        Decimal("12.50"),
    )
    for product in (dress, tee):
        assert product.lifecycle == Product.Lifecycle.HISTORICAL
        assert CONTENT_ADDRESSED.match(product.image.name), product.image.name
        assert default_storage.exists(product.image.name)
        assert default_storage.exists(product.thumbnail.name)
        assert product.sales_updated_at is not None
        assert (product.image_width, product.image_height) == (64, 80)
    assert dress.is_bestseller and not tee.is_bestseller
    assert staging_folders(settings) == []


def test_the_finished_import_says_what_it_wrote_and_is_in_the_import_history(importer_client):
    csv_data, zip_data = two_product_upload()
    page = post_import(importer_client, csv_data, zip_data, csv_name="spring.csv")

    done = confirm(importer_client, page)

    assert done.context["job"].state == CatalogImport.State.DONE
    assert "2 created, 0 updated, 0 unchanged, 0 failed" in done.content.decode()
    history = importer_client.get(reverse("admin:catalog_catalogimport_changelist"))
    assert history.status_code == 200
    html = history.content.decode()
    assert "spring.csv" in html and "Imported" in html and "importer" in html


def test_confirming_the_same_import_twice_imports_nothing_more(importer_client):
    csv_data, zip_data = two_product_upload()
    page = post_import(importer_client, csv_data, zip_data)
    confirm(importer_client, page)
    assert Product.objects.count() == 2
    Product.objects.all().delete()

    again = importer_client.post(page.wsgi_request.path, {"action": "confirm"}, follow=True)
    run_import_jobs()

    assert "not waiting for a confirmation any more" in " ".join(messages_of(again))
    assert Product.objects.count() == 0


def test_a_zip_with_a_single_top_level_folder_works(importer_client):
    csv_data = csv_bytes(
        HISTORICAL_HEADER,
        [historical_row("DR-001", "dr-001.jpg"), historical_row("DR-002", "sub/dr-002.jpg")],
    )
    zip_data = zip_bytes(
        {
            "photos/": b"",
            "photos/dr-001.jpg": image_bytes((1, 1, 1)),
            "photos/sub/dr-002.jpg": image_bytes((2, 2, 2)),
        }
    )

    preview = post_import(importer_client, csv_data, zip_data)
    assert preview.context["job"].errors == 0, preview.context["preview"]["errors"]
    assert [row[2] for row in preview_rows(preview)] == ["will be created"] * 2

    confirm(importer_client, preview)
    assert list(Product.objects.values_list("sku", flat=True)) == ["DR-001", "DR-002"]
    assert all(default_storage.exists(p.image.name) for p in Product.objects.all())


def test_a_zip_made_by_macos_finder_works(importer_client):
    csv_data = csv_bytes(HISTORICAL_HEADER, [historical_row("DR-001", "dr-001.jpg")])
    zip_data = zip_bytes(
        {
            "photos/dr-001.jpg": image_bytes(),
            "__MACOSX/photos/._dr-001.jpg": b"\x00\x05\x16\x07resource fork",
        }
    )

    preview = post_import(importer_client, csv_data, zip_data)

    assert preview.context["job"].state == CatalogImport.State.CHECKED, preview.context["preview"]


def bad_price_and_missing_image_upload():
    csv_data = csv_bytes(
        HISTORICAL_HEADER,
        [
            historical_row("DR-001", "dr-001.jpg"),
            historical_row("DR-002", "dr-002.jpg", price="cheap"),
            historical_row("DR-003", "missing.jpg"),
        ],
    )
    zip_data = zip_bytes({"dr-001.jpg": image_bytes(), "dr-002.jpg": image_bytes((9, 9, 9))})
    return csv_data, zip_data


def test_import_preview_lists_row_errors_and_writes_nothing(importer_client, settings):
    response = post_import(importer_client, *bad_price_and_missing_image_upload())

    assert response.status_code == 200
    assert response.context["job"].state == CatalogImport.State.REFUSED
    assert preview_errors(response) == [(3, "price"), (4, "image_path")]
    html = response.content.decode()
    assert "2 errors found" in html
    assert (
        "<tr><td>3</td><td>price</td><td>&#x27;cheap&#x27; is not a number; "
        "expected a price such as 49.90</td></tr>"
    ) in html
    assert (
        "<tr><td>4</td><td>image_path</td><td>image path &#x27;missing.jpg&#x27; "
        "is not in the images ZIP</td></tr>"
    ) in html
    assert 'id="catalog-import-confirm"' not in html
    assert "Confirm import" not in html
    assert Product.objects.count() == 0


def test_an_upload_with_row_errors_writes_nothing_and_keeps_no_staged_files(
    importer_client, settings
):
    importer_client.raise_request_exception = False
    post_import(importer_client, *bad_price_and_missing_image_upload())

    assert Product.objects.count() == 0
    media = Path(default_storage.location)
    kept = sorted(p.name for p in media.rglob("*") if p.is_file())
    assert kept == ["errors.csv", "preview.json"]  # the import's report; no photo, no upload
    assert staging_folders(settings) == []


def test_a_catalog_csv_without_its_zip_asks_for_the_images(importer_client):
    csv_data, _ = two_product_upload()
    response = post_import(importer_client, csv_data)
    assert preview_errors(response) == [(1, "image_path")]
    assert "needs its images" in response.content.decode()
    assert Product.objects.count() == 0


def test_another_user_cannot_confirm_or_cancel_an_import(client, db, settings):
    csv_data, zip_data = two_product_upload()
    owner = staff_user("owner", *IMPORT_PERMS)
    client.force_login(owner)
    page = post_import(client, csv_data, zip_data)
    job = page.context["job"]

    client.force_login(staff_user("intruder", *IMPORT_PERMS))
    assert client.get(page.wsgi_request.path).status_code == 200  # may look
    assert 'id="catalog-import-confirm"' not in client.get(page.wsgi_request.path).content.decode()
    for action in ("confirm", "cancel"):
        assert client.post(page.wsgi_request.path, {"action": action}).status_code == 403
    run_import_jobs()

    job.refresh_from_db()
    assert job.state == CatalogImport.State.CHECKED and Product.objects.count() == 0
    assert [f.name for f in staging_folders(settings)] == [job.token]  # still the owner's


def test_an_import_page_of_an_unknown_import_is_a_404(importer_client):
    assert (
        importer_client.get(
            reverse("admin:catalog_catalogimport_change", args=[99999999])
        ).status_code
        == 404
    )


def test_an_oversized_csv_is_refused_while_it_arrives(importer_client, settings):
    settings.CATALOG_IMPORT_MAX_CSV_BYTES = 10
    csv_data, zip_data = two_product_upload()

    response = post_import(importer_client, csv_data, zip_data)

    assert response.status_code == 200
    assert "Nothing was stored. catalog.csv is larger than 10 bytes" in response.content.decode()
    assert staging_folders(settings) == []
    assert Product.objects.count() == 0


def test_an_oversized_zip_is_refused_while_it_arrives_and_nothing_is_stored(
    importer_client, settings
):
    csv_data, zip_data = two_product_upload()
    settings.CATALOG_IMPORT_MAX_ZIP_BYTES = len(zip_data) // 2

    response = post_import(importer_client, csv_data, zip_data)

    assert response.status_code == 200
    assert f"images.zip is larger than {len(zip_data) // 2:,} bytes" in response.content.decode()
    assert staging_folders(settings) == []
    assert not any(p.is_file() for p in Path(settings.MEDIA_ROOT).rglob("*"))
    assert Product.objects.count() == 0


def test_an_images_file_that_is_not_a_zip_gives_a_clear_error(importer_client, settings):
    csv_data, _ = two_product_upload()

    response = post_import(
        importer_client, csv_data, b"this is not a zip archive", zip_name="images.zip"
    )

    assert response.status_code == 200
    assert response.context["form"].errors["images_zip"] == [
        "the images file is not a valid ZIP archive"
    ]
    assert "the images file is not a valid ZIP archive" in response.content.decode()
    assert Product.objects.count() == 0
    assert staging_folders(settings) == []


def test_a_sales_update_imports_without_a_zip_and_changes_only_sales(importer_client):
    dress = make_product("DR-1", sales_count=10, price=Decimal("20.00"), color="red")
    tee = make_product("TS-2", sales_count=5, color="white")
    untouched = Product.objects.values().get(pk=tee.pk)
    Product.objects.filter(pk=dress.pk).update(sales_updated_at=None)
    before = Product.objects.values().get(pk=dress.pk)

    preview = post_import(
        importer_client, csv_bytes(["sku", "sales_count"], [["DR-1", 1234], ["TS-2", 5]])
    )
    assert preview_rows(preview) == [(2, "DR-1", "will be updated")]  # changes only
    job = preview.context["job"]
    assert (job.to_update, job.to_leave) == (1, 1)
    html = preview.content.decode()
    assert "sales_count: 10 → 1234" in html  # old → new in the preview
    assert Product.objects.get(pk=dress.pk).sales_count == 10

    confirm(importer_client, preview)

    after = Product.objects.values().get(pk=dress.pk)
    assert after["sales_count"] == 1234
    assert after["sales_updated_at"] is not None
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"sales_count", "sales_updated_at", "updated_at"}
    assert Product.objects.values().get(pk=tee.pk) == untouched


def test_a_sales_update_for_an_unknown_sku_is_an_error(importer_client):
    make_product("DR-1")
    response = post_import(importer_client, csv_bytes(["sku", "sales_count"], [["NOPE-9", 3]]))
    assert preview_errors(response) == [(2, "sku")]
    assert "no product with sku 'NOPE-9'" in response.content.decode().replace("&#x27;", "'")


def test_an_unknown_action_on_an_import_changes_nothing(importer_client):
    csv_data, zip_data = two_product_upload()
    page = post_import(importer_client, csv_data, zip_data)

    response = importer_client.post(page.wsgi_request.path, {"action": "bogus"})

    assert response.status_code == 302
    run_import_jobs()
    assert page.context["job"].__class__.objects.get().state == CatalogImport.State.CHECKED
    assert Product.objects.count() == 0


def test_changelist_counts_once_and_filters_list_indexed_columns(editor_client, catalog):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = editor_client.get("/admin/catalog/product/?season=summer")
    assert response.status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"]]
    assert len(counts) == 1  # the filtered page's count, not the whole table's as well
    # Each listed column leads an index (with the sku after it: a filtered page is read in order).
    leading = {index.fields[0] for index in Product._meta.indexes} | {
        field.name for field in Product._meta.fields if field.db_index or field.unique
    }
    assert {"category", "season", "style", "lifecycle"} <= leading


def test_a_long_product_list_is_counted_only_up_to_a_cap(editor_client, catalog, monkeypatch):
    from catalog.admin import CappedCountPaginator

    total = Product.objects.count()
    monkeypatch.setattr(CappedCountPaginator, "COUNT_CAP", total - 1)
    capped = editor_client.get("/admin/catalog/product/")
    assert (
        f"More than {total - 1:,} products: the filters narrow the list" in capped.content.decode()
    )
    narrowed = editor_client.get("/admin/catalog/product/?season=summer")
    summer = Product.objects.filter(season="summer").count()
    assert (
        "More than" not in narrowed.content.decode()
        and narrowed.context["cl"].result_count == summer
    )

"""Every admin page in Chromium, at 1400 × 900 and 1920 × 1080, the way people see them.

With the sample catalog imported and indexed, an import waiting for confirmation and a batch of
images (in review, approved and published, rejected), a superuser opens every registered
model's list, add and change page, and the custom pages (dashboard, review gallery, request
and estimate, import and its preview, index status), and the test asserts that:

- no list scrolls sideways: the page is no wider than the window, and the changelist's results
  table fits its box;
- axe-core finds no serious or critical violation on any page (the pages people use most in
  the dark theme too), but for two of Django's own widgets (DJANGO_OWN);
- the asset page shows the flat-lay, the references, the image, the QA verdict and the
  decision buttons in the first screen at 1400 × 900;
- a control focused from the keyboard shows it, and the gallery opens an image by keyboard;
- the Content-Security-Policy blocks nothing on any page (Chromium's console reports none).

Screenshots of every page at both sizes go to test-artifacts/pages/, and axe's findings of
every impact to test-artifacts/axe/; with REFRESH_SCREENSHOTS=1 the
README's screenshots in docs/screenshots/ are taken again (CI leaves the repository alone).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from catalog.importer import DirectoryImages, catalog_import
from catalog.importer.jobs import import_job_create
from catalog.indexing import index_rebuild
from catalog.models import CatalogImport, Product
from generation.models import AssetStatus, ChannelPreset, GeneratedAsset, GenerationBatch
from generation.review import asset_approve, asset_publish, asset_reject
from generation.services import BatchRequest, batch_create
from performance.models import ChannelDay
from tests.browser import ARTIFACTS, BROWSER_TEST, PASSWORD, Site, axe_report
from tests.test_review import make_asset

pytestmark = BROWSER_TEST

SIZES = [(1400, 900), (1920, 1080)]
# axe-core runs on every page at the first size (its rules do not depend on the window's
# width). These findings belong to Django's own widgets, not to this project's pages: each is
# (rule, a mark in the element's HTML, why it is left).
DJANGO_OWN = [
    (
        "aria-prohibited-attr",
        "search-label-icon",
        "the two-box selector (admin/js/SelectFilter2.js) puts aria-label on a plain span",
    ),
    ("label", 'class="vDateField', "the split date and time widget labels neither box"),
    ("label", 'class="vTimeField', "the split date and time widget labels neither box"),
]
# Checked again in the dark theme (the admin follows the browser's setting).
DARK_PAGES = [
    "dashboard",
    "catalog.product list",
    "gallery",
    "generation.generatedasset page",
    "performance panel",
]
# What a reviewer needs without scrolling on the asset page (ids given by its template).
FIRST_SCREEN = ["asset-flat-lay", "asset-references", "asset-image", "asset-qa", "review-decision"]
# The README's screenshots, refreshed only on demand (REFRESH_SCREENSHOTS=1).
DOCS_SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
README_SHOTS = {
    "dashboard": "00-dashboard",
    "catalog.product list": "02-product-list",
    "gallery": "05-review-gallery",
    "generation.generatedasset page": "06-asset-review",
}
# The README's screenshots of one part of a page: (file, the part's CSS selector).
README_PARTS = {"performance panel": ("performance-panel", "#asset-performance")}


@dataclass
class Studio:
    """The objects whose pages the test opens by name."""

    admin: User
    product: Product  # a new product with references and a published image
    asset: GeneratedAsset  # a staged image in review, with its QA verdict
    batch: GenerationBatch
    preview: CatalogImport  # checked, ready to confirm
    new_products: list[Product]
    performer: GeneratedAsset  # published, with channel figures and an earlier version's


@pytest.fixture
def studio(milvus, broker, worker, sample_catalog, settings) -> Studio:
    """The sample catalog, an import's preview, and eight images run by the offline
    providers: one approved and published, one rejected, the rest in review."""
    settings.PUBLISH_OFFLINE_PREVIEWS = True
    sample = sample_catalog
    admin_user = User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    assert catalog_import(
        csv_data=sample.products_csv.read_bytes(),
        images=DirectoryImages(sample.directory / "images"),
    ).ok
    # The new products' file checked before they exist: its preview has four to create.
    preview = import_job_create(
        user=admin_user,
        csv_file=SimpleUploadedFile("new_products.csv", sample.new_products_csv.read_bytes()),
        zip_file=SimpleUploadedFile("new_products.zip", sample.new_products_zip.read_bytes()),
        check_small_now=True,
    )
    assert preview.state == CatalogImport.State.CHECKED, preview.note
    assert catalog_import(
        csv_data=sample.new_products_csv.read_bytes(),
        images=DirectoryImages(sample.directory / "new_products"),
    ).ok
    index_rebuild()
    new_products = list(Product.objects.awaiting_promos().order_by("sku"))
    presets = ChannelPreset.objects.filter(
        name__in=["Marketplace main image", "Social post with tagline"]
    )
    batch = batch_create(
        user=admin_user,
        request=BatchRequest(new_products, list(presets), "0.5K", 2),
        estimated_cost=Decimal("0"),
    )
    broker.join("generation")
    worker.join()
    assets = batch.assets.order_by("pk")
    assert {a.status for a in assets} == {AssetStatus.IN_REVIEW}, [a.last_error for a in assets]
    published = asset_publish(
        asset=asset_approve(asset=assets[0], user=admin_user), user=admin_user
    )
    asset_reject(asset=assets[1], user=admin_user, reason="The neck label shows.")
    staged = assets.filter(
        preset__name="Social post with tagline", status=AssetStatus.IN_REVIEW
    ).first()
    return Studio(
        admin=admin_user,
        product=published.product,
        asset=staged,
        batch=batch,
        preview=preview,
        new_products=new_products,
        performer=channel_history(published, admin_user, keep=staged),
    )


def channel_history(published: GeneratedAsset, user: User, keep: GeneratedAsset) -> GeneratedAsset:
    """A second version of the published image, published in its place, and the days the
    channel reported for both (the first live for two weeks, then the second for three); and
    another product's image on the preset (not `keep`, left in review), for the averages. The
    second version is returned."""
    newer = asset_publish(
        asset=asset_approve(
            asset=make_asset(sku=published.product.sku, preset_name=published.preset.name),
            user=user,
        ),
        user=user,
    )
    neighbour = (
        GeneratedAsset.objects.filter(preset=published.preset, status=AssetStatus.IN_REVIEW)
        .exclude(product=published.product)
        .exclude(pk=keep.pk)[0]
    )
    neighbour = asset_publish(asset=asset_approve(asset=neighbour, user=user), user=user)
    today = timezone.localdate()
    days = [
        (published, range(35, 21, -1), 1150, 23, 1),  # 2.0 %
        (newer, range(21, 0, -1), 1200, 38, 2),  # 3.2 %
        (neighbour, range(21, 0, -1), 900, 21, 1),  # 2.3 %
    ]
    ChannelDay.objects.bulk_create(
        ChannelDay(
            asset=asset,
            preset=asset.preset,
            date=today - timedelta(days=ago),
            impressions=impressions + 37 * (ago % 5),
            clicks=clicks + ago % 4,
            orders=orders + ago % 2,
        )
        for asset, agos, impressions, clicks, orders in days
        for ago in agos
    )
    return newer


def admin_pages(studio: Studio) -> dict[str, str]:
    """Every admin page by name: each registered model's list, add page (where adding is
    allowed) and change page, then the custom pages."""
    request = RequestFactory().get("/admin/")
    request.user = studio.admin
    shown = {
        Product: studio.product,
        GeneratedAsset: studio.asset,
        GenerationBatch: studio.batch,
        CatalogImport: studio.preview,
    }
    pages = {"dashboard": reverse("admin:index")}
    for app_label in sorted({model._meta.app_label for model in admin.site._registry}):
        pages[f"{app_label} app"] = reverse("admin:app_list", args=[app_label])
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda m: m[0]._meta.label):
        name, url = (
            model._meta.label_lower,
            f"admin:{model._meta.app_label}_{model._meta.model_name}",
        )
        pages[f"{name} list"] = reverse(f"{url}_changelist")
        if model_admin.has_add_permission(request):
            pages[f"{name} add"] = reverse(f"{url}_add")
        obj = shown.get(model) or model._default_manager.order_by("pk").first()
        if obj is not None:
            pages[f"{name} page"] = reverse(f"{url}_change", args=[obj.pk])
    selected = urlencode([(ACTION_CHECKBOX_NAME, p.pk) for p in studio.new_products])
    return pages | {
        "gallery": reverse("admin:generation_generatedasset_gallery"),
        "request": reverse("admin:generation_generationbatch_request") + "?" + selected,
        "import": reverse("admin:catalog_product_import"),
        "index status": reverse("admin:catalog_product_index_status"),
        "performance panel": reverse(
            "admin:generation_generatedasset_change", args=[studio.performer.pk]
        ),
    }


# --- what is measured on a page ------------------------------------------------------------


def page_problem(site: Site) -> str | None:
    """Why the open page is not a working admin page (an error page, a login), if it is not."""
    found = site.driver.execute_script(
        "return [document.title, !!document.querySelector('#content'),"
        " !!document.querySelector('#login-form')]"
    )
    title, has_content, is_login = found
    if is_login or not has_content or "error" in title.lower() or "not found" in title.lower():
        return f"not an admin page: {title!r}"
    return None


def sideways_scroll(site: Site) -> str | None:
    """How the page, or a changelist's results, is wider than the window or its box."""
    page, window, table, box = site.driver.execute_script(
        "const r = document.querySelector('#changelist .results');"
        "return [document.documentElement.scrollWidth, window.innerWidth,"
        " r ? r.scrollWidth : 0, r ? r.clientWidth : 0];"
    )
    if page > window:
        return f"the page is {page} px wide in a {window} px window"
    if table > box:
        return f"the results are {table} px wide in a {box} px box"
    return None


def below_first_screen(site: Site, height: int) -> list[str]:
    """The first-screen elements that are missing or start below `height`."""
    tops = site.driver.execute_script(
        "return arguments[0].map(id => { const e = document.getElementById(id);"
        " return e ? e.getBoundingClientRect().top : null; })",
        FIRST_SCREEN,
    )
    return [
        f"#{id} is missing" if top is None else f"#{id} at {top:.0f} px"
        for id, top in zip(FIRST_SCREEN, tops, strict=True)
        if top is None or top >= height
    ]


def not_djangos_own(violation: dict) -> dict:
    """The violation without the elements of Django's own widgets (DJANGO_OWN)."""
    nodes = [
        node
        for node in violation["nodes"]
        if not any(
            violation["id"] == rule and mark in node.get("html", "") for rule, mark, _ in DJANGO_OWN
        )
    ]
    return {**violation, "nodes": nodes}


def axe_problems(site: Site, where: str, slug: str) -> list[str]:
    """axe-core on the open page: every finding kept in test-artifacts/axe/, the serious and
    critical ones returned (but for Django's own widgets')."""
    violations = site.axe()
    (ARTIFACTS / "axe").mkdir(exist_ok=True)
    (ARTIFACTS / "axe" / f"{slug}.json").write_text(json.dumps(violations, indent=1))
    ours = [v for v in map(not_djangos_own, violations) if v["nodes"]]
    return axe_report(where, ours)


def page_problems(site: Site, name: str, path: str, size: tuple[int, int]) -> list[str]:
    """Open one page at one size, keep its screenshot, and say what is wrong with it."""
    site.open(path)
    where, slug = f"{name} at {size[0]} × {size[1]} ({path})", name.replace(" ", "-")
    if problem := page_problem(site):
        return [f"{where}: {problem}"]
    site.shot(f"pages/{size[0]}x{size[1]}/{slug}")
    problems = [f"{where}: {message}" for message in site.csp_violations()]
    if (name.endswith(" list") or name == "gallery") and (problem := sideways_scroll(site)):
        problems.append(f"{where}: {problem}")
    if size == SIZES[0]:
        problems += axe_problems(site, where, slug)
    if size == SIZES[0] and os.environ.get("REFRESH_SCREENSHOTS") == "1":
        if name in README_SHOTS:
            site.shot(README_SHOTS[name], folder=DOCS_SCREENSHOTS)
        if name in README_PARTS:
            file, selector = README_PARTS[name]
            site.shot(file, folder=DOCS_SCREENSHOTS, selector=selector)
    return problems


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_every_admin_page_fits_the_window_and_passes_axe(live_server, browser, studio):
    site = Site(browser, live_server.url)
    site.log_in("admin")
    pages = admin_pages(studio)
    problems = []
    for size in SIZES:
        site.viewport(*size)
        for name, path in pages.items():
            problems += page_problems(site, name, path, size)
    site.viewport(*SIZES[0])
    site.color_scheme("dark")
    for name in DARK_PAGES:
        slug = name.replace(" ", "-")
        site.open(pages[name])
        site.shot(f"pages/dark/{slug}")
        problems += axe_problems(site, f"{name} in the dark theme", f"dark-{slug}")
    problems += [f"in the dark theme: {message}" for message in site.csp_violations()]
    assert not problems, "\n".join(["", *problems])

    site.color_scheme("light")
    site.open(pages["generation.generatedasset page"])
    below = below_first_screen(site, SIZES[0][1])
    assert not below, f"not in the asset page's first screen at {SIZES[0]}: {below}"


# --- the keyboard ----------------------------------------------------------------------------

# A few controls of each kind, on the pages people use most.
FOCUSABLE = {
    "dashboard": ["#content-main a", "#logout-form button"],
    "catalog.product list": [
        "#changelist-search input[type=submit]",
        "#changelist-form button[name=index]",
        "#result_list tbody a",
        "#changelist-filter a",
    ],
    "gallery": [".card", ".card button[data-decision]", "#gallery-filters select"],
    "generation.generatedasset page": ["#review-decision button", "#review-decision textarea"],
    "import": ["#catalog-import-form input[type=file]", "#catalog-import-form input[type=submit]"],
}


def focus_shown(site: Site, selector: str) -> str | None:
    """Focus the first `selector` as the keyboard would; why the focus cannot be seen, if not."""
    found = site.driver.execute_script(
        "const e = document.querySelector(arguments[0]); if (!e) return null;"
        "e.focus({focusVisible: true}); const s = getComputedStyle(e);"
        "return [document.activeElement === e, e.matches(':focus-visible'),"
        " s.outlineStyle, parseFloat(s.outlineWidth) || 0, s.boxShadow];",
        selector,
    )
    if found is None:
        return "not on the page"
    focused, visible, outline, outline_width, shadow = found
    if not focused:
        return "takes no focus"
    if not visible or ((outline == "none" or not outline_width) and shadow == "none"):
        return (
            f"focused without a visible mark (outline {outline} {outline_width}px, shadow {shadow})"
        )
    return None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_focus_is_visible_and_the_gallery_opens_an_image_by_keyboard(
    live_server, browser, studio
):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    site = Site(browser, live_server.url)
    site.log_in("admin")
    pages = admin_pages(studio)
    site.viewport(*SIZES[0])
    hidden = []
    for name, selectors in FOCUSABLE.items():
        site.open(pages[name])
        hidden += [
            f"{name}: {selector}: {problem}"
            for selector in selectors
            if (problem := focus_shown(site, selector))
        ]
    assert not hidden, "\n".join(["", *hidden])

    # What a click on a card's image does (open its page), Enter on the card does too.
    site.open(pages["gallery"])
    card = browser.switch_to.active_element
    assert "card" in card.get_attribute("class")
    card.send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda d: "/change/" in d.current_url)
    assert not site.csp_violations()  # the gallery's script runs under the policy

"""The whole flow in a real browser: Debian's Chromium, the live site and a real worker.

A merchandiser imports the sample catalog through the admin and asks for promo images; a
reviewer approves one, rejects another with a reason and publishes the approved one; the feed
then lists exactly that image. Screenshots of the key pages go to test-artifacts/.
"""

import json
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings as conf
from django.contrib.auth.models import Group, User
from django.core.signals import request_started

from generation.models import AssetStatus, GeneratedAsset

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--window-size=1400,1100",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


class Site:
    """The browser on the live server, with the few gestures the flow needs."""

    def __init__(self, driver, base_url: str):
        self.driver, self.base_url = driver, base_url
        ARTIFACTS.mkdir(exist_ok=True)

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def css(self, selector: str):
        return self.driver.find_element("css selector", selector)

    def text(self) -> str:
        return self.css("body").text

    def click(self, selector: str) -> None:
        self.css(selector).click()

    def submit(self, selector: str) -> None:
        """Click a submit button and wait for the next page to load."""
        from selenium.webdriver.support.ui import WebDriverWait

        old_page = self.css("html")
        self.css(selector).click()
        WebDriverWait(self.driver, 20).until(
            lambda d: old_page.id != d.find_element("css selector", "html").id
        )

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))

    def log_in(self, username: str) -> None:
        self.open("/admin/login/")
        self.css("#id_username").send_keys(username)
        self.css("#id_password").send_keys("correct horse battery")
        self.submit("input[type=submit]")
        assert "Log out" in self.text() or "LOG OUT" in self.text().upper()

    def log_out(self) -> None:
        self.submit("#logout-form button")

    def wait_for(self, selector: str, timeout: float = 60) -> None:
        """Until the page (which follows a job by reloading itself) shows `selector`."""
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(
            lambda d: d.find_elements("css selector", selector)
        )

    def import_csv(self, csv_path: Path, zip_path: Path) -> str:
        """Upload through the page's script (the files in slices, one request each); the
        import's page follows the worker's check until the preview is ready."""
        self.open("/admin/catalog/product/import/")
        assert self.css("#catalog-import-form").get_attribute("data-sliced") == "ready"
        self.css("input[name=csv_file]").send_keys(str(csv_path))
        self.css("input[name=images_zip]").send_keys(str(zip_path))
        with requests_seen() as paths:
            self.submit("#catalog-import-form input[type=submit]")
        assert "/admin/catalog/catalogimport/" in self.driver.current_url
        slices = [path for path in paths if re.search(r"/import/uploads/\w+/\w+/\d+/$", path)]
        assert len(slices) == slice_count(csv_path) + slice_count(zip_path), paths
        assert "/admin/catalog/product/import/" not in paths  # not the form's one POST
        self.wait_for("#catalog-import-confirm")
        return self.css("#import-summary").text

    def confirm_import(self) -> str:
        """Confirm; the page follows the write until the import is done."""
        self.submit("#catalog-import-confirm input[type=submit]")
        self.wait_for(".import-job[data-state=done]")
        return self.css("#import-summary").text


@contextmanager
def requests_seen():
    """The paths of the requests the live server answers meanwhile."""
    paths = []

    def seen(environ, **kwargs):
        paths.append(environ["PATH_INFO"])

    request_started.connect(seen)
    try:
        yield paths
    finally:
        request_started.disconnect(seen)


def slice_count(path: Path) -> int:
    return -(-path.stat().st_size // conf.CATALOG_IMPORT_SLICE_BYTES)


def user(username: str, group: str) -> User:
    account = User.objects.create_user(username, password="correct horse battery", is_staff=True)
    account.groups.add(Group.objects.get(name=group))
    return account


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_merchandiser_to_published_feed(
    live_server, browser, milvus, broker, worker, sample_catalog, settings
):
    settings.PUBLISH_OFFLINE_PREVIEWS = True  # the flow runs on the offline providers
    settings.CATALOG_IMPORT_SLICE_BYTES = 64 * 1024  # the sample's files in several slices
    sample = sample_catalog
    user("merchandiser", "Merchandiser")
    user("reviewer", "Reviewer")
    site = Site(browser, live_server.url)

    # A merchandiser imports the catalog through the admin: preview first, then confirm.
    site.log_in("merchandiser")
    assert "40 to create" in site.import_csv(sample.products_csv, sample.images_zip)
    site.shot("01-import-preview")
    assert site.confirm_import() == "40 created, 0 updated, 0 unchanged, 0 failed"
    assert "Imported" in site.text()
    assert "4 to create" in site.import_csv(sample.new_products_csv, sample.new_products_zip)
    site.confirm_import()
    broker.join("index")
    worker.join()
    site.open("/admin/catalog/product/")
    site.shot("02-product-list")
    browser.set_window_size(1400, 900)  # the product list fits a 1400 px window, no sideways scroll
    widths = browser.execute_script(
        "const r = document.querySelector('#changelist .results');"
        "return [document.documentElement.scrollWidth, r.scrollWidth, r.clientWidth];"
    )
    browser.set_window_size(1400, 1100)
    columns = browser.execute_script(
        "return [...document.querySelectorAll('#result_list thead th')].map(th => th.innerText.trim() + ':' + th.offsetWidth)"
    )
    assert widths[0] <= 1400 and widths[1] <= widths[2], (
        f"the product list scrolls sideways: {widths} {columns}"
    )

    # "Generate promo images" on the new products, two presets, after the estimate.
    site.open("/admin/catalog/product/?lifecycle__exact=new")
    site.click("#action-toggle")
    site.css("select[name=action]").send_keys("Generate promo images")
    site.submit("button[name=index]")
    for label in ("Marketplace main image", "Social post with tagline", "Storefront hero"):
        browser.find_element("xpath", f"//label[contains(., '{label}')]").click()
    site.css("select[name=size_tier]").send_keys("512 px draft")
    variants = site.css("input[name=variants]")
    variants.clear()
    variants.send_keys("2")  # two candidates of each image to choose from
    site.submit("input[name=_update]")
    assert "Generate 24 images" in site.css("input[name=_confirm]").get_attribute("value")
    site.shot("03-generate-confirmation")
    site.submit("input[name=_confirm]")
    broker.join("generation")
    worker.join()
    browser.refresh()
    site.shot("04-batch-progress")
    # Every image reached review with its quality check (and any regenerated after a failed one).
    in_review = GeneratedAsset.objects.filter(status=AssetStatus.IN_REVIEW)
    assert in_review.count() >= 24 and not in_review.filter(qa_status="").exists()
    assert not GeneratedAsset.objects.exclude(status=AssetStatus.IN_REVIEW).exists()
    staged = in_review.filter(preset__name="Social post with tagline").order_by("pk").first()
    assert staged.scene_image and staged.overlay_text == "New in"
    site.log_out()

    # A reviewer works through the queue: the asset page, then the gallery with the keyboard.
    site.log_in("reviewer")
    site.open("/admin/generation/generatedasset/")
    site.shot("05-review-queue")
    site.submit("#result_list tbody tr:first-child th a, #result_list tbody tr:first-child td a")
    site.shot("06-asset-review")
    site.open("/admin/generation/generatedasset/")
    site.click("#review-gallery-link")
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    first, sibling, third = browser.find_elements("css selector", ".card")[:3]
    assert browser.switch_to.active_element == first  # the first card has the focus
    first.send_keys("a")  # approve variant 1: variant 2 of the same image is set aside
    WebDriverWait(browser, 10).until(lambda d: "Approved" in first.text)
    assert "Set aside" in sibling.text
    assert browser.switch_to.active_element == third  # the focus moved on to an open card
    third.send_keys("r")  # reject: a reason is asked for
    reason = third.find_element("css selector", "textarea")
    reason.send_keys("The neck label shows; remove it.", Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda d: "Rejected" in third.text)
    assert GeneratedAsset.objects.filter(status=AssetStatus.SET_ASIDE).count() == 1
    site.shot("05b-review-gallery")
    staged = (
        GeneratedAsset.objects.filter(
            preset__name="Social post with tagline", status=AssetStatus.IN_REVIEW
        )
        .order_by("pk")
        .first()
    )
    site.open(f"/admin/generation/generatedasset/{staged.pk}/change/")  # scene, text and checks
    assert "Stage 1: the scene" in site.text() and "Automatic quality checks" in site.text()
    browser.set_window_size(1400, 1500)
    site.shot("08-staged-asset-quality-checks")
    browser.set_window_size(1400, 1100)
    approved = GeneratedAsset.objects.get(status=AssetStatus.APPROVED)
    rejected = GeneratedAsset.objects.get(status=AssetStatus.REJECTED)
    assert rejected.rejection_reason == "The neck label shows; remove it."

    # Publish the approved image, then read the feed a channel upload would read.
    site.open(f"/admin/generation/generatedasset/{approved.pk}/change/")
    site.submit("button[value=publish]")
    assert "published" in site.text().lower()
    site.open(f"/admin/catalog/product/{approved.product.pk}/change/")
    site.shot("07-product-published-images")
    site.open("/feeds/published.json")
    feed = json.loads(site.css("body").text)
    assert [(row["sku"], row["preset"]) for row in feed["images"]] == [
        (approved.product.sku, approved.preset.name)
    ]
    site.open(feed["images"][0]["url"].removeprefix(live_server.url))
    assert browser.execute_script("return document.images[0].naturalWidth") > 0

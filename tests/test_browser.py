"""The whole flow in a real browser: Debian's Chromium, the live site and a real worker.

A merchandiser imports the sample catalog through the admin and asks for promo images; a
reviewer approves one, rejects another with a reason and publishes the approved one; the feed
then lists exactly that image, and the Content-Security-Policy blocked nothing on the way.
Screenshots of the key pages go to test-artifacts/. Apart: repeated wrong passwords at the
login page end at the lockout page.
"""

import json

import pytest
from django.contrib.auth.models import User

from generation.models import AssetStatus, GeneratedAsset
from tests.browser import BROWSER_TEST, PASSWORD, Site, axe_report, user

pytestmark = BROWSER_TEST


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
    # The batch's page follows the work by itself (generation/batch-progress.js, allowed by
    # the CSP): it polls the progress and reloads once nothing runs any more.
    from selenium.webdriver.support.ui import WebDriverWait

    assert "/generationbatch/" in browser.current_url
    assert site.css("#batch-progress").get_attribute("data-running") != "0"
    broker.join("generation")
    worker.join()
    WebDriverWait(browser, 20, poll_frequency=0.2).until(
        lambda d: (
            d.find_element("css selector", "#batch-progress").get_attribute("data-running") == "0"
        )
    )
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
    # Every page of the flow ran its scripts and styles under the Content-Security-Policy.
    assert "script-src 'self'" in site.csp_header()
    assert not site.csp_violations(), site.csp_violations()
    site.open(f"/admin/catalog/product/{approved.product.pk}/change/")
    site.shot("07-product-published-images")
    site.open("/feeds/published.json")
    feed = json.loads(site.css("body").text)
    assert [(row["sku"], row["preset"]) for row in feed["images"]] == [
        (approved.product.sku, approved.preset.name)
    ]
    site.open(feed["images"][0]["url"].removeprefix(live_server.url))
    assert browser.execute_script("return document.images[0].naturalWidth") > 0


@pytest.mark.django_db(
    transaction=True, serialized_rollback=True
)  # like every live-server test: the next one restores the migrations' rows
def test_wrong_passwords_at_the_login_page_end_at_the_lockout_page(live_server, browser, settings):
    User.objects.create_user("merchandiser", password=PASSWORD, is_staff=True)
    site = Site(browser, live_server.url)
    for _ in range(settings.LOGIN_FAILURES_PER_USER):
        site.open("/admin/login/")
        site.css("#id_username").send_keys("merchandiser")
        site.css("#id_password").send_keys("not the password")
        site.submit("input[type=submit]")
    assert "Too many failed logins" in site.text()
    site.shot("09-login-lockout")
    # The right password now gets the same page, unchecked, in the admin's look.
    site.open("/admin/login/")
    site.css("#id_username").send_keys("merchandiser")
    site.css("#id_password").send_keys(PASSWORD)
    site.submit("input[type=submit]")
    assert "Too many failed logins" in site.text() and "Log out" not in site.text()
    assert site.css("#site-name").text
    problems = axe_report("the lockout page", site.axe())
    assert not problems, "\n".join(problems)
    assert not site.csp_violations()

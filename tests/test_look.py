"""The look: one stylesheet on every admin page, the asset and product pages compact (each
image once, what matters first), lists that fit 1400 px (long text cut, whole in a title)."""

import re

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from generation.models import AssetReference, AssetStatus, GeneratedAsset
from tests.factories import make_product
from tests.test_review import make_asset, png_bytes, reviewer  # noqa: F401 - shared fixture

pytestmark = pytest.mark.django_db
QUEUE = reverse("admin:generation_generatedasset_changelist")
FIRST_SCREEN = ("asset-flat-lay", "asset-references", "asset-image", "asset-qa", "review-decision")


def asset_page(client, asset) -> str:
    url = reverse("admin:generation_generatedasset_change", args=[asset.pk])
    return client.get(url).content.decode()


def test_every_admin_page_links_the_desk_stylesheet(client, reviewer):
    client.force_login(reviewer)

    for url in (reverse("admin:index"), QUEUE, reverse("admin:catalog_product_changelist")):
        assert "core/desk.css" in client.get(url).content.decode()


def test_the_asset_page_shows_each_image_once_in_its_named_regions(client, reviewer):
    asset = make_asset()
    bestseller = make_product("BEST1", sales_count=5000)
    AssetReference.objects.create(
        asset=asset, product=bestseller, rank=1, score=0.0325, dense_rank=1, sparse_rank=2
    )
    client.force_login(reviewer)

    html = asset_page(client, asset)

    for region in FIRST_SCREEN:
        assert f'id="{region}"' in html
    assert html.count(asset.product.image.url) == 1
    assert html.count(f'src="{asset.image.url}"') == 1
    assert html.count(bestseller.thumbnail.url) == 1
    assert "0.03250" in html  # the ranking's detail is still there, folded away
    assert re.search(r"<summary>\s*<h2[^>]*>Technical details", html)


def test_a_staged_images_scene_is_shown_to_reviewers(client, reviewer):
    asset = make_asset()
    asset.scene_image.save("scene.png", ContentFile(png_bytes()))
    client.force_login(reviewer)

    assert asset.scene_image.url in asset_page(client, asset)
    assert client.get(asset.scene_image.url).status_code == 200


def test_the_asset_list_cuts_a_long_reason_and_keeps_it_whole_in_a_title(client, reviewer):
    asset = make_asset(status=AssetStatus.REJECTED)
    reason = "The sleeves are too long and the collar is the wrong colour for this season " * 2
    GeneratedAsset.objects.filter(pk=asset.pk).update(rejection_reason=reason.strip())
    client.force_login(reviewer)

    html = client.get(QUEUE, {"status": "all"}).content.decode()

    assert f'title="{reason.strip()}"' in html
    assert re.search(r'">The sleeves are too long and the collar is the ?…</span>', html)


def test_the_product_page_opens_with_its_photo_look_alikes_and_published_images(
    client, reviewer, settings
):
    settings.MILVUS_URI = "http://127.0.0.1:9"  # nothing listens: the panel says so
    settings.MILVUS_TIMEOUT = 1
    product = make_product("NEW1")
    client.force_login(reviewer)

    html = client.get(reverse("admin:catalog_product_change", args=[product.pk])).content.decode()

    top = html.index('id="product-top"')
    form = html.index('id="product_form"')
    assert top < html.index('id="product-photo"') < form
    assert top < html.index("Similar bestsellers, found by photo and description") < form
    assert top < html.index("No published images yet.") < form
    assert html.count(f'<img src="{product.image.url}"') == 1

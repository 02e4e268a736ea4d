"""Variants to choose from, and versions that follow a reviewer's feedback."""

from decimal import Decimal

import pytest
from django.utils import timezone

from catalog.models import Product
from generation.models import AssetReference, AssetStatus, ChannelPreset, GeneratedAsset
from generation.pipeline import asset_run
from generation.providers import ImageRequest
from generation.providers.offline import OfflineImageGenerator
from generation.review import asset_approve, asset_regenerate
from generation.services import BatchRequest, batch_create
from generation.sizes import pixel_size
from tests.factories import make_product
from tests.test_review import user_in

pytestmark = pytest.mark.django_db


def generated(variants: int) -> list[GeneratedAsset]:
    """One product × one preset × `variants` candidates, made by the offline providers."""
    reference = make_product(
        "BEST-1", color="navy", sales_count=5000, lifecycle=Product.Lifecycle.HISTORICAL
    )
    product = make_product("NEW-1", color="red")
    preset = ChannelPreset.objects.get(name="Storefront hero")
    batch = batch_create(
        user=None,
        request=BatchRequest([product], [preset], "0.5K", 1, variants),
        estimated_cost=Decimal("0"),
    )
    assets = list(batch.assets.order_by("variant"))
    for asset in assets:
        AssetReference.objects.create(asset=asset, product=reference, rank=1, score=0.03)
        GeneratedAsset.objects.filter(pk=asset.pk).update(retrieved_at=timezone.now())
        asset_run(asset_id=asset.pk, worker="w")
    return [GeneratedAsset.objects.get(pk=asset.pk) for asset in assets]


def test_a_batch_makes_the_variants_asked_for_and_they_differ():
    assets = generated(3)

    assert [(a.version, a.variant, a.status) for a in assets] == [
        (1, 1, "in_review"),
        (1, 2, "in_review"),
        (1, 3, "in_review"),
    ]
    contents = {a.image.open("rb").read() for a in assets}
    assert len(contents) == 3


def test_approving_one_variant_sets_the_others_aside_in_the_same_action():
    first, second, third = generated(3)
    reviewer = user_in("Reviewer", "rev")

    asset_approve(asset=second, user=reviewer)

    statuses = [GeneratedAsset.objects.get(pk=a.pk).status for a in (first, second, third)]
    assert statuses == [AssetStatus.SET_ASIDE, AssetStatus.APPROVED, AssetStatus.SET_ASIDE]
    assert "variant 2 was approved" in first.events.last().note


def test_the_offline_generator_follows_what_feedback_it_can_and_says_what_it_cannot():
    from tests.test_providers import FLATLAY, NEW_PRODUCT

    width, height = pixel_size("3:4", "0.5K")
    request = ImageRequest(
        product=NEW_PRODUCT,
        product_image=FLATLAY,
        references=[],
        style_prompt="Soft light.",
        channel_name="Hero",
        channel_rules="",
        white_background=False,
        aspect_ratio="3:4",
        size_tier="0.5K",
        width=width,
        height=height,
    )
    plain = OfflineImageGenerator().generate(request)
    followed = OfflineImageGenerator().generate(
        ImageRequest(**{**request.__dict__, "feedback": "Brighter and warmer please; add a model"})
    )

    assert followed.content != plain.content
    assert "followed brighter, warmer" in followed.text
    assert "cannot follow anything else (a model" in followed.text


def test_a_regenerated_version_is_its_own_version_with_the_feedback():
    [asset] = generated(1)
    new = asset_regenerate(asset=asset, user=user_in("Reviewer", "rev"), feedback="Darker, zoom in")
    assert (new.version, new.variant, new.feedback, new.status) == (
        2,
        1,
        "Darker, zoom in",
        "queued",
    )

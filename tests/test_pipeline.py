"""The generation pipeline end to end: real Milvus Lite, real providers, a real worker."""

from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from catalog.importer import DirectoryImages, catalog_import
from catalog.indexing import index_rebuild
from catalog.models import Product
from core.models import MonthlySpend, SpendReservation
from core.spending import month_spent
from generation.models import AssetEvent, AssetStatus, ChannelPreset, GeneratedAsset
from generation.pipeline import RateLimited, RetryLater, asset_run, validate_image
from generation.services import BatchRequest, batch_create
from generation.sizes import pixel_size
from tests.openrouter_server import Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def sample_dir(sample_catalog) -> Path:
    return sample_catalog.directory


@pytest.fixture
def catalog(milvus, sample_dir):
    """The sample catalog imported and indexed."""
    for csv_name, images in (("products.csv", "images"), ("new_products.csv", "new_products")):
        assert catalog_import(
            csv_data=(sample_dir / csv_name).read_bytes(),
            images=DirectoryImages(sample_dir / images),
        ).ok
    index_rebuild()
    return Product.objects.awaiting_promos().order_by("sku")


def preset(name: str) -> ChannelPreset:
    return ChannelPreset.objects.get(name=name)


def make_batch(products, presets, size="0.5K", references=2):
    return batch_create(
        user=None,
        request=BatchRequest(list(products), list(presets), size, references),
        estimated_cost=Decimal("0"),
    )


def chat_calls(server, *, generation: bool) -> int:
    """Image calls (generation=True) or style analyses (False); quality checks: qa_calls."""
    return sum(
        1
        for r in server.requests
        if r.path.endswith("/chat/completions")
        and "response_format" not in (r.json or {})
        and ("modalities" in (r.json or {})) == generation
    )


def qa_calls(server) -> int:
    return sum(1 for r in server.requests if "response_format" in (r.json or {}))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_four_new_products_and_two_presets_make_eight_images_in_review(catalog, broker, worker):
    presets = [preset("Marketplace main image"), preset("Ultra-wide banner")]
    batch = make_batch(catalog, presets)

    broker.join("generation")
    worker.join()

    assets = list(batch.assets.select_related("preset", "product"))
    assert len(assets) == 8
    for asset in assets:
        assert asset.status == AssetStatus.IN_REVIEW, (asset, asset.last_error)
        with Image.open(asset.image.path) as image:
            assert (
                image.size
                == pixel_size(asset.preset.aspect_ratio, "0.5K")
                == (asset.width, asset.height)
            )
        for rendition, side in ((asset.thumbnail, 320), (asset.preview, 1280)):  # made once, stored
            with Image.open(rendition.path) as image:
                assert image.format == "JPEG" and max(image.size) <= side
        assert asset.references.count() == 2 and asset.style_prompt and asset.generation_prompt
        assert asset.offline and asset.cost == 0
        steps = list(asset.events.values_list("to_status", flat=True))
        assert steps == ["queued", "retrieving", "analysing", "generating", "checking", "in_review"]
        assert asset.qa_status in ("passed", "flagged") and asset.qa_model == "offline-qa-v1"
    progress = batch.progress()
    assert (progress.total, progress.finished, progress.failed, progress.running) == (8, 8, 0, 0)
    assert progress.cost == 0


def test_retrieved_references_are_the_bestseller_twins(catalog):
    asset = make_batch(catalog.filter(sku="NEW003"), [preset("Storefront hero")]).assets.get()

    asset_run(asset_id=asset.pk, worker="test")

    asset.refresh_from_db()
    references = list(asset.references.select_related("product"))
    assert references[0].product.sku == "SKU003" and references[0].rank == 1
    assert all(ref.product.sales_count > 1500 for ref in references)


def test_openrouter_pipeline_sends_the_seed_requests_and_records_cost(catalog, openrouter):
    asset = make_batch(
        catalog.filter(sku="NEW002"), [preset("Storefront hero")], size="2K"
    ).assets.get()

    asset_run(asset_id=asset.pk, worker="test")

    asset.refresh_from_db()
    assert asset.status == AssetStatus.IN_REVIEW, asset.last_error
    generation = [r for r in openrouter.requests if "modalities" in (r.json or {})]
    assert len(generation) == 1
    body = generation[0].json
    assert body["image_config"] == {"aspect_ratio": "3:4", "image_size": "2K"}
    assert body["model"] == "google/gemini-3.1-flash-image-preview"
    assert not asset.offline and asset.cost > 0
    assert asset.analyst_model == "qwen/qwen3.5-397b-a17b"
    assert month_spent() == asset.cost


def test_a_redelivered_message_never_pays_twice_for_a_finished_step(catalog, openrouter):
    asset = make_batch(catalog.filter(sku="NEW001"), [preset("Social story")]).assets.get()
    # The analysis succeeds, then the image call fails with a 500: a transient failure.
    asset_run_until_generation_fails(asset, openrouter)
    assert chat_calls(openrouter, generation=False) == 1
    assert chat_calls(openrouter, generation=True) == 1

    asset_run(asset_id=asset.pk, worker="test")  # the retry resumes at the image step
    asset_run(asset_id=asset.pk, worker="test")  # a duplicate message: nothing to do

    asset.refresh_from_db()
    assert asset.status == AssetStatus.IN_REVIEW
    assert chat_calls(openrouter, generation=False) == 1
    assert chat_calls(openrouter, generation=True) == 2
    assert qa_calls(openrouter) == 1 and asset.qa_status == "passed"
    assert asset.attempts == 2


def asset_run_until_generation_fails(asset, server):
    """Run the asset with the image call answering 500 (the analysis call goes through)."""
    original = server.routes["/chat/completions"]
    failing = {"done": False}

    def analysis_then_500(request):
        if "modalities" in (request.json or {}) and not failing["done"]:
            failing["done"] = True
            return Reply.error(500, "upstream model is down")
        return original(request)

    server.routes["/chat/completions"] = analysis_then_500
    try:
        with pytest.raises(RetryLater):
            asset_run(asset_id=asset.pk, worker="test")
    finally:
        server.routes["/chat/completions"] = original
    asset.refresh_from_db()
    assert asset.status == AssetStatus.GENERATING and asset.style_prompt
    assert "500" in asset.last_error


def test_a_non_retryable_provider_error_fails_the_asset_with_its_message(catalog, openrouter):
    asset = make_batch(catalog.filter(sku="NEW004"), [preset("Web banner")]).assets.get()
    openrouter.fail_next(
        status=402, json={"error": {"code": 402, "message": "Insufficient credits"}}
    )

    asset_run(asset_id=asset.pk, worker="test")

    asset.refresh_from_db()
    assert asset.status == AssetStatus.FAILED
    assert "402" in asset.failure_reason and "Insufficient credits" in asset.failure_reason
    assert AssetEvent.objects.filter(asset=asset, to_status=AssetStatus.FAILED).exists()


def test_a_429_waits_for_the_providers_delay_in_the_worker_and_is_not_an_attempt(
    catalog, openrouter
):
    asset = make_batch(catalog.filter(sku="NEW004"), [preset("Web banner")]).assets.get()
    openrouter.fail_next(
        status=429,
        headers={"Retry-After": "1"},
        json={"error": {"code": 429, "message": "Rate limited"}},
    )

    asset_run(asset_id=asset.pk, worker="test")

    asset.refresh_from_db()
    assert asset.status == AssetStatus.IN_REVIEW and asset.attempts == 1
    limited, retried = openrouter.requests[:2]
    assert retried.at - limited.at >= 1  # nobody called the model before Retry-After


def test_a_429_that_outlasts_the_wait_sends_the_message_again_without_an_attempt(
    catalog, openrouter, settings
):
    settings.OPENROUTER_RATE_WAIT_SECONDS = 0
    asset = make_batch(catalog.filter(sku="NEW004"), [preset("Web banner")]).assets.get()
    openrouter.fail_next(
        status=429,
        headers={"Retry-After": "7"},
        json={"error": {"code": 429, "message": "Rate limited"}},
    )

    with pytest.raises(RateLimited) as later:
        asset_run(asset_id=asset.pk, worker="test")

    assert later.value.delay == 7
    asset.refresh_from_db()
    assert asset.status in (AssetStatus.ANALYSING, AssetStatus.RETRIEVING)
    assert "429" in asset.last_error and (asset.attempts, asset.rate_waits) == (1, 1)


def test_spending_cap_stops_the_batch_before_overspending(catalog, openrouter, settings):
    settings.MONTHLY_SPENDING_CAP = (
        "0.10"  # one 1K image (0.067) and analyses fit, two images do not
    )
    batch = make_batch(
        catalog.filter(sku__in=["NEW001", "NEW002", "NEW003"]),
        [preset("Marketplace main image")],
        size="1K",
    )
    assets = list(batch.assets.order_by("pk"))

    for asset in assets:
        asset_run(asset_id=asset.pk, worker="test")

    statuses = [GeneratedAsset.objects.get(pk=a.pk).status for a in assets]
    assert statuses == [AssetStatus.IN_REVIEW, AssetStatus.FAILED, AssetStatus.FAILED]
    assert chat_calls(openrouter, generation=True) == 1
    spend = MonthlySpend.objects.get()
    assert spend.spent <= Decimal("0.10") and not SpendReservation.objects.exists()
    batch.refresh_from_db()
    assert "spending cap" in batch.note
    assert "spending cap" in GeneratedAsset.objects.get(pk=assets[1].pk).failure_reason


def test_returned_images_are_validated():
    from io import BytesIO

    def png(size, color="white", noisy=True):
        image = Image.new("RGB", size, color)
        if noisy:
            image.paste((10, 20, 30), (0, 0, size[0] // 2, size[1] // 2))
        buffer = BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    assert validate_image(png((864, 1184)), "3:4")[1:] == (864, 1184)
    for content, ratio, words in [
        (b"not an image", "1:1", "cannot be decoded"),
        (png((1000, 500)), "1:1", "not the requested 1:1"),
        (png((512, 512), noisy=False), "1:1", "blank"),
    ]:
        with pytest.raises(Exception, match=words):
            validate_image(content, ratio)

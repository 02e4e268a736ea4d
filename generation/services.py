"""Promo generation: batches in, reviewed-ready images out.

`batch_create` turns a merchandiser's request into one asset per product × preset and queues
them after commit. `asset_run` is the pipeline behind the Dramatiq actor: retrieve similar
bestsellers, analyse their style, generate the image, validate and store it. Every step saves
its result on the asset before the next starts; a redelivered message resumes at the first
unfinished step and never pays twice for a finished one.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from PIL import Image, ImageStat, UnidentifiedImageError

from catalog.models import Product
from catalog.selectors import similar_bestsellers
from catalog.tasks import enqueue_after_commit
from catalog.vector_index import IndexUnavailable
from generation.models import (
    AssetEvent,
    AssetReference,
    AssetStatus,
    ChannelPreset,
    GeneratedAsset,
    GenerationBatch,
)
from generation.providers import (
    ImageRequest,
    ProductBrief,
    ProviderError,
    ReferenceImage,
    StyleRequest,
    get_image_generator,
    get_style_analyst,
)
from generation.sizes import pixel_size, ratio_value
from generation.spending import SpendingCapReached, analysis_price, image_price, paid_call

logger = logging.getLogger(__name__)

RUNNING = (AssetStatus.QUEUED, AssetStatus.RETRIEVING, AssetStatus.ANALYSING, AssetStatus.GENERATING)
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
RATIO_TOLERANCE = 0.04  # the model's own pixel sizes differ from the exact ratio by up to ~3 %


class RetryLater(Exception):
    """A transient failure: run the asset again after `delay` seconds."""

    def __init__(self, message: str, delay: float):
        super().__init__(message)
        self.delay = delay


class GenerationFailed(Exception):
    """A failure that retrying will not fix; the message is shown on the asset."""


# --- batches -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchRequest:
    products: list[Product]
    presets: list[ChannelPreset]
    size_tier: str
    reference_count: int


def batch_create(*, user, request: BatchRequest, estimated_cost: Decimal) -> GenerationBatch:
    """One batch, one queued asset per product × preset, sent to the workers after commit."""
    without_photo = [p.sku for p in request.products if not p.image]
    if without_photo:
        raise ValueError(f"These products have no photo to start from: {', '.join(without_photo)}")
    with transaction.atomic():
        batch = GenerationBatch.objects.create(
            requested_by=user, size_tier=request.size_tier,
            reference_count=request.reference_count, estimated_cost=estimated_cost,
        )
        batch.presets.set(request.presets)
        latest = {
            (row["product"], row["preset"]): row["v"]
            for row in GeneratedAsset.objects.filter(product__in=request.products, preset__in=request.presets)
            .values("product", "preset").annotate(v=Max("version"))
        }
        for product in request.products:
            for preset in request.presets:
                asset = GeneratedAsset.objects.create(
                    batch=batch, product=product, preset=preset,
                    version=latest.get((product.pk, preset.pk), 0) + 1,
                    aspect_ratio=preset.aspect_ratio, size_tier=request.size_tier,
                    reference_count=request.reference_count,
                )
                asset_queue(asset=asset, user=user, note=f"requested in batch {batch.pk}")
    return batch


def asset_queue(*, asset: GeneratedAsset, user=None, note: str = "") -> None:
    """Log the asset as queued and send it to a worker once the transaction commits."""
    from generation.tasks import generate_asset

    AssetEvent.objects.create(asset=asset, to_status=AssetStatus.QUEUED, user=user, note=note)
    enqueue_after_commit(generate_asset, asset.pk)


# --- the pipeline --------------------------------------------------------------------------

def asset_run(*, asset_id: int, worker: str) -> None:
    """Run the unfinished steps of one asset. Duplicate messages are no-ops.

    Raises RetryLater for transient failures (the actor turns it into a delayed retry).
    """
    asset = _claim(asset_id, worker)
    if asset is None:
        return
    try:
        if asset.retrieved_at is None:
            _retrieve(asset, worker)
        if not asset.style_prompt:
            _analyse(asset, worker)
        if not asset.image:
            _generate(asset, worker)
    except SpendingCapReached as exc:
        _stop_batch(asset, str(exc), worker)
    except GenerationFailed as exc:
        _fail(asset, str(exc), worker)
    except ProviderError as exc:
        if not exc.retryable:
            _fail(asset, str(exc), worker)
        else:
            _retry_or_fail(asset, str(exc), worker, exc.retry_after)
    except IndexUnavailable as exc:
        _retry_or_fail(asset, str(exc), worker, None)
    except Exception as exc:
        logger.exception("asset %s failed unexpectedly", asset_id)
        _retry_or_fail(asset, f"{type(exc).__name__}: {exc}", worker, None)


def _claim(asset_id: int, worker: str) -> GeneratedAsset | None:
    lease = timedelta(seconds=settings.GENERATION_TIME_LIMIT_SECONDS)
    with transaction.atomic():
        asset = GeneratedAsset.objects.select_for_update().filter(pk=asset_id).first()
        if asset is None or asset.status not in RUNNING:
            return None  # deleted, finished or failed: a duplicate or late message
        now = timezone.now()
        if asset.claimed_by and asset.claimed_at and now - asset.claimed_at < lease:
            # Another worker holds it. Look again once its lease ends, in case it died.
            raise RetryLater(f"asset {asset_id} is being generated by {asset.claimed_by}",
                             delay=(asset.claimed_at + lease - now).total_seconds() + 1)
        asset.claimed_by, asset.claimed_at = worker, now
        asset.attempts += 1
        asset.save(update_fields=["claimed_by", "claimed_at", "attempts", "updated_at"])
    return asset


def asset_transition(asset: GeneratedAsset, status: str, worker: str = "", note: str = "", user=None,
                **fields) -> None:
    """Move the asset to a status, saving the given fields with it, and log the change."""
    with transaction.atomic():
        AssetEvent.objects.create(asset=asset, from_status=asset.status, to_status=status,
                                  worker=worker, user=user, note=note)
        asset.status = status
        for name, value in fields.items():
            setattr(asset, name, value)
        asset.save()


def _timed(asset: GeneratedAsset, step: str, started: float) -> dict:
    return {**asset.timings, step: round(time.monotonic() - started, 3)}


def _brief(product: Product) -> ProductBrief:
    return ProductBrief(sku=product.sku, category=product.category, color=product.color,
                        style=product.style, season=product.season,
                        description=product.description, prompt_hint=product.prompt_hint)


def _read(field_file) -> bytes:
    with field_file.storage.open(field_file.name, "rb") as handle:
        return handle.read()


def _retrieve(asset: GeneratedAsset, worker: str) -> None:
    asset_transition(asset, AssetStatus.RETRIEVING, worker)
    started = time.monotonic()
    result = similar_bestsellers(product=asset.product, top_k=asset.reference_count, relax_to=0)
    if not result.hits:
        raise GenerationFailed(
            f"No other product of category {asset.product.category!r} is in the index to take a "
            "style from. Import bestsellers of this category first.")
    with transaction.atomic():
        asset.references.all().delete()
        AssetReference.objects.bulk_create([
            AssetReference(asset=asset, product=hit.product, rank=rank, score=hit.score,
                           dense_rank=hit.dense_rank, sparse_rank=hit.sparse_rank)
            for rank, hit in enumerate(result.hits, start=1)
        ])
        asset_transition(asset, AssetStatus.ANALYSING, worker, note=result.note,
                    retrieved_at=timezone.now(), retrieval_note=result.note,
                    timings=_timed(asset, "retrieve", started))


def _references(asset: GeneratedAsset, limit: int | None = None) -> list[ReferenceImage]:
    return [
        ReferenceImage(product=_brief(ref.product), content=_read(ref.product.image),
                       rank=ref.rank, score=ref.score)
        for ref in asset.references.select_related("product")[:limit]
    ]


def _analyse(asset: GeneratedAsset, worker: str) -> None:
    if asset.status != AssetStatus.ANALYSING:
        asset_transition(asset, AssetStatus.ANALYSING, worker)
    analyst = get_style_analyst()
    request = StyleRequest(product=_brief(asset.product), references=_references(asset))
    started = time.monotonic()
    worst_case = Decimal("0") if analyst.is_offline else analysis_price()
    with paid_call(worst_case) as settle:
        result = analyst.analyse(request)
        cost = result.cost if result.cost is not None else worst_case
        settle(cost)
    asset_transition(
        asset, AssetStatus.GENERATING, worker,
        style_prompt=result.prompt, analyst_model=result.model, cost=asset.cost + cost,
        usage={**asset.usage, "analysis": {**result.usage, "cost": str(cost)}},
        timings=_timed(asset, "analyse", started), offline=result.offline,
    )


def _generate(asset: GeneratedAsset, worker: str) -> None:
    if asset.status != AssetStatus.GENERATING:
        asset_transition(asset, AssetStatus.GENERATING, worker)
    generator = get_image_generator()
    width, height = pixel_size(asset.aspect_ratio, asset.size_tier)
    request = ImageRequest(
        product=_brief(asset.product), product_image=_read(asset.product.image),
        references=_references(asset, limit=1), style_prompt=asset.style_prompt,
        channel_name=asset.preset.name, channel_rules=asset.preset.rules,
        white_background=asset.preset.white_background, aspect_ratio=asset.aspect_ratio,
        size_tier=asset.size_tier, width=width, height=height, feedback=asset.feedback,
    )
    started = time.monotonic()
    worst_case = Decimal("0") if generator.is_offline else image_price(asset.size_tier)
    with paid_call(worst_case) as settle:
        result = generator.generate(request)
        cost = result.cost if result.cost is not None else worst_case
        settle(cost)
    # Paid for: record it before anything else can fail.
    asset.cost += cost
    asset.usage = {**asset.usage, "generation": {**result.usage, "cost": str(cost)}}
    asset.generation_prompt, asset.image_model = result.prompt, result.model
    asset.model_text = result.text
    asset.save(update_fields=["cost", "usage", "generation_prompt", "image_model", "model_text", "updated_at"])

    image_format, img_width, img_height = validate_image(result.content, asset.aspect_ratio)
    extension = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[image_format]
    name = f"{asset.product.sku}-preset{asset.preset.pk}-v{asset.version}-{asset.pk}.{extension}"
    asset.image.save(name, ContentFile(result.content), save=False)
    asset_transition(asset, AssetStatus.IN_REVIEW, worker, width=img_width, height=img_height,
                offline=asset.offline or result.offline, timings=_timed(asset, "generate", started),
                claimed_by="", claimed_at=None, last_error="")


def validate_image(content: bytes, aspect_ratio: str) -> tuple[str, int, int]:
    """Check a returned image: decodes, allowed format, requested ratio, not blank."""
    try:
        image = Image.open(io.BytesIO(content))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise GenerationFailed(f"The model returned an image that cannot be decoded ({exc}).") from None
    if image.format not in ALLOWED_FORMATS:
        raise GenerationFailed(f"The model returned a {image.format} image; expected PNG, JPEG or WebP.")
    width, height = image.size
    wanted = ratio_value(aspect_ratio)
    if abs(width / height - wanted) / wanted > RATIO_TOLERANCE:
        raise GenerationFailed(f"The model returned {width}×{height} px, not the requested {aspect_ratio}.")
    extrema = ImageStat.Stat(image.convert("L").resize((64, 64))).stddev[0]
    if extrema < 2:
        raise GenerationFailed("The model returned a blank image.")
    return image.format, width, height


# --- failures ------------------------------------------------------------------------------

def _fail(asset: GeneratedAsset, reason: str, worker: str) -> None:
    asset_transition(asset, AssetStatus.FAILED, worker, note=reason, failure_reason=reason,
                last_error=reason, claimed_by="", claimed_at=None)


def _retry_or_fail(asset: GeneratedAsset, error: str, worker: str, retry_after: float | None) -> None:
    if asset.attempts >= settings.GENERATION_MAX_ATTEMPTS:
        _fail(asset, f"Gave up after {asset.attempts} attempts. Last error: {error}", worker)
        return
    asset.last_error, asset.claimed_by, asset.claimed_at = error, "", None
    asset.save(update_fields=["last_error", "claimed_by", "claimed_at", "updated_at"])
    delay = retry_after if retry_after is not None else min(10 * 2 ** (asset.attempts - 1), 600)
    raise RetryLater(error, delay=delay)


def _stop_batch(asset: GeneratedAsset, reason: str, worker: str) -> None:
    """The spending cap is reached: this asset and the batch's unstarted ones stop here."""
    _fail(asset, reason, worker)
    batch = asset.batch
    for other in batch.assets.filter(status=AssetStatus.QUEUED, claimed_by=""):
        _fail(other, reason, worker)
    GenerationBatch.objects.filter(pk=batch.pk).update(note=reason)

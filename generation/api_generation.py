"""/api/v1/generation: estimate and request promo images (SKUs × preset names × size ×
references × variants) for a token with `generation:write`, and /api/v1/batches/{id}: how far
a batch is.

A request is validated by the admin page's PromoRequestForm, priced by its quote and queued
by `batch_create`, so the API, the page and `manage.py generate_promos` agree on what a
request is and costs; the monthly spending cap holds each paid call as it does for them. An
`Idempotency-Key` header plays the page's request key: the same key from the same token
answers the batch it made the first time.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.admin.models import ADDITION, LogEntry
from django.shortcuts import get_object_or_404
from ninja import Field, Header, Router, Schema, Status

from catalog.models import Product
from core.api.auth import require
from core.api.problems import ApiProblem
from core.models import ApiScope
from core.spending import month_spent, spending_cap
from generation.admin import batch_progress
from generation.admin_views import PERMISSION as REQUEST
from generation.forms import PromoRequestForm, providers_offline
from generation.models import AssetStatus, ChannelPreset, GenerationBatch, SizeTier
from generation.services import batch_create
from generation.spending import Estimate

router = Router(tags=["generation"])
batches = Router(tags=["generation"])

VIEW_BATCH = "generation.view_generationbatch"


class GenerationIn(Schema):
    skus: list[str] = Field(min_length=1, max_length=settings.API_BULK_MAX_ITEMS)
    presets: list[str] = Field(min_length=1, description="Active channel presets, by name.")
    size_tier: SizeTier = SizeTier.ONE_K
    reference_count: int = Field(
        settings.GENERATION_DEFAULT_REFERENCES,
        description="Similar bestsellers the style is taken from (1 to GENERATION_MAX_REFERENCES).",
    )
    variants: int = Field(1, description="Images to choose from per product and preset (1–4).")


class EstimateOut(Schema):
    images: int
    image_calls: int = Field(description="A staged preset makes two calls per image.")
    input_images: int
    per_image: Decimal
    total: Decimal = Field(description="What the request costs at most, in USD.")
    offline: bool = Field(description="Offline preview providers: nothing is paid for.")
    monthly_cap: Decimal | None = Field(description="MONTHLY_SPENDING_CAP; null when none.")
    month_spent: Decimal


class BatchOut(Schema):
    id: int
    created_at: datetime
    presets: list[str]
    size_tier: SizeTier
    reference_count: int
    variants: int
    estimated_cost: Decimal
    stopped_at: datetime | None
    note: str = Field(description="Why the batch stopped early, if it did.")
    total: int
    finished: int = Field(description="Images generated (whatever their review decided).")
    failed: int
    running: int
    by_status: dict[AssetStatus, int]
    cost: str = Field(description="What its images cost so far.")
    throughput: str
    time_left: str
    assets: str = Field(description="Its images, at /api/v1/assets?batch=<id>.")


def _request(request, payload: GenerationIn) -> tuple[PromoRequestForm, list[Product]]:
    """The validated request form and its products; a 422 naming each bad field otherwise."""
    errors = []
    found = {p.sku: p for p in Product.objects.filter(sku__in=payload.skus)}
    for index, sku in enumerate(payload.skus):
        if sku not in found:
            errors.append({"field": f"skus[{index}]", "reason": f"no product has the SKU {sku!r}"})
        elif not found[sku].has_photo:
            errors.append(
                {"field": f"skus[{index}]", "reason": f"{sku} has no photo to start from"}
            )
    active = {p.name: p for p in ChannelPreset.objects.filter(is_active=True)}
    for index, name in enumerate(payload.presets):
        if name not in active:
            errors.append(
                {"field": f"presets[{index}]", "reason": f"{name!r} is not an active preset"}
            )
    products = [found[sku] for sku in dict.fromkeys(payload.skus) if sku in found]
    form = PromoRequestForm(
        {
            "presets": [
                active[name].pk for name in dict.fromkeys(payload.presets) if name in active
            ],
            "size_tier": payload.size_tier,
            "reference_count": payload.reference_count,
            "variants": payload.variants,
        },
        products=products,
    )
    if not errors and not form.is_valid():
        errors = [
            {"field": name if name != "__all__" else "body", "reason": str(error)}
            for name, messages in form.errors.items()
            for error in messages
        ]
    if errors:
        raise ApiProblem(
            422, "The request has invalid fields; see errors.", "invalid-fields", errors
        )
    return form, products


def _estimate_out(quote: Estimate, offline: bool) -> dict:
    return {
        "images": quote.images,
        "image_calls": quote.image_calls,
        "input_images": quote.input_images,
        "per_image": quote.per_image,
        "total": quote.total,
        "offline": offline,
        "monthly_cap": spending_cap(),
        "month_spent": month_spent(),
    }


def _batch_out(request, batch: GenerationBatch) -> dict:
    progress = batch_progress(batch)
    counts = progress["counts"]
    return {
        **{
            name: getattr(batch, name)
            for name in (
                "id",
                "created_at",
                "size_tier",
                "reference_count",
                "variants",
                "estimated_cost",
                "stopped_at",
                "note",
            )
        },
        "presets": [preset.name for preset in batch.presets.order_by("name")],
        **{
            name: counts[name]
            for name in ("total", "finished", "failed", "running", "cost", "throughput")
        },
        "time_left": counts["time_left"],
        "by_status": progress["by_status"],
        "assets": request.build_absolute_uri(f"/api/v1/assets?batch={batch.pk}"),
    }


def _request_key(token, header: str | None) -> str | None:
    """The batch's request key for a client's Idempotency-Key: scoped to the token, so two
    clients choosing the same key never share a batch, and hashed to fit the column."""
    if not header:
        return None
    return hashlib.sha256(f"api:{token.pk}:{header}".encode()).hexdigest()


@router.post("/estimate", response=EstimateOut, summary="Estimate a request")
def generation_estimate(request, payload: GenerationIn):
    """What the request would make and cost at most; nothing is queued."""
    require(request, ApiScope.GENERATION_WRITE, REQUEST)
    form, products = _request(request, payload)
    offline = providers_offline()
    return _estimate_out(form.quote(products, offline=offline), offline)


@router.post("/requests", response={200: BatchOut, 201: BatchOut}, summary="Request promo images")
def generation_request(
    request,
    payload: GenerationIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200),
):
    """Queue one image per SKU × preset × variant; 201 with the new batch, or 200 with the
    batch an earlier call with the same `Idempotency-Key` made."""
    token = require(request, ApiScope.GENERATION_WRITE, REQUEST)
    key = _request_key(token, idempotency_key)
    if key and (done := GenerationBatch.objects.filter(request_key=key).first()):
        return Status(200, _batch_out(request, done))
    form, products = _request(request, payload)
    quote = form.quote(products, offline=providers_offline())
    try:
        batch = batch_create(
            user=token.owner,
            request=form.batch_request(products),
            estimated_cost=quote.total,
            request_key=key,
        )
    except ValueError as exc:
        raise ApiProblem(422, str(exc), "invalid-fields") from None
    LogEntry.objects.log_actions(
        token.owner.pk,
        [batch],
        ADDITION,
        change_message=f"Requested {quote.images} promo image(s) for {len(products)} "
        f"product(s) via API token “{token.name}”",
        single_object=True,
    )
    return Status(201, _batch_out(request, batch))


@batches.get("/{int:batch_id}", response=BatchOut, summary="A batch's progress")
def batch_get(request, batch_id: int):
    require(request, ApiScope.GENERATION_WRITE, VIEW_BATCH)
    return _batch_out(request, get_object_or_404(GenerationBatch, pk=batch_id))

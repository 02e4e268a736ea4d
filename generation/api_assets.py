"""/api/v1/assets: generated images for a token with `assets:read` (list with the review
queue's filters, get, and the image files themselves), and decisions on them for a token with
`assets:decide`, through the same review services as the admin's buttons.

Private media answers only a staff login, so an unpublished image is sent here, over the
token; a published one is named by its stable public URL.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema

from core.api.auth import require
from core.api.pages import page
from core.api.problems import ApiProblem
from core.ids import MAX_ID
from core.media import stored_file
from core.models import ApiScope
from generation.models import (
    REVIEW_TEXT_MAX_LENGTH,
    AssetReference,
    AssetStatus,
    GeneratedAsset,
    QAStatus,
)
from generation.review import (
    PUBLISH,
    REVIEW,
    ReviewError,
    asset_approve,
    asset_publish,
    asset_regenerate,
    asset_reject,
    asset_unpublish,
)
from generation.views import published_url

router = Router(tags=["assets"])

VIEW = "generation.view_generatedasset"


class QACheck(Schema):
    name: str
    passed: bool | None = None
    score: float | None = None
    note: str = ""


class ReferenceOut(Schema):
    rank: int
    kind: AssetReference.Kind = Field(
        description="`bestseller` (a bestseller's photo) or `proven` (a published image of the "
        "same channel preset whose CTR beat the preset's average)."
    )
    sku: str = Field(description="The bestseller, or the product the proven image shows.")
    source_asset: int | None = Field(
        description="The proven image's id; null for a bestseller photo or once deleted."
    )
    weight: float = Field(
        description="How closely the models were told to follow it: a proven image's CTR "
        "(its 95 % interval's lower end) over its preset's average; 1 for a bestseller photo."
    )

    @staticmethod
    def resolve_sku(reference: AssetReference) -> str:
        return reference.product.sku

    @staticmethod
    def resolve_source_asset(reference: AssetReference) -> int | None:
        return reference.source_asset_id


class AssetOut(Schema):
    id: int
    status: AssetStatus
    qa_status: QAStatus | None = Field(description="The automatic check's verdict, if any.")
    qa_checks: list[QACheck]
    qa_note: str
    sku: str
    product_name: str
    preset: str
    batch: int
    version: int
    variant: int
    cost: Decimal
    width: int | None
    height: int | None
    offline: bool = Field(description="An offline preview, composed by code, not a model.")
    rejection_reason: str
    published_url: str | None = Field(description="The stable public URL, when published.")
    image_url: str | None = Field(description="The image over this API (needs `assets:read`).")
    preview_url: str | None = Field(description="A smaller copy over this API, if made.")
    references: list[ReferenceOut] = Field(
        description="The style references it was made from, in the order they were sent."
    )
    retrieval_note: str = Field(
        description="What to know about the references: a wider search, a lowered sales "
        "threshold, proven images among them; empty when they are as asked."
    )
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_qa_status(asset: GeneratedAsset) -> str | None:
        return asset.qa_status or None

    @staticmethod
    def resolve_sku(asset: GeneratedAsset) -> str:
        return asset.product.sku

    @staticmethod
    def resolve_product_name(asset: GeneratedAsset) -> str:
        return asset.product.name

    @staticmethod
    def resolve_preset(asset: GeneratedAsset) -> str:
        return asset.preset.name

    @staticmethod
    def resolve_batch(asset: GeneratedAsset) -> int:
        return asset.batch_id

    @staticmethod
    def resolve_published_url(asset: GeneratedAsset, context) -> str | None:
        if not asset.published_image:
            return None
        return published_url(asset, context["request"])

    @staticmethod
    def resolve_image_url(asset: GeneratedAsset, context) -> str | None:
        return _file_url(asset, "image", context)

    @staticmethod
    def resolve_preview_url(asset: GeneratedAsset, context) -> str | None:
        return _file_url(asset, "preview", context)


def _file_url(asset: GeneratedAsset, rendition: str, context) -> str | None:
    if not getattr(asset, rendition):
        return None
    return context["request"].build_absolute_uri(f"/api/v1/assets/{asset.pk}/{rendition}")


class AssetPage(Schema):
    items: list[AssetOut]
    next: str | None = Field(description="The next page's address; null on the last page.")


class AssetFilters(Schema):
    status: AssetStatus | None = None
    qa: QAStatus | None = Field(None, description="The automatic check's verdict.")
    preset: str | None = Field(None, description="A channel preset's name.")
    sku: str | None = Field(None, description="The product's SKU.")
    batch: int | None = Field(None, ge=1, le=MAX_ID)
    updated_since: datetime | None = Field(None, description="Changed at or after this time.")
    cursor: str | None = Field(None, description="From the previous page's `next`.")
    limit: int = Field(50, ge=1, le=settings.API_PAGE_SIZE_MAX)


def _assets():
    references = AssetReference.objects.select_related("product")
    return GeneratedAsset.objects.select_related("product", "preset").prefetch_related(
        Prefetch("references", queryset=references)
    )


@router.get("", response=AssetPage, summary="List images")
def assets_list(request, filters: Query[AssetFilters]):
    """Generated images in id order (oldest first), filtered as the review queue is; follow
    `next` for more, or poll with `updated_since` for what changed."""
    require(request, ApiScope.ASSETS_READ, VIEW)
    assets = _assets()
    for name, lookup in (
        ("status", "status"),
        ("qa", "qa_status"),
        ("preset", "preset__name"),
        ("sku", "product__sku"),
        ("batch", "batch_id"),
    ):
        if (value := getattr(filters, name)) is not None:
            assets = assets.filter(**{lookup: value})
    if filters.updated_since is not None:
        assets = assets.filter(updated_at__gte=filters.updated_since)
    rows, next_url = page(request, assets, key="id", limit=filters.limit, cursor=filters.cursor)
    return {"items": rows, "next": next_url}


@router.get("/{int:asset_id}", response=AssetOut, summary="Get an image")
def asset_get(request, asset_id: int):
    require(request, ApiScope.ASSETS_READ, VIEW)
    return get_object_or_404(_assets(), pk=asset_id)


def _file(request, asset_id: int, rendition: str):
    require(request, ApiScope.ASSETS_READ, VIEW)
    stored = getattr(get_object_or_404(GeneratedAsset, pk=asset_id), rendition)
    if not stored:
        raise ApiProblem(404, f"Image {asset_id} has no {rendition} file (yet).")
    response = stored_file(stored.name)
    response["Cache-Control"] = "private, max-age=300"
    return response


@router.get("/{int:asset_id}/image", summary="Download the image")
def asset_image(request, asset_id: int):
    """The image file itself, published or not (a private file needs this token)."""
    return _file(request, asset_id, "image")


@router.get("/{int:asset_id}/preview", summary="Download a smaller copy")
def asset_preview(request, asset_id: int):
    """The review preview (at most 1280 px on its longest side)."""
    return _file(request, asset_id, "preview")


# --- decisions ---------------------------------------------------------------------------


class NoteIn(Schema):
    note: str = Field("", max_length=REVIEW_TEXT_MAX_LENGTH)


class ReasonIn(Schema):
    reason: str = Field(
        min_length=1,
        max_length=REVIEW_TEXT_MAX_LENGTH,
        description="Why; mailed to whoever asked for it.",
    )


class FeedbackIn(Schema):
    feedback: str = Field(
        min_length=1,
        max_length=REVIEW_TEXT_MAX_LENGTH,
        description="What should change; goes into the prompt.",
    )


def _decide(request, asset_id: int, permission: str, decision: str, text: str, service):
    """Run one review service as the token's owner: its permission and four-eyes rule hold as
    in the admin; the decision is logged under the token's name."""
    token = require(request, ApiScope.ASSETS_DECIDE, VIEW, permission)
    asset = get_object_or_404(GeneratedAsset, pk=asset_id)
    try:
        result = service(asset=asset, user=token.owner)
    except ReviewError as exc:
        raise ApiProblem(409, str(exc), "review-conflict") from None
    except PermissionDenied as exc:
        raise ApiProblem(403, str(exc), "missing-permission") from None
    message = f"{decision}: {text}" if text else decision
    LogEntry.objects.log_actions(
        token.owner.pk,
        [asset],
        CHANGE,
        change_message=f"{message} (via API token “{token.name}”)",
        single_object=True,
    )
    return _assets().get(pk=result.pk)


@router.post("/{int:asset_id}/approve", response=AssetOut, summary="Approve")
def asset_approve_api(request, asset_id: int, payload: NoteIn | None = None):
    """Approve an image in review; its sibling variants are set aside. Refused (409) for the
    requester of the batch when the four-eyes rule is on."""
    note = payload.note.strip() if payload else ""
    return _decide(
        request,
        asset_id,
        REVIEW,
        "Approve",
        note,
        lambda *, asset, user: asset_approve(asset=asset, user=user, note=note),
    )


@router.post("/{int:asset_id}/reject", response=AssetOut, summary="Reject")
def asset_reject_api(request, asset_id: int, payload: ReasonIn):
    return _decide(
        request,
        asset_id,
        REVIEW,
        "Reject",
        payload.reason,
        lambda *, asset, user: asset_reject(asset=asset, user=user, reason=payload.reason),
    )


@router.post("/{int:asset_id}/regenerate", response=AssetOut, summary="Regenerate")
def asset_regenerate_api(request, asset_id: int, payload: FeedbackIn):
    """A new version with this feedback; answers the new version (its `id` to follow)."""
    return _decide(
        request,
        asset_id,
        REVIEW,
        "Regenerate",
        payload.feedback,
        lambda *, asset, user: asset_regenerate(asset=asset, user=user, feedback=payload.feedback),
    )


@router.post("/{int:asset_id}/publish", response=AssetOut, summary="Publish")
def asset_publish_api(request, asset_id: int):
    return _decide(request, asset_id, PUBLISH, "Publish", "", asset_publish)


@router.post("/{int:asset_id}/unpublish", response=AssetOut, summary="Unpublish")
def asset_unpublish_api(request, asset_id: int):
    return _decide(request, asset_id, PUBLISH, "Unpublish", "", asset_unpublish)

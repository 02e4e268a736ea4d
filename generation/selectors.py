"""Reads for review and publishing."""

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from core.ids import id_parse
from generation.models import AssetStatus, GeneratedAsset, GenerationBatch, QAStatus


def published_assets() -> QuerySet[GeneratedAsset]:
    return (
        GeneratedAsset.objects.filter(status=AssetStatus.PUBLISHED)
        .select_related("product", "preset")
        .order_by("product__sku", "preset__name")
    )


def review_queue() -> QuerySet[GeneratedAsset]:
    """Images waiting for a decision, oldest first."""
    return GeneratedAsset.objects.filter(status=AssetStatus.IN_REVIEW).order_by("created_at", "pk")


def reviewers() -> QuerySet:
    """Active staff who may approve and reject images: by their own permission, a group's
    (the Reviewer role), or as superusers."""
    return (
        get_user_model()
        .objects.filter(
            Q(is_superuser=True)
            | Q(
                user_permissions__codename="review_asset",
                user_permissions__content_type__app_label="generation",
            )
            | Q(
                groups__permissions__codename="review_asset",
                groups__permissions__content_type__app_label="generation",
            ),
            is_active=True,
            is_staff=True,
        )
        .distinct()
        .order_by("username")
    )


def running_batches() -> QuerySet[GenerationBatch]:
    """Batches with at least one image the pipeline has yet to finish."""
    running = GeneratedAsset.objects.filter(status__in=AssetStatus.running()).values("batch_id")
    return GenerationBatch.objects.filter(pk__in=running)


def next_in_queue(after: GeneratedAsset) -> GeneratedAsset | None:
    """The next image to review after this one (wrapping to the oldest)."""
    queue = review_queue().exclude(pk=after.pk)
    later = Q(created_at__gt=after.created_at) | Q(created_at=after.created_at, pk__gt=after.pk)
    return queue.filter(later).first() or queue.first()


def review_gallery(
    *, status: str = "", batch: str = "", preset: str = "", product: str = "", qa: str = ""
) -> QuerySet[GeneratedAsset]:
    """The gallery's images: in review unless another status is asked for, oldest first,
    narrowed to a batch, a preset, a product (part of its sku or name) and a QA verdict when
    given."""
    assets = (
        GeneratedAsset.objects.select_related("product", "preset", "batch")
        .filter(status=status or AssetStatus.IN_REVIEW)
        .order_by("created_at", "pk")
    )
    if (batch_id := id_parse(batch)) is not None:
        assets = assets.filter(batch_id=batch_id)
    if (preset_id := id_parse(preset)) is not None:
        assets = assets.filter(preset_id=preset_id)
    if product:
        assets = assets.filter(
            Q(product__sku__icontains=product) | Q(product__name__icontains=product)
        )
    if qa in QAStatus.values:
        assets = assets.filter(qa_status=qa)
    return assets

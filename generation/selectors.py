"""Reads for review and publishing."""

from django.db.models import Q, QuerySet

from generation.models import AssetStatus, GeneratedAsset


def published_assets() -> QuerySet[GeneratedAsset]:
    return (GeneratedAsset.objects.filter(status=AssetStatus.PUBLISHED)
            .select_related("product", "preset").order_by("product__sku", "preset__name"))


def review_queue() -> QuerySet[GeneratedAsset]:
    """Images waiting for a decision, oldest first."""
    return GeneratedAsset.objects.filter(status=AssetStatus.IN_REVIEW).order_by("created_at", "pk")


def next_in_queue(after: GeneratedAsset) -> GeneratedAsset | None:
    """The next image to review after this one (wrapping to the oldest)."""
    queue = review_queue().exclude(pk=after.pk)
    later = Q(created_at__gt=after.created_at) | Q(created_at=after.created_at, pk__gt=after.pk)
    return queue.filter(later).first() or queue.first()

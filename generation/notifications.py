"""Telling people what happened to their images: the requester hears of every rejection."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail

from generation.models import GeneratedAsset


def rejection_notify(*, asset_id: int) -> bool:
    """Mail the batch's requester that an image was rejected, and why. False when there is
    nobody to tell (a batch from the shell, a requester without an email address)."""
    asset = (
        GeneratedAsset.objects.select_related(
            "batch__requested_by", "product", "preset", "reviewed_by"
        )
        .filter(pk=asset_id)
        .first()
    )
    requester = asset.batch.requested_by if asset else None
    if requester is None or not requester.email or not asset.rejection_reason:
        return False
    reviewer = asset.reviewed_by.get_username() if asset.reviewed_by else "a reviewer"
    link = f"{settings.SITE_URL}/admin/generation/generatedasset/{asset.pk}/change/"
    send_mail(
        subject=f"Rejected: {asset.product.sku} for {asset.preset.name} (v{asset.version})",
        message=(
            f"{reviewer} rejected version {asset.version} of the {asset.preset.name} image "
            f"for {asset.product.sku} (batch {asset.batch_id}).\n\n"
            f"Reason: {asset.rejection_reason}\n\n{link}\n"
        ),
        from_email=None,
        recipient_list=[requester.email],
    )
    return True

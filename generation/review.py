"""Review and publishing: what reviewers do with generated images.

Every function checks the acting user's permission itself, so the rules hold on every path
(admin pages, bulk actions, commands), and logs the status change on the asset.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from catalog.services import product_set_published
from core.queue import enqueue_after_commit
from generation.models import REVIEW_TEXT_MAX_LENGTH, AssetStatus, GeneratedAsset, Lane
from generation.provenance import with_provenance, xmp_packet
from generation.services import asset_next_version, asset_send
from generation.tasks import notify_rejection
from generation.transitions import asset_transition

REVIEW = "generation.review_asset"
PUBLISH = "generation.publish_asset"


class ReviewError(Exception):
    """The action does not apply to this asset now; the message says why."""


def _text_check(text: str, what: str) -> str:
    """A reviewer's text within REVIEW_TEXT_MAX_LENGTH: it is mailed, logged and put into a
    prompt, so a pasted file is refused with the limit named."""
    if "\x00" in text:  # PostgreSQL refuses it in text; nobody types it
        raise ReviewError(f"The {what} holds a NUL character; type it again.")
    if len(text) > REVIEW_TEXT_MAX_LENGTH:
        raise ReviewError(
            f"The {what} is {len(text):,} characters long; "
            f"keep it to {REVIEW_TEXT_MAX_LENGTH:,} characters."
        )
    return text


def _require(user, permission: str) -> None:
    if user is None or not user.has_perm(permission):
        raise PermissionDenied(
            f"{getattr(user, 'username', 'Anonymous')} lacks the {permission} permission."
        )


def _locked(asset: GeneratedAsset, *allowed: str) -> GeneratedAsset:
    locked = (
        GeneratedAsset.objects.select_for_update()
        .select_related("batch", "product", "preset")
        .get(pk=asset.pk)
    )
    if locked.status not in allowed:
        names = " or ".join(AssetStatus(s).label.lower() for s in allowed)
        raise ReviewError(
            f"{locked} is {locked.get_status_display().lower()}; only images {names} can do this."
        )
    return locked


def asset_approve(*, asset: GeneratedAsset, user, note: str = "") -> GeneratedAsset:
    _require(user, REVIEW)
    _text_check(note, "note")
    with transaction.atomic():
        asset = _locked(asset, AssetStatus.IN_REVIEW)
        if settings.REVIEW_FOUR_EYES and asset.batch.requested_by_id == user.pk:
            raise ReviewError(
                f"Four-eyes rule: {user.username} requested batch {asset.batch_id} "
                "and cannot approve its images."
            )
        asset_transition(
            asset,
            AssetStatus.APPROVED,
            user=user,
            note=note,
            reviewed_by=user,
            reviewed_at=timezone.now(),
        )
        # The other candidates of this version give way, in the same action.
        for sibling in GeneratedAsset.objects.filter(
            product=asset.product_id,
            preset=asset.preset_id,
            version=asset.version,
            status=AssetStatus.IN_REVIEW,
        ).exclude(pk=asset.pk):
            asset_transition(
                sibling,
                AssetStatus.SET_ASIDE,
                user=user,
                note=f"variant {asset.variant} was approved",
                reviewed_by=user,
                reviewed_at=timezone.now(),
            )
    return asset


def asset_reject(*, asset: GeneratedAsset, user, reason: str) -> GeneratedAsset:
    _require(user, REVIEW)
    reason = reason.strip()
    if not reason:
        raise ReviewError("A rejection needs a reason.")
    _text_check(reason, "reason")
    with transaction.atomic():
        asset = _locked(asset, AssetStatus.IN_REVIEW, AssetStatus.APPROVED)
        asset_transition(
            asset,
            AssetStatus.REJECTED,
            user=user,
            note=reason,
            rejection_reason=reason,
            reviewed_by=user,
            reviewed_at=timezone.now(),
        )
        enqueue_after_commit(notify_rejection, asset.pk)
    return asset


def asset_regenerate(*, asset: GeneratedAsset, user, feedback: str) -> GeneratedAsset:
    """A new version with the reviewer's feedback in its prompt; earlier versions are kept
    (generation.services.asset_next_version)."""
    _require(user, REVIEW)
    feedback = feedback.strip()
    if not feedback:
        raise ReviewError("Say what should change: the feedback goes into the new prompt.")
    _text_check(feedback, "feedback")
    with transaction.atomic():
        asset = _locked(asset, AssetStatus.IN_REVIEW, AssetStatus.REJECTED, AssetStatus.FAILED)
        new = asset_next_version(
            asset=asset,
            feedback=feedback,
            user=user,
            note=f"regenerated from v{asset.version}: {feedback}",
        )
        if asset.status == AssetStatus.IN_REVIEW:
            asset_transition(
                asset,
                AssetStatus.REJECTED,
                user=user,
                rejection_reason=feedback,
                note=f"Regenerated as v{new.version}: {feedback}",
                reviewed_by=user,
                reviewed_at=timezone.now(),
            )
            enqueue_after_commit(notify_rejection, asset.pk)
    return new


def asset_recheck(*, asset: GeneratedAsset, user) -> GeneratedAsset:
    """A new automatic quality check of the image in review (say, after the checker could not
    check, or a verdict the reviewer doubts): a paid call like the first, in the interactive
    lane, so a drop in progress never holds it up. The image stays as it is."""
    _require(user, REVIEW)
    with transaction.atomic():
        asset = _locked(asset, AssetStatus.IN_REVIEW)
        asset_transition(
            asset,
            AssetStatus.CHECKING,
            user=user,
            note="quality check asked again by a reviewer",
            lane=Lane.INTERACTIVE,
            qa_status="",
            qa_checks=[],
            qa_note="",
            last_error="",
        )
        asset_send(asset)
    return asset


def published_name(asset: GeneratedAsset, extension: str) -> str:
    """One stable name per product and channel: republishing replaces the file behind it."""
    return f"published/{asset.product.sku}/preset-{asset.preset_id}.{extension}"


def asset_publish(*, asset: GeneratedAsset, user) -> GeneratedAsset:
    _require(user, PUBLISH)
    with transaction.atomic():
        asset = _locked(asset, AssetStatus.APPROVED)
        with asset.image.open("rb") as handle:
            content = handle.read()
        if asset.offline and not settings.PUBLISH_OFFLINE_PREVIEWS:
            raise ReviewError(
                f"{asset} is an offline preview (made without a generative model); "
                "previews are published only when PUBLISH_OFFLINE_PREVIEWS is on."
            )
        xmp = xmp_packet(
            title=f"{asset.product.sku} · {asset.preset.name}",
            models=[asset.image_model, asset.analyst_model],
            created=asset.created_at.isoformat(),
            offline=asset.offline,
        )
        published, extension = with_provenance(content, xmp)
        # The channel's current image for this product gives way to the new one.
        for other in GeneratedAsset.objects.filter(
            product=asset.product, preset=asset.preset, status=AssetStatus.PUBLISHED
        ):
            asset_transition(
                other,
                AssetStatus.APPROVED,
                user=user,
                note=f"replaced by v{asset.version}",
                published_image="",
                published_at=None,
            )
        name = published_name(asset, extension)
        default_storage.delete(name)
        saved = default_storage.save(name, ContentFile(published))
        asset_transition(
            asset,
            AssetStatus.PUBLISHED,
            user=user,
            published_image=saved,
            published_at=timezone.now(),
        )
        product_set_published(product_id=asset.product_id, published=True)
    return asset


def asset_unpublish(*, asset: GeneratedAsset, user) -> GeneratedAsset:
    _require(user, PUBLISH)
    with transaction.atomic():
        asset = _locked(asset, AssetStatus.PUBLISHED)
        name = asset.published_image.name
        asset_transition(
            asset,
            AssetStatus.APPROVED,
            user=user,
            note="unpublished",
            published_image="",
            published_at=None,
        )
        if not GeneratedAsset.objects.filter(
            product=asset.product_id, status=AssetStatus.PUBLISHED
        ).exists():
            product_set_published(product_id=asset.product_id, published=False)
        transaction.on_commit(lambda: default_storage.delete(name))
    return asset

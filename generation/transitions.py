"""The life of a generated asset: which status may follow which, and the one function that
changes it. The pipeline, review, publishing and the sweepers all go through it.

    queued ─▶ retrieving ─▶ analysing ─▶ generating ─▶ checking ─▶ in review ─▶ approved ─▶ published
       │          │             │             │            │           │            │  ◀────────┘
       └──────────┴─────────────┴─────────────┴────────────┴─▶ failed  ├─▶ rejected ◀┘
                                                                       └─▶ set aside (another variant approved)

"checking" is the automatic quality check: a paid image always goes on to review from there,
with the check's verdict (or why it could not be checked); it fails only if deleted meanwhile.

A regenerated version starts queued with the retrieval and style of the one it replaces, so
queued may skip straight to analysing or generating. A reviewer may send an image in review
back to checking, for a new quality check of the same image (generation.review.asset_recheck).
"""

from __future__ import annotations

from django.db import transaction

from generation.events import asset_moved
from generation.models import AssetEvent, AssetStatus, GeneratedAsset

S = AssetStatus
TRANSITIONS: dict[str, frozenset[str]] = {
    S.QUEUED: frozenset({S.RETRIEVING, S.ANALYSING, S.GENERATING, S.FAILED}),
    S.RETRIEVING: frozenset({S.ANALYSING, S.FAILED}),
    S.ANALYSING: frozenset({S.GENERATING, S.FAILED}),
    S.GENERATING: frozenset({S.CHECKING, S.FAILED}),
    S.CHECKING: frozenset({S.IN_REVIEW, S.FAILED}),
    S.IN_REVIEW: frozenset({S.APPROVED, S.REJECTED, S.SET_ASIDE, S.CHECKING}),
    S.APPROVED: frozenset({S.PUBLISHED, S.REJECTED}),
    S.PUBLISHED: frozenset({S.APPROVED}),
    S.REJECTED: frozenset(),
    S.FAILED: frozenset(),
    S.SET_ASIDE: frozenset(),
}


class IllegalTransition(Exception):
    """The asset's current status does not allow the requested one."""


def asset_transition(
    asset: GeneratedAsset, status: str, worker: str = "", note: str = "", user=None, **fields
) -> GeneratedAsset:
    """Move the asset to `status`, saving `fields` with it, and log the change.

    The row is locked and read again first, so the check sees the status as it is now, and
    only the status and the given fields are written (a stale copy overwrites nothing else).
    Raises IllegalTransition when the table above does not allow the move. The caller's
    object gets the new values too. `events.asset_moved` tells listeners (webhooks) in the same
    transaction.
    """
    with transaction.atomic():
        current = (
            GeneratedAsset.objects.select_for_update()
            .filter(pk=asset.pk)
            .values_list("status", flat=True)
            .first()
        )
        if current is None:
            raise IllegalTransition(f"asset {asset.pk} no longer exists")
        if status not in TRANSITIONS[current]:
            raise IllegalTransition(
                f"{asset} is {AssetStatus(current).label.lower()}; it cannot become "
                f"{AssetStatus(status).label.lower()}."
            )
        AssetEvent.objects.create(
            asset=asset, from_status=current, to_status=status, worker=worker, user=user, note=note
        )
        asset.status = status
        for name, value in fields.items():
            setattr(asset, name, value)
        asset.save(update_fields=["status", *fields, "updated_at"])
        asset_moved.send(GeneratedAsset, asset=asset, from_status=current, to_status=status)
    return asset

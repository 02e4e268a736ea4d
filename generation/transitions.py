"""Status changes of generated assets: every one logged on the asset."""

from __future__ import annotations

from django.db import transaction

from generation.models import AssetEvent, GeneratedAsset


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

"""Smaller copies of a generated image, made once when it is stored: a thumbnail for lists and
a preview for review pages. A 4K banner is never sent to a browser that shows it in a list."""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from generation.models import GeneratedAsset

SIZES = {"thumbnail": 320, "preview": 1280}  # longest side in px (twice what pages show)
JPEG_QUALITY = 80


def rendition_bytes(content: bytes, longest_side: int) -> bytes:
    image = Image.open(io.BytesIO(content))
    image.draft("RGB", (longest_side, longest_side))
    image = image.convert("RGB")
    image.thumbnail((longest_side, longest_side), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, progressive=True)
    return buffer.getvalue()


def renditions_make(asset: GeneratedAsset, content: bytes) -> dict[str, str]:
    """Store the asset's renditions of `content`; returns {field: stored name} (not saved)."""
    stem = (
        asset.image.name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        if asset.image
        else f"asset-{asset.pk}"
    )
    names = {}
    for field, side in SIZES.items():
        name = f"promos/renditions/{stem}-{field}.jpg"
        default_storage.delete(name)
        names[field] = default_storage.save(name, ContentFile(rendition_bytes(content, side)))
    return names

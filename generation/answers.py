"""Paid image answers, kept the moment they arrive, before anything can reject or lose them.

The bytes and what the provider said about them (cost, usage, prompt, text) are written under
a deterministic name per asset and step ("image", or "scene" for a staged preset's first
stage), the bytes first and the description last: a description that exists means a complete
answer. A redelivered task finds it, books it (once, by its key) and
finishes it instead of paying the model again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from generation.models import GeneratedAsset


@dataclass
class ImageAnswer:
    content: bytes
    prompt: str
    model: str
    text: str = ""
    offline: bool = False
    key: str = ""  # the ledger key it was (or is to be) booked under; "" for offline answers
    cost: str | None = None  # usage.cost as the provider said it, None when it did not
    price: str = "0"  # the price table's figure, booked when the provider said no cost
    usage: dict = field(default_factory=dict)

    @classmethod
    def of(cls, result, **billing) -> ImageAnswer:
        """A provider's GeneratedImage as an answer; `billing` adds key, cost, price, usage."""
        return cls(
            content=result.content,
            prompt=result.prompt,
            model=result.model,
            text=result.text,
            offline=result.offline,
            **billing,
        )

    @property
    def cost_decimal(self) -> Decimal | None:
        return None if self.cost is None else Decimal(self.cost)


def _names(asset: GeneratedAsset, step: str) -> tuple[str, str]:
    folder = f"answers/asset-{asset.pk}"
    return f"{folder}/{step}.bin", f"{folder}/{step}.json"


def answer_keep(asset: GeneratedAsset, answer: ImageAnswer, step: str = "image") -> None:
    """Write the answer under the asset's deterministic names (replacing an older one)."""
    content_name, meta_name = _names(asset, step)
    meta = {name: value for name, value in asdict(answer).items() if name != "content"}
    for name, data in ((content_name, answer.content), (meta_name, json.dumps(meta).encode())):
        default_storage.delete(name)
        default_storage.save(name, ContentFile(data))


def answer_load(asset: GeneratedAsset, step: str = "image") -> ImageAnswer | None:
    """The kept answer of an earlier delivery, or None when there is no complete one."""
    content_name, meta_name = _names(asset, step)
    if not default_storage.exists(meta_name):
        return None
    with default_storage.open(meta_name, "rb") as handle:
        meta = json.loads(handle.read())
    with default_storage.open(content_name, "rb") as handle:
        return ImageAnswer(content=handle.read(), **meta)


def answer_discard(asset: GeneratedAsset, step: str = "image") -> None:
    for name in _names(asset, step):
        default_storage.delete(name)

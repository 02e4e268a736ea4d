"""The OpenRouter embedder: a multimodal embedding model through the one OpenRouter client."""

from __future__ import annotations

import base64
import io
import re
import uuid
import zlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings

from catalog.embedders.base import Embedder, read_image, unit
from core import openrouter
from core.models import ProviderCall
from core.openrouter import ProviderError
from core.queue import worker_name
from core.spending import paid_call


class OpenRouterEmbedder(Embedder):
    """A multimodal embedding model (settings.EMBEDDING_MODEL) through OpenRouter's /embeddings.

    Images are sent as JPEG data URIs, EMBEDDING_BATCH_SIZE per request, with
    `client.embeddings.create`. Each request is a paid call (core.spending): reserved at
    EMBEDDING_PRICE_PER_IMAGE per image (0 for a ":free" model) and booked with usage.cost.
    Failures are ProviderErrors; who retries them is written in core.openrouter.
    """

    is_offline = False
    MAX_SIDE, JPEG_QUALITY = 512, 85  # what the model was evaluated with in the seed article

    def __init__(self) -> None:
        self.model: str = settings.EMBEDDING_MODEL
        self.dimension = int(settings.EMBEDDING_DIMENSION)
        self.name = _space_name(self.model, self.dimension)
        self.batch_size = max(1, int(settings.EMBEDDING_BATCH_SIZE))
        free = self.model.endswith(":free")
        self.price_per_image = Decimal("0") if free else Decimal(settings.EMBEDDING_PRICE_PER_IMAGE)

    def embed_images(self, images: Sequence[bytes]) -> list[np.ndarray]:
        uris = [self._data_uri(data, i) for i, data in enumerate(images)]
        vectors: list[np.ndarray] = []
        for start in range(0, len(uris), self.batch_size):
            vectors += self._embed_batch(uris[start : start + self.batch_size])
        return vectors

    def _data_uri(self, data: bytes, index: int) -> str:
        buffer = io.BytesIO()
        read_image(data, index, max_side=self.MAX_SIDE).save(
            buffer, "JPEG", quality=self.JPEG_QUALITY
        )
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

    def _embed_batch(self, uris: list[str]) -> list[np.ndarray]:
        with paid_call(
            kind=ProviderCall.Kind.EMBEDDING,
            model=self.model,
            subject=f"embedder:{self.name}",
            key=f"embedding:{uuid.uuid4().hex}",
            worst_case=self.price_per_image * len(uris),
            owner=worker_name(),
        ) as book:
            # The SDK asks for base64 unless told otherwise; the gateway is asked for floats.
            response = openrouter.request(
                openrouter.client().embeddings.create,
                model=self.model,
                encoding_format="float",
                input=[
                    {"content": [{"type": "image_url", "image_url": {"url": uri}}]} for uri in uris
                ],
            )
            try:
                vectors = self._vectors(_plain(response), len(uris))
            except ProviderError as exc:
                raise exc.billed_by(response) from None
            usage = openrouter.usage_of(response)
            book(cost=openrouter.cost_of(usage), usage=usage)
        return vectors

    def _vectors(self, body: Any, count: int) -> list[np.ndarray]:
        """Unit vectors in input order from a response body, after checking every item."""

        def unusable(reason: str) -> ProviderError:
            return ProviderError(
                f"OpenRouter returned an unusable embeddings response: {reason}",
                retryable=False,
                status=200,
            )

        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(data, list):
            raise unusable(
                "the body is not JSON" if not isinstance(body, dict) else "it has no 'data' list"
            )
        if len(data) != count:
            raise unusable(f"{len(data)} embeddings for {count} images")
        vectors: dict[int, np.ndarray] = {}
        for item in data:
            index = item.get("index") if isinstance(item, dict) else None
            if type(index) is not int or not 0 <= index < count or index in vectors:
                raise unusable(f"missing, out-of-range or repeated index {index!r}")
            values = item.get("embedding")
            if not isinstance(values, list) or not all(type(v) in (int, float) for v in values):
                raise unusable(f"embedding {index} is not a list of numbers")
            if len(values) != self.dimension:
                raise unusable(
                    f"embedding {index} has {len(values)} dimensions where "
                    f"EMBEDDING_DIMENSION is {self.dimension}"
                )
            vector = np.asarray(values, dtype=np.float32)
            if not np.isfinite(vector).all() or not vector.any():
                raise unusable(f"embedding {index} is all zeros or not finite")
            vectors[index] = unit(vector)
        return [vectors[i] for i in range(count)]


def _plain(response: Any) -> Any:
    """The answer as plain JSON values: the SDK builds its models without validating them, so
    a malformed answer is checked field by field here rather than trusted."""
    if hasattr(response, "model_dump"):
        return response.model_dump(mode="json", exclude_unset=True, warnings=False)
    return response


def _space_name(model: str, dimension: int) -> str:
    """openrouter_<model slug>_<dimension>, at most 60 characters and unique per model."""
    slug, suffix = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_"), f"_{dimension}"
    room = 60 - len("openrouter_") - len(suffix)
    if len(slug) > room:  # a checksum keeps two long model ids that share a prefix apart
        slug = f"{slug[: room - 9]}_{zlib.crc32(model.encode()):08x}"
    return f"openrouter_{slug}{suffix}"

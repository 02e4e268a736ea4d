"""Image embedders: product photo bytes in, unit-length dense vectors out.

The backend is chosen by `settings.EMBEDDER_BACKEND` (a dotted path, like `EMAIL_BACKEND`) and
obtained with `get_embedder()`. `OfflineEmbedder` computes a colour-and-shape descriptor locally;
`OpenRouterEmbedder` calls a multimodal embedding model through OpenRouter's `/embeddings`.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import re
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import requests
from django.conf import settings
from django.utils.module_loading import import_string
from PIL import Image, ImageOps

# Every setting an embedder reads in __init__: a change to any of them yields a new instance.
_EMBEDDER_SETTINGS = (
    "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "OPENROUTER_SITE_URL", "OPENROUTER_APP_TITLE",
    "OPENROUTER_TIMEOUT", "OPENROUTER_MAX_ATTEMPTS", "OPENROUTER_MAX_RETRY_AFTER",
    "EMBEDDING_MODEL", "EMBEDDING_DIMENSION", "EMBEDDING_BATCH_SIZE",
)


class EmbeddingError(Exception):
    """Embedding failed; the message is for a person and quotes what the provider said.

    `retryable` is True when the failure was transient (rate limit, server error, timeout,
    lost connection) and only the attempts ran out, so a later try may succeed; False when
    retrying the same request cannot help (bad request, credentials, credits, bad response).
    """

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status  # the provider's HTTP status, when it answered
        self.retry_after = retry_after  # seconds the provider asked us to wait, if it said


class Embedder:
    """Turns product photos into vectors that are compared by cosine similarity.

    Subclasses set:
      name        stable id of the vector space: a cache key and part of Milvus collection
                  names, so lowercase letters, digits and underscores only. Vectors from
                  embedders with different names must never be compared.
      dimension   length of every vector.
      is_offline  True when no network or paid service is involved (results are previews).
    and implement `embed_images`. Instances are built without arguments from settings and
    may be shared between threads.
    """

    name: str = ""
    dimension: int = 0
    is_offline: bool = False

    def embed_images(self, images: Sequence[bytes]) -> list[np.ndarray]:
        """One float32 vector of length `dimension` with L2 norm 1 per image, in input order.

        `images` are encoded image files (JPEG, PNG or WebP). Raises EmbeddingError.
        """
        raise NotImplementedError


def get_embedder() -> Embedder:
    """The embedder named by settings.EMBEDDER_BACKEND, shared until its settings change."""
    values = (repr(getattr(settings, name, None)) for name in _EMBEDDER_SETTINGS)
    return _embedder_for((settings.EMBEDDER_BACKEND, *values))


@functools.lru_cache(maxsize=8)
def _embedder_for(key: tuple[str, ...]) -> Embedder:
    return import_string(key[0])()


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def open_image(data: bytes, index: int, *, max_side: int) -> Image.Image:
    """An RGB image no larger than max_side; transparency becomes white, like a studio sweep."""
    try:
        image = Image.open(io.BytesIO(data))
        # JPEG decodes straight to a 1/2..1/8 scale: several times faster than full size.
        image.draft("RGB", (max_side, max_side))
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "PA", "P"):
            rgba = image.convert("RGBA")
            image = Image.new("RGB", rgba.size, "white")
            image.paste(rgba, mask=rgba.getchannel("A"))
        image = image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise EmbeddingError(f"image {index + 1} cannot be read: {exc}", retryable=False) from None
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # shrinks, never enlarges
    return image


# --------------------------------------------------------------------------- offline

class OfflineEmbedder(Embedder):
    """A hand-made descriptor of a product photo on a plain background; no network.

    Blocks, each L2-normalised and weighted, so the cosine of two descriptors is a weighted
    mean of the blocks' cosines: the colours of the garment (HSV histogram), its silhouette,
    where its colours sit (4×4 mean colours) and the direction of its edges (pattern, folds).
    Geometry is measured in the garment's bounding box, so framing and image size drop out.
    """

    name = "offline_v1"  # bump on any change to the descriptor: cached vectors are keyed by it
    dimension = 256
    is_offline = True

    WORK_SIDE = 128  # the descriptor is coarse: a 128 px image holds all it needs
    BOX = (32, 40)  # garment box resampled to this size (4:5, a flat-lay's usual shape)
    WEIGHTS = {"colour": 1.0, "silhouette": 1.0, "layout": 0.7, "edges": 0.5}

    def embed_images(self, images: Sequence[bytes]) -> list[np.ndarray]:
        return [self.describe(open_image(data, i, max_side=self.WORK_SIDE))
                for i, data in enumerate(images)]

    def describe(self, image: Image.Image) -> np.ndarray:
        """The unit vector of a decoded RGB image (kept small: the cost grows with its area)."""
        rgb = np.asarray(image, dtype=np.float32) / 255
        mask = _foreground(rgb)
        if mask.mean() < 0.01:  # nothing stands out from the background: describe it all
            mask = np.ones_like(mask)
        box = _garment_box(mask)
        crop_rgb = _resample(rgb, box, self.BOX)
        crop_mask = _resample(mask, box, self.BOX)
        blocks = {
            "colour": _colour_histogram(image, rgb, mask),
            "silhouette": _pool(crop_mask, (10, 8)) - 0.5,
            "layout": _colour_layout(crop_rgb, crop_mask),
            "edges": _edge_histogram(crop_rgb, crop_mask),
        }
        vector = np.concatenate([self.WEIGHTS[k] * _unit(v.ravel()) for k, v in blocks.items()])
        # Zero padding keeps the dimension fixed if a block changes size in a later version.
        return _unit(np.pad(vector, (0, self.dimension - vector.size)))


def _foreground(rgb: np.ndarray) -> np.ndarray:
    """Soft mask (0..1) of what differs from the background colour, holes filled."""
    border = np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3),
                             rgb[:, :2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)])
    difference = np.abs(rgb - np.median(border, axis=0)).max(axis=2)
    # A ramp instead of a cut-off: table texture and JPEG noise stay below 0.04, and pixels
    # near the threshold move the mask a little rather than flipping it.
    soft = np.clip((difference - 0.04) / 0.08, 0, 1)
    # Pale cloth on a pale table shows only its seams and hem: a pixel enclosed by garment in
    # all four directions belongs to the garment.
    solid = soft > 0.5
    below, above = np.maximum.accumulate(solid, 0), np.maximum.accumulate(solid[::-1], 0)[::-1]
    right, left = np.maximum.accumulate(solid, 1), np.maximum.accumulate(solid[:, ::-1], 1)[:, ::-1]
    enclosed = below & above & right & left
    return np.maximum(soft, enclosed)


def _garment_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the box holding 99 % of the mask, widened to 4:5."""
    def span(profile: np.ndarray) -> tuple[float, float]:  # stray specks don't stretch the box
        cumulative = np.cumsum(profile) / profile.sum()
        first, last = np.searchsorted(cumulative, [0.005, 0.995])
        return float(first), float(last + 1)

    (left, right), (top, bottom) = span(mask.sum(0)), span(mask.sum(1))
    width, height = max(right - left, (bottom - top) * 0.8), max(bottom - top, (right - left) / 0.8)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    return cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2


def _resample(array: np.ndarray, box: tuple[float, float, float, float],
              size: tuple[int, int]) -> np.ndarray:
    """`array` (H×W or H×W×3, 0..1) inside `box` resampled to `size`; outside the image is 0."""
    whole = tuple(round(v) for v in box)
    channels = [array] if array.ndim == 2 else [array[..., c] for c in range(array.shape[2])]
    # crop() pads with zeros where the box leaves the image; resize(box=...) would refuse.
    out = [np.asarray(Image.fromarray(c).crop(whole).resize(size, Image.Resampling.BOX))
           for c in channels]
    return out[0] if array.ndim == 2 else np.stack(out, axis=-1)


def _pool(array: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Mean over a rows×cols grid of equal cells (the array's sides are multiples of it)."""
    rows, cols = grid
    h, w = array.shape[:2]
    return array.reshape(rows, h // rows, cols, w // cols, *array.shape[2:]).mean(axis=(1, 3))


def _histogram(weights: np.ndarray, *axes: tuple[np.ndarray, int, bool]) -> np.ndarray:
    """Weighted histogram over (values in 0..1, bins, circular) axes, each value shared
    linearly between its two nearest bins so a small shift moves mass gradually."""
    corners, size = [(np.zeros(weights.shape, dtype=int), weights)], 1
    for values, bins, circular in axes:
        position = values * bins if circular else np.clip(values * bins - 0.5, 0, bins - 1)
        low = np.floor(position)
        share, low = position - low, low.astype(int) % bins
        high = (low + 1) % bins if circular else np.minimum(low + 1, bins - 1)
        corners = [(index * bins + b, w * part) for index, w in corners
                   for b, part in ((low, 1 - share), (high, share))]
        size *= bins
    return sum(np.bincount(index.ravel(), w.ravel(), size) for index, w in corners)


def _colour_histogram(image: Image.Image, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """12 hues × 4 brightness levels for coloured pixels, 8 grey levels for neutral ones.

    Hue is meaningless for greys, so each pixel's weight is split by its chroma; the
    square root (Hellinger) keeps one dominant colour from drowning the accents.
    """
    hue = np.asarray(image.convert("HSV"), dtype=np.float32)[..., 0] / 256
    value = rgb.max(axis=2)
    colourful = np.clip((value - rgb.min(axis=2)) / 0.2, 0, 1)  # chroma, saturating at 0.2
    histogram = np.concatenate([_histogram(colourful * mask, (hue, 12, True), (value, 4, False)),
                                _histogram((1 - colourful) * mask, (value, 8, False))])
    return np.sqrt(histogram / max(histogram.sum(), 1e-9))


def _colour_layout(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean garment colour of each cell of a 4×4 grid, as opponent colours, weighted by how
    much garment the cell holds (an empty cell says nothing about colour)."""
    coverage = _pool(mask, (4, 4))
    mean = _pool(rgb * mask[..., None], (4, 4)) / np.maximum(coverage, 1e-6)[..., None]
    r, g, b = mean[..., 0], mean[..., 1], mean[..., 2]
    opponent = np.stack([(r + g + b) / 3 - 0.5, r - g, (r + g) / 2 - b], axis=-1)
    return opponent * coverage[..., None]


def _edge_histogram(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Gradient directions (8 bins over 180°) in each quarter of the garment box."""
    grey = rgb.mean(axis=2)
    gy, gx = np.gradient(grey)
    magnitude = np.sqrt(np.hypot(gx, gy)) * np.minimum(1, mask * 2)  # background grain is noise
    angle = (np.arctan2(gy, gx) % np.pi) / np.pi
    ys, xs = np.indices(grey.shape) + 0.5
    return np.sqrt(_histogram(magnitude, (ys / grey.shape[0], 2, False),
                              (xs / grey.shape[1], 2, False), (angle, 8, True)))


# --------------------------------------------------------------------------- OpenRouter

TRANSIENT_STATUSES = {408, 429, *range(500, 600)}


class OpenRouterEmbedder(Embedder):
    """A multimodal embedding model (settings.EMBEDDING_MODEL) through OpenRouter's /embeddings.

    Images are sent as JPEG data URIs, EMBEDDING_BATCH_SIZE per request. Rate limits, server
    errors, timeouts and lost connections are retried with exponential backoff (Retry-After
    honoured up to OPENROUTER_MAX_RETRY_AFTER) for OPENROUTER_MAX_ATTEMPTS attempts in all.
    """

    is_offline = False
    MAX_SIDE, JPEG_QUALITY = 512, 85  # what the model was evaluated with in the seed article
    BACKOFF = 0.5  # seconds before the second attempt, doubled before each further one
    sleep: Callable[[float], None] = staticmethod(time.sleep)  # tests swap in a recorder

    def __init__(self) -> None:
        self.model: str = settings.EMBEDDING_MODEL
        self.dimension = int(settings.EMBEDDING_DIMENSION)
        self.name = _space_name(self.model, self.dimension)
        self.url = settings.OPENROUTER_BASE_URL.rstrip("/") + "/embeddings"
        self.headers = {"Authorization": f"Bearer {settings.OPENROUTER_API_KEY}",
                        "HTTP-Referer": settings.OPENROUTER_SITE_URL,
                        "X-Title": settings.OPENROUTER_APP_TITLE}
        self.batch_size = max(1, int(settings.EMBEDDING_BATCH_SIZE))
        self.timeout = settings.OPENROUTER_TIMEOUT
        self.max_attempts = max(1, int(settings.OPENROUTER_MAX_ATTEMPTS))
        self.max_retry_after = float(settings.OPENROUTER_MAX_RETRY_AFTER)
        self._local = threading.local()  # requests.Session is not promised to be thread-safe

    def embed_images(self, images: Sequence[bytes]) -> list[np.ndarray]:
        uris = [self._data_uri(data, i) for i, data in enumerate(images)]
        vectors: list[np.ndarray] = []
        for start in range(0, len(uris), self.batch_size):
            vectors += self._embed_batch(uris[start:start + self.batch_size])
        return vectors

    def _data_uri(self, data: bytes, index: int) -> str:
        buffer = io.BytesIO()
        open_image(data, index, max_side=self.MAX_SIDE).save(buffer, "JPEG", quality=self.JPEG_QUALITY)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")

    def _embed_batch(self, uris: list[str]) -> list[np.ndarray]:
        payload = {"model": self.model, "encoding_format": "float", "input": [
            {"content": [{"type": "image_url", "image_url": {"url": uri}}]} for uri in uris]}
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._vectors(self._post(payload), len(uris))
            except EmbeddingError as error:
                if not error.retryable:
                    raise
                failure = error
                if attempt < self.max_attempts:
                    wait = failure.retry_after
                    self.sleep(self.BACKOFF * 2 ** (attempt - 1) if wait is None else wait)
        raise EmbeddingError(f"{failure} (gave up after {self.max_attempts} attempts)",
                             retryable=True, status=failure.status, retry_after=failure.retry_after)

    def _post(self, payload: dict[str, Any]) -> Any:
        """The JSON body of a successful answer (None if it is not JSON), else an error."""
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        try:
            response = self._local.session.post(self.url, json=payload, headers=self.headers,
                                                timeout=self.timeout)
        except requests.Timeout:
            raise EmbeddingError(f"OpenRouter did not answer within {self.timeout} s",
                                 retryable=True) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise EmbeddingError(f"cannot reach OpenRouter at {self.url}: {exc}",
                                 retryable=True) from None
        except requests.RequestException as exc:
            raise EmbeddingError(f"OpenRouter request failed: {exc}", retryable=False) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if response.status_code != 200 or error is not None:
            raise self._provider_error(response, error)
        return body

    def _provider_error(self, response: requests.Response, error: Any) -> EmbeddingError:
        status = response.status_code
        details = error if isinstance(error, dict) else {}
        code, message = details.get("code"), details.get("message") or response.text[:300]
        metadata = details.get("metadata") if isinstance(details.get("metadata"), dict) else {}
        provider = metadata.get("provider_name")
        text = (f"OpenRouter answered HTTP {status}"
                + (f", error code {code}" if code and code != status else "")
                + f": {message or response.reason}"
                + (f" (provider {provider})" if provider else ""))
        # An error in a 200 body (the model had started) carries the real status as its code.
        effective = code if status == 200 and isinstance(code, int) else status
        if effective in TRANSIENT_STATUSES:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"), self.max_retry_after)
            return EmbeddingError(text, retryable=True, status=status, retry_after=retry_after)
        return EmbeddingError(text, retryable=False, status=status)

    def _vectors(self, body: Any, count: int) -> list[np.ndarray]:
        """Unit vectors in input order from a response body, after checking every item."""
        def unusable(reason: str) -> EmbeddingError:
            return EmbeddingError(f"OpenRouter returned an unusable embeddings response: {reason}",
                                  retryable=False)

        data = body.get("data") if isinstance(body, dict) else None
        if body is None or not isinstance(data, list):
            raise unusable("the body is not JSON" if body is None else "it has no 'data' list")
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
                raise unusable(f"embedding {index} has {len(values)} dimensions where "
                               f"EMBEDDING_DIMENSION is {self.dimension}")
            vector = np.asarray(values, dtype=np.float32)
            if not np.isfinite(vector).all() or not vector.any():
                raise unusable(f"embedding {index} is all zeros or not finite")
            vectors[index] = _unit(vector)
        return [vectors[i] for i in range(count)]


def _space_name(model: str, dimension: int) -> str:
    """openrouter_<model slug>_<dimension>, at most 60 characters and unique per model."""
    slug, suffix = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_"), f"_{dimension}"
    room = 60 - len("openrouter_") - len(suffix)
    if len(slug) > room:  # a checksum keeps two long model ids that share a prefix apart
        slug = f"{slug[:room - 9]}_{zlib.crc32(model.encode()):08x}"
    return f"openrouter_{slug}{suffix}"


def retry_after_seconds(value: str | None, cap: float) -> float | None:
    """Seconds to wait from a Retry-After header, capped; None when absent or not a number
    (OpenRouter sends seconds; an HTTP date falls back to the backoff)."""
    try:
        seconds = float(value or "")
    except ValueError:
        return None
    return min(max(seconds, 0.0), cap) if math.isfinite(seconds) else None

"""The offline embedder: a hand-made descriptor of a product photo, computed locally."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from catalog.embedders.base import Embedder, read_image, shrunk, unit
from core.images import foreground_mask, rgb_to_lab, skin_mask

HUE_BINS, VALUE_BINS, GREY_BINS = 12, 4, 8  # the colour histogram, the descriptor's first block
SKIN_KEEP = 0.4  # skin masking may remove at most 60 % of the foreground


class OfflineEmbedder(Embedder):
    """A hand-made descriptor of a product photo on a plain background; no network.

    Blocks, each L2-normalised and weighted, so the cosine of two descriptors is a weighted
    mean of the blocks' cosines: the colours of the garment (HSV histogram), its silhouette,
    where its colours sit (4×4 mean colours) and the direction of its edges (pattern, folds).
    Geometry is measured in the garment's bounding box, so framing and image size drop out.
    The first block carries the garment's median colour for `garment_colour`, at a weight
    too small to move a cosine.
    """

    name = "offline_v3"  # bump on any change to the descriptor: cached vectors are keyed by it
    dimension = 256
    is_offline = True
    measures_colour = True

    WORK_SIDE = 128  # the descriptor is coarse: a 128 px image holds all it needs
    BOX = (32, 40)  # garment box resampled to this size (4:5, a flat-lay's usual shape)
    WEIGHTS = {
        "garment": 0.05,
        "colour": 1.0,
        "silhouette": 1.0,
        "layout": 0.7,
        "edges": 0.5,
    }
    stream_side = WORK_SIDE

    def embed_images(self, images: Sequence[bytes]) -> list[np.ndarray]:
        return [
            self.describe(read_image(data, i, max_side=self.WORK_SIDE))
            for i, data in enumerate(images)
        ]

    def garment_colour(self, vector: np.ndarray) -> np.ndarray | None:
        """The median CIELAB colour of the garment, read back from the first block."""
        one, *lab = np.asarray(vector[:4], dtype=np.float64)
        return np.asarray(lab) * LAB_SCALE / one if one > 0 else None

    def embed_decoded(self, images: Sequence[Image.Image]) -> list[np.ndarray]:
        return [self.describe(shrunk(image, self.WORK_SIDE)) for image in images]

    def describe(self, image: Image.Image) -> np.ndarray:
        """The unit vector of a decoded RGB image (kept small: the cost grows with its area)."""
        rgb = np.asarray(image, dtype=np.float32) / 255
        mask = foreground_mask(rgb, fill="enclosed")
        if mask.mean() < 0.01:  # nothing stands out from the background: describe it all
            mask = np.ones_like(mask)
        box = _garment_box(mask)
        crop_rgb = _resample(rgb, box, self.BOX)
        crop_mask = _resample(mask, box, self.BOX)
        garment = _garment_colour_mask(rgb, mask)
        blocks = {
            "garment": _median_colour(rgb, garment, mask),
            "colour": _colour_histogram(image, rgb, garment),
            "silhouette": _pool(crop_mask, (10, 8)) - 0.5,
            "layout": _colour_layout(crop_rgb, crop_mask),
            "edges": _edge_histogram(crop_rgb, crop_mask),
        }
        vector = np.concatenate([self.WEIGHTS[k] * unit(v.ravel()) for k, v in blocks.items()])
        # Zero padding keeps the dimension fixed if a block changes size in a later version.
        return unit(np.pad(vector, (0, self.dimension - vector.size)))


LAB_SCALE = 100  # CIELAB values are stored divided by this, beside a 1 that gives the scale


def _garment_colour_mask(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The foreground without skin: the garment's colour, not the model's arms and face.
    A garment that is mostly skin-toned itself (beige, camel, peach) keeps its whole mask."""
    garment = mask * ~skin_mask(rgb)
    return garment if garment.sum() >= SKIN_KEEP * mask.sum() else mask


def _median_colour(rgb: np.ndarray, garment: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """1, then the median CIELAB (L, a, b) of the garment's pixels (of the whole foreground,
    or of the photo, when there are too few) divided by LAB_SCALE. Scaling the block, as the
    descriptor's normalisations do, keeps each value's ratio to the 1."""
    for weights in (garment, mask, np.ones_like(mask)):
        pixels = rgb[weights > 0.5]
        if len(pixels) >= 16:
            break
    return np.concatenate([[1.0], np.median(rgb_to_lab(pixels), axis=0) / LAB_SCALE])


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


def _resample(
    array: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]
) -> np.ndarray:
    """`array` (H×W or H×W×3, 0..1) inside `box` resampled to `size`; outside the image is 0."""
    whole = tuple(round(v) for v in box)
    channels = [array] if array.ndim == 2 else [array[..., c] for c in range(array.shape[2])]
    # crop() pads with zeros where the box leaves the image; resize(box=...) would refuse.
    out = [
        np.asarray(Image.fromarray(c).crop(whole).resize(size, Image.Resampling.BOX))
        for c in channels
    ]
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
        corners = [
            (index * bins + b, w * part)
            for index, w in corners
            for b, part in ((low, 1 - share), (high, share))
        ]
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
    histogram = np.concatenate(
        [
            _histogram(colourful * mask, (hue, HUE_BINS, True), (value, VALUE_BINS, False)),
            _histogram((1 - colourful) * mask, (value, GREY_BINS, False)),
        ]
    )
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
    return np.sqrt(
        _histogram(
            magnitude,
            (ys / grey.shape[0], 2, False),
            (xs / grey.shape[1], 2, False),
            (angle, 8, True),
        )
    )

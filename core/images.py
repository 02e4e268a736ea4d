"""Decoding photos for analysis, and telling a garment from the plain background it lies on.

The offline embedder and the offline providers read photos the same way and find the garment
with the same mask; the upload checks (catalog.images) are stricter and live with the catalog.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage


class ImageUnreadable(ValueError):
    """The bytes cannot be decoded as an image; the message says what the decoder said."""


def open_image(data: bytes, *, max_side: int) -> Image.Image:
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
        raise ImageUnreadable(str(exc)) from None
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # shrinks, never enlarges
    return image


def border_pixels(rgb: np.ndarray, width: int) -> np.ndarray:
    """The pixels (N×3) of the outer `width` rows and columns: where the background shows."""
    return np.concatenate(
        [
            rgb[:width].reshape(-1, 3),
            rgb[-width:].reshape(-1, 3),
            rgb[:, :width].reshape(-1, 3),
            rgb[:, -width:].reshape(-1, 3),
        ]
    )


def background_colour(rgb: np.ndarray) -> np.ndarray:
    """The background's colour (0..1 RGB): the median of the outer two pixels."""
    return np.median(border_pixels(rgb, 2), axis=0)


def foreground_mask(rgb: np.ndarray, *, fill: Literal["enclosed", "holes"]) -> np.ndarray:
    """Soft mask (0..1) of what differs from the background colour, for an RGB array in 0..1.

    Pale cloth on a pale table shows little but its seams and hem, so what the garment
    surrounds is filled in: with "holes", only true holes that do not show the background
    (a gap between sleeve and body stays open, even where the sleeve closes it: the
    compositor needs a clean cut-out, see fill_holes); with "enclosed", every pixel that has
    garment above, below, left and right of it (gaps close too, which steadies a descriptor).
    """
    background = background_colour(rgb)
    difference = np.abs(rgb - background).max(axis=2)
    # A ramp instead of a cut-off: table texture and JPEG noise stay below 0.04, and pixels
    # near the threshold move the mask a little rather than flipping it.
    soft = np.clip((difference - 0.04) / 0.08, 0, 1)
    solid = soft > 0.5
    if fill == "holes":
        filled = fill_holes(rgb, solid, background)
    else:
        below, above = np.maximum.accumulate(solid, 0), np.maximum.accumulate(solid[::-1], 0)[::-1]
        right, left = (
            np.maximum.accumulate(solid, 1),
            np.maximum.accumulate(solid[:, ::-1], 1)[:, ::-1],
        )
        filled = below & above & right & left
    return np.maximum(soft, filled)


# A hole in the garment shows the table when its median colour is this close to the
# background's in every channel (0..1): in the sample catalog, any 30 px patch of table is
# within 0.028 of it (uneven light), and the holes of pale cloth on a pale table that are wide
# enough to matter (the cream cardigan, the white tee) are 0.035 or more off...
GAP_TOLERANCE = 0.03
# ...and it is wide (the largest disc inside it has this radius, as a share of the image's
# shorter side: narrower holes are the cloth's own pattern, dots and stripes) but no more than
# GAP_MAX_SHARE of the garment's outline (a larger one is the body of a pale garment).
GAP_MIN_RADIUS = 0.015
GAP_MAX_SHARE = 0.25


def fill_holes(rgb: np.ndarray, solid: np.ndarray, background: np.ndarray) -> np.ndarray:
    """`solid` (bool) with its holes filled, except the holes that show the background.

    A sleeve laid against the body, or a strap, closes a gap of table that no path from the
    frame's edge reaches; filled, the compositor would carry it onto the new backdrop. Any
    other hole is cloth that differs too little from the table to stand out by itself.
    """
    filled = ndimage.binary_fill_holes(solid)
    holes, count = ndimage.label(filled & ~solid)
    if count == 0:
        return filled
    # Holes lie inside the outline, whose box has solid pixels on every side: work in it.
    box = ndimage.find_objects(filled.astype(np.uint8))[0]
    holes, rgb = holes[box], rgb[box]
    labels = np.arange(1, count + 1)
    radius = np.asarray(ndimage.maximum(ndimage.distance_transform_edt(holes > 0), holes, labels))
    area = np.bincount(holes.ravel(), minlength=count + 1)[1:]
    labels = labels[
        (radius >= GAP_MIN_RADIUS * min(solid.shape)) & (area <= GAP_MAX_SHARE * filled.sum())
    ]
    if labels.size == 0:
        return filled
    medians = np.stack(
        [np.asarray(ndimage.median(rgb[..., c], holes, labels)) for c in range(3)], axis=-1
    )
    gaps = labels[np.abs(medians - background).max(axis=1) <= GAP_TOLERANCE]
    filled[box] &= ~np.isin(holes, gaps)
    return filled


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Where an RGB array (0..1) shows skin: the classic YCbCr skin box (Cb 77..127,
    Cr 133..173), not too dark; photos of garments worn by a model show arms, legs and faces."""
    r, g, b = rgb[..., 0] * 255, rgb[..., 1] * 255, rgb[..., 2] * 255
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return (cb >= 77) & (cb <= 127) & (cr >= 133) & (cr <= 173) & (y > 60)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (L 0..100, a and b about -128..127; D65 white) of sRGB values in 0..1, on the
    last axis, in float32: a space where distance follows how different two colours look."""
    rgb = np.asarray(rgb, dtype=np.float32)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_WHITE_XYZ
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


# sRGB (linear) to XYZ, each row divided by the D65 white's X, Y or Z; transposed for `@`.
_SRGB_TO_WHITE_XYZ = (
    np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    / np.array([[0.95047], [1.0], [1.08883]])
).T.astype(np.float32)

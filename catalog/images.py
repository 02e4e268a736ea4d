"""Untrusted image bytes in, safe re-encoded images under content-addressed names out.

Every product photo passes through `image_prepare`: it must be a JPEG, PNG or WebP of a sane
size that decodes completely. It is re-encoded (which drops anything hidden behind the image
header, metadata included) and named after the SHA-256 of the re-encoded bytes, so the same
photo imported twice is stored once and its embedding can be cached by that hash.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")


class ImageRejected(ValueError):
    """The bytes are not an image we accept; the message says why, for a person."""


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A product photo by its content hash: where it and its thumbnail are stored."""

    sha256: str
    extension: str
    width: int
    height: int

    @property
    def storage_name(self) -> str:
        return f"products/{self.sha256[:2]}/{self.sha256}.{self.extension}"

    @property
    def thumbnail_name(self) -> str:
        return self.thumbnail_name_at(settings.CATALOG_THUMBNAIL_SIZE)

    def thumbnail_name_at(self, size: int) -> str:
        return f"products/thumbs/{self.sha256[:2]}/{self.sha256}-{size}.jpg"


@dataclass(frozen=True, slots=True)
class PreparedImage(ImageRef):
    """A checked, re-encoded photo with its bytes (held only until it is stored), made from
    one decode: the stored image, its thumbnail and `small`, the thumbnail's pixels (RGB on
    white), which an embedder can describe without decoding the photo again."""

    content: bytes = b""
    thumbnail: bytes = b""
    small: Image.Image | None = field(default=None, repr=False, compare=False)

    def ref(self) -> ImageRef:
        return ImageRef(self.sha256, self.extension, self.width, self.height)


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """The settings `image_prepare` reads, as a value: a pool process has no Django settings
    (catalog.photo_stream), so the import hands them over."""

    max_bytes: int
    max_pixels: int
    thumbnail_size: int

    @classmethod
    def current(cls) -> ImageLimits:
        return cls(
            settings.CATALOG_IMAGE_MAX_BYTES,
            settings.CATALOG_IMAGE_MAX_PIXELS,
            settings.CATALOG_THUMBNAIL_SIZE,
        )


def image_prepare(data: bytes, limits: ImageLimits | None = None) -> PreparedImage:
    """Validate and re-encode an uploaded photo. Raises ImageRejected with the reason."""
    limits = limits or ImageLimits.current()
    max_bytes = limits.max_bytes
    if len(data) > max_bytes:
        raise ImageRejected(f"file is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    if not data:
        raise ImageRejected("file is empty")
    max_pixels = limits.max_pixels
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that: make the warning an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        except UnidentifiedImageError:
            raise ImageRejected(_unsupported_reason(data)) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRejected(f"image is too large (more than {max_pixels:,} pixels)") from None
        width, height = image.size
        if width * height > max_pixels:
            raise ImageRejected(
                f"image is too large ({width}×{height} = {width * height:,} pixels; "
                f"the limit is {max_pixels:,})"
            )
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageRejected(f"image is truncated or corrupt ({exc})") from None
    return _reencode(image, limits.thumbnail_size)


def _unsupported_reason(data: bytes) -> str:
    try:
        # Only identify (no decoding) a few common formats, to name them in the message.
        other = Image.open(io.BytesIO(data), formats=("GIF", "BMP", "TIFF", "ICO")).format
    except Exception:  # noqa: BLE001 - whatever Pillow cannot identify is simply not an image
        other = None
    if other:
        return f"{other} images are not accepted; use JPEG, PNG or WebP"
    return "not an image (JPEG, PNG or WebP expected)"


def _reencode(image: Image.Image, thumbnail_size: int) -> PreparedImage:
    image = ImageOps.exif_transpose(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    buffer = io.BytesIO()
    # The stored bytes name the photo (their SHA-256): keep this encoding as it is, or every
    # photo imported before would look new and be embedded again.
    if has_alpha:
        # Cut-out product photos keep their transparency.
        image = image.convert("RGBA")
        image.save(buffer, format="PNG", optimize=True)
        extension = "png"
    else:
        image = image.convert("RGB")
        image.save(buffer, format="JPEG", quality=90, optimize=True)
        extension = "jpg"
    content = buffer.getvalue()
    small = _small_copy(image, thumbnail_size)
    thumbnail = io.BytesIO()
    small.save(thumbnail, format="JPEG", quality=85)
    return PreparedImage(
        sha256=hashlib.sha256(content).hexdigest(),
        extension=extension,
        width=image.width,
        height=image.height,
        content=content,
        thumbnail=thumbnail.getvalue(),
        small=small,
    )


def _small_copy(image: Image.Image, size: int) -> Image.Image:
    """The thumbnail's pixels: RGB, transparency on white, at most `size` (the setting
    CATALOG_THUMBNAIL_SIZE).

    Pillow first reduces by whole factors (box averaging, cheap), then resamples the last step
    bilinearly: at 160 px nobody sees the difference from LANCZOS on the full image, which
    cost most of an import's time.
    """
    small = image.copy()
    small.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=1.0)
    if small.mode != "RGB":
        background = Image.new("RGB", small.size, "white")
        background.paste(small, mask=small.getchannel("A"))
        small = background
    return small


def image_store(prepared: PreparedImage, *, storage: Storage | None = None) -> list[str]:
    """Store the image and its thumbnail unless already there. Returns the names it created."""
    storage = storage or default_storage
    created = []
    for name, content in (
        (prepared.storage_name, prepared.content),
        (prepared.thumbnail_name, prepared.thumbnail),
    ):
        if not storage.exists(name):
            created.append(storage.save(name, ContentFile(content)))
    return created

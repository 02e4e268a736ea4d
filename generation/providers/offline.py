"""Offline providers: real, modest image work without a network, free and deterministic.

The style analyst measures the bestseller photos (brightness, contrast, palette, background) and
writes a prompt from those measurements and the catalog attributes. The image generator cuts the
product out of its flat-lay and composes it onto a backdrop derived from the top reference, at
exactly the requested pixel size. Their outputs are previews, labelled offline by the pipeline.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps
from PIL.PngImagePlugin import PngInfo
from scipy import ndimage
from scipy.spatial import cKDTree

from core.images import (
    GAP_MAX_SHARE,
    ImageUnreadable,
    background_colour,
    border_pixels,
    fill_holes,
    foreground_mask,
    open_image,
    rgb_to_lab,
)
from generation.prompts import generation_prompt
from generation.provenance import PNG_XMP_KEY, xmp_packet
from generation.providers.base import (
    CheckResult,
    GeneratedImage,
    ImageGenerator,
    ImageRequest,
    ProviderError,
    QualityChecker,
    QualityReport,
    QualityRequest,
    Stage,
    StyleAnalyst,
    StyleRequest,
    StyleResult,
)

RGB = tuple[int, int, int]

# Rough names for measured colours: the nearest entry wins.
COLOUR_NAMES: dict[str, RGB] = {
    "white": (252, 252, 252),
    "off-white": (238, 235, 228),
    "cream": (236, 225, 200),
    "beige": (214, 196, 168),
    "light grey": (196, 198, 201),
    "grey": (128, 129, 131),
    "charcoal": (64, 65, 68),
    "black": (22, 22, 24),
    "camel": (193, 145, 94),
    "brown": (110, 72, 44),
    "red": (190, 36, 44),
    "burgundy": (110, 30, 48),
    "pink": (232, 160, 176),
    "orange": (226, 128, 52),
    "mustard": (212, 160, 40),
    "olive": (112, 118, 64),
    "sage green": (163, 190, 150),
    "green": (52, 128, 72),
    "teal": (40, 118, 120),
    "sky blue": (128, 170, 214),
    "blue": (48, 88, 176),
    "navy": (31, 42, 77),
    "purple": (112, 62, 140),
}
PLAIN_NAMES = {"white", "off-white", "cream", "light grey"}  # backgrounds, not palette accents
POSES = {  # by the new product's category: what shows the garment best
    "dress": "relaxed standing pose, full-body framing",
    "skirt": "relaxed walking pose, full-body framing",
    "trousers": "confident walking pose, full-body framing",
    "outerwear": "relaxed standing pose, three-quarter framing",
    "knitwear": "relaxed standing pose, three-quarter framing",
    "top": "natural standing pose, waist-up framing",
}
DEFAULT_POSE = "relaxed standing pose, full-body framing"
MAX_PROMPT_WORDS = 99  # the style prompt must stay under 100 words
HINT_MAX_CHARS = 200
_NOT_PROSE = re.compile(r"[^\w\s,.'&-]")  # anything that could open a new clause, list or line


def decode_image(data: bytes, label: str, *, max_side: int) -> Image.Image:
    """An RGB image no larger than max_side (transparency on white); ProviderError if unreadable."""
    try:
        return open_image(data, max_side=max_side)
    except ImageUnreadable as error:
        raise ProviderError(f"{label} is not a readable image ({error})", retryable=False) from None


def dominant_colours(image: Image.Image, count: int) -> list[tuple[RGB, float]]:
    """Up to `count` colours (median cut) with their share of the image, most common first."""
    small = image.copy()
    small.thumbnail((128, 128))
    quantized = small.quantize(colors=count, method=Image.Quantize.MEDIANCUT)
    palette, total = quantized.getpalette() or [], small.width * small.height
    found = sorted(quantized.getcolors() or [], key=lambda item: (-item[0], item[1]))
    return [(tuple(palette[3 * i : 3 * i + 3]), n / total) for n, i in found]  # type: ignore[misc]


def colour_name(rgb: Iterable[float]) -> str:
    r, g, b = rgb

    # "Redmean" weights: closer to how different two colours look than plain RGB distance.
    def distance(ref: RGB) -> float:
        mean_r = (r + ref[0]) / 2
        return (
            (2 + mean_r / 256) * (r - ref[0]) ** 2
            + 4 * (g - ref[1]) ** 2
            + (3 - mean_r / 256) * (b - ref[2]) ** 2
        )

    return min(COLOUR_NAMES, key=lambda name: distance(COLOUR_NAMES[name]))


def clean_text(value: str, max_chars: int) -> str:
    """Untrusted text as one plain phrase: no line breaks, control characters or clause
    punctuation (so it cannot start a new instruction), cut at a word boundary."""
    text = " ".join(_NOT_PROSE.sub(" ", value).split())
    if len(text) > max_chars:
        text = text[: max_chars + 1].rsplit(" ", 1)[0]
    return text.strip(" ,.'&-")


# --------------------------------------------------------------------------- style analyst


@dataclass(frozen=True)
class PhotoLook:
    """What one reference photo measures as."""

    brightness: float  # mean luma, 0..255
    contrast: float  # standard deviation of luma
    warmth: float  # mean red minus blue
    background: RGB  # median of the border pixels
    texture: float  # luma deviation of the border: 0 for a seamless backdrop
    palette: list[tuple[str, float]]  # colour names and their share of the photo


def measure(image: Image.Image) -> PhotoLook:
    rgb = np.asarray(image, dtype=np.float32)
    luma = rgb @ np.float32([0.299, 0.587, 0.114])
    border = border_pixels(rgb, max(2, min(rgb.shape[:2]) // 20))
    border_luma = border @ np.float32([0.299, 0.587, 0.114])
    return PhotoLook(
        brightness=float(luma.mean()),
        contrast=float(luma.std()),
        warmth=float((rgb[..., 0] - rgb[..., 2]).mean()),
        background=tuple(int(v) for v in np.median(border, axis=0)),  # type: ignore[arg-type]
        texture=float(border_luma.std()),
        palette=[(colour_name(colour), share) for colour, share in dominant_colours(image, 6)],
    )


def _most_common(values: Iterable[str], default: str) -> str:
    counted = Counter(value for value in values if value)
    return counted.most_common(1)[0][0] if counted else default


class OfflineStyleAnalyst(StyleAnalyst):
    """Writes the style prompt from measured photo properties and catalog attributes."""

    model = "offline-style-v1"
    is_offline = True
    WORK_SIDE = 256  # brightness, palette and background need no detail

    def analyse(self, request: StyleRequest) -> StyleResult:
        looks = [
            measure(decode_image(ref.content, f"reference {n}", max_side=self.WORK_SIDE))
            for n, ref in enumerate(request.references, 1)
        ]
        return StyleResult(
            prompt=self.compose(request, looks), model=self.model, cost=Decimal("0"), offline=True
        )

    def compose(self, request: StyleRequest, looks: list[PhotoLook]) -> str:
        """One sentence under 100 words; the scene hint, if any, takes what room is left."""
        products = [ref.product for ref in request.references] or [request.product]
        style = clean_text(_most_common((p.style for p in products), request.product.style), 30)
        season = clean_text(_most_common((p.season for p in products), request.product.season), 30)
        category = clean_text(request.product.category, 30).lower()
        mood = (f"{style} {season}".strip() or "timeless") + " mood"
        sentence = ", ".join(
            [
                _setting(looks),
                _lighting(looks),
                _palette(looks),
                POSES.get(category, DEFAULT_POSE),
                mood,
            ]
        )
        hint = clean_text(request.product.prompt_hint, HINT_MAX_CHARS)
        room = MAX_PROMPT_WORDS - len(sentence.split()) - 1  # "scene:" is a word
        if hint and room > 0:
            sentence += "; scene: " + " ".join(hint.split()[:room]).rstrip(",")
        return sentence + "."


def _setting(looks: list[PhotoLook]) -> str:
    if not looks:
        return "Bright studio photo on a plain light background"
    brightness = sum(look.brightness for look in looks) / len(looks)
    key = (
        "Bright high-key"
        if brightness >= 170
        else "Balanced mid-key"
        if brightness >= 100
        else "Moody low-key"
    )
    background = colour_name(np.mean([look.background for look in looks], axis=0))
    texture = "plain" if max(look.texture for look in looks) < 8 else "textured"
    return f"{key} studio photo on a {texture} {background} background"


def _lighting(looks: list[PhotoLook]) -> str:
    contrast = sum(look.contrast for look in looks) / len(looks) if looks else 0
    return (
        "soft even light"
        if contrast < 40
        else "soft directional light"
        if contrast < 65
        else "crisp contrasty light"
    )


def _palette(looks: list[PhotoLook]) -> str:
    warmth = sum(look.warmth for look in looks) / len(looks) if looks else 0
    tone = "warm" if warmth > 10 else "cool" if warmth < -10 else "neutral"
    shares: Counter[str] = Counter()
    for look in looks:
        for name, share in look.palette:
            shares[name] += share
    accents = [name for name, _ in shares.most_common() if name not in PLAIN_NAMES][:2]
    return f"{tone} palette" + (f" with {' and '.join(accents)} accents" if accents else "")


# --------------------------------------------------------------------------- image generator


class OfflineImageGenerator(ImageGenerator):
    """Composes the cut-out product onto a backdrop at exactly the requested size.

    White-background presets get pure white with a faint contact shadow; the others a backdrop
    blended from all the references (each heavily blurred and tinted with its own two main
    colours, the earlier references and proven promo images weighing more) with a soft drop
    shadow. A staged preset gets
    that backdrop alone as its scene, then the product composed onto the scene it is given. The
    backdrop has no detail, so it is built at WORK_SIDE and upscaled: a 4K banner stays fast.
    Overlay text is typeset with Pillow's own font, exactly as given.
    """

    model = "offline-compositor-v2"
    is_offline = True
    PRODUCT_SIDE = 1536  # flat-lays are decoded at most this large, upscaled beyond
    REFERENCE_SIDE = 512
    WORK_SIDE = 640

    def generate(self, request: ImageRequest) -> GeneratedImage:
        size = (request.width, request.height)
        wishes = feedback_wishes(request.feedback)
        scale = min(1.0, self.WORK_SIDE / max(size))
        work_size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        white = request.white_background or wishes.white_background
        if request.stage == Stage.SCENE:
            scene = self.backdrop(request, None, work_size, white, wishes)
            canvas = scene.resize(size, Image.Resampling.BICUBIC) if scale < 1 else scene
            return self._answer(request, canvas, wishes)
        # No need to decode a large flat-lay beyond the canvas it will be placed on.
        photo = decode_image(
            request.product_image, "the flat-lay", max_side=min(self.PRODUCT_SIDE, max(size))
        )
        product = cut_out(photo)
        box = varied_box(product_box(size, product.size, zoom=wishes.zoom), size, request.variant)
        if request.stage == Stage.PRODUCT and request.scene_image:
            backdrop = decode_image(request.scene_image, "the scene", max_side=self.WORK_SIDE)
            backdrop = backdrop.resize(work_size, Image.Resampling.BILINEAR)
        else:
            backdrop = self.backdrop(request, photo, work_size, white, wishes)
        strength = 0.16 if white else 0.4
        shadow = product_shadow(product.getchannel("A"), box, scale, work_size, strength)
        backdrop = ImageChops.multiply(backdrop, ImageOps.invert(shadow).convert("RGB"))
        canvas = backdrop.resize(size, Image.Resampling.BICUBIC) if scale < 1 else backdrop
        placed = product.resize(box[2:], Image.Resampling.LANCZOS)
        canvas.paste(placed, box[:2], placed)
        if request.overlay_text:
            typeset(canvas, request.overlay_text, box)
        return self._answer(request, canvas, wishes)

    def backdrop(
        self,
        request: ImageRequest,
        photo: Image.Image | None,
        work_size: tuple[int, int],
        white: bool,
        wishes: FeedbackWishes,
    ) -> Image.Image:
        if white:
            return Image.new("RGB", work_size, (255, 255, 255))
        scenes = [
            decode_image(ref.content, f"reference {n}", max_side=self.REFERENCE_SIDE)
            for n, ref in enumerate(request.references, 1)
        ]
        if not scenes:  # without references, the flat-lay's own colours set the scene
            scenes = [
                photo
                if photo is not None
                else decode_image(
                    request.product_image, "the flat-lay", max_side=self.REFERENCE_SIDE
                )
            ]
        weights = [ref.weight for ref in request.references] or [1.0]
        flip = request.variant % 2 == 0
        return wishes.adjust(blended_backdrop(scenes, work_size, flip=flip, weights=weights))

    def _answer(
        self, request: ImageRequest, canvas: Image.Image, wishes: FeedbackWishes
    ) -> GeneratedImage:
        buffer = io.BytesIO()
        # Level 1: a 4K banner compresses several times faster, for a somewhat larger file.
        info = PngInfo()  # says what it is: a composite made without a generative model
        info.add_itxt(
            PNG_XMP_KEY,
            xmp_packet(title=request.product.sku, models=[self.model], created="", offline=True),
        )
        canvas.save(buffer, format="PNG", compress_level=1, pnginfo=info)
        return GeneratedImage(
            content=buffer.getvalue(),
            prompt=generation_prompt(request),
            model=self.model,
            cost=Decimal("0"),
            offline=True,
            text=wishes.report() if request.feedback else "",
        )


def blended_backdrop(
    scenes: list[Image.Image],
    size: tuple[int, int],
    flip: bool,
    weights: list[float] | None = None,
) -> Image.Image:
    """The references' backdrops (scene_backdrop) averaged, the n-th weighing 1/n times its
    own weight (a proven promo image's CTR over its channel's average; 1 for a bestseller):
    one palette and one suggestion of a set, blended from all of them."""
    own = weights or [1.0] * len(scenes)
    weights = np.array([w / n for n, w in enumerate(own, start=1)], dtype=np.float32)
    layers = np.stack(
        [np.asarray(scene_backdrop(scene, size, flip=flip), dtype=np.float32) for scene in scenes]
    )
    blended = np.tensordot(weights / weights.sum(), layers, axes=1)
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8))


def typeset(canvas: Image.Image, text: str, box: tuple[int, int, int, int]) -> None:
    """Write `text` exactly, on one line, on a light plate: centred under the product, or for
    wide banners in the free space to its right."""
    width, height = canvas.size
    wide = width >= 4 * height
    room = (width - box[0] - box[2]) if wide else width
    size = max(
        10, round(min(height * (0.22 if wide else 0.045), room * 0.9 / max(1, len(text)) * 1.8))
    )
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    w, h = right - left, bottom - top
    if wide:
        x, y = box[0] + box[2] + (room - w) // 2, (height - h) // 2
    else:
        x, y = (
            (width - w) // 2,
            min(height - h - round(0.04 * height), box[1] + box[3] + round(0.02 * height)),
        )
    pad = max(2, size // 3)
    draw.rectangle((x - pad, y - pad, x + w + pad, y + h + pad), fill=(255, 255, 255))
    draw.text((x - left, y - top), text, font=font, fill=(28, 28, 30))


def garment_mask(rgb: np.ndarray) -> np.ndarray:
    """Soft mask (0..1) of the garment on a flat-lay (core.images.foreground_mask: its holes
    filled, but for gaps that show the table), with the flat-lay's own cast shadow left out."""
    background = background_colour(rgb)
    mask = foreground_mask(rgb, fill="holes")
    garment = mask > 0.5  # what the fill made solid
    # The cast shadow is the table, darker, every channel scaled alike, along the garment's
    # outer edge; the new backdrop gets a shadow of its own. Deeper inside, the same look is
    # cloth (a hem line, grey on grey) and stays.
    ratio = rgb / np.maximum(background, 0.05)
    shade = ratio.mean(axis=2)
    uniform = np.clip(1 - (ratio.max(axis=2) - ratio.min(axis=2) - 0.02) / 0.04, 0, 1)
    reach = max(2, round(0.03 * min(rgb.shape[:2])))
    inside = ndimage.minimum_filter(garment, size=2 * reach + 1)
    shadow = uniform * ((shade > 0.6) & (shade < 1) & ~inside)
    return mask * (1 - shadow)


def cut_out(image: Image.Image) -> Image.Image:
    """The garment as RGBA cropped to its bounding box, its edge feathered; the whole photo
    when nothing stands out from the background."""
    mask = garment_mask(np.asarray(image, dtype=np.float32) / 255)
    if mask.mean() < 0.01:
        mask = np.ones_like(mask)
    # Shrink by a pixel before feathering, so the soft edge fades into the garment rather than
    # carrying a rim of the table onto the new backdrop.
    alpha = Image.fromarray(np.rint(mask * 255).astype(np.uint8)).filter(ImageFilter.MinFilter(3))
    alpha = alpha.filter(ImageFilter.GaussianBlur(max(0.8, max(image.size) / 600)))
    product = image.convert("RGBA")
    product.putalpha(alpha)
    return product.crop(
        alpha.point(lambda v: 255 if v > 16 else 0).getbbox() or (0, 0, *image.size)
    )


def product_box(
    canvas: tuple[int, int], product: tuple[int, int], zoom: float = 1.0
) -> tuple[int, int, int, int]:
    """(left, top, width, height): the product fits 70 % of the width and 80 % of the height of
    its slot (times `zoom`, at most the whole slot), centred in it. Wide banners (4:1 and
    wider) keep the product in their left third and leave the rest for the channel's copy."""
    width, height = canvas
    slot = width / 3 if width >= 4 * height else width
    scale = min(0.7 * zoom, 1.0) * slot / product[0]
    scale = min(scale, min(0.8 * zoom, 1.0) * height / product[1])
    w, h = max(1, round(product[0] * scale)), max(1, round(product[1] * scale))
    return round((slot - w) / 2), round((height - h) / 2), w, h


def scene_backdrop(
    reference: Image.Image, size: tuple[int, int], flip: bool = False
) -> Image.Image:
    """The reference scaled to cover `size`, blurred to a suggestion of its scene, and tinted
    with its two main colours as a vertical gradient (the lighter one on top, like a wall;
    `flip` mirrors the scene, for a variant)."""
    if flip:
        reference = ImageOps.mirror(reference)
    cover = ImageOps.fit(reference, size, Image.Resampling.BILINEAR)
    blurred = cover.filter(ImageFilter.GaussianBlur(max(size) * 0.08))
    colours = [colour for colour, _ in dominant_colours(reference, 4)[:2]]
    top, bottom = sorted(colours, key=sum, reverse=True) if len(colours) == 2 else colours * 2
    ramp = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    gradient = Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), ramp)
    return Image.blend(blurred, gradient, 0.35)


def product_shadow(
    alpha: Image.Image,
    box: tuple[int, int, int, int],
    scale: float,
    size: tuple[int, int],
    strength: float,
) -> Image.Image:
    """How much darker each backdrop pixel gets (L, 0..255 at work scale): the product's
    silhouette offset down-right and blurred, plus a contact shadow where it meets the floor."""
    left, top, w, h = (value * scale for value in box)
    shadow = Image.new("L", size, 0)
    silhouette = alpha.resize((max(1, round(w)), max(1, round(h))), Image.Resampling.BILINEAR)
    shadow.paste(
        silhouette.point(lambda v: round(v * strength * 0.6)),
        (round(left + 0.02 * h), round(top + 0.03 * h)),
    )
    ImageDraw.Draw(shadow).ellipse(
        (left + 0.1 * w, top + 0.96 * h, left + 0.9 * w, top + 1.02 * h), fill=round(255 * strength)
    )
    return shadow.filter(ImageFilter.GaussianBlur(max(1.0, 0.03 * h)))


def varied_box(
    box: tuple[int, int, int, int], canvas: tuple[int, int], variant: int
) -> tuple[int, int, int, int]:
    """The product's place for a variant: the first centred, the others a little off centre
    and smaller, so that the candidates of one request differ (deterministically)."""
    if variant <= 1:
        return box
    left, top, w, h = box
    shrink = 1 - 0.06 * min(variant - 1, 3)
    w2, h2 = max(1, round(w * shrink)), max(1, round(h * shrink))
    shift = (1 if variant % 2 == 0 else -1) * round(0.08 * canvas[0])
    left = min(max(left + (w - w2) // 2 + shift, 0), canvas[0] - w2)
    return left, top + (h - h2), w2, h2


@dataclass
class FeedbackWishes:
    """What the offline compositor can do of a reviewer's feedback, and what it cannot."""

    followed: list[str]
    brightness: float = 1.0
    warmth: int = 0  # added to red, taken from blue
    zoom: float = 1.0
    white_background: bool = False

    def adjust(self, backdrop: Image.Image) -> Image.Image:
        if self.brightness != 1.0:
            backdrop = backdrop.point(lambda v: min(255, round(v * self.brightness)))
        if self.warmth:
            r, g, b = backdrop.split()
            r = r.point(lambda v: min(255, max(0, v + self.warmth)))
            b = b.point(lambda v: min(255, max(0, v - self.warmth)))
            backdrop = Image.merge("RGB", (r, g, b))
        return backdrop

    def report(self) -> str:
        done = ", ".join(self.followed) if self.followed else "nothing"
        return (
            f"Offline preview: of the feedback it followed {done}. It cannot follow anything "
            "else (a model, a pose, another scene or garment changes): the offline compositor "
            "only changes the light, the colour temperature, the background and the size."
        )


FEEDBACK_WORDS = (  # (words, what it does, the name said back)
    (("brighter", "lighter", "more light"), {"brightness": 1.18}, "brighter"),
    (("darker", "less light", "moodier"), {"brightness": 0.82}, "darker"),
    (("warmer", "warm"), {"warmth": 18}, "warmer"),
    (("cooler", "colder", "cool"), {"warmth": -18}, "cooler"),
    (
        ("white background", "plain white", "pure white"),
        {"white_background": True},
        "white background",
    ),
    (("bigger", "larger", "zoom in", "closer"), {"zoom": 1.2}, "larger product"),
    (("smaller", "zoom out", "further", "more space"), {"zoom": 0.8}, "smaller product"),
)


def feedback_wishes(feedback: str) -> FeedbackWishes:
    """The adjustments named in a reviewer's feedback (plain words; nothing else is read)."""
    text = " ".join(feedback.lower().split())
    wishes = FeedbackWishes(followed=[])
    for words, changes, name in FEEDBACK_WORDS:
        if any(word in text for word in words):
            for key, value in changes.items():
                setattr(wishes, key, value)
            wishes.followed.append(name)
    return wishes


# --------------------------------------------------------------------------- quality checker


def product_region(rgb: np.ndarray) -> np.ndarray:
    """Where the product stands in a generated image (bool).

    The product is what has edges: its outline and its cloth, against a backdrop that is plain
    or out of focus. The edges are closed into outlines and filled (an outline that the frame
    cuts is closed by the frame's edge); of what results, the
    largest part that is not a rectangle (a text plate or a banner is one; a garment never
    fills its bounding box) is the product.
    """
    gradient = np.max(
        [np.hypot(ndimage.sobel(rgb[..., c], 0), ndimage.sobel(rgb[..., c], 1)) for c in range(3)],
        axis=0,
    )
    reach = max(2, min(rgb.shape[:2]) // 100)
    outlines = ndimage.binary_closing(gradient > 0.12, iterations=reach)
    filled = ndimage.binary_fill_holes(outlines)
    for side in range(4):  # a product cut off by the frame is closed by that edge of it
        turned = np.pad(np.rot90(outlines, side), ((1, 0), (0, 0)), constant_values=True)
        filled |= np.rot90(ndimage.binary_fill_holes(turned)[1:], -side)
    filled = ndimage.binary_opening(filled, iterations=reach)
    labels, count = ndimage.label(filled)
    best, best_size = None, 0
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        part = labels[found] == index
        if part.sum() > best_size and part.mean() < 0.95:
            best, best_size = index, int(part.sum())
    if best is None:
        return np.zeros(rgb.shape[:2], dtype=bool)
    return labels == best


GARMENT_DELTA_E = 15.0  # a pixel this close (CIELAB) to a colour of the flat-lay's garment is cloth


def garment_colours(flat_lay: np.ndarray, garment: np.ndarray) -> np.ndarray:
    """The colours of the flat-lay's garment (CIELAB, on a grid of 4 units), each that holds
    at least 0.1 % of it: its edge, where it blends into the table, and stray specks of the
    table that the mask kept are left out."""
    inner = ndimage.binary_erosion(garment, iterations=2)
    pixels = flat_lay[inner if inner.any() else garment]
    colours, counts = np.unique(np.round(rgb_to_lab(pixels) / 4), axis=0, return_counts=True)
    return colours[counts >= 0.001 * len(pixels)] * 4


def product_pixels(rgb: np.ndarray, region: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Where the product is in a generated image (bool), to tell its background from it.

    The outline is what the compositor would cut out (core.images.foreground_mask against the
    image's own background colour, white in a good image: a gap the garment encloses stays
    open where it shows that colour), sealed where a pale garment barely differs from white;
    of it, the parts that the product region (product_region) touches. Inside them, what the
    garment's own colours surround but that has none of them (the flat-lay's table carried
    along in a gap, a grey fill) is background, however it differs from white. A product in
    the wrong colour stays the product: nothing of the garment's colours surrounds it.
    """
    reach = max(1, min(rgb.shape[:2]) // 256)
    sealed = ndimage.binary_closing(foreground_mask(rgb, fill="holes") > 0.5, iterations=reach)
    parts, _ = ndimage.label(fill_holes(rgb, sealed, background_colour(rgb)))
    product = np.isin(parts, np.unique(parts[region & (parts > 0)]))
    if not product.any() or not len(colours):
        return product
    cloth = np.zeros(product.shape, dtype=bool)
    keys, inverse = np.unique(np.round(rgb_to_lab(rgb[product]) / 4), axis=0, return_inverse=True)
    distance, _ = cKDTree(colours).query(keys * 4, distance_upper_bound=GARMENT_DELTA_E)
    cloth[product] = np.isfinite(distance)[inverse.reshape(-1)]
    # Only cloth of some width encloses a gap (a garment in the wrong colour can still match
    # along its edge), and a gap is never most of the garment (core.images.fill_holes).
    cloth = ndimage.binary_opening(cloth, iterations=reach)
    gaps, count = ndimage.label(
        ndimage.binary_opening(ndimage.binary_fill_holes(cloth) & ~cloth, iterations=reach)
    )
    area = np.bincount(gaps.ravel(), minlength=count + 1)
    gaps = (gaps > 0) & (area <= GAP_MAX_SHARE * product.sum())[gaps]
    # The feathered edge, a pixel or two that blend into the backdrop, goes with the product.
    return ndimage.binary_dilation(product & ~gaps, iterations=reach)


def soft_shadow(rgb: np.ndarray, product: np.ndarray) -> np.ndarray:
    """Pixels that may be the product's shadow on a white backdrop (bool): neutral light greys
    (white, darkened) within a tenth of the product's height of it, outside it or in a gap it
    encloses that shows some pure white (a shadow fades into the backdrop; a gap that is grey
    all over is as likely the flat-lay's table carried along)."""
    rows = np.flatnonzero(product.any(axis=1))
    if rows.size == 0:
        return np.zeros(product.shape, dtype=bool)
    near = ndimage.distance_transform_edt(~product) <= 0.1 * (rows[-1] - rows[0] + 1)
    neutral = (rgb.max(axis=2) - rgb.min(axis=2) <= 4 / 255) & (rgb.min(axis=2) >= 0.7)
    gaps, count = ndimage.label(ndimage.binary_fill_holes(product) & ~product)
    white = (rgb >= 250 / 255).all(axis=2)
    shows_white = np.asarray(ndimage.mean(white, gaps, np.arange(1, count + 1))) >= 0.1
    allowed = np.concatenate([[True], shows_white])[gaps]
    return near & neutral & allowed & ~product


class OfflineQualityChecker(QualityChecker):
    """Measures what can be measured without a vision model, and says what it cannot judge.

    garment_fidelity: CIELAB ΔE between the median colour of the flat-lay's garment and of the
    product region of the image; white_background: the share of pure white (or the product's
    soft shadow) among all the pixels that are not the product, gaps it encloses included;
    framing: the product's share of the frame, and whether it touches the edge; sharpness: the variance of the Laplacian over
    the product; blank; near_duplicate: the image against the flat-lay and each reference.
    Text, logos, hands and faces need a vision model: those checks are reported as not checked.
    """

    model = "offline-qa-v1"
    is_offline = True
    SIDE = 512
    MAX_DELTA_E = 12.0  # clearly another shade beyond this
    MIN_WHITE_SHARE = 0.97  # of the background: pure white (250+ in every channel) or soft shadow
    COVERAGE = (0.04, 0.85)  # the product's share of the frame
    MIN_SHARPNESS = 2.0e-4  # variance of the Laplacian of luma (0..1) over the product
    MIN_DIFFERENCE = 0.03  # mean difference (0..1) from every input image at 48×48

    def check(self, request: QualityRequest) -> QualityReport:
        image = decode_image(request.image, "the generated image", max_side=self.SIDE)
        rgb = np.asarray(image, dtype=np.float64) / 255
        flat_lay = (
            np.asarray(
                decode_image(request.product_image, "the flat-lay", max_side=self.SIDE),
                dtype=np.float64,
            )
            / 255
        )
        region = product_region(rgb)
        garment = garment_mask(flat_lay.astype(np.float32)) > 0.5
        checks = [self.blank(rgb), self.garment_fidelity(flat_lay, garment, rgb, region)]
        if request.white_background:
            colours = garment_colours(flat_lay, garment)
            checks.append(self.white_background(rgb, region, colours))
        checks += [
            self.framing(region),
            self.sharpness(rgb, region),
            self.near_duplicate(image, request),
        ]
        checks.append(
            CheckResult(
                "exact_text" if request.overlay_text else "no_text",
                None,
                None,
                "Not checked offline: reading text needs a vision model.",
            )
        )
        checks.append(
            CheckResult(
                "artefacts",
                None,
                None,
                "Not checked offline: labels, hands "
                "and faces need a vision model (framing, sharpness and blank "
                "output are measured above).",
            )
        )
        return QualityReport(checks=checks, model=self.model, cost=Decimal("0"), offline=True)

    def blank(self, rgb: np.ndarray) -> CheckResult:
        spread = float((rgb @ np.array([0.299, 0.587, 0.114])).std() * 255)
        return CheckResult(
            "blank",
            spread >= 6,
            min(1.0, spread / 30),
            f"Luma varies by {spread:.1f} levels (a blank image by under 6).",
        )

    def garment_fidelity(
        self, flat_lay: np.ndarray, garment: np.ndarray, rgb: np.ndarray, region: np.ndarray
    ) -> CheckResult:
        inner = ndimage.binary_erosion(region, iterations=3)
        if garment.sum() < 50 or inner.sum() < 50:
            return CheckResult(
                "garment_fidelity",
                False,
                0.0,
                "No product found in the image to compare with the flat-lay.",
            )
        expected = np.median(rgb_to_lab(flat_lay[garment]), axis=0)
        found = np.median(rgb_to_lab(rgb[inner]), axis=0)
        delta = float(np.linalg.norm(expected - found))
        return CheckResult(
            "garment_fidelity",
            delta <= self.MAX_DELTA_E,
            max(0.0, 1 - delta / 50),
            f"Colour difference ΔE {delta:.1f} between the flat-lay's garment and "
            f"the product in the image (at most {self.MAX_DELTA_E:g} passes).",
        )

    def white_background(
        self, rgb: np.ndarray, region: np.ndarray, colours: np.ndarray
    ) -> CheckResult:
        """Measured over every pixel that is not the product, gaps the product encloses
        included (product_pixels); the product's own soft shadow beside it is allowed."""
        background = ~product_pixels(rgb, region, colours)
        if background.sum() == 0:
            return CheckResult("white_background", False, 0.0, "No background is left to check.")
        white = (rgb >= 250 / 255).all(axis=2)
        share = float(white[background].mean())
        shaded = float((soft_shadow(rgb, ~background) & ~white)[background].mean())
        return CheckResult(
            "white_background",
            share + shaded >= self.MIN_WHITE_SHARE,
            round(share + shaded, 3),
            f"{share:.0%} of the background is pure white and {shaded:.0%} the product's "
            f"soft shadow, gaps inside the product included "
            f"(at least {self.MIN_WHITE_SHARE:.0%} together passes).",
        )

    def framing(self, region: np.ndarray) -> CheckResult:
        coverage = float(region.mean())
        edge = max(2, min(region.shape) // 40)  # the region's opening stops a little short of it
        touching = [
            side
            for side, strip in (
                ("top", region[:edge]),
                ("bottom", region[-edge:]),
                ("left", region[:, :edge]),
                ("right", region[:, -edge:]),
            )
            if strip.mean() > 0.02
        ]
        low, high = self.COVERAGE
        passed = low <= coverage <= high and not touching
        note = f"The product covers {coverage:.0%} of the frame ({low:.0%}–{high:.0%} passes)"
        note += f"; it is cut off at the {' and '.join(touching)} edge." if touching else "."
        score = 0.0 if touching else min(1.0, coverage / low, (1 - coverage) / (1 - high))
        return CheckResult("framing", passed, round(score, 3), note)

    def sharpness(self, rgb: np.ndarray, region: np.ndarray) -> CheckResult:
        luma = rgb @ np.array([0.299, 0.587, 0.114])
        inner = ndimage.binary_erosion(region, iterations=2)
        where = inner if inner.sum() >= 50 else np.ones_like(inner)
        variance = float(ndimage.laplace(luma)[where].var())
        return CheckResult(
            "sharpness",
            variance >= self.MIN_SHARPNESS,
            min(1.0, variance / (4 * self.MIN_SHARPNESS)),
            f"Laplacian variance {variance:.2e} over the product "
            f"(at least {self.MIN_SHARPNESS:.0e} passes).",
        )

    def near_duplicate(self, image: Image.Image, request: QualityRequest) -> CheckResult:
        def small(picture: Image.Image) -> np.ndarray:
            return (
                np.asarray(picture.resize((48, 48), Image.Resampling.BOX), dtype=np.float64) / 255
            )

        mine = small(image)
        inputs = [
            ("the flat-lay", request.product_image),
            *((f"reference {n}", ref.content) for n, ref in enumerate(request.references, 1)),
        ]
        closest, name = min(
            (float(np.abs(mine - small(decode_image(data, label, max_side=128))).mean()), label)
            for label, data in inputs
        )
        return CheckResult(
            "near_duplicate",
            closest >= self.MIN_DIFFERENCE,
            min(1.0, closest / 0.2),
            f"Closest input is {name}, mean difference {closest:.3f} "
            f"(under {self.MIN_DIFFERENCE} is a copy).",
        )

# The product table keeps one product per line, so lines run long.
# ruff: noqa: E501
"""A deterministic demo catalog: historical products with sales, new products, and their photos.

The photos are drawn flat-lays rather than real photographs so the demo needs no downloads and
every run writes byte-identical files: the same sku always gets the same picture, so an
embedding cache keyed by image hash stays warm and tests can compare bytes.

The product table is hand-written so a reader can see which products are *visual twins* (same
garment and colour) of each new product, which is what the retrieval feature should find:
bestseller twins it must return, and non-bestseller twins (sales at or just under the 1500
threshold) that it must filter out.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

RGB = tuple[int, int, int]
Point = tuple[float, float]

COLOURS: dict[str, RGB] = {
    "navy": (31, 42, 77),
    "sky blue": (128, 170, 214),
    "sage green": (163, 190, 150),
    "camel": (193, 145, 94),
    "dark grey": (72, 74, 78),
    "light grey": (196, 198, 201),
    "black": (30, 30, 32),
    "white": (244, 243, 238),
    "cream": (236, 225, 200),
    "red": (190, 36, 44),
    "pink": (232, 160, 176),
    "mustard": (212, 160, 40),
    "burgundy": (110, 30, 48),
    "olive": (112, 118, 64),
}
SURFACES: tuple[RGB, ...] = ((238, 235, 228), (226, 227, 229), (236, 226, 210))
PATTERNS = ("solid", "stripes", "dots", "floral", "check", "knit", "tulle", "geometric")


@dataclass(frozen=True)
class Historical:
    sku: str
    category: str
    garment: str
    color: str  # a two-piece set names both colours: "sky blue and light grey"
    pattern: str
    style: str
    season: str
    sales_count: int
    price: str
    description: str


@dataclass(frozen=True)
class NewProduct:
    new_id: str
    category: str
    garment: str
    color: str
    pattern: str
    style: str
    season: str
    prompt_hint: str

    @property
    def name(self) -> str:
        """The title a shop would give it: "Camel knit turtleneck dress"."""
        return f"{self.color} {self.pattern} {self.garment.replace('_', ' ')}".capitalize()


H = Historical
# Twins of the new products are marked; "x" marks a bestseller that deliberately looks different.
HISTORICAL: tuple[Historical, ...] = (
    H(
        "SKU001",
        "dress",
        "maxi_dress",
        "sage green",
        "floral",
        "bohemian",
        "summer",
        4200,
        "89.00",
        "Sage green floral maxi dress in airy chiffon with ruffle tiers, a flared hem and relaxed fit for summer garden parties.",
    ),  # twin NEW002
    H(
        "SKU002",
        "dress",
        "maxi_dress",
        "sage green",
        "floral",
        "bohemian",
        "spring",
        1500,
        "79.90",
        "Light green floral print maxi dress in soft viscose with a ruffle neckline, tiered skirt and easy fit for beach weekends.",
    ),  # twin NEW002, exactly at the threshold
    H(
        "SKU003",
        "dress",
        "turtleneck_dress",
        "camel",
        "knit",
        "minimalist",
        "autumn",
        3650,
        "99.00",
        "Camel ribbed knit turtleneck dress with long sleeves, a midi length and slim fit, cosy for autumn city walks.",
    ),  # twin NEW003
    H(
        "SKU004",
        "dress",
        "turtleneck_dress",
        "camel",
        "knit",
        "minimalist",
        "winter",
        1460,
        "94.50",
        "Warm camel wool-blend turtleneck knit dress with cable texture, long sleeves and a relaxed fit for winter office days.",
    ),  # twin NEW003, not a bestseller
    H(
        "SKU005",
        "dress",
        "midi_dress",
        "red",
        "dots",
        "elegant",
        "summer",
        5800,
        "69.90",
        "Red polka dot A-line midi dress in light cotton poplin with a tie waist and fitted bodice for summer dinners.",
    ),  # x
    H(
        "SKU006",
        "dress",
        "midi_dress",
        "navy",
        "solid",
        "elegant",
        "spring",
        2300,
        "119.00",
        "Navy crepe A-line midi dress with slim shoulder straps, a seamed waist and flowing skirt for spring weddings and evening events.",
    ),  # x
    H(
        "SKU007",
        "dress",
        "midi_dress",
        "black",
        "solid",
        "minimalist",
        "autumn",
        900,
        "74.00",
        "Black jersey midi dress with a clean square neckline, A-line skirt and regular fit for everyday office wear.",
    ),
    H(
        "SKU008",
        "dress",
        "maxi_dress",
        "mustard",
        "stripes",
        "casual",
        "summer",
        320,
        "59.90",
        "Mustard striped maxi dress in breathable linen blend with tiered ruffles and a loose fit for holiday strolls.",
    ),
    H(
        "SKU009",
        "dress",
        "midi_dress",
        "pink",
        "floral",
        "romantic",
        "spring",
        1720,
        "84.00",
        "Pink floral midi dress in soft georgette with delicate straps, a flared skirt and feminine fit for spring brunches.",
    ),
    H(
        "SKU010",
        "dress",
        "turtleneck_dress",
        "burgundy",
        "solid",
        "elegant",
        "winter",
        610,
        "109.00",
        "Burgundy fine knit turtleneck dress with long sleeves, a straight silhouette and slim fit for festive winter evenings.",
    ),
    H(
        "SKU011",
        "knitwear",
        "set",
        "sky blue and light grey",
        "knit",
        "romantic",
        "autumn",
        3100,
        "139.00",
        "Sky blue knit cardigan and grey tulle midi skirt set with pearl buttons, cropped fit and layered volume for autumn dates.",
    ),  # twin NEW001
    H(
        "SKU012",
        "knitwear",
        "cardigan",
        "sky blue",
        "knit",
        "casual",
        "autumn",
        2050,
        "64.90",
        "Sky blue chunky knit cardigan in soft wool blend with a button placket, ribbed cuffs and relaxed fit for weekend walks.",
    ),
    H(
        "SKU013",
        "knitwear",
        "sweater",
        "mustard",
        "knit",
        "casual",
        "winter",
        1900,
        "54.90",
        "Mustard cable knit sweater in cosy wool with a round neck, ribbed hem and oversized fit for winter weekends outdoors.",
    ),  # x
    H(
        "SKU014",
        "knitwear",
        "cardigan",
        "cream",
        "knit",
        "minimalist",
        "winter",
        1480,
        "69.00",
        "Cream merino knit cardigan with mother-of-pearl buttons, long sleeves and a straight fit for layering on chilly office days.",
    ),
    H(
        "SKU015",
        "knitwear",
        "sweater",
        "navy",
        "stripes",
        "casual",
        "autumn",
        760,
        "49.90",
        "Navy and white striped cotton knit sweater with a boat neck, long sleeves and regular fit for casual autumn outings.",
    ),
    H(
        "SKU016",
        "knitwear",
        "cardigan",
        "burgundy",
        "knit",
        "classic",
        "winter",
        240,
        "72.00",
        "Burgundy cable knit cardigan in thick wool with gold buttons, patch pockets and a classic fit for cold winter mornings.",
    ),
    H(
        "SKU017",
        "knitwear",
        "sweater",
        "light grey",
        "knit",
        "minimalist",
        "winter",
        6400,
        "59.00",
        "Light grey ribbed knit sweater in soft cashmere blend with a crew neck and relaxed fit for cosy minimalist winter outfits.",
    ),
    H(
        "SKU018",
        "knitwear",
        "set",
        "pink and cream",
        "knit",
        "romantic",
        "spring",
        1100,
        "129.00",
        "Pink knit cardigan and cream tulle skirt set with tiny buttons, a fitted waist and soft layers for spring parties.",
    ),
    H(
        "SKU019",
        "top",
        "cowl_top",
        "dark grey",
        "geometric",
        "ethnic",
        "autumn",
        2750,
        "58.00",
        "Dark grey ethnic print cowl neck tunic top in draped viscose with geometric bands, long sleeves and loose fit for autumn.",
    ),  # twin NEW004
    H(
        "SKU020",
        "top",
        "cowl_top",
        "dark grey",
        "geometric",
        "ethnic",
        "winter",
        1350,
        "62.00",
        "Charcoal grey cowl neck top with ethnic geometric embroidery, soft jersey drape and relaxed fit for travel and winter markets.",
    ),  # twin NEW004, not a bestseller
    H(
        "SKU021",
        "top",
        "tshirt",
        "white",
        "stripes",
        "casual",
        "summer",
        8900,
        "19.90",
        "White and navy striped cotton t-shirt with short sleeves, a round neck and regular fit for sunny summer days.",
    ),  # x
    H(
        "SKU022",
        "top",
        "tshirt",
        "red",
        "solid",
        "casual",
        "summer",
        1650,
        "24.90",
        "Red organic cotton t-shirt with short sleeves, a crew neck and relaxed fit for casual summer weekends and festivals.",
    ),  # x
    H(
        "SKU023",
        "top",
        "cowl_top",
        "black",
        "solid",
        "elegant",
        "autumn",
        1410,
        "45.00",
        "Black satin cowl neck top with long sleeves, soft draping and a fluid fit for elegant autumn evenings out.",
    ),
    H(
        "SKU024",
        "top",
        "tshirt",
        "pink",
        "dots",
        "casual",
        "spring",
        180,
        "22.90",
        "Pink polka dot cotton jersey t-shirt with short sleeves, a scoop neck and slim fit for relaxed spring days.",
    ),
    H(
        "SKU025",
        "top",
        "tshirt",
        "olive",
        "solid",
        "minimalist",
        "summer",
        2200,
        "21.90",
        "Olive green linen blend t-shirt with short sleeves, a boxy silhouette and relaxed fit for minimalist summer wardrobes.",
    ),
    H(
        "SKU026",
        "skirt",
        "skirt",
        "black",
        "check",
        "elegant",
        "autumn",
        1250,
        "59.00",
        "Black and grey check wool skirt with a wide waistband, soft pleats and A-line fit for autumn office days.",
    ),
    H(
        "SKU027",
        "skirt",
        "skirt",
        "light grey",
        "tulle",
        "romantic",
        "spring",
        2600,
        "49.90",
        "Light grey tulle midi skirt with layered mesh, an elastic waistband and flowing volume for romantic spring evenings.",
    ),
    H(
        "SKU028",
        "skirt",
        "skirt",
        "mustard",
        "floral",
        "bohemian",
        "summer",
        430,
        "39.90",
        "Mustard floral print skirt in light cotton with gathered pleats, a flared hem and easy fit for bohemian summer festivals.",
    ),
    H(
        "SKU029",
        "skirt",
        "skirt",
        "navy",
        "dots",
        "casual",
        "spring",
        1990,
        "42.00",
        "Navy polka dot skirt in crisp cotton with a fitted waistband, side pockets and flared A-line fit for spring picnics.",
    ),
    H(
        "SKU030",
        "skirt",
        "skirt",
        "camel",
        "solid",
        "minimalist",
        "autumn",
        1150,
        "54.00",
        "Camel suede-effect A-line skirt with a wide waistband, front seams and regular fit for minimalist autumn looks.",
    ),
    H(
        "SKU031",
        "outerwear",
        "jacket",
        "camel",
        "solid",
        "minimalist",
        "autumn",
        3300,
        "189.00",
        "Camel wool blend blazer jacket with notch lapels, two buttons and tailored fit for autumn workdays and city walks.",
    ),
    H(
        "SKU032",
        "outerwear",
        "jacket",
        "black",
        "solid",
        "elegant",
        "winter",
        1700,
        "159.00",
        "Black tailored jacket in structured crepe with sharp lapels, flap pockets and a slim fit for elegant winter events.",
    ),
    H(
        "SKU033",
        "outerwear",
        "jacket",
        "navy",
        "check",
        "classic",
        "autumn",
        820,
        "149.00",
        "Navy check tweed jacket with wide lapels, patch pockets and a classic fit for autumn weekends in the countryside.",
    ),
    H(
        "SKU034",
        "outerwear",
        "jacket",
        "olive",
        "solid",
        "casual",
        "spring",
        80,
        "119.00",
        "Olive cotton utility jacket with notch lapels, button front and relaxed fit for casual spring outings and travel.",
    ),
    H(
        "SKU035",
        "outerwear",
        "jacket",
        "cream",
        "check",
        "elegant",
        "winter",
        1499,
        "169.00",
        "Cream bouclé check jacket with soft lapels, gold buttons and a cropped fit for elegant winter lunches.",
    ),
    H(
        "SKU036",
        "trousers",
        "trousers",
        "black",
        "solid",
        "minimalist",
        "autumn",
        2450,
        "69.90",
        "Black tailored trousers in stretch twill with pressed creases, slant pockets and straight fit for minimalist office outfits.",
    ),
    H(
        "SKU037",
        "trousers",
        "trousers",
        "cream",
        "solid",
        "elegant",
        "summer",
        1100,
        "64.00",
        "Cream wide leg linen trousers with a high waist, pleated front and flowing fit for elegant summer evenings.",
    ),
    H(
        "SKU038",
        "trousers",
        "trousers",
        "navy",
        "stripes",
        "casual",
        "spring",
        560,
        "54.90",
        "Navy pinstripe cotton trousers with an elastic waist, side pockets and relaxed fit for casual spring days.",
    ),
    H(
        "SKU039",
        "trousers",
        "trousers",
        "dark grey",
        "check",
        "classic",
        "winter",
        1430,
        "79.00",
        "Dark grey check wool trousers with a belted waist, front creases and regular fit for classic winter workwear.",
    ),
    H(
        "SKU040",
        "trousers",
        "trousers",
        "sky blue",
        "solid",
        "casual",
        "summer",
        9000,
        "39.90",
        "Sky blue denim-look cotton trousers with five pockets, a mid rise and straight fit for casual summer weekends.",
    ),
)

# Modelled on the seed article's four new products.
NEW_PRODUCTS: tuple[NewProduct, ...] = (
    NewProduct(
        "NEW001",
        "knitwear",
        "set",
        "sky blue and light grey",
        "knit",
        "romantic",
        "autumn",
        "cosy autumn cafe terrace in soft morning light, relaxed seated pose",
    ),
    NewProduct(
        "NEW002",
        "dress",
        "maxi_dress",
        "sage green",
        "floral",
        "bohemian",
        "summer",
        "sunny summer meadow with wildflowers, breezy walking pose",
    ),
    NewProduct(
        "NEW003",
        "dress",
        "turtleneck_dress",
        "camel",
        "knit",
        "minimalist",
        "autumn",
        "autumn park at golden hour, relaxed walking pose",
    ),
    NewProduct(
        "NEW004",
        "top",
        "cowl_top",
        "dark grey",
        "geometric",
        "ethnic",
        "autumn",
        "warm desert market street at dusk, calm standing pose",
    ),
)

# A later sales export: SKU002 crosses the threshold, SKU035 stays just below it.
SALES_UPDATE: tuple[tuple[str, int], ...] = (
    ("SKU002", 1620),
    ("SKU014", 1530),
    ("SKU021", 9120),
    ("SKU034", 95),
    ("SKU035", 1499),
)

PRODUCTS_HEADER = (
    "product_id",
    "image_path",
    "category",
    "color",
    "style",
    "season",
    "sales_count",
    "description",
    "price",
)
# With the optional name column, last: the seed's columns keep their places.
NEW_PRODUCTS_HEADER = (
    "new_id",
    "image_path",
    "category",
    "style",
    "season",
    "prompt_hint",
    "name",
)
SALES_UPDATE_HEADER = ("sku", "sales_count")


# ----------------------------------------------------------------------------- drawing


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _shade(rgb: RGB, factor: float) -> RGB:
    return tuple(min(255, round(v * factor)) for v in rgb)  # type: ignore[return-value]


def _contrast(rgb: RGB) -> RGB:
    """Print colour that reads on the fabric: navy on pale cloth, cream on dark or bright."""
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return COLOURS["navy"] if luma > 170 else COLOURS["cream"]


def _mirror(left: Sequence[Point]) -> list[Point]:
    """Garments are symmetric: outline the left half from top centre to bottom centre."""
    return [*left, *((1 - x, y) for x, y in reversed(left))]


class _Canvas:
    """Paints at twice the output size and box-reduces at the end, which anti-aliases edges.

    Coordinates are fractions of the canvas; `frame` shrinks and shifts them so the two
    pieces of a set can reuse the single-garment drawings.
    """

    def __init__(self, size: tuple[int, int], rng: random.Random) -> None:
        self.w, self.h = size[0] * 2, size[1] * 2
        self.s = self.w / 512  # pattern and line sizes are designed for 512 px wide
        self.rng = rng
        self.noise = np.random.default_rng(rng.getrandbits(64))
        self.frame = (1.0, 1.0, 0.0)  # x scale about the centre, y scale, y offset
        # The surface is textured at output size: finer grain would be averaged away anyway.
        surface = np.array(rng.choice(SURFACES), np.float32)
        blotches = self._blotches(8, 128, 5, size).astype(np.float32) - 128
        grain = self.noise.normal(0, 2.5, (size[1], size[0], 1))
        pixels = np.clip(np.rint(surface + blotches[..., None] + grain), 0, 255).astype(np.uint8)
        self.image = Image.fromarray(pixels).resize((self.w, self.h), Image.Resampling.NEAREST)

    def _blotches(
        self, cells: int, level: int, amplitude: int, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """Soft low-frequency noise, like uneven light on a table or on folded fabric."""
        grid = level + self.noise.integers(-amplitude, amplitude, (cells, cells), endpoint=True)
        small = Image.fromarray(np.clip(grid, 0, 255).astype(np.uint8))
        return np.asarray(small.resize(size or (self.w, self.h), Image.Resampling.BICUBIC))

    def xy(self, points: Sequence[Point]) -> list[Point]:
        sx, sy, dy = self.frame
        return [((0.5 + (x - 0.5) * sx) * self.w, (dy + y * sy) * self.h) for x, y in points]

    def box(self, cx: float, cy: float, rx: float, ry: float) -> list[Point]:
        return self.xy([(cx - rx, cy - ry), (cx + rx, cy + ry)])

    def piece(
        self,
        outline: Sequence[Point],
        rgb: RGB,
        pattern: str,
        *,
        ellipses: Sequence[Sequence[Point]] = (),
        cuts: Sequence[Sequence[Point]] = (),
        cut_ellipses: Sequence[Sequence[Point]] = (),
    ) -> None:
        """Lay one piece of cloth: its shadow on what is below, then the patterned fabric."""
        mask = Image.new("L", (self.w, self.h), 0)
        draw = ImageDraw.Draw(mask)
        if outline:
            draw.polygon(self.xy(outline), fill=255)
        for bbox in ellipses:
            draw.ellipse(bbox, fill=255)
        for cut in cuts:
            draw.polygon(self.xy(cut), fill=0)
        for bbox in cut_ellipses:
            draw.ellipse(bbox, fill=0)
        # The shadow is soft, so a quarter-size one is as good and much cheaper to blur.
        offset = Image.new("L", (self.w // 4, self.h // 4), 0)
        offset.paste(mask.reduce(4), (round(1.75 * self.s), round(2.5 * self.s)))
        shadow = (
            offset.filter(ImageFilter.GaussianBlur(2.25 * self.s))
            .resize(mask.size, Image.Resampling.BILINEAR)
            .point(lambda v: 255 - 0.3 * v)
        )
        self.image = ImageChops.multiply(self.image, shadow.convert("RGB"))

        # Folds catch the light unevenly, and a darker hem line separates pale cloth from the
        # pale surface.
        edge = ImageChops.subtract(mask, mask.filter(ImageFilter.GaussianBlur(2 * self.s)), 0.5)
        light = ImageChops.subtract(
            Image.fromarray(self._blotches(6, 244, 10)), edge.point(lambda v: 0.3 * v)
        )
        fabric = ImageChops.multiply(_pattern_fill(self, rgb, pattern), light.convert("RGB"))
        self.image.paste(fabric, mask=mask.point(lambda v: 0.8 * v) if pattern == "tulle" else mask)

    def line(self, points: Sequence[Point], rgb: RGB, width: float = 2) -> None:
        ImageDraw.Draw(self.image).line(
            self.xy(points), fill=rgb, width=round(width * self.s), joint="curve"
        )

    def button(self, x: float, y: float, rgb: RGB, r: float = 0.012) -> None:
        ImageDraw.Draw(self.image).ellipse(
            self.box(x, y, r, r * 0.8), fill=rgb, outline=_shade(rgb, 0.7), width=round(self.s)
        )


def _pattern_fill(c: _Canvas, rgb: RGB, pattern: str) -> Image.Image:
    """The fabric for a whole canvas; the piece mask cuts the garment out of it."""
    base = _mix(rgb, (255, 255, 255), 0.2) if pattern == "tulle" else rgb
    img = Image.new("RGB", (c.w, c.h), base)
    draw = ImageDraw.Draw(img)
    s, rng, ink = c.s, c.rng, _contrast(rgb)
    if pattern == "stripes":
        period, y = 34 * s, rng.uniform(0, 34 * s)
        while y < c.h:
            draw.rectangle((0, y, c.w, y + 11 * s), fill=ink)
            y += period
    elif pattern == "dots":
        step, r = round(38 * s), 6 * s
        for row, y in enumerate(range(0, c.h + step, step)):
            for x in range(-step, c.w + step, step):
                cx = x + (step // 2 if row % 2 else 0)
                draw.ellipse((cx - r, y - r, cx + r, y + r), fill=ink)
    elif pattern == "floral":
        petals = [_mix(rgb, (255, 255, 255), 0.75), (240, 170, 190), (250, 235, 200)]
        unit = ((0, -1), (0.95, -0.31), (0.59, 0.81), (-0.59, 0.81), (-0.95, -0.31))
        for _ in range(int(c.w * c.h / (44 * s) ** 2)):
            x, y, r = rng.uniform(0, c.w), rng.uniform(0, c.h), rng.uniform(4.5, 7) * s
            colour, flip = rng.choice(petals), rng.choice((1, -1))
            for ux, uy in unit:
                px, py = x + ux * r, y + uy * r * flip
                draw.ellipse((px - r * 0.7, py - r * 0.7, px + r * 0.7, py + r * 0.7), fill=colour)
            draw.ellipse(
                (x - r * 0.45, y - r * 0.45, x + r * 0.45, y + r * 0.45), fill=(222, 170, 60)
            )
    elif pattern == "knit":
        dark, pitch = _shade(rgb, 0.78), 28 * s
        x = rng.uniform(0, pitch)
        while x < c.w + pitch:
            draw.line(
                (x - pitch / 2, 0, x - pitch / 2, c.h), fill=_shade(rgb, 0.86), width=round(2 * s)
            )
            for y in range(0, c.h, round(16 * s)):  # chevrons read as a cable stitch
                draw.line((x - 7 * s, y, x, y + 8 * s, x + 7 * s, y), fill=dark, width=round(2 * s))
            x += pitch
    elif pattern == "geometric":
        accents, band, y = ((176, 92, 58), (232, 220, 196)), 30 * s, rng.uniform(20, 60) * s
        while y < c.h:
            for k, x in enumerate(range(0, c.w, round(band))):
                tri = [(x, y + band), (x + band / 2, y), (x + band, y + band)]
                draw.polygon(tri, fill=accents[k % 2])
            for edge in (y - 5 * s, y + band + 5 * s):
                draw.line((0, edge, c.w, edge), fill=accents[1], width=round(2 * s))
            y += 120 * s
    if pattern not in ("check", "tulle"):
        return img
    pixels = np.asarray(img, np.float32).copy()
    if pattern == "check":
        period, wide = round(64 * s), round(20 * s)
        xs, ys = np.arange(c.w) % period, np.arange(c.h) % period
        darker = 0.2 * (xs < wide)[None, :] + 0.2 * (ys < wide)[:, None]
        pixels *= (1 - darker)[..., None]
        thin = (np.abs(xs - period // 2) < s)[None, :] | (np.abs(ys - period // 2) < s)[:, None]
        pixels[thin] = pixels[thin] * 0.4 + np.array(ink, np.float32) * 0.6
    else:
        xs = np.arange(c.w, dtype=np.float32) / (46 * s)
        folds = np.abs(xs % 2 - 1) - 0.5  # triangle wave: gathered vertical folds
        mesh = (np.arange(c.w) % round(5 * s) == 0)[None, :] | (np.arange(c.h) % round(5 * s) == 0)[
            :, None
        ]
        pixels *= (1 + 0.12 * folds[None, :] - 0.05 * mesh)[..., None]
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


Garment = Callable[[_Canvas, RGB, str, RGB], None]


def _tshirt(c: _Canvas, rgb: RGB, pattern: str, _: RGB) -> None:
    left = [
        (0.40, 0.19),
        (0.29, 0.22),
        (0.13, 0.34),
        (0.20, 0.44),
        (0.31, 0.37),
        (0.31, 0.80),
        (0.5, 0.80),
    ]
    c.piece(_mirror(left), rgb, pattern, cut_ellipses=[c.box(0.5, 0.19, 0.1, 0.045)])
    _cuffs(c, rgb, ((0.15, 0.335), (0.21, 0.42)))  # sleeve hems


def _cuffs(c: _Canvas, rgb: RGB, left: tuple[Point, Point]) -> None:
    (x0, y0), (x1, y1) = left
    for a, b in (((x0, y0), (x1, y1)), ((1 - x0, y0), (1 - x1, y1))):
        c.line([a, b], _shade(rgb, 0.75), 3)


def _ribs(c: _Canvas, rgb: RGB, hem: float, half_width: float) -> None:
    for x in np.linspace(0.5 - half_width + 0.02, 0.5 + half_width - 0.02, 14):
        c.line([(float(x), hem - 0.035), (float(x), hem)], _shade(rgb, 0.8))


def _sweater(c: _Canvas, rgb: RGB, pattern: str, _: RGB) -> None:
    """Oversized: boxy body, dropped shoulders, sleeves spread wide."""
    left = [
        (0.40, 0.19),
        (0.27, 0.22),
        (0.20, 0.30),
        (0.05, 0.52),
        (0.12, 0.59),
        (0.28, 0.42),
        (0.28, 0.72),
        (0.5, 0.72),
    ]
    c.piece(_mirror(left), rgb, pattern, cut_ellipses=[c.box(0.5, 0.19, 0.1, 0.04)])
    _ribs(c, rgb, 0.72, 0.22)
    _cuffs(c, rgb, ((0.07, 0.49), (0.14, 0.56)))


def _cardigan(c: _Canvas, rgb: RGB, pattern: str, _: RGB, hem: float = 0.80) -> None:
    """Long and slim, sleeves hanging down, open V neck over a buttoned placket."""
    left = [
        (0.41, 0.17),
        (0.30, 0.20),
        (0.24, 0.27),
        (0.12, 0.65),
        (0.21, 0.68),
        (0.31, 0.38),
        (0.31, hem),
        (0.5, hem),
    ]
    c.piece(_mirror(left), rgb, pattern, cuts=[[(0.41, 0.17), (0.59, 0.17), (0.5, 0.36)]])
    _ribs(c, rgb, hem, 0.19)
    _cuffs(c, rgb, ((0.14, 0.60), (0.22, 0.63)))
    c.line([(0.5, 0.36), (0.5, hem)], _shade(rgb, 0.7), 3)
    for k in range(5):
        c.button(0.5, 0.40 + k * (hem - 0.44) / 4, (240, 236, 228))


def _turtleneck_dress(c: _Canvas, rgb: RGB, pattern: str, _: RGB) -> None:
    body = _mirror(
        [
            (0.42, 0.17),
            (0.31, 0.20),
            (0.25, 0.27),
            (0.13, 0.65),
            (0.21, 0.68),
            (0.32, 0.38),
            (0.31, 0.50),
            (0.26, 0.90),
            (0.5, 0.91),
        ]
    )
    c.piece(body, rgb, pattern)
    c.piece([(0.42, 0.075), (0.58, 0.075), (0.59, 0.19), (0.41, 0.19)], rgb, pattern)
    c.line([(0.415, 0.125), (0.585, 0.125)], _shade(rgb, 0.7), 3)  # the folded-down collar
    _cuffs(c, rgb, ((0.15, 0.60), (0.22, 0.63)))


def _midi_dress(c: _Canvas, rgb: RGB, pattern: str, _: RGB) -> None:
    left = [
        (0.5, 0.21),
        (0.44, 0.19),
        (0.42, 0.10),
        (0.38, 0.10),
        (0.35, 0.24),
        (0.38, 0.40),
        (0.20, 0.86),
        (0.35, 0.875),
        (0.5, 0.88),
    ]
    c.piece(_mirror(left), rgb, pattern)
    c.line([(0.38, 0.40), (0.62, 0.40)], _shade(rgb, 0.7), 3)  # waist seam and tie
    c.line([(0.45, 0.40), (0.41, 0.52)], _shade(rgb, 0.8), 5)
    c.line([(0.47, 0.40), (0.50, 0.53)], _shade(rgb, 0.8), 5)


def _maxi_dress(c: _Canvas, rgb: RGB, pattern: str, _: RGB) -> None:
    left = [
        (0.5, 0.19),
        (0.44, 0.17),
        (0.42, 0.06),
        (0.38, 0.06),
        (0.35, 0.20),
        (0.39, 0.34),
        (0.12, 0.94),
        (0.5, 0.95),
    ]
    ruffles = [c.box(0.145 + k * 0.0473, 0.945, 0.03, 0.022) for k in range(16)]
    c.piece(_mirror(left), rgb, pattern, ellipses=ruffles)
    c.line([(0.39, 0.34), (0.61, 0.34)], _shade(rgb, 0.7), 3)
    for y in (0.56, 0.76):  # ruffle tiers: a wavy seam across the skirt at that height
        half = 0.11 + (y - 0.34) / 0.60 * 0.27
        xs = np.linspace(0.5 - half, 0.5 + half, 24)
        c.line(
            [(float(x), y + (0.006 if k % 2 else -0.006)) for k, x in enumerate(xs)],
            _shade(rgb, 0.72),
            3,
        )


def _skirt(c: _Canvas, rgb: RGB, pattern: str, _: RGB) -> None:
    c.piece(
        _mirror([(0.5, 0.26), (0.33, 0.26), (0.18, 0.80), (0.34, 0.815), (0.5, 0.82)]), rgb, pattern
    )
    for top, bottom in ((0.40, 0.29), (0.46, 0.43), (0.54, 0.57), (0.60, 0.71)):
        c.line([(top, 0.27), (bottom, 0.81)], _shade(rgb, 0.82), 2)  # pleats
    c.piece(
        [(0.33, 0.20), (0.67, 0.20), (0.67, 0.265), (0.33, 0.265)],
        rgb,
        "solid" if pattern == "tulle" else pattern,
    )


def _trousers(c: _Canvas, rgb: RGB, pattern: str, _: RGB) -> None:
    c.piece(
        _mirror([(0.5, 0.15), (0.32, 0.15), (0.29, 0.92), (0.47, 0.92), (0.5, 0.40)]), rgb, pattern
    )
    c.piece([(0.32, 0.10), (0.68, 0.10), (0.68, 0.155), (0.32, 0.155)], rgb, pattern)
    dark = _shade(rgb, 0.7)
    c.line([(0.5, 0.155), (0.5, 0.33)], dark, 3)  # fly
    for x0, x1 in ((0.385, 0.38), (0.615, 0.62)):
        c.line([(x0, 0.20), (x1, 0.91)], _shade(rgb, 0.82), 2)  # pressed creases
    c.line([(0.35, 0.155), (0.32, 0.25)], dark, 2)  # slant pockets
    c.line([(0.65, 0.155), (0.68, 0.25)], dark, 2)


def _jacket(c: _Canvas, rgb: RGB, pattern: str, _: RGB) -> None:
    left = [
        (0.5, 0.44),
        (0.42, 0.16),
        (0.27, 0.19),
        (0.21, 0.26),
        (0.15, 0.74),
        (0.25, 0.75),
        (0.29, 0.40),
        (0.29, 0.76),
        (0.5, 0.77),
    ]  # broad shoulders, sleeves hang straight
    c.piece(_mirror(left), rgb, pattern)
    for side in (1, -1):
        lapel = [(0.42, 0.16), (0.35, 0.19), (0.38, 0.26), (0.34, 0.28), (0.49, 0.46)]
        c.piece([(0.5 + (x - 0.5) * side, y) for x, y in lapel], _shade(rgb, 0.88), "solid")
        c.line([(0.5 + 0.12 * side, 0.60), (0.5 + 0.19 * side, 0.60)], _shade(rgb, 0.65), 3)
    c.line([(0.5, 0.44), (0.5, 0.77)], _shade(rgb, 0.65), 2)
    for y in (0.52, 0.62):
        c.button(0.5, y, _shade(rgb, 0.6))


def _cowl_top(c: _Canvas, rgb: RGB, pattern: str, _: RGB) -> None:
    left = [
        (0.40, 0.18),
        (0.29, 0.21),
        (0.22, 0.29),
        (0.07, 0.66),
        (0.22, 0.70),
        (0.31, 0.40),
        (0.30, 0.82),
        (0.5, 0.84),
    ]
    c.piece(_mirror(left), rgb, pattern)
    c.piece([], rgb, "solid", ellipses=[c.box(0.5, 0.205, 0.15, 0.07)])
    draw = ImageDraw.Draw(c.image)
    draw.ellipse(c.box(0.5, 0.16, 0.075, 0.022), fill=_shade(rgb, 0.45))
    for k in range(3):  # the drape hangs in U-shaped folds below the neck opening
        draw.arc(
            c.box(0.5, 0.16, 0.09 + 0.02 * k, 0.035 + 0.03 * k),
            20,
            160,
            fill=_shade(rgb, 0.65),
            width=round(3 * c.s),
        )


def _two_piece_set(c: _Canvas, rgb: RGB, pattern: str, skirt_rgb: RGB) -> None:
    """A knit cardigan over a tulle skirt, each piece reusing its single-garment drawing."""
    c.frame = (0.95, 0.8, 0.30)
    _skirt(c, skirt_rgb, "tulle", skirt_rgb)
    c.frame = (0.8, 0.8, -0.086)
    _cardigan(c, rgb, pattern, rgb, hem=0.73)
    c.frame = (1.0, 1.0, 0.0)


GARMENTS: dict[str, Garment] = {
    "tshirt": _tshirt,
    "sweater": _sweater,
    "cardigan": _cardigan,
    "jacket": _jacket,
    "midi_dress": _midi_dress,
    "maxi_dress": _maxi_dress,
    "turtleneck_dress": _turtleneck_dress,
    "skirt": _skirt,
    "trousers": _trousers,
    "cowl_top": _cowl_top,
    "set": _two_piece_set,
}


def draw_flatlay(
    garment: str,
    rgb: RGB,
    pattern: str,
    *,
    seed: str,
    size: tuple[int, int] = (512, 640),
    secondary: RGB = COLOURS["light grey"],
) -> Image.Image:
    """A garment laid flat on a plain surface, seen from above; the same seed, the same pixels.

    `secondary` colours the skirt of a two-piece "set" and is ignored by other garments.
    """
    if garment not in GARMENTS:
        raise ValueError(f"unknown garment {garment!r}; choose from {sorted(GARMENTS)}")
    if pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}; choose from {PATTERNS}")
    canvas = _Canvas(size, random.Random(f"catalog.sample:{seed}"))
    GARMENTS[garment](canvas, rgb, pattern, secondary)
    return canvas.image.reduce(2)


def _jittered(name: str, rng: random.Random) -> RGB:
    """Mostly a lighter or darker shade: independent channel shifts would tint dark greys."""
    shift = rng.randint(-9, 9)
    jittered = (max(0, min(255, v + shift + rng.randint(-2, 2))) for v in COLOURS[name])
    return tuple(jittered)  # type: ignore[return-value]


def product_photo(product: Historical | NewProduct) -> Image.Image:
    """Twins share garment and colour names; a per-product shade jitter keeps them non-identical."""
    key = product.sku if isinstance(product, Historical) else product.new_id
    rng = random.Random(f"catalog.sample.colour:{key}")
    main, _, skirt = product.color.partition(" and ")
    return draw_flatlay(
        product.garment,
        _jittered(main, rng),
        product.pattern,
        seed=key,
        secondary=_jittered(skirt or "light grey", rng),
    )


# ----------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class SampleCatalog:
    directory: Path
    products_csv: Path
    new_products_csv: Path
    sales_update_csv: Path
    images_zip: Path
    new_products_zip: Path
    images: tuple[Path, ...]
    new_images: tuple[Path, ...]
    sales_updates: int

    @property
    def historical_count(self) -> int:
        return len(self.images)

    @property
    def new_count(self) -> int:
        return len(self.new_images)

    @property
    def files(self) -> tuple[Path, ...]:
        return (
            self.products_csv,
            self.new_products_csv,
            self.sales_update_csv,
            self.images_zip,
            self.new_products_zip,
            *self.images,
            *self.new_images,
        )


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, subsampling="4:2:0", optimize=False)
    return buffer.getvalue()


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _write_photos(folder: Path, photos: dict[str, bytes]) -> tuple[Path, ...]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in photos.items():
        (folder / name).write_bytes(data)
    return tuple(folder / name for name in photos)


def _write_zip(path: Path, photos: dict[str, bytes]) -> None:
    """Stored, not deflated (JPEGs do not shrink), with fixed metadata so the bytes repeat."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in photos.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system, info.external_attr = 3, 0o644 << 16
            archive.writestr(info, data)


def write_sample_catalog(directory: Path) -> SampleCatalog:
    """Write the demo catalog files into `directory` (created if missing; files overwritten)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    photos = {f"{p.sku}.jpg": _jpeg(product_photo(p)) for p in HISTORICAL}
    new_photos = {f"{p.new_id}.jpg": _jpeg(product_photo(p)) for p in NEW_PRODUCTS}
    summary = SampleCatalog(
        directory=directory,
        products_csv=directory / "products.csv",
        new_products_csv=directory / "new_products.csv",
        sales_update_csv=directory / "sales_update.csv",
        images_zip=directory / "images.zip",
        new_products_zip=directory / "new_products.zip",
        images=_write_photos(directory / "images", photos),
        new_images=_write_photos(directory / "new_products", new_photos),
        sales_updates=len(SALES_UPDATE),
    )
    _write_csv(
        summary.products_csv,
        PRODUCTS_HEADER,
        [
            (
                p.sku,
                f"{p.sku}.jpg",
                p.category,
                p.color,
                p.style,
                p.season,
                p.sales_count,
                p.description,
                p.price,
            )
            for p in HISTORICAL
        ],
    )
    _write_csv(
        summary.new_products_csv,
        NEW_PRODUCTS_HEADER,
        [
            (p.new_id, f"{p.new_id}.jpg", p.category, p.style, p.season, p.prompt_hint, p.name)
            for p in NEW_PRODUCTS
        ],
    )
    _write_csv(summary.sales_update_csv, SALES_UPDATE_HEADER, SALES_UPDATE)
    _write_zip(summary.images_zip, photos)
    _write_zip(summary.new_products_zip, new_photos)
    return summary

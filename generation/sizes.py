"""Pixel sizes of Nano Banana 2's aspect ratios and size tiers."""

from fractions import Fraction

# At 1K (from OpenRouter's documentation); the four extreme ratios have no published size
# there, so they use exact multiples of the ratio at about the same area.
ONE_K = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
    "1:4": (512, 2048),
    "4:1": (2048, 512),
    "1:8": (384, 3072),
    "8:1": (3072, 384),
}
TIER_SCALE = {"0.5K": Fraction(1, 2), "1K": Fraction(1), "2K": Fraction(2), "4K": Fraction(4)}


def pixel_size(aspect_ratio: str, size_tier: str) -> tuple[int, int]:
    width, height = ONE_K[aspect_ratio]
    scale = TIER_SCALE[size_tier]
    return int(width * scale), int(height * scale)


def ratio_value(aspect_ratio: str) -> float:
    width, height = (int(part) for part in aspect_ratio.split(":"))
    return width / height

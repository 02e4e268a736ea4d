"""The two model providers of the pipeline and the plain data they exchange.

A style analyst reads the retrieved bestseller photos and writes one image-generation prompt;
an image generator makes the promo photo (in one call, or as a scene and then the product in
it); a quality checker compares the result with the flat-lay and the channel's rules. Each is
chosen by a dotted path in settings (STYLE_ANALYST_BACKEND, IMAGE_GENERATOR_BACKEND,
QUALITY_CHECKER_BACKEND), like Django's EMAIL_BACKEND: an OpenRouter implementation and an
offline one that does real, modest work without a network.

Only provider modules talk to model APIs; everything else passes these dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from core.openrouter import ProviderError  # noqa: F401 - the one error type, re-exported


@dataclass(frozen=True)
class ProductBrief:
    """A product's attributes. Names, descriptions and hints are untrusted text: data, not
    instructions."""

    sku: str
    category: str
    name: str = ""
    color: str = ""
    style: str = ""
    season: str = ""
    description: str = ""
    prompt_hint: str = ""


@dataclass(frozen=True)
class ReferenceImage:
    """A style reference: a bestseller's photo, or a proven promo image of this channel (one
    of ours whose CTR beat the channel's average), as image bytes, with its product's
    attributes and, for a proven image, its weight (the figures themselves are not sent)."""

    product: ProductBrief
    content: bytes
    rank: int
    score: float
    kind: str = "bestseller"  # or "proven"
    weight: float = 1.0  # a proven image's CTR over the channel's average (its lower bound)

    @property
    def proven(self) -> bool:
        return self.kind == "proven"


@dataclass(frozen=True)
class StyleRequest:
    product: ProductBrief
    references: list[ReferenceImage]


@dataclass(frozen=True)
class StyleResult:
    prompt: str  # one image-generation prompt, under 100 words
    model: str
    cost: (
        Decimal | None
    )  # None when the provider did not say; the pipeline then uses the price table
    usage: dict = field(default_factory=dict)
    offline: bool = False


class Stage:
    """What an image call makes: the whole photo, or one of the two stages of a staged preset."""

    SINGLE = "single"  # the flat-lay and the references in, the promo photo out
    SCENE = "scene"  # the references in, the empty scene (background and light) out
    PRODUCT = "product"  # the flat-lay and the scene in, the product placed into the scene out


@dataclass(frozen=True)
class ImageRequest:
    product: ProductBrief
    product_image: bytes  # the new product's flat-lay
    references: list[ReferenceImage]  # the retrieved bestsellers, best first
    style_prompt: str
    channel_name: str
    channel_rules: str
    white_background: bool
    aspect_ratio: str  # e.g. "3:4"
    size_tier: str  # "0.5K", "1K", "2K" or "4K"
    width: int  # the pixel size this ratio and tier stand for
    height: int
    feedback: str = ""  # a reviewer's feedback on the previous version
    variant: int = 1  # which candidate: variants of one request should differ
    stage: str = Stage.SINGLE
    scene_image: bytes | None = None  # the first stage's result, for Stage.PRODUCT
    overlay_text: str = ""  # exact text the image must show; "" means no text at all
    language: str = ""  # the overlay text's language

    def input_images(self) -> int:
        """How many images the call sends: what the model is billed for on the way in."""
        if self.stage == Stage.SCENE:
            return len(self.references)
        if self.stage == Stage.PRODUCT:
            return 2
        return 1 + len(self.references)


@dataclass(frozen=True)
class GeneratedImage:
    content: bytes  # PNG, JPEG or WebP bytes, validated by the pipeline
    prompt: str  # the final generation prompt as sent
    model: str
    cost: Decimal | None
    usage: dict = field(default_factory=dict)
    text: str = ""  # any text the model returned with the image (untrusted)
    offline: bool = False


# The quality checks, by name, with what each asks. Which apply depends on the preset.
CHECKS = {
    "garment_fidelity": "the garment's colour, pattern and cut match the flat-lay",
    "white_background": "the background is pure white (#FFFFFF)",
    "no_text": "no text, logos or watermarks anywhere in the image",
    "exact_text": "the requested text appears, spelled exactly, and no other text",
    "artefacts": "no labels, extra garments, distorted hands or faces, or cropped product",
}
# What the offline checker measures instead of `artefacts` (it cannot see hands or labels).
MEASURED_CHECKS = {
    "framing": "the product fills a fair share of the frame and is not cut off at its edge",
    "sharpness": "the image is not blurred",
    "blank": "the image shows something (not one flat colour)",
    "near_duplicate": "the image is not a copy of the flat-lay or a reference photo",
}
CHECK_LABELS = {**CHECKS, **MEASURED_CHECKS}


@dataclass(frozen=True)
class QualityRequest:
    product: ProductBrief
    product_image: bytes  # the flat-lay the result must match
    image: bytes  # the generated image
    references: list[ReferenceImage]
    channel_name: str
    channel_rules: str
    white_background: bool
    overlay_text: str = ""
    language: str = ""

    def checks(self) -> list[str]:
        """The checks that apply to this image, of CHECKS."""
        return [
            "garment_fidelity",
            *(["white_background"] if self.white_background else []),
            "exact_text" if self.overlay_text else "no_text",
            "artefacts",
        ]


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool | None  # None: the checker cannot judge this (said in the note)
    score: float | None  # 0..1, higher is better
    note: str

    def as_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "score": self.score, "note": self.note}


@dataclass(frozen=True)
class QualityReport:
    checks: list[CheckResult]
    model: str
    cost: Decimal | None
    usage: dict = field(default_factory=dict)
    offline: bool = False

    @property
    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if check.passed is False]


class StyleAnalyst:
    """Describes what the retrieved bestsellers' photos share, as one generation prompt."""

    model: str = ""
    is_offline: bool = False

    def analyse(self, request: StyleRequest) -> StyleResult:
        raise NotImplementedError


class ImageGenerator:
    """Makes the promo photo of the new product in the analysed style, at the preset's format."""

    model: str = ""
    is_offline: bool = False

    def generate(self, request: ImageRequest) -> GeneratedImage:
        raise NotImplementedError


class QualityChecker:
    """Checks a generated image against its flat-lay and its channel's rules, before review."""

    model: str = ""
    is_offline: bool = False

    def check(self, request: QualityRequest) -> QualityReport:
        raise NotImplementedError


@lru_cache(maxsize=8)
def _load(path: str):
    return import_string(path)()


def get_style_analyst() -> StyleAnalyst:
    return _load(settings.STYLE_ANALYST_BACKEND)


def get_image_generator() -> ImageGenerator:
    return _load(settings.IMAGE_GENERATOR_BACKEND)


def get_quality_checker() -> QualityChecker:
    return _load(settings.QUALITY_CHECKER_BACKEND)

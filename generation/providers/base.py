"""The two model providers of the pipeline and the plain data they exchange.

A style analyst reads the retrieved bestseller photos and writes one image-generation prompt;
an image generator makes the promo photo. Each is chosen by a dotted path in settings
(STYLE_ANALYST_BACKEND, IMAGE_GENERATOR_BACKEND), like Django's EMAIL_BACKEND: an OpenRouter
implementation and an offline one that does real, modest work without a network.

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
    """A product's attributes. Descriptions and hints are untrusted text: data, not instructions."""

    sku: str
    category: str
    color: str = ""
    style: str = ""
    season: str = ""
    description: str = ""
    prompt_hint: str = ""


@dataclass(frozen=True)
class ReferenceImage:
    """A retrieved bestseller: its photo (re-encoded JPEG or PNG bytes) and attributes."""

    product: ProductBrief
    content: bytes
    rank: int
    score: float


@dataclass(frozen=True)
class StyleRequest:
    product: ProductBrief
    references: list[ReferenceImage]


@dataclass(frozen=True)
class StyleResult:
    prompt: str  # one image-generation prompt, under 100 words
    model: str
    cost: Decimal | None  # None when the provider did not say; the pipeline then uses the price table
    usage: dict = field(default_factory=dict)
    offline: bool = False


@dataclass(frozen=True)
class ImageRequest:
    product: ProductBrief
    product_image: bytes  # the new product's flat-lay
    references: list[ReferenceImage]  # the top reference(s), best first
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


@dataclass(frozen=True)
class GeneratedImage:
    content: bytes  # PNG, JPEG or WebP bytes, validated by the pipeline
    prompt: str  # the final generation prompt as sent
    model: str
    cost: Decimal | None
    usage: dict = field(default_factory=dict)
    text: str = ""  # any text the model returned with the image (untrusted)
    offline: bool = False


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


@lru_cache(maxsize=8)
def _load(path: str):
    return import_string(path)()


def get_style_analyst() -> StyleAnalyst:
    return _load(settings.STYLE_ANALYST_BACKEND)


def get_image_generator() -> ImageGenerator:
    return _load(settings.IMAGE_GENERATOR_BACKEND)

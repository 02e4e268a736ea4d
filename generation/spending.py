"""What promo images cost: the price table and a request's estimate. The monthly cap, the
reservations and the ledger are core.spending's, shared with the embedder."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings


def image_price(size_tier: str) -> Decimal:
    return Decimal(settings.IMAGE_PRICE_TABLE[size_tier])


def image_call_price(size_tier: str, input_images: int) -> Decimal:
    """The worst case of one image call: its output image and every image sent with it."""
    return image_price(size_tier) + input_images * Decimal(settings.IMAGE_INPUT_PRICE_PER_IMAGE)


def analysis_price() -> Decimal:
    return Decimal(settings.STYLE_ANALYSIS_PRICE_ESTIMATE)


def qa_price() -> Decimal:
    return Decimal(settings.QA_PRICE_ESTIMATE)


@dataclass(frozen=True)
class Estimate:
    """What a request costs at most: every paid call of every image, from the price table."""

    images: int
    image_calls: int  # a staged preset makes two per image (the scene, then the product)
    input_images: int  # images sent with those calls: flat-lay, references, scene
    image_price: Decimal  # per image call
    input_price: Decimal  # per input image
    analysis_price: Decimal  # per image
    qa_price: Decimal  # per image (its first quality check)

    @property
    def total(self) -> Decimal:
        return (
            self.image_calls * self.image_price
            + self.input_images * self.input_price
            + self.images * (self.analysis_price + self.qa_price)
        )

    @property
    def per_image(self) -> Decimal:
        return self.total / self.images if self.images else Decimal("0")


def estimate(
    *, images_per_preset: list[tuple[int, bool]], size_tier: str, references: int, offline: bool
) -> Estimate:
    """What a batch will cost at most, from the price table (offline providers are free).

    `images_per_preset` holds, per preset, how many images it makes and whether it is staged.
    """
    images = sum(count for count, _ in images_per_preset)
    staged = sum(count for count, is_staged in images_per_preset if is_staged)
    # One call with the flat-lay and the references; staged: the references, then flat-lay + scene.
    inputs = (images - staged) * (1 + references) + staged * (references + 2)
    if offline:
        zero = Decimal("0")
        return Estimate(images, images + staged, inputs, zero, zero, zero, zero)
    return Estimate(
        images,
        images + staged,
        inputs,
        image_price(size_tier),
        Decimal(settings.IMAGE_INPUT_PRICE_PER_IMAGE),
        analysis_price(),
        qa_price(),
    )

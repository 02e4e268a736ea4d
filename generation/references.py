"""Reads: the style references a request for a product uses, and why each was chosen.

The pipeline's retrieve step and `manage.py explain_request` both call `request_references`,
so what the command prints is what the next image of that product would be made from.

Two kinds of reference:
- bestseller photos: the catalog's best sellers that look most like the product
  (catalog.selectors.similar_bestsellers);
- proven promo images: the studio's own published images on the same channel preset that
  did better than that preset's average (CTR credibly above it, with enough impressions), of
  products of the same category, the most alike first. They come from the channel figures,
  which live in the `performance` app; generation does not import it: performance registers
  its finder here (`set_proven_finder`) when it starts. Without a finder, or with the
  preset's `use_proven_references` off, a request uses bestseller photos only.

Proven images take some of the request's reference slots, never all of them
(`proven_slots`), so a request sends as many images as it was priced for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Q

from catalog.models import Product
from catalog.selectors import SimilarBestsellers, most_alike, similar_bestsellers
from generation.models import AssetReference, ChannelPreset, GeneratedAsset


@dataclass(frozen=True)
class ProvenImage:
    """A published image whose channel figures beat its preset's average."""

    asset: GeneratedAsset
    impressions: int
    clicks: int
    ctr_low: float  # the lower end of its CTR's interval
    ctr_high: float
    baseline_ctr: float  # its preset's average CTR, over the preset's other images

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions

    @property
    def weight(self) -> float:
        """How much more than the average it surely earned: the interval's lower end over the
        preset's average (above 1 for every proven image). References are ordered by it, and
        the models are told it."""
        return self.ctr_low / self.baseline_ctr if self.baseline_ctr > 0 else float("inf")


# (preset, category, exclude_product_id) -> the proven images of that preset, of products of
# that category, the product itself left out; in any order.
ProvenFinder = Callable[[ChannelPreset, str, int], list[ProvenImage]]
_proven_finder: ProvenFinder | None = None
PROVEN_CANDIDATES = 500  # proven products searched for look-alikes, the best weights first


def set_proven_finder(finder: ProvenFinder | None) -> None:
    """Called by the performance app when it starts (and by tests that take it away)."""
    global _proven_finder
    _proven_finder = finder


def proven_slots(preset: ChannelPreset, reference_count: int) -> int:
    """How many of a request's references may be proven images: GENERATION_PROVEN_REFERENCES
    at most, and always one slot left for a bestseller photo."""
    if not preset.use_proven_references or _proven_finder is None:
        return 0
    return max(0, min(settings.GENERATION_PROVEN_REFERENCES, reference_count - 1))


@dataclass(frozen=True)
class Reference:
    """One style reference of a request, in the order it is sent."""

    kind: str  # AssetReference.Kind
    product: Product  # the bestseller, or the product the proven image shows
    score: float  # the fused (RRF) look-alike score
    dense_rank: int | None  # its rank by photo; None when outside that leg's candidates
    sparse_rank: int | None  # its rank by words
    proven: ProvenImage | None = None

    @property
    def weight(self) -> float:
        return self.proven.weight if self.proven else 1.0


@dataclass
class RequestReferences:
    product: Product
    preset: ChannelPreset
    bestsellers: SimilarBestsellers
    proven: list[Reference] = field(default_factory=list)
    proven_note: str = ""

    @property
    def references(self) -> list[Reference]:
        """Proven images first (the best performer first), then the bestsellers, the most
        alike first: the order they are recorded, sent and weighed in."""
        sold = [
            Reference(
                AssetReference.Kind.BESTSELLER, h.product, h.score, h.dense_rank, h.sparse_rank
            )
            for h in self.bestsellers.hits
        ]
        return [*self.proven, *sold]

    @property
    def note(self) -> str:
        return " ".join(note for note in (self.proven_note, self.bestsellers.note) if note)


def request_references(
    *, product: Product, preset: ChannelPreset, reference_count: int
) -> RequestReferences:
    """The references a new image of `product` for `preset` takes its style from.

    First the proven images (up to `proven_slots`), then bestseller photos for the remaining
    slots. Any sales at all in the category count before the bestseller search widens to the
    whole catalog; the result's note says where the style came from. No references at all
    means there is nothing to take the style from (`no_references_reason`).
    """
    proven, proven_note = _proven_references(product, preset, reference_count)
    bestsellers = similar_bestsellers(
        product=product, top_k=reference_count - len(proven), relax_to=0, widen=True
    )
    return RequestReferences(product, preset, bestsellers, proven, proven_note)


def _proven_references(
    product: Product, preset: ChannelPreset, reference_count: int
) -> tuple[list[Reference], str]:
    slots = proven_slots(preset, reference_count)
    if not slots:
        return [], ""
    found: dict[int, ProvenImage] = {}
    for image in sorted(_proven_finder(preset, product.category, product.pk), key=_best_first):
        found.setdefault(image.asset.product_id, image)  # one image per product: its best
    # The look-alike search among the best PROVEN_CANDIDATES products' images: a filter of
    # ids, kept short.
    among = list(found)[:PROVEN_CANDIDATES]
    alike = most_alike(product=product, among=among, top_k=slots)
    chosen = [
        Reference(
            AssetReference.Kind.PROVEN,
            hit.product,
            hit.score,
            hit.dense_rank,
            hit.sparse_rank,
            found[hit.product.pk],
        )
        for hit in alike
    ]
    chosen.sort(key=lambda ref: -ref.weight)
    note = ""
    if chosen:
        note = (
            f"Proven promo images of this channel: {len(chosen)} of the references (of "
            f"{len(found)} proven for category {product.category!r}): their CTR beat the "
            f"{preset.name!r} average with at least "
            f"{settings.PERFORMANCE_PROVEN_MIN_IMPRESSIONS:,} impressions."
        )
    return chosen, note


def _best_first(image: ProvenImage) -> tuple[float, int]:
    return (-image.weight, image.asset.pk)


def no_references_reason(product: Product) -> str:
    return (
        f"No bestsellers to take the style from: category {product.category!r} has "
        "no other product with sales, and neither has the rest of the catalog. Import "
        "products with their sales (sales_count) first, then regenerate this image."
    )


@dataclass(frozen=True)
class SalesRank:
    """Where a product's sales place it in its category: 1 is the best seller; products with
    the same sales share a rank."""

    rank: int
    of: int  # products of the category with any sales (new products have none yet)
    category: str


@dataclass(frozen=True)
class ExplainedReference:
    rank: int  # its place among the request's references
    reference: Reference
    sales: SalesRank

    @property
    def product(self) -> Product:
        return self.reference.product


@dataclass(frozen=True)
class ReferencesExplained:
    product: Product
    preset: ChannelPreset
    references: list[ExplainedReference]
    proven_slots: int  # 0: proven images are off for the preset, or no room for them
    note: str  # what a person should know (lowered threshold, wider search), or ""


def references_explain(
    *, product: Product, preset: ChannelPreset, reference_count: int
) -> ReferencesExplained:
    """The references a request for `product` on `preset` would use now, each with why: its
    sales rank in its category, its look-alike ranks and, for a proven image, its CTR. Raises
    what `similar_bestsellers` raises when the index cannot be searched."""
    result = request_references(product=product, preset=preset, reference_count=reference_count)
    references = result.references
    ranks = sales_ranks([ref.product for ref in references])
    return ReferencesExplained(
        product=product,
        preset=preset,
        references=[
            ExplainedReference(rank, ref, ranks[ref.product.pk])
            for rank, ref in enumerate(references, start=1)
        ],
        proven_slots=proven_slots(preset, reference_count),
        note=result.note,
    )


def sales_ranks(products: list[Product]) -> dict[int, SalesRank]:
    """Each product's sales rank in its own category, by product id: one query per product
    (a request has at most a dozen references)."""
    ranks = {}
    for product in products:
        counts = Product.objects.filter(category=product.category).aggregate(
            above=Count("pk", filter=Q(sales_count__gt=product.sales_count)),
            of=Count("pk", filter=Q(sales_count__gt=0)),
        )
        ranks[product.pk] = SalesRank(counts["above"] + 1, counts["of"], product.category)
    return ranks

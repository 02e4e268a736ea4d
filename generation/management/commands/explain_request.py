"""Which style references a new image would use now, and why: the pipeline's own choice."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.models import Product
from catalog.vector_index import IndexUnavailable
from generation.models import ChannelPreset
from generation.references import (
    ExplainedReference,
    ReferencesExplained,
    no_references_reason,
    references_explain,
)


class Command(BaseCommand):
    help = (
        "Print the style references a promo image of a product for a channel preset would be "
        "made from if requested now, each with why: its sales rank in its category and how "
        "much it looks like the product (rank by photo, rank by words, fused score) and, for "
        "a proven promo image of the preset, its CTR against the preset's average. Nothing "
        "is requested or paid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sku", help="The product's SKU.")
        parser.add_argument(
            "--preset", required=True, metavar="NAME", help="The channel preset's name."
        )
        parser.add_argument(
            "--references",
            type=int,
            default=settings.GENERATION_DEFAULT_REFERENCES,
            metavar="N",
            help="References per image, as a request would ask (default: %(default)s).",
        )

    def handle(self, *args, sku: str, preset: str, references: int, **options) -> None:
        product = Product.objects.filter(sku=sku).first()
        if product is None:
            raise CommandError(f"Unknown SKU {sku!r}.")
        channel = ChannelPreset.objects.filter(name=preset, is_active=True).first()
        if channel is None:
            names = ChannelPreset.objects.filter(is_active=True).order_by("name")
            raise CommandError(
                f"Unknown or inactive preset {preset!r}. Available presets: "
                + ", ".join(repr(p.name) for p in names)
                + "."
            )
        if references < 1:
            raise CommandError("--references must be at least 1.")
        try:
            explained = references_explain(
                product=product, preset=channel, reference_count=references
            )
        except IndexUnavailable as exc:  # IndexNotReady too: the index cannot answer yet
            raise CommandError(str(exc)) from None

        self.stdout.write(
            f"A request for {product.sku} ({product.category}, {product.style}, "
            f"{product.season}) in {channel.name!r} would take its style from "
            f"{len(explained.references)} of {references} reference(s):"
        )
        if not explained.references:
            raise CommandError(no_references_reason(product))
        rows = [
            ("#", "kind", "sku", "category", "sales", "sales rank", "fused", "photo", "words")
            + ("proven CTR", "preset avg", "weight")
        ]
        rows += [_row(ref) for ref in explained.references]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = (cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            self.stdout.write("  ".join(cells).rstrip())
        self.stdout.write(
            "sales rank: its place by sales among the products of its category that have "
            "sales (1 = the best seller).\nfused: how much it looks like the product (RRF of "
            "its rank by photo and its rank by words: name, description, attributes; '-': not "
            "among that search's candidates; a proven image's ranks are among the proven "
            "images).\nproven CTR: a proven promo image's clicks per impression on this "
            "preset, with its 95 % Wilson interval; preset avg: the preset's other images "
            "pooled; weight: the interval's lower end over that average (a bestseller photo "
            "weighs 1)."
        )
        self.stdout.write(_proven_line(explained))
        if explained.note:
            self.stdout.write(self.style.WARNING(explained.note))


def _proven_line(explained: ReferencesExplained) -> str:
    preset = explained.preset
    if not preset.use_proven_references:
        return (
            f"Proven promo images: off for {preset.name!r} (its 'learn from proven images' "
            "is unticked): bestseller photos only."
        )
    if not explained.proven_slots:
        return "Proven promo images: none fit (one reference slot is kept for a bestseller)."
    used = sum(ref.reference.proven is not None for ref in explained.references)
    return (
        f"Proven promo images: {used} of up to {explained.proven_slots} "
        f"(published images of {preset.name!r} with at least "
        f"{settings.PERFORMANCE_PROVEN_MIN_IMPRESSIONS:,} impressions whose CTR is credibly "
        "above the preset's average, of products of the same category)."
    )


def _row(ref: ExplainedReference) -> tuple[str, ...]:
    proven = ref.reference.proven
    if proven is None:
        kind, figures = "bestseller photo", ("-", "-", "1.00")
    else:
        kind = f"proven promo image #{proven.asset.pk}"
        figures = (
            f"{proven.ctr:.2%} ({proven.ctr_low:.2%}-{proven.ctr_high:.2%}) "
            f"of {proven.impressions:,}",
            f"{proven.baseline_ctr:.2%}",
            f"{proven.weight:.2f}",
        )
    return (
        str(ref.rank),
        kind,
        ref.product.sku,
        ref.product.category,
        f"{ref.product.sales_count:,}",
        f"{ref.sales.rank} of {ref.sales.of}" if ref.product.sales_count else "-",
        f"{ref.reference.score:.5f}",
        str(ref.reference.dense_rank or "-"),
        str(ref.reference.sparse_rank or "-"),
        *figures,
    )

"""What the asset page's performance panel shows: per preset, the image's impressions, CTR
and conversion rate, each with its 95 % Wilson interval, set against its preset's and its
category's averages; and the verdicts on its variants (performance.experiments).

The words a merchandiser reads are decided here, so the template only lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass

from generation.models import AssetReference, ChannelPreset, GeneratedAsset
from generation.references import ProvenImage
from performance.display import interval_shown, percent
from performance.experiments import Experiment, variant_experiments
from performance.proven import proven_on
from performance.selectors import Pooled, PresetTotals, asset_totals, pooled_totals
from performance.stats import DEFAULT_MIN_TRIALS, Rate, credibly_above


@dataclass(frozen=True)
class Baseline:
    """An average the image is set against, and where the image stands: "above", "below",
    "same" (the average is inside the image's interval), "few" (too few trials to tell) or
    "none" (no other image to average)."""

    value: float | None
    over: str  # what the average is over, in words
    standing: str

    @property
    def shown(self) -> str:
        return percent(self.value)

    @property
    def standing_shown(self) -> str:
        return {
            "above": "credibly above",
            "below": "credibly below",
            "same": "no clear difference",
            "few": "too few to tell",
            "none": "no average yet",
        }[self.standing]


def standing(observed: Rate, baseline: float | None, *, min_trials: int) -> str:
    """Where a rate stands against an average: only a whole interval above or below it counts,
    and only with `min_trials` trials (the same rule as `credibly_above`, both ways)."""
    if baseline is None:
        return "none"
    if observed.trials < min_trials:
        return "few"
    if credibly_above(observed.successes, observed.trials, baseline, min_trials=min_trials):
        return "above"
    if observed.high is not None and observed.high < baseline:
        return "below"
    return "same"


@dataclass(frozen=True)
class Measure:
    """One rate of the image on one preset: CTR (clicks of impressions) or conversion
    (orders of clicks), against the two averages."""

    name: str
    explained: str
    successes_name: str
    trials_name: str
    rate: Rate
    preset: Baseline
    category: Baseline
    min_trials: int

    @property
    def shown(self) -> str:
        return percent(self.rate.value)

    @property
    def interval(self) -> str:
        return interval_shown(self.rate)

    @property
    def too_few(self) -> bool:
        return self.rate.trials < self.min_trials

    @property
    def counts(self) -> str:
        return (
            f"{self.rate.successes:,} {self.successes_name} of "
            f"{self.rate.trials:,} {self.trials_name}"
        )

    @property
    def too_few_shown(self) -> str:
        return (
            f"Too few {self.trials_name} to mean much: {self.rate.trials:,} of the "
            f"{self.min_trials:,} needed"
        )


@dataclass(frozen=True)
class PresetFigures:
    """The image's figures on one preset, and the averages it is set against."""

    totals: PresetTotals
    measures: list[Measure]
    preset_pool: Pooled
    category_pool: Pooled
    category: str
    proven: ProvenImage | None  # proven on this preset now: a style reference for new images
    learns: bool  # the preset lets proven images be references
    used_by: int  # images made with it as a reference so far
    notes: list[str]  # what could not be shown as a rate, and why

    @property
    def reference_shown(self) -> str:
        """Whether new images of similar products take this one as a style reference."""
        if self.proven is None:
            return ""
        used = f" {self.used_by:,} image{'s' if self.used_by != 1 else ''} used it so far."
        if not self.learns:
            return (
                "Proven on this preset (its CTR is credibly above the preset's average), but "
                "the preset does not learn from proven images (its 'learn from proven "
                "images' is off), so it is not a style reference." + used
            )
        return (
            "Proven on this preset: its CTR is credibly above the preset's average, so new "
            f"images of similar {self.category} products take it as a style reference, with "
            f"weight {self.proven.weight:.2f}." + used
        )

    @property
    def reported(self) -> str:
        """The raw totals in one line, numbers grouped."""
        totals = self.totals
        revenue = f", revenue {totals.revenue:,.2f}" if totals.revenue is not None else ""
        return (
            f"{totals.impressions:,} impressions, {totals.clicks:,} clicks, "
            f"{totals.add_to_carts:,} add-to-carts, {totals.orders:,} orders{revenue}"
        )


def _measure(
    name: str,
    explained: str,
    observed: Rate,
    names: tuple[str, str],
    averages: tuple[tuple[float | None, str], tuple[float | None, str]],
    min_trials: int,
) -> Measure:
    preset, category = (
        Baseline(value, over, standing(observed, value, min_trials=min_trials))
        for value, over in averages
    )
    return Measure(name, explained, *names, observed, preset, category, min_trials)


def _pool_words(pool: Pooled, kind: str = "") -> str:
    """What an average is over: "4 other dress images on this preset (12,000 impressions)"."""
    kind = f"{kind} " if kind else ""
    if not pool.images:
        return f"no other {kind}image on this preset has figures yet"
    images = "image" if pool.images == 1 else "images"
    return f"{pool.images:,} other {kind}{images} on this preset ({pool.impressions:,} impressions)"


def preset_figures(
    *, asset: GeneratedAsset, totals: PresetTotals, min_trials: int, used_by: int
) -> PresetFigures:
    category = asset.product.category
    preset_pool = pooled_totals(preset_id=totals.preset_id, leave_out_asset_id=asset.pk)
    category_pool = pooled_totals(
        preset_id=totals.preset_id, leave_out_asset_id=asset.pk, category=category
    )
    preset_over = _pool_words(preset_pool)
    category_over = _pool_words(category_pool, category)
    ctr = _measure(
        "CTR",
        "clicks per impression",
        totals.ctr_rate,
        ("clicks", "impressions"),
        ((preset_pool.ctr, preset_over), (category_pool.ctr, category_over)),
        min_trials,
    )
    measures, notes = [ctr], []
    if totals.conversion_rate is not None:
        measures.append(
            _measure(
                "Conversion rate",
                "orders per click",
                totals.conversion_rate,
                ("orders", "clicks"),
                ((preset_pool.conversion, preset_over), (category_pool.conversion, category_over)),
                min_trials,
            )
        )
    else:
        notes.append(
            f"Conversion rate: the channel counted more orders ({totals.orders:,}) than clicks "
            f"({totals.clicks:,}), orders after a view among them, so orders per click is not "
            "a rate here."
        )
    preset = ChannelPreset.objects.get(pk=totals.preset_id)
    return PresetFigures(
        totals,
        measures,
        preset_pool,
        category_pool,
        category,
        proven=proven_on(asset, totals.preset_id),
        learns=preset.use_proven_references,
        used_by=used_by,
        notes=notes,
    )


def performance_panel(
    *, asset: GeneratedAsset, min_trials: int = DEFAULT_MIN_TRIALS
) -> dict[str, object]:
    """The panel's context: the figures per preset and the variant experiments."""
    used_by = AssetReference.objects.filter(source_asset=asset).count()
    figures = [
        preset_figures(asset=asset, totals=totals, min_trials=min_trials, used_by=used_by)
        for totals in asset_totals(asset_id=asset.pk)
    ]
    experiments: list[Experiment] = variant_experiments(asset=asset, min_trials=min_trials)
    return {"figures": figures, "experiments": experiments, "min_trials_shown": f"{min_trials:,}"}

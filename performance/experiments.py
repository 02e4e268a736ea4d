"""Variants as experiments: an image against the other images of its product and preset that
the channels have reported on, with a verdict on which did better (`performance.stats.compare`).

Only one image of a product is live on a preset at a time (publishing one retires the other),
so two variants with figures were live in turn: one after the other, as candidates of one
version or as versions. That is a comparison of two periods as much as of two pictures; the
page says so, and a verdict is for people to weigh, never acted on by the studio.
"""

from __future__ import annotations

from dataclasses import dataclass

from generation.models import GeneratedAsset
from performance.display import rate_shown
from performance.selectors import AssetCounts, sibling_counts
from performance.stats import DEFAULT_MIN_TRIALS, Verdict, compare, percent_shown


def variant_label(asset: GeneratedAsset) -> str:
    """v2, or v2.1 when the version was made as several variants (as the asset list says)."""
    shown = asset.variant > 1 or asset.batch.variants > 1
    return f"v{asset.version}.{asset.variant}" if shown else f"v{asset.version}"


@dataclass(frozen=True)
class Experiment:
    """This image (side a) against one other image of its product and preset (side b), on
    CTR: clicks per impression."""

    asset: GeneratedAsset
    other: GeneratedAsset
    verdict: Verdict

    @property
    def this_won(self) -> bool:
        return self.verdict.winner == "a"

    @property
    def other_won(self) -> bool:
        return self.verdict.winner == "b"

    @property
    def other_label(self) -> str:
        return variant_label(self.other)

    @property
    def this_rate(self) -> str:
        return rate_shown(self.verdict.a)

    @property
    def other_rate(self) -> str:
        return rate_shown(self.verdict.b)

    @property
    def summary(self) -> str:
        """The verdict in one sentence: who won and how sure, or why there is no winner."""
        this, other = variant_label(self.asset), variant_label(self.other)
        verdict = self.verdict
        if verdict.winner:
            won, lost = (this, other) if self.this_won else (other, this)
            return f"{won} won over {lost}: {percent_shown(verdict.sure)} sure its CTR is higher."
        leaning = ""
        if verdict.leader and verdict.sure is not None:
            ahead = this if verdict.leader == "a" else other
            sure = percent_shown(verdict.sure)
            # "no clear difference" already says how sure
            leaning = (
                f" So far {ahead} leads."
                if sure in verdict.reason
                else f" So far {ahead} leads ({sure} sure)."
            )
        return f"No winner yet: {verdict.reason}.{leaning}"


def variant_experiments(
    *, asset: GeneratedAsset, min_trials: int = DEFAULT_MIN_TRIALS
) -> list[Experiment]:
    """The image against each other image of its product and preset with figures on that
    preset, oldest version and variant first; none when the image has no figures itself.
    Reads only: one query for the counts and one for the other images, whatever their number."""
    counts = sibling_counts(product_id=asset.product_id, preset_id=asset.preset_id)
    mine = counts.pop(asset.pk, None)
    if mine is None or not counts:
        return []
    others = (
        GeneratedAsset.objects.filter(pk__in=counts)
        .select_related("batch", "product", "preset")
        .order_by("version", "variant")
    )
    return [
        Experiment(
            asset, other, compare(_trial(mine), _trial(counts[other.pk]), min_trials=min_trials)
        )
        for other in others
    ]


def _trial(counts: AssetCounts) -> tuple[int, int]:
    return counts.clicks, counts.impressions

"""Rates as the admin's pages write them: "3.10 %", "2.90 % – 3.32 %"."""

from __future__ import annotations

from performance.stats import Rate


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}".replace("%", " %")


def interval_shown(observed: Rate) -> str:
    """The rate's interval, or a dash when nothing was shown (no interval at all)."""
    if observed.low is None:
        return "—"
    return f"{percent(observed.low)} – {percent(observed.high)}"


def rate_shown(observed: Rate, trials_name: str = "impressions") -> str:
    """3.10 % (2.90 % – 3.32 %) of 26,717 impressions."""
    if observed.value is None:
        return f"no {trials_name}"
    return (
        f"{percent(observed.value)} ({interval_shown(observed)}) "
        f"of {observed.trials:,} {trials_name}"
    )

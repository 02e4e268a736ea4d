"""The statistics of channel performance, checked against values worked out by hand and
against an independent Monte Carlo estimate."""

import numpy as np
import pytest

from performance.stats import (
    compare,
    credibly_above,
    probability_a_beats_b,
    rate,
    wilson_interval,
)


def test_wilson_interval_matches_a_worked_example():
    # 10 clicks of 100 impressions at 95 %: z = 1.959964, z² = 3.841459, p = 0.1, n = 100.
    #   denominator 1 + z²/n = 1.0384146
    #   centre (p + z²/2n) / 1.0384146 = 0.1192073 / 1.0384146 = 0.1147973
    #   half z·√(p(1−p)/n + z²/4n²) / 1.0384146 = 1.959964·√0.0009960365 / 1.0384146
    #        = 0.0618566 / 1.0384146 = 0.0595683
    #   → (0.0552290, 0.1743656)
    low, high = wilson_interval(10, 100)
    assert low == pytest.approx(0.0552290, abs=1e-6)
    assert high == pytest.approx(0.1743656, abs=1e-6)


def test_wilson_interval_at_no_successes_starts_at_zero():
    # 0 of 10: centre = half = (z²/2n) / (1 + z²/n) = 0.1920730 / 1.3841459 = 0.1387664,
    # so the high end is 2 × 0.1387664 = 0.2775328.
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775328, abs=1e-6)


def test_wilson_interval_at_all_successes_ends_at_one():
    # The mirror image of 0 of 10.
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(1 - 0.2775328, abs=1e-6)
    assert high == 1.0


def test_wilson_interval_without_trials_is_none():
    assert wilson_interval(0, 0) is None
    assert rate(0, 0).value is None


def test_wilson_interval_widens_with_confidence_and_narrows_with_data():
    low95, high95 = wilson_interval(20, 1000)
    low99, high99 = wilson_interval(20, 1000, confidence=0.99)
    low_more, high_more = wilson_interval(200, 10000)
    assert low99 < low95 < 0.02 < high95 < high99
    assert high_more - low_more < high95 - low95


@pytest.mark.parametrize("counts", [(-1, 10), (5, -1), (11, 10)])
def test_impossible_counts_are_refused(counts):
    with pytest.raises(ValueError):
        wilson_interval(*counts)


def test_confidence_outside_zero_and_one_is_refused():
    with pytest.raises(ValueError, match="0.95 for 95 %"):
        wilson_interval(10, 100, confidence=95)


def test_rate_carries_value_and_interval():
    ctr = rate(10, 100)
    assert ctr.value == 0.1
    assert (ctr.low, ctr.high) == wilson_interval(10, 100)


def test_probability_matches_a_worked_example():
    # A: 1 click of 1 → Beta(2, 1), density 2x. B: 0 of 1 → Beta(1, 2), CDF 1 − (1 − y)².
    # P(A > B) = ∫₀¹ 2x (1 − (1 − x)²) dx = ∫₀¹ (4x² − 2x³) dx = 4/3 − 1/2 = 5/6.
    assert probability_a_beats_b((1, 1), (0, 1)) == pytest.approx(5 / 6, abs=1e-12)
    assert probability_a_beats_b((0, 1), (1, 1)) == pytest.approx(1 / 6, abs=1e-12)


def test_equal_counts_are_even():
    assert probability_a_beats_b((20, 1000), (20, 1000)) == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize(
    "a, b",
    [((30, 1000), (20, 1000)), ((200, 5000), (5, 300)), ((3, 40), (50, 900))],
)
def test_probability_agrees_with_a_monte_carlo_estimate(a, b):
    # Two million draws from each posterior: the estimate's standard error is below 0.0003.
    rng = np.random.default_rng(24)
    draws_a = rng.beta(a[0] + 1, a[1] - a[0] + 1, 2_000_000)
    draws_b = rng.beta(b[0] + 1, b[1] - b[0] + 1, 2_000_000)
    estimate = float((draws_a > draws_b).mean())
    assert probability_a_beats_b(a, b) == pytest.approx(estimate, abs=0.002)
    # Either side's sum gives the complement of the other's.
    assert probability_a_beats_b(b, a) == pytest.approx(1 - estimate, abs=0.002)


def test_large_counts_neither_overflow_nor_take_long():
    # Half a million clicks a side: the log-space sum stays finite. A rate lower by 0.005
    # percentage points in ten million impressions is a coin toss leaning to B (z ≈ 0.51).
    p = probability_a_beats_b((500_000, 10_000_000), (500_500, 10_000_000))
    assert p == pytest.approx(0.304, abs=0.005)


def test_a_clear_difference_with_enough_data_has_a_winner():
    verdict = compare((60, 2000), (20, 2000))
    assert verdict.winner == "a"
    assert verdict.sure > 0.999
    assert verdict.reason == ""


def test_the_better_side_wins_whichever_is_given_first():
    verdict = compare((20, 2000), (60, 2000))
    assert verdict.winner == "b"
    assert verdict.probability_a_beats_b < 0.001


def test_the_same_rates_with_little_data_have_no_winner():
    verdict = compare((6, 200), (2, 200))
    assert verdict.winner is None
    assert verdict.leader == "a"  # it leans to A, and says how much, without declaring it
    assert verdict.sure == pytest.approx(0.913, abs=0.001)
    assert verdict.reason == "too little data: 200 of the 1,000 impressions each side needs"


def test_one_side_short_of_data_is_enough_to_withhold_a_verdict():
    verdict = compare((600, 20000), (9, 999), min_trials=1000)
    assert verdict.winner is None
    assert verdict.reason.startswith("too little data: 999 of the 1,000 impressions")


def test_equal_rates_have_no_winner():
    verdict = compare((200, 10000), (200, 10000))
    assert verdict.winner is None
    assert verdict.leader is None
    assert verdict.sure == pytest.approx(0.5)
    assert verdict.reason == "no clear difference: 50 % sure, a winner needs 95 %"


def test_a_difference_below_the_threshold_has_no_winner():
    # 3 % against 2 % on 1,000 impressions each is 92 % sure: not enough at 95 %, enough at 90 %.
    verdict = compare((30, 1000), (20, 1000))
    assert verdict.winner is None
    assert verdict.reason == "no clear difference: 92 % sure, a winner needs 95 %"
    assert compare((30, 1000), (20, 1000), confidence=0.90).winner == "a"


def test_a_variant_never_shown_has_no_verdict():
    verdict = compare((0, 0), (20, 1000), unit="clicks")
    assert verdict.winner is None
    assert verdict.probability_a_beats_b is None
    assert verdict.reason == "too little data: a variant has no clicks yet; each side needs 1,000"


def test_near_certainty_is_not_rounded_up_to_a_hundred_percent():
    # 99.99977 % sure, short of a (silly) 99.99999 % threshold.
    verdict = compare((60, 2000), (20, 2000), confidence=0.9999999)
    assert verdict.winner is None
    assert verdict.reason == "no clear difference: 99.9 % sure, a winner needs 99.99999 %"


def test_credibly_above_a_baseline():
    # 300 of 10,000 (3 %): Wilson lower bound ≈ 2.68 %, above a 2 % preset average.
    assert credibly_above(300, 10000, 0.02)
    # The same 3 % on 500 impressions: lower bound ≈ 1.8 %, not credibly above 2 %.
    assert not credibly_above(15, 500, 0.02, min_trials=100)
    # Above the baseline by a wide margin, but below the minimum data.
    assert not credibly_above(50, 500, 0.02, min_trials=1000)
    assert not credibly_above(0, 0, 0.02, min_trials=0)


def test_credibly_above_refuses_a_baseline_that_is_not_a_rate():
    with pytest.raises(ValueError):
        credibly_above(300, 10000, 2.0)

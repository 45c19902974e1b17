"""pipelines/analysis/inference.py: hand-computed values, scipy agreement, size and power of the paired test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from pipelines.analysis import inference

ALPHA = 0.05


def test_rank_biserial_by_hand() -> None:
    # |d| ranks 1, 2, 3, 4; R+ = 1 + 2 + 4 = 7, R- = 3: (7 - 3) / 10.
    assert inference.rank_biserial(np.array([1.0, 2.0, -3.0, 4.0])) == pytest.approx(0.4)
    # Zeros are dropped before ranking: |d| ranks of (2, -1) are 2, 1.
    assert inference.rank_biserial(np.array([0.0, 2.0, -1.0])) == pytest.approx((2 - 1) / 3)
    assert inference.rank_biserial(np.zeros(4)) == 0.0


def test_cohens_dz_by_hand() -> None:
    d = np.array([1.0, 2.0, 3.0, 4.0])  # mean 2.5, sample variance (2.25 + 0.25 + 0.25 + 2.25) / 3
    assert inference.cohens_dz(d) == pytest.approx(2.5 / math.sqrt(5 / 3))
    assert math.isnan(inference.cohens_dz(np.full(4, 0.3)))


@pytest.mark.parametrize("n", [3, 5, 6, 10])
def test_min_attainable_wilcoxon_p_is_two_over_two_to_the_n_and_is_attained(n: int) -> None:
    assert inference.min_wilcoxon_p(n) == pytest.approx(2 / 2**n)
    every_pair_positive = np.arange(1.0, n + 1)
    assert inference.wilcoxon_p(every_pair_positive) == pytest.approx(2 / 2**n)


def test_can_reach_alpha_follows_the_number_of_seeds() -> None:
    rng = np.random.default_rng(0)
    five = inference.paired_comparison(rng.normal(1, 1, 5), rng.normal(0, 1, 5), alpha=ALPHA)
    six = inference.paired_comparison(rng.normal(1, 1, 6), rng.normal(0, 1, 6), alpha=ALPHA)
    assert (five.min_attainable_p, five.can_reach_alpha) == (pytest.approx(1 / 16), False)
    assert (six.min_attainable_p, six.can_reach_alpha) == (pytest.approx(1 / 32), True)


def test_holm_by_hand() -> None:
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; running maximum.
    adjusted = inference.holm(np.array([0.01, 0.04, 0.03, 0.005]))
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    with_missing = inference.holm(np.array([math.nan, 0.01, 0.04]))
    assert math.isnan(with_missing[0])
    np.testing.assert_allclose(with_missing[1:], [0.02, 0.04])


def test_tost_by_hand() -> None:
    d = np.array([0.001, -0.002, 0.003, 0.0, 0.002])
    margin, n = 0.01, d.size
    se = d.std(ddof=1) / math.sqrt(n)
    above = scipy.stats.t.sf((d.mean() + margin) / se, n - 1)
    below = scipy.stats.t.cdf((d.mean() - margin) / se, n - 1)
    assert inference.tost_p(d, margin) == pytest.approx(max(above, below))
    assert inference.tost_p(d, margin) < ALPHA
    assert inference.tost_p(d + 0.05, margin) > 0.5  # far outside the margin
    assert inference.tost_p(np.zeros(5), margin) == 0.0  # identical runs: equivalent
    assert inference.tost_p(np.full(5, 0.02), margin) == 1.0
    assert math.isnan(inference.tost_p(np.array([0.0]), margin))


def test_wilson_interval_matches_scipy_for_whole_counts() -> None:
    expected = scipy.stats.binomtest(7, 10).proportion_ci(0.95, method="wilson")
    assert inference.wilson_interval(7, 10, 0.95) == pytest.approx((expected.low, expected.high))


def test_win_probability_counts_ties_half() -> None:
    p, low, high = inference.win_probability(np.array([1.0, 0.0, -1.0, 1.0]), 0.95)
    assert p == pytest.approx(2.5 / 4)
    assert low < p < high


def test_fast_signed_rank_permutation_equals_scipy_with_ties_and_zeros() -> None:
    rng = np.random.default_rng(3)
    for _ in range(3):
        d = np.round(rng.normal(0.5, 1.0, size=10) * 2) / 2  # ties and zeros
        assert 0 in d and np.unique(np.abs(d)).size < d.size  # the path scipy enumerates slowly
        expected = scipy.stats.wilcoxon(d, zero_method="pratt", method="auto").pvalue
        assert inference.wilcoxon_p(d) == pytest.approx(expected)


def test_a_true_difference_is_detected() -> None:
    rng = np.random.default_rng(1)
    shared = rng.normal(0, 1, 10)  # the seed's own effect, common to both arms
    a, b = shared + 1.0 + rng.normal(0, 0.5, 10), shared + rng.normal(0, 0.5, 10)
    result = inference.paired_comparison(a, b, alpha=ALPHA)
    assert result.wilcoxon_p < ALPHA and result.ttest_p < ALPHA
    assert result.ci_low > 0
    assert result.rank_biserial > 0.5 and result.cohens_dz > 1
    assert result.p_a_beats_b > 0.5 and result.note == ""


def test_false_positive_rate_stays_near_alpha() -> None:
    rng = np.random.default_rng(2)
    samples, n = 400, 10
    shared = rng.normal(0, 1, (samples, n))
    a, b = shared + rng.normal(0, 1, (samples, n)), shared + rng.normal(0, 1, (samples, n))
    d = [inference.differences(x, y) for x, y in zip(a, b)]
    tolerance = 3 * math.sqrt(ALPHA * (1 - ALPHA) / samples)  # three binomial standard errors
    for test in (inference.wilcoxon_p, inference.ttest_p):
        rate = np.mean([test(x) < ALPHA for x in d])
        assert abs(rate - ALPHA) < tolerance, (test.__name__, rate)


def test_equal_differences_give_the_difference_itself_with_a_note() -> None:
    b = np.array([0.80, 0.82, 0.81, 0.79, 0.83, 0.80])
    result = inference.paired_comparison(b + 0.01, b, alpha=ALPHA)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.01, 0.01))
    assert math.isnan(result.ttest_p) and math.isnan(result.cohens_dz)
    assert "all differences equal" in result.note


def test_the_t_interval_is_the_textbook_one_and_covers_at_its_level() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 1, 10)
    half = scipy.stats.t.ppf(1 - ALPHA / 2, 9) * x.std(ddof=1) / math.sqrt(10)
    interval = inference.t_interval(x, level=1 - ALPHA)
    assert (interval.low, interval.high) == pytest.approx((x.mean() - half, x.mean() + half))
    samples = rng.normal(0.5, 1, (400, 10))
    covered = [(i.low < 0.5 < i.high) for i in (inference.t_interval(row, level=1 - ALPHA) for row in samples)]
    assert abs(np.mean(covered) - (1 - ALPHA)) < 3 * math.sqrt(ALPHA * (1 - ALPHA) / 400)


def test_a_standardized_effect_of_nearly_constant_differences_is_left_out() -> None:
    b = np.linspace(0.70, 0.79, 10)
    steady = b + 0.02 + np.r_[0.001, np.zeros(9)]  # d_z about 60: every seed moves alike
    result = inference.paired_comparison(steady, b, alpha=ALPHA)
    assert math.isnan(result.cohens_dz) and "d_z" in result.note
    spread = inference.paired_comparison(b + np.linspace(-0.01, 0.03, 10), b, alpha=ALPHA)
    assert 0 < spread.cohens_dz <= inference.DZ_CAP


def test_a_single_pair_gives_no_test_and_says_why() -> None:
    result = inference.paired_comparison(np.array([0.9]), np.array([0.8]), alpha=ALPHA)
    assert result.n == 1 and not result.can_reach_alpha
    assert math.isnan(result.wilcoxon_p) and math.isnan(result.ci_low)
    assert "1 pair" in result.note


def test_page_trend_detects_the_predicted_direction_only() -> None:
    falling = np.tile([4.0, 3.0, 2.0, 1.0], (3, 1))
    assert inference.page_trend(falling, decreasing=True).p == pytest.approx(inference.min_page_p(3, 4))
    assert inference.min_page_p(3, 4) == pytest.approx((1 / 24) ** 3)
    assert inference.page_trend(falling, decreasing=False).p > 0.5
    too_small = inference.page_trend(falling[:1], decreasing=True)
    assert math.isnan(too_small.p) and "Page" in too_small.note


def test_is_monotone() -> None:
    assert inference.is_monotone(np.array([3.0, 2.0, 2.0, 1.0]), decreasing=True)
    assert not inference.is_monotone(np.array([3.0, 2.0, 2.5]), decreasing=True)


def test_friedman_mean_ranks_by_hand_and_ties() -> None:
    result = inference.friedman(np.array([[3.0, 2.0, 1.0], [3.0, 1.0, 2.0]]))
    np.testing.assert_allclose(result.mean_ranks, [1.0, 2.5, 2.5])  # rank 1 = largest
    assert result.p == pytest.approx(scipy.stats.friedmanchisquare([3, 3], [2, 1], [1, 2]).pvalue)
    tied = inference.friedman(np.ones((4, 3)))
    assert tied.p == 1.0 and "tied" in tied.note


def test_float32_accuracies_one_row_apart_are_ties() -> None:
    # Accuracies k/n stored as float32: a difference of one test row comes out as 0.0064935 or
    # 0.00649351 depending on k, and rounding at any fixed number of decimals keeps them apart.
    n = 154
    correct_a = np.array([110, 116, 90, 71, 58, 120, 100, 45, 36, 80])
    correct_b = correct_a - np.array([1, 1, -1, 1, 1, 0, 2, 1, -1, 1])
    a, b = (correct_a / n).astype(np.float32), (correct_b / n).astype(np.float32)
    rows = (correct_a - correct_b).astype(float)
    noisy = np.round(a.astype(float) - b.astype(float), 12)
    assert np.unique(np.abs(noisy)).size > np.unique(np.abs(rows)).size  # the noise is there
    d = inference.differences(a, b)

    def ties(x: np.ndarray) -> np.ndarray:
        return np.abs(x)[:, None] == np.abs(x)[None, :]

    np.testing.assert_array_equal(ties(d), ties(rows))
    np.testing.assert_array_equal(np.sign(d), np.sign(rows))
    np.testing.assert_allclose(d, rows / n, atol=1e-7)
    assert inference.wilcoxon_p(d) == inference.wilcoxon_p(rows)  # the ranks of the counts


def test_differences_keep_distinct_values_and_nan_apart() -> None:
    d = inference.differences(np.array([0.5, 0.30, np.nan, 0.2]), np.array([0.5, 0.29, 0.1, 0.1]))
    np.testing.assert_allclose(d, [0.0, 0.01, np.nan, 0.1])
    assert d[0] == 0 and not np.signbit(d[0])

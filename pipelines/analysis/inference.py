"""Statistical methods for paired designs: tests, effect sizes, intervals, corrections, TOST, trends.

Generic: nothing here knows about regularizers. Every function takes plain arrays where index i of
two samples belongs to the same subject (here: the same seed), and scipy computes whatever it can.

Conventions:
  - differences are a − b; a positive mean difference means a is larger;
  - the primary paired test is the two-sided Wilcoxon signed-rank test, zero_method="pratt"
    (zero differences are ranked, then dropped, so exact ties at zero, common with accuracies on
    small test sets, lower the evidence instead of vanishing) and method="auto" (exact for n ≤ 50
    without ties, an exhaustive permutation for n ≤ 13 with ties or zeros);
  - intervals are Student-t intervals of the mean (of the paired differences), at level 1 − alpha;
  - a quantity that cannot be computed is NaN *and* named in the result's note, never silently.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats

# Differences that agree to within the inputs' rounding are ties: the Wilcoxon ranks rely on ties
# (scipy's advice), and rounding noise must not break them. Measurements may come as float32 (as
# the trainer computes them): each carries up to half an ulp, so two differences equal in truth
# (say one test row each, 110/154 − 109/154 and 50/154 − 49/154) can disagree by up to eps·max|x|,
# which no fixed number of decimals merges (0.0064935 and 0.00649351). Relative to the largest
# input, 4·eps leaves headroom and stays far below any metric's resolution.
TIE_TOLERANCE = 4 * float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class PairedComparison:
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    wilcoxon_p: float
    ttest_p: float
    rank_biserial: float
    cohens_dz: float
    p_a_beats_b: float
    p_beats_ci_low: float
    p_beats_ci_high: float
    min_attainable_p: float
    can_reach_alpha: bool
    note: str


def differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The paired differences a − b, with ties made exact: magnitudes within TIE_TOLERANCE of the
    next smaller one join its group and take the group's smallest value, the group reaching down
    to 0 becomes exact zeros, and NaN stays NaN."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = a - b
    tolerance = TIE_TOLERANCE * np.nanmax(np.abs(np.concatenate([a.ravel(), b.ravel()])), initial=0.0)
    magnitude = np.abs(d.ravel())
    order = np.argsort(magnitude, kind="stable")  # NaN last
    ranked = np.concatenate([[0.0], magnitude[order]])  # a group at 0 first, so small ones join it
    starts = np.isnan(ranked) | (np.diff(ranked, prepend=-np.inf) > tolerance)
    first = np.maximum.accumulate(np.where(starts, np.arange(ranked.size), 0))
    merged = np.empty_like(magnitude)
    merged[order] = ranked[first][1:]
    return (np.sign(d) * merged.reshape(d.shape)) + 0.0  # + 0.0: no negative zeros


def min_wilcoxon_p(n: int) -> float:
    """The smallest two-sided exact Wilcoxon p-value n pairs allow: every sign alike, 2 / 2^n."""
    return min(1.0, 2.0 / 2.0**n)


def min_page_p(subjects: int, levels: int) -> float:
    """The smallest exact Page p-value: every subject ranks the levels in the predicted order."""
    return math.factorial(levels) ** -float(subjects)


def wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the differences (1.0 when all are zero)."""
    if not np.any(d):
        return 1.0  # no pair differs: no evidence at all (scipy warns and divides 0 by 0)
    tied = np.unique(np.abs(d)).size < d.size or not np.all(d)
    if tied and d.size <= EXHAUSTIVE_SIGN_FLIPS:
        return _signed_rank_permutation_p(d)
    return float(scipy.stats.wilcoxon(d, zero_method="pratt", method="auto").pvalue)


# With ties or zeros and n ≤ 13, scipy's wilcoxon(method="auto") enumerates every sign flip
# through permutation_test with a statistic that is not vectorized: about a second per test.
# The same enumeration with a vectorized statistic gives the same p-value 40 times faster.
EXHAUSTIVE_SIGN_FLIPS = 13


def _signed_rank_permutation_p(d: np.ndarray) -> float:
    """Exact conditional p of the signed-rank sum R+ (Pratt: zeros ranked, never positive) over
    all 2^n sign flips; flipping signs leaves |d|, hence the ranks, unchanged."""
    ranks = scipy.stats.rankdata(np.abs(d))

    def positive_rank_sum(x: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.sum(ranks * (x > 0), axis=axis)

    return float(
        scipy.stats.permutation_test(
            (d,), positive_rank_sum, permutation_type="samples", vectorized=True, n_resamples=np.inf
        ).pvalue
    )


def ttest_p(d: np.ndarray) -> float:
    """Two-sided paired t-test p-value; NaN when the differences have no spread."""
    if np.ptp(d) == 0:
        return math.nan
    return float(scipy.stats.ttest_1samp(d, 0.0).pvalue)


def rank_biserial(d: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation (Kerby's simple difference): (R+ − R−) / (R+ + R−).

    Ranks are those of |d| over the non-zero differences; +1 means every pair has a > b. With no
    non-zero difference it is 0, as the zero-splitting convention gives.
    """
    nonzero = d[d != 0]
    if nonzero.size == 0:
        return 0.0
    ranks = scipy.stats.rankdata(np.abs(nonzero))
    return float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum())


# A standardized effect divides by the spread of the differences: when every seed moves alike
# (say +0.4 points on each, give or take one test row), d_z runs into the hundreds and means nothing
# beyond "consistent sign", which the test already says. Beyond this it is left out, with a note.
DZ_CAP = 10.0


def cohens_dz(d: np.ndarray) -> float:
    """Cohen's d_z: mean difference over the standard deviation of the differences (ddof=1)."""
    if d.size < 2 or np.ptp(d) == 0:
        return math.nan
    return float(np.mean(d) / np.std(d, ddof=1))


def wilson_interval(successes: float, n: int, level: float) -> tuple[float, float]:
    """Wilson score interval of a proportion; `successes` may be fractional (ties counted half),
    which scipy's binomtest does not accept."""
    if n == 0:
        return math.nan, math.nan
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    p = successes / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return max(0.0, centre - half), min(1.0, centre + half)


def win_probability(d: np.ndarray, level: float) -> tuple[float, float, float]:
    """Fraction of pairs with a > b (ties count half) and its Wilson interval."""
    successes = float(np.sum(d > 0) + 0.5 * np.sum(d == 0))
    low, high = wilson_interval(successes, d.size, level)
    return (successes / d.size if d.size else math.nan), low, high


def t_interval(x: np.ndarray | Sequence[float], *, level: float) -> Interval:
    """Student-t interval of the mean of x (for paired data: of the differences). With 10 replicates
    a bootstrap interval under-covers (it cannot see beyond the spread of its 10 values), which the
    t-interval's heavier tails correct; with no spread it is the mean itself."""
    x = np.asarray(x, float)
    if x.size < 2:
        return Interval(math.nan, math.nan)
    mean = float(x.mean())
    half = _t_quantile(level, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return Interval(mean - half, mean + half)


@functools.cache
def _t_quantile(level: float, df: int) -> float:
    # The figures ask for an interval per drawn point: scipy's ppf is the slow part, and (level, df)
    # take few values.
    return float(scipy.stats.t.ppf(0.5 + level / 2, df))


def paired_comparison(a: np.ndarray, b: np.ndarray, *, alpha: float) -> PairedComparison:
    """Every paired statistic of a versus b (same subject at the same index).

    Fewer than two pairs give no test: p-values and effect sizes are NaN, can_reach_alpha is
    False and the note says why.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = differences(a, b)
    n = d.size
    notes = []
    if n < 2:
        notes.append(f"{n} pair{'s' * (n != 1)}: a paired test needs at least 2")
    elif np.ptp(d) == 0:
        notes.append("all differences equal: t-test and d_z undefined")
    dz = cohens_dz(d)
    if abs(dz) > DZ_CAP:
        notes.append(
            f"|d_z| > {DZ_CAP:g} not reported: the differences barely vary, so it says no more than their sign"
        )
        dz = math.nan
    ci = t_interval(d, level=1 - alpha)
    beats, beats_low, beats_high = win_probability(d, 1 - alpha)
    # The smallest p these seeds allow: every nonzero difference on one side. Zeros and ties among
    # the |differences| raise it above 2/2^n (seven zero slopes of ten leave p ≥ 0.125).
    smallest = wilcoxon_p(np.abs(d)) if n >= 2 else min_wilcoxon_p(n)
    return PairedComparison(
        n=n,
        mean_a=float(np.mean(a)) if n else math.nan,
        mean_b=float(np.mean(b)) if n else math.nan,
        mean_diff=float(np.mean(d)) if n else math.nan,
        ci_low=ci.low,
        ci_high=ci.high,
        wilcoxon_p=wilcoxon_p(d) if n >= 2 else math.nan,
        ttest_p=ttest_p(d) if n >= 2 else math.nan,
        rank_biserial=rank_biserial(d) if n >= 2 else math.nan,
        cohens_dz=dz,
        p_a_beats_b=beats,
        p_beats_ci_low=beats_low,
        p_beats_ci_high=beats_high,
        min_attainable_p=smallest,
        can_reach_alpha=n >= 2 and smallest <= alpha,
        note="; ".join(notes),
    )


def tost_p(d: np.ndarray, margin: float) -> float:
    """Paired-t two one-sided tests of |mean difference| < margin: the larger one-sided p-value.

    Small p means equivalence. With no spread the t statistics are ±inf and the verdict follows
    the mean alone (inside the margin: 0, outside: 1); NaN below two pairs.
    """
    if d.size < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero spread: scipy warns, then returns the limits above
        above = scipy.stats.ttest_1samp(d, -margin, alternative="greater").pvalue
        below = scipy.stats.ttest_1samp(d, margin, alternative="less").pvalue
    return float(max(above, below))


def beyond_p(d: np.ndarray, margin: float) -> float:
    """Paired-t p that the mean difference lies beyond ±margin (the smaller of the one-sided tests
    mean > margin and mean < −margin): small p shows a difference larger than the margin, the
    opposite of equivalence. NaN below two pairs."""
    if d.size < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero spread, as in tost_p
        above = scipy.stats.ttest_1samp(d, margin, alternative="greater").pvalue
        below = scipy.stats.ttest_1samp(d, -margin, alternative="less").pvalue
    return float(min(above, below))


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (scipy has no Holm); NaN entries stay NaN and do not
    count in the family."""
    p = np.asarray(pvalues, float)
    adjusted = np.full_like(p, math.nan)
    present = np.flatnonzero(~np.isnan(p))
    order = present[np.argsort(p[present], kind="stable")]
    m = order.size
    steps = p[order] * (m - np.arange(m))
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return adjusted


@dataclass(frozen=True)
class Trend:
    statistic: float
    p: float
    min_attainable_p: float
    note: str


def page_trend(matrix: np.ndarray, *, decreasing: bool) -> Trend:
    """Page's L test that the columns (levels, in order) rise — or fall, if decreasing — within
    each row (subject). Needs at least two rows and three columns."""
    subjects, levels = matrix.shape
    bound = min_page_p(subjects, levels)
    if subjects < 2 or levels < 3:
        return Trend(math.nan, math.nan, bound, f"{subjects} seeds × {levels} levels: Page's test needs at least 2 × 3")
    ordered = matrix[:, ::-1] if decreasing else matrix
    result = scipy.stats.page_trend_test(ordered)
    return Trend(float(result.statistic), float(result.pvalue), bound, "")


def is_monotone(values: np.ndarray, *, decreasing: bool) -> bool:
    """Whether the values never move against the predicted direction."""
    steps = np.diff(np.asarray(values, float))
    return bool(np.all(steps <= 0) if decreasing else np.all(steps >= 0))


@dataclass(frozen=True)
class Friedman:
    statistic: float
    p: float
    mean_ranks: np.ndarray  # per column; rank 1 = largest value
    note: str


def friedman(matrix: np.ndarray) -> Friedman:
    """Friedman's test that the columns (treatments) of a subjects × treatments matrix have equal
    ranks, plus each column's mean rank (1 = the largest value in its row)."""
    subjects, treatments = matrix.shape
    ranks = scipy.stats.rankdata(-matrix, axis=1).mean(axis=0) if subjects else np.full(treatments, math.nan)
    if subjects < 2 or treatments < 3:
        return Friedman(
            math.nan,
            math.nan,
            ranks,
            f"{subjects} seeds × {treatments} treatments: Friedman's test needs at least 2 × 3",
        )
    if np.all(matrix == matrix[:, :1]):
        return Friedman(0.0, 1.0, ranks, "every treatment tied within every seed")
    result = scipy.stats.friedmanchisquare(*matrix.T)
    return Friedman(float(result.statistic), float(result.pvalue), ranks, "")

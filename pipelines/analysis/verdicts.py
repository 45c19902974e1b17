"""From checks to an outcome: how a hypothesis is judged, and the checks judges build from typed results.

Each hypothesis is a list of checks, and each check has one of four outcomes:
  supported     the predicted effect is shown at the stated level;
  contradicted  the opposite is shown: a significant effect in the other direction, an interval
                wholly on the wrong side of its bound, or a difference beyond the margin where
                equivalence was predicted;
  not shown     it could have been shown and was not, and neither was the opposite;
  inconclusive  it cannot be decided: fewer seeds than reaching alpha needs, configs missing, or a
                group lost because its whole baseline diverged.
The hypothesis is contradicted if any check is, else not shown if any check is, else inconclusive
if any check is (or there is none), else supported. "Not shown" is not evidence against a claim.
A paired check is supported when its adjusted p is below alpha with the difference in the
predicted direction; it is inconclusive when its smallest attainable p (two-sided exact Wilcoxon:
2/2^n, times the family size under Holm; Page: 1/(m!)^n for n seeds and m levels) exceeds alpha.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.analysis.inference import PairedComparison
from pipelines.analysis.plan import ComparisonResult, EquivalenceResult, TrendResult

SUPPORTED, CONTRADICTED, NOT_SHOWN, INCONCLUSIVE = "supported", "contradicted", "not shown", "inconclusive"
OUTCOMES = (SUPPORTED, CONTRADICTED, NOT_SHOWN, INCONCLUSIVE)
RULE = (
    " Supported if every check passes; contradicted if any check shows the opposite; not shown if a "
    "check that could pass fails without showing the opposite; inconclusive if none fails but some "
    "cannot be decided (too few seeds to reach alpha, or configs missing)."
)


@dataclass(frozen=True)
class Check:
    outcome: str  # one of OUTCOMES
    why: str = ""  # for an inconclusive check: why it cannot be decided

    @property
    def passed(self) -> bool:
        return self.outcome == SUPPORTED


def shown(passed: bool, opposite: bool = False) -> Check:
    """A decided check: supported if passed, contradicted if the opposite was shown, else not shown."""
    return Check(SUPPORTED if passed else CONTRADICTED if opposite else NOT_SHOWN)


def undecided(why: str) -> Check:
    return Check(INCONCLUSIVE, why)


@dataclass(frozen=True)
class Headline:
    """The one effect a reader cites for a hypothesis on a dataset: what is measured, in its natural
    units, the mean over the paired replicates, its t-interval and the number of replicates."""

    measure: str
    effect: float
    ci_low: float
    ci_high: float
    n: int

    @classmethod
    def of(cls, measure: str, test: PairedComparison) -> Headline:
        return cls(measure, test.mean_diff, test.ci_low, test.ci_high, test.n)

    def sentence(self, level: float) -> str:
        """The finding when a hypothesis writes none of its own."""
        if not self.n:
            return ""
        interval = f"{level:g}% t-interval {self.ci_low:+.3g} to {self.ci_high:+.3g}, "
        return f"{self.measure}: {self.effect:+.3g} ({interval if self.n > 1 else ''}{self.n} seeds)."


NO_HEADLINE = Headline("", math.nan, math.nan, math.nan, 0)


@dataclass(frozen=True)
class Judgement:
    checks: list[Check]
    evidence: str
    details: dict[str, object]  # every number of the hypothesis, for reports/summary.json
    finding: str = ""  # the sentence a reader cites: the effect, its interval and replicates
    headline: Headline = NO_HEADLINE  # the effect reports/metrics/ and the at-a-glance figure carry

    def verdict(self) -> tuple[str, str]:
        """(outcome, why undecided), by the rule in RULE."""
        outcomes = {check.outcome for check in self.checks}
        for outcome in (CONTRADICTED, NOT_SHOWN):
            if outcome in outcomes:
                return outcome, ""
        reasons = sorted({check.why for check in self.checks if check.outcome == INCONCLUSIVE})
        if reasons or not self.checks:
            return INCONCLUSIVE, "; ".join(reasons) or "no configs to test"
        return SUPPORTED, ""


def test_check(test: PairedComparison, p: float, alpha: float, predicted: str, family_size: int = 1) -> Check:
    """A paired test: significant (p, adjusted) in the `predicted` direction (greater, less or
    different); contradicted when significant the other way; inconclusive when even the smallest p
    the seeds allow (times the Holm family size) cannot reach alpha."""
    bound = test.min_attainable_p * family_size
    if bound > alpha:
        adjusted = "a Holm-adjusted " if family_size > 1 else ""
        return undecided(f"{test.n} seed pairs allow {adjusted}p ≥ {min(bound, 1.0):.3g} > alpha {alpha:g}")
    if math.isnan(p):
        return undecided(test.note)
    wanted = {"greater": 1, "less": -1, "different": 0}[predicted]  # 0: either sign
    found = int(math.copysign(1, test.mean_diff)) if test.mean_diff else 0
    significant = p < alpha
    return shown(significant and found != 0 and wanted in (0, found), significant and wanted * found < 0)


def paired_check(result: ComparisonResult, p: float, alpha: float, family_size: int = 1) -> Check:
    """test_check of a planned comparison, in the direction it predicts."""
    return test_check(result.test, p, alpha, result.spec.predicted, family_size)


def trend_check(result: TrendResult, alpha: float, monotone: bool) -> Check:
    """Page's p below alpha, and (if asked) level means that move only one way. Page's test is
    one-sided: it cannot show the opposite trend."""
    test = result.test
    if math.isnan(test.p):
        return undecided(test.note)
    if test.min_attainable_p > alpha:
        return undecided(f"{result.n_seeds} seeds allow p ≥ {test.min_attainable_p:.3g} > alpha {alpha:g}")
    return shown(test.p < alpha and (result.monotone or not monotone))


def interval_check(result: ComparisonResult, *, above: float = -math.inf, below: float = math.inf) -> Check:
    """The t-interval of the mean difference lies above `above` and below `below`;
    contradicted when it lies wholly on the wrong side of one of them; inconclusive when it cannot
    be computed (fewer than two pairs)."""
    test = result.test
    if math.isnan(test.ci_low) or math.isnan(test.ci_high):
        return undecided(test.note or f"{test.n} seed pairs: no interval")
    return shown(test.ci_low > above and test.ci_high < below, test.ci_high < above or test.ci_low > below)


def equivalence_check(result: EquivalenceResult, alpha: float) -> Check:
    """TOST: equivalent within the margin; contradicted when a difference beyond it is shown."""
    if math.isnan(result.tost_p):
        return undecided(result.note)
    return shown(result.equivalent, result.beyond_p < alpha)


def any_of(checks: list[Check], nothing: str) -> Check:
    """Supported when one of the checks is; contradicted when every one is; inconclusive when none
    is supported and some cannot be decided."""
    outcomes = {check.outcome for check in checks}
    if SUPPORTED in outcomes:
        return Check(SUPPORTED)
    if INCONCLUSIVE in outcomes or not checks:
        return undecided(next((c.why for c in checks if c.outcome == INCONCLUSIVE), nothing))
    return Check(CONTRADICTED if outcomes == {CONTRADICTED} else NOT_SHOWN)


def largest(values: Iterable[float]) -> float:
    """The largest value that is not NaN; NaN if there is none."""
    present = [v for v in values if not math.isnan(v)]
    return max(present) if present else math.nan

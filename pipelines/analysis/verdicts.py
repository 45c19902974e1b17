"""From checks to a verdict: how a hypothesis is judged, and the checks judges build from typed results.

Each hypothesis is a list of checks. Supported: every check passes. Not supported: a check that
could pass fails. Inconclusive: no check fails but some cannot be decided (fewer seeds than
reaching alpha needs, configs missing, or a group lost because its whole baseline diverged).
A paired check passes when its adjusted p is below alpha with the difference in the predicted
direction (an interval check: when the bootstrap interval of the mean difference lies on the
predicted side of its bound); it is undecided when its smallest attainable p (two-sided exact Wilcoxon: 2/2^n,
times the family size under Holm; Page: 1/(m!)^n for n seeds and m levels) exceeds alpha.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.analysis.plan import ComparisonResult, EquivalenceResult, TrendResult

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
RULE = (
    " Supported if every check passes; not supported if a check that could pass fails; inconclusive "
    "if none fails but some cannot be decided (too few seeds to reach alpha, or configs missing)."
)

Check = tuple[bool | None, str]  # passed (None: cannot be decided) and, if undecided, why


@dataclass(frozen=True)
class Judgement:
    checks: list[Check]
    evidence: str
    headline: dict[str, object]  # the numbers metrics.json carries for the hypothesis
    finding: str = ""  # the sentence a reader cites: the effect, its interval and replicates

    def verdict(self) -> tuple[str, str]:
        """(verdict, why undecided), by the rule in RULE."""
        if any(passed is False for passed, _ in self.checks):
            return NOT_SUPPORTED, ""
        undecided = sorted({why for passed, why in self.checks if passed is None})
        if undecided or not self.checks:
            return INCONCLUSIVE, "; ".join(undecided) or "no configs to test"
        return SUPPORTED, ""


def paired_check(result: ComparisonResult, p: float, alpha: float, family_size: int = 1) -> Check:
    """Significant (p, adjusted) in the predicted direction; undecided when even the smallest p the
    seeds allow (times the Holm family size) cannot reach alpha."""
    test = result.test
    bound = test.min_attainable_p * family_size
    if bound > alpha:
        adjusted = "a Holm-adjusted " if family_size > 1 else ""
        return None, f"{test.n} seed pairs allow {adjusted}p ≥ {min(bound, 1.0):.3g} > alpha {alpha:g}"
    if math.isnan(p):
        return None, test.note
    direction = {"greater": test.mean_diff > 0, "less": test.mean_diff < 0, "different": True}[result.spec.predicted]
    return bool(p < alpha and direction), ""


def trend_check(result: TrendResult, alpha: float, monotone: bool) -> Check:
    """Page's BH-adjusted p below alpha, and (if asked) level means that move only one way."""
    test = result.test
    if math.isnan(test.p):
        return None, test.note
    if test.min_attainable_p > alpha:
        return None, f"{result.n_seeds} seeds allow p ≥ {test.min_attainable_p:.3g} > alpha {alpha:g}"
    return bool(result.bh_p < alpha and (result.monotone or not monotone)), ""


def interval_check(result: ComparisonResult, *, above: float = -math.inf, below: float = math.inf) -> Check:
    """The bootstrap interval of the mean difference lies above `above` and below `below`;
    undecided when it cannot be computed (fewer than two pairs)."""
    test = result.test
    if math.isnan(test.ci_low) or math.isnan(test.ci_high):
        return None, test.note or f"{test.n} seed pairs: no interval"
    return bool(test.ci_low > above and test.ci_high < below), ""


def equivalence_check(result: EquivalenceResult) -> Check:
    return (None, result.note) if math.isnan(result.tost_p) else (result.equivalent, "")


def any_of(checks: list[Check], nothing: str) -> Check:
    """Passes when one of the checks passes."""
    if any(passed for passed, _ in checks):
        return True, ""
    undecided = [why for passed, why in checks if passed is None]
    if undecided or not checks:
        return None, undecided[0] if undecided else nothing
    return False, ""


def largest(values: Iterable[float]) -> float:
    """The largest value that is not NaN; NaN if there is none."""
    present = [v for v in values if not math.isnan(v)]
    return max(present) if present else math.nan

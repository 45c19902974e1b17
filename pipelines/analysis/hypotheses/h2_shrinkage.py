"""H2: L2 shrinks weights proportionally, without making networks sparse.

Per optimizer group, l2 against none, paired by seed:
  - the norm falls: Page's trend of weight_l2 along none and the l2 strengths, monotone level
    means (nearly a tautology, so never the verdict on its own);
  - the shape of |w| relative to each layer's RMS stays the baseline's: at every judged strength
    (`judged`: validation accuracy within the largest analyze.accuracy_costs of none's), TOST
    equivalence of the scale-free sparsity `negligible` within ±analyze.margins.<dataset>.negligible;
  - no functional sparsity: at every judged strength, the t-interval of the mean rise of the
    prunable fraction lies below its margin (analyze.margins.<dataset>.prunable_fraction), and that of
    the dead units (as a fraction of hidden units, dead_fraction) below theirs (dead_fraction).
Underflow (denormal weights) is compared descriptively: under Adam, weights that receive no data
gradient (those of dead units) take a fixed-size L2 step toward zero and decay geometrically, which
the dead units and underflow measure; the finding says what the data show in each group.

Details (reports/summary.json) (<g> a group): <g>_page_p, <g>_monotone, <g>_weight_l2_none,
<g>_weight_l2_strongest; at the strongest judged l2 <g>_strongest, <g>_<m>_diff, <g>_<m>_ci_low,
<g>_<m>_ci_high for m in negligible, prunable_fraction, dead_fraction, underflow; <g>_n.
"""

from __future__ import annotations

from pipelines.analysis.hypotheses.base import Context, Hypothesis, page_rule
from pipelines.analysis.inference import PairedComparison
from pipelines.analysis.plan import Comparison, Equivalence, Findings, Plan, Trend
from pipelines.analysis.verdicts import (
    CONTRADICTED,
    NO_HEADLINE,
    Check,
    Headline,
    Judgement,
    equivalence_check,
    interval_check,
    trend_check,
    undecided,
)

RISES = ("prunable_fraction", "dead_fraction")  # may not rise beyond their margins
DESCRIBED = ("negligible", *RISES, "underflow")


def _cost(context: Context) -> str:
    return f"{100 * max(context.settings.accuracy_costs):g} points"


def rule(context: Context) -> str:
    level, margins = 100 * (1 - context.settings.alpha), context.margins
    return (
        f"For l2 in each optimizer group: weight_l2 falls as the strength rises ({page_rule(context.settings)} "
        "strength 0) with monotone level means; at every strength whose mean validation accuracy is within "
        f"{100 * max(context.settings.accuracy_costs):g} points of none's (stronger ones are described, not judged), "
        "the fraction of weights at most 0.01 × their "
        f"layer's RMS is equivalent to none's (paired-t TOST, margin ±{margins.negligible.value:g}, "
        f"p < {context.settings.alpha:g}); and the {level:g}% t-interval of the mean rise over none "
        f"lies below {margins.prunable_fraction.value:g} for the prunable fraction and below "
        f"{margins.dead_fraction.value:g} for dead units as a fraction of hidden units."
    )


def judged(context: Context, group: str) -> list[str]:
    """The l2 configs H2 judges: those within the largest accuracy cost of the baseline's validation
    accuracy. A stronger L2 has broken the network (on diabetes down to the majority class), and
    what is left of a broken network says nothing about how L2 shapes a working one; those
    strengths are still described."""
    grid = context.grid
    floor = grid.configs.at[grid.baseline(group), "val_acc_mean"] - max(context.settings.accuracy_costs)
    l2 = grid.family(group, "l2")
    return list(l2.index[l2["val_acc_mean"] >= floor])


def plan(context: Context, group: str) -> Plan:
    l2 = context.grid.family(group, "l2")
    if l2.empty:
        return Plan()
    none, margin = context.grid.baseline(group), context.margins.negligible.value
    return Plan(
        # Judged: the rises at the working strengths (predicted to stay below their margins); the
        # rest describes. Planned first, so a pair planned twice keeps its judged entry.
        comparisons=[
            Comparison("H2", "per_strength", m, c, none, "less") for c in judged(context, group) for m in RISES
        ]
        + [Comparison("H2", "per_strength", m, c, none) for c in l2.index for m in ("weight_l2", *DESCRIBED)],
        trends=[Trend("H2", "l2", (none, *l2.index), "weight_l2")],
        equivalences=[Equivalence("H2", c, none, "negligible", margin=margin) for c in judged(context, group)],
    )


def judge(context: Context, findings: Findings) -> Judgement:
    checks: list[Check] = []
    parts: list[str] = []
    cited: list[str] = []
    details: dict[str, object] = {}
    level = 100 * (1 - context.settings.alpha)
    headline = NO_HEADLINE
    for t in (t for t in findings.trends if t.spec.hypothesis == "H2"):
        group, none = t.group, t.spec.configs[0]
        checks.append(trend_check(t, context.settings.alpha, monotone=True))
        details |= {
            f"{group}_page_p": t.test.p,
            f"{group}_monotone": t.monotone,
            f"{group}_weight_l2_none": t.means[0],
            f"{group}_weight_l2_strongest": t.means[-1],
        }
        shapes = [e for e in findings.equivalences if e.spec.hypothesis == "H2" and e.group == group]
        checks += [equivalence_check(e, context.settings.alpha) for e in shapes]
        within = {}
        rose = ""  # the first measure that rose beyond its margin, if one did
        working = judged(context, group)
        for metric in RISES:
            rises = [
                interval_check(findings.comparison("H2", metric, c, none), below=getattr(context.margins, metric).value)
                for c in working
            ]
            checks += rises
            within[metric] = sum(check.passed for check in rises)
            if not rose and any(check.outcome == CONTRADICTED for check in rises):
                rose = metric
        if not working:
            checks.append(
                undecided(f"{group}: no l2 strength within {_cost(context)} of the baseline's validation accuracy")
            )
            continue
        strongest = working[-1]
        at_strongest = {m: findings.comparison("H2", m, strongest, none).test for m in DESCRIBED}
        if not headline.n:  # the first group's, on the measure that contradicts the claim if one does
            metric = rose or "prunable_fraction"
            headline = Headline.of(f"{group}: {metric.replace('_', ' ')}, {strongest} − none", at_strongest[metric])
        details[f"{group}_strongest"] = strongest
        details[f"{group}_n"] = at_strongest["negligible"].n
        for metric, test in at_strongest.items():
            details |= {
                f"{group}_{metric}_diff": test.mean_diff,
                f"{group}_{metric}_ci_low": test.ci_low,
                f"{group}_{metric}_ci_high": test.ci_high,
            }
        effects = ", ".join(
            f"{metric} {test.mean_diff:+.3g} ({test.ci_low:+.3g} to {test.ci_high:+.3g})"
            for metric, test in at_strongest.items()
        )
        cited.append(
            f"under {group}, weight_l2 falls from {t.means[0]:.4g} to {t.means[-1]:.4g} while {strongest} minus none "
            f"is: {effects} ({level:g}% t-intervals, {at_strongest['negligible'].n} seeds)"
            + _decay(at_strongest["underflow"], at_strongest["dead_fraction"])
        )
        equivalent = sum(e.equivalent for e in shapes)
        parts.append(
            f"{group}: weight_l2 {t.means[0]:.4g} → {t.means[-1]:.4g} over l2 strengths {t.levels_text} "
            f"(Page L={t.test.statistic:.0f}, p={t.test.p:.2g}, {'monotone' if t.monotone else 'not monotone'}); "
            f"of the {len(shapes)} strengths within {_cost(context)} of none's validation accuracy (of "
            f"{len(t.spec.configs) - 1}), negligible is equivalent to none's at {equivalent}, the prunable fraction "
            f"rises within its margin at {within['prunable_fraction']} and dead units at {within['dead_fraction']}; "
            f"at {strongest}: "
            f"underflow {at_strongest['underflow'].mean_a:.3g} vs {at_strongest['underflow'].mean_b:.3g}, "
            f"dead units {at_strongest['dead_fraction'].mean_a:.3g} vs {at_strongest['dead_fraction'].mean_b:.3g} "
            "of hidden units"
        )
    finding = ("At the strongest l2 within the accuracy cost, " + "; ".join(cited) + ".") if cited else ""
    return Judgement(checks, "; ".join(parts) or "no l2 configs", details, finding, headline)


def _decay(underflow: PairedComparison, dead: PairedComparison) -> str:
    """What the data show of weights that decay without a data gradient: said only when the strongest
    l2 leaves more float32 denormals than none, with an interval above 0."""
    if not underflow.ci_low > 0:
        return ""
    return (
        f"; {underflow.mean_a:.1%} of its weights are float32 denormals (none: {underflow.mean_b:.1%}) and "
        f"{dead.mean_a:.1%} of its hidden units are dead (none: {dead.mean_b:.1%}), as when weights that receive "
        "no data gradient decay geometrically under the L2 term until they underflow"
    )


H2 = Hypothesis("H2", "L2 shrinks weights proportionally, without making networks sparse", rule, judge, plan_group=plan)

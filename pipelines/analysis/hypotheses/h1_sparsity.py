"""H1a and H1b: L1 (subgradient l1, proximal prox_l1) buys more sparsity than L2 for the same accuracy.

Per optimizer group and accuracy cost (analyze.accuracy_costs), the family's sparsity–accuracy
frontier against l2's (pipelines/analysis/frontier.py): the difference in prunable fraction between
the two frontier configs, paired by seed: a cost passes when the two-sided Wilcoxon signed-rank p
is below alpha with a positive mean difference (contradicted: significant and negative); the
t-interval of the mean at level 1 − alpha is reported beside it. The prunable fraction is refined
between the pruning ladder's rungs (pipelines/training/pruning.py), so that seeds seldom tie. Costs
whose frontiers are the same two configs are one comparison and one check. A cost that either
family's grid does not reach is reported and left out of the verdict; so is one where both
frontiers are the baseline and no strength of the family is within the cost (nothing to compare);
when some is, the family buys nothing at that cost, which fails without a test (a config is never
compared with itself).
Per strength, descriptive comparisons against none: prunable fraction, scale-free sparsity
(negligible) and the largest absolute threshold, which stays descriptive only.

Details (reports/summary.json) (<g> a group, <c> a cost as a fraction): <g>_<c>_compared; where compared
<g>_<c>_<family>_config, <g>_<c>_l2_config, <g>_<c>_<family>_prunable, <g>_<c>_l2_prunable,
<g>_<c>_diff, <g>_<c>_ci_low, <g>_<c>_ci_high, <g>_<c>_n.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipelines.analysis import frontier
from pipelines.analysis.hypotheses.base import Context, Hypothesis
from pipelines.analysis.inference import PairedComparison
from pipelines.analysis.plan import Comparison, Findings, Plan
from pipelines.analysis.verdicts import NO_HEADLINE, Check, Headline, Judgement, shown, test_check, undecided

DESCRIBED = ("prunable_fraction", "negligible")


def _points(costs: list[float]) -> str:
    return ", ".join(f"{100 * c:g}" for c in costs) + " points"


def rule_of(family: str) -> Callable[[Context], str]:
    def rule(context: Context) -> str:
        level = 100 * (1 - context.settings.alpha)
        return (
            f"For {family} in each optimizer group, at each cost of {_points(context.settings.accuracy_costs)} "
            f"of validation accuracy: the {family} frontier's prunable fraction exceeds l2's, paired by seed "
            f"(two-sided Wilcoxon signed-rank p < {context.settings.alpha:g} with a positive mean difference; the "
            f"{level:g}% t-interval is reported; costs whose frontiers are the same two configs are one check). "
            "Frontier: "
            f"{frontier.reading_rule()}. A cost that either grid does not reach, or where both frontiers are the "
            "baseline with no strength of the family within the cost, is reported, not judged (both at the baseline "
            "with a strength within the cost: fails); when no cost is judged the hypothesis is inconclusive."
        )

    return rule


def plan_of(hypothesis: str, family: str) -> Callable[[Context, str], Plan]:
    def plan(context: Context, group: str) -> Plan:
        grid, tests = context.grid, Plan()
        none = grid.baseline(group)
        described = [*DESCRIBED, *grid.sparsity[-1:]]
        for config in grid.family(group, family).index:
            tests.comparisons += [Comparison(hypothesis, "per_strength", m, config, none) for m in described]
        for cost in context.settings.accuracy_costs:
            pair = _pair(context, group, family, cost)
            if isinstance(pair, tuple):
                tests.comparisons.append(Comparison(hypothesis, "frontier", frontier.MEASURE, *pair, "greater"))
        return tests

    return plan


@dataclass(frozen=True)
class Unpaired:
    """Why the frontiers at a cost are not compared by a test. `fails`: both are the baseline although
    some strength of the family is within the cost, so the family buys no sparsity there."""

    reason: str
    fails: bool = False


def _pair(context: Context, group: str, family: str, cost: float) -> tuple[str, str] | Unpaired:
    """The (family, l2) frontier configs to compare at a cost, or why there is no comparison."""
    ours = frontier.at(context.frontier, group, family, cost)
    rival = frontier.at(context.frontier, group, frontier.RIVAL, cost)
    if ours is None or rival is None:
        return Unpaired(f"no measured {family if ours is None else frontier.RIVAL} frontier under {group}")
    short = [f for f, p in ((family, ours), (frontier.RIVAL, rival)) if not p["reached"]]
    if short:
        return Unpaired(f"not reached ({' and '.join(short)}: the strongest strength costs at most {_cost(cost)})")
    if ours["config"] == rival["config"]:
        floor = ours["baseline_val_acc_mean"] - cost
        if (context.grid.family(group, family)["val_acc_mean"] >= floor).any():
            return Unpaired(f"both frontiers are the baseline: no {family} strength within the cost prunes more", True)
        return Unpaired(f"both frontiers are the baseline: no {family} strength is within the cost")
    return str(ours["config"]), str(rival["config"])


def _cost(cost: float) -> str:
    points = 100 * cost
    return f"{points:g} point{'s' * (points != 1)}"


def _effect(test: PairedComparison, level: float) -> str:
    return f"{test.mean_diff:+.3f} ({level:g}% t-interval {test.ci_low:+.3f} to {test.ci_high:+.3f}, {test.n} seeds)"


def judge_of(hypothesis: str, family: str) -> Callable[[Context, Findings], Judgement]:
    def judge(context: Context, findings: Findings) -> Judgement:
        checks: list[Check] = []
        parts: list[str] = []
        cited: dict[tuple[str, str, str], list[str]] = {}  # (group, *pair) -> the costs it answers, cited once
        details: dict[str, object] = {}
        level = 100 * (1 - context.settings.alpha)
        groups = [g for g in context.grid.groups() if not context.grid.family(g, family).empty]
        judged: set[tuple[str, str]] = set()
        headline = NO_HEADLINE
        for group in groups:
            for cost in context.settings.accuracy_costs:
                key = f"{group}_{cost:g}"
                pair = _pair(context, group, family, cost)
                details[f"{key}_compared"] = isinstance(pair, tuple)
                if isinstance(pair, Unpaired):
                    parts.append(f"{group}, {_cost(cost)}: {pair.reason}")
                    checks += [shown(False)] if pair.fails else []
                    continue
                result = findings.comparison(hypothesis, frontier.MEASURE, *pair)
                if pair not in judged:  # costs that read the same two configs are one comparison, one check
                    judged.add(pair)
                    checks.append(test_check(result.test, result.test.wilcoxon_p, context.settings.alpha, "greater"))
                if not headline.n:  # the first group's smallest judged cost
                    measure = (
                        f"{group}: prunable fraction, {family} − l2 at a cost of {_cost(cost)} in validation accuracy"
                    )
                    headline = Headline.of(measure, result.test)
                t = result.test
                details |= {
                    f"{key}_{family}_config": pair[0],
                    f"{key}_l2_config": pair[1],
                    f"{key}_{family}_prunable": t.mean_a,
                    f"{key}_l2_prunable": t.mean_b,
                    f"{key}_diff": t.mean_diff,
                    f"{key}_ci_low": t.ci_low,
                    f"{key}_ci_high": t.ci_high,
                    f"{key}_n": t.n,
                }
                cited.setdefault((group, *pair), []).append(_cost(cost))
                parts.append(
                    f"{group}, {_cost(cost)}: {pair[0]} prunes {t.mean_a:.3f} of each layer vs "
                    f"{t.mean_b:.3f} for {pair[1]}, difference {_effect(t, level)}"
                )
        if not checks:
            checks.append(undecided(f"no accuracy cost is judged: none is reached by both the {family} and l2 grids"))
        if cited:
            finding = (
                f"The {family} frontier's prunable fraction minus l2's at equal validation-accuracy cost is "
                + "; ".join(
                    f"under {group} at {' and '.join(costs)} ({a} against {b}), "
                    f"{_effect(findings.comparison(hypothesis, frontier.MEASURE, a, b).test, level)}"
                    for (group, a, b), costs in cited.items()
                )
                + "."
            )
        else:
            finding, headline = _unjudged_finding(context, findings, hypothesis, family, groups, level)
        return Judgement(checks, "; ".join(parts) or f"no {family} configs", details, finding, headline)

    return judge


def _unjudged_finding(
    context: Context, findings: Findings, hypothesis: str, family: str, groups: list[str], level: float
) -> tuple[str, Headline]:
    """Without a frontier comparison, what can still be cited: the strongest strength against none
    (the first group's is the headline)."""
    described, headline = [], NO_HEADLINE
    for group in groups:
        strongest = context.grid.family(group, family).iloc[-1]
        none = context.grid.baseline(group)
        t = findings.comparison(hypothesis, frontier.MEASURE, str(strongest["config"]), none).test
        cost = context.grid.configs.at[none, "val_acc_mean"] - strongest["val_acc_mean"]
        if not headline.n:
            headline = Headline.of(f"{group}: prunable fraction, strongest {family} − none (descriptive)", t)
        change = f"{'cost' if cost >= 0 else 'gain'} of {abs(100 * cost):.2f} points"
        described.append(
            f"under {group}, its strongest strength ({strongest['config']}) changes the prunable fraction by "
            f"{_effect(t, level)} against none, at a validation-accuracy {change}"
        )
    finding = (
        f"No accuracy cost is reached by both the {family} and l2 grids, so the frontiers are not compared"
        + (f"; descriptively, {'; '.join(described)}" if described else "")
        + "."
    )
    return finding, headline


def _hypothesis(hypothesis: str, family: str, title: str) -> Hypothesis:
    return Hypothesis(
        hypothesis, title, rule_of(family), judge_of(hypothesis, family), plan_group=plan_of(hypothesis, family)
    )


H1A = _hypothesis("H1a", "l1", "Subgradient L1 makes networks more prunable than L2 at the same accuracy cost")
H1B = _hypothesis("H1b", "prox_l1", "Proximal L1 makes networks more prunable than L2 at the same accuracy cost")

"""H4: a regularizer at its validation-selected strength beats none on test accuracy.

Per optimizer group, at validation-selected strengths: each family's selected config against none,
Holm-adjusted within the group (the verdict); Friedman's test over every family's selected config
(the baseline included) is reported beside it. The linear reference is no regularizer of the network:
the selected table reports it beside them, outside both tests. The early-stopping baseline is the
baseline read at another epoch: it is ranked, but outside the Holm family (counting it would let
"none beats none" decide H4), and each family is compared with it descriptively.

Details (reports/summary.json) (<g> a group): <g>_friedman_p, <g>_top_ranked, <g>_better_than_none,
<g>_worse_than_none (Holm p < alpha), <g>_best_minus_early_stopping (the headline config).
Headline: the deciding group's best network on validation against none: the first group whose
check fails (it decides a "not shown"), else the first group's.
"""

from __future__ import annotations

import math

from pipelines.analysis import early_stopping, linear
from pipelines.analysis.hypotheses.base import Context, Hypothesis
from pipelines.analysis.plan import Comparison, Findings, Plan, Ranking
from pipelines.analysis.verdicts import NO_HEADLINE, Check, Headline, Judgement, any_of, paired_check
from pipelines.core.results import LINEAR


def rule(context: Context) -> str:
    alpha = f"{context.settings.alpha:g}"
    return (
        f"In each optimizer group, at validation-selected strengths: at least one family beats none on test "
        f"accuracy (Wilcoxon signed-rank, Holm-adjusted within the group, p < {alpha}, difference > 0). "
        "The early-stopping baseline is the baseline read at another epoch, not a regularizer of it: it is "
        "outside the Holm family, and each family is compared with it beside, descriptively. Friedman's test of "
        "equal ranks over every family is reported, not judged: the claim is about beating none, which the Holm "
        "family tests directly."
    )


def plan(context: Context, group: str) -> Plan:
    selected = context.selected
    rows = selected[(selected["optimizer"] == group) & (selected["family"] != LINEAR)]
    chosen = [str(c) for c in rows["config"]]
    regularized = [str(c) for c in rows.loc[~rows["family"].isin(["none", early_stopping.FAMILY]), "config"]]
    stopped = [str(c) for c in rows.loc[rows["family"] == early_stopping.FAMILY, "config"]]
    none = context.grid.baseline(group)
    holm_family = f"{context.grid.dataset}/H4/{group}"
    return Plan(
        comparisons=[Comparison("H4", "selected", "test_acc", c, none, "greater", holm_family) for c in regularized]
        + [Comparison("H4", "selected", "test_acc", c, s) for c in regularized for s in stopped],
        rankings=[Ranking(group, tuple(chosen))],
    )


def judge(context: Context, findings: Findings) -> Judgement:
    alpha = context.settings.alpha
    checks: list[Check] = []
    parts: list[str] = []
    details: dict[str, object] = {}
    headlines: list[tuple[Check, Headline]] = []
    for ranking in findings.rankings:
        group, friedman = ranking.spec.group, ranking.test
        # The group's Holm family: its selected configs against none (descriptive rows are outside it).
        rows = [
            c for c in findings.comparisons if c.spec.holm_family and c.group == group and c.spec.hypothesis == "H4"
        ]
        size = sum(not math.isnan(c.test.wilcoxon_p) for c in rows)
        check = any_of([paired_check(c, c.holm_p, alpha, size) for c in rows], f"{group}: no regularized config")
        checks.append(check)
        better = sum(c.holm_p < alpha and c.test.mean_diff > 0 for c in rows)
        worse = sum(c.holm_p < alpha and c.test.mean_diff < 0 for c in rows)
        top = min(range(len(ranking.families)), key=lambda i: ranking.test.mean_ranks[i])
        pick = _best_on_validation(context, group)
        if pick is not None:
            test = next(c.test for c in rows if c.spec.a == pick)
            headlines.append((check, Headline.of(f"{group}: test accuracy, {pick} (best on validation) − none", test)))
        stopped = [
            c
            for c in findings.comparisons
            if c.spec.hypothesis == "H4" and c.spec.a == pick and c.family_b == early_stopping.FAMILY
        ]
        if stopped:
            t = stopped[0].test
            details[f"{group}_best_minus_early_stopping"] = t.mean_diff
            parts.append(
                f"{group}, descriptively: {pick} − the early-stopping baseline = {100 * t.mean_diff:+.2f} points "
                f"of test accuracy [{100 * t.ci_low:+.2f}, {100 * t.ci_high:+.2f}] over {t.n} seeds"
            )
        details |= {
            f"{group}_friedman_p": friedman.p,
            f"{group}_top_ranked": ranking.families[top],
            f"{group}_better_than_none": better,
            f"{group}_worse_than_none": worse,
        }
        parts.append(
            f"{group}: Friedman p={friedman.p:.2g} over {len(ranking.families)} configs and "
            f"{ranking.n_seeds} seeds, top mean rank {ranking.families[top]} "
            f"({friedman.mean_ranks[top]:.2f}, test accuracy {ranking.test_acc_means[top]:.4f}); "
            f"{better} of {len(rows)} families beat none and {worse} fall below it (Holm p < {alpha:g})"
        )
    level = 100 * (1 - alpha)
    headline = next((h for check, h in headlines if not check.passed), headlines[0][1] if headlines else NO_HEADLINE)
    return Judgement(checks, "; ".join(parts) or "no configs", details, headline.sentence(level), headline)


def _best_on_validation(context: Context, group: str) -> str | None:
    """The regularized network one would pick on validation: the headline's config, chosen without
    looking at test accuracy."""
    selected = context.selected
    regularized = selected[(selected["optimizer"] == group) & (selected["family"] != "none")]
    if regularized[~regularized["family"].isin(linear.NOT_CROWNED)].empty:
        return None
    return str(linear.best_network(regularized)["config"])


H4 = Hypothesis(
    "H4", "A regularizer at its validation-selected strength beats none on test accuracy", rule, judge, plan_group=plan
)

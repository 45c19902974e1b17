"""H4: a regularizer at its validation-selected strength beats none on test accuracy.

Per optimizer group, at validation-selected strengths: each family's selected config against none,
Holm-adjusted within the group (the verdict); Friedman's test over every family's selected config
(the baseline included) is reported beside it.

Details (reports/summary.json) (<g> a group): <g>_friedman_p, <g>_top_ranked, <g>_better_than_none,
<g>_worse_than_none (Holm p < alpha).
"""

from __future__ import annotations

import math

from pipelines.analysis import early_stopping
from pipelines.analysis.hypotheses.base import Context, Hypothesis
from pipelines.analysis.plan import Comparison, Findings, Plan, Ranking
from pipelines.analysis.verdicts import NO_HEADLINE, Check, Headline, Judgement, any_of, paired_check


def rule(context: Context) -> str:
    alpha = f"{context.settings.alpha:g}"
    return (
        f"In each optimizer group, at validation-selected strengths: at least one family beats none on test "
        f"accuracy (Wilcoxon signed-rank, Holm-adjusted within the group, p < {alpha}, difference > 0). "
        "Friedman's test of equal ranks over every family is reported, not judged: the claim is about beating "
        "none, which the Holm family tests directly."
    )


def plan(context: Context, group: str) -> Plan:
    selected = context.selected
    chosen = [str(c) for c in selected.loc[selected["optimizer"] == group, "config"]]
    none = context.grid.baseline(group)
    holm_family = f"{context.grid.dataset}/H4/{group}"
    return Plan(
        comparisons=[
            Comparison("H4", "selected", "test_acc", config, none, "greater", holm_family)
            for config in chosen
            if config != none
        ],
        rankings=[Ranking(group, tuple(chosen))],
    )


def judge(context: Context, findings: Findings) -> Judgement:
    alpha = context.settings.alpha
    checks: list[Check] = []
    parts: list[str] = []
    details: dict[str, object] = {}
    headline = NO_HEADLINE
    for ranking in findings.rankings:
        group, friedman = ranking.spec.group, ranking.test
        # The group's Holm family: its selected configs against none (descriptive rows are outside it).
        rows = [
            c for c in findings.comparisons if c.spec.holm_family and c.group == group and c.spec.hypothesis == "H4"
        ]
        size = sum(not math.isnan(c.test.wilcoxon_p) for c in rows)
        checks.append(any_of([paired_check(c, c.holm_p, alpha, size) for c in rows], f"{group}: no regularized config"))
        better = sum(c.holm_p < alpha and c.test.mean_diff > 0 for c in rows)
        worse = sum(c.holm_p < alpha and c.test.mean_diff < 0 for c in rows)
        top = min(range(len(ranking.families)), key=lambda i: ranking.test.mean_ranks[i])
        pick = _best_on_validation(context, group)
        if not headline.n and pick is not None:  # the first group's
            test = next(c.test for c in rows if c.spec.a == pick)
            headline = Headline.of(f"{group}: test accuracy, {pick} (best on validation) − none", test)
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
    return Judgement(checks, "; ".join(parts) or "no configs", details, headline.sentence(level), headline)


def _best_on_validation(context: Context, group: str) -> str | None:
    """The trained family one would pick on validation: the headline's config, chosen without
    looking at test accuracy (the early-stopping baseline's validation accuracy is a maximum over
    epochs, so it is not a fair contender here)."""
    selected = context.selected
    trained = selected[(selected["optimizer"] == group) & ~selected["family"].isin(["none", early_stopping.FAMILY])]
    if trained.empty:
        return None
    return str(trained.sort_values(["val_acc_mean", "strength"], ascending=[False, True]).iloc[0]["config"])


H4 = Hypothesis(
    "H4", "A regularizer at its validation-selected strength beats none on test accuracy", rule, judge, plan_group=plan
)

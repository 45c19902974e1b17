"""H4: a regularizer at its validation-selected strength beats none on test accuracy.

Per optimizer group, at validation-selected strengths: each family's selected config against none,
Holm-adjusted within the group (the verdict); Friedman's test over every family's selected config
(the baseline included) is reported beside it. The linear reference is no regularizer of the network:
the selected table reports it beside them, outside both tests.

Headline numbers (<g> a group): <g>_friedman_p, <g>_top_ranked, <g>_better_than_none,
<g>_worse_than_none (Holm p < alpha).
"""

from __future__ import annotations

import math

from pipelines.analysis.hypotheses.base import Context, Hypothesis
from pipelines.analysis.plan import Comparison, Findings, Plan, Ranking
from pipelines.analysis.verdicts import Check, Judgement, any_of, paired_check
from pipelines.core.params import AnalyzeParams
from pipelines.core.results import LINEAR


def rule(analysis_params: AnalyzeParams) -> str:
    alpha = f"{analysis_params.alpha:g}"
    return (
        f"In each optimizer group, at validation-selected strengths: at least one family beats none on test "
        f"accuracy (Wilcoxon signed-rank, Holm-adjusted within the group, p < {alpha}, difference > 0). "
        "Friedman's test of equal ranks over every family is reported, not judged: the claim is about beating "
        "none, which the Holm family tests directly."
    )


def plan(context: Context, group: str) -> Plan:
    selected = context.selected
    chosen = [str(c) for c in selected.loc[(selected["optimizer"] == group) & (selected["family"] != LINEAR), "config"]]
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
    headline: dict[str, object] = {}
    for ranking in findings.rankings:
        group, friedman = ranking.spec.group, ranking.test
        rows = [c for c in findings.comparisons if c.spec.hypothesis == "H4" and c.group == group]
        size = sum(not math.isnan(c.test.wilcoxon_p) for c in rows)
        checks.append(any_of([paired_check(c, c.holm_p, alpha, size) for c in rows], f"{group}: no regularized config"))
        better = sum(c.holm_p < alpha and c.test.mean_diff > 0 for c in rows)
        worse = sum(c.holm_p < alpha and c.test.mean_diff < 0 for c in rows)
        top = min(range(len(ranking.families)), key=lambda i: ranking.test.mean_ranks[i])
        headline |= {
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
    return Judgement(checks, "; ".join(parts) or "no configs", headline)


H4 = Hypothesis(
    "H4", "A regularizer at its validation-selected strength beats none on test accuracy", rule, judge, plan_group=plan
)

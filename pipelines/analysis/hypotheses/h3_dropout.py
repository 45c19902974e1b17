"""H3: dropout narrows the generalization gap.

Per optimizer group: Page's trends of gap_acc and gap_loss along none and the dropout configs
with one p in every layer, and the validation-selected dropout config against none.

Details (reports/summary.json) (<g> a group, <gap> gap_acc or gap_loss): <g>_<gap>_page_p,
<g>_<gap>_none, <g>_<gap>_strongest, <g>_selected_p, <g>_test_acc_diff and <g>_test_acc_p (Wilcoxon)
(the selected p against none).
"""

from __future__ import annotations

from pipelines.analysis.hypotheses.base import Context, Hypothesis, page_rule
from pipelines.analysis.plan import Comparison, Findings, Plan, Trend, TrendResult
from pipelines.analysis.selection import config_of
from pipelines.analysis.verdicts import NO_HEADLINE, Check, Headline, Judgement, trend_check

GAPS = ("gap_acc", "gap_loss")


def rule(context: Context) -> str:
    return (
        f"For dropout in each optimizer group: gap_acc and gap_loss fall as p rises ({page_rule(context.settings)} "
        "p = 0; configs with one p in every layer)."
    )


def plan(context: Context, group: str) -> Plan:
    dropout = context.grid.family(group, "dropout")
    chosen = config_of(context.selected, group, "dropout")
    if dropout.empty or chosen is None:
        return Plan()
    none = context.grid.baseline(group)
    # The ladder of p: only configs with the same p in every layer have a single place on it.
    ladder = (none, *dropout.index[dropout["dropout_layers"].map(_uniform)])
    return Plan(
        comparisons=[
            Comparison("H3", "selected", "test_acc", chosen, none),
            Comparison("H3", "selected", "gap_acc", chosen, none),
            Comparison("H3", "selected", "gap_loss", chosen, none),
        ],
        trends=[Trend("H3", "dropout", ladder, metric) for metric in GAPS],
    )


def _uniform(dropout_layers: object) -> bool:
    return len(set(str(dropout_layers).split(";"))) == 1


def judge(context: Context, findings: Findings) -> Judgement:
    checks: list[Check] = []
    parts: list[str] = []
    details: dict[str, object] = {}
    headline = NO_HEADLINE
    by_group: dict[str, list[TrendResult]] = {}
    for t in findings.trends:
        if t.spec.hypothesis == "H3":
            by_group.setdefault(t.group, []).append(t)
    for group, trends in by_group.items():
        gaps = []
        for t in trends:
            metric = t.spec.metric
            checks.append(trend_check(t, context.settings.alpha, monotone=False))
            details |= {
                f"{group}_{metric}_page_p": t.test.p,
                f"{group}_{metric}_none": t.means[0],
                f"{group}_{metric}_strongest": t.means[-1],
            }
            gaps.append(f"{metric} {t.means[0]:.4g} → {t.means[-1]:.4g} (Page p={t.test.p:.2g})")
        accuracy = next(
            c
            for c in findings.comparisons
            if c.spec.hypothesis == "H3" and c.spec.metric == "test_acc" and c.group == group
        )
        chosen = accuracy.spec.a
        details |= {
            f"{group}_selected_p": context.grid.configs.at[chosen, "strength"],
            f"{group}_test_acc_diff": accuracy.test.mean_diff,
            f"{group}_test_acc_p": accuracy.test.wilcoxon_p,
        }
        parts.append(
            f"{group}: over p = {trends[0].levels_text}, "
            + ", ".join(gaps)
            + f"; at the selected {chosen} test accuracy is {100 * accuracy.test.mean_diff:+.2f} points "
            f"vs none (Wilcoxon p={accuracy.test.wilcoxon_p:.2g}, descriptive)"
        )
        if not headline.n:  # the first group's
            gap = findings.comparison("H3", "gap_acc", chosen, context.grid.baseline(group)).test
            headline = Headline.of(f"{group}: train − test accuracy gap, {chosen} − none", gap)
    level = 100 * (1 - context.settings.alpha)
    return Judgement(checks, "; ".join(parts) or "no dropout configs", details, headline.sentence(level), headline)


H3 = Hypothesis("H3", "Dropout narrows the generalization gap", rule, judge, plan_group=plan)

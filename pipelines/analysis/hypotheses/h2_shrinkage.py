"""H2: L2 shrinks weights smoothly, without exact zeros.

Per optimizer group: Page's trend of weight_l2 along none and the l2 strengths, each strength
against none, and a count of l2 members with exact zeros.

Headline numbers (<g> a group): <g>_page_p, <g>_bh_p, <g>_monotone, <g>_weight_l2_none,
<g>_weight_l2_strongest, l2_members_with_exact_zeros.
"""

from __future__ import annotations

from pipelines.analysis.hypotheses.base import Context, Hypothesis, page_rule
from pipelines.analysis.plan import Comparison, Findings, Plan, Trend
from pipelines.analysis.verdicts import Check, Judgement, trend_check
from pipelines.core.params import AnalyzeParams


def rule(analysis_params: AnalyzeParams) -> str:
    return (
        f"For l2 in each optimizer group: weight_l2 falls as the strength rises ({page_rule(analysis_params)} "
        "strength 0) with monotone level means, and no l2 member has exact zeros."
    )


def plan(context: Context, group: str) -> Plan:
    l2 = context.grid.family(group, "l2")
    if l2.empty:
        return Plan()
    none = context.grid.baseline(group)
    return Plan(
        comparisons=[Comparison("H2", "per_strength", "weight_l2", c, none, "less") for c in l2.index],
        trends=[Trend("H2", "l2", (none, *l2.index), "weight_l2")],
    )


def judge(context: Context, findings: Findings) -> Judgement:
    checks: list[Check] = []
    parts: list[str] = []
    headline: dict[str, object] = {}
    trends = [t for t in findings.trends if t.spec.hypothesis == "H2"]
    for t in trends:
        group = t.group
        checks.append(trend_check(t, context.settings.alpha, monotone=True))
        headline |= {
            f"{group}_page_p": t.test.p,
            f"{group}_bh_p": t.bh_p,
            f"{group}_monotone": t.monotone,
            f"{group}_weight_l2_none": t.means[0],
            f"{group}_weight_l2_strongest": t.means[-1],
        }
        parts.append(
            f"{group}: weight_l2 {t.means[0]:.4g} → {t.means[-1]:.4g} over l2 strengths "
            f"{t.levels_text} (Page L={t.test.statistic:.0f}, BH p={t.bh_p:.2g}, "
            f"{'monotone' if t.monotone else 'not monotone'})"
        )
    if trends:
        grid = context.grid
        zeros = [grid.values(c, "exact_zeros") for g in grid.groups() for c in grid.family(g, "l2").index]
        with_zeros = int(sum((z > 0).sum() for z in zeros))
        checks.append((with_zeros == 0, ""))
        headline["l2_members_with_exact_zeros"] = with_zeros
        parts.append(f"{with_zeros} of {sum(len(z) for z in zeros)} l2 members have exact zeros")
    return Judgement(checks, "; ".join(parts) or "no l2 configs", headline)


H2 = Hypothesis("H2", "L2 shrinks weights smoothly, without exact zeros", rule, judge, plan_group=plan)

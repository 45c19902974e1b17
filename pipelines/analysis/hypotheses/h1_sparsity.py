"""H1: L1 makes networks sparse.

Per optimizer group, the L1-type families (l1, prox_l1) against none and against l2: per strength,
at equal strength and at matched validation accuracy (pipelines/analysis/selection.py). Judged at
matched accuracy on the largest sparsity threshold and Hoyer's measure.

Headline numbers (<g> a group, <f> l1 or prox_l1): threshold (the largest); at matched val_acc
<g>_<f>_frac_below, <g>_<f>_hoyer, <g>_<f>_bh_p_vs_none, <g>_<f>_bh_p_vs_l2, <g>_<f>_test_acc_diff
(vs none), <g>_none_frac_below, <g>_none_hoyer, <g>_l2_frac_below, <g>_l2_hoyer.
"""

from __future__ import annotations

from pipelines.analysis.hypotheses.base import Context, Hypothesis, wilcoxon_rule
from pipelines.analysis.plan import Comparison, Findings, Plan
from pipelines.analysis.selection import L1_FAMILIES, config_of, matching_rule
from pipelines.analysis.verdicts import Check, Judgement, paired_check
from pipelines.core import results
from pipelines.core.params import AnalyzeParams


def rule(analysis_params: AnalyzeParams) -> str:
    return (
        f"For each L1-type family (l1, prox_l1) per optimizer group, at matched validation accuracy "
        f"({matching_rule(analysis_params.match_tolerance)}): more weights below the largest threshold and a higher "
        f"Hoyer sparsity than none and than the matched l2 config ({wilcoxon_rule(analysis_params)}, difference > 0)."
    )


def plan(context: Context, group: str) -> Plan:
    grid, tests = context.grid, Plan()
    sparsity = [*grid.sparsity, "exact_zeros", "hoyer"]
    none = grid.baseline(group)
    l2 = grid.family(group, "l2")
    l2_at = dict(zip(l2["strength"], l2.index))
    matched_l2 = config_of(context.matched, group, "l2")
    for family in L1_FAMILIES:
        chosen = config_of(context.matched, group, family)
        if chosen is not None and matched_l2 is not None:
            tests.comparisons += [Comparison("H1", "matched", m, chosen, matched_l2, "greater") for m in sparsity]
            tests.comparisons.append(Comparison("H1", "matched", "test_acc", chosen, matched_l2))
        for config, strength in grid.family(group, family)["strength"].items():
            tests.comparisons += [Comparison("H1", "per_strength", m, config, none, "greater") for m in sparsity]
            tests.comparisons.append(Comparison("H1", "per_strength", "test_acc", config, none))
            if strength in l2_at:
                tests.comparisons += [
                    Comparison("H1", "equal_strength", m, config, l2_at[strength], "greater") for m in sparsity
                ]
    return tests


def judge(context: Context, findings: Findings) -> Judgement:
    alpha, near = context.settings.alpha, context.grid.sparsity[-1]
    threshold = results.threshold_of(near)
    checks: list[Check] = []
    parts: list[str] = []
    headline: dict[str, object] = {"threshold": threshold}
    matched = context.matched
    for _, m in matched[matched["family"].isin(L1_FAMILIES)].iterrows():
        group, none, config = m["optimizer"], context.grid.baseline(m["optimizer"]), m["config"]
        l2 = config_of(matched, group, "l2")
        rivals = [none] if l2 is None else [none, l2]
        frac = [findings.comparison("H1", near, config, b) for b in rivals]
        hoyer = [findings.comparison("H1", "hoyer", config, b) for b in rivals]
        checks += [paired_check(result, result.bh_p, alpha) for result in frac + hoyer]
        cost = findings.comparison("H1", "test_acc", config, none)
        key = f"{group}_{m['family']}"
        headline |= {
            f"{key}_frac_below": frac[0].test.mean_a,
            f"{key}_hoyer": hoyer[0].test.mean_a,
            f"{key}_bh_p_vs_none": frac[0].bh_p,
            f"{key}_test_acc_diff": cost.test.mean_diff,
            f"{group}_none_frac_below": frac[0].test.mean_b,
            f"{group}_none_hoyer": hoyer[0].test.mean_b,
        }
        if l2 is not None:
            headline |= {
                f"{key}_bh_p_vs_l2": frac[1].bh_p,
                f"{group}_l2_frac_below": frac[1].test.mean_b,
                f"{group}_l2_hoyer": hoyer[1].test.mean_b,
            }
        rival_fracs = " and ".join(f"{r.test.mean_b:.3f} for {r.spec.b} (BH p={r.bh_p:.2g})" for r in frac)
        rival_hoyers = " and ".join(f"{r.test.mean_b:.2f}" for r in hoyer)
        parts.append(
            f"{config} has {frac[0].test.mean_a:.3f} of weights below {threshold:g} vs {rival_fracs}, "
            f"Hoyer {hoyer[0].test.mean_a:.2f} vs {rival_hoyers}, test accuracy "
            f"{100 * cost.test.mean_diff:+.2f} points vs none"
        )
    return Judgement(checks, "; ".join(parts) or "no l1 or prox_l1 configs", headline)


H1 = Hypothesis("H1", "L1 makes networks sparse", rule, judge, plan_group=plan)

"""H5: an L2 penalty equals coupled weight decay under SGD, but not decoupled decay (AdamW) under Adam.

Per optimizer group: l2 against weight_decay at every strength both have (TOST on test accuracy
and on the relative weight_l2), and the validation-selected l2 against adamw where both exist.

Headline numbers (<g> a group): <g>_equal_strength_pairs, <g>_equivalent_pairs,
<g>_max_abs_test_acc_diff, <g>_max_tost_p, <g>_l2_vs_adamw_test_acc_diff, <g>_l2_vs_adamw_bh_p.
"""

from __future__ import annotations

from pipelines.analysis.hypotheses.base import Context, Hypothesis, tost_rule, wilcoxon_rule
from pipelines.analysis.plan import Comparison, Equivalence, EquivalenceResult, Findings, Plan
from pipelines.analysis.selection import config_of
from pipelines.analysis.verdicts import Check, Judgement, equivalence_check, largest, paired_check, undecided
from pipelines.core.params import AnalyzeParams


def rule(analysis_params: AnalyzeParams) -> str:
    return (
        f"Under sgd, l2 and weight_decay are equivalent on test accuracy at every strength both have "
        f"({tost_rule(analysis_params)}); under adam, l2 and adamw at their validation-selected strengths differ on "
        f"test accuracy ({wilcoxon_rule(analysis_params)})."
    )


def plan(context: Context, group: str) -> Plan:
    tests = Plan()
    decay = context.grid.family(group, "weight_decay")
    decay_at = dict(zip(decay["strength"], decay.index))
    for config, strength in context.grid.family(group, "l2")["strength"].items():
        if strength not in decay_at:
            continue
        tests.comparisons += [
            Comparison("H5", "equal_strength", m, config, decay_at[strength]) for m in ("test_acc", "weight_l2")
        ]
        tests.equivalences += [
            Equivalence("H5", config, decay_at[strength], "test_acc"),
            Equivalence("H5", config, decay_at[strength], "weight_l2", relative=True),
        ]
    coupled, decoupled = config_of(context.selected, group, "l2"), config_of(context.selected, group, "adamw")
    if coupled is not None and decoupled is not None:
        tests.comparisons += [
            Comparison("H5", "selected", "test_acc", coupled, decoupled, "different"),
            Comparison("H5", "selected", "weight_l2", coupled, decoupled),
        ]
    return tests


def judge(context: Context, findings: Findings) -> Judgement:
    checks: list[Check] = []
    parts: list[str] = []
    headline: dict[str, object] = {}
    equal: dict[str, list[EquivalenceResult]] = {}
    for e in findings.equivalences:
        if e.spec.hypothesis == "H5" and e.spec.metric == "test_acc" and not e.spec.relative:
            equal.setdefault(e.group, []).append(e)
    for group, pairs in equal.items():
        if group == "sgd":
            checks += [equivalence_check(e, context.settings.alpha) for e in pairs]
        equivalent = sum(e.equivalent for e in pairs)
        widest, least = largest(abs(e.mean_diff) for e in pairs), largest(e.tost_p for e in pairs)
        headline |= {
            f"{group}_equal_strength_pairs": len(pairs),
            f"{group}_equivalent_pairs": equivalent,
            f"{group}_max_abs_test_acc_diff": widest,
            f"{group}_max_tost_p": least,
        }
        parts.append(
            f"under {group}, {equivalent} of {len(pairs)} l2/weight_decay pairs at equal strength are "
            f"equivalent on test accuracy (largest |diff| {100 * widest:.2f} points, largest TOST p "
            f"{least:.2g})"
        )
    if "sgd" not in equal:
        checks.append(undecided("no sgd l2 and weight_decay configs at equal strength"))
    decoupled = [
        c
        for c in findings.comparisons
        if c.spec.hypothesis == "H5" and c.spec.scope == "selected" and c.spec.metric == "test_acc"
    ]
    for c in decoupled:
        checks.append(paired_check(c, c.bh_p, context.settings.alpha))
        headline |= {f"{c.group}_l2_vs_adamw_test_acc_diff": c.test.mean_diff, f"{c.group}_l2_vs_adamw_bh_p": c.bh_p}
        parts.append(
            f"under {c.group}, {c.spec.a} − {c.spec.b} = {100 * c.test.mean_diff:+.2f} points test accuracy "
            f"(BH p={c.bh_p:.2g})"
        )
    if not decoupled:
        checks.append(undecided("no l2 and adamw configs under adam"))
    return Judgement(checks, "; ".join(parts) or "no configs", headline)


H5 = Hypothesis(
    "H5",
    "An L2 penalty equals coupled weight decay under SGD, but not decoupled decay (AdamW) under Adam",
    rule,
    judge,
    plan_group=plan,
)

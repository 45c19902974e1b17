"""H6: penalizing biases leaves test accuracy unchanged.

Every penalize_bias config (name ending "/bias") against its partner, the same name without
"/bias": TOST on test accuracy, with test accuracy and weight_l2 compared beside it. Only pairs
whose partner still works (validation accuracy within the largest accuracy cost of its baseline's)
are tested: two networks a strength has broken to the majority class agree exactly, which would
compare a thing with itself; they are counted as broken.

Details (reports/summary.json): pairs, equivalent_pairs, max_abs_test_acc_diff, unpaired, broken.
"""

from __future__ import annotations

from pipelines.analysis.hypotheses.base import Context, Hypothesis, accuracy_floor, tost_rule
from pipelines.analysis.plan import Comparison, Equivalence, Findings, Plan
from pipelines.analysis.verdicts import NO_HEADLINE, Check, Headline, Judgement, equivalence_check, largest, undecided


def rule(context: Context) -> str:
    tost = tost_rule(context.settings, context.margins.test_acc.value)
    return (
        f"Every penalize_bias config whose partner still works (validation accuracy within "
        f"{100 * max(context.settings.accuracy_costs):g} points of the baseline's) is equivalent to its partner "
        f"on test accuracy ({tost})."
    )


def _pairs(context: Context) -> tuple[list[tuple[str, str]], int]:
    """The (penalize_bias config, partner) pairs to test, and how many pairs are broken."""
    facts, pairs, broken = context.grid.configs, [], 0
    for config in facts.index[facts["penalize_bias"] & (facts["n_seeds"] > 0)]:
        partner = config.removesuffix("/bias")
        if partner == config or partner not in facts.index or facts.at[partner, "penalize_bias"]:
            continue  # counted as unpaired in the evidence
        if facts.at[partner, "val_acc_mean"] < accuracy_floor(context, str(facts.at[partner, "group"])):
            broken += 1
            continue
        pairs.append((str(config), partner))
    return pairs, broken


def plan(context: Context) -> Plan:
    tests = Plan()
    for config, partner in _pairs(context)[0]:
        tests.comparisons += [Comparison("H6", "ablation", m, config, partner) for m in ("test_acc", "weight_l2")]
        tests.equivalences.append(Equivalence("H6", config, partner, "test_acc", margin=context.margins.test_acc.value))
    return tests


def judge(context: Context, findings: Findings) -> Judgement:
    pairs = [e for e in findings.equivalences if e.spec.hypothesis == "H6"]
    checks: list[Check] = [equivalence_check(e, context.settings.alpha) for e in pairs] or [
        undecided("no penalize_bias config with a working partner")
    ]
    broken = _pairs(context)[1]
    unpaired = int(context.grid.configs["penalize_bias"].sum()) - len(pairs) - broken
    equivalent = sum(e.equivalent for e in pairs)
    widest = largest(abs(e.mean_diff) for e in pairs)
    headline = NO_HEADLINE
    if pairs:  # the pair furthest from equivalence
        far = max(pairs, key=lambda e: abs(e.mean_diff) if e.n else -1.0)
        test = findings.comparison("H6", "test_acc", far.spec.a, far.spec.b).test
        # TOST at alpha is the (1 − 2·alpha) interval inside the margin: the headline's (1 − alpha)
        # interval may cross the margin of an equivalent pair, so the margin and p stand beside it.
        headline = Headline.of(
            f"{far.group}: test accuracy, {far.spec.a} − {far.spec.b} "
            f"(equivalence margin ±{far.margin:g}, TOST p={far.tost_p:.2g})",
            test,
        )
    evidence = (
        f"{equivalent} of {len(pairs)} penalize_bias configs are equivalent to their partner on test "
        f"accuracy (largest |diff| {100 * widest:.2f} points)"
    )
    if broken:
        evidence += f"; {broken} not tested: the partner is broken (beyond the accuracy cost)"
    if unpaired:
        evidence += f"; {unpaired} without a partner or without an ok member"
    return Judgement(
        checks,
        evidence,
        {
            "pairs": len(pairs),
            "equivalent_pairs": equivalent,
            "max_abs_test_acc_diff": widest,
            "unpaired": unpaired,
            "broken": broken,
        },
        headline.sentence(100 * (1 - context.settings.alpha)),
        headline,
    )


H6 = Hypothesis("H6", "Penalizing biases leaves test accuracy unchanged", rule, judge, plan_dataset=plan)

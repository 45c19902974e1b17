"""H5: under Adam, an L2 penalty and decoupled weight decay (AdamW) regularize differently, as
Loshchilov & Hutter state it: the penalty shrinks weights with large historical gradients less,
and decoupled decay's good setting is the decay per step, lr·λ, whatever the learning rate.

Two checks, both under adam, both paired by seed:
  mechanism  per seed, the per-weight slope of log(|w| / |w_none|) on log √v̂ for the
             validation-selected l2 and adamw configs (pipelines/analysis/mechanism.py); predicted
             slope(l2) − slope(adamw) > 0 (Wilcoxon signed-rank, p < alpha): under l2 a weight with
             a small √v̂ is shrunk more (its y is more negative), so y rises with log √v̂.
  map        per seed, the slope of log(best λ) on log(lr) over the map (pipelines/analysis/maps.py);
             decoupled decay predicts −1 in PyTorch's units (lr·λ fixed); the check is that it is
             below 0 (Wilcoxon against 0, p < alpha), the interval says how close to −1.
Described, not judged: the l2 map slope and its difference from adamw's; under sgd the same map
slopes (sgd+l2 against sgdw) and sgdw against l2 at equal strength with momentum (test accuracy
and weight_l2). Not a hypothesis: under sgd, l2 and coupled weight_decay are one gradient term in
the trainer (checked by tests/test_trainer.py::test_sgd_l2_penalty_equals_sgd_weight_decay).

Headline: sgd_identity_test (where the SGD identity is checked), mechanism_slope_diff (+ _ci_low,
_ci_high, _n, _p), mechanism_slope_l2, mechanism_slope_adamw, mechanism_excluded, dead_units_l2,
dead_units_adamw; per group <g> with a map: <g>_<family>_lr_slope (+ _ci_low, _ci_high, _n),
<g>_lr_slope_diff (decoupled − l2); per sgdw strength λ: sgd_sgdw_minus_l2_test_acc_at_λ and
sgd_sgdw_minus_l2_weight_l2_at_λ.
"""

from __future__ import annotations

import math

import numpy as np

from pipelines.analysis import inference, maps
from pipelines.analysis.hypotheses.base import Context, Hypothesis
from pipelines.analysis.plan import Comparison, Findings, Plan
from pipelines.analysis.verdicts import NO_HEADLINE, Check, Headline, Judgement, test_check, undecided

SGD_IDENTITY_TEST = "tests/test_trainer.py::test_sgd_l2_penalty_equals_sgd_weight_decay"


def rule(context: Context) -> str:
    return (
        "Under adam, paired by seed: the per-weight slope of log(|w|/|w_none|) on log √v̂ is higher for l2 than "
        "for adamw at their validation-selected strengths (two-sided Wilcoxon signed-rank, "
        f"p < {context.settings.alpha:g}, in that direction), and adamw's slope of log(best λ) on log(lr) over "
        "the learning-rate map is below 0 "
        f"(Wilcoxon against 0, p < {context.settings.alpha:g}; decoupling predicts −1 in PyTorch's units, where the "
        "decay per step is lr·λ)."
    )


def plan(context: Context, group: str) -> Plan:
    """Described: sgdw against sgd+l2 at every strength both have, with momentum."""
    tests = Plan()
    if group != "sgd":
        return tests
    decoupled = dict(zip(context.grid.family(group, "sgdw")["strength"], context.grid.family(group, "sgdw").index))
    for config, strength in context.grid.family(group, "l2")["strength"].items():
        if strength in decoupled:
            tests.comparisons += [
                Comparison("H5", "equal_strength", m, decoupled[strength], config) for m in ("test_acc", "weight_l2")
            ]
    return tests


def judge(context: Context, findings: Findings) -> Judgement:
    settings = context.settings
    checks: list[Check] = []
    parts: list[str] = []
    details: dict[str, object] = {"sgd_identity_test": SGD_IDENTITY_TEST}
    headline = NO_HEADLINE

    mechanism = context.mechanism
    by_family = mechanism.pivot(index="seed", columns="family", values="slope") if len(mechanism) else None
    if by_family is None or not {"l2", "adamw"} <= set(by_family.columns):
        checks.append(undecided("no selected l2 and adamw configs under adam with their weights and v̂"))
    else:
        both = by_family[["l2", "adamw"]].dropna()
        test = inference.paired_comparison(both["l2"].to_numpy(), both["adamw"].to_numpy(), alpha=settings.alpha)
        checks.append(test_check(test, test.wilcoxon_p, settings.alpha, "greater"))
        headline = Headline.of("adam: per-weight slope of log(|w|/|w_none|) on log √v̂, l2 − adamw", test)
        dead = mechanism.groupby("family")["dead_units"].mean()
        excluded = int(mechanism["excluded"].sum())
        details |= {
            "mechanism_slope_diff": test.mean_diff,
            "mechanism_slope_diff_ci_low": test.ci_low,
            "mechanism_slope_diff_ci_high": test.ci_high,
            "mechanism_slope_diff_n": test.n,
            "mechanism_slope_diff_p": test.wilcoxon_p,
            "mechanism_slope_l2": test.mean_a,
            "mechanism_slope_adamw": test.mean_b,
            "mechanism_excluded": excluded,
            "dead_units_l2": float(dead.get("l2", math.nan)),
            "dead_units_adamw": float(dead.get("adamw", math.nan)),
        }
        parts.append(
            f"under adam, the per-weight slope of log(|w|/|w_none|) on log √v̂ is {test.mean_a:+.3f} for l2 and "
            f"{test.mean_b:+.3f} for adamw: l2 − adamw = {test.mean_diff:+.3f} "
            f"[{test.ci_low:+.3f}, {test.ci_high:+.3f}] over {test.n} seeds (Wilcoxon p={test.wilcoxon_p:.2g}); "
            f"{excluded} weights zero or denormal (below float32's smallest normal) left out; dead units per member "
            f"{details['dead_units_l2']:.1f} (l2) and {details['dead_units_adamw']:.1f} (adamw)"
        )

    slopes = maps.seed_slopes(context.lr_best) if len(context.lr_best) else None
    for group, (coupled, decoupled) in maps.METHODS.items():
        if slopes is None or group not in set(slopes["optimizer"]):
            if group == "adam":
                checks.append(undecided("no learning-rate map under adam"))
            continue
        described = []
        for family in (coupled, decoupled):
            values = slopes[(slopes["optimizer"] == group) & (slopes["family"] == family)]["slope"].dropna()
            interval = inference.t_interval(values.to_numpy(), level=1 - settings.alpha)
            key = f"{group}_{family}_lr_slope"
            mean = float(values.mean()) if len(values) else math.nan
            details |= {
                key: mean,
                f"{key}_ci_low": interval.low,
                f"{key}_ci_high": interval.high,
                f"{key}_n": len(values),
            }
            described.append(f"{family} {mean:+.2f} [{interval.low:+.2f}, {interval.high:+.2f}]")
            if group == "adam" and family == decoupled:
                zero = inference.paired_comparison(values.to_numpy(), np.zeros(len(values)), alpha=settings.alpha)
                checks.append(test_check(zero, zero.wilcoxon_p, settings.alpha, "less"))
        a, b = maps.paired_slopes(slopes, group)
        difference = inference.paired_comparison(b, a, alpha=settings.alpha)
        details[f"{group}_lr_slope_diff"] = difference.mean_diff
        edges = int(context.lr_best[context.lr_best["optimizer"] == group]["at_edge"].sum())
        parts.append(
            f"under {group}, the slope of log(best λ) on log(lr) (PyTorch units; −1 = lr·λ fixed) is "
            f"{', '.join(described)} over {difference.n} seeds, {decoupled} − {coupled} = {difference.mean_diff:+.2f} "
            f"[{difference.ci_low:+.2f}, {difference.ci_high:+.2f}]; {edges} best strengths at the map's edge"
        )

    equal = [c for c in findings.comparisons if c.spec.hypothesis == "H5" and c.spec.scope == "equal_strength"]
    weights = {c.spec.b: c.test for c in equal if c.spec.metric == "weight_l2"}
    for c in (c for c in equal if c.spec.metric == "test_acc"):
        strength = float(context.grid.configs.at[c.spec.b, "strength"])
        w = weights[c.spec.b]
        details |= {
            f"sgd_sgdw_minus_l2_test_acc_at_{strength:g}": c.test.mean_diff,
            f"sgd_sgdw_minus_l2_weight_l2_at_{strength:g}": w.mean_diff,
        }
        parts.append(
            f"under sgd with momentum at λ={strength:g}, sgdw − l2 = {100 * c.test.mean_diff:+.2f} points test "
            f"accuracy [{100 * c.test.ci_low:+.2f}, {100 * c.test.ci_high:+.2f}] and {w.mean_diff:+.3g} weight_l2 "
            f"[{w.ci_low:+.3g}, {w.ci_high:+.3g}] over {c.test.n} seeds"
        )
    parts.append(f"sgd l2 = coupled weight_decay is an identity of the trainer, checked by {SGD_IDENTITY_TEST}")
    return Judgement(checks, "; ".join(parts), details, _finding(details, settings.alpha), headline)


def _finding(details: dict[str, object], alpha: float) -> str:
    """The citable sentence: the mechanism's effect, its interval and replicates, and what it means
    only where it is shown; then the SGD identity, a checked fact of the trainer and not part of the
    hypothesis."""
    identity = (
        "Under SGD an L2 penalty and coupled weight_decay are one gradient term in this trainer, an identity "
        f"checked by {SGD_IDENTITY_TEST}, so H5 does not test it."
    )
    if "mechanism_slope_diff" not in details:
        return identity
    diff, p = float(details["mechanism_slope_diff"]), float(details["mechanism_slope_diff_p"])  # type: ignore[arg-type]
    shown = diff > 0 and p < alpha
    meaning = ": weights with small historical gradients shrink more under the penalty than under decoupled decay"
    return (
        "Under Adam, the per-weight slope of log(|w|/|w_none|) on log √v̂ with the L2 penalty minus that with "
        f"AdamW is {details['mechanism_slope_diff']:+.3g} (interval {details['mechanism_slope_diff_ci_low']:+.3g} "
        f"to {details['mechanism_slope_diff_ci_high']:+.3g}, {details['mechanism_slope_diff_n']} seeds)"
        + (meaning if shown else ", which does not show the predicted difference")
        + f". {identity}"
    )


H5 = Hypothesis(
    "H5",
    "Under Adam an L2 penalty shrinks weights with large gradients less than decoupled decay, "
    "whose best λ follows 1/lr",
    rule,
    judge,
    plan_group=plan,
)

"""The linear references beside the networks: is a hidden layer needed at all?

A linear reference is the network with no hidden layer (softmax regression on Fashion-MNIST,
logistic regression on Pima), trained unregularized by the same trainer under each optimizer group
at its learning rate, over the grid's seeds (train.<dataset>.linear_reference; family and grid
"linear", results.LINEAR). It shares the networks' seeds and mini-batches, so it is paired by seed.

It enters the grid as one config per group and the selected table beside the networks, but it is no
arm of the hypotheses: H4 asks whether a regularizer of the network beats none, and a model without
a hidden layer is another model, not a regularizer. What it answers is reported, not judged: per
group, its test accuracy against the group's best network (best_network), paired by seed.

reports/summary.json, per dataset: linear: {<group>: {test_acc, best_network, best_network_test_acc,
minus_best_network, ci_low, ci_high, wilcoxon_p, n_seeds, reading}}, accuracies and differences as
fractions, reading one of READINGS (Wilcoxon p < alpha decides, as for a check); empty when no
reference was trained.
"""

from __future__ import annotations

import pandas as pd

from pipelines.analysis import early_stopping, inference
from pipelines.analysis.grid import Grid
from pipelines.core.params import AnalyzeParams
from pipelines.core.results import LINEAR

# Selected rows that are not a network trained to its last epoch: read at another epoch (early
# stopping, whose validation accuracy is a maximum over epochs) or another model (linear).
NOT_CROWNED = (early_stopping.FAMILY, LINEAR)
READINGS = (
    "the network is better",
    "the model without a hidden layer is better",
    "no difference shown",
    "too few seeds to tell",
)


def best_network(selected: pd.DataFrame) -> pd.Series:
    """The selected row with the highest mean validation accuracy (ties to the smaller strength)
    among the networks trained to their last epoch: the configuration one would pick."""
    networks = selected[~selected["family"].isin(NOT_CROWNED)]
    return networks.sort_values(["val_acc_mean", "strength"], ascending=[False, True]).iloc[0]


def versus_networks(grid: Grid, selected: pd.DataFrame, analysis_params: AnalyzeParams) -> dict[str, dict]:
    """Per group with a linear reference: it against the group's best network on test accuracy."""
    out: dict[str, dict] = {}
    for group in grid.groups():
        rows = selected[selected["optimizer"] == group]
        reference = rows[rows["family"] == LINEAR]
        if reference.empty:
            continue
        best = best_network(rows)
        a, b = grid.paired(str(reference["config"].iloc[0]), str(best["config"]), "test_acc")
        compared = inference.paired_comparison(a, b, alpha=analysis_params.alpha)
        out[group] = {
            "test_acc": reference["test_acc_mean"].iloc[0],
            "best_network": best["config"],
            "best_network_test_acc": best["test_acc_mean"],
            "minus_best_network": compared.mean_diff,
            "ci_low": compared.ci_low,
            "ci_high": compared.ci_high,
            "wilcoxon_p": compared.wilcoxon_p,
            "n_seeds": compared.n,
            "reading": _reading(compared, analysis_params.alpha),
        }
    return out


def _reading(compared: inference.PairedComparison, alpha: float) -> str:
    if not compared.can_reach_alpha:
        return READINGS[3]
    if compared.wilcoxon_p < alpha:
        return READINGS[0] if compared.mean_diff < 0 else READINGS[1]
    return READINGS[2]

"""Which config stands for a family: selected on validation accuracy.

Each family's strength is selected on validation: the config with the highest mean val_acc over
its seeds, ties to the smaller strength (then the config name). Test accuracy is only reported.
(H1a/H1b read frontiers at accuracy costs instead: pipelines/analysis/frontier.py.)
"""

from __future__ import annotations

import pandas as pd

from pipelines.analysis import inference
from pipelines.analysis.grid import Grid
from pipelines.core import results, tables
from pipelines.core.params import AnalyzeParams


def select(grid: Grid, analysis_params: AnalyzeParams) -> pd.DataFrame:
    """Each family's validation-selected config per optimizer group (the baseline included)."""
    rows = []
    for group in grid.groups():
        for family in results.FAMILIES:
            candidates = grid.family(group, family)
            if candidates.empty:
                continue
            best = candidates.sort_values(["val_acc_mean", "strength", "config"], ascending=[False, True, True]).iloc[0]
            ci = inference.mean_interval(
                grid.values(best["config"], "test_acc").to_numpy(),
                level=1 - analysis_params.alpha,
                resamples=analysis_params.bootstrap_resamples,
                seed=analysis_params.seed,
            )
            rows.append(
                {
                    "dataset": grid.dataset,
                    "optimizer": group,
                    "family": family,
                    "config": best["config"],
                    "strength": 0.0 if family == "none" else float(best["strength"]),
                    "val_acc_mean": best["val_acc_mean"],
                    "test_acc_mean": best["test_acc_mean"],
                    "test_acc_ci_low": ci.low,
                    "test_acc_ci_high": ci.high,
                    "n_seeds": best["n_seeds"],
                    "n_diverged": best["diverged"],
                }
            )
    return tables.frame("selected", rows)


def config_of(table: pd.DataFrame, group: str, family: str) -> str | None:
    """The config the selected table names for (group, family), if any."""
    found = table[(table["optimizer"] == group) & (table["family"] == family)]
    return None if found.empty else str(found["config"].iloc[0])

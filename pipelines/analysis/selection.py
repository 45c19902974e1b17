"""Which config stands for a family: selected on validation accuracy, or matched to the baseline's.

Selection. Each family's strength is selected on validation: the config with the highest mean
val_acc over its seeds, ties to the smaller strength (then the config name). Test accuracy is
only reported. A selection at the weakest or strongest of a ladder of three or more strengths is
marked in `edge` (e.g. "strongest l2"): the optimum may lie outside the grid, so it is not one.
Coupled weight_decay is never an arm: it is the l2 penalty by construction (the same gradient
term; tests/test_trainer.py checks the identity), and counting it would compare l2 with itself.

Matching (H1). The strongest config of a family whose mean val_acc is at least the baseline's
minus analyze.match_tolerance; if none is, the config with the highest mean val_acc.
"""

from __future__ import annotations

import pandas as pd

from pipelines.analysis import inference
from pipelines.analysis.grid import Grid
from pipelines.core import results, tables
from pipelines.core.params import AnalyzeParams

L1_FAMILIES = ("l1", "prox_l1")
# Families trained but never compared: each is another family by construction.
IDENTICAL_TO = {"weight_decay": "l2"}
# Fewer strengths than this make no ladder: a selection among them cannot be called an edge.
LADDER_MIN = 3


def select(grid: Grid, analysis_params: AnalyzeParams) -> pd.DataFrame:
    """Each family's validation-selected config per optimizer group (the baseline included)."""
    rows = []
    for group in grid.groups():
        for family in results.FAMILIES:
            candidates = grid.family(group, family)
            if candidates.empty or family in IDENTICAL_TO:
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
                    "edge": edge(candidates, str(best["config"])),
                }
            )
    return tables.frame("selected", rows)


def edge(candidates: pd.DataFrame, config: str) -> str:
    """Where `config` sits at the end of a ladder of LADDER_MIN or more strengths: "weakest <column>"
    or "strongest <column>", per strength column it uses (elastic and activity have two ladders),
    among the candidates equal to it in every other strength column; "no" inside its ladders (and
    for the baseline, which has none)."""
    chosen = candidates.loc[config]
    ends = []
    for column in results.STRENGTH_COLUMNS:
        if not chosen[column] > 0:
            continue
        others = [c for c in results.STRENGTH_COLUMNS if c != column]
        ladder = candidates.loc[(candidates[others] == chosen[others]).all(axis=1), column].drop_duplicates()
        if len(ladder) < LADDER_MIN:
            continue
        if chosen[column] == ladder.min():
            ends.append(f"weakest {column}")
        elif chosen[column] == ladder.max():
            ends.append(f"strongest {column}")
    return ", ".join(ends) or "no"


def matching_rule(tolerance: float) -> str:
    return (
        f"the strongest config whose mean val_acc is at least the baseline's minus {tolerance:g}; "
        "if none is, the config with the highest mean val_acc"
    )


def match(grid: Grid, tolerance: float) -> pd.DataFrame:
    """H1's configs at matched validation accuracy: L1-type families and l2, per group."""
    rows = []
    for group in grid.groups():
        baseline_val = grid.configs.at[grid.baseline(group), "val_acc_mean"]
        for family in (*L1_FAMILIES, "l2"):
            candidates = grid.family(group, family)
            if candidates.empty:
                continue
            within = candidates[candidates["val_acc_mean"] >= baseline_val - tolerance]
            chosen = (
                within.iloc[-1]
                if not within.empty
                else candidates.sort_values(["val_acc_mean", "strength"], ascending=[True, False]).iloc[-1]
            )
            rows.append(
                {
                    "dataset": grid.dataset,
                    "optimizer": group,
                    "family": family,
                    "config": chosen["config"],
                    "strength": chosen["strength"],
                    "val_acc_mean": chosen["val_acc_mean"],
                    "baseline_val_acc_mean": baseline_val,
                    "within_tolerance": not within.empty,
                    "rule": matching_rule(tolerance),
                }
            )
    return tables.frame("matched", rows)


def config_of(table: pd.DataFrame, group: str, family: str) -> str | None:
    """The config a selected or matched table names for (group, family), if any."""
    found = table[(table["optimizer"] == group) & (table["family"] == family)]
    return None if found.empty else str(found["config"].iloc[0])

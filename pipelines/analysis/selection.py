"""Which config stands for a family: selected on validation accuracy.

Each family's strength is selected on validation: the config with the highest mean val_acc over
its seeds, ties to the smaller strength (then the config name). Test accuracy is only reported.
(H1a/H1b read frontiers at accuracy costs instead: pipelines/analysis/frontier.py.) A selection at
the weakest or strongest of its ladder of strengths is marked in `edge` (e.g.
"strongest l2"): the optimum may lie outside the grid, so it is not one. Coupled weight_decay is
never an arm: it is the l2 penalty by construction (the same gradient term; tests/test_trainer.py
checks the identity), and counting it would compare l2 with itself.
"""

from __future__ import annotations

import pandas as pd

from pipelines.analysis import inference
from pipelines.analysis.grid import Grid
from pipelines.core import results, tables
from pipelines.core.params import AnalyzeParams

# Families trained but never compared: each is another family by construction.
IDENTICAL_TO = {"weight_decay": "l2"}
# A ladder of two strengths has both ends at an edge: every selection from it is marked.
LADDER_MIN = 2


def select(grid: Grid, analysis_params: AnalyzeParams) -> pd.DataFrame:
    """Each family's validation-selected config per optimizer group (the baseline included)."""
    rows = []
    for group in grid.groups():
        for family in results.FAMILIES:
            candidates = grid.family(group, family)
            if candidates.empty or family in IDENTICAL_TO:
                continue
            best = candidates.sort_values(["val_acc_mean", "strength", "config"], ascending=[False, True, True]).iloc[0]
            ci = inference.t_interval(
                grid.values(best["config"], "test_acc").to_numpy(), level=1 - analysis_params.alpha
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


def config_of(table: pd.DataFrame, group: str, family: str) -> str | None:
    """The config the selected table names for (group, family), if any."""
    found = table[(table["optimizer"] == group) & (table["family"] == family)]
    return None if found.empty else str(found["config"].iloc[0])

"""Sparsity–accuracy frontiers (H1a, H1b): how much of a network a family lets one prune for a
given cost in validation accuracy.

A family's frontier runs over its strengths, with the baseline (none) as strength 0: as λ rises,
networks become more prunable (prunable_fraction, pipelines/training/pruning.py) and, past some
strength, less accurate. How it is read at a cost c (analyze.accuracy_costs, a fraction: 0.005 =
half a point):

  admissible  the baseline and the family's strengths whose seed-mean val_acc is at least the
              baseline's seed mean minus c;
  point       the admissible config with the largest seed-mean prunable fraction (ties to the
              weaker strength), so the baseline when no strength is admissible;
  reached     the family's strongest strength has a seed-mean val_acc more than c below the
              baseline's. Otherwise the grid stops short of the cost (a weak strength that falls
              below by chance does not count): a stronger λ might prune more at the same cost, the
              point is only a lower bound, and the cost is "not reached" for the family, which is
              neither a pass nor a fail.

Everything is chosen on validation; seed means are over the `ok` members that have a prunable
fraction. This works on any number of strengths, one included.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipelines.analysis.grid import Grid
from pipelines.core import tables

L1_FAMILIES = ("l1", "prox_l1")
RIVAL = "l2"
MEASURE = "prunable_fraction"


@dataclass(frozen=True)
class Point:
    """A family's frontier at one cost."""

    config: str
    strength: float
    val_acc_mean: float
    prunable_mean: float
    reached: bool


def reading_rule() -> str:
    return (
        "a family's frontier at a cost is the largest seed-mean prunable fraction among the baseline and the "
        "family's strengths whose seed-mean val_acc is at most the cost below the baseline's; the cost is "
        "reached when the family's strongest strength falls further"
    )


def point(grid: Grid, group: str, family: str, cost: float) -> Point | None:
    """The family's frontier point at `cost`; None when the group has no config of the family or no
    admissible config has a measured prunable fraction."""
    strengths = grid.family(group, family)
    if strengths.empty:
        return None
    baseline = grid.baseline(group)
    floor = grid.configs.at[baseline, "val_acc_mean"] - cost
    candidates = pd.concat([grid.configs.loc[[baseline]].assign(strength=0.0), strengths])
    candidates["prunable_mean"] = [grid.values(c, MEASURE).mean() for c in candidates.index]
    admissible = candidates[(candidates["val_acc_mean"] >= floor) & candidates["prunable_mean"].notna()]
    if admissible.empty:  # not even the baseline has a measured prunable fraction
        return None
    best = admissible.sort_values(["prunable_mean", "strength"], ascending=[False, True]).iloc[0]
    return Point(
        str(best["config"]),
        float(best["strength"]),
        float(best["val_acc_mean"]),
        float(best["prunable_mean"]),
        bool(strengths["val_acc_mean"].iloc[-1] < floor),
    )


def frontier(grid: Grid, costs: list[float]) -> pd.DataFrame:
    """Every frontier point of the L1-type families and l2, per group and cost (the frontier table)."""
    rows = []
    for group in grid.groups():
        baseline_val = grid.configs.at[grid.baseline(group), "val_acc_mean"]
        for family in (*L1_FAMILIES, RIVAL):
            for cost in costs:
                found = point(grid, group, family, cost)
                if found is None:
                    continue
                rows.append(
                    {
                        "dataset": grid.dataset,
                        "optimizer": group,
                        "family": family,
                        "cost": cost,
                        "config": found.config,
                        "strength": found.strength,
                        "val_acc_mean": found.val_acc_mean,
                        "baseline_val_acc_mean": baseline_val,
                        "prunable_mean": found.prunable_mean,
                        "n_seeds": len(grid.values(found.config, MEASURE)),
                        "reached": found.reached,
                    }
                )
    return tables.frame("frontier", rows)


def at(table: pd.DataFrame, group: str, family: str, cost: float) -> pd.Series | None:
    """The frontier table's row for (group, family, cost), if any."""
    found = table[(table["optimizer"] == group) & (table["family"] == family) & (table["cost"] == cost)]
    return None if found.empty else found.iloc[0]

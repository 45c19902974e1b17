"""The learning-rate × strength maps (train.<dataset>.maps): where the best strength lies at each
learning rate, and how it moves with the learning rate.

Every cell (optimizer, family, lr, strength) is trained over the map's seeds. Per seed and lr, the
best strength is the one with the highest val_acc (ties to the smaller strength); test_acc there is
only reported. Per seed, the slope is the least-squares slope of log(best strength) on log(lr) over
the map's learning rates.

Parameterization (PyTorch's): SGDW and AdamW decay w ← (1 − lr·λ)·w per step, so the decay per
step is the product lr·λ. "Decoupled" (Loshchilov & Hutter) says the good decay per step does not
depend on the learning rate; in PyTorch's units that is a best λ ∝ 1/lr: slope −1. An L2 penalty
is a term of the objective, so if its best λ were a property of the objective alone its slope
would be 0; under Adam its gradient is divided by √v̂, and Loshchilov & Hutter's claim is only
that it stays coupled to the learning rate. A best strength at the edge of the map's strengths is
flagged (`at_edge`): there the optimum may lie outside the map, and the slope is bounded, not
measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.core import results

# Per optimizer group: the coupled penalty and the decoupled decay mapped against each other.
METHODS = {"adam": ("l2", "adamw"), "sgd": ("l2", "sgdw")}


def cells(runs: pd.DataFrame) -> pd.DataFrame:
    """The map cells of runs.csv that finished, with their optimizer group."""
    mapped = results.map_grid(runs)
    mapped = mapped[mapped["status"] == "ok"].copy()
    mapped["group"] = mapped["optimizer"].map(results.group_of)
    for column in ("lr", "strength", "val_acc", "test_acc", "weight_l2"):
        mapped[column] = mapped[column].astype(float)
    return mapped


def best_strengths(dataset: str, mapped: pd.DataFrame) -> pd.DataFrame:
    """Per group, family, seed and lr: the validation-best strength, its accuracies, whether it is
    at the edge of the map's strengths."""
    rows = []
    for (group, family), method in mapped.groupby(["group", "family"]):
        strengths = sorted(method["strength"].unique())
        for (seed, lr), cell in method.groupby(["seed", "lr"]):
            best = cell.sort_values(["val_acc", "strength"], ascending=[False, True]).iloc[0]
            rows.append(
                {
                    "dataset": dataset,
                    "optimizer": group,
                    "family": family,
                    "seed": seed,
                    "lr": lr,
                    "best_strength": best["strength"],
                    "val_acc": best["val_acc"],
                    "test_acc": best["test_acc"],
                    "at_edge": best["strength"] in (strengths[0], strengths[-1]),
                }
            )
    return pd.DataFrame(rows)


def seed_slopes(best: pd.DataFrame) -> pd.DataFrame:
    """Per group, family and seed: the slope of log(best strength) on log(lr)."""
    rows = []
    for (group, family, seed), per_lr in best.groupby(["optimizer", "family", "seed"]):
        x, y = np.log(per_lr["lr"].to_numpy()), np.log(per_lr["best_strength"].to_numpy())
        slope = float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else float("nan")
        rows.append(
            {
                "optimizer": group,
                "family": family,
                "seed": seed,
                "slope": slope,
                "at_edge": int(per_lr["at_edge"].sum()),
            }
        )
    return pd.DataFrame(rows, columns=["optimizer", "family", "seed", "slope", "at_edge"])


def paired_slopes(slopes: pd.DataFrame, group: str) -> tuple[np.ndarray, np.ndarray]:
    """The group's (coupled, decoupled) slopes on the seeds both have."""
    coupled, decoupled = METHODS[group]
    by_family = slopes[slopes["optimizer"] == group].pivot(index="seed", columns="family", values="slope")
    if coupled not in by_family or decoupled not in by_family:
        return np.array([]), np.array([])
    both = by_family[[coupled, decoupled]].dropna()
    return both[coupled].to_numpy(), both[decoupled].to_numpy()

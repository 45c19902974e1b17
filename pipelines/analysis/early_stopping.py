"""Early stopping, read from the learning curves: the practitioner's first regularizer.

A member's early-stopped epoch is its evaluation with the highest validation accuracy (the earliest
among ties); its losses and accuracies are read there, from curves.csv. Validation accuracy, not
loss, because the selection protocol selects on it too. The resolution is the grid's eval_every.

Two uses:
- The early-stopping baseline: per optimizer group, the baseline's members read at their
  early-stopped epochs, as one more configuration (family early_stopping) that the analysis selects
  and compares like any other, paired by seed.
- analyze.early_stopping: true reads every member at its early-stopped epoch, so that a reader can
  ask whether a regularizer still helps once early stopping is used. Weight measures (norms,
  sparsity, structure) stay those of the final weights, the only ones kept.
"""

from __future__ import annotations

import pandas as pd

from pipelines.core import results

FAMILY = "early_stopping"
# Read at the early-stopped epoch: everything measured on the splits.
READ_AT_BEST = ["train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "gap_acc", "gap_loss"]


def best_epochs(curves: pd.DataFrame) -> pd.DataFrame:
    """Per member (index), its early-stopped epoch (`epoch`) and the READ_AT_BEST values there."""
    ordered = curves.sort_values(["member", "val_acc", "epoch"], ascending=[True, False, True], kind="stable")
    return ordered.drop_duplicates("member").set_index("member")[["epoch", *READ_AT_BEST]]


def read_at_best(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """`runs` (ok rows) with READ_AT_BEST replaced by the values at each member's early-stopped epoch."""
    best = best_epochs(curves).reindex(runs["member"])
    missing = runs.loc[best["epoch"].isna().to_numpy(), "member"]
    if len(missing):
        raise ValueError(f"curves: no evaluation of members {sorted(missing)[:5]}; expected one per eval epoch")
    read = runs.copy()
    read[READ_AT_BEST] = best[READ_AT_BEST].to_numpy()
    return read


def baseline(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """The early-stopping baseline's rows: each group's baseline (family none, biases unpenalized)
    read at its early-stopped epochs, as config <group baseline>/early_stopped. Weight measures are
    NaN: the early-stopped weights are not kept."""
    none = runs[(runs["family"] == "none") & ~runs["penalize_bias"]]
    rows = read_at_best(none, curves)
    kept = set(results.IDENTITY_COLUMNS + ["status", "diverged_epoch", "epochs_run", "run_id", *READ_AT_BEST])
    rows[[c for c in rows.columns if c not in kept]] = float("nan")
    return rows.assign(
        config=rows["config"] + "/early_stopped",
        family=FAMILY,
        epochs_run=best_epochs(curves).reindex(rows["member"])["epoch"].to_numpy(),
    )

"""H5's mechanism, measured per weight: how much an L2 penalty and decoupled decay shrink each weight
of an Adam member, against the weight's historical gradient scale √v̂.

Under Adam an L2 penalty's gradient λ·w is divided by √v̂ + ε like every other gradient, so a weight
with large historical gradients is shrunk less; decoupled decay (AdamW) shrinks every weight by
the same factor. Per seed, over every weight matrix entry (biases are not penalized), the fit is
the least-squares slope of

    y = log(|w| / |w_none|)   on   x = log √v̂

with w the penalized member's final weight, w_none the same seed's baseline (family none) at the
same index, and v̂ the penalized member's own bias-corrected second moment at the end of training.
Under Adam+L2 the penalty's shrinkage per step is lr·λ/(√v̂ + ε): largest where √v̂ is
small, so y is most negative there and rises with x: a positive slope. AdamW's lr·λ is the same
for every weight: a slope near 0. (Issue 17 wrote "negative" for Adam+L2; that is the sign of the
slope of the shrinkage, −y, not of y.) A weight that is exactly 0 (or v̂ = 0) has no
logarithm: it is left out of the fit and counted (`excluded`), never clipped to a made-up value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipelines.analysis.grid import Grid
from pipelines.analysis.selection import config_of
from pipelines.core import results
from pipelines.core.errors import DataError

# The Adam group's families whose mechanism is measured: the coupled penalty, the decoupled decay.
METHODS = ("l2", "adamw")


# float32's smallest normal number, 1.18e-38 (pipelines/training/pruning.py counts the weights below it).
SMALLEST_NORMAL = float(np.finfo(np.float32).tiny)


@dataclass(frozen=True)
class SlopeFit:
    slope: float  # NaN with fewer than 2 distinct x
    n: int  # weights in the fit
    excluded: int  # weights left out: |w| or |w_none| below float32's smallest normal, or v̂ = 0


def log_ratio_slope(weight: np.ndarray, baseline: np.ndarray, v_hat: np.ndarray) -> SlopeFit:
    """The least-squares slope of log(|weight| / |baseline|) on log √v̂, over the entries with a
    logarithm; the others are counted as excluded. Denormal weights (below float32's smallest
    normal) are excluded with the zeros: they are the weights of dead units decaying geometrically
    for want of any gradient, whose log (down to −87) would otherwise dominate the least squares."""
    w, w0, v = (np.abs(np.asarray(a, np.float64)).ravel() for a in (weight, baseline, v_hat))
    keep = (w >= SMALLEST_NORMAL) & (w0 >= SMALLEST_NORMAL) & (v > 0)
    x, y = 0.5 * np.log(v[keep]), np.log(w[keep]) - np.log(w0[keep])
    excluded = int(keep.size - keep.sum())
    if x.size < 2 or np.ptp(x) == 0:
        return SlopeFit(float("nan"), int(x.size), excluded)
    dx = x - x.mean()
    return SlopeFit(float(dx @ (y - y.mean()) / (dx @ dx)), int(x.size), excluded)


@dataclass(frozen=True)
class Models:
    """The final weights of every member and the second moments of the Adam-rule members."""

    weights: list[torch.Tensor]  # per layer (M, out, in), rows in `weight_rows` order
    weight_rows: dict[int, int]  # member -> row
    moments: list[torch.Tensor]  # per layer (A, out, in): v̂, bias-corrected
    moment_rows: dict[int, int]

    @classmethod
    def load(cls, dataset: str, root: Path = results.MODELS_DIR) -> Models | None:
        """The dataset's models; None when no member was trained with Adam's rule (no v̂ saved)."""
        weights_file, moments_file = results.weights_path(dataset, root), results.adam_state_path(dataset, root)
        if not weights_file.exists():
            raise DataError(f"{weights_file}: not found; run the train stage first (dvc repro)")
        if not moments_file.exists():
            return None
        weights = torch.load(weights_file, mmap=True, weights_only=True)
        state = torch.load(moments_file, mmap=True, weights_only=True)
        correction = (1 - state["beta2"] ** state["step"].double()).float()
        return cls(
            weights=[layer["weight"] for layer in weights["layers"]],
            weight_rows={int(m): i for i, m in enumerate(weights["members"])},
            moments=[layer["weight"] / correction[:, None, None] for layer in state["layers"]],
            moment_rows={int(m): i for i, m in enumerate(state["members"])},
        )

    def fit(self, member: int, baseline: int) -> SlopeFit:
        """The member's slope over every layer's weights, pooled."""
        w, b = self.weight_rows[member], self.weight_rows[baseline]
        v = self.moment_rows[member]
        return log_ratio_slope(
            np.concatenate([layer[w].numpy().ravel() for layer in self.weights]),
            np.concatenate([layer[b].numpy().ravel() for layer in self.weights]),
            np.concatenate([layer[v].numpy().ravel() for layer in self.moments]),
        )


def mechanism_rows(grid: Grid, selected: pd.DataFrame, models: Models) -> list[dict[str, object]]:
    """One row per seed and method (the Adam group's validation-selected l2 and adamw configs),
    seeds paired with the baseline's; nothing when the group or a config is missing."""
    if "adam" not in grid.groups():
        return []
    baseline = grid.ok[grid.baseline("adam")]
    rows: list[dict[str, object]] = []
    for family in METHODS:
        config = config_of(selected, "adam", family)
        if config is None:
            continue
        members = grid.ok[config]
        for seed in sorted(set(members.index) & set(baseline.index)):
            fit = models.fit(int(members.at[seed, "member"]), int(baseline.at[seed, "member"]))
            rows.append(
                {
                    "dataset": grid.dataset,
                    "optimizer": "adam",
                    "family": family,
                    "config": config,
                    "seed": seed,
                    "slope": fit.slope,
                    "n_weights": fit.n,
                    "excluded": fit.excluded,
                    "dead_units": _dead_units(members, seed),
                    "baseline_dead_units": _dead_units(baseline, seed),
                }
            )
    return rows


def _dead_units(members: pd.DataFrame, seed: int) -> float:
    """runs.csv's dead_units of the seed's member; NaN in results written before it was measured."""
    return float(members.at[seed, "dead_units"]) if "dead_units" in members else float("nan")

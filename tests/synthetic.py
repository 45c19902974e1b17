"""Small synthetic results tables that follow the results contract (pipelines/core/results.py).

Analysis, figures and report are developed and tested against these: `effect` scales every
regularization effect (0 = the null hypothesis everywhere), `noise` the seed-to-seed spread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipelines.core import results
from pipelines.training.grid import HEADLINE, config_name
from pipelines.training.pruning import PRUNE_FRACTIONS

THRESHOLDS = (1e-4, 1e-3, 1e-2)

# (optimizer, family, settings) for a small grid; settings are the columns the family sets.
GRID = [
    ("adam", "none", {}),
    *[("adam", "l1", {"l1": s}) for s in (1e-4, 1e-3, 1e-2)],
    *[("adam", "prox_l1", {"prox_l1": s}) for s in (1e-3, 1e-2, 1e-1)],
    *[("adam", "l2", {"l2": s}) for s in (1e-3, 1e-2, 1e-1)],
    *[("adam", "l2_norm", {"l2_norm": s}) for s in (1e-3, 1e-2)],
    *[("adam", "elastic", {"l1": a, "l2": b}) for a in (1e-4, 1e-3) for b in (1e-3, 1e-2)],
    *[("adam", "weight_decay", {"weight_decay": s}) for s in (1e-3, 1e-2, 1e-1)],
    *[("adamw", "adamw", {"decoupled_wd": s}) for s in (1e-2, 1e-1, 1.0)],
    *[("adam", "dropout", {"dropout": p}) for p in (0.2, 0.4, 0.6)],
    *[("adam", "activity", {"act_l1": s}) for s in (1e-4, 1e-3)],
    ("sgd", "none", {}),
    *[("sgd", "l2", {"l2": s}) for s in (1e-3, 1e-2, 1e-1)],
    *[("sgd", "weight_decay", {"weight_decay": s}) for s in (1e-3, 1e-2, 1e-1)],
    *[("sgdw", "sgdw", {"decoupled_wd": s}) for s in (1e-2, 1e-1, 1.0)],
]
# Families also trained with penalized biases (the H6 ablation); config names end in "/bias".
BIAS_ABLATION = [(o, f, s) for o, f, s in GRID if o == "adam" and f == "l2"]
# The linear references (grid "linear", no hidden layer), per optimizer group: this much below the
# baseline's test accuracy, seed by seed.
LINEAR_GROUPS = ("adam", "sgd")
LINEAR_DEFICIT = 0.02


def _strength(family: str, settings: dict[str, float]) -> float:
    if family == "activity":
        return settings.get("act_l1", 0.0) or settings.get("act_l2", 0.0)
    # Synthetic dropout has one rate for every layer, held in its "dropout" setting.
    return settings.get((HEADLINE | {"dropout": "dropout"}).get(family, ""), 0.0)


def _metrics(
    family: str,
    settings: dict[str, float],
    effect: float,
    rng: np.random.Generator,
    seed_shift: float,
    noise: float,
    progress: float = 1.0,
) -> dict[str, float]:
    """Plausible metrics: L1 sparsifies, L2 shrinks, dropout narrows the gap, all scaled by effect."""
    l1 = settings.get("l1", 0.0) + settings.get("prox_l1", 0.0)
    l2 = settings.get("l2", 0.0) + settings.get("weight_decay", 0.0) + settings.get("decoupled_wd", 0.0) / 10
    p = settings.get("dropout", 0.0)
    sparse = effect * min(0.9, 30 * l1)
    shrink = effect * min(0.8, 8 * l2 + 4 * settings.get("l2_norm", 0.0))
    gap_cut = effect * 0.8 * p + effect * 2 * shrink * 0.1

    def jitter() -> float:
        return float(rng.normal(0, noise))

    train_acc = min(0.999, 0.97 - 0.03 * sparse + seed_shift / 2 + jitter()) * progress
    test_acc = 0.84 + 0.01 * gap_cut + seed_shift + jitter()
    test_acc = min(test_acc, train_acc)
    train_acc = train_acc - gap_cut * 0.1
    # Validation accuracy falls off a cliff as the L1 and L2 strengths rise, whatever the effect, so
    # that every cost of the frontiers (0.5 to 2 points) is reached by the strongest strengths.
    val_acc = test_acc + jitter() - min(0.1, 250 * l1**2 + 2.5 * settings.get("l2", 0.0) ** 2)
    train_loss = 0.1 + (1 - train_acc)
    test_loss = 0.45 - 0.1 * gap_cut + jitter()
    frac = {
        results.sparsity_column(t): float(np.clip(sparse * (1 - 0.2 * i) + 0.01 * (i + 1) + abs(jitter()), 0, 1))
        for i, t in enumerate(sorted(THRESHOLDS, reverse=True))
    }
    exact = float(np.clip(sparse * 0.8, 0, 1)) if settings.get("prox_l1") else 0.0
    weight_l2 = 30.0 * (1 - shrink) + jitter() * 5
    return {
        "train_loss": train_loss,
        "train_acc": train_acc,
        "val_loss": test_loss + jitter(),
        "val_acc": val_acc,
        "test_loss": test_loss,
        "test_acc": test_acc,
        "gap_acc": train_acc - test_acc,
        "gap_loss": test_loss - train_loss,
        "weight_l1": weight_l2 * 40 * (1 - sparse),
        "weight_l2": weight_l2,
        "exact_zeros": exact,
        "hoyer": 0.2 + 0.6 * sparse,
        **frac,
        **_structure(effect * min(0.9, 300 * l1), exact, seed_shift, jitter),
    }


def _structure(prunable: float, exact: float, seed_shift: float, jitter: Callable[[], float]) -> dict[str, float]:
    """The structure columns: L1 makes networks prunable (by `prunable`), L2 leaves them as they
    are. The prunable fraction varies by seed only, as a rung of the pruning ladder would."""
    return {
        "prunable_fraction": round(min(0.99, 0.3 + 0.6 * prunable + seed_shift), 2),
        "negligible": min(1.0, 0.02 + prunable + abs(jitter())),
        "hoyer_layers": 0.2 + 0.6 * prunable,
        "zeros": exact,
        "underflow": 0.0,
        "dead_units": 0.0,
    }


def make_results(
    dataset: str = "diabetes",
    seeds: int = 10,
    effect: float = 1.0,
    noise: float = 0.005,
    epochs: int = 4,
    hidden: tuple[int, ...] = (16, 8),
    inputs: int = 8,
    classes: int = 2,
    seed: int = 0,
    linear: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Return (runs, curves, weights) for a synthetic grid, in the contract's layout; `linear` adds
    the linear references (their weights are not in the networks' stack)."""
    rng = np.random.default_rng(seed)
    seed_shifts = rng.normal(0, 0.01, size=seeds)
    runs, curves = [], []
    configs = [(*g, False) for g in GRID] + [(*g, True) for g in BIAS_ABLATION]
    configs += [(o, results.LINEAR, {}, False) for o in LINEAR_GROUPS] if linear else []
    for member, ((optimizer, family, settings, penalize_bias), s) in enumerate(
        (c, s) for c in configs for s in range(seeds)
    ):
        reference = family == results.LINEAR
        widths = () if reference else hidden
        shift = seed_shifts[s] - LINEAR_DEFICIT * reference
        row = {c: 0.0 for c in results.STRENGTH_COLUMNS} | settings
        identity = {
            "dataset": dataset,
            "member": member,
            "config": config_name(optimizer, family, settings, penalize_bias),
            "family": family,
            "optimizer": optimizer,
            "lr": 1e-2 if optimizer in ("sgd", "sgdw") else 1e-3,
            "momentum": 0.9 if optimizer in ("sgd", "sgdw") else 0.0,
            "seed": s,
            "split": 0,
            "penalize_bias": penalize_bias,
            "grid": results.LINEAR if reference else "main",
            "strength": _strength(family, settings),
            **row,
            "dropout_layers": ";".join(f"{row['dropout']:g}" for _ in widths),
            "hidden": "-".join(map(str, widths)),
            "activation": "relu",
            "batch_size": 32,
            "epochs": epochs,
        }
        for epoch in range(1, epochs + 1):
            m = _metrics(family, settings, effect, rng, shift, noise, progress=0.9 + 0.1 * epoch / epochs)
            if reference:  # no hidden layer: no structure measures
                m |= dict.fromkeys(results.STRUCTURE_COLUMNS, np.nan)
            curves.append(
                {k: identity[k] for k in ("dataset", "member", "config", "family", "seed")} | {"epoch": epoch} | m
            )
        runs.append(
            identity
            | {"status": "ok", "diverged_epoch": np.nan, "epochs_run": epochs, "run_id": f"run{member:04d}"}
            | m
        )
    runs_frame, curves_frame = pd.DataFrame(runs), pd.DataFrame(curves)
    weights = _weights(results.main_grid(runs_frame), (inputs, *hidden, classes), seed)
    return runs_frame, curves_frame, weights


def _weights(runs: pd.DataFrame, sizes: tuple[int, ...], seed: int) -> dict:
    generator = torch.Generator().manual_seed(seed)
    members = len(runs)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        weight = torch.randn(members, fan_out, fan_in, generator=generator) / fan_in**0.5
        zeroed = torch.tensor((runs["family"] == "prox_l1").to_numpy())
        weight[zeroed] = torch.where(weight[zeroed].abs() < 0.3, 0.0, weight[zeroed])
        layers.append({"weight": weight, "bias": torch.zeros(members, fan_out)})
    return {"members": runs["member"].tolist(), "layers": layers}


def pruning_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """pruning.csv for the runs: accuracy flat up to each member's prunable fraction, then falling a
    point per point of fraction pruned beyond it."""
    rows = []
    for fraction in PRUNE_FRACTIONS:
        beyond = np.clip(fraction - runs["prunable_fraction"].to_numpy(), 0, None)
        rows.append(
            runs[["dataset", "member", "config", "family", "seed"]].assign(
                fraction=fraction,
                val_loss=runs["val_loss"] + beyond,
                val_acc=runs["val_acc"] - beyond,
            )
        )
    return pd.concat(rows, ignore_index=True)[results.PRUNING_COLUMNS]


def write_results(root: Path, dataset: str = "diabetes", **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write runs.csv, curves.csv, pruning.csv, weights.pt and adam_state.pt under root/reports/results
    and root/models."""
    runs, curves, weights = make_results(dataset, **kwargs)
    results_dir = root / results.RESULTS_DIR
    runs_file = results.runs_path(dataset, results_dir)
    runs_file.parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(runs_file, index=False)
    curves.to_csv(results.curves_path(dataset, results_dir), index=False)
    pruning_curves(results.main_grid(runs)).to_csv(results.pruning_path(dataset, results_dir), index=False)
    weights_file = results.weights_path(dataset, root / results.MODELS_DIR)
    weights_file.parent.mkdir(parents=True, exist_ok=True)
    torch.save(weights, weights_file)
    torch.save(
        _adam_state(results.main_grid(runs), weights), results.adam_state_path(dataset, root / results.MODELS_DIR)
    )
    return runs, curves


def _adam_state(runs: pd.DataFrame, weights: dict) -> dict:
    """adam_state.pt of the members under Adam's rule: v̂ drawn at random, positive."""
    rows = np.flatnonzero(runs["optimizer"].isin(["adam", "adamw"]).to_numpy())
    generator = torch.Generator().manual_seed(1)
    return {
        "members": runs["member"].iloc[rows].tolist(),
        "step": torch.full((len(rows),), 100, dtype=torch.int64),
        "beta2": torch.full((len(rows),), 0.999, dtype=torch.float64),
        "eps": torch.full((len(rows),), 1e-8, dtype=torch.float64),
        "layers": [
            {
                "weight": torch.rand(layer["weight"][rows].shape, generator=generator) * 1e-4 + 1e-8,
                "bias": torch.rand(layer["bias"][rows].shape, generator=generator) * 1e-4,
            }
            for layer in weights["layers"]
        ],
    }


def map_cells(
    runs: pd.DataFrame,
    best: dict[str, Callable[[float], float]],
    lrs: tuple[float, ...] = (1e-3, 1e-2, 1e-1),
    strengths: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0),
    seeds: int = 6,
) -> pd.DataFrame:
    """Map cells (grid "map") for each optimizer in `best`, rows in runs' layout: val_acc and
    test_acc peak, in log strength, at best[optimizer](lr), shifted per seed by a little noise."""
    rng = np.random.default_rng(5)
    template = runs.iloc[0]
    rows: list[dict] = []
    for optimizer, peak in best.items():
        family = optimizer if optimizer in ("adamw", "sgdw") else "l2"
        column = "decoupled_wd" if family != "l2" else "l2"
        for lr in lrs:
            for strength in strengths:
                config = config_name(optimizer, family, {column: strength}, False) + f"/lr={lr:g}"
                for seed in range(seeds):
                    distance = np.log10(strength) - np.log10(peak(lr)) + rng.normal(0, 0.1)
                    accuracy = 0.85 - 0.02 * distance**2
                    rows.append(
                        template.to_dict()
                        | {c: 0.0 for c in results.STRENGTH_COLUMNS}
                        | {"member": len(runs) + len(rows), "config": config, "family": family}
                        | {"optimizer": optimizer, "lr": lr, "seed": seed, "grid": "map", column: strength}
                        | {"strength": strength, "val_acc": accuracy, "test_acc": accuracy - 0.01}
                    )
    return pd.DataFrame(rows)

"""The results contract between train and the stages after it (README.md, "Layout", describes the pipeline around it).

train writes, per dataset:
  reports/results/<dataset>/runs.csv    one row per grid member (RUN_COLUMNS + sparsity columns)
  reports/results/<dataset>/curves.csv  one row per member per evaluated epoch (CURVE_COLUMNS + ...)
  reports/results/<dataset>/pruning.csv one row per network per fraction pruned (PRUNING_COLUMNS)
  reports/results/<dataset>/summary.json  the training run: device, device_name, torch, cuda,
                                          seconds, members, diverged, profile, experiment_name,
                                          experiment_id, parent_run_id (null when tracking is off)
  models/<dataset>/weights.pt           the networks': {"members": [ids], "layers": [{"weight": (M, out, in),
                                          "bias": (M, out)}, ...]} in torch's nn.Linear layout
  models/<dataset>/linear.pt            the linear references' weights (grid "linear"; absent when
                                          there are none), laid out as weights.pt with one layer; apart,
                                          since they have no hidden layer to stack with the networks'
  models/<dataset>/adam_state.pt        Adam's final second moments, for the A networks trained with
                                          Adam's rule (optimizer adam or adamw; absent when none):
                                          {"members": [ids], "step": (A,) int64 steps taken,
                                          "beta2", "eps": (A,) float64, "layers": [{"weight": (A, out, in),
                                          "bias": (A, out)}, ...]} of torch.optim.Adam's exp_avg_sq, not
                                          bias-corrected: v̂ = exp_avg_sq / (1 − beta2^step)
analyze, figures and report read only these, through the loaders below.

Accuracies (*_acc, and gap_acc from them) are float64 k/n of integer counts of correct examples,
so equal counts give equal numbers (k = round(acc·n) recovers the count); losses and weight
measures are float32 values.

Members that share `seed` share initial weights, mini-batch order and dropout noise, so rows of
two configurations are paired by seed (a linear reference shares the order; its weights have
another shape). `config` names a configuration without its seed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from pipelines.core.errors import DataError

RESULTS_DIR = Path("reports/results")
MODELS_DIR = Path("models")
# What analyze, figures and report write in turn.
TABLES_DIR = Path("reports/tables")
SUMMARY_FILE = Path("reports/summary.json")  # every headline and detail number of analyze
HEADLINES_DIR = Path("reports/metrics")  # the DVC metrics: one small file per dataset and hypothesis
FIGURES_DIR = Path("reports/figures")

# AdamW and SGDW are Adam and SGD with decoupled decay: their members are compared within the adam
# and sgd groups.
GROUP_OF = {"adamw": "adam", "sgdw": "sgd"}
# A member either finished ("ok") or diverged, and then its metrics are missing.
STATUSES = ("ok", "diverged")
SPARSITY_PREFIX = "frac_below_"

# The linear reference: a network with no hidden layer, unregularized (train.<dataset>.linear_reference),
# both its family and its grid. It is reported beside the networks, not an arm of the hypotheses, and
# has no structure measures (pruning curves, dead units): NaN in runs.csv, no rows in pruning.csv.
LINEAR = "linear"
# early_stopping is never trained: the analysis derives it from the baseline's curves
# (pipelines/analysis/early_stopping.py).
FAMILIES = (
    "none",
    "early_stopping",
    LINEAR,
    "l1",
    "prox_l1",
    "l2",
    "l2_norm",
    "elastic",
    "weight_decay",
    "adamw",
    "sgdw",
    "dropout",
    "activity",
)

# What identifies a member and every setting it was trained with.
IDENTITY_COLUMNS = [
    "dataset",
    "member",
    "config",
    "family",
    "optimizer",
    "lr",
    "momentum",
    "seed",
    "split",  # the data split the seed trained on (datasets.Prepared.split_of; 0 where there is one)
    "penalize_bias",
    "grid",  # main; map: a cell of a learning-rate × strength map (config name ends /lr=<lr>); linear (LINEAR)
    "strength",  # the family's headline strength: λ, or p for dropout; elastic: λ1; activity: its λ
    "l1",
    "prox_l1",
    "l2",
    "l2_norm",
    "weight_decay",
    "decoupled_wd",
    "dropout",
    "dropout_layers",
    "act_l1",
    "act_l2",
    "hidden",  # hidden widths joined by "-"; empty for the linear reference
    "activation",
    "batch_size",
    "epochs",
]
# The identity columns that hold a strength: a family varies one of them (elastic and activity two).
STRENGTH_COLUMNS = ["l1", "prox_l1", "l2", "l2_norm", "weight_decay", "decoupled_wd", "dropout", "act_l1", "act_l2"]
# Measured on every evaluation, in runs.csv (final) and curves.csv (per epoch).
METRIC_COLUMNS = [
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "gap_acc",  # train_acc - test_acc
    "gap_loss",  # test_loss - train_loss
    "weight_l1",
    "weight_l2",
    "exact_zeros",
    "hoyer",
]
RUN_COLUMNS = IDENTITY_COLUMNS + ["status", "diverged_epoch", "epochs_run", "run_id"] + METRIC_COLUMNS
CURVE_COLUMNS = ["dataset", "member", "config", "family", "seed", "epoch"] + METRIC_COLUMNS
# Functional and scale-free sparsity of the final weights (pipelines/training/pruning.py, which
# states the definitions), in runs.csv after the sparsity columns, overall and per layer i (1 =
# first): layer<i>_negligible, layer<i>_hoyer, layer<i>_zeros, layer<i>_underflow and, for the
# hidden layers, layer<i>_dead. NaN for a diverged member.
STRUCTURE_COLUMNS = [
    "prunable_fraction",  # the largest fraction pruned per layer that costs at most 0.5 points of val_acc (to 1/80)
    "negligible",  # fraction of weights with |w| <= 0.01 x their layer's RMS
    "hoyer_layers",  # Hoyer's sparsity per layer, weighted by layer size
    "zeros",  # fraction of exact zeros
    "underflow",  # fraction of nonzero weights below float32's smallest normal (denormals)
    "dead_units",  # hidden units whose pre-activation is <= 0 on every validation sample
]
# The pruning curves: every member with each fraction of every layer's smallest weights set to 0,
# on the validation set.
PRUNING_COLUMNS = [
    "dataset",
    "member",
    "config",
    "family",
    "seed",
    "fraction",
    "val_loss",
    "val_acc",
]


def group_of(optimizer: str) -> str:
    """The optimizer group a member is compared within."""
    return GROUP_OF.get(optimizer, optimizer)


def main_grid(runs: pd.DataFrame) -> pd.DataFrame:
    """The members of the main grid: every analysis but H5's maps, and every figure but the maps', reads only these."""
    return runs[runs["grid"] == "main"].copy()


def map_grid(runs: pd.DataFrame) -> pd.DataFrame:
    """The cells of the learning-rate × strength maps (train.<dataset>.maps)."""
    return runs[runs["grid"] == "map"].copy()


def linear_grid(runs: pd.DataFrame) -> pd.DataFrame:
    """The linear references (train.<dataset>.linear_reference)."""
    return runs[runs["grid"] == LINEAR].copy()


def sparsity_column(threshold: float) -> str:
    """Name of the column holding the fraction of weights with |w| < threshold."""
    return f"{SPARSITY_PREFIX}{threshold:g}"


def threshold_of(column: str) -> float:
    """The threshold of a sparsity column (the inverse of sparsity_column)."""
    return float(column.removeprefix(SPARSITY_PREFIX))


def structure_columns(frame: pd.DataFrame) -> list[str]:
    """The structure columns present: the overall ones, then each layer's, in layer order."""
    layers = [c for c in frame.columns if re.fullmatch(r"layer\d+_[a-z]+", c)]
    return [c for c in STRUCTURE_COLUMNS if c in frame.columns] + sorted(layers, key=lambda c: int(c[5 : c.index("_")]))


def sparsity_columns(frame: pd.DataFrame) -> list[str]:
    """The sparsity-threshold columns present, in increasing threshold order."""
    return sorted((c for c in frame.columns if c.startswith(SPARSITY_PREFIX)), key=threshold_of)


def check_statuses(runs: pd.DataFrame, path: Path) -> None:
    """Refuse a member whose status is not one of STATUSES, naming the file, config and seed."""
    unknown = runs[~runs["status"].isin(STATUSES)]
    if not unknown.empty:
        row = unknown.iloc[0]
        raise DataError(
            f"{path}: config {row['config']!r}, seed {row['seed']}: status {row['status']!r}; "
            f"expected {' or '.join(map(repr, STATUSES))}"
        )


def runs_path(dataset: str, root: Path = RESULTS_DIR) -> Path:
    return root / dataset / "runs.csv"


def curves_path(dataset: str, root: Path = RESULTS_DIR) -> Path:
    return root / dataset / "curves.csv"


def pruning_path(dataset: str, root: Path = RESULTS_DIR) -> Path:
    return root / dataset / "pruning.csv"


def summary_path(dataset: str, root: Path = RESULTS_DIR) -> Path:
    return root / dataset / "summary.json"


def weights_path(dataset: str, root: Path = MODELS_DIR) -> Path:
    return root / dataset / "weights.pt"


def linear_weights_path(dataset: str, root: Path = MODELS_DIR) -> Path:
    return root / dataset / "linear.pt"


def adam_state_path(dataset: str, root: Path = MODELS_DIR) -> Path:
    return root / dataset / "adam_state.pt"


def read_runs(path: Path) -> pd.DataFrame:
    return _read(path, RUN_COLUMNS)


def read_curves(path: Path) -> pd.DataFrame:
    return _read(path, CURVE_COLUMNS)


def read_table(path: Path, required: list[str], stage: str) -> pd.DataFrame:
    """A CSV that `stage` writes, with at least the `required` columns; a problem is one DataError line."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the {stage} stage first (dvc repro)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV ({error})".replace("\n", " ")) from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing}; expected the columns the {stage} stage writes")
    return frame


def _read(path: Path, required: list[str]) -> pd.DataFrame:
    frame = read_table(path, required, "train")
    if not sparsity_columns(frame):
        raise DataError(f"{path}: no frac_below_<threshold> columns; expected at least one")
    if frame.empty:
        raise DataError(f"{path}: no rows; expected one per grid member")
    return frame

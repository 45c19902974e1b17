"""What the figures of one dataset are drawn from: runs, curves, pruning curves, final weights and
the analyze stage's tables, read and checked."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipelines.analysis import early_stopping
from pipelines.analysis.selection import ARM, IDENTICAL_TO
from pipelines.core.errors import DataError
from pipelines.core.results import (
    FAMILIES,
    LINEAR,
    MODELS_DIR,
    PRUNING_COLUMNS,
    RESULTS_DIR,
    STRUCTURE_COLUMNS,
    TABLES_DIR,
    check_statuses,
    curves_path,
    group_of,
    main_grid,
    map_grid,
    pruning_path,
    read_curves,
    read_runs,
    read_table,
    runs_path,
    weights_path,
)
from pipelines.data.datasets import PIMA_FEATURES, prepared_paths
from pipelines.plots import style as plotting
from pipelines.plots.style import family_label

TABLES = (
    "comparisons",
    "ranking",
    "selected",
    "arms",
    "frontier",
    "lr_best",
    "verdicts",
)  # the analyze stage's tables the figures draw from


@dataclass
class Weights:
    """The final weight matrices of every member (biases are not needed by any figure)."""

    row: dict[int, int]  # member id -> row of the stacked tensors
    layers: list[np.ndarray]  # (members, out, in) per layer


@dataclass
class Evidence:
    """Everything the figures of one dataset are drawn from."""

    dataset: str
    runs: pd.DataFrame  # the main grid with drawing labels; diverged rows kept so captions can count them
    identical: str  # caption sentence on the families left out as another (IDENTICAL_TO): empty, or " ..."
    maps: pd.DataFrame  # the cells of the learning-rate × strength maps (grid "map"), diverged rows kept
    lr_best: pd.DataFrame  # the analyze stage's per-seed best strengths of the maps (table lr_best)
    curves: pd.DataFrame
    test_acc: pd.DataFrame  # test accuracy by seed (rows) and config (columns), the early-stopping baseline too
    pruning: pd.DataFrame  # pruning.csv: every member's accuracy with each fraction of its weights pruned
    weights: Weights
    # One row per member that stands for one of them (the arms table), in drawing order: config is
    # the selected name, trained_config the member's own.
    selected: pd.DataFrame
    comparisons: pd.DataFrame  # H4 test-accuracy rows of this dataset
    ranking: pd.DataFrame
    frontier: pd.DataFrame  # H1a/H1b's frontier points of this dataset (may be empty)
    feature_names: list[str]  # empty unless the input is the 8 features of the Pima table

    @property
    def selected_configs(self) -> list[str]:
        """Each family's selected configuration (or arm) and each baseline."""
        return sorted(set(self.selected["config"]))

    @property
    def ok(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "ok"]

    def diverged(self, families: set[str] | None = None) -> str:
        """The caption sentence on diverged members: of the given families (every member, finished or
        not), else of the selected configs and baselines; and how many more of the grid diverged."""
        runs = self.runs
        chosen = (
            runs["family"].isin(families)
            if families is not None
            else runs["config"].isin(self.selected["trained_config"])
        )
        return plotting.diverged_phrase(runs[chosen], runs)


# ---- reading ------------------------------------------------------------------------------------


def datasets(root: Path = RESULTS_DIR) -> list[str]:
    """The datasets that have a results table, in name order."""
    found = sorted(path.parent.name for path in root.glob("*/runs.csv"))
    if not found:
        raise DataError(f"{root}: no <dataset>/runs.csv found; run the train stage first (dvc repro)")
    return found


def load_evidence(dataset: str, tables: dict[str, pd.DataFrame]) -> Evidence:
    """Read and check one dataset's results, weights and rows of the analyze stage's tables
    (as pipelines.core.tables.read gives them)."""
    every = read_runs(runs_path(dataset))
    main = main_grid(every)
    runs = _drawable_runs(main[~main["family"].isin(IDENTICAL_TO)], runs_path(dataset))
    maps = map_grid(every)
    missing = [c for c in STRUCTURE_COLUMNS if c not in runs]
    if missing:
        raise DataError(
            f"{runs_path(dataset)}: missing columns {missing}; expected the train stage's structure measures"
        )
    weights = _read_weights(weights_path(dataset, MODELS_DIR))
    comparisons = _rows_of(tables["comparisons"], dataset, "comparisons")
    comparisons = comparisons[(comparisons["hypothesis"] == "H4") & (comparisons["metric"] == "test_acc")]
    if comparisons.empty:
        raise DataError(
            f"{TABLES_DIR / 'comparisons.csv'}: no H4 test_acc rows for dataset {dataset!r}; "
            "expected one per regularizer family"
        )
    selected = _selected_members(runs, _rows_of(tables["arms"], dataset, "arms"), weights, weights_path(dataset))
    curves = _main_curves(read_curves(curves_path(dataset)), every)
    return Evidence(
        dataset=dataset,
        runs=runs,
        identical=_identical_phrase(main),
        maps=maps.assign(group=maps["optimizer"].map(group_of)),
        lr_best=tables["lr_best"][tables["lr_best"]["dataset"] == dataset],
        curves=curves,
        test_acc=_test_accuracy(runs, curves, selected),
        pruning=read_table(pruning_path(dataset), PRUNING_COLUMNS, "train"),
        weights=weights,
        selected=selected,
        comparisons=comparisons,
        ranking=_rows_of(tables["ranking"], dataset, "ranking"),
        frontier=tables["frontier"][tables["frontier"]["dataset"] == dataset],
        feature_names=_feature_names(dataset, weights.layers[0].shape[2]),
    )


def _main_curves(curves: pd.DataFrame, every: pd.DataFrame) -> pd.DataFrame:
    """The curves of the main grid's members."""
    return curves[curves["member"].isin(main_grid(every)["member"])]


def _identical_phrase(main: pd.DataFrame) -> str:
    """A caption sentence on the trained families no figure draws because each is another family by
    construction (coupled weight decay is L2's gradient term): drawn, they would hide under its line."""
    sentences = []
    for family, same in IDENTICAL_TO.items():
        members = main[main["family"] == family]
        if members.empty:
            continue
        diverged = int((members["status"] == "diverged").sum())
        sentences.append(
            f"{family_label(family).capitalize()} ({len(members)} members trained, {diverged} diverged) is not "
            "drawn: it is "
            f"the {family_label(same)} penalty by construction (the same gradient term), so its lines would lie "
            f"on {family_label(same)}'s."
        )
    return "".join(" " + sentence for sentence in sentences)


def _test_accuracy(runs: pd.DataFrame, curves: pd.DataFrame, selected: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy of every finished member by seed and config, with each group's early-stopping
    baseline read from the curves as the analyze stage reads it (pipelines/analysis/early_stopping.py)
    and each arm, so that figure 10 pairs every comparison of the tables seed by seed."""
    ok = runs[runs["status"] == "ok"]
    stopped = early_stopping.baseline(ok, curves)
    arms = selected[selected["config"] != selected["trained_config"]]
    return pd.concat([ok, stopped, arms]).pivot(index="seed", columns="config", values="test_acc")


def _drawable_runs(runs: pd.DataFrame, path: Path) -> pd.DataFrame:
    unknown = sorted(set(runs["family"]) - set(FAMILIES))
    if unknown:
        raise DataError(f"{path}: family {unknown}; expected one of {list(FAMILIES)}")
    check_statuses(runs, path)
    baseline_bias = runs.loc[runs["family"] == "none", "penalize_bias"]
    if not baseline_bias.empty:
        runs = runs[runs["penalize_bias"] == baseline_bias.mode()[0]]
    return runs.assign(
        family_label=runs["family"].map(family_label),
        group=runs["optimizer"].map(group_of),  # the analyze stage's optimizer groups
        variant=_variant(runs),
        config_label=[config_label(c, o, f) for c, o, f in zip(runs["config"], runs["optimizer"], runs["family"])],
    )


def _variant(runs: pd.DataFrame) -> pd.Series:
    """The line style of a row: its optimizer, plus whatever tells two configs of a family at one strength apart."""
    variant = runs["optimizer"].astype(str)
    activity = runs["family"] == "activity"
    variant = variant.where(~activity, variant + np.where(runs["act_l1"] > 0, ", activity L1", ", activity L2"))
    layers = runs["dropout_layers"].astype(str)
    uneven = (runs["family"] == "dropout") & layers.str.split(";").map(lambda ps: len(set(ps)) > 1)
    return variant.where(~uneven, variant + ", p per layer " + layers)


def config_label(config: str, optimizer: str, family: str) -> str:
    """The figures' name of a config: optimizer and family, above its settings ("selected per split"
    for an arm)."""
    settings = [part for part in config.split("/")[2:] if part not in ("bias", "early_stopped")]
    settings = [f"selected {part.replace('-', ' ')}" if part == ARM else part for part in settings]
    return f"{optimizer} · {family_label(family)}" + (f"\n{settings[0].replace(',', ', ')}" if settings else "")


def _rows_of(table: pd.DataFrame, dataset: str, name: str) -> pd.DataFrame:
    rows = table[table["dataset"] == dataset]
    if rows.empty:
        raise DataError(f"{TABLES_DIR / name}.csv: no rows for dataset {dataset!r}; run the analyze stage first")
    return rows


def _read_weights(path: Path) -> Weights:
    try:
        stored = torch.load(path, weights_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the train stage first (dvc repro)") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        raise DataError(f"{path}: not a readable weights file ({error})".replace("\n", " ")) from None
    try:
        members = [int(m) for m in stored["members"]]
        layers = [layer["weight"].numpy() for layer in stored["layers"]]
    except (TypeError, KeyError, AttributeError):
        raise DataError(f"{path}: expected {{'members': [...], 'layers': [{{'weight': (M, out, in)}}, ...]}}") from None
    shapes = [w.shape for w in layers]
    if not layers or any(len(s) != 3 or s[0] != len(members) for s in shapes):
        raise DataError(f"{path}: weight shapes {shapes}; expected (M, out, in) with M = {len(members)} members")
    return Weights(row={m: i for i, m in enumerate(members)}, layers=layers)


def _selected_members(runs: pd.DataFrame, arms: pd.DataFrame, weights: Weights, path: Path) -> pd.DataFrame:
    """The members that stand for each family's selected configuration or arm (the arms table), the
    baselines among them, each labelled with the selected name; an arm's members keep the line style
    of its family. The early-stopping baseline has no members of its own (the analysis reads the
    baseline's curves at another epoch), so the figures of members leave it to the tables and the
    ranks of figure 10; the linear references are not in the main grid (no hidden layer), so they
    are left to the tables too."""
    arms = arms[~arms["family"].isin([early_stopping.FAMILY, LINEAR])]
    unknown = sorted(set(arms["member"]) - set(runs.loc[runs["status"] == "ok", "member"]))
    if unknown:
        raise DataError(
            f"{TABLES_DIR / 'arms.csv'}: members {unknown[:10]} are not finished members of the main grid of "
            f"{runs_path(runs['dataset'].iloc[0])}; expected the analyze stage's selection"
        )
    names = arms.set_index("member")["selected"]
    members = runs[runs["member"].isin(names.index)]
    members = members.assign(trained_config=members["config"], config=members["member"].map(names))
    arm = members["config"] != members["trained_config"]
    members.loc[arm, "variant"] = members.loc[arm, "optimizer"]
    members.loc[arm, "config_label"] = [
        config_label(c, o, f)
        for c, o, f in zip(members.loc[arm, "config"], members.loc[arm, "optimizer"], members.loc[arm, "family"])
    ]
    missing = sorted(set(members["member"]) - set(weights.row))
    if missing:
        raise DataError(
            f"{path}: members {missing[:10]} are in runs.csv but have no weights; expected every member of the grid"
        )
    order = members["family"].map(FAMILIES.index)
    return members.assign(_order=order).sort_values(["group", "_order", "optimizer", "seed"]).drop(columns="_order")


def _feature_names(dataset: str, inputs: int) -> list[str]:
    """Names of the input features of a tabular dataset (8 inputs: the Pima table)."""
    if inputs != len(PIMA_FEATURES):
        return []
    path = prepared_paths(dataset)[1]
    if not path.exists():
        return list(PIMA_FEATURES)
    try:
        names = json.loads(path.read_text()).get("feature_names", list(PIMA_FEATURES))
    except (json.JSONDecodeError, AttributeError):
        raise DataError(f"{path}: not a JSON object; expected the prepare stage's metadata") from None
    if not (isinstance(names, list) and len(names) == inputs and all(isinstance(n, str) for n in names)):
        raise DataError(f"{path}: feature_names is {names!r}; expected {inputs} strings, one per input")
    return names

"""One dataset's trained grid as the analysis sees it: runs.csv read, checked and grouped by config.

A configuration ("config") is trained once per seed; rows of two configs are paired by seed (an
inner join of their `ok` members: diverged members are counted, never averaged in). An `ok` member
whose structure measures (results.STRUCTURE_COLUMNS) are NaN, e.g. NaN weights that did not make
its loss diverge, is left out of the analyses of those measures and counted as `unmeasured`.
dead_fraction is derived here: dead_units over the network's hidden units. Optimizer
groups: adam (which includes the adamw family) and sgd; each is compared against its own
baseline, the config of family none. Configs with penalize_bias=True (names ending "/bias") are
only the H6 ablation. A group whose baseline has no `ok` member cannot be compared against: it is
"lost", and the hypotheses say so instead of judging it. The cells of the learning-rate ×
strength maps (grid "map") are left out here: only H5 reads them (pipelines/analysis/maps.py). The
linear references (grid and family "linear", results.LINEAR) are in: one config per group, selected
and reported beside the networks, paired by seed, but no arm of the hypotheses (H4 leaves them out)
and without structure measures (no hidden layer), which are therefore not counted as unmeasured.
The selection (pipelines/analysis/selection.py) may add arms: a family selected within each data
split whose splits chose differently, read like a config but made of other configs' members.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.analysis import early_stopping
from pipelines.core import results
from pipelines.core.errors import DataError


@dataclass(frozen=True)
class Grid:
    """One dataset's members: `ok` rows by config, and one row of facts per config."""

    dataset: str
    path: Path
    ok: dict[str, pd.DataFrame]  # config -> its ok rows, indexed by seed
    configs: pd.DataFrame  # index config: family, optimizer, group, strength, penalize_bias, arm, ...
    sparsity: list[str]  # the frac_below_<threshold> columns, smallest threshold first

    def values(self, config: str, metric: str) -> pd.Series:
        """The config's values of a metric by seed. A structure measure is left out where it is
        missing (NaN: not measured, counted in the exclusions table) or absent from runs.csv."""
        frame = self.ok.get(config)
        if frame is None or metric not in frame:
            return pd.Series(dtype=float)
        return frame[metric].astype(float).dropna()

    def paired(self, a: str, b: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Values of a and b on the seeds both have."""
        joined = pd.concat(
            [self.values(a, metric).rename("a"), self.values(b, metric).rename("b")], axis=1, join="inner"
        ).sort_index()
        return joined["a"].to_numpy(), joined["b"].to_numpy()

    def matrix(self, configs: list[str], metric: str) -> np.ndarray:
        """Seeds (rows) shared by every config × configs (columns)."""
        columns = [self.values(c, metric).rename(c) for c in configs]
        return pd.concat(columns, axis=1, join="inner").sort_index().to_numpy()

    def groups(self) -> list[str]:
        """The optimizer groups that can be analysed: those with a baseline member that finished."""
        return [group for group in self._all_groups() if group not in self.lost()]

    def lost(self) -> dict[str, str]:
        """The groups that cannot be analysed, each with the reason."""
        c = self.configs
        return {
            group: f"{group}: every member of baseline {self._baselines(group)[0]} diverged, so the group "
            "cannot be compared against it"
            for group in self._all_groups()
            if (c.loc[self._baselines(group), "n_seeds"] == 0).all()
        }

    def family(self, group: str, family: str) -> pd.DataFrame:
        """The group's configs of a family that trained at least one seed, weakest first."""
        c = self.configs
        chosen = c[
            (c["group"] == group) & (c["family"] == family) & ~c["penalize_bias"] & ~c["arm"] & (c["n_seeds"] > 0)
        ]
        return chosen.sort_values(["strength", "config"])

    def trained(self) -> pd.DataFrame:
        """The configs that were trained (or read at another epoch): every config but the arms."""
        return self.configs[~self.configs["arm"]]

    def with_arms(self, arms: dict[str, pd.DataFrame]) -> Grid:
        """This grid with each arm (pipelines/analysis/selection.py: per seed, the member of the
        config its split chose, indexed by seed) as a config of its own, marked `arm` in configs and
        never listed by `family`. An arm's rows keep the config each came from; its strength is the
        median of theirs."""
        if not arms:
            return self
        rows = pd.concat([members.reset_index().assign(config=name) for name, members in arms.items()])
        facts = _config_facts(rows, rows)
        facts["strength"] = rows.groupby("config")["strength"].median().reindex(facts.index)
        facts[results.STRENGTH_COLUMNS] = float("nan")
        facts["arm"] = True
        return replace(self, ok=self.ok | arms, configs=pd.concat([self.configs, facts]))

    def baseline(self, group: str) -> str:
        return str(self.family(group, "none").index[0])

    def _all_groups(self) -> list[str]:
        return sorted(self.configs.loc[~self.configs["penalize_bias"], "group"].unique())

    def _baselines(self, group: str) -> list[str]:
        c = self.configs
        return sorted(c.index[(c["group"] == group) & (c["family"] == "none") & ~c["penalize_bias"]])


def load_grid(path: Path, dataset: str, curves: Path | None = None, early_stopped: bool = False) -> Grid:
    """Read and validate one dataset's runs.csv; every problem is a DataError naming the file.
    With `curves` (its curves.csv) the grid gains each group's early-stopping baseline, or, when
    `early_stopped`, every member is read at its early-stopped epoch instead
    (pipelines/analysis/early_stopping.py)."""
    every = results.read_runs(path)
    runs = pd.concat([results.main_grid(every), results.linear_grid(every)], ignore_index=True)
    runs["penalize_bias"] = runs["penalize_bias"].astype(str).str.lower() == "true"  # bool or text
    _check_members(runs, path)
    ok = runs[runs["status"] == "ok"].copy()
    _check_metrics(ok, path)
    if "dead_units" in ok:
        widths = ok["hidden"].fillna("").astype(str).str.split("-")  # empty for a linear reference
        hidden_units = widths.map(lambda ws: sum(int(w) for w in ws if w))
        ok["dead_fraction"] = pd.to_numeric(ok["dead_units"], errors="coerce") / hidden_units.where(hidden_units > 0)
    if curves is not None:
        runs, ok = _with_early_stopping(runs, ok, curves, early_stopped)
    configs = _config_facts(runs, ok)
    _check_baselines(configs, path)
    by_config = {config: frame.set_index("seed") for config, frame in ok.groupby("config")}
    return Grid(dataset, path, by_config, configs, results.sparsity_columns(runs))


def _with_early_stopping(
    runs: pd.DataFrame, ok: pd.DataFrame, path: Path, early_stopped: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """runs and ok rows with the early-stopping baseline added, or every ok row read early-stopped
    (then the baseline would be none itself, so it is not added)."""
    try:
        curves = results.read_curves(path)
        if early_stopped:
            return runs, early_stopping.read_at_best(ok, curves)
        stopped = early_stopping.baseline(ok, curves)
    except ValueError as error:
        raise DataError(f"{path}: {error}") from None
    return pd.concat([runs, stopped], ignore_index=True), pd.concat([ok, stopped], ignore_index=True)


def _check_members(runs: pd.DataFrame, path: Path) -> None:
    results.check_statuses(runs, path)
    repeated = runs[runs.duplicated(["config", "seed"])]
    if not repeated.empty:
        row = repeated.iloc[0]
        raise DataError(
            f"{path}: config {row['config']!r}, seed {row['seed']} appears more than once; "
            "expected one member per config and seed"
        )
    facts = runs.groupby("config")[["family", "optimizer", "strength", "penalize_bias"]].nunique()
    for column in facts.columns:
        varying = facts.index[facts[column] > 1]
        if len(varying):
            raise DataError(f"{path}: config {varying[0]!r} has several values of {column}; expected one per config")


def _check_metrics(ok: pd.DataFrame, path: Path) -> None:
    """A NaN or non-number in an ok row would be averaged silently: refuse it. One NaN is defined
    instead: the trainer's Hoyer sparsity of a network whose weights are all exactly 0 (a strong
    proximal L1 can zero them all) is 0/0, and it is 1, maximally sparse, as pipelines/training/
    pruning.py defines it per layer."""
    all_zero = pd.to_numeric(ok["weight_l1"], errors="coerce") == 0
    ok.loc[all_zero & ok["hoyer"].isna(), "hoyer"] = 1.0
    for column in results.METRIC_COLUMNS + results.sparsity_columns(ok):
        numbers = pd.to_numeric(ok[column], errors="coerce")
        if numbers.isna().any():
            row = ok[numbers.isna()].iloc[0]
            raise DataError(
                f"{path}: config {row['config']!r}, seed {row['seed']}: {column} is "
                f"{row[column]!r} in an 'ok' row; expected a number (a failed member "
                "must have status 'diverged')"
            )
        ok[column] = numbers


def _check_baselines(configs: pd.DataFrame, path: Path) -> None:
    """Every group needs a baseline config; one whose members all diverged is a lost group, not an error."""
    unpenalized = configs[~configs["penalize_bias"]]
    if unpenalized.empty:
        raise DataError(
            f"{path}: every config has penalize_bias=True; expected configs with "
            "penalize_bias=False, baselines included (the /bias configs are only an ablation)"
        )
    for group, members in unpenalized.groupby("group"):
        if (members["family"] != "none").all():
            raise DataError(
                f"{path}: optimizer group {group!r} has no baseline config (family 'none'); "
                "expected one per optimizer group"
            )


def _config_facts(runs: pd.DataFrame, ok: pd.DataFrame) -> pd.DataFrame:
    grouped = runs.groupby("config")
    facts = grouped[
        ["family", "optimizer", "strength", "penalize_bias", "dropout_layers", *results.STRENGTH_COLUMNS]
    ].first()
    facts["group"] = facts["optimizer"].map(results.group_of)
    facts["members"] = grouped.size()
    diverged = runs[runs["status"] == "diverged"].groupby("config")["seed"]
    facts["diverged"] = diverged.size().reindex(facts.index, fill_value=0)
    seeds = diverged.agg(lambda s: ";".join(map(str, sorted(s))))
    facts["diverged_seeds"] = [seeds.get(config, "") for config in facts.index]
    means = ok.groupby("config")[["val_acc", "test_acc"]].mean()
    facts["val_acc_mean"] = means["val_acc"].reindex(facts.index)
    facts["test_acc_mean"] = means["test_acc"].reindex(facts.index)
    facts["n_seeds"] = ok.groupby("config").size().reindex(facts.index, fill_value=0)
    structure = [c for c in results.STRUCTURE_COLUMNS if c in ok]
    missing = ok[ok[structure].apply(pd.to_numeric, errors="coerce").isna().any(axis=1)] if structure else ok[:0]
    # By design: the early-stopped weights are not kept, and a linear reference has no hidden layer to measure.
    missing = missing[~missing["family"].isin([early_stopping.FAMILY, results.LINEAR])]
    facts["unmeasured"] = missing.groupby("config").size().reindex(facts.index, fill_value=0)
    unmeasured = missing.groupby("config")["seed"].agg(lambda s: ";".join(map(str, sorted(s))))
    facts["unmeasured_seeds"] = [unmeasured.get(config, "") for config in facts.index]
    facts["arm"] = False
    facts.insert(0, "config", facts.index)
    facts.index.name = None  # the config is both the index and a column
    return facts

"""The analyze stage: hypotheses H1–H6 tested on every dataset, paired by seed, corrected.

    python -m pipelines.analyze

Reads reports/results/<dataset>/runs.csv for every dataset in pipelines.params.DATASETS (through
pipelines.results.read_runs; a missing file is an error naming it) and the params keys
analyze.alpha, analyze.equivalence_margin, analyze.bootstrap_resamples and analyze.seed. Every
hypothesis concerns the members' final values, so curves.csv is not read.

Design. A configuration ("config") is trained once per seed; rows of two configs are paired by
seed (inner join after excluding diverged members, which are counted in `exclusions` and never
averaged in). Optimizer groups: adam (which includes the adamw family, optimizer "adamw") and
sgd; each has its own baseline config, family none, which every comparison in the group uses.
Configs with penalize_bias=True (names ending "/bias") appear only in H6, against their partner
(the same name without "/bias"). The statistics are those of pipelines/statistics.py:
two-sided Wilcoxon signed-rank as the primary test, paired t-test beside it, rank-biserial and
d_z effect sizes, a BCa bootstrap interval (level 1 − alpha) of the mean difference.

Selection. Each family's strength is selected on validation: the config with the highest mean
val_acc over its seeds, ties to the smaller strength (then the config name). Matching (H1): the
strongest config of a family whose mean val_acc is at least the baseline's minus the tolerance
(1 point); if none is, the config with the highest mean val_acc. Test accuracy is only reported.

Corrections. Benjamini–Hochberg within each dataset over its whole family of tests: the Wilcoxon
p of every comparison and Page's p of every trend (bh_p). Holm within each H4 family: a group's
validation-selected configs against its baseline (holm_p; NaN outside such a family). TOST p and
Friedman's p are not adjusted: they answer other questions (equivalence; a gate before Holm).

Verdicts. Each hypothesis is a list of checks. Supported: every check passes. Not supported: a
check that could pass fails. Inconclusive: no check fails but some cannot be decided (fewer seeds
than reaching alpha needs, or configs missing). A paired check passes when its adjusted p is
below alpha with the difference in the predicted direction; it is undecided when its smallest
attainable p (two-sided exact Wilcoxon: 2/2^n, times the family size under Holm; Page:
1/(m!)^n for n seeds and m levels) exceeds alpha.

Outputs: reports/tables/<name>.csv, .md and .tex for each table below, and reports/metrics.json.
  comparisons  one paired test per row: dataset, hypothesis, scope (per_strength, equal_strength,
               matched, selected, ablation), metric, a, b, family_a, family_b, optimizer (group),
               predicted (greater, less, different, or empty: descriptive), n, mean_a, mean_b,
               mean_diff (a − b), ci_low, ci_high, ci_method, wilcoxon_p, ttest_p, holm_family,
               holm_p, bh_p, rank_biserial, cohens_dz, p_a_beats_b (ties half), p_beats_ci_low,
               p_beats_ci_high (Wilson), min_attainable_p, can_reach_alpha, note
  selected     the validation-selected config of each family per group, baseline included with
               strength 0: dataset, optimizer, family, config, strength, val_acc_mean,
               test_acc_mean, test_acc_ci_low, test_acc_ci_high, n_seeds, n_diverged
  matched      H1's configs at matched validation accuracy: dataset, optimizer, family, config,
               strength, val_acc_mean, baseline_val_acc_mean, within_tolerance, rule
  ranking      H4: dataset, optimizer, family, config, mean_rank (1 = best test accuracy),
               test_acc_mean, friedman_statistic, friedman_p, n_seeds, note
  trends       Page's trend tests (H2, H3): dataset, hypothesis, optimizer, family, metric,
               direction, levels (strengths, baseline as 0), level_means, page_L, page_p, bh_p,
               min_attainable_p, n_seeds, monotone (the level means move only in the predicted
               direction), note
  equivalence  paired-t TOST (H5, H6): dataset, hypothesis, optimizer, a, b, metric (test_acc,
               or weight_l2_relative = (a − b) / b per seed), margin, n, mean_diff, tost_p,
               equivalent (tost_p < alpha), note
  exclusions   dataset, config, family, optimizer, members, diverged, diverged_seeds
  verdicts     dataset, hypothesis, title, verdict, rule, evidence
metrics.json: {dataset: {members, diverged, seeds, baseline_test_acc, best_family, best_optimizer,
best_config, best_test_acc, H1: {verdict, ...headline numbers}, ..., H6: {...}}}. The best family
is the validation-selected config with the highest mean val_acc over all groups (selection stays
on validation); baseline_test_acc is the baseline of its group. Headline numbers (accuracies and
their differences as fractions; <g> an optimizer group, <f> l1 or prox_l1):
  H1  threshold (the largest); at matched val_acc: <g>_<f>_frac_below, <g>_<f>_hoyer,
      <g>_<f>_bh_p_vs_none, <g>_<f>_bh_p_vs_l2, <g>_<f>_test_acc_diff (vs none), and
      <g>_none_frac_below, <g>_none_hoyer, <g>_l2_frac_below, <g>_l2_hoyer
  H2  <g>_page_p, <g>_bh_p, <g>_monotone, <g>_weight_l2_none, <g>_weight_l2_strongest,
      l2_members_with_exact_zeros
  H3  <g>_<gap>_page_p, <g>_<gap>_bh_p, <g>_<gap>_none, <g>_<gap>_strongest (gap: gap_acc,
      gap_loss), <g>_selected_p, <g>_test_acc_diff and <g>_test_acc_bh_p (selected p vs none)
  H4  <g>_friedman_p, <g>_top_ranked, <g>_better_than_none, <g>_worse_than_none (Holm)
  H5  <g>_equal_strength_pairs, <g>_equivalent_pairs, <g>_max_abs_test_acc_diff, <g>_max_tost_p,
      <g>_l2_vs_adamw_test_acc_diff, <g>_l2_vs_adamw_bh_p
  H6  pairs, equivalent_pairs, max_abs_test_acc_diff, unpaired
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipelines.core import params
from pipelines.core import results
from pipelines.analysis import inference
from pipelines.core.errors import DataError, stage
from pipelines.core.files import atomic_path, write_json
from pipelines.core.params import AnalyzeParams

L1_FAMILIES = ("l1", "prox_l1")
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


# --- the grid of one dataset ------------------------------------------------------------------

@dataclass(frozen=True)
class Grid:
    """One dataset's members: `ok` rows by config, and one row of facts per config."""

    dataset: str
    path: Path
    ok: dict[str, pd.DataFrame]  # config -> its ok rows, indexed by seed
    configs: pd.DataFrame  # index config: family, optimizer, group, strength, penalize_bias, ...
    sparsity: list[str]  # the frac_below_<threshold> columns, smallest threshold first

    def values(self, config: str, metric: str) -> pd.Series:
        frame = self.ok.get(config)
        return pd.Series(dtype=float) if frame is None else frame[metric].astype(float)

    def paired(self, a: str, b: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Values of a and b on the seeds both have."""
        joined = pd.concat([self.values(a, metric).rename("a"), self.values(b, metric).rename("b")],
                           axis=1, join="inner").sort_index()
        return joined["a"].to_numpy(), joined["b"].to_numpy()

    def matrix(self, configs: list[str], metric: str) -> np.ndarray:
        """Seeds (rows) shared by every config × configs (columns)."""
        columns = [self.values(c, metric).rename(c) for c in configs]
        return pd.concat(columns, axis=1, join="inner").sort_index().to_numpy()

    def groups(self) -> list[str]:
        """Optimizer groups, each with its baseline (penalize_bias configs are only H6's)."""
        return sorted(self.configs.loc[~self.configs["penalize_bias"], "group"].unique())

    def family(self, group: str, family: str) -> pd.DataFrame:
        """The group's configs of a family that trained at least one seed, weakest first."""
        c = self.configs
        chosen = c[(c["group"] == group) & (c["family"] == family) & ~c["penalize_bias"] & (c["n_seeds"] > 0)]
        return chosen.sort_values(["strength", "config"])

    def baseline(self, group: str) -> str:
        return self.family(group, "none").index[0]


def load_grid(dataset: str) -> Grid:
    """Read and validate one dataset's runs.csv; every problem is a DataError naming the file."""
    path = results.runs_path(dataset)
    runs = results.read_runs(path)
    runs["penalize_bias"] = runs["penalize_bias"].astype(str).str.lower() == "true"  # bool or text
    _check_members(runs, path)
    ok = runs[runs["status"] == "ok"].copy()
    _check_metrics(ok, path)
    configs = _config_facts(runs, ok)
    _check_baselines(configs, path)
    by_config = {config: frame.set_index("seed") for config, frame in ok.groupby("config")}
    return Grid(dataset, path, by_config, configs, results.sparsity_columns(runs))


def _check_members(runs: pd.DataFrame, path: Path) -> None:
    bad = runs[~runs["status"].isin(["ok", "diverged"])]
    if not bad.empty:
        row = bad.iloc[0]
        raise DataError(f"{path}: config {row['config']!r}, seed {row['seed']}: status {row['status']!r}; "
                        "expected 'ok' or 'diverged'")
    repeated = runs[runs.duplicated(["config", "seed"])]
    if not repeated.empty:
        row = repeated.iloc[0]
        raise DataError(f"{path}: config {row['config']!r}, seed {row['seed']} appears more than once; "
                        "expected one member per config and seed")
    facts = runs.groupby("config")[["family", "optimizer", "strength", "penalize_bias"]].nunique()
    for column in facts.columns:
        varying = facts.index[facts[column] > 1]
        if len(varying):
            raise DataError(f"{path}: config {varying[0]!r} has several values of {column}; "
                            "expected one per config")


def _check_metrics(ok: pd.DataFrame, path: Path) -> None:
    """A NaN or non-number in an ok row would be averaged silently: refuse it."""
    for column in results.METRIC_COLUMNS + results.sparsity_columns(ok):
        numbers = pd.to_numeric(ok[column], errors="coerce")
        if numbers.isna().any():
            row = ok[numbers.isna()].iloc[0]
            raise DataError(f"{path}: config {row['config']!r}, seed {row['seed']}: {column} is "
                            f"{row[column]!r} in an 'ok' row; expected a number (a failed member "
                            "must have status 'diverged')")
        ok[column] = numbers


def _check_baselines(configs: pd.DataFrame, path: Path) -> None:
    unpenalized = configs[~configs["penalize_bias"]]
    if unpenalized.empty:
        raise DataError(f"{path}: every config has penalize_bias=True; expected configs with "
                        "penalize_bias=False, baselines included (the /bias configs are only an ablation)")
    for group, members in unpenalized.groupby("group"):
        baselines = members[members["family"] == "none"]
        if baselines.empty:
            raise DataError(f"{path}: optimizer group {group!r} has no baseline config (family 'none'); "
                            "expected one per optimizer group")
        if (baselines["n_seeds"] == 0).all():
            raise DataError(f"{path}: every member of baseline {baselines.index[0]!r} diverged; "
                            "expected at least one 'ok' member to compare against")


def _config_facts(runs: pd.DataFrame, ok: pd.DataFrame) -> pd.DataFrame:
    grouped = runs.groupby("config")
    facts = grouped[["family", "optimizer", "strength", "penalize_bias", "dropout_layers"]].first()
    facts["group"] = facts["optimizer"].map(lambda o: results.GROUP_OF.get(o, o))
    facts["members"] = grouped.size()
    diverged = runs[runs["status"] == "diverged"].groupby("config")["seed"]
    facts["diverged"] = diverged.size().reindex(facts.index, fill_value=0)
    seeds = diverged.agg(lambda s: ";".join(map(str, sorted(s))))
    facts["diverged_seeds"] = [seeds.get(config, "") for config in facts.index]
    means = ok.groupby("config")[["val_acc", "test_acc"]].mean()
    facts["val_acc_mean"] = means["val_acc"].reindex(facts.index)
    facts["test_acc_mean"] = means["test_acc"].reindex(facts.index)
    facts["n_seeds"] = ok.groupby("config").size().reindex(facts.index, fill_value=0)
    facts.insert(0, "config", facts.index)
    facts.index.name = None  # the config is both the index and a column
    return facts


# --- selection on validation, matching ----------------------------------------------------------

SELECTED_COLUMNS = ["dataset", "optimizer", "family", "config", "strength", "val_acc_mean", "test_acc_mean",
                    "test_acc_ci_low", "test_acc_ci_high", "n_seeds", "n_diverged"]
MATCHED_COLUMNS = ["dataset", "optimizer", "family", "config", "strength", "val_acc_mean",
                   "baseline_val_acc_mean", "within_tolerance", "rule"]


def select(grid: Grid, settings: AnalyzeParams) -> pd.DataFrame:
    """Each family's validation-selected config per optimizer group (the baseline included)."""
    rows = []
    for group in grid.groups():
        for family in results.FAMILIES:
            candidates = grid.family(group, family)
            if candidates.empty:
                continue
            best = candidates.sort_values(["val_acc_mean", "strength", "config"],
                                          ascending=[False, True, True]).iloc[0]
            ci = inference.mean_interval(grid.values(best["config"], "test_acc").to_numpy(), level=1 - settings.alpha,
                                          resamples=settings.bootstrap_resamples, seed=settings.seed)
            rows.append({"dataset": grid.dataset, "optimizer": group, "family": family, "config": best["config"],
                         "strength": 0.0 if family == "none" else float(best["strength"]),
                         "val_acc_mean": best["val_acc_mean"], "test_acc_mean": best["test_acc_mean"],
                         "test_acc_ci_low": ci.low, "test_acc_ci_high": ci.high,
                         "n_seeds": best["n_seeds"], "n_diverged": best["diverged"]})
    return pd.DataFrame(rows, columns=SELECTED_COLUMNS)


def matching_rule(tolerance: float) -> str:
    return (f"the strongest config whose mean val_acc is at least the baseline's minus {tolerance:g}; "
            "if none is, the config with the highest mean val_acc")


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
            chosen = within.iloc[-1] if not within.empty else candidates.sort_values(
                ["val_acc_mean", "strength"], ascending=[True, False]).iloc[-1]
            rows.append({"dataset": grid.dataset, "optimizer": group, "family": family, "config": chosen["config"],
                         "strength": chosen["strength"], "val_acc_mean": chosen["val_acc_mean"],
                         "baseline_val_acc_mean": baseline_val, "within_tolerance": not within.empty,
                         "rule": matching_rule(tolerance)})
    return pd.DataFrame(rows, columns=MATCHED_COLUMNS)


def _config_of(table: pd.DataFrame, group: str, family: str) -> str | None:
    """The config a selected/matched table names for (group, family), if any."""
    found = table[(table["optimizer"] == group) & (table["family"] == family)]
    return None if found.empty else found["config"].iloc[0]


# --- the three kinds of test ----------------------------------------------------------------------

COMPARISON_COLUMNS = [
    "dataset", "hypothesis", "scope", "metric", "a", "b", "family_a", "family_b", "optimizer", "predicted",
    "n", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "ci_method", "wilcoxon_p", "ttest_p",
    "holm_family", "holm_p", "bh_p", "rank_biserial", "cohens_dz", "p_a_beats_b", "p_beats_ci_low",
    "p_beats_ci_high", "min_attainable_p", "can_reach_alpha", "note",
]
TREND_COLUMNS = ["dataset", "hypothesis", "optimizer", "family", "metric", "direction", "levels", "level_means",
                 "first_mean", "last_mean", "page_L", "page_p", "bh_p", "min_attainable_p", "n_seeds", "monotone",
                 "note"]
EQUIVALENCE_COLUMNS = ["dataset", "hypothesis", "optimizer", "a", "b", "metric", "margin", "n", "mean_diff",
                       "tost_p", "equivalent", "note"]


@dataclass(frozen=True)
class Spec:
    """One paired comparison to run: a − b on a metric, with what the hypothesis predicts."""

    hypothesis: str
    scope: str
    metric: str
    a: str
    b: str
    predicted: str = ""  # greater | less | different | "" (descriptive)
    holm_family: str = ""


def compare(grid: Grid, spec: Spec, settings: AnalyzeParams) -> dict:
    a, b = grid.paired(spec.a, spec.b, spec.metric)
    result = inference.paired_comparison(a, b, alpha=settings.alpha, resamples=settings.bootstrap_resamples,
                                          seed=settings.seed)
    facts = grid.configs
    return {"dataset": grid.dataset, "hypothesis": spec.hypothesis, "scope": spec.scope, "metric": spec.metric,
            "a": spec.a, "b": spec.b, "family_a": facts.at[spec.a, "family"], "family_b": facts.at[spec.b, "family"],
            "optimizer": facts.at[spec.a, "group"], "predicted": spec.predicted, "holm_family": spec.holm_family,
            **vars(result)}


def trend(grid: Grid, hypothesis: str, family: str, configs: list[str], metric: str) -> dict:
    """Page's test that `metric` falls along configs (baseline first, then rising strength)."""
    matrix = grid.matrix(configs, metric)
    result = inference.page_trend(matrix, decreasing=True)
    means = matrix.mean(axis=0) if len(matrix) else np.full(len(configs), math.nan)
    strengths = [0.0, *grid.configs.loc[configs[1:], "strength"]]
    return {"dataset": grid.dataset, "hypothesis": hypothesis, "optimizer": grid.configs.at[configs[0], "group"],
            "family": family, "metric": metric, "direction": "decreasing",
            "levels": ";".join(f"{s:g}" for s in strengths), "level_means": ";".join(f"{m:.6g}" for m in means),
            "first_mean": means[0], "last_mean": means[-1], "page_L": result.statistic, "page_p": result.p,
            "min_attainable_p": result.min_attainable_p, "n_seeds": len(matrix),
            "monotone": inference.is_monotone(means, decreasing=True), "note": result.note}


def equivalence(grid: Grid, hypothesis: str, a: str, b: str, metric: str, settings: AnalyzeParams,
                relative: bool = False) -> dict:
    """TOST of a ≈ b within the margin, on the difference or (relative) on (a − b) / b per seed."""
    x, y = grid.paired(a, b, metric)
    d = (x - y) / y if relative else inference.differences(x, y)
    p = inference.tost_p(d, settings.equivalence_margin)
    return {"dataset": grid.dataset, "hypothesis": hypothesis, "optimizer": grid.configs.at[a, "group"], "a": a,
            "b": b, "metric": f"{metric}_relative" if relative else metric, "margin": settings.equivalence_margin,
            "n": d.size, "mean_diff": float(np.mean(d)) if d.size else math.nan, "tost_p": p,
            "equivalent": bool(p < settings.alpha), "note": "" if d.size >= 2 else f"{d.size} pairs: TOST needs 2"}


# --- the hypotheses: which tests each one needs ---------------------------------------------------

@dataclass
class Plan:
    """The tests of one dataset, before they are run and corrected."""

    specs: list[Spec]
    trends: list[dict]
    equivalence: list[dict]
    ranking: list[dict]


def plan(grid: Grid, selected: pd.DataFrame, matched: pd.DataFrame, settings: AnalyzeParams) -> Plan:
    tests = Plan([], [], [], [])
    for group in grid.groups():
        _plan_h1(grid, group, matched, tests)
        _plan_h2(grid, group, tests)
        _plan_h3(grid, group, selected, tests)
        _plan_h4(grid, group, selected, tests)
        _plan_h5(grid, group, selected, settings, tests)
    _plan_h6(grid, settings, tests)
    # A pair can be both "matched" and "equal_strength": run it once, under the first scope.
    unique: dict[tuple[str, str, str, str], Spec] = {}
    for spec in tests.specs:
        unique.setdefault((spec.hypothesis, spec.metric, spec.a, spec.b), spec)
    tests.specs = list(unique.values())
    return tests


def _plan_h1(grid: Grid, group: str, matched: pd.DataFrame, tests: Plan) -> None:
    sparsity = [*grid.sparsity, "exact_zeros", "hoyer"]
    none = grid.baseline(group)
    l2 = grid.family(group, "l2")
    l2_at = dict(zip(l2["strength"], l2.index))
    matched_l2 = _config_of(matched, group, "l2")
    for family in L1_FAMILIES:
        chosen = _config_of(matched, group, family)
        if chosen is not None and matched_l2 is not None:
            tests.specs += [Spec("H1", "matched", m, chosen, matched_l2, "greater") for m in sparsity]
            tests.specs.append(Spec("H1", "matched", "test_acc", chosen, matched_l2))
        for config, strength in grid.family(group, family)["strength"].items():
            tests.specs += [Spec("H1", "per_strength", m, config, none, "greater") for m in sparsity]
            tests.specs.append(Spec("H1", "per_strength", "test_acc", config, none))
            if strength in l2_at:
                tests.specs += [Spec("H1", "equal_strength", m, config, l2_at[strength], "greater") for m in sparsity]


def _plan_h2(grid: Grid, group: str, tests: Plan) -> None:
    l2 = grid.family(group, "l2")
    if l2.empty:
        return
    none = grid.baseline(group)
    tests.specs += [Spec("H2", "per_strength", "weight_l2", config, none, "less") for config in l2.index]
    tests.trends.append(trend(grid, "H2", "l2", [none, *l2.index], "weight_l2"))


def _uniform(dropout_layers: object) -> bool:
    return len(set(str(dropout_layers).split(";"))) == 1


def _plan_h3(grid: Grid, group: str, selected: pd.DataFrame, tests: Plan) -> None:
    dropout = grid.family(group, "dropout")
    if dropout.empty:
        return
    none = grid.baseline(group)
    # The ladder of p: only configs with the same p in every layer have a single place on it.
    ladder = [none, *dropout.index[dropout["dropout_layers"].map(_uniform)]]
    tests.trends += [trend(grid, "H3", "dropout", ladder, metric) for metric in ("gap_acc", "gap_loss")]
    chosen = _config_of(selected, group, "dropout")
    tests.specs += [Spec("H3", "selected", "test_acc", chosen, none, "greater"),
                    Spec("H3", "selected", "gap_acc", chosen, none, "less"),
                    Spec("H3", "selected", "gap_loss", chosen, none, "less")]


def _plan_h4(grid: Grid, group: str, selected: pd.DataFrame, tests: Plan) -> None:
    chosen = selected[selected["optimizer"] == group]
    none = grid.baseline(group)
    tests.specs += [Spec("H4", "selected", "test_acc", config, none, "greater", f"{grid.dataset}/H4/{group}")
                    for config in chosen["config"] if config != none]
    matrix = grid.matrix(list(chosen["config"]), "test_acc")
    result = inference.friedman(matrix)
    for (_, row), rank in zip(chosen.iterrows(), result.mean_ranks):
        tests.ranking.append({"dataset": grid.dataset, "optimizer": group, "family": row["family"],
                              "config": row["config"], "mean_rank": rank, "test_acc_mean": row["test_acc_mean"],
                              "friedman_statistic": result.statistic, "friedman_p": result.p,
                              "n_seeds": len(matrix), "note": result.note})


def _plan_h5(grid: Grid, group: str, selected: pd.DataFrame, settings: AnalyzeParams, tests: Plan) -> None:
    l2 = grid.family(group, "l2")
    decay = grid.family(group, "weight_decay")
    decay_at = dict(zip(decay["strength"], decay.index))
    for config, strength in l2["strength"].items():
        if strength not in decay_at:
            continue
        tests.specs += [Spec("H5", "equal_strength", m, config, decay_at[strength]) for m in ("test_acc", "weight_l2")]
        tests.equivalence += [equivalence(grid, "H5", config, decay_at[strength], "test_acc", settings),
                              equivalence(grid, "H5", config, decay_at[strength], "weight_l2", settings, relative=True)]
    coupled, decoupled = _config_of(selected, group, "l2"), _config_of(selected, group, "adamw")
    if coupled is not None and decoupled is not None:
        tests.specs += [Spec("H5", "selected", "test_acc", coupled, decoupled, "different"),
                        Spec("H5", "selected", "weight_l2", coupled, decoupled)]


def _plan_h6(grid: Grid, settings: AnalyzeParams, tests: Plan) -> None:
    facts = grid.configs
    for config in facts.index[facts["penalize_bias"] & (facts["n_seeds"] > 0)]:
        partner = config.removesuffix("/bias")
        if partner == config or partner not in facts.index or facts.at[partner, "penalize_bias"]:
            continue  # counted as unpaired in H6's evidence
        tests.specs += [Spec("H6", "ablation", m, config, partner) for m in ("test_acc", "weight_l2")]
        tests.equivalence.append(equivalence(grid, "H6", config, partner, "test_acc", settings))


# --- running and correcting -----------------------------------------------------------------------

RANKING_COLUMNS = ["dataset", "optimizer", "family", "config", "mean_rank", "test_acc_mean", "friedman_statistic",
                   "friedman_p", "n_seeds", "note"]


@dataclass(frozen=True)
class Findings:
    """Every test of one dataset, run and corrected."""

    grid: Grid
    settings: AnalyzeParams
    selected: pd.DataFrame
    matched: pd.DataFrame
    comparisons: pd.DataFrame
    trends: pd.DataFrame
    equivalence: pd.DataFrame
    ranking: pd.DataFrame

    def comparison(self, hypothesis: str, metric: str, a: str, b: str) -> pd.Series:
        c = self.comparisons
        return c[(c["hypothesis"] == hypothesis) & (c["metric"] == metric) & (c["a"] == a) & (c["b"] == b)].iloc[0]


def run(grid: Grid, settings: AnalyzeParams, tolerance: float) -> Findings:
    selected, matched = select(grid, settings), match(grid, tolerance)
    tests = plan(grid, selected, matched, settings)
    rows = [compare(grid, spec, settings)
            for spec in tqdm(tests.specs, desc=f"{grid.dataset}: paired tests", unit="test")]
    comparisons = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    trends = pd.DataFrame(tests.trends, columns=TREND_COLUMNS)
    _correct(comparisons, trends)
    return Findings(grid, settings, selected, matched, comparisons, trends,
                    pd.DataFrame(tests.equivalence, columns=EQUIVALENCE_COLUMNS),
                    pd.DataFrame(tests.ranking, columns=RANKING_COLUMNS))


def _correct(comparisons: pd.DataFrame, trends: pd.DataFrame) -> None:
    """BH over the dataset's whole family (Wilcoxon and Page p); Holm within each H4 family."""
    adjusted = inference.benjamini_hochberg(np.concatenate([comparisons["wilcoxon_p"], trends["page_p"]]))
    comparisons["bh_p"] = adjusted[:len(comparisons)]
    trends["bh_p"] = adjusted[len(comparisons):]
    comparisons["holm_p"] = math.nan
    for _, members in comparisons[comparisons["holm_family"] != ""].groupby("holm_family"):
        comparisons.loc[members.index, "holm_p"] = inference.holm(members["wilcoxon_p"].to_numpy())


# --- verdicts -------------------------------------------------------------------------------------

Check = tuple[bool | None, str]  # passed (None: cannot be decided) and, if undecided, why


@dataclass(frozen=True)
class Judgement:
    checks: list[Check]
    evidence: str
    headline: dict[str, object]  # the numbers metrics.json carries for the hypothesis

    def verdict(self) -> tuple[str, str]:
        """(verdict, why undecided); the rule is stated in VERDICT_RULE."""
        if any(passed is False for passed, _ in self.checks):
            return NOT_SUPPORTED, ""
        undecided = sorted({why for passed, why in self.checks if passed is None})
        if undecided or not self.checks:
            return INCONCLUSIVE, "; ".join(undecided) or "no configs to test"
        return SUPPORTED, ""


TITLES = {
    "H1": "L1 makes networks sparse",
    "H2": "L2 shrinks weights smoothly, without exact zeros",
    "H3": "Dropout narrows the generalization gap",
    "H4": "A regularizer at its validation-selected strength beats none on test accuracy",
    "H5": "An L2 penalty equals coupled weight decay under SGD, but not decoupled decay (AdamW) under Adam",
    "H6": "Penalizing biases leaves test accuracy unchanged",
}
VERDICT_RULE = (" Supported if every check passes; not supported if a check that could pass fails; inconclusive "
                "if none fails but some cannot be decided (too few seeds to reach alpha, or configs missing).")


def rules(settings: AnalyzeParams, tolerance: float) -> dict[str, str]:
    alpha, margin = f"{settings.alpha:g}", f"{settings.equivalence_margin:g}"
    wilcoxon = f"two-sided Wilcoxon signed-rank over seeds, BH-adjusted p < {alpha}"
    page = f"Page's trend test over seeds, BH-adjusted p < {alpha}, the baseline as"
    tost = f"paired-t TOST, margin ±{margin}, p < {alpha}"
    checks = {
        "H1": f"For each L1-type family (l1, prox_l1) per optimizer group, at matched validation accuracy "
              f"({matching_rule(tolerance)}): more weights below the largest threshold and a higher Hoyer "
              f"sparsity than none and than the matched l2 config ({wilcoxon}, difference > 0).",
        "H2": f"For l2 in each optimizer group: weight_l2 falls as the strength rises ({page} strength 0) with "
              "monotone level means, and no l2 member has exact zeros.",
        "H3": f"For dropout in each optimizer group: gap_acc and gap_loss fall as p rises ({page} p = 0; "
              "configs with one p in every layer).",
        "H4": f"In each optimizer group, at validation-selected strengths: Friedman's test over seeds rejects "
              f"equal test-accuracy ranks (p < {alpha}) and at least one family beats none on test accuracy "
              f"(Wilcoxon signed-rank, Holm-adjusted within the group, p < {alpha}, difference > 0).",
        "H5": f"Under sgd, l2 and weight_decay are equivalent on test accuracy at every strength both have "
              f"({tost}); under adam, l2 and adamw at their validation-selected strengths differ on test "
              f"accuracy ({wilcoxon}).",
        "H6": f"Every penalize_bias config is equivalent to its partner on test accuracy ({tost}).",
    }
    return {h: text + VERDICT_RULE for h, text in checks.items()}


def _paired_check(row: pd.Series, p_column: str, alpha: float, family_size: int = 1) -> Check:
    """Significant in the predicted direction; undecided when even the smallest p the seeds
    allow (times the Holm family size) cannot reach alpha."""
    bound = row["min_attainable_p"] * family_size
    if bound > alpha:
        adjusted = "a Holm-adjusted " if family_size > 1 else ""
        return None, f"{row['n']} seed pairs allow {adjusted}p ≥ {min(bound, 1.0):.3g} > alpha {alpha:g}"
    if math.isnan(row[p_column]):
        return None, row["note"]
    direction = {"greater": row["mean_diff"] > 0, "less": row["mean_diff"] < 0, "different": True}[row["predicted"]]
    return bool(row[p_column] < alpha and direction), ""


def _trend_check(row: pd.Series, alpha: float, monotone: bool) -> Check:
    if math.isnan(row["page_p"]):
        return None, row["note"]
    if row["min_attainable_p"] > alpha:
        return None, f"{row['n_seeds']} seeds allow p ≥ {row['min_attainable_p']:.3g} > alpha {alpha:g}"
    return bool(row["bh_p"] < alpha and (row["monotone"] or not monotone)), ""


def _equivalence_check(row: pd.Series) -> Check:
    return (None, row["note"]) if math.isnan(row["tost_p"]) else (bool(row["equivalent"]), "")


def _any(checks: list[Check], nothing: str) -> Check:
    """Passes when one of the checks passes."""
    if any(passed for passed, _ in checks):
        return True, ""
    undecided = [why for passed, why in checks if passed is None]
    if undecided or not checks:
        return None, undecided[0] if undecided else nothing
    return False, ""


def judge_h1(f: Findings) -> Judgement:
    alpha, near = f.settings.alpha, f.grid.sparsity[-1]
    threshold = float(near.removeprefix("frac_below_"))
    checks: list[Check] = []
    parts, headline = [], {"threshold": threshold}
    for _, m in f.matched[f.matched["family"].isin(L1_FAMILIES)].iterrows():
        group, none, config = m["optimizer"], f.grid.baseline(m["optimizer"]), m["config"]
        l2 = _config_of(f.matched, group, "l2")
        rivals = [none] if l2 is None else [none, l2]
        frac = [f.comparison("H1", near, config, b) for b in rivals]
        hoyer = [f.comparison("H1", "hoyer", config, b) for b in rivals]
        checks += [_paired_check(row, "bh_p", alpha) for row in frac + hoyer]
        cost = f.comparison("H1", "test_acc", config, none)
        key = f"{group}_{m['family']}"
        headline |= {f"{key}_frac_below": frac[0]["mean_a"], f"{key}_hoyer": hoyer[0]["mean_a"],
                     f"{key}_bh_p_vs_none": frac[0]["bh_p"], f"{key}_test_acc_diff": cost["mean_diff"],
                     f"{group}_none_frac_below": frac[0]["mean_b"], f"{group}_none_hoyer": hoyer[0]["mean_b"]}
        if l2 is not None:
            headline |= {f"{key}_bh_p_vs_l2": frac[1]["bh_p"], f"{group}_l2_frac_below": frac[1]["mean_b"],
                         f"{group}_l2_hoyer": hoyer[1]["mean_b"]}
        rival_fracs = " and ".join(f"{r['mean_b']:.3f} for {r['b']} (BH p={r['bh_p']:.2g})" for r in frac)
        rival_hoyers = " and ".join(f"{r['mean_b']:.2f}" for r in hoyer)
        parts.append(f"{config} has {frac[0]['mean_a']:.3f} of weights below {threshold:g} vs {rival_fracs}, "
                     f"Hoyer {hoyer[0]['mean_a']:.2f} vs {rival_hoyers}, test accuracy "
                     f"{100 * cost['mean_diff']:+.2f} points vs none")
    return Judgement(checks, "; ".join(parts) or "no l1 or prox_l1 configs", headline)


def judge_h2(f: Findings) -> Judgement:
    checks: list[Check] = []
    parts, headline = [], {}
    trends = f.trends[f.trends["hypothesis"] == "H2"]
    for _, t in trends.iterrows():
        group = t["optimizer"]
        checks.append(_trend_check(t, f.settings.alpha, monotone=True))
        headline |= {f"{group}_page_p": t["page_p"], f"{group}_bh_p": t["bh_p"], f"{group}_monotone": t["monotone"],
                     f"{group}_weight_l2_none": t["first_mean"], f"{group}_weight_l2_strongest": t["last_mean"]}
        parts.append(f"{group}: weight_l2 {t['first_mean']:.4g} → {t['last_mean']:.4g} over l2 strengths "
                     f"{t['levels']} (Page L={t['page_L']:.0f}, BH p={t['bh_p']:.2g}, "
                     f"{'monotone' if t['monotone'] else 'not monotone'})")
    if not trends.empty:
        zeros = [f.grid.values(c, "exact_zeros") for g in f.grid.groups() for c in f.grid.family(g, "l2").index]
        with_zeros = int(sum((z > 0).sum() for z in zeros))
        checks.append((with_zeros == 0, ""))
        headline["l2_members_with_exact_zeros"] = with_zeros
        parts.append(f"{with_zeros} of {sum(len(z) for z in zeros)} l2 members have exact zeros")
    return Judgement(checks, "; ".join(parts) or "no l2 configs", headline)


def judge_h3(f: Findings) -> Judgement:
    checks: list[Check] = []
    parts, headline = [], {}
    trends = f.trends[f.trends["hypothesis"] == "H3"]
    for group, rows in trends.groupby("optimizer"):
        gaps = []
        for _, t in rows.iterrows():
            checks.append(_trend_check(t, f.settings.alpha, monotone=False))
            headline |= {f"{group}_{t['metric']}_page_p": t["page_p"], f"{group}_{t['metric']}_bh_p": t["bh_p"],
                         f"{group}_{t['metric']}_none": t["first_mean"],
                         f"{group}_{t['metric']}_strongest": t["last_mean"]}
            gaps.append(f"{t['metric']} {t['first_mean']:.4g} → {t['last_mean']:.4g} (BH p={t['bh_p']:.2g})")
        chosen = _config_of(f.selected, group, "dropout")
        accuracy = f.comparison("H3", "test_acc", chosen, f.grid.baseline(group))
        headline |= {f"{group}_selected_p": f.grid.configs.at[chosen, "strength"],
                     f"{group}_test_acc_diff": accuracy["mean_diff"], f"{group}_test_acc_bh_p": accuracy["bh_p"]}
        parts.append(f"{group}: over p = {rows['levels'].iloc[0]}, " + ", ".join(gaps)
                     + f"; at the selected {chosen} test accuracy is {100 * accuracy['mean_diff']:+.2f} points "
                     f"vs none (BH p={accuracy['bh_p']:.2g})")
    return Judgement(checks, "; ".join(parts) or "no dropout configs", headline)


def judge_h4(f: Findings) -> Judgement:
    alpha = f.settings.alpha
    checks: list[Check] = []
    parts, headline = [], {}
    for group, ranks in f.ranking.groupby("optimizer"):
        friedman_p = ranks["friedman_p"].iloc[0]
        checks.append((None, ranks["note"].iloc[0]) if math.isnan(friedman_p) else (bool(friedman_p < alpha), ""))
        rows = f.comparisons[(f.comparisons["hypothesis"] == "H4") & (f.comparisons["optimizer"] == group)]
        size = int(rows["wilcoxon_p"].notna().sum())
        checks.append(_any([_paired_check(r, "holm_p", alpha, size) for _, r in rows.iterrows()],
                           f"{group}: no regularized config"))
        better = int(((rows["holm_p"] < alpha) & (rows["mean_diff"] > 0)).sum())
        worse = int(((rows["holm_p"] < alpha) & (rows["mean_diff"] < 0)).sum())
        top = ranks.sort_values("mean_rank").iloc[0]
        headline |= {f"{group}_friedman_p": friedman_p, f"{group}_top_ranked": top["family"],
                     f"{group}_better_than_none": better, f"{group}_worse_than_none": worse}
        parts.append(f"{group}: Friedman p={friedman_p:.2g} over {len(ranks)} configs and {ranks['n_seeds'].iloc[0]} "
                     f"seeds, top mean rank {top['family']} ({top['mean_rank']:.2f}, test accuracy "
                     f"{top['test_acc_mean']:.4f}); {better} of {len(rows)} families beat none and {worse} fall "
                     f"below it (Holm p < {alpha:g})")
    return Judgement(checks, "; ".join(parts) or "no configs", headline)


def judge_h5(f: Findings) -> Judgement:
    checks: list[Check] = []
    parts, headline = [], {}
    equal = f.equivalence[(f.equivalence["hypothesis"] == "H5") & (f.equivalence["metric"] == "test_acc")]
    for group, rows in equal.groupby("optimizer"):
        if group == "sgd":
            checks += [_equivalence_check(r) for _, r in rows.iterrows()]
        headline |= {f"{group}_equal_strength_pairs": len(rows), f"{group}_equivalent_pairs": int(rows["equivalent"].sum()),
                     f"{group}_max_abs_test_acc_diff": rows["mean_diff"].abs().max(),
                     f"{group}_max_tost_p": rows["tost_p"].max()}
        parts.append(f"under {group}, {int(rows['equivalent'].sum())} of {len(rows)} l2/weight_decay pairs at equal "
                     f"strength are equivalent on test accuracy (largest |diff| "
                     f"{100 * rows['mean_diff'].abs().max():.2f} points, largest TOST p {rows['tost_p'].max():.2g})")
    if "sgd" not in set(equal["optimizer"]):
        checks.append((None, "no sgd l2 and weight_decay configs at equal strength"))
    c = f.comparisons
    decoupled = c[(c["hypothesis"] == "H5") & (c["scope"] == "selected") & (c["metric"] == "test_acc")]
    for _, row in decoupled.iterrows():
        checks.append(_paired_check(row, "bh_p", f.settings.alpha))
        group = row["optimizer"]
        headline |= {f"{group}_l2_vs_adamw_test_acc_diff": row["mean_diff"], f"{group}_l2_vs_adamw_bh_p": row["bh_p"]}
        parts.append(f"under {group}, {row['a']} − {row['b']} = {100 * row['mean_diff']:+.2f} points test accuracy "
                     f"(BH p={row['bh_p']:.2g})")
    if decoupled.empty:
        checks.append((None, "no l2 and adamw configs under adam"))
    return Judgement(checks, "; ".join(parts) or "no configs", headline)


def judge_h6(f: Findings) -> Judgement:
    pairs = f.equivalence[f.equivalence["hypothesis"] == "H6"]
    checks = [_equivalence_check(r) for _, r in pairs.iterrows()] or [(None, "no penalize_bias config with a partner")]
    unpaired = int(f.grid.configs["penalize_bias"].sum()) - len(pairs)
    equivalent = int(pairs["equivalent"].sum())
    largest = pairs["mean_diff"].abs().max() if len(pairs) else math.nan
    evidence = (f"{equivalent} of {len(pairs)} penalize_bias configs are equivalent to their partner on test "
                f"accuracy (largest |diff| {100 * largest:.2f} points)")
    if unpaired:
        evidence += f"; {unpaired} without a partner or without an ok member"
    return Judgement(checks, evidence, {"pairs": len(pairs), "equivalent_pairs": equivalent,
                                        "max_abs_test_acc_diff": largest, "unpaired": unpaired})


JUDGES: dict[str, Callable[[Findings], Judgement]] = {
    "H1": judge_h1, "H2": judge_h2, "H3": judge_h3, "H4": judge_h4, "H5": judge_h5, "H6": judge_h6,
}


# --- the stage ------------------------------------------------------------------------------------

EXCLUSION_COLUMNS = ["dataset", "config", "family", "optimizer", "members", "diverged", "diverged_seeds"]
VERDICT_COLUMNS = ["dataset", "hypothesis", "title", "verdict", "rule", "evidence"]


def analyze_dataset(grid: Grid, settings: AnalyzeParams, tolerance: float) -> tuple[dict[str, pd.DataFrame], dict]:
    """Every table of one dataset, and its entry of metrics.json."""
    f = run(grid, settings, tolerance)
    stated = rules(settings, tolerance)
    verdicts, summary = [], _summary(grid, f.selected)
    for hypothesis, judge in JUDGES.items():
        judgement = judge(f)
        verdict, undecided = judgement.verdict()
        evidence = judgement.evidence + (f". Undecided: {undecided}" if undecided else "") + "."
        verdicts.append({"dataset": grid.dataset, "hypothesis": hypothesis, "title": TITLES[hypothesis],
                         "verdict": verdict, "rule": stated[hypothesis], "evidence": evidence})
        summary[hypothesis] = {"verdict": verdict, **judgement.headline}
    exclusions = grid.configs.assign(dataset=grid.dataset)[EXCLUSION_COLUMNS]
    tables = {"comparisons": f.comparisons, "selected": f.selected, "matched": f.matched, "ranking": f.ranking,
              "trends": f.trends, "equivalence": f.equivalence, "exclusions": exclusions.reset_index(drop=True),
              "verdicts": pd.DataFrame(verdicts, columns=VERDICT_COLUMNS)}
    return tables, _plain(summary)


def _summary(grid: Grid, selected: pd.DataFrame) -> dict:
    """The dataset's headline: the family one would pick on validation, and its test accuracy."""
    best = selected.sort_values(["val_acc_mean", "strength"], ascending=[False, True]).iloc[0]
    baseline = selected[(selected["optimizer"] == best["optimizer"]) & (selected["family"] == "none")].iloc[0]
    seeds = set().union(*(frame.index for frame in grid.ok.values()))
    return {"members": grid.configs["members"].sum(), "diverged": grid.configs["diverged"].sum(), "seeds": len(seeds),
            "baseline_test_acc": baseline["test_acc_mean"], "best_family": best["family"],
            "best_optimizer": best["optimizer"], "best_config": best["config"], "best_test_acc": best["test_acc_mean"]}


def _plain(value: object) -> object:
    """JSON-ready: numpy scalars to Python, NaN to null (NaN is not JSON)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One table from every dataset's; empty ones are left out, as they would turn every column
    into objects (and the floats would lose their formatting)."""
    return pd.concat([f for f in frames if not f.empty] or frames[:1], ignore_index=True)


def write_tables(tables: dict[str, pd.DataFrame], target: Path) -> None:
    """Each table as CSV, Markdown and LaTeX, the whole directory replaced at once."""
    with atomic_path(target) as staged:
        staged.mkdir()
        for name, frame in tables.items():
            frame.to_csv(staged / f"{name}.csv", index=False)
            (staged / f"{name}.md").write_text(frame.to_markdown(index=False, floatfmt=".4g") + "\n")
            (staged / f"{name}.tex").write_text(_latex(frame))


def _latex(frame: pd.DataFrame) -> str:
    floats = list(frame.select_dtypes("float").columns)
    styler = frame.style.hide(axis="index").format(escape="latex").format("{:.4g}", subset=floats, na_rep="")
    return styler.format_index(escape="latex", axis=1).to_latex(hrules=True)


def analyze(settings: AnalyzeParams, datasets: tuple[str, ...] = params.DATASETS) -> None:
    """Analyse every dataset, then write the tables and metrics.json; nothing is written unless
    every dataset's results are valid."""
    grids = [load_grid(dataset) for dataset in datasets]
    outputs = [analyze_dataset(grid, settings, settings.match_tolerance) for grid in grids]
    tables = {name: _stack([t[name] for t, _ in outputs]) for name in outputs[0][0]}
    write_tables(tables, results.TABLES_DIR)
    write_json(results.METRICS_FILE, {grid.dataset: summary for grid, (_, summary) in zip(grids, outputs)})


@stage
def main() -> None:
    analyze(params.load().analyze)


if __name__ == "__main__":
    main()

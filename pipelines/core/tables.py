"""The analyze stage's tables: their columns, and how they are written and read.

analyze writes each table below as reports/tables/<name>.csv, .md and .tex; figures, report and
the tests read them through `read`, which checks that every column is there.

  comparisons  one paired test per row (a − b on a metric, paired by seed): scope (per_strength,
               equal_strength, matched, selected, ablation), family_a, family_b, optimizer (the
               group), predicted (the direction a check reads: greater, less (H2: below the margin),
               different; empty: none), role (judged: a check of its
               hypothesis reads it; descriptive: outside every test family, no verdict reads it),
               n, the means, the t-interval of the mean difference, wilcoxon_p, ttest_p,
               holm_family and holm_p (NaN outside an H4 family), rank_biserial, cohens_dz (NaN
               with a note where the differences barely vary), p_a_beats_b (ties half) with its
               Wilson interval, min_attainable_p (the smallest p these seeds allow), can_reach_alpha
  selected     each family's validation-selected config per group, the baseline with strength 0:
               selected within each data split (pipelines/analysis/selection.py), so config is an
               arm (<group>/<family>/per-split) where the splits chose differently; strength (an
               arm's median), chosen (each chosen config with its count of splits), edge (where
               the mean validation optimum over every seed sits on its ladder) and splits_at_edge
  arms         per selected config or arm (selected) and seed: the split, and the member and config
               that stand for it there
  frontier     H1a/H1b: each L1-type family's and l2's frontier point per group and accuracy cost
               (pipelines/analysis/frontier.py), and whether the family's grid reaches the cost
  ranking      H4's mean ranks (1 = best test accuracy) and Friedman's test per group
  trends       Page's trend tests (H2, H3): levels (strengths, baseline as 0), level_means,
               first_mean, last_mean, monotone (the means move only in the predicted direction)
  equivalence  paired-t TOST of a ≈ b within the margin (H2: negligible; H6: test_acc)
  mechanism    H5: per seed, the per-weight slope of log(|w|/|w_none|) on log √v̂ of adam's selected l2
               and adamw configs, the weights in the fit and those left out (exact zeros), dead units
  lr_best      H5: per seed and learning rate of a map, the validation-best strength (at_edge: the
               smallest or largest of the map's strengths)
  lr_slopes    H5: per seed, the slope of log(best strength) on log(lr)
  exclusions   every config with its members, diverged members (diverged_seeds) and `ok` members
               whose structure measures are missing (unmeasured, unmeasured_seeds: left out of H1a,
               H1b and H2's tests of those measures)
  verdicts     one per dataset and hypothesis: title, finding (the sentence to cite: effect,
               interval, replicates), verdict, rule, evidence, and the headline effect: measure,
               effect, ci_low, ci_high, n (reports/metrics/<dataset>/<hypothesis>.json carry them)
  margins      each dataset's smallest effects of interest (analyze.margins): measure, margin, the
               reason, and the seed-to-seed standard deviation of the first group's baseline
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from pipelines.core.files import atomic_path
from pipelines.core.results import HEADLINES_DIR, TABLES_DIR, read_table

COLUMNS: dict[str, list[str]] = {
    "comparisons": [
        "dataset",
        "hypothesis",
        "scope",
        "metric",
        "a",
        "b",
        "family_a",
        "family_b",
        "optimizer",
        "predicted",
        "role",
        "n",
        "mean_a",
        "mean_b",
        "mean_diff",
        "ci_low",
        "ci_high",
        "wilcoxon_p",
        "ttest_p",
        "holm_family",
        "holm_p",
        "rank_biserial",
        "cohens_dz",
        "p_a_beats_b",
        "p_beats_ci_low",
        "p_beats_ci_high",
        "min_attainable_p",
        "can_reach_alpha",
        "note",
    ],
    "selected": [
        "dataset",
        "optimizer",
        "family",
        "config",
        "strength",
        "chosen",
        "val_acc_mean",
        "test_acc_mean",
        "test_acc_ci_low",
        "test_acc_ci_high",
        "n_seeds",
        "n_diverged",
        "edge",
        "splits_at_edge",
    ],
    "arms": ["dataset", "optimizer", "family", "selected", "seed", "split", "member", "config"],
    "frontier": [
        "dataset",
        "optimizer",
        "family",
        "cost",
        "config",
        "strength",
        "val_acc_mean",
        "baseline_val_acc_mean",
        "prunable_mean",
        "n_seeds",
        "reached",
    ],
    "ranking": [
        "dataset",
        "optimizer",
        "family",
        "config",
        "mean_rank",
        "test_acc_mean",
        "friedman_statistic",
        "friedman_p",
        "n_seeds",
        "note",
    ],
    "trends": [
        "dataset",
        "hypothesis",
        "optimizer",
        "family",
        "metric",
        "direction",
        "levels",
        "level_means",
        "first_mean",
        "last_mean",
        "page_L",
        "page_p",
        "min_attainable_p",
        "n_seeds",
        "monotone",
        "note",
    ],
    "equivalence": [
        "dataset",
        "hypothesis",
        "optimizer",
        "a",
        "b",
        "metric",
        "margin",
        "n",
        "mean_diff",
        "tost_p",
        "equivalent",
        "note",
    ],
    "mechanism": [
        "dataset",
        "optimizer",
        "family",
        "config",
        "seed",
        "slope",
        "n_weights",
        "excluded",
        "dead_units",
        "baseline_dead_units",
    ],
    "lr_best": ["dataset", "optimizer", "family", "seed", "lr", "best_strength", "val_acc", "test_acc", "at_edge"],
    "lr_slopes": ["dataset", "optimizer", "family", "seed", "slope", "at_edge"],
    "exclusions": [
        "dataset",
        "config",
        "family",
        "optimizer",
        "members",
        "diverged",
        "diverged_seeds",
        "unmeasured",
        "unmeasured_seeds",
    ],
    "verdicts": [
        "dataset",
        "hypothesis",
        "title",
        "finding",
        "verdict",
        "rule",
        "evidence",
        "measure",
        "effect",
        "ci_low",
        "ci_high",
        "n",
    ],
    "margins": ["dataset", "measure", "margin", "reason", "baseline_sd"],
}


def frame(name: str, rows: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """Rows of the named table as a frame with its columns, in order."""
    return pd.DataFrame(rows, columns=COLUMNS[name])


def read(names: Iterable[str] = tuple(COLUMNS), directory: Path = TABLES_DIR) -> dict[str, pd.DataFrame]:
    """The named tables (all by default), each checked for its columns; a problem is one DataError
    naming the file."""
    return {name: read_table(directory / f"{name}.csv", COLUMNS[name], "analyze") for name in names}


def write(tables: dict[str, pd.DataFrame], target: Path = TABLES_DIR) -> None:
    """Each table as CSV, Markdown and LaTeX, the whole directory replaced at once."""
    with atomic_path(target) as staged:
        staged.mkdir()
        for name, table in tables.items():
            table.to_csv(staged / f"{name}.csv", index=False)
            (staged / f"{name}.md").write_text(table.to_markdown(index=False, floatfmt=".4g") + "\n")
            (staged / f"{name}.tex").write_text(_latex(table))


def write_headlines(verdicts: pd.DataFrame, target: Path = HEADLINES_DIR) -> None:
    """<target>/<dataset>/<hypothesis>.json: outcome, effect, ci_low, ci_high, n. One small file
    each, because `dvc metrics show` prints a row per file and a column per key: so it fits a
    120-column terminal, where one file of every number would be a single row hundreds wide."""
    with atomic_path(target) as staged:
        staged.mkdir()
        for row in verdicts.itertuples():
            headline = {
                "outcome": row.verdict,
                "effect": _number(row.effect),
                "ci_low": _number(row.ci_low),
                "ci_high": _number(row.ci_high),
                "n": int(row.n),
            }
            path = staged / str(row.dataset) / f"{row.hypothesis}.json"
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(headline, indent=2) + "\n")


def _number(value: object) -> float | None:
    """JSON has no NaN: an effect that could not be measured is null."""
    return None if pd.isna(value) else float(value)  # type: ignore[arg-type]


def _latex(table: pd.DataFrame) -> str:
    floats = list(table.select_dtypes("float").columns)
    styler = table.style.hide(axis="index").format(escape="latex").format("{:.4g}", subset=floats, na_rep="")
    return styler.format_index(escape="latex", axis=1).to_latex(hrules=True)

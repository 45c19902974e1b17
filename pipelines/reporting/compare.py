"""A fresh run against the committed results: each headline number's change measured against the
seed-to-seed spread, and whether every outcome (verdict, selected configuration, best family) is the same.

    python -m pipelines.reporting.compare [REF-OR-DIRECTORY]     (make compare)

REF-OR-DIRECTORY is a git revision whose committed reports/ are the reference (default HEAD), or a
directory holding a reports/ folder. The fresh run is ./reports. Exit code 0 when every outcome is
the same; 1 when one differs, or when an input is missing (one line saying which).

Another CPU, BLAS or torch build changes the last bits of every training step, and over a training
those bits grow into differences in the third digit: the spread over seeds is the yardstick for
them. A changed outcome, or a number several spreads away, is worth a look.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core.errors import DataError, RegbenchError, stage
from pipelines.core.results import SUMMARY_FILE, TABLES_DIR

SELECTED_KEY = ["dataset", "optimizer", "family"]
COMPARISON_KEY = ["dataset", "hypothesis", "scope", "metric", "a", "b"]


@dataclass(frozen=True)
class Reports:
    """The results one run left: summary.json and the tables the headline numbers come from."""

    where: str
    metrics: dict[str, dict[str, Any]]
    selected: pd.DataFrame
    comparisons: pd.DataFrame
    verdicts: pd.DataFrame


@dataclass(frozen=True)
class Number:
    """One headline number in both runs; `spread` is the half-width of the committed run's interval
    over seeds (the seed-to-seed spread of that number)."""

    dataset: str
    name: str
    committed: float
    fresh: float
    spread: float

    @property
    def in_spreads(self) -> float:
        """The difference in units of the seed-to-seed spread (a number that does not vary over seeds has
        none: any difference in it is infinitely many spreads)."""
        difference = abs(self.fresh - self.committed)
        if difference == 0:
            return 0.0
        return difference / self.spread if self.spread > 0 else float("inf")


@dataclass(frozen=True)
class Outcome:
    dataset: str
    name: str
    committed: str
    fresh: str

    @property
    def same(self) -> bool:
        return self.committed == self.fresh


def read_reports(reference: str) -> Reports:
    """The reports of a directory (holding reports/) or of a git revision's committed files."""
    root = Path(reference)
    if root.is_dir():
        return _reports(str(root / "reports"), lambda path: _read_file(root / path))
    return _reports(f"git {reference}", lambda path: _git_show(reference, path))


def _read_file(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise DataError(f"{path}: not found; expected the reports of a finished run (dvc repro)") from None


def _git_show(revision: str, path: Path) -> str:
    done = subprocess.run(["git", "show", f"{revision}:{path.as_posix()}"], capture_output=True, text=True)
    if done.returncode != 0:
        raise DataError(
            f"{revision}:{path.as_posix()}: not in git ({' '.join(done.stderr.split())}); expected a "
            "revision whose commit holds the results, or a directory holding reports/"
        )
    return done.stdout


def _reports(where: str, read: Any) -> Reports:
    def table(name: str) -> pd.DataFrame:
        return pd.read_csv(io.StringIO(read(TABLES_DIR / f"{name}.csv")))

    return Reports(where, json.loads(read(SUMMARY_FILE)), table("selected"), table("comparisons"), table("verdicts"))


def compare(committed: Reports, fresh: Reports) -> tuple[list[Number], list[Outcome]]:
    """Every headline number present in both runs, and every outcome of either."""
    numbers, outcomes = [], []
    for dataset in sorted(set(committed.metrics) | set(fresh.metrics)):
        old, new = committed.metrics.get(dataset, {}), fresh.metrics.get(dataset, {})
        for key in ("best_config", "members", "diverged"):
            outcomes.append(Outcome(dataset, key, str(old.get(key, "absent")), str(new.get(key, "absent"))))
        if old and new:
            numbers += _headlines(dataset, old, new, committed.selected)
    numbers += _table_numbers(
        committed.selected,
        fresh.selected,
        SELECTED_KEY,
        "test_acc_mean",
        ("test_acc_ci_low", "test_acc_ci_high"),
        "test accuracy of selected",
    )
    numbers += _table_numbers(
        committed.comparisons, fresh.comparisons, COMPARISON_KEY, "mean_diff", ("ci_low", "ci_high"), "mean difference"
    )
    outcomes += _table_outcomes(committed.selected, fresh.selected, SELECTED_KEY, "config", "selected configuration")
    outcomes += _table_outcomes(committed.verdicts, fresh.verdicts, ["dataset", "hypothesis"], "verdict", "verdict")
    return numbers, outcomes


def _headlines(dataset: str, old: dict[str, Any], new: dict[str, Any], selected: pd.DataFrame) -> list[Number]:
    """summary.json's accuracies, each with the spread of the selected configuration it is the mean of."""
    rows = selected[selected["dataset"] == dataset]
    best = rows[rows["config"] == old["best_config"]]
    baseline = rows[(rows["optimizer"] == old["best_optimizer"]) & (rows["family"] == "none")]
    found = []
    for key, row in (("best_test_acc", best), ("baseline_test_acc", baseline)):
        if not row.empty:
            spread = (row["test_acc_ci_high"].iloc[0] - row["test_acc_ci_low"].iloc[0]) / 2
            found.append(Number(dataset, key, float(old[key]), float(new[key]), float(spread)))
    return found


def _table_numbers(
    old: pd.DataFrame, new: pd.DataFrame, key: list[str], value: str, interval: tuple[str, str], label: str
) -> list[Number]:
    both = old.merge(new[[*key, value]], on=key, suffixes=("", "_fresh"))
    low, high = interval
    return [
        Number(
            row["dataset"],
            f"{label} {' '.join(str(row[k]) for k in key[1:])}",
            float(row[value]),
            float(row[f"{value}_fresh"]),
            float(row[high] - row[low]) / 2,
        )
        for _, row in both.iterrows()
        if pd.notna(row[value]) and pd.notna(row[f"{value}_fresh"])
    ]


def _table_outcomes(old: pd.DataFrame, new: pd.DataFrame, key: list[str], value: str, label: str) -> list[Outcome]:
    both = old[[*key, value]].merge(new[[*key, value]], on=key, how="outer", suffixes=("", "_fresh"))
    return [
        Outcome(
            row["dataset"],
            f"{label} {' '.join(str(row[k]) for k in key[1:])}",
            str(row[value]) if pd.notna(row[value]) else "absent",
            str(row[f"{value}_fresh"]) if pd.notna(row[f"{value}_fresh"]) else "absent",
        )
        for _, row in both.iterrows()
    ]


def summary(committed: Reports, fresh: Reports, numbers: list[Number], outcomes: list[Outcome]) -> str:
    """What `make compare` prints: the outcomes that differ, the numbers furthest from the committed
    ones, and one line of verdict."""
    changed = [o for o in outcomes if not o.same]
    lines = [f"{fresh.where} against {committed.where}: {len(numbers)} numbers, {len(outcomes)} outcomes", ""]
    lines += [
        "Outcomes that differ:"
        if changed
        else "Every outcome is the same (verdicts, selected configurations, best configuration, members, diverged)."
    ]
    lines += [f"  {o.dataset}: {o.name}: {o.committed} -> {o.fresh}" for o in changed]
    ranked = sorted(numbers, key=lambda n: n.in_spreads, reverse=True)
    lines += ["", "Largest differences, in seed-to-seed spreads (half-width of the committed interval over seeds):"]
    lines += [
        f"  {n.dataset}: {n.name}: {n.committed:.4g} -> {n.fresh:.4g} ({n.fresh - n.committed:+.3g}, "
        f"{n.in_spreads:.2f} spreads)"
        for n in ranked[:10]
    ]
    beyond = sum(n.in_spreads > 1 for n in numbers)
    largest = f"{ranked[0].in_spreads:.2f}" if ranked else "n/a"
    lines += [
        "",
        f"{len(numbers) - beyond} of {len(numbers)} numbers within one seed-to-seed spread of the committed "
        f"value (largest: {largest} spreads); "
        + ("every outcome the same." if not changed else f"{len(changed)} outcomes differ."),
    ]
    return "\n".join(lines)


@stage
def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1:
        raise RegbenchError(f"compare: found arguments {args}; expected at most one, a git revision or a directory")
    committed = read_reports(args[0] if args else "HEAD")
    fresh = read_reports(".")
    numbers, outcomes = compare(committed, fresh)
    print(summary(committed, fresh, numbers, outcomes))
    if any(not o.same for o in outcomes):
        sys.exit(1)


if __name__ == "__main__":
    main()

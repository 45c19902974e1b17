"""Each hypothesis' three outcomes on synthetic runs whose outcome is known by construction.

Every case starts from tests/synthetic.py (effect 1: L1 sparsifies, L2 shrinks, dropout narrows
the gap; effect 0: none of it) and sets what the hypothesis reads: test accuracies offset by a
known amount, identical up to 1e-4, or configs removed. H5 reads the weights, v̂ and the
learning-rate maps besides runs.csv: its outcomes are in tests/test_decay.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.analysis import study
from pipelines.analysis.grid import load_grid
from pipelines.core import results
from pipelines.core.params import AnalyzeParams

import synthetic

MARGINS = {
    "test_acc": {"value": 0.01, "reason": "one point"},
    "negligible": {"value": 0.05, "reason": "a twentieth of the weights"},
    "prunable_fraction": {"value": 0.1, "reason": "one rung of the ladder"},
    "dead_fraction": {"value": 0.02, "reason": "2% of the units"},
}
SETTINGS = AnalyzeParams.model_validate(
    {"alpha": 0.05, "accuracy_costs": [0.005, 0.01, 0.02], "margins": {"fashion_mnist": MARGINS, "diabetes": MARGINS}}
)
Edit = Callable[[pd.DataFrame], pd.DataFrame]


@pytest.fixture(scope="module")
def effect() -> dict[float, pd.DataFrame]:
    return {size: synthetic.make_results("diabetes", effect=size)[0] for size in (0.0, 1.0)}


def outcome(runs: pd.DataFrame, hypothesis: str, folder: Path) -> tuple[str, str]:
    """(verdict, evidence) of one hypothesis, the runs analysed as the stage would."""
    path = folder / "runs.csv"
    runs.to_csv(path, index=False)
    tables, summary = study.analyze_dataset(load_grid(path, "diabetes"), SETTINGS)
    verdicts = tables["verdicts"].set_index("hypothesis")
    assert summary[hypothesis]["verdict"] == verdicts.loc[hypothesis, "verdict"]  # type: ignore[index]
    return verdicts.loc[hypothesis, "verdict"], verdicts.loc[hypothesis, "evidence"]


def without(*families: str) -> Edit:
    return lambda runs: runs[~runs["family"].isin(families)]


def strongest_within(family: str) -> Edit:
    """The family's strongest config as accurate on validation as the baseline: its grid reaches no cost."""

    def edit(runs: pd.DataFrame) -> pd.DataFrame:
        runs = runs.copy()
        strongest = (runs["family"] == family) & (
            runs["strength"] == runs.loc[runs["family"] == family, "strength"].max()
        )
        baseline = runs[runs["config"] == "adam/none"].set_index("seed")["val_acc"]
        runs.loc[strongest, "val_acc"] = runs.loc[strongest, "seed"].map(baseline).to_numpy()
        return runs

    return edit


def l2_sparsifies(runs: pd.DataFrame) -> pd.DataFrame:
    """Every l2 member 0.3 more prunable than the baseline, as if L2 pruned like L1."""
    runs = runs.copy()
    l2 = runs["family"] == "l2"
    runs.loc[l2, "prunable_fraction"] = (runs.loc[l2, "prunable_fraction"] + 0.3).clip(upper=0.99)
    return runs


def without_bias(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[~runs["penalize_bias"]]


def family_ranks(none_best: bool) -> Edit:
    """Test accuracy ordered by family within every seed: none the best, or the worst."""

    def edit(runs: pd.DataFrame) -> pd.DataFrame:
        step = runs["family"].map(results.FAMILIES.index) * (-0.01 if none_best else 0.01)
        noise = np.random.default_rng(1).normal(0, 1e-4, len(runs))
        return runs.assign(test_acc=0.8 + 0.001 * runs["seed"] + step + noise)

    return edit


def first_seeds(count: int, then: Edit) -> Edit:
    return lambda runs: then(runs[runs["seed"] < count])


def like(runs: pd.DataFrame, chosen: pd.Series, partner: Callable[[pd.Series], str], offset: float) -> pd.DataFrame:
    """Give the chosen rows their partner config's test accuracy on the same seed, plus offset and 1e-4 noise."""
    accuracy = runs.set_index(["config", "seed"])["test_acc"]
    rows = runs[chosen]
    partners = [accuracy[(partner(row), row["seed"])] for _, row in rows.iterrows()]
    noise = np.random.default_rng(2).normal(0, 1e-4, len(rows))
    runs = runs.copy()
    runs.loc[chosen, "test_acc"] = np.asarray(partners) + offset + noise
    return runs


def bias(offset: float) -> Edit:
    return lambda runs: like(runs, runs["penalize_bias"], lambda r: r["config"].removesuffix("/bias"), offset)


CASES = [
    # hypothesis, effect, edit, verdict, part of the evidence
    ("H1a", 1.0, None, "supported", "adam, 0.5 points: adam/l1/l1=0.001 prunes"),
    (
        "H1a",
        0.0,
        None,
        "not shown",
        "2 points: both frontiers are the baseline: no l1 strength within the cost prunes",
    ),
    (
        "H1a",
        1.0,
        strongest_within("l1"),
        "inconclusive",
        "2 points: not reached (l1: the strongest strength costs at most 2 points)",
    ),
    ("H1a", 1.0, without("l1"), "inconclusive", "no l1 configs"),
    ("H1b", 1.0, None, "supported", "adam, 1 point: adam/prox_l1/prox_l1=0.001 prunes"),
    ("H1b", 0.0, None, "not shown", "prox_l1"),
    ("H1b", 1.0, without("l2"), "inconclusive", "no measured l2 frontier under adam"),
    (
        "H2",
        1.0,
        None,
        "supported",
        "within 2 points of none's validation accuracy (of 3), negligible is equivalent to none's at 2",
    ),
    ("H2", 0.0, None, "not shown", "weight_l2"),
    ("H2", 1.0, l2_sparsifies, "contradicted", "the prunable fraction rises within its margin at 0"),
    ("H2", 1.0, without("l2"), "inconclusive", "no configs to test"),
    ("H3", 1.0, None, "supported", "gap_acc"),
    ("H3", 0.0, None, "not shown", "gap_acc"),
    ("H3", 1.0, without("dropout"), "inconclusive", "no configs to test"),
    ("H4", 1.0, family_ranks(none_best=False), "supported", "8 of 8 families beat none"),
    ("H4", 1.0, family_ranks(none_best=True), "contradicted", "0 of 8 families beat none and 8 fall below it"),
    ("H4", 1.0, first_seeds(4, family_ranks(none_best=False)), "inconclusive", "4 seed pairs allow a Holm-adjusted"),
    ("H6", 1.0, bias(0.0), "supported", "2 of 2 penalize_bias configs are equivalent"),
    ("H6", 1.0, bias(0.0), "supported", "1 not tested: the partner is broken"),
    ("H6", 1.0, bias(0.05), "contradicted", "0 of 2 penalize_bias configs are equivalent"),
    ("H6", 1.0, without_bias, "inconclusive", "no penalize_bias config with a working partner"),
]


@pytest.mark.parametrize(
    ("hypothesis", "size", "edit", "verdict", "evidence"),
    CASES,
    ids=[f"{c[0]}-{c[3].replace(' ', '_')}" for c in CASES],
)
def test_outcome_known_by_construction(
    effect: dict[float, pd.DataFrame],
    tmp_path: Path,
    hypothesis: str,
    size: float,
    edit: Edit | None,
    verdict: str,
    evidence: str,
) -> None:
    runs = effect[size].copy()
    found, text = outcome(edit(runs) if edit else runs, hypothesis, tmp_path)
    assert (found, evidence in text) == (verdict, True), text


def test_h2_says_when_l2_leaves_denormals_and_dead_units(effect: dict[float, pd.DataFrame], tmp_path: Path) -> None:
    """Adam's case: the strongest l2 with a fifth of its weights denormal and a quarter of its 24
    hidden units dead fails H2, and the finding says what the data show."""
    runs = effect[1.0].copy()
    strongest = (runs["config"] == "adam/l2/l2=0.01") & ~runs["penalize_bias"]  # the strongest within the cost
    runs.loc[strongest, "underflow"] = 0.2 + 0.001 * runs.loc[strongest, "seed"]
    runs.loc[strongest, "dead_units"] = 6.0
    runs.to_csv(tmp_path / "runs.csv", index=False)
    tables, summary = study.analyze_dataset(load_grid(tmp_path / "runs.csv", "diabetes"), SETTINGS)
    row = tables["verdicts"].set_index("hypothesis").loc["H2"]
    assert row["verdict"] == "contradicted"  # the prunable fraction and dead units rise beyond their margins
    assert (
        "20.4% of its weights are float32 denormals (none: 0.0%) and 25.0% of its hidden units are dead"
        in row["finding"]
    )
    assert "under sgd" in row["finding"] and row["finding"].count("denormals") == 1
    assert summary["H2"]["adam_dead_fraction_diff"] == pytest.approx(0.25)  # type: ignore[index]

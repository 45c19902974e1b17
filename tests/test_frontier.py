"""How a frontier is read at an accuracy cost (pipelines/analysis/frontier.py), on hand-set values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.analysis import frontier
from pipelines.analysis.grid import Grid, load_grid

import synthetic

# (val_acc, prunable_fraction) of each adam config, the same on every seed.
BASELINE = {"adam/none": (0.80, 0.30)}
L1 = {"adam/l1/l1=0.0001": (0.801, 0.40), "adam/l1/l1=0.001": (0.794, 0.70), "adam/l1/l1=0.01": (0.70, 0.99)}


def grid_of(tmp_path: Path, values: dict[str, tuple[float, float]]) -> Grid:
    runs = synthetic.make_results("diabetes", seeds=3)[0]
    runs = runs[(runs["optimizer"] != "adam") | runs["config"].isin(values) | ~runs["family"].isin(["none", "l1"])]
    for config, (val_acc, prunable) in values.items():
        runs.loc[runs["config"] == config, ["val_acc", "prunable_fraction"]] = (val_acc, prunable)
    path = tmp_path / "runs.csv"
    runs.to_csv(path, index=False)
    return load_grid(path, "diabetes")


@pytest.mark.parametrize(
    ("cost", "config", "prunable", "reached"),
    [
        (0.005, "adam/l1/l1=0.0001", 0.40, True),  # 0.794 is 0.6 points below: out
        (0.01, "adam/l1/l1=0.001", 0.70, True),
        (0.2, "adam/l1/l1=0.01", 0.99, False),  # the strongest is within 20 points: a lower bound
    ],
)
def test_the_frontier_is_the_most_prunable_config_within_the_cost(
    tmp_path: Path, cost: float, config: str, prunable: float, reached: bool
) -> None:
    point = frontier.point(grid_of(tmp_path, BASELINE | L1), "adam", "l1", cost)
    assert point is not None
    assert (point.config, point.prunable_mean, point.reached) == (config, pytest.approx(prunable), reached)


def test_one_strength_is_a_frontier_and_the_baseline_stands_when_it_costs_too_much(tmp_path: Path) -> None:
    grid = grid_of(tmp_path, BASELINE | {"adam/l1/l1=0.01": (0.70, 0.99)})
    point = frontier.point(grid, "adam", "l1", 0.02)
    assert point == frontier.Point("adam/none", 0.0, pytest.approx(0.80), pytest.approx(0.30), True)


def test_a_family_absent_from_the_group_has_no_frontier(tmp_path: Path) -> None:
    assert frontier.point(grid_of(tmp_path, BASELINE | L1), "sgd", "l1", 0.01) is None


def test_the_table_has_a_row_per_group_family_and_cost(tmp_path: Path) -> None:
    table = frontier.frontier(grid_of(tmp_path, BASELINE | L1), [0.005, 0.01])
    adam = table[table["optimizer"] == "adam"].set_index(["family", "cost"])
    assert adam.loc[("l1", 0.01), "config"] == "adam/l1/l1=0.001"
    assert set(adam.index.get_level_values("family")) == {"l1", "prox_l1", "l2"}
    assert isinstance(table, pd.DataFrame) and (table["n_seeds"] == 3).all()

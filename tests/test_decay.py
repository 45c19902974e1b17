"""H5 and what it reads: the per-weight mechanism slope, the learning-rate × strength maps (their
grid, their params, their analysis), and that every other analysis leaves the map cells out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_hypotheses import SETTINGS

from pipelines.analysis import maps, study
from pipelines.analysis.grid import load_grid
from pipelines.analysis.mechanism import Models, log_ratio_slope
from pipelines.core import params
from pipelines.core.params import DatasetTrain
from pipelines.training.grid import expand

import synthetic


def test_the_slope_of_a_known_power_law_is_recovered_and_zeros_are_counted():
    rng = np.random.default_rng(0)
    v_hat = rng.lognormal(-10, 2, 5000)
    baseline = rng.normal(0, 0.1, 5000)
    # |w| / |w_none| = c · (√v̂)^(−0.7), times a little noise: the slope is −0.7.
    weight = baseline * 0.3 * np.sqrt(v_hat) ** -0.7 * rng.lognormal(0, 0.05, 5000)
    weight[:7] = 0.0
    fit = log_ratio_slope(weight, baseline, v_hat)
    assert fit.slope == pytest.approx(-0.7, abs=0.01)
    assert (fit.n, fit.excluded) == (4993, 7)
    assert log_ratio_slope(baseline * 0.5, baseline, v_hat).slope == pytest.approx(0.0, abs=1e-9)


def grid_spec(maps_block: dict | None) -> DatasetTrain:
    return DatasetTrain.model_validate(
        {
            "hidden": [4],
            "activation": "relu",
            "batch_size": 8,
            "epochs": 1,
            "eval_every": 1,
            "seeds": [0, 1, 2, 3],
            "penalize_bias": False,
            "optimizers": {"adam": {"lr": 1e-3, "families": {"l2": [1e-3]}}, "sgd": {"lr": 0.1, "momentum": 0.9}},
            "maps": maps_block,
        }
    )


MAPS = {
    "seeds": [0, 1],
    "optimizers": {
        "adam": {"lrs": [1e-3, 1e-2, 1e-1], "l2": [1e-3, 1e-2], "adamw": [1e-2, 1e-1, 1.0]},
        "sgd": {"lrs": [0.01, 0.1], "l2": [1e-3, 1e-2], "sgdw": [1e-3, 1e-2]},
    },
}


def test_the_map_cells_are_every_lr_by_every_strength_over_the_maps_seeds():
    main = expand(grid_spec(None))
    members = expand(grid_spec(MAPS))
    assert members[: len(main)] == main  # the main grid unchanged, the cells after it
    cells = [m for m in members if m.grid == "map"]
    assert [m.member for m in members] == list(range(len(members)))
    assert len(cells) == (3 * (2 + 3) + 2 * (2 + 2)) * 2
    assert {m.seed for m in cells} == {0, 1}
    assert {(m.optimizer, m.family) for m in cells} == {
        ("adam", "l2"),
        ("adamw", "adamw"),
        ("sgd", "l2"),
        ("sgdw", "sgdw"),
    }
    assert all(m.config.endswith(f"/lr={m.lr:g}") for m in cells)
    assert len({(m.config, m.seed) for m in members}) == len(members)  # names tell every cell apart
    cell = next(m for m in cells if m.optimizer == "sgdw")
    assert (cell.momentum, cell.decoupled_wd, cell.strength) == (0.9, 1e-3, 1e-3)
    assert {m.cohort for m in cells}.isdisjoint({m.cohort for m in main})  # trained apart from the grid


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("train.diabetes.maps.seeds", [0, 0], ["train.diabetes.maps.seeds", "repeated: [0]"]),
        ("train.diabetes.maps.optimizers.adam.lrs", [1e-3], ["maps.optimizers.adam.lrs", "at least 2"]),
        ("train.diabetes.maps.optimizers.adam.l2", [0.0, 1e-3], ["maps.optimizers.adam.l2.0", "greater than 0"]),
        ("train.diabetes.maps.optimizers.adam.sgdw", [1e-3, 1e-2], ["maps.optimizers.adam: expected adamw"]),
        ("train.diabetes.maps.optimizers.sgd.adamw", [1e-3, 1e-2], ["maps.optimizers.sgd: expected sgdw"]),
        ("train.diabetes.maps.optimizer", {}, ["train.diabetes.maps.optimizer", "unknown key"]),
    ],
)
def test_a_bad_maps_block_is_one_line_naming_the_key(key, value, words, workdir, set_param):
    set_param(key, value)
    with pytest.raises(params.ParamsError) as raised:
        params.load()
    message = str(raised.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_a_map_needs_its_optimizer_in_the_grid(workdir, set_param):
    set_param("train.diabetes.optimizers", {"adam": {"lr": 1e-3, "families": {"l2": [1e-3]}}})
    with pytest.raises(
        params.ParamsError, match=r"maps\.optimizers\.sgd: found a map for sgd; it needs optimizers\.sgd"
    ):
        params.load()


def with_maps(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs plus map cells: adamw's best λ ∝ 1/lr (slope −1), l2's fixed (slope 0)."""
    cells = synthetic.map_cells(runs, {"adam": lambda lr: 1e-2, "adamw": lambda lr: 1e-3 / lr})
    return pd.concat([runs, cells], ignore_index=True)


def test_every_analysis_but_h5_leaves_the_map_cells_out(tmp_path: Path):
    runs = synthetic.make_results("diabetes")[0]
    tables = {}
    for name, frame in (("plain", runs), ("mapped", with_maps(runs))):
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False)
        grid = load_grid(path, "diabetes")
        assert not any("/lr=" in c for c in grid.configs.index)
        tables[name] = study.analyze_dataset(grid, SETTINGS)[0]
    for name in ("comparisons", "selected", "frontier", "ranking", "trends", "equivalence", "exclusions"):
        pd.testing.assert_frame_equal(tables["plain"][name], tables["mapped"][name])


def test_the_map_slopes_are_minus_one_for_a_fixed_product_and_zero_for_a_fixed_strength():
    runs = synthetic.make_results("diabetes")[0]
    best = maps.best_strengths("diabetes", maps.cells(with_maps(runs)))
    slopes = maps.seed_slopes(best).groupby("family")["slope"]
    assert slopes.mean().to_dict() == pytest.approx({"l2": 0.0, "adamw": -1.0})
    assert not best["at_edge"].any()


def models_for(runs: pd.DataFrame, l2_slope: float) -> Models:
    """Weights and v̂ of every member: adam's l2 members shrink as (√v̂)^l2_slope against the
    baseline of their seed (a positive slope: small √v̂, more shrinkage), adamw members by one factor."""
    rng = np.random.default_rng(3)
    members = runs["member"].to_numpy()
    v_hat = torch.tensor(rng.lognormal(-10, 2, (len(members), 6, 5)), dtype=torch.float32)
    baseline_of = runs[runs["config"] == "adam/none"].set_index("seed")["member"]
    start = torch.tensor(rng.normal(0, 0.1, (int(runs["seed"].max()) + 1, 6, 5)), dtype=torch.float32)
    weights = start[torch.tensor(runs["seed"].to_numpy())].clone()
    for row, (_, run) in enumerate(runs.iterrows()):
        if run["family"] == "l2" and run["optimizer"] == "adam":
            weights[row] *= 0.2 * v_hat[row].sqrt() ** l2_slope
        elif run["family"] == "adamw":
            weights[row] *= 0.5
    assert set(baseline_of) <= set(members)
    rows = {int(m): i for i, m in enumerate(members)}
    return Models(weights=[weights], weight_rows=rows, moments=[v_hat], moment_rows=rows)


@pytest.mark.parametrize(("l2_slope", "verdict"), [(0.5, "supported"), (-0.5, "contradicted")])
def test_h5_judges_the_mechanism_and_the_map(tmp_path: Path, l2_slope: float, verdict: str):
    runs = synthetic.make_results("diabetes")[0]
    runs = runs.assign(dead_units=0.0)
    path = tmp_path / "runs.csv"
    mapped = with_maps(runs)
    mapped.to_csv(path, index=False)
    tables, summary = study.analyze_dataset(
        load_grid(path, "diabetes"), SETTINGS, maps.cells(mapped), models_for(runs, l2_slope)
    )
    h5 = summary["H5"]
    assert isinstance(h5, dict)
    assert h5["verdict"] == verdict
    assert h5["mechanism_slope_l2"] == pytest.approx(l2_slope, abs=1e-4)
    assert h5["mechanism_slope_adamw"] == pytest.approx(0.0, abs=1e-4)
    assert h5["adam_adamw_lr_slope"] == pytest.approx(-1.0)
    assert len(tables["mechanism"]) == 20 and len(tables["lr_slopes"]) == 12


def test_h5_without_models_or_maps_is_inconclusive(tmp_path: Path):
    path = tmp_path / "runs.csv"
    synthetic.make_results("diabetes")[0].to_csv(path, index=False)
    tables, summary = study.analyze_dataset(load_grid(path, "diabetes"), SETTINGS)
    h5 = tables["verdicts"].set_index("hypothesis").loc["H5"]
    assert h5["verdict"] == "inconclusive"
    assert "no learning-rate map under adam" in h5["evidence"]

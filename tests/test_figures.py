"""The figures stage against small synthetic results: every figure, its labels, files and captions."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D
from scipy import stats

from pipelines import figures
from pipelines.analysis import early_stopping, frontier, inference, maps
from pipelines.analysis.grid import load_grid
from pipelines.analysis.selection import IDENTICAL_TO
from pipelines.core import results
from pipelines.core.errors import DataError
from pipelines.core.results import RESULTS_DIR, group_of, runs_path, weights_path
from pipelines.core.tables import COLUMNS as TABLE_COLUMNS
from pipelines.core.tables import read as read_tables
from pipelines.data.datasets import PIMA_FEATURES, prepared_paths
from pipelines.plots import accuracy_figures, catalog, glance, weight_figures
from pipelines.plots import evidence as plot_evidence
from pipelines.plots import style as plotting

import synthetic

REPO = Path(__file__).resolve().parents[1]
DPI = 50  # the smallest dpi params allow keeps PNGs small and tests fast
SEEDS = 3
COSTS = [0.005, 0.01, 0.02]
# Where each method's map peaks: decoupled decay at a fixed lr·λ, the penalties at a fixed λ.
MAP_PEAKS = {
    "adam": lambda lr: 1e-2,
    "adamw": lambda lr: 1e-3 / lr,
    "sgd": lambda lr: 1e-3,
    "sgdw": lambda lr: 1e-4 / lr,
}
DATASETS = {
    "fashion_mnist": {"inputs": 784, "classes": 10, "hidden": (16, 8)},
    "diabetes": {"inputs": 8, "classes": 2, "hidden": (16, 8)},
}


def analysis_tables(runs: pd.DataFrame, curves: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Small versions of the analyze stage's tables, derived from a runs table as analyze does, with
    the project's statistics: the best mean validation accuracy selects each family's config (one
    split, so no arm: the arms table names the config's own members), which is
    compared seed by seed with its optimizer group's baseline (H4: Wilcoxon, Holm within the group) and
    ranked within the group; the early-stopping baseline, read from the curves, is one more family."""
    main = results.main_grid(runs)
    main = main[~main["penalize_bias"] & (main["status"] == "ok")]
    main = pd.concat([main, early_stopping.baseline(main, curves)], ignore_index=True)
    main = main.assign(group=main["optimizer"].map(group_of))
    dataset = runs["dataset"].iloc[0]
    selected, arms, comparisons, ranking = [], [], [], []
    for group, members in main.groupby("group"):
        accuracy = members.pivot_table(index="seed", columns="config", values="test_acc")
        chosen = []
        for family, rows in members.groupby("family"):
            if family in IDENTICAL_TO:
                continue
            config = rows.groupby("config")["val_acc"].mean().idxmax()
            chosen.append((family, config))
            mine = rows[rows["config"] == config]
            selected.append(
                {
                    "dataset": dataset,
                    "optimizer": group,
                    "family": family,
                    "config": config,
                    "strength": mine["strength"].iloc[0],
                    "val_acc_mean": mine["val_acc"].mean(),
                    "test_acc_mean": mine["test_acc"].mean(),
                    "n_seeds": len(mine),
                    "n_diverged": int((runs["config"] == config).sum() - len(mine)),
                }
            )
            arms.append(
                mine[["seed", "split", "member", "config"]].assign(optimizer=group, family=family, selected=config)
            )
            if family != "none":
                pair = accuracy[[config, f"{group}/none"]].dropna()
                d = pair[config] - pair[f"{group}/none"]
                comparisons.append(
                    {
                        "dataset": dataset,
                        "hypothesis": "H4",
                        "metric": "test_acc",
                        "a": config,
                        "b": f"{group}/none",
                        "family_a": family,
                        "family_b": "none",
                        "optimizer": group,
                        "n": len(d),
                        "mean_diff": d.mean(),
                        "wilcoxon_p": stats.wilcoxon(d).pvalue,
                        "holm_family": f"{dataset}/H4/{group}",
                    }
                )
        configs = [config for _, config in chosen]
        result = inference.friedman(accuracy[configs].dropna().to_numpy())
        ranking += [
            {
                "dataset": dataset,
                "optimizer": group,
                "family": family,
                "config": config,
                "mean_rank": rank,
                "friedman_p": result.p,
                "n_seeds": len(accuracy[configs].dropna()),
            }
            for (family, config), rank in zip(chosen, result.mean_ranks)
        ]
    comparisons = pd.DataFrame(comparisons)
    comparisons["holm_p"] = comparisons.groupby("holm_family")["wilcoxon_p"].transform(
        lambda p: inference.holm(p.to_numpy())
    )
    return {
        "comparisons": comparisons,
        "ranking": pd.DataFrame(ranking),
        "selected": pd.DataFrame(selected),
        "arms": pd.concat(arms).assign(dataset=dataset),
        "lr_best": maps.best_strengths(dataset, maps.cells(runs)),
        # The study at a glance draws each hypothesis' headline: here H4's first comparison.
        "verdicts": pd.DataFrame(
            [
                {
                    "dataset": dataset,
                    "hypothesis": "H4",
                    "verdict": "supported",
                    "measure": f"{first['optimizer']}: test accuracy, {first['a']} − none",
                    "effect": first["mean_diff"],
                    "ci_low": first["mean_diff"] - 0.01,
                    "ci_high": first["mean_diff"] + 0.01,
                    "n": first["n"],
                }
                for first in comparisons.head(1).to_dict("records")
            ]
        ),
    }


def write_study(
    root: Path,
    seeds: int = SEEDS,
    diverge: dict[str, int] | None = None,
    datasets: tuple[str, ...] = tuple(DATASETS),
    **sizes: dict,
) -> None:
    """Synthetic results, their analysis tables and a params.yaml, under root. `diverge` marks the
    first members of a config as diverged, with the chance-level accuracy a diverged network has."""
    tables: dict[str, list[pd.DataFrame]] = {}
    for dataset in datasets:
        synthetic.write_results(root, dataset, seeds=seeds, **(DATASETS[dataset] | sizes.get(dataset, {})))
        path = root / runs_path(dataset)
        runs = pd.read_csv(path)
        for config, count in (diverge or {}).items():
            rows = runs.index[runs["config"] == config][:count]
            runs.loc[rows, ["status", "test_acc", "train_acc"]] = ["diverged", 0.5, 0.5]
        if dataset == "diabetes":  # the learning-rate maps, on one dataset only
            runs = pd.concat([runs, synthetic.map_cells(runs, MAP_PEAKS, seeds=seeds)], ignore_index=True)
        runs.to_csv(path, index=False)
        curves = pd.read_csv(root / results.curves_path(dataset))
        for name, table in analysis_tables(runs, curves).items():
            tables.setdefault(name, []).append(table)
        tables.setdefault("frontier", []).append(frontier.frontier(load_grid(path, dataset), COSTS))
    (root / results.TABLES_DIR).mkdir(parents=True)
    for name, parts in tables.items():
        pd.concat(parts).reindex(columns=TABLE_COLUMNS[name]).to_csv(
            root / results.TABLES_DIR / f"{name}.csv", index=False
        )
    config = yaml.safe_load((REPO / "params.yaml").read_text())
    config["figures"]["dpi"] = DPI
    (root / "params.yaml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("study")
    write_study(root)
    return root


@pytest.fixture
def in_study(study: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(study)
    plotting.use_theme()
    return study


@pytest.fixture(scope="module")
def drawn(study: Path) -> dict[str, dict[str, plotting.Drawn]]:
    """Every figure of both datasets, drawn once for the tests that inspect them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(study)
        plotting.use_theme()
        tables = read_tables(plot_evidence.TABLES)
        out = {}
        for dataset in DATASETS:
            evidence = plot_evidence.load_evidence(dataset, tables)
            out[dataset] = {d.name: d for d in (draw(evidence) for draw in catalog.FIGURES) if d is not None}
        yield out
        for by_name in out.values():
            for d in by_name.values():
                plotting.plt.close(d.figure)


def labels(drawn: plotting.Drawn) -> tuple[set[str], set[str]]:
    axes = drawn.figure.get_axes()
    return {ax.get_xlabel() for ax in axes} - {""}, {ax.get_ylabel() for ax in axes} - {""}


def test_every_figure_is_drawn_for_each_dataset_and_only_where_it_applies(drawn):
    common = {
        "01_sparsity",
        "02_weight_magnitudes",
        "03_weight_norm",
        "04_test_accuracy",
        "05_generalization_gap",
        "06_learning_curves",
        "07_elastic_net",
        "10_statistics",
        "11_pruning_curves",
        "12_pareto_frontier",
        "13_layer_magnitudes",
    }
    assert set(drawn["fashion_mnist"]) == common | {"08_first_layer_images"}
    assert set(drawn["diabetes"]) == common | {"09_input_features", "14_lr_maps"}  # maps: diabetes only


@pytest.mark.parametrize(
    ("name", "xlabels", "ylabels"),
    [
        ("01_sparsity", {"strength λ"}, {"fraction of weights"}),
        ("02_weight_magnitudes", {"log10 |w|"}, {"fraction of weights ≤ |w| (ECDF)"}),
        ("03_weight_norm", {"strength λ", "dropout probability p"}, {"weight L2 norm ‖w‖₂"}),
        ("04_test_accuracy", {"strength λ", "dropout probability p"}, {"test accuracy − baseline (points)"}),
        ("05_generalization_gap", {"strength λ", "dropout probability p"}, {"train − test accuracy (points)"}),
        ("06_learning_curves", {"epoch"}, {"loss (nats, log scale)"}),
        ("07_elastic_net", {"λ1 (L1 strength)"}, {"λ2 (L2 strength)", "fraction (every panel)"}),
        ("09_input_features", {"input feature"}, {"mean |w|, relative to the network's largest feature"}),
        ("11_pruning_curves", {"fraction of each layer's weights pruned"}, {"validation accuracy (%)"}),
        ("12_pareto_frontier", {"validation accuracy (%)"}, {"prunable fraction"}),
        ("13_layer_magnitudes", {"log10(|w| / layer RMS)"}, {"fraction of weights ≤ (ECDF)"}),
        ("10_statistics", {"test accuracy − baseline (points)", "mean rank\n(1 = best)"}, set()),
    ],
)
def test_axes_are_labelled(drawn, name, xlabels, ylabels):
    for dataset in (d for d in DATASETS if name in drawn[d]):
        found_x, found_y = labels(drawn[dataset][name])
        assert found_x == xlabels
        assert found_y == ylabels


def test_strength_axes_are_logarithmic_and_dropout_is_linear(drawn):
    for name in ("01_sparsity", "03_weight_norm", "04_test_accuracy", "05_generalization_gap"):
        for ax in drawn["diabetes"][name].figure.get_axes():
            if ax.get_xlabel():
                assert ax.get_xscale() == ("linear" if ax.get_xlabel().startswith("dropout") else "log"), name


def test_sparsity_panels_are_the_scale_free_measures(drawn):
    titles = [ax.get_title() for ax in drawn["diabetes"]["01_sparsity"].figure.get_axes()]
    assert titles == list(weight_figures.SPARSITY_MEASURES.values())
    assert not any("<" in title for title in titles)  # no absolute threshold


def test_each_family_keeps_its_colour_in_every_figure(drawn):
    l1 = plotting.FAMILY_COLORS["L1"]
    for name in ("01_sparsity", "03_weight_norm", "04_test_accuracy"):
        colours = {
            tuple(np.round(to_rgb(line.get_color()), 3))
            for ax in drawn["diabetes"][name].figure.get_axes()
            for line in ax.get_lines()
            if line.get_xydata().size
        }
        assert tuple(np.round(l1, 3)) in colours, name
    assert len(set(plotting.FAMILY_COLORS.values())) == len(plotting.FAMILY_COLORS)


def test_baseline_band_is_the_mean_and_t_interval_of_the_baseline(drawn, study):
    runs = pd.read_csv(study / runs_path("diabetes"))
    baseline = runs.loc[runs["config"] == "adam/none", "gap_acc"].to_numpy() * 100
    low, high = stats.t.interval(0.95, len(baseline) - 1, loc=baseline.mean(), scale=stats.sem(baseline))
    ax = drawn["diabetes"]["05_generalization_gap"].figure.get_axes()[0]
    assert ax.get_title() == "adam"
    (band,) = [p for p in ax.patches if p.get_height() > 0]
    assert band.get_y() == pytest.approx(low) and band.get_y() + band.get_height() == pytest.approx(high)


def paired_test_acc(runs: pd.DataFrame, config: str, baseline: str) -> pd.Series:
    """Test accuracy of config minus baseline, in points, by seed, on the seeds both finished."""
    ok = runs[runs["status"] == "ok"]
    by_seed = ok.pivot(index="seed", columns="config", values="test_acc")
    return ((by_seed[config] - by_seed[baseline]) * 100).dropna()


def test_test_accuracy_is_the_paired_difference_from_the_baseline_with_seeds_and_t_intervals(drawn, study):
    runs = pd.read_csv(study / runs_path("diabetes"))
    ax = drawn["diabetes"]["04_test_accuracy"].figure.get_axes()[0]
    assert ax.get_title() == "adam"
    l1 = {
        s: paired_test_acc(runs, c, "adam/none")
        for s, c in runs[runs["family"] == "l1"].groupby("strength")["config"].first().items()
    }
    assert l1_line(ax) == pytest.approx({s: d.mean() for s, d in l1.items()})
    # the interval of each mean: the paired t-interval of the per-seed differences, as error bars
    colour = to_rgb(plotting.FAMILY_COLORS["L1"])
    bars = [c for c in ax.collections if isinstance(c, LineCollection) and np.allclose(c.get_color()[0][:3], colour)]
    ends = sorted(tuple(np.round(segment[:, 1], 9)) for bar in bars for segment in bar.get_segments())
    expected = sorted(tuple(np.round(stats.ttest_1samp(d, 0).confidence_interval(), 9)) for d in l1.values())
    np.testing.assert_allclose(np.array(ends), np.array(expected))
    # every seed drawn as a dot in its family's colour, the baseline as the line at 0, no band
    (dots,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    l1_dots = dots.get_offsets()[np.all(np.isclose(dots.get_facecolors()[:, :3], colour), axis=1)]
    np.testing.assert_allclose(sorted(l1_dots[:, 1]), sorted(pd.concat(l1.values())))
    assert any(list(np.asarray(line.get_ydata())) == [0, 0] for line in ax.get_lines())
    assert not [p for p in ax.patches if p.get_height() > 0]
    assert "95% paired Student-t confidence interval" in drawn["diabetes"]["04_test_accuracy"].caption


def test_first_layer_images_are_28_by_28_and_same_units_in_every_row(drawn):
    figure = drawn["fashion_mnist"]["08_first_layer_images"].figure
    images = [ax.get_images()[0].get_array().shape for ax in figure.get_axes()]
    assert set(images) == {(28, 28)}
    assert [ax.get_title() for ax in figure.get_axes()[: weight_figures.IMAGE_UNITS]] == [
        f"unit {u}" for u in range(weight_figures.IMAGE_UNITS)
    ]


def test_input_features_use_the_pima_names_and_mean_weights(drawn, study):
    ax = drawn["diabetes"]["09_input_features"].figure.get_axes()[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(PIMA_FEATURES)
    assert ax.get_yticklabels()[0].get_text() == "adam · none (baseline)"
    runs = pd.read_csv(study / runs_path("diabetes"))
    stored = torch.load(study / weights_path("diabetes"), weights_only=True)
    members = runs.loc[runs["config"] == "adam/none", "member"].to_list()
    rows = [stored["members"].index(m) for m in members]
    per_feature = stored["layers"][0]["weight"][rows].abs().mean(dim=1)
    expected = (per_feature / per_feature.max(dim=1, keepdim=True).values).mean(dim=0).numpy()
    cells = np.asarray(ax.collections[0].get_array()).reshape(-1, len(PIMA_FEATURES))
    assert cells[0] == pytest.approx(expected, rel=1e-5)  # each network's row over its largest feature
    assert cells.max() <= 1 + 1e-9


def test_elastic_net_cells_are_the_mean_over_seeds_on_one_colour_scale(drawn, study):
    runs = pd.read_csv(study / runs_path("diabetes"))
    elastic = runs[runs["family"] == "elastic"]
    expected = elastic.groupby(["l2", "l1"])["test_acc"].mean().unstack("l1").to_numpy()
    figure = drawn["diabetes"]["07_elastic_net"].figure
    heatmaps = [ax for ax in figure.get_axes() if ax.get_title()]
    assert heatmaps[0].get_title() == "test accuracy"
    assert np.asarray(heatmaps[0].collections[0].get_array()).reshape(expected.shape) == pytest.approx(expected)
    assert len(heatmaps) == 6 and len(figure.get_axes()) == 6 + 1  # no empty slot; one colourbar
    assert {(ax.collections[0].norm.vmin, ax.collections[0].norm.vmax) for ax in heatmaps} == {(0.0, 1.0)}
    ratio = heatmaps[-1]
    assert ratio.get_title() == "‖w‖₂ / baseline's ‖w‖₂"
    base = runs[runs["config"] == "adam/none"].set_index("seed")["weight_l2"]
    norms = elastic.assign(ratio=elastic["weight_l2"].to_numpy() / base.loc[elastic["seed"]].to_numpy())
    expected = norms.groupby(["l2", "l1"])["ratio"].mean().unstack("l1").to_numpy()
    assert np.asarray(ratio.collections[0].get_array()).reshape(expected.shape) == pytest.approx(expected)


def test_captions_name_seeds_interval_and_exclusions(drawn):
    for dataset, by_name in drawn.items():
        for name, d in by_name.items():
            assert d.title and d.name == name
            assert f"{SEEDS} seeds" in d.caption, (dataset, name)
            assert "interval" in d.caption, (dataset, name)
            assert "iverged" in d.caption, (dataset, name)


def test_stage_writes_png_pdf_and_captions_for_every_figure(tmp_path, monkeypatch):
    write_study(tmp_path, datasets=("diabetes",))
    monkeypatch.chdir(tmp_path)
    figures.main()
    top = sorted(p.name for p in (tmp_path / results.FIGURES_DIR).iterdir())
    assert top == ["00_at_a_glance.pdf", "00_at_a_glance.png", "captions.json", "diabetes"]
    assert list(json.loads((tmp_path / results.FIGURES_DIR / "captions.json").read_text())) == ["00_at_a_glance"]
    directory = tmp_path / results.FIGURES_DIR / "diabetes"
    captions = json.loads((directory / "captions.json").read_text())
    assert "09_input_features" in captions and len(captions) == 13  # 14_lr_maps among them
    for name in captions:
        png = matplotlib.image.imread(directory / f"{name}.png")
        height, width = png.shape[:2]
        assert 5 * DPI <= width <= 9 * DPI and 1.5 * DPI <= height <= 14 * DPI, (name, png.shape)
        assert png[..., :3].std() > 0.05  # something is drawn
        assert (directory / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.stem for p in directory.glob("*.png")) == sorted(captions)


def test_pdf_and_png_files_are_reproducible(in_study, tmp_path):
    evidence = plot_evidence.load_evidence("diabetes", read_tables(plot_evidence.TABLES))
    for attempt in ("first", "second"):
        plotting.save(accuracy_figures.accuracy(evidence), tmp_path / attempt, DPI)
    for suffix in ("png", "pdf"):
        first = (tmp_path / "first" / f"04_test_accuracy.{suffix}").read_bytes()
        assert first == (tmp_path / "second" / f"04_test_accuracy.{suffix}").read_bytes()
    assert b"CreationDate" not in (tmp_path / "first" / "04_test_accuracy.pdf").read_bytes()


def test_diverged_members_are_left_out_and_counted_in_captions(tmp_path, monkeypatch):
    write_study(tmp_path, diverge={"adam/l1/l1=0.001": 1}, datasets=("diabetes",))
    monkeypatch.chdir(tmp_path)
    plotting.use_theme()
    drawn = accuracy_figures.accuracy(plot_evidence.load_evidence("diabetes", read_tables(plot_evidence.TABLES)))
    assert "1 in all (adam/l1/l1=0.001: 1)" in drawn.caption
    assert "2–3 seeds per point" in drawn.caption
    runs = pd.read_csv(tmp_path / runs_path("diabetes"))
    l1 = runs[(runs["config"] == "adam/l1/l1=0.001") & (runs["status"] == "ok")]
    assert len(l1) == 2
    line = l1_line(drawn.figure.get_axes()[0])
    assert line[1e-3] == pytest.approx(paired_test_acc(runs, "adam/l1/l1=0.001", "adam/none").mean())
    plotting.plt.close(drawn.figure)


def test_captions_count_members_that_diverged_outside_the_configurations_drawn(tmp_path, monkeypatch):
    write_study(tmp_path / "clean", datasets=("diabetes",))
    selected = set(pd.read_csv(tmp_path / "clean" / results.TABLES_DIR / "selected.csv")["config"])
    runs = pd.read_csv(tmp_path / "clean" / runs_path("diabetes"))
    lost = sorted(set(runs.loc[runs["family"] == "l1", "config"]) - selected)[0]  # one not selected
    write_study(tmp_path / "partly", diverge={lost: SEEDS}, datasets=("diabetes",))
    monkeypatch.chdir(tmp_path / "partly")
    plotting.use_theme()
    ev = plot_evidence.load_evidence("diabetes", read_tables(plot_evidence.TABLES))
    curves = accuracy_figures.learning_curves(ev)  # draws the selected configurations only
    assert f"none of those drawn diverged; {SEEDS} members of configurations not drawn here diverged" in curves.caption
    assert "(none diverged)" not in curves.caption
    accuracy = accuracy_figures.accuracy(ev)  # draws every strength of every family
    assert f"{SEEDS} in all ({lost}: {SEEDS})." in accuracy.caption
    for drawn in (curves, accuracy):
        plotting.plt.close(drawn.figure)


def family_line(ax: Axes, label: str) -> Line2D:
    """The one line a panel draws in a family's colour (not the caps of its error bars, drawn as markers)."""
    colour = plotting.FAMILY_COLORS[label]
    [line] = [
        line
        for line in ax.get_lines()
        if np.allclose(to_rgb(line.get_color()), colour) and len(line.get_xdata()) and line.get_linestyle() != "None"
    ]
    return line


def l1_line(ax: Axes) -> dict[float, float]:
    """The L1 family's drawn mean at each strength."""
    line = family_line(ax, "L1")
    return dict(zip(line.get_xdata(), line.get_ydata()))


def test_lines_are_the_mean_over_seeds(drawn, study):
    runs = pd.read_csv(study / runs_path("diabetes"))
    l1 = runs[runs["family"] == "l1"].groupby("strength")
    figure_01 = drawn["diabetes"]["01_sparsity"].figure.get_axes()
    assert l1_line(figure_01[1]) == pytest.approx(l1["negligible"].mean().to_dict())
    assert l1_line(drawn["diabetes"]["03_weight_norm"].figure.get_axes()[0]) == pytest.approx(
        l1["weight_l2"].mean().to_dict()
    )
    assert l1_line(drawn["diabetes"]["05_generalization_gap"].figure.get_axes()[0]) == pytest.approx(
        (l1["gap_acc"].mean() * 100).to_dict()
    )


def test_magnitude_ecdf_starts_at_the_fraction_of_zero_weights(drawn, study):
    runs = pd.read_csv(study / runs_path("diabetes"))
    selected = pd.read_csv(study / results.TABLES_DIR / "selected.csv")
    config = selected.loc[(selected["dataset"] == "diabetes") & (selected["family"] == "prox_l1"), "config"].item()
    stored = torch.load(study / weights_path("diabetes"), weights_only=True)
    zeros = []
    for member in runs.loc[runs["config"] == config, "member"]:
        row = stored["members"].index(member)
        flat = torch.cat([layer["weight"][row].flatten() for layer in stored["layers"]])
        zeros.append(float((flat.abs() <= weight_figures.MAGNITUDE_FLOOR).double().mean()))
    assert np.mean(zeros) > 0.5  # the synthetic proximal L1 weights are mostly exact zeros
    line = family_line(drawn["diabetes"]["02_weight_magnitudes"].figure.get_axes()[0], "proximal L1")
    assert line.get_xdata()[0] == pytest.approx(np.log10(weight_figures.MAGNITUDE_FLOOR))
    assert line.get_ydata()[0] == pytest.approx(np.mean(zeros))
    caption = drawn["diabetes"]["02_weight_magnitudes"].caption
    assert f"proximal L1 {config.split('/')[2]}: {np.mean(zeros):.1%}" in caption


def test_feature_names_come_from_the_prepared_metadata(in_study):
    names = [f"x{i}" for i in range(8)]
    path = in_study / prepared_paths("diabetes")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.write_text(json.dumps({"feature_names": names}))
        assert plot_evidence.load_evidence("diabetes", read_tables(plot_evidence.TABLES)).feature_names == names
        path.write_text(json.dumps({"feature_names": names[:5]}))
        with pytest.raises(DataError, match=r"diabetes.json: feature_names is .*expected 8 strings"):
            plot_evidence.load_evidence("diabetes", read_tables(plot_evidence.TABLES))
    finally:
        shutil.rmtree(path.parent)


def run_stage(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.figures"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_missing_table_is_one_line_error_and_previous_figures_stay(tmp_path):
    write_study(tmp_path, seeds=2)
    previous = tmp_path / results.FIGURES_DIR / "diabetes" / "captions.json"
    previous.parent.mkdir(parents=True)
    previous.write_text("{}")
    (tmp_path / results.TABLES_DIR / "ranking.csv").unlink()
    line = one_line_error(run_stage(tmp_path))
    assert "reports/tables/ranking.csv: not found" in line
    assert previous.read_text() == "{}"
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["figures", "results", "tables"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda root: (root / weights_path("diabetes")).write_bytes(b"not a checkpoint"),
            "models/diabetes/weights.pt: not a readable weights file",
        ),
        (
            lambda root: torch.save({"members": [0, 1]}, root / weights_path("diabetes")),
            "models/diabetes/weights.pt: expected {'members'",
        ),
        (
            lambda root: (
                pd.read_csv(root / results.TABLES_DIR / "selected.csv")
                .drop(columns="config")
                .to_csv(root / results.TABLES_DIR / "selected.csv", index=False)
            ),
            "reports/tables/selected.csv: missing columns ['config']",
        ),
        (
            lambda root: (
                pd.read_csv(root / runs_path("diabetes"))
                .assign(status="crashed")
                .to_csv(root / runs_path("diabetes"), index=False)
            ),
            "reports/results/diabetes/runs.csv: config 'adam/none', seed 0: status 'crashed'; "
            "expected 'ok' or 'diverged'",
        ),
    ],
)
def test_bad_input_names_the_file_and_what_was_expected(tmp_path, monkeypatch, capsys, damage, message):
    write_study(tmp_path, seeds=2)
    damage(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        figures.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / results.FIGURES_DIR).exists()


def test_no_results_is_an_error(tmp_path, monkeypatch, capsys):
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        figures.main()
    assert f"{RESULTS_DIR}: no <dataset>/runs.csv found" in capsys.readouterr().err


def test_mean_ci_is_the_student_t_interval():
    values = [0.81, 0.84, 0.83, 0.86, 0.80]
    expected = stats.t.interval(0.95, 4, loc=np.mean(values), scale=stats.sem(values))
    assert plotting.mean_ci(values) == pytest.approx(expected)
    assert all(np.isnan(plotting.mean_ci([0.8])))
    assert plotting.seeds_phrase(pd.Series([10, 10])) == "10 seeds"
    assert plotting.seeds_phrase(pd.Series([8, 10])) == "8–10 seeds per point"


def test_captions_name_lines_drawn_on_top_of_each_other(in_study):
    evidence = plot_evidence.load_evidence("diabetes", read_tables(plot_evidence.TABLES))
    drawn = accuracy_figures.accuracy(evidence)
    assert "Lines on top of each other" not in drawn.caption
    plotting.plt.close(drawn.figure)
    runs = evidence.runs
    l2, prox = (
        runs[runs["config"].str.startswith(f"adam/{f}/")].sort_values(["strength", "seed"]).index
        for f in ("l2", "prox_l1")
    )
    runs.loc[prox, "test_acc"] = runs.loc[l2, "test_acc"].to_numpy()  # the same strengths, made equal
    drawn = accuracy_figures.accuracy(evidence)
    assert "Lines on top of each other: L2 (adam) and proximal L1 (adam)." in drawn.caption
    plotting.plt.close(drawn.figure)


def test_coupled_weight_decay_is_drawn_as_l2_only_and_the_captions_say_so(drawn, study):
    runs = pd.read_csv(study / runs_path("diabetes"))
    trained = int((results.main_grid(runs)["family"] == "weight_decay").sum())
    assert trained > 0  # the synthetic grid trains it, under adam and sgd
    decay = tuple(np.round(plotting.FAMILY_COLORS["weight decay"], 3))
    for name, d in drawn["diabetes"].items():
        colours = {
            tuple(np.round(to_rgb(c), 3))
            for ax in d.figure.get_axes()
            for c in [line.get_color() for line in ax.get_lines()]
            + [rgba for coll in ax.collections for rgba in coll.get_facecolors()]
        }
        assert decay not in colours, name
        legend = [t.get_text() for leg in d.figure.legends for t in leg.get_texts()]
        assert "weight decay" not in legend, name
    sentence = f"Weight decay ({trained} members trained, 0 diverged) is not drawn: it is the L2 penalty"
    for name in ("01_sparsity", "03_weight_norm", "04_test_accuracy", "05_generalization_gap", "12_pareto_frontier"):
        assert sentence in drawn["diabetes"][name].caption, name


def test_line_styles_stay_distinct_for_many_levels():
    styles = plotting.line_styles([f"level {i}" for i in range(12)])
    assert len(set(map(str, styles.values()))) == 12
    assert set(plotting.line_styles(["a", "b"], markers=False).values()) == {("", ""), ((4, 1.5), "")}


def test_pruning_curves_are_the_mean_of_pruning_csv_over_seeds(drawn, study):
    pruning = pd.read_csv(study / results.pruning_path("diabetes"))
    expected = 100 * pruning[pruning["config"] == "sgd/none"].groupby("fraction")["val_acc"].mean()
    ax = drawn["diabetes"]["11_pruning_curves"].figure.get_axes()[1]
    assert ax.get_title() == "sgd"
    grey = tuple(np.round(to_rgb(plotting.BASELINE_COLOR), 3))
    (line,) = [
        ln for ln in ax.get_lines() if tuple(np.round(to_rgb(ln.get_color()), 3)) == grey and ln.get_xydata().size
    ]
    assert line.get_ydata() == pytest.approx(expected.to_numpy())


def test_pareto_points_are_config_means_and_the_frontier_is_undominated(drawn, study):
    runs = results.main_grid(pd.read_csv(study / runs_path("diabetes")))
    group = runs["optimizer"].map(group_of)
    adam = runs[(group == "adam") & ~runs["penalize_bias"] & ~runs["family"].isin(["elastic", *IDENTICAL_TO])]
    means = adam.groupby("config")[["val_acc", "prunable_fraction"]].mean()
    ax = drawn["diabetes"]["12_pareto_frontier"].figure.get_axes()[0]
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert sorted(map(tuple, np.round(points, 6))) == sorted(
        map(tuple, np.round(np.c_[100 * means["val_acc"], means["prunable_fraction"]], 6))
    )
    l1 = tuple(np.round(to_rgb(plotting.FAMILY_COLORS["L1"]), 3))
    (step,) = [ln for ln in ax.get_lines() if tuple(np.round(to_rgb(ln.get_color()), 3)) == l1]
    x, y = step.get_xdata(), step.get_ydata()
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) <= 0)  # more accurate, less prunable


def test_layer_magnitudes_draw_the_initial_weights_rebuilt_from_the_seeds(drawn, study):
    from pipelines.plots import pruning_figures
    from pipelines.training import networks

    figure = drawn["diabetes"]["13_layer_magnitudes"].figure
    ax = figure.get_axes()[0]
    assert ax.get_title() == "adam, layer 1"
    initial = [ln for ln in ax.get_lines() if to_rgb(ln.get_color()) == (0.0, 0.0, 0.0)]
    sizes = [DATASETS["diabetes"]["inputs"], *DATASETS["diabetes"]["hidden"], DATASETS["diabetes"]["classes"]]
    curves = [pruning_figures._ecdf(networks.initial_parameters(s, sizes)[0][0].numpy()) for s in range(SEEDS)]
    assert initial[0].get_ydata() == pytest.approx(np.mean(curves, axis=0))


def test_a_zero_layer_has_all_its_weights_at_the_left_edge():
    from pipelines.plots import pruning_figures

    assert pruning_figures._ecdf(np.zeros((3, 4))).tolist() == [1.0] * pruning_figures.RATIO_POINTS
    ecdf = pruning_figures._ecdf(np.array([0.0, 1.0, 1.0, 1.0]))
    assert ecdf[0] == 0.25 and ecdf[-1] == 1.0


def test_the_lr_maps_box_the_validation_best_strength_of_every_lr(drawn: dict[str, dict[str, plotting.Drawn]]):
    assert "14_lr_maps" not in drawn["fashion_mnist"]  # no map cells there: no figure
    figure = drawn["diabetes"]["14_lr_maps"].figure
    axes = [ax for ax in figure.get_axes() if ax.get_title()]
    assert len(axes) == 2 * 2 * 2  # (adam, sgd) × (penalty, decoupled) × (validation, test)
    adamw = next(ax for ax in axes if ax.get_title() == "adamw: val acc (%)")
    strengths = [float(t.get_text()) for t in adamw.get_xticklabels()]
    lrs = [float(t.get_text()) for t in adamw.get_yticklabels()]
    boxed = {lrs[int(p.get_y())]: strengths[int(p.get_x())] for p in adamw.patches if not p.get_fill()}
    assert sum(not p.get_fill() for p in adamw.patches) == len(lrs)  # one box per row
    assert boxed == pytest.approx({lr: 1e-3 / lr for lr in lrs})  # the peak of MAP_PEAKS in every row


def test_statistics_draw_the_seeds_the_t_interval_the_holm_p_and_ranks_as_dots(drawn, study):
    runs = pd.read_csv(study / runs_path("diabetes"))
    curves = pd.read_csv(study / results.curves_path("diabetes"))
    stopped = early_stopping.baseline(runs[(runs["grid"] == "main") & (runs["status"] == "ok")], curves)
    every = pd.concat([runs, stopped])
    table = pd.read_csv(study / results.TABLES_DIR / "comparisons.csv")
    table = table[table["dataset"] == "diabetes"].set_index("a")
    figure = drawn["diabetes"]["10_statistics"].figure
    forest, ranks, p_values = figure.get_axes()
    rows = {t.get_text(): y for t, y in zip(forest.get_yticklabels(), forest.get_yticks())}
    printed = dict(zip(p_values.get_yticks(), (t.get_text() for t in p_values.get_yticklabels())))
    checked = set()
    for config, row in table.iterrows():
        family = row["family_a"]
        label = plot_evidence.config_label(str(config), row["optimizer"], family).replace("\n", " ")
        y = rows[label]
        seeds = paired_test_acc(every, str(config), row["b"])
        assert len(seeds) == row["n"] and seeds.mean() == pytest.approx(row["mean_diff"] * 100)
        colour = to_rgb(plotting.FAMILY_COLORS[plotting.family_label(family)])
        dots = [
            c.get_offsets()
            for c in forest.collections
            if isinstance(c, PathCollection) and np.allclose(c.get_offsets()[:, 1].mean(), y)
        ]
        assert sorted(dots[0][:, 0]) == pytest.approx(sorted(seeds))
        (mean,) = [
            ln for ln in forest.get_lines() if list(np.asarray(ln.get_ydata())) == [y] and ln.get_marker() == "o"
        ]
        assert mean.get_xdata()[0] == pytest.approx(seeds.mean())
        assert np.allclose(to_rgb(mean.get_color()), colour)
        (bar,) = [
            c for c in forest.collections if isinstance(c, LineCollection) and np.allclose(c.get_segments()[0][:, 1], y)
        ]
        interval = stats.ttest_1samp(seeds, 0).confidence_interval()
        assert bar.get_segments()[0][:, 0] == pytest.approx([interval.low, interval.high])
        assert printed[y] == f"Holm p = {row['holm_p']:.2g}"
        checked.add(family)
    assert "early_stopping" in checked and "bh_p" not in drawn["diabetes"]["10_statistics"].caption
    assert "Holm" in drawn["diabetes"]["10_statistics"].caption
    assert not ranks.patches  # ranks are dots, not bars
    ranking = pd.read_csv(study / results.TABLES_DIR / "ranking.csv")
    ranked = sorted(np.round(ranking.loc[ranking["dataset"] == "diabetes", "mean_rank"], 9))
    assert sorted(np.round([ln.get_xdata()[0] for ln in ranks.get_lines()], 9)) == ranked


def test_learning_curves_overlay_each_group_with_validation_and_training_loss(drawn, study):
    figure = drawn["diabetes"]["06_learning_curves"].figure
    assert [ax.get_title() for ax in figure.get_axes()] == ["adam", "sgd"]
    curves = pd.read_csv(study / results.curves_path("diabetes"))
    baseline = curves[curves["config"] == "sgd/none"].groupby("epoch")[["val_loss", "train_loss"]].mean()
    grey = to_rgb(plotting.BASELINE_COLOR)
    lines = [ln for ln in figure.get_axes()[1].get_lines() if np.allclose(to_rgb(ln.get_color()), grey)]
    solid = [ln for ln in lines if ln.get_linestyle() == "-"]
    dashed = [ln for ln in lines if ln.get_linestyle() != "-"]
    assert solid[0].get_ydata() == pytest.approx(baseline["val_loss"].to_numpy())
    assert dashed[0].get_ydata() == pytest.approx(baseline["train_loss"].to_numpy())
    assert (
        "Validation loss (solid) and training loss (dashed, faint)" in drawn["diabetes"]["06_learning_curves"].caption
    )


def test_lr_maps_share_one_colour_scale_and_order_the_learning_rate_upwards(drawn):
    figure = drawn["diabetes"]["14_lr_maps"].figure
    heatmaps = [ax for ax in figure.get_axes() if ax.get_title()]
    assert len(figure.get_axes()) == len(heatmaps) + 1  # one colourbar
    assert len({(ax.collections[0].norm.vmin, ax.collections[0].norm.vmax) for ax in heatmaps}) == 1
    for ax in heatmaps:
        lrs = [float(t.get_text()) for t in ax.get_yticklabels()]
        strengths = [float(t.get_text()) for t in ax.get_xticklabels()]
        assert lrs == sorted(lrs) and strengths == sorted(strengths)
        rows = [ax.transData.transform((0, y))[1] for y in ax.get_yticks()]
        assert rows == sorted(rows)  # on the page, each larger learning rate is drawn higher


def test_the_glance_draws_each_headline_effect_in_its_outcome_colour() -> None:
    rows = [
        ("fashion_mnist", "H1a", "supported", 0.12, 0.05, 0.19, 10),
        ("diabetes", "H1a", "contradicted", -0.3, -0.5, -0.1, 10),
        ("fashion_mnist", "H6", "inconclusive", math.nan, math.nan, math.nan, 0),
        ("diabetes", "H6", "not shown", 0.004, -0.01, 0.018, 10),
    ]
    verdicts = pd.DataFrame(
        [
            {"dataset": d, "hypothesis": h, "verdict": v, "effect": e, "ci_low": lo, "ci_high": hi, "n": n}
            | {"measure": f"{h} measure", "title": h, "finding": "", "rule": "", "evidence": ""}
            for d, h, v, e, lo, hi, n in rows
        ],
        columns=TABLE_COLUMNS["verdicts"],
    )
    drawn = glance.at_a_glance(verdicts)
    panels = np.array(drawn.figure.axes[:4]).reshape(2, 2)  # rows: H1a, H6; columns: fashion_mnist, diabetes
    for (*_, verdict, effect, low, high, n), ax in zip(rows, [panels[0, 0], panels[0, 1], panels[1, 0], panels[1, 1]]):
        points = [line for line in ax.lines if line.get_marker() == "o"]
        if not n:
            assert points == [] and "no headline effect" in ax.get_title()
            continue
        (point,) = points
        assert point.get_xdata()[0] == pytest.approx(effect)
        assert to_rgb(point.get_color()) == pytest.approx(to_rgb(glance.OUTCOME_COLORS[verdict]))
        (bar,) = [c for c in ax.collections if len(c.get_segments())]
        assert bar.get_segments()[0][:, 0] == pytest.approx([low, high])
        low_x, high_x = ax.get_xlim()
        assert low_x < 0 < high_x and low_x <= low and high <= high_x  # zero and the interval on the page
    plt.close(drawn.figure)


def test_an_arm_selected_per_split_is_drawn_from_the_members_its_splits_chose(tmp_path, monkeypatch):
    """Where the splits chose different strengths the analysis names an arm (selection.py); the
    figures draw it from the arms table: per seed, the member its split chose, under the arm's name."""
    write_study(tmp_path, seeds=4, datasets=("diabetes",))
    arm, chose = "adam/l2/per-split", {0: "adam/l2/l2=0.01", 1: "adam/l2/l2=0.1"}
    runs = pd.read_csv(tmp_path / runs_path("diabetes"))
    member = runs[runs["grid"] == "main"].set_index(["config", "seed"])["member"]
    tables_dir = tmp_path / results.TABLES_DIR
    arms = pd.read_csv(tables_dir / "arms.csv")
    l2 = arms.index[(arms["optimizer"] == "adam") & (arms["family"] == "l2")]
    old = arms.loc[l2[0], "selected"]
    arms.loc[l2, "selected"] = arm
    arms.loc[l2, "config"] = [chose[s % 2] for s in arms.loc[l2, "seed"]]
    arms.loc[l2, "member"] = [member[(chose[s % 2], s)] for s in arms.loc[l2, "seed"]]
    arms.to_csv(tables_dir / "arms.csv", index=False)
    test_acc = runs.set_index("member")["test_acc"]
    expected = pd.Series({s: test_acc[m] for s, m in zip(arms.loc[l2, "seed"], arms.loc[l2, "member"])})
    none = runs[runs["config"] == "adam/none"].set_index("seed")["test_acc"]
    for name, column in (("selected", "config"), ("ranking", "config"), ("comparisons", "a")):
        table = pd.read_csv(tables_dir / f"{name}.csv")
        table[column] = table[column].replace(old, arm)
        if name == "comparisons":
            table.loc[table["a"] == arm, "mean_diff"] = (expected - none).mean()
        table.to_csv(tables_dir / f"{name}.csv", index=False)
    monkeypatch.chdir(tmp_path)
    plotting.use_theme()

    evidence = plot_evidence.load_evidence("diabetes", read_tables(plot_evidence.TABLES))
    drawn_arm = evidence.selected[evidence.selected["config"] == arm].set_index("seed")
    assert drawn_arm["trained_config"].to_dict() == {s: chose[s % 2] for s in drawn_arm.index}
    assert set(drawn_arm["variant"]) == {"adam"} and old not in evidence.selected_configs
    assert evidence.test_acc[arm].dropna().to_dict() == pytest.approx(expected.to_dict())
    figures = {d.name: d for d in (draw(evidence) for draw in catalog.FIGURES) if d is not None}
    forest = figures["10_statistics"].figure.get_axes()[0]
    assert "adam · L2 selected per split" in [t.get_text() for t in forest.get_yticklabels()]
    for d in figures.values():
        plotting.plt.close(d.figure)

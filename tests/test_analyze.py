"""The analyze stage on synthetic results tables (tests/synthetic.py), run in conftest's workdir."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import analyze
from pipelines.analysis import early_stopping, study
from pipelines.analysis.hypotheses import HYPOTHESES, Context
from pipelines.analysis.plan import Comparison, Plan
from pipelines.core import params, results, tables
from pipelines.core.errors import DataError

import synthetic

REPO = Path(__file__).resolve().parents[1]
VERDICTS = {"supported", "contradicted", "not shown", "inconclusive"}
HYPOTHESES_IDS = [h.id for h in HYPOTHESES]


def settings() -> params.AnalyzeParams:
    return params.load().analyze


def run_diabetes() -> None:
    analyze.analyze(settings(), datasets=("diabetes",))


def edit_runs(root: Path, change: Callable[[pd.DataFrame], pd.DataFrame], dataset: str = "diabetes") -> None:
    path = results.runs_path(dataset, root / results.RESULTS_DIR)
    change(pd.read_csv(path)).to_csv(path, index=False)


def table(name: str) -> pd.DataFrame:
    return tables.read()[name]


def test_stage_writes_every_table_and_metrics_with_verdicts(workdir: Path) -> None:
    for dataset in params.DATASETS:
        synthetic.write_results(workdir, dataset, effect=1.0)
    analyze.main()

    for name in tables.COLUMNS:
        for suffix in (".csv", ".md", ".tex"):
            assert (results.TABLES_DIR / f"{name}{suffix}").stat().st_size > 0, (name, suffix)
    assert {name: list(frame.columns) for name, frame in tables.read().items()} == tables.COLUMNS
    metrics = json.loads(results.SUMMARY_FILE.read_text())
    verdicts = table("verdicts")
    assert set(metrics) == set(params.DATASETS)
    for dataset, summary in metrics.items():
        rows = verdicts[verdicts["dataset"] == dataset].set_index("hypothesis")
        assert list(rows.index) == ["H1a", "H1b", "H2", "H3", "H4", "H5", "H6"]
        assert {h: summary[h]["verdict"] for h in rows.index} == rows["verdict"].to_dict()
        assert set(rows["verdict"]) <= VERDICTS
        # The synthetic effects: L1 sparsifies, L2 shrinks, dropout narrows the gap.
        assert rows.loc[["H1a", "H1b", "H2", "H3"], "verdict"].tolist() == ["supported"] * 4
        assert rows.loc[["H1a", "H1b", "H2"], "finding"].str.contains("seeds").all()
        selected = table("selected")
        baseline = selected[
            (selected["dataset"] == dataset)
            & (selected["optimizer"] == summary["best_optimizer"])
            & (selected["family"] == "none")
        ]
        assert summary["baseline_test_acc"] == pytest.approx(baseline["test_acc_mean"].item())
        assert summary["members"] == len(results.main_grid(pd.read_csv(results.runs_path(dataset))))
        for hypothesis, row in rows.iterrows():
            headline = json.loads((results.HEADLINES_DIR / dataset / f"{hypothesis}.json").read_text())
            assert headline["outcome"] == row["verdict"] and headline["n"] == row["n"]
            for key in ("effect", "ci_low", "ci_high"):
                assert headline[key] == pytest.approx(row[key], nan_ok=True) or (
                    headline[key] is None and pd.isna(row[key])
                )


def test_holm_only_in_h4_and_descriptive_rows_in_no_family(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes", effect=1.0)
    run_diabetes()
    comparisons = table("comparisons")
    tested = comparisons.dropna(subset=["holm_p"])
    assert (tested["holm_p"] >= tested["wilcoxon_p"] - 1e-12).all()
    descriptive = comparisons[comparisons["role"] == "descriptive"]
    assert len(descriptive) and descriptive["predicted"].isna().all() and descriptive["holm_p"].isna().all()
    assert comparisons["holm_p"].notna().groupby(comparisons["hypothesis"]).any().to_dict() == {
        h: h == "H4" for h in sorted(comparisons["hypothesis"].unique())
    }
    assert (comparisons["n"] == 10).all()
    h6 = table("equivalence").query("hypothesis == 'H6'")
    h6_summary = json.loads(results.SUMMARY_FILE.read_text())["diabetes"]["H6"]
    assert len(h6) == h6_summary["pairs"] > 0  # a pair whose partner is broken is counted, not tested
    assert h6_summary["pairs"] + h6_summary["broken"] == len(synthetic.BIAS_ABLATION)
    assert all(a == b + "/bias" for a, b in zip(h6["a"], h6["b"]))
    assert table("frontier")["reached"].all()  # the synthetic cliff: every cost is reached


def test_a_descriptive_comparison_cannot_change_a_verdict(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Descriptive rows are outside every test family: adding one per config, some with tiny p,
    changes no verdict and no p that a verdict reads."""
    synthetic.write_results(workdir, "diabetes", effect=1.0)
    run_diabetes()
    verdicts, comparisons = table("verdicts"), table("comparisons")
    planned = study.plan

    def with_descriptive_rows(context: Context) -> Plan:
        tests = planned(context)
        for group in context.grid.groups():
            none = context.grid.baseline(group)
            configs = context.grid.configs.index[context.grid.configs["group"] == group]
            tests.comparisons += [Comparison("H4", "per_strength", "test_acc", c, none) for c in configs if c != none]
        return tests

    monkeypatch.setattr(study, "plan", with_descriptive_rows)
    run_diabetes()
    more = table("comparisons")
    assert len(more) > len(comparisons) and (more.query("role == 'descriptive'")["wilcoxon_p"] < 0.01).any()
    pd.testing.assert_frame_equal(table("verdicts"), verdicts)

    def judged(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["role"] == "judged"].reset_index(drop=True)

    pd.testing.assert_frame_equal(judged(more), judged(comparisons))


def test_no_effect_is_not_shown_rather_than_contradicted(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes", effect=0.0)
    run_diabetes()
    verdicts = table("verdicts").set_index("hypothesis")["verdict"]
    assert verdicts[["H1a", "H1b", "H2", "H3"]].tolist() == ["not shown"] * 4


def test_missing_results_file_is_one_line_error_and_nothing_is_written(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes")  # fashion_mnist is missing
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.analyze"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "reports/results/fashion_mnist/runs.csv" in lines[0]
    assert not (workdir / results.TABLES_DIR).exists() and not (workdir / results.SUMMARY_FILE).exists()


def test_missing_column_is_named(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes")
    edit_runs(workdir, lambda runs: runs.drop(columns="hoyer"))
    with pytest.raises(DataError, match="hoyer"):
        run_diabetes()


def test_nan_in_an_ok_row_is_refused_and_previous_outputs_stay(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes")
    run_diabetes()
    before = {p: p.read_bytes() for p in [*results.TABLES_DIR.iterdir(), results.SUMMARY_FILE]}

    def poison(runs: pd.DataFrame) -> pd.DataFrame:
        runs.loc[(runs["config"] == "adam/l2/l2=0.01") & (runs["seed"] == 4), "test_acc"] = np.nan
        return runs

    edit_runs(workdir, poison)
    with pytest.raises(DataError) as error:
        run_diabetes()
    message = str(error.value)
    for part in ("runs.csv", "'adam/l2/l2=0.01'", "seed 4", "test_acc"):
        assert part in message
    assert {p: p.read_bytes() for p in [*results.TABLES_DIR.iterdir(), results.SUMMARY_FILE]} == before


def test_diverged_members_are_excluded_and_counted(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes")
    config = "adam/l1/l1=0.001"

    def diverge(runs: pd.DataFrame) -> pd.DataFrame:
        rows = (runs["config"] == config) & runs["seed"].isin([3, 7])
        runs.loc[rows, "status"] = "diverged"
        runs.loc[rows, "diverged_epoch"] = 2
        runs.loc[rows, results.METRIC_COLUMNS] = np.nan
        return runs

    edit_runs(workdir, diverge)
    run_diabetes()
    exclusions = table("exclusions").set_index("config")
    assert exclusions.loc[config, ["members", "diverged"]].tolist() == [10, 2]
    assert exclusions.loc[config, "diverged_seeds"] == "3;7"
    assert exclusions["diverged"].sum() == 2
    runs = pd.read_csv(results.runs_path("diabetes"))
    kept = runs[(runs["config"] == config) & (runs["status"] == "ok")]
    involved = table("comparisons").query("a == @config and metric == 'negligible'")
    assert not involved.empty and (involved["n"] == 8).all()
    assert involved["mean_a"].to_numpy() == pytest.approx(kept["negligible"].mean())
    assert json.loads(results.SUMMARY_FILE.read_text())["diabetes"]["diverged"] == 2


def test_unmeasured_structure_is_excluded_counted_and_never_a_nan_verdict(workdir: Path) -> None:
    """An ok member whose structure measures are NaN (say NaN weights that did not make the loss
    diverge) is left out of the tests of those measures and counted in the exclusions table."""
    synthetic.write_results(workdir, "diabetes", effect=1.0)
    config = "adam/prox_l1/prox_l1=0.001"

    def unmeasured(runs: pd.DataFrame) -> pd.DataFrame:
        rows = (runs["config"] == config) & runs["seed"].isin([2, 5])
        runs.loc[rows, results.STRUCTURE_COLUMNS] = np.nan
        return runs

    edit_runs(workdir, unmeasured)
    run_diabetes()
    exclusions = table("exclusions").set_index("config")
    assert exclusions.loc[config, ["members", "diverged", "unmeasured"]].tolist() == [10, 0, 2]
    assert exclusions.loc[config, "unmeasured_seeds"] == "2;5"
    assert exclusions["unmeasured"].sum() == 2
    frontier = table("comparisons").query("a == @config and metric == 'prunable_fraction'")
    assert not frontier.empty and (frontier["n"] == 8).all()
    assert (table("comparisons").query("a == @config and metric == 'test_acc'")["n"] == 10).all()
    verdicts = table("verdicts").set_index("hypothesis")
    assert verdicts.loc["H1b", "verdict"] == "supported"
    assert not verdicts[["finding", "evidence"]].stack().str.contains("nan").any()


def test_results_without_structure_columns_leave_h1_inconclusive(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes", effect=1.0)
    edit_runs(workdir, lambda runs: runs.drop(columns=results.STRUCTURE_COLUMNS))
    run_diabetes()
    verdicts = table("verdicts").set_index("hypothesis")
    assert verdicts.loc[["H1a", "H1b"], "verdict"].tolist() == ["inconclusive"] * 2
    assert verdicts.loc["H1a", "evidence"].startswith("adam, 0.5 points: no measured l1 frontier under adam")
    assert table("frontier").empty


def test_a_single_seed_is_inconclusive_with_the_reason(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes", seeds=1)
    run_diabetes()
    verdicts = table("verdicts")
    assert (verdicts["verdict"] == "inconclusive").all()
    assert verdicts["evidence"].str.contains("Undecided: ").all()
    assert not table("comparisons")["can_reach_alpha"].any()
    summary = json.loads(results.SUMMARY_FILE.read_text())["diabetes"]
    assert {summary[h]["verdict"] for h in HYPOTHESES_IDS} == {"inconclusive"}


def test_unknown_status_is_refused(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes")
    edit_runs(workdir, lambda runs: runs.assign(status=np.where(runs.index == 5, "exploded", runs["status"])))
    with pytest.raises(DataError, match="status 'exploded'"):
        run_diabetes()


def test_a_group_without_baseline_is_refused(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes")
    edit_runs(workdir, lambda runs: runs[runs["config"] != "sgd/none"])
    with pytest.raises(DataError, match="'sgd' has no baseline"):
        run_diabetes()


def test_a_group_whose_baseline_diverged_is_inconclusive_and_the_others_are_judged(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes")

    def diverge(runs: pd.DataFrame) -> pd.DataFrame:
        rows = runs["config"] == "sgd/none"
        runs.loc[rows, "status"] = "diverged"
        runs.loc[rows, results.METRIC_COLUMNS] = np.nan
        return runs

    edit_runs(workdir, diverge)
    run_diabetes()
    reason = "sgd: every member of baseline sgd/none diverged"
    verdicts = table("verdicts").set_index("hypothesis")
    for hypothesis in ("H1a", "H1b", "H2", "H3", "H4", "H5"):
        verdict, evidence = verdicts.loc[hypothesis, ["verdict", "evidence"]]
        # Inconclusive for want of sgd, unless a check of adam's already fails.
        said = "Undecided: " if verdict == "inconclusive" else "Not analysed: "
        assert verdict in {"inconclusive", "not shown", "contradicted"} and reason in evidence.split(said)[1], (
            hypothesis
        )
    assert verdicts.loc["H2", "verdict"] == "inconclusive"  # adam's checks pass: only sgd is missing
    assert verdicts.loc["H2", "evidence"].startswith("adam: weight_l2")
    assert reason not in verdicts.loc["H6", "evidence"]  # the ablation needs no baseline
    assert set(table("comparisons")["optimizer"]) == set(table("selected")["optimizer"]) == {"adam"}
    summary = json.loads(results.SUMMARY_FILE.read_text())["diabetes"]
    assert summary["lost_groups"] == [f"{reason}, so the group cannot be compared against it"]
    assert summary["best_optimizer"] == "adam" and summary["H4"]["adam_friedman_p"] is not None
    assert "sgd_friedman_p" not in summary["H4"]
    exclusions = table("exclusions").set_index("config")
    assert exclusions.loc["sgd/none", ["members", "diverged"]].tolist() == [10, 10]


def _best_at(runs: pd.DataFrame, config: str) -> pd.DataFrame:
    """runs with `config` made the best on validation by a wide margin."""
    runs.loc[runs["config"] == config, "val_acc"] = 0.99
    return runs


def test_a_selection_at_either_end_of_a_ladder_is_marked_and_one_inside_is_not(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes", effect=1.0)
    best = ("adam/l1/l1=0.01", "adam/l2/l2=0.01", "sgd/l2/l2=0.001", "adam/activity/act_l1=0.0001")
    edit_runs(workdir, lambda r: functools.reduce(_best_at, best, r))
    run_diabetes()
    selected = table("selected").set_index(["optimizer", "family"])
    assert selected.loc[("adam", "l1"), "edge"] == "strongest l1"
    assert selected.loc[("adam", "l2"), "edge"] == "no"  # 1e-2 is inside 1e-3, 1e-2, 1e-1
    assert selected.loc[("sgd", "l2"), "edge"] == "weakest l2"
    assert selected.loc[("adam", "activity"), "edge"] == "weakest act_l1"  # a ladder of two


def test_a_weakest_selection_that_validates_like_none_is_no_edge(workdir: Path) -> None:
    """The weak end of a ladder that reached "no visible effect" (within the test_acc margin of none
    on validation) is bracketed by the baseline; beyond the margin it is an edge."""
    margin = params.load().analyze.margins.diabetes.test_acc.value
    synthetic.write_results(workdir, "diabetes", effect=1.0)

    def weakest_best_by(gap: float) -> Callable[[pd.DataFrame], pd.DataFrame]:
        def change(runs: pd.DataFrame) -> pd.DataFrame:
            none = runs[runs["config"] == "sgd/none"].set_index("seed")["val_acc"]
            sgd_l2 = runs["config"].str.startswith("sgd/l2/")
            runs.loc[sgd_l2, "val_acc"] = runs.loc[sgd_l2, "seed"].map(none) - 0.1
            weakest = runs["config"] == "sgd/l2/l2=0.001"
            runs.loc[weakest, "val_acc"] = runs.loc[weakest, "seed"].map(none) + gap
            return runs

        return change

    edit_runs(workdir, weakest_best_by(margin / 2))
    run_diabetes()
    assert table("selected").set_index(["optimizer", "family"]).loc[("sgd", "l2"), "edge"] == "no"
    edit_runs(workdir, weakest_best_by(2 * margin))
    run_diabetes()
    assert table("selected").set_index(["optimizer", "family"]).loc[("sgd", "l2"), "edge"] == "weakest l2"


def _two_splits_choosing_apart(runs: pd.DataFrame) -> pd.DataFrame:
    """Seeds on two splits; on split 0 validation picks adam's l2=0.01, on split 1 l2=0.1."""
    runs["split"] = runs["seed"] % 2
    for config, split in (("adam/l2/l2=0.01", 0), ("adam/l2/l2=0.1", 1)):
        runs.loc[(runs["config"] == config) & (runs["split"] == split), "val_acc"] = 0.99
    return runs


def test_strengths_are_selected_within_each_split_and_an_arm_takes_each_seeds_choice(workdir: Path) -> None:
    runs, _ = synthetic.write_results(workdir, "diabetes", effect=1.0)
    edit_runs(workdir, _two_splits_choosing_apart)
    run_diabetes()
    arm = "adam/l2/per-split"
    selected = table("selected").set_index(["optimizer", "family"])
    assert selected.loc[("adam", "l2"), "config"] == arm
    assert selected.loc[("adam", "l2"), "chosen"] == "l2=0.01 ×1, l2=0.1 ×1"
    assert selected.loc[("adam", "l2"), "splits_at_edge"] == 1  # 0.1 is the strongest of 1e-3, 1e-2, 1e-1
    assert selected.loc[("sgd", "l2"), "chosen"].endswith("×2")  # the same choice on both splits: a config
    assert not selected.loc[("sgd", "l2"), "config"].endswith("per-split")

    member = runs.set_index(["config", "seed"])["member"]
    stand_ins = table("arms").query("selected == @arm").set_index("seed")
    expected = {s: member[("adam/l2/l2=0.01" if s % 2 == 0 else "adam/l2/l2=0.1", s)] for s in stand_ins.index}
    assert stand_ins["member"].to_dict() == expected

    test_acc = runs.set_index("member")["test_acc"]
    none = runs[runs["config"] == "adam/none"].set_index("seed")["test_acc"]
    comparisons = table("comparisons")
    h4 = comparisons[
        (comparisons["hypothesis"] == "H4") & (comparisons["a"] == arm) & (comparisons["b"] == "adam/none")
    ]
    arm_acc = pd.Series({s: test_acc[m] for s, m in expected.items()})
    assert h4["mean_diff"].iloc[0] == pytest.approx((arm_acc - none).mean())
    assert arm not in set(table("exclusions")["config"])  # an arm is members of trained configs, not one


def test_early_stopped_epoch_is_the_best_validation_accuracy_the_earliest_among_ties() -> None:
    curves = pd.DataFrame(
        {
            "member": [0, 0, 0, 0, 1, 1],
            "epoch": [2, 4, 6, 8, 2, 4],
            "val_acc": [0.5, 0.7, 0.7, 0.6, 0.9, 0.8],
            **{c: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] for c in early_stopping.READ_AT_BEST if c != "val_acc"},
        }
    )
    best = early_stopping.best_epochs(curves)
    assert best["epoch"].to_dict() == {0: 4, 1: 2}
    assert best["test_acc"].to_dict() == {0: 2.0, 1: 5.0}


def test_each_group_gains_an_early_stopping_baseline_read_from_its_curves(workdir: Path) -> None:
    _, curves = synthetic.write_results(workdir, "diabetes", effect=1.0)
    run_diabetes()
    selected = table("selected").set_index(["optimizer", "family"])
    for group in ("adam", "sgd"):
        stopped = selected.loc[(group, "early_stopping")]
        assert stopped["config"] == f"{group}/none/early_stopped" and stopped["n_seeds"] == len(curves["seed"].unique())
        members = pd.read_csv(results.runs_path("diabetes"))
        baseline = members[(members["config"] == f"{group}/none")]["member"]
        best = early_stopping.best_epochs(curves).loc[baseline]
        assert stopped["test_acc_mean"] == pytest.approx(best["test_acc"].mean())
    ranked = table("ranking")
    assert "early_stopping" in set(ranked["family"])


def test_with_every_member_early_stopped_the_baseline_is_not_added_twice(workdir: Path, set_param) -> None:
    _, curves = synthetic.write_results(workdir, "diabetes", effect=1.0)
    set_param("analyze.early_stopping", True)
    run_diabetes()
    selected = table("selected").set_index(["optimizer", "family"])
    assert "early_stopping" not in set(table("selected")["family"])
    members = pd.read_csv(results.runs_path("diabetes"))
    l1 = members[members["config"] == selected.loc[("adam", "l1"), "config"]]["member"]
    assert selected.loc[("adam", "l1"), "test_acc_mean"] == pytest.approx(
        early_stopping.best_epochs(curves).loc[l1, "test_acc"].mean()
    )


def test_the_linear_reference_is_selected_beside_the_networks_paired_by_seed_and_no_arm(workdir: Path) -> None:
    runs, _ = synthetic.write_results(workdir, "diabetes", effect=1.0)
    run_diabetes()
    selected = table("selected").set_index(["optimizer", "family"])
    linear = runs[runs["family"] == results.LINEAR]
    summary = json.loads(results.SUMMARY_FILE.read_text())["diabetes"]
    for group in synthetic.LINEAR_GROUPS:
        reference = selected.loc[(group, results.LINEAR)]
        assert reference["config"] == f"{group}/linear" and reference["strength"] == 0 and reference["edge"] == "no"
        mine = linear[linear["optimizer"] == group]
        assert reference["test_acc_mean"] == pytest.approx(mine["test_acc"].mean())
        # Paired by seed: the same seeds as the networks, and its difference from the best network is
        # the mean of the per-seed differences.
        best = runs[runs["config"] == summary["linear"][group]["best_network"]]
        assert sorted(mine["seed"]) == sorted(best["seed"]) and reference["n_seeds"] == len(best)
        per_seed = mine.set_index("seed")["test_acc"] - best.set_index("seed")["test_acc"]
        assert summary["linear"][group]["minus_best_network"] == pytest.approx(per_seed.mean())
        assert summary["linear"][group]["minus_best_network"] < 0  # synthetic: LINEAR_DEFICIT below
        assert summary["linear"][group]["n_seeds"] == len(per_seed)
        assert summary["linear"][group]["reading"] == "the network is better"  # 10 seeds, all below
    comparisons, ranked = table("comparisons"), table("ranking")
    assert results.LINEAR not in set(comparisons["family_a"]) | set(comparisons["family_b"]) | set(ranked["family"])
    assert summary["best_family"] != results.LINEAR
    exclusions = table("exclusions").set_index("config")
    assert (exclusions.loc[[f"{g}/linear" for g in synthetic.LINEAR_GROUPS], "unmeasured"] == 0).all()


def test_without_linear_references_there_is_no_row_and_no_headline(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes", effect=1.0, linear=False)
    run_diabetes()
    assert results.LINEAR not in set(table("selected")["family"])
    assert json.loads(results.SUMMARY_FILE.read_text())["diabetes"]["linear"] == {}


def test_a_member_missing_from_the_curves_is_one_line_naming_the_file(workdir: Path) -> None:
    synthetic.write_results(workdir, "diabetes", effect=1.0)
    path = results.curves_path("diabetes", workdir / results.RESULTS_DIR)
    curves = pd.read_csv(path)
    curves[curves["member"] != 0].to_csv(path, index=False)
    with pytest.raises(DataError, match=r"curves\.csv: curves: no evaluation of members \[0\]"):
        run_diabetes()


def test_coupled_weight_decay_is_never_an_arm(workdir: Path) -> None:
    """It is the l2 penalty by construction: as an arm it would be compared with itself."""
    synthetic.write_results(workdir, "diabetes", effect=1.0)
    run_diabetes()
    assert "weight_decay" not in set(table("selected")["family"]) | set(table("ranking")["family"])
    comparisons = table("comparisons")
    assert "weight_decay" not in set(comparisons["family_a"]) | set(comparisons["family_b"])


def test_an_all_zero_network_is_maximally_sparse_not_a_refused_nan(workdir: Path) -> None:
    """A strong proximal L1 can zero every weight; the trainer's Hoyer is then 0/0."""
    synthetic.write_results(workdir, "diabetes", effect=1.0)

    def zeroed(runs: pd.DataFrame) -> pd.DataFrame:
        strongest = runs["config"] == "adam/prox_l1/prox_l1=0.1"
        runs.loc[strongest, ["weight_l1", "weight_l2", "hoyer"]] = [0.0, 0.0, np.nan]
        return runs

    edit_runs(workdir, zeroed)
    run_diabetes()
    assert set(table("verdicts")["verdict"]) <= VERDICTS
    nan_in_other_rows = pd.read_csv(results.runs_path("diabetes"))
    nan_in_other_rows.loc[nan_in_other_rows["config"] == "adam/l1/l1=0.01", "hoyer"] = np.nan
    nan_in_other_rows.to_csv(results.runs_path("diabetes"), index=False)
    with pytest.raises(DataError, match=r"config 'adam/l1/l1=0.01', seed 0: hoyer is"):
        run_diabetes()


def test_h4s_headline_is_the_group_whose_check_fails(workdir: Path) -> None:
    """Every family beats none by a point, then SGD's tie with it: the headline must move to SGD's,
    which decides the verdict."""
    synthetic.write_results(workdir, "diabetes", effect=1.0)

    def regularizers_gain(gain: dict[str, float]) -> Callable[[pd.DataFrame], pd.DataFrame]:
        def change(runs: pd.DataFrame) -> pd.DataFrame:
            runs["group"] = runs["optimizer"].map(results.group_of)
            for group, points in gain.items():
                none = runs[runs["config"] == f"{group}/none"].set_index("seed")["test_acc"]
                mine = (runs["group"] == group) & (runs["grid"] == "main") & (runs["family"] != "none")
                runs.loc[mine, "test_acc"] = runs.loc[mine, "seed"].map(none) + points
            return runs.drop(columns="group")

        return change

    edit_runs(workdir, regularizers_gain({"adam": 0.01, "sgd": 0.01}))
    run_diabetes()
    h4 = table("verdicts").set_index("hypothesis").loc["H4"]
    assert h4["verdict"] == "supported" and h4["measure"].startswith("adam:")  # the first group's
    edit_runs(workdir, regularizers_gain({"sgd": 0.0}))
    run_diabetes()
    h4 = table("verdicts").set_index("hypothesis").loc["H4"]
    assert h4["verdict"] != "supported" and h4["measure"].startswith("sgd:")  # exact ties: undecided

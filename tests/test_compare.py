"""`make compare`: a fresh run against committed results, on synthetic reports in real directories and
a real git repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from pipelines.core.results import SUMMARY_FILE, TABLES_DIR
from pipelines.reporting import compare


def write_reports(root: Path, shift: float = 0.0, h2: str = "supported", best: str = "adam/l2/l2=0.01") -> Path:
    """reports/ as analyze writes it, for one dataset; `shift` moves every accuracy and difference."""
    (root / TABLES_DIR).mkdir(parents=True)
    metrics = {
        "diabetes": {
            "members": 40,
            "diverged": 0,
            "seeds": 10,
            "best_config": best,
            "best_family": "l2",
            "best_optimizer": "adam",
            "best_test_acc": 0.76 + shift,
            "baseline_test_acc": 0.72 + shift,
            "H1": {"verdict": "supported"},
            "H2": {"verdict": h2},
        }
    }
    (root / SUMMARY_FILE).write_text(json.dumps(metrics))
    pd.DataFrame(
        [
            {
                "dataset": "diabetes",
                "optimizer": "adam",
                "family": "none",
                "config": "adam/none",
                "test_acc_mean": 0.72 + shift,
                "test_acc_ci_low": 0.70,
                "test_acc_ci_high": 0.74,
            },
            {
                "dataset": "diabetes",
                "optimizer": "adam",
                "family": "l2",
                "config": best,
                "test_acc_mean": 0.76 + shift,
                "test_acc_ci_low": 0.75,
                "test_acc_ci_high": 0.77,
            },
        ]
    ).to_csv(root / TABLES_DIR / "selected.csv", index=False)
    pd.DataFrame(
        [
            {
                "dataset": "diabetes",
                "hypothesis": "H4",
                "scope": "selected",
                "metric": "test_acc",
                "a": "adam/l2/l2=0.01",
                "b": "adam/none",
                "mean_diff": 0.04 + shift,
                "ci_low": 0.02,
                "ci_high": 0.06,
            }
        ]
    ).to_csv(root / TABLES_DIR / "comparisons.csv", index=False)
    pd.DataFrame(
        [
            {"dataset": "diabetes", "hypothesis": h, "title": "t", "verdict": v, "rule": "r", "evidence": "e"}
            for h, v in (("H1", "supported"), ("H2", h2))
        ]
    ).to_csv(root / TABLES_DIR / "verdicts.csv", index=False)
    return root


def run(committed: str, cwd: Path, monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    with pytest.raises(SystemExit) as exited:
        compare.main([committed])
        raise SystemExit(0)
    return exited.value.code, capsys.readouterr().out


def test_a_run_within_the_spread_with_the_same_outcomes_agrees(tmp_path, monkeypatch, capsys):
    committed = write_reports(tmp_path / "committed")
    fresh = write_reports(tmp_path / "fresh", shift=0.005)
    code, out = run(str(committed), fresh, monkeypatch, capsys)
    assert code == 0
    assert "Every outcome is the same" in out
    # best_test_acc: +0.005 against a spread of 0.01 is half a spread; the baseline's spread is 0.02.
    assert "diabetes: best_test_acc: 0.76 -> 0.765 (+0.005, 0.50 spreads)" in out
    assert "diabetes: baseline_test_acc: 0.72 -> 0.725 (+0.005, 0.25 spreads)" in out
    assert "5 of 5 numbers within one seed-to-seed spread" in out


def test_a_changed_verdict_or_selection_is_named_and_fails(tmp_path, monkeypatch, capsys):
    committed = write_reports(tmp_path / "committed")
    fresh = write_reports(tmp_path / "fresh", shift=0.02, h2="not shown", best="adam/l2/l2=0.001")
    code, out = run(str(committed), fresh, monkeypatch, capsys)
    assert code == 1
    assert "diabetes: verdict H2: supported -> not shown" in out
    assert "diabetes: selected configuration adam l2: adam/l2/l2=0.01 -> adam/l2/l2=0.001" in out
    assert "diabetes: best_config: adam/l2/l2=0.01 -> adam/l2/l2=0.001" in out
    assert "2.00 spreads" in out and "outcomes differ." in out


def test_the_committed_results_are_read_from_git(tmp_path, monkeypatch, capsys):
    repo = write_reports(tmp_path / "repo")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "results"], cwd=repo, check=True)
    metrics = json.loads((repo / SUMMARY_FILE).read_text())
    metrics["diabetes"]["best_test_acc"] = 0.78
    (repo / SUMMARY_FILE).write_text(json.dumps(metrics))
    code, out = run("HEAD", repo, monkeypatch, capsys)
    assert code == 0
    assert out.startswith("reports against git HEAD:")
    assert "best_test_acc: 0.76 -> 0.78 (+0.02, 2.00 spreads)" in out


def test_a_missing_reference_is_one_line(tmp_path, monkeypatch, capsys):
    fresh = write_reports(tmp_path / "fresh")
    subprocess.run(["git", "init", "-q"], cwd=fresh, check=True)
    monkeypatch.chdir(fresh)
    with pytest.raises(SystemExit) as exited:
        compare.main(["no-such-revision"])
    assert exited.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: no-such-revision:reports/summary.json: not in git") and error.count("\n") == 1


def test_identical_results_are_zero_spreads_apart_even_where_the_spread_is_zero(tmp_path, monkeypatch, capsys):
    committed = write_reports(tmp_path / "committed")
    fresh = write_reports(tmp_path / "fresh")
    for root in (committed, fresh):  # a difference that is exactly 0 on every seed: an interval of width 0
        path = root / TABLES_DIR / "comparisons.csv"
        pd.read_csv(path).assign(mean_diff=0.0, ci_low=0.0, ci_high=0.0).to_csv(path, index=False)
    code, out = run(str(committed), fresh, monkeypatch, capsys)
    assert code == 0 and "inf" not in out
    assert "5 of 5 numbers within one seed-to-seed spread of the committed value (largest: 0.00 spreads)" in out

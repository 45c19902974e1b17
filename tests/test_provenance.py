"""Provenance: the report id follows the inputs (dvc.lock hashes, effective params) and nothing else."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy
import pytest
import yaml

from pipelines.core import params, provenance
from pipelines.core.errors import DataError


def lock(outs_md5: str = "a" * 32, report_md5: str = "b" * 32) -> dict:
    """A dvc.lock as dvc repro writes it: foreach stages named stage@item, and the report stage."""

    def entry(path: str, md5: str) -> dict:
        return {"path": path, "hash": "md5", "md5": md5, "size": 10}

    return {
        "schema": "2.0",
        "stages": {
            "prepare@diabetes": {
                "cmd": "python -m pipelines.prepare diabetes",
                "deps": [entry("data/raw/diabetes", "c" * 32 + ".dir")],
                "params": {"params.yaml": {"data.diabetes": {"seed": 0}}},
                "outs": [entry("data/prepared/diabetes.pt", outs_md5)],
            },
            "analyze": {
                "cmd": "python -m pipelines.analyze",
                "deps": [entry("reports/results", "d" * 32 + ".dir")],
                "outs": [entry("reports/summary.json", "e" * 32)],
            },
            "report": {
                "cmd": "python -m pipelines.report",
                "deps": [entry("reports/summary.json", "e" * 32)],
                "outs": [entry("reports/report.md", report_md5)],
            },
        },
    }


@pytest.fixture
def locked(workdir: Path) -> Path:
    """conftest's working directory (a copy of params.yaml, the current directory) with a dvc.lock."""
    (workdir / "dvc.lock").write_text(yaml.safe_dump(lock()))
    return workdir


def report_id(inputs: list[Path] | None = None) -> str:
    return provenance.collect(params.load(), inputs or []).report_id


def edit_params(path: Path, change: Callable[[dict], object]) -> None:
    raw = yaml.safe_load(path.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw))


def test_the_same_inputs_give_the_same_id(locked: Path) -> None:
    first = report_id()
    # Rewriting params.yaml with the same values (comments and key order lost) changes nothing.
    edit_params(locked / "params.yaml", lambda raw: None)
    assert report_id() == first
    assert len(first) == 12 and int(first, 16) >= 0


def test_a_changed_param_changes_the_id(locked: Path) -> None:
    before = report_id()
    edit_params(locked / "params.yaml", lambda raw: raw["analyze"].update(alpha=0.01))
    assert report_id() != before


def test_a_changed_profile_changes_the_id_but_an_unused_overlay_does_not(locked: Path) -> None:
    before = report_id()
    edit_params(locked / "params.yaml", lambda raw: raw["profiles"]["paper"]["train"]["diabetes"].update(epochs=999))
    assert report_id() == before  # profile is "standard": the paper overlay is not in effect
    edit_params(locked / "params.yaml", lambda raw: raw.update(profile="smoke"))
    assert report_id() != before


def test_a_changed_upstream_hash_changes_the_id_and_the_report_stage_does_not(locked: Path) -> None:
    before = report_id()
    (locked / "dvc.lock").write_text(yaml.safe_dump(lock(report_md5="f" * 32)))
    assert report_id() == before  # the report's own outputs are not its inputs
    (locked / "dvc.lock").write_text(yaml.safe_dump(lock(outs_md5="0" * 32)))
    assert report_id() != before


def test_stage_hashes_leave_out_the_report_stage(locked: Path) -> None:
    stages = provenance.stage_hashes()
    assert sorted(stages) == ["analyze", "prepare@diabetes"]
    assert stages["prepare@diabetes"] == {
        "deps": {"data/raw/diabetes": "c" * 32 + ".dir"},
        "outs": {"data/prepared/diabetes.pt": "a" * 32},
    }


def test_without_dvc_lock_the_input_files_name_the_report(locked: Path) -> None:
    (locked / "dvc.lock").unlink()
    metrics = locked / "metrics.json"
    metrics.write_text("{}")
    origin = provenance.collect(params.load(), [metrics])
    assert origin.stages is None
    metrics.write_text('{"changed": 1}')
    assert report_id([metrics]) != origin.report_id


def test_a_malformed_dvc_lock_is_named(locked: Path) -> None:
    (locked / "dvc.lock").write_text("stages:\n  train:\n    outs:\n    - path: models\n")
    with pytest.raises(DataError, match=r"dvc.lock: stages.train.outs: found .*; expected a path with an md5"):
        provenance.stage_hashes()
    (locked / "dvc.lock").write_text("[1, 2")
    with pytest.raises(DataError, match="dvc.lock: not valid YAML"):
        provenance.stage_hashes()


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_git_state_reports_the_commit_and_the_dirty_flag(tmp_path: Path) -> None:
    assert provenance.git_state(tmp_path) == provenance.GitState(commit=None, dirty=False)
    git = functools.partial(_git, tmp_path)
    git("init", "-q")
    (tmp_path / "tracked.txt").write_text("one")
    git("add", "tracked.txt")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD")
    (tmp_path / "untracked.txt").write_text("new")
    assert provenance.git_state(tmp_path) == provenance.GitState(commit=head, dirty=False)
    (tmp_path / "tracked.txt").write_text("two")
    assert provenance.git_state(tmp_path) == provenance.GitState(commit=head, dirty=True)


def test_files_the_pipeline_writes_do_not_make_the_tree_dirty(tmp_path: Path) -> None:
    git = functools.partial(_git, tmp_path)
    (tmp_path / "reports" / "figures").mkdir(parents=True)
    files = {"code.py": "x = 1", "reports/report.md": "old", "reports/figures/a.png": "old"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "dvc.lock").write_text(
        yaml.safe_dump(
            {
                "schema": "2.0",
                "stages": {
                    "report": {"outs": [{"path": "reports/report.md", "md5": "0"}]},
                    "figures": {"outs": [{"path": "reports/figures", "md5": "1.dir"}]},
                },
            }
        )
    )
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "first")
    (tmp_path / "reports" / "report.md").unlink()  # as DVC does before it reruns a stage
    (tmp_path / "reports" / "figures" / "a.png").write_text("new")
    (tmp_path / "dvc.lock").write_text((tmp_path / "dvc.lock").read_text() + "# updated\n")
    assert not provenance.git_state(tmp_path).dirty
    (tmp_path / "code.py").write_text("x = 2")
    assert provenance.git_state(tmp_path).dirty


def test_package_versions_name_the_installed_ones() -> None:
    versions = provenance.package_versions(("numpy", "no-such-package-regbench"))
    assert versions == {"numpy": numpy.__version__, "no-such-package-regbench": "not installed"}

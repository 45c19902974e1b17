"""`dvc repro` end to end, in a temporary copy of the repository, with the smoke profile and the
shared data mirror: every declared output appears, a second run reruns nothing, an analysis param
reruns only what follows it, and an interrupted training stage leaves nothing half-written."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from pipelines.core import results

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "datasets"
UPSTREAM = ("fetch@", "prepare@", "train@")

pytestmark = pytest.mark.slow


def _copy_repository(target: Path) -> None:
    listed = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True, capture_output=True
        )
        .stdout.decode()
        .split("\0")
    )
    archive = target / "repo.tar"
    with tarfile.open(archive, "w") as tar:
        for name in filter(None, listed):
            if (REPO / name).exists():
                tar.add(REPO / name, arcname=name)
    with tarfile.open(archive) as tar:
        tar.extractall(target / "repo", filter="data")
    archive.unlink()
    git = ["git", "-c", "user.name=regbench-test", "-c", "user.email=test@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=target / "repo", check=True)
    subprocess.run([*git, "add", "-A"], cwd=target / "repo", check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=target / "repo", check=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MIRROR.is_dir():
        pytest.fail(f"{MIRROR}: the shared dataset mirror is missing; the end-to-end test needs it")
    root = tmp_path_factory.mktemp("pipeline")
    _copy_repository(root)
    repo = root / "repo"
    _edit_params(repo, "\nprofile: standard", "\nprofile: smoke")
    return repo


def _edit_params(repo: Path, old: str, new: str) -> None:
    """Edit params.yaml as text, as a user would: its comments (the strength conventions the report
    quotes) must survive."""
    path = repo / "params.yaml"
    text = path.read_text()
    assert text.count(old) == 1, f"params.yaml: expected one {old!r}"
    path.write_text(text.replace(old, new))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["REGBENCH_DATA_MIRROR"] = str(MIRROR)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def dvc(repo: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, env=_env(), capture_output=True, text=True, timeout=900
    )
    if check and done.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def _ran(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def _declared_outputs(repo: Path) -> list[Path]:
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    paths = []
    for stage in stages.values():
        body = stage.get("do", stage)
        items = stage.get("foreach", [None])
        for kind in ("outs", "metrics"):
            for out in body.get(kind, []):
                name = next(iter(out)) if isinstance(out, dict) else out
                paths += [repo / name.replace("${item}", item) if item else repo / name for item in items]
    return paths


def test_repro_writes_every_output_and_a_second_run_reruns_nothing(repo: Path) -> None:
    first = dvc(repo, "repro")
    assert {"train@fashion_mnist", "train@diabetes", "analyze", "figures", "report"} <= set(_ran(first))
    missing = [str(p.relative_to(repo)) for p in _declared_outputs(repo) if not p.exists()]
    assert not missing, f"declared outputs missing after dvc repro: {missing}"
    assert "up to date" in dvc(repo, "status").lower()
    assert _ran(dvc(repo, "repro")) == []
    metrics = json.loads((repo / "reports/summary.json").read_text())
    assert set(metrics) == {"fashion_mnist", "diabetes"}


def test_editing_an_unused_profile_overlay_reruns_nothing(repo: Path) -> None:
    """The smoke profile runs; the paper overlay is outside every stage's hash."""
    original = (repo / "params.yaml").read_text()
    try:
        _edit_params(repo, "\n        epochs: 30\n", "\n        epochs: 31\n")  # the paper overlay's fashion_mnist
        assert _ran(dvc(repo, "repro")) == []
        _edit_params(repo, "\n        epochs: 2\n", "\n        epochs: 3\n")  # the smoke overlay's: the profile in use
        assert "train@fashion_mnist" in dvc(repo, "status")
    finally:
        (repo / "params.yaml").write_text(original)
    assert "up to date" in dvc(repo, "status").lower()


def test_an_analysis_param_reruns_only_what_follows(repo: Path) -> None:
    _edit_params(repo, "\n  alpha: 0.05", "\n  alpha: 0.1")
    ran = _ran(dvc(repo, "repro"))
    assert "analyze" in ran and "report" in ran
    assert not [stage for stage in ran if stage.startswith(UPSTREAM)], ran


def test_an_interrupted_training_stage_completes_on_the_next_run(repo: Path) -> None:
    _edit_params(repo, "diabetes: {epochs: 20, seeds: [0, 1, 2],", "diabetes: {epochs: 40, seeds: [0, 1, 2],")
    process = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", "train@diabetes"],
        cwd=repo,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    for line in process.stdout:  # interrupt once training has started
        if line.startswith("train diabetes:") or time.monotonic() > deadline:
            break
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground process group
    process.wait(timeout=120)
    assert process.returncode != 0
    leftovers = [p for p in (repo / "reports").rglob("*.tmp")] + [p for p in (repo / "models").rglob("*.tmp")]
    assert not leftovers, leftovers
    ran = _ran(dvc(repo, "repro"))
    assert "train@diabetes" in ran
    assert "up to date" in dvc(repo, "status").lower()
    runs = results.read_runs(repo / "reports/results/diabetes/runs.csv")  # whole: every member, every column
    assert sorted(runs["member"]) == list(range(len(runs))) and runs["status"].notna().all()


def _snapshot(repo: Path, *paths: str) -> dict[str, bytes]:
    """Every file under the given outputs, with its bytes."""
    files = {}
    for path in paths:
        root = repo / path
        for file in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            files[str(file.relative_to(repo))] = file.read_bytes()
    return files


def test_a_stage_failing_under_dvc_repro_leaves_its_previous_outputs(repo: Path) -> None:
    dvc(repo, "repro")  # whatever ran before, a complete set of outputs
    cached = ("reports/results/diabetes", "models/diabetes")
    committed = (
        "reports/tables",
        "reports/summary.json",
        "reports/figures",
        "reports/report.md",
        "reports/report.html",
    )
    before = _snapshot(repo, *cached, *committed)
    assert before

    # A params mistake in a cached stage: train@diabetes fails when it validates params.yaml.
    smoke_diabetes = re.search(r"diabetes: \{epochs: \d+, seeds: \[0, 1, 2\]", (repo / "params.yaml").read_text())
    assert smoke_diabetes, "params.yaml: expected the smoke profile's diabetes overlay"
    _edit_params(repo, smoke_diabetes.group(0), "diabetes: {epochs: 0, seeds: [0, 1, 2]")
    failed = dvc(repo, "repro", check=False)
    assert "train.diabetes.epochs" in failed and "failed to reproduce" in failed.lower(), failed
    assert _snapshot(repo, *cached, *committed) == before
    _edit_params(repo, "diabetes: {epochs: 0, seeds: [0, 1, 2]", smoke_diabetes.group(0))

    # A params mistake in an uncached stage whose outputs are committed to git.
    alpha = re.search(r"\n  alpha: [0-9.]+", (repo / "params.yaml").read_text()).group(0)
    _edit_params(repo, alpha, "\n  alpha: 1.5")
    failed = dvc(repo, "repro", check=False)
    assert "analyze.alpha" in failed and "failed to reproduce" in failed.lower(), failed
    assert _snapshot(repo, *cached, *committed) == before
    _edit_params(repo, "\n  alpha: 1.5", alpha)
    assert "up to date" in dvc(repo, "status").lower()  # the lock and the outputs still agree

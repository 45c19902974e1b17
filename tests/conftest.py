"""Fixtures about data: the shared offline mirror, a working directory with its own params.yaml,
no network, and the data stages run as `python -m`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_mirror() -> Path:
    """The offline copies of the datasets ($REGBENCH_DATA_MIRROR, else ../shared/datasets), read-only."""
    path = Path(os.environ.get("REGBENCH_DATA_MIRROR") or REPO.parent / "shared" / "datasets")
    if not (path / "fashion-mnist").is_dir():
        pytest.skip(f"no data mirror at {path}; set REGBENCH_DATA_MIRROR")
    return path


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> str:
    """Route every HTTP(S) request off this machine, in this process and in the stages it starts,
    to a closed local port; returns that port's URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead)
    for name in ("NO_PROXY", "no_proxy"):  # local test servers are reached directly
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    return dead


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: str) -> Path:
    """An empty current directory holding a copy of the repository's params.yaml; no mirror set."""
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REGBENCH_DATA_MIRROR", raising=False)
    return tmp_path


@pytest.fixture
def set_param(workdir: Path) -> Callable[[str, object], None]:
    """Set a dotted key of the working directory's params.yaml, e.g. set_param("data.mirror", "/m")."""

    def set_(key: str, value: object) -> None:
        path = workdir / "params.yaml"
        tree = yaml.safe_load(path.read_text())
        *parents, last = key.split(".")
        node = tree
        for part in parents:
            node = node[part]
        node[last] = value
        path.write_text(yaml.safe_dump(tree, sort_keys=False))

    return set_


@pytest.fixture
def run_stage() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python -m pipelines.<stage> <dataset>` in `cwd` with the current environment."""

    def run(stage: str, dataset: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        env = os.environ | {"PYTHONPATH": str(REPO)}
        return subprocess.run(
            [sys.executable, "-m", f"pipelines.{stage}", dataset],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run

"""Where a report comes from: the git commit, the dvc.lock hashes of everything upstream, the
params hash, the package versions, and the report id derived from them.

The report id names the inputs, not the moment: two reports of the same upstream outputs and the
same effective params share an id, and a change to either gives a new one.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from pipelines.core.errors import DataError
from pipelines.core.params import Params

LOCK_FILE = Path("dvc.lock")
REPORT_STAGE = "report"
PACKAGES = ("torch", "dvc", "mlflow", "scipy", "seaborn", "pandas", "numpy")

# {stage: {"deps": {path: md5}, "outs": {path: md5}}}
StageHashes = dict[str, dict[str, dict[str, str]]]


@dataclass(frozen=True)
class GitState:
    commit: str | None  # None outside a git checkout
    dirty: bool


@dataclass(frozen=True)
class Provenance:
    git: GitState
    stages: StageHashes | None  # None when dvc.lock is absent: the stage was run by hand
    params_hash: str
    packages: dict[str, str]
    report_id: str


def collect(params: Params, inputs: list[Path], lock: Path = LOCK_FILE) -> Provenance:
    """Everything the report states about its origin. `inputs` are hashed when dvc.lock is absent."""
    stages = stage_hashes(lock)
    upstream = stages if stages is not None else {"files": file_hashes(inputs)}
    digest = params_hash(params)
    return Provenance(
        git=git_state(),
        stages=stages,
        params_hash=digest,
        packages=package_versions(),
        report_id=report_id(upstream, digest),
    )


def git_state(root: Path = Path(".")) -> GitState:
    """The checked-out commit and whether a tracked source differs from it. Untracked files do not
    count, nor do the files the pipeline writes (dvc.lock and the outputs it records): DVC rewrites
    or removes those while the stages run, so they differ during every `dvc repro`."""
    try:
        commit = _git(root, "rev-parse", "HEAD")
        changed = _git(root, "diff", "--name-only", "HEAD").splitlines()
    except (OSError, subprocess.CalledProcessError):
        return GitState(commit=None, dirty=False)
    generated = _generated_paths(root / LOCK_FILE)
    dirty = any(not any(path == g or path.startswith(g + "/") for g in generated) for path in changed)
    return GitState(commit=commit, dirty=dirty)


def _generated_paths(lock: Path) -> set[str]:
    """dvc.lock and every output path it records; only dvc.lock when it is absent or unreadable."""
    try:
        stages = yaml.safe_load(lock.read_text()).get("stages") or {}
        outs = {out["path"] for stage in stages.values() for out in stage.get("outs") or []}
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError):
        outs = set()
    return outs | {LOCK_FILE.name}


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def stage_hashes(lock: Path = LOCK_FILE) -> StageHashes | None:
    """The md5 of every dep and out of every stage in dvc.lock except the report's own; None if absent."""
    try:
        data = yaml.safe_load(lock.read_text())
    except FileNotFoundError:
        return None
    except yaml.YAMLError as error:
        raise DataError(f"{lock}: not valid YAML ({error})".replace("\n", " ")) from None
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict):
        raise DataError(f"{lock}: found no 'stages' mapping; expected a dvc.lock written by dvc repro")
    return {
        name: {kind: _md5s(lock, name, kind, entry.get(kind) or []) for kind in ("deps", "outs")}
        for name, entry in sorted(stages.items())
        if name.split("@")[0] != REPORT_STAGE
    }


def _md5s(lock: Path, stage: str, kind: str, entries: list[dict[str, Any]]) -> dict[str, str]:
    hashes = {}
    for entry in entries:
        if not isinstance(entry, dict) or "path" not in entry or "md5" not in entry:
            raise DataError(f"{lock}: stages.{stage}.{kind}: found {entry!r}; expected a path with an md5")
        hashes[entry["path"]] = entry["md5"]
    return hashes


def file_hashes(paths: list[Path]) -> dict[str, str]:
    """md5 of each file, keyed by path: the fallback identity of inputs when dvc did not record one."""
    return {str(path): hashlib.md5(path.read_bytes()).hexdigest() for path in sorted(paths)}


def params_hash(params: Params) -> str:
    """sha256 of the effective params; the unused profile overlays are left out, the chosen one is applied.
    train.backend is left out too: where the grid is trained changes no result."""
    return _sha256(params.model_dump(mode="json", exclude={"profiles": True, "train": {"backend"}}))


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def report_id(upstream: dict[str, Any], digest: str) -> str:
    """First 12 hex characters of sha256 over the upstream hashes (dvc.lock's, or the input files')
    and the params hash."""
    return _sha256({"upstream": upstream, "params": digest})[:12]


def _sha256(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()

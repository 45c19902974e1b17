"""The Makefile's .venv stamp: keyed on requirements.lock's content, never on its modification time."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_dry_run(folder: Path, target: str) -> str:
    done = subprocess.run(["make", "-n", target], cwd=folder, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_newer_lock_with_the_same_content_rebuilds_nothing_and_other_content_does(tmp_path: Path) -> None:
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    lock = tmp_path / "requirements.lock"
    lock.write_text("pytest==8.0.0\n")
    stamp = tmp_path / ".venv" / f".installed-{hashlib.sha256(lock.read_bytes()).hexdigest()[:16]}"
    stamp.parent.mkdir()
    stamp.touch()
    later = time.time() + 60
    os.utime(lock, (later, later))  # what a checkout or `touch requirements.lock` does
    assert "setting up .venv" not in make_dry_run(tmp_path, "setup")

    lock.write_text("pytest==8.0.1\n")
    assert "setting up .venv" in make_dry_run(tmp_path, "setup")

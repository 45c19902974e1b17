"""Benchmark: the MLflow tracking overhead of one training stage, without the training.

    python -m benchmarks.tracking [--members 200] [--epochs 50] [--flush-seconds 60] [--uri URI]

Opens the runs of a synthetic grid (tests/synthetic.py), logs every epoch's metrics, finishes,
exactly as the train stage does, and prints wall and CPU seconds of each phase and runs/s.
The stage writes buffered metrics at least every minute while it trains; here the epochs come
faster than that, so they are written in large batches unless --flush-seconds 0 writes every
epoch as it comes (the most calls a slow training could make).
The store is a fresh SQLite file in a temporary directory (the kind of ./mlflow.db, without
filling the user's) unless --uri names one. Target: 200 members x 50 epochs under 30 s on a
2-core CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from pipelines.core.results import METRIC_COLUMNS, sparsity_columns
from pipelines.training import store, tracking
from tests.synthetic import GRID, make_results

TARGET_S = 30.0
TAGS = {
    "git_commit": "benchmark",
    "git_dirty": "false",
    "params_hash": "benchmark",
    "profile": "benchmark",
    "device": "cpu",
    "torch": "n/a",
    "cuda": "none",
    "dvc_stage": "benchmarks.tracking",
}


def timed(phase: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of phase(): CPU time shows the cost apart from other load on the machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    phase()
    return time.perf_counter() - wall, time.process_time() - cpu


def log_all(grid: tracking.GridRun, per_epoch: list[pd.DataFrame]) -> None:
    for frame in per_epoch:
        grid.log_evaluation(frame)


def run(members: int, epochs: int, uri: str, flush_seconds: float) -> None:
    runs, curves, _ = make_results(seeds=math.ceil(members / len(GRID)), epochs=epochs)
    final = runs.head(members)
    per_epoch = [frame.sort_values("member") for _, frame in curves[curves["member"] < members].groupby("epoch")]
    width = len(METRIC_COLUMNS + sparsity_columns(curves))
    print(
        f"tracking benchmark: {members} members x {epochs} epochs x {width} metrics "
        f"({members * epochs * width:,} values), store {uri}"
    )

    create = timed(lambda: store.check_store(uri))
    grid = tracking.GridRun("benchmark", final, TAGS, uri, flush_seconds=flush_seconds)
    with contextlib.ExitStack() as stack:  # the `with GridRun(...)` of the train stage, phase by phase
        phases = {
            "open runs": timed(lambda: stack.enter_context(grid)),
            f"log {epochs} epochs": timed(lambda: log_all(grid, per_epoch)),
            "finish": timed(lambda: grid.finish(final)),
        }
    total = tuple(map(sum, zip(*phases.values())))

    print(f"  {'check/create store (first use)':32s} {create[0]:7.2f} s wall {create[1]:7.2f} s CPU")
    for name, (wall, cpu) in phases.items():
        print(f"  {name:32s} {wall:7.2f} s wall {cpu:7.2f} s CPU")
    print(f"  {'total (open + log + finish)':32s} {total[0]:7.2f} s wall {total[1]:7.2f} s CPU")
    print(f"  {'runs/s':32s} {members / total[0]:7.1f}")
    print(f"  target: total under {TARGET_S:g} s wall: {'met' if total[0] < TARGET_S else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--flush-seconds", type=float, default=60.0, help="write buffered metrics this often")
    parser.add_argument("--uri", help="tracking URI (default: a fresh SQLite store in a temporary directory)")
    args = parser.parse_args()
    if args.uri:
        run(args.members, args.epochs, args.uri, args.flush_seconds)
        return
    with tempfile.TemporaryDirectory(prefix="regbench-tracking-") as directory:
        run(args.members, args.epochs, f"sqlite:///{Path(directory) / 'mlflow.db'}", args.flush_seconds)


if __name__ == "__main__":
    main()

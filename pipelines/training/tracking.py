"""MLflow tracking of a training stage: one experiment per dataset ("regbench-<dataset>"), a
parent run per stage, and a nested child run per grid member with its params, per-epoch
metrics, final metrics, weight statistics and status.

Where runs go: MLFLOW_TRACKING_URI if set (a SQLite file or an MLflow server), else
./mlflow.db with artifacts in ./mlartifacts. What a child run holds:
  params     the member's IDENTITY_COLUMNS (family, strengths, dropout, optimizer, lr, seed, ...)
  metrics    METRIC_COLUMNS and frac_below_* with step = epoch, as measured during training;
             the same names prefixed "final_" once, at the last epoch: the values in runs.csv
  artifact   weight_stats.json: the final weight norms and sparsity
  tags       regbench.member: the member's number, which finds the run again (a retried shard),
             and regbench.resumed on a run that a retried shard took up
  status     FINISHED, or FAILED with tag failure_reason when the member diverged;
             KILLED (Ctrl-C, SIGTERM) or FAILED (any other error) when the stage stops early
  tags       host and pid of the training process (on the parent too), so that the next stage ends
             KILLED the runs of a stage killed outright (orphans.py)

The ray backend splits this: the driver holds the parent (parent_run.py) and every shard holds its
members' child runs (GridRun with parent_run_id), on one store that every node reaches.
"""

from __future__ import annotations

import logging
import math
import time
from types import TracebackType
from urllib.parse import urlsplit

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from tqdm import tqdm

from pipelines.core import interrupts
from pipelines.core.errors import RegbenchError
from pipelines.core.results import IDENTITY_COLUMNS, METRIC_COLUMNS, sparsity_columns, structure_columns
from pipelines.training import orphans
from pipelines.training.store import one_line, sqlite_path, store_client

EXPERIMENT_PREFIX = "regbench-"
FINAL_PREFIX = "final_"
WEIGHT_STATS_FILE = "weight_stats.json"
WEIGHT_COLUMNS = ["weight_l1", "weight_l2", "exact_zeros", "hoyer"]
MAX_METRICS_PER_CALL = 1000  # MLflow's limit for one log_batch call
STATUS_OF = {"ok": "FINISHED", "diverged": "FAILED"}
MEMBER_TAG = "regbench.member"
RESUMED_TAG = "regbench.resumed"  # on a run taken up again by a retried shard

_log = logging.getLogger(__name__)


def _json_safe(record: dict[str, float]) -> dict[str, float | None]:
    """NaN and infinity (a diverged member's weights) are not JSON: write null."""
    return {k: float(v) if math.isfinite(v) else None for k, v in record.items()}


class GridRun:
    """The MLflow runs of one training stage for one dataset: a parent and one child per member.

    Use as a context manager around training: log_evaluation() after every evaluation of any
    members (the trainer evaluates one chunk at a time), finish() at the end. Metrics are buffered
    and written per run in batches: when a run's buffer would exceed one log_batch call, when
    `flush_seconds` have passed (so the UI follows a long training), and at finish(). Leaving the
    block without finish(), by an exception or Ctrl-C, ends every open run KILLED
    (KeyboardInterrupt) or FAILED; the exception propagates.
    """

    def __init__(
        self,
        dataset: str,
        members: pd.DataFrame,
        tags: dict[str, str],
        uri: str,
        flush_seconds: float = 60.0,
        parent_run_id: str = "",
    ) -> None:
        self.dataset = dataset
        self.members = members
        self.tags = tags
        self.uri = uri
        self.flush_seconds = flush_seconds
        self.experiment_name = f"{EXPERIMENT_PREFIX}{dataset}"
        self.experiment_id = ""
        # With a parent_run_id the runs are one shard's: the parent is the driver's, not ours to
        # create or end, and a member's run from an earlier attempt is taken up again.
        self.parent_run_id = parent_run_id
        self._owns_parent = not parent_run_id
        self.run_ids: list[str] = []
        self._row_of = {member: row for row, member in enumerate(members["member"])}
        self._open: set[str] = set()  # runs not yet ended
        self._pending: list[list[Metric]] = []
        self._flushed_at = 0.0
        self._last_epoch = 0

    def __enter__(self) -> GridRun:
        self.client = store_client(self.uri)
        self.experiment_id = self._experiment()
        if self._owns_parent:  # a shard of the ray backend leaves this to its driver's host
            orphans.end_orphaned_runs(self.client, self.experiment_id, self.experiment_name)
        try:
            self._start_runs()
        except BaseException as error:
            self._end_open_runs(error)
            raise
        self._flushed_at = time.monotonic()  # the minute between writes starts with training
        return self

    def _experiment(self) -> str:
        return experiment_id(self.client, self.experiment_name, self.uri)

    @interrupts.deferring
    def _start_runs(self) -> None:
        if self._owns_parent:
            parent = self.client.create_run(
                self.experiment_id, run_name=f"train {self.dataset}", tags=self.tags | orphans.owner_tags()
            )
            self.parent_run_id = parent.info.run_id
            self._open.add(self.parent_run_id)
            earlier: dict[str, str] = {}
        else:
            earlier = child_runs(self.client, self.experiment_id, self.parent_run_id)
        identities = self.members[IDENTITY_COLUMNS].astype(str).to_dict("records")
        for identity in tqdm(identities, desc=f"mlflow: starting {self.dataset} runs", unit="run", leave=False):
            run_id = earlier.get(identity["member"], "")
            if run_id:  # a retried shard: the run its first attempt started, running again
                self.client.update_run(run_id, status="RUNNING")
                self.client.set_tag(run_id, RESUMED_TAG, "true")
            else:
                run_id = self.client.create_run(
                    self.experiment_id,
                    run_name=f"{identity['config']} seed={identity['seed']}",
                    tags={
                        "mlflow.parentRunId": self.parent_run_id,
                        MEMBER_TAG: identity["member"],
                        **orphans.owner_tags(),
                    },
                ).info.run_id
            self.run_ids.append(run_id)
            self._open.add(run_id)
            self.client.log_batch(run_id, params=[Param(k, v) for k, v in identity.items()], synchronous=True)
        self._pending = [[] for _ in self.run_ids]

    def log_evaluation(self, rows: pd.DataFrame) -> None:
        """Record an evaluation of some members: rows with `member`, `epoch` and the metrics; step = epoch."""
        unknown = sorted(set(rows["member"]) - self._row_of.keys())
        if unknown:
            raise ValueError(f"metrics: members {unknown[:5]} are not in this grid")
        columns = METRIC_COLUMNS + sparsity_columns(rows)
        positions = [self._row_of[m] for m in rows["member"]]
        self._buffer(rows, positions, columns, rows["epoch"].astype(int).tolist(), prefix="")
        self._last_epoch = max(self._last_epoch, int(rows["epoch"].max()))
        buffer_full = max(len(self._pending[i]) for i in positions) + len(columns) > MAX_METRICS_PER_CALL
        if buffer_full or time.monotonic() - self._flushed_at >= self.flush_seconds:
            self._flush()

    def _buffer(
        self, frame: pd.DataFrame, positions: list[int], columns: list[str], steps: list[int], prefix: str
    ) -> None:
        timestamp = int(time.time() * 1000)
        keys = [prefix + c for c in columns]
        for position, step, values in zip(positions, steps, frame[columns].to_numpy(dtype=float).tolist()):
            self._pending[position].extend(Metric(k, v, timestamp, step) for k, v in zip(keys, values))

    @interrupts.deferring
    def _flush(self) -> None:
        for run_id, pending in zip(self.run_ids, self._pending):
            if pending:
                self._log_metrics(run_id, pending)
                pending.clear()
        self._flushed_at = time.monotonic()

    def _log_metrics(self, run_id: str, metrics: list[Metric]) -> None:
        # Newest first: MLflow then updates each key's latest value once rather than once per
        # epoch (a tenth of its time); histories are read back ordered by time and step anyway.
        newest_first = metrics[::-1]
        for start in range(0, len(newest_first), MAX_METRICS_PER_CALL):
            self.client.log_batch(run_id, metrics=newest_first[start : start + MAX_METRICS_PER_CALL], synchronous=True)

    @interrupts.deferring
    def finish(self, final: pd.DataFrame) -> None:
        """End every run: `final` has one row per member (members' order) with status
        ("ok" / "diverged"), diverged_epoch and the final metrics (and structure columns, if any)."""
        if len(final) != len(self.run_ids):
            raise ValueError(f"final: {len(final)} rows, expected one per member ({len(self.run_ids)})")
        unknown = sorted(set(final["status"]) - set(STATUS_OF))
        if unknown:
            raise ValueError(f"final: status {unknown}, expected one of {sorted(STATUS_OF)}")
        columns = METRIC_COLUMNS + sparsity_columns(final) + structure_columns(final)
        self._buffer(final, list(range(len(final))), columns, [self._last_epoch] * len(final), prefix=FINAL_PREFIX)
        weight_stats = [_json_safe(r) for r in final[WEIGHT_COLUMNS + sparsity_columns(final)].to_dict("records")]
        rows = zip(self.run_ids, self._pending, final["status"], final["diverged_epoch"], weight_stats)
        for run_id, pending, status, diverged_epoch, stats in tqdm(
            rows, total=len(self.run_ids), desc=f"mlflow: ending {self.dataset} runs", unit="run", leave=False
        ):
            self._log_metrics(run_id, pending)
            pending.clear()
            if status == "diverged":
                self.client.set_tag(run_id, "failure_reason", f"loss became non-finite at epoch {int(diverged_epoch)}")
            self.client.log_dict(run_id, stats, WEIGHT_STATS_FILE)
            self._end(run_id, STATUS_OF[status])
        if self._owns_parent:
            end_parent(self.client, self.parent_run_id, final)
            self._open.discard(self.parent_run_id)

    def _end(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)
        self._open.discard(run_id)

    def __exit__(
        self, error_type: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._open:
            self._end_open_runs(error)

    @interrupts.deferring
    def _end_open_runs(self, error: BaseException | None) -> None:
        """Leave no run RUNNING: KILLED after Ctrl-C, FAILED otherwise (metrics still buffered are dropped)."""
        status, reason = ending(error)
        try:
            if self.parent_run_id in self._open:
                self.client.set_tag(self.parent_run_id, "failure_reason", reason)
            for run_id in list(self._open):
                self._end(run_id, status)
        except MlflowException as failure:
            # Reporting the stage's own error matters more than the runs' statuses.
            _log.error("could not mark %d MLflow runs %s: %s", len(self._open), status, one_line(failure.message))


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str, status: str = "") -> dict[str, str]:
    """Run id of each member (its MEMBER_TAG) among the child runs of a parent; `status` filters."""
    query = f"tags.mlflow.parentRunId = '{parent_run_id}'" + (f" and attributes.status = '{status}'" if status else "")
    found: dict[str, str] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], query, max_results=1000, page_token=token)
        found |= {run.data.tags[MEMBER_TAG]: run.info.run_id for run in page if MEMBER_TAG in run.data.tags}
        token = page.token
        if not token:
            return found


def experiment_id(client: MlflowClient, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=_artifact_location(uri, name))
        except MlflowException as error:
            # Another stage created it between our lookup and our create.
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)
            assert experiment is not None, "an experiment that exists is found by its name"
    if experiment.lifecycle_stage == "deleted":
        raise RegbenchError(
            f"MLflow tracking store {uri}: experiment {name} is deleted; restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) or remove it for good "
            f"(mlflow gc --backend-store-uri {uri})"
        )
    return experiment.experiment_id


def _artifact_location(uri: str, experiment_name: str) -> str | None:
    """Beside a SQLite store, in mlartifacts/; a server chooses its own."""
    if urlsplit(uri).scheme != "sqlite":
        return None
    root = sqlite_path(uri).resolve().parent / "mlartifacts"
    return (root / experiment_name).as_uri()


def end_parent(client: MlflowClient, run_id: str, final: pd.DataFrame) -> None:
    """Log the grid's summary on the parent run and end it FINISHED."""
    summary = {"members": len(final), "diverged": int((final["status"] == "diverged").sum())}
    timestamp = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, timestamp, 0) for k, v in summary.items()], synchronous=True)
    client.set_terminated(run_id, "FINISHED")


def ending(error: BaseException | None) -> tuple[str, str]:
    """The status of runs that a stage leaves early, and the failure_reason tag of its parent run."""
    status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
    return status, one_line(f"{type(error).__name__}: {error}" if error else "the stage ended before finish()")[:5000]

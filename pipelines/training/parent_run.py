"""The parent MLflow run of a stage whose members are trained in shards on other machines (the ray
backend): the driver holds it, every shard attaches its members' child runs to it (tracking.py)."""

from __future__ import annotations

import logging
from types import TracebackType

import pandas as pd
from mlflow.exceptions import MlflowException

from pipelines.training import orphans, store, tracking

_log = logging.getLogger(__name__)


class ParentRun:
    """Use as a context manager around training; each shard attaches its members' child runs with
    GridRun(..., parent_run_id=parent.run_id). finish() ends it FINISHED. Leaving the block without
    finish() ends it, and every child run still RUNNING (a shard cancelled or lost with its
    worker), KILLED after Ctrl-C and FAILED otherwise; children that ended keep their status.
    """

    def __init__(self, dataset: str, tags: dict[str, str], uri: str) -> None:
        self.dataset, self.tags, self.uri = dataset, tags, uri
        self.experiment_name = f"{tracking.EXPERIMENT_PREFIX}{dataset}"
        self.experiment_id = ""
        self.run_id = ""
        self._open = False

    def __enter__(self) -> ParentRun:
        self.client = store.store_client(self.uri)
        self.experiment_id = tracking.experiment_id(self.client, self.experiment_name, self.uri)
        orphans.end_orphaned_runs(self.client, self.experiment_id, self.experiment_name)
        self.run_id = self.client.create_run(
            self.experiment_id, run_name=f"train {self.dataset}", tags=self.tags | orphans.owner_tags()
        ).info.run_id
        self._open = True
        return self

    def finish(self, final: pd.DataFrame) -> None:
        tracking.end_parent(self.client, self.run_id, final)
        self._open = False

    def __exit__(
        self, error_type: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if not self._open:
            return
        status, reason = tracking.ending(error)
        try:
            self.client.set_tag(self.run_id, "failure_reason", reason)
            running = tracking.child_runs(self.client, self.experiment_id, self.run_id, status="RUNNING")
            for run_id in [*running.values(), self.run_id]:
                self.client.set_terminated(run_id, status)
        except MlflowException as failure:
            # Reporting the stage's own error matters more than the runs' statuses.
            _log.error("could not mark the MLflow runs of %s %s: %s", self.run_id, status, failure.message)

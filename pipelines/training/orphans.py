"""Runs that a killed stage left RUNNING. A stage killed outright (SIGKILL, an out-of-memory kill)
cannot end its MLflow runs, and the UI would show them training forever; so every run carries the
host and pid of the process that trains it, and the next stage of that dataset on the same host
ends KILLED those whose process no longer exists."""

from __future__ import annotations

import logging
import os
import socket

from mlflow import MlflowClient
from mlflow.entities import Run

HOST_TAG, PID_TAG = "host", "pid"

_log = logging.getLogger(__name__)


def owner_tags() -> dict[str, str]:
    """The tags that say which process trains a run."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def end_orphaned_runs(client: MlflowClient, experiment_id: str, experiment_name: str) -> None:
    """End KILLED, with a failure_reason, the runs of this host whose process is gone. A run whose
    process still exists (another stage training now) is left alone, and so is a run of another host,
    whose processes cannot be seen from here."""
    host = socket.gethostname()
    query = f"attributes.status = 'RUNNING' and tags.{HOST_TAG} = '{host}'"
    ended: dict[str, int] = {}
    for run in _search(client, experiment_id, query):
        pid = run.data.tags.get(PID_TAG, "")
        if not pid.isdigit() or _process_exists(int(pid)):
            continue
        client.set_tag(
            run.info.run_id,
            "failure_reason",
            f"the training process (pid {pid} on {host}) ended without ending this run: "
            "killed outright (SIGKILL, out of memory) or crashed",
        )
        client.set_terminated(run.info.run_id, "KILLED")
        ended[pid] = ended.get(pid, 0) + 1
    for pid, count in ended.items():
        _log.warning(
            "mlflow: ended %d runs of %s KILLED that process %s left RUNNING (it no longer exists)",
            count,
            experiment_name,
            pid,
        )


def _search(client: MlflowClient, experiment_id: str, query: str) -> list[Run]:
    found: list[Run] = []
    page_token = None
    while True:
        page = client.search_runs([experiment_id], query, max_results=1000, page_token=page_token)
        found += page
        page_token = page.token
        if not page_token:
            return found


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 sends nothing: it only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True

"""The MLflow tracking store: where runs go (MLFLOW_TRACKING_URI, else ./mlflow.db), and whether
it can take them, checked in seconds before any training: a SQLite file that is writable, a
database and undamaged, or a server that answers."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import requests
from filelock import FileLock, Timeout
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.utils.credentials import get_default_host_creds
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pipelines.core.errors import RegbenchError

CHECK_TIMEOUT_S = 5.0


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else the SQLite store mlflow.db in the repository root (cwd)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def check_store(uri: str) -> None:
    """Fail fast, before any training, when runs could not be logged to `uri`.

    Raises RegbenchError with one line naming the URI, what failed and what to do.
    """
    scheme = urlsplit(uri).scheme
    if scheme == "sqlite":
        _check_sqlite(uri)
    elif scheme in ("http", "https"):
        _check_server(uri)
    else:
        raise RegbenchError(
            f"MLflow tracking URI {uri!r}: unsupported scheme {scheme or '(none)'!r}; expected "
            "sqlite:///path/to/mlflow.db or http(s)://host:port of an MLflow server "
            "(put other databases behind `mlflow server`), or unset MLFLOW_TRACKING_URI to use ./mlflow.db"
        )


def _check_sqlite(uri: str) -> None:
    database = sqlite_path(uri)
    fix = "choose a writable location with MLFLOW_TRACKING_URI=sqlite:////path/to/mlflow.db"
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        # SQLite writes its journal beside the database, so the directory must be writable too.
        with tempfile.TemporaryFile(dir=database.parent):
            pass
        header = b""
        if database.exists():
            with database.open("r+b") as handle:
                header = handle.read(16)
    except OSError as error:
        raise RegbenchError(
            f"MLflow tracking store {uri}: cannot write {error.filename} ({error.strerror}); {fix}"
        ) from None
    # MLflow retries for minutes on a file it cannot open as a database: say so at once.
    if header and header != b"SQLite format 3\x00":
        raise RegbenchError(f"MLflow tracking store {uri}: {database} is not a SQLite database; {fix}")
    if header:
        _check_integrity(uri, database)
    try:
        store_client(uri)
    except (MlflowException, sqlite3.Error) as error:
        raise RegbenchError(f"MLflow tracking store {uri}: {one_line(str(error))}") from None


def _check_integrity(uri: str, database: Path) -> None:
    """A damaged page would otherwise pass every check here and stop training at its first metric write."""
    try:
        with contextlib.closing(sqlite3.connect(database, timeout=CHECK_TIMEOUT_S)) as connection:
            found = [row[0] for row in connection.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as error:
        found = [str(error)]
    if found != ["ok"]:
        raise RegbenchError(
            f"MLflow tracking store {uri}: {database} is damaged (SQLite quick_check: {one_line('; '.join(found))}); "
            "restore it from a backup, or move it aside to start a new store"
        )


def _check_server(uri: str) -> None:
    # A direct request with a short timeout: MLflow's own client retries for minutes.
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search"
    creds = get_default_host_creds(uri)
    headers = {"Authorization": f"Bearer {creds.token}"} if creds.token else {}
    auth = (creds.username, creds.password) if creds.username and creds.password else None
    verify = False if creds.ignore_tls_verification else (creds.server_cert_path or True)
    start = (
        "start the server (mlflow server --host 127.0.0.1 --port PORT) or unset MLFLOW_TRACKING_URI to use ./mlflow.db"
    )
    try:
        response = requests.get(
            url, params={"max_results": 1}, headers=headers, auth=auth, verify=verify, timeout=CHECK_TIMEOUT_S
        )
    except requests.Timeout:
        raise RegbenchError(f"MLflow tracking server {uri}: no answer within {CHECK_TIMEOUT_S:g} s; {start}") from None
    except requests.ConnectionError:
        raise RegbenchError(f"MLflow tracking server {uri}: cannot connect; {start}") from None
    if response.status_code in (401, 403):
        raise RegbenchError(
            f"MLflow tracking server {uri}: HTTP {response.status_code} (not authorized); set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN"
        )
    if response.status_code != 200:
        raise RegbenchError(
            f"MLflow tracking server {uri}: HTTP {response.status_code} from {url}, expected 200 from an "
            f"MLflow tracking server; check the URI or {start}"
        )


def sqlite_path(uri: str) -> Path:
    try:
        database = make_url(uri).database
    except ArgumentError:
        database = None
    if not database or database == ":memory:":
        raise RegbenchError(
            f"MLflow tracking URI {uri!r}: expected a SQLite file, sqlite:///path/to/mlflow.db "
            "(an in-memory store would lose every run when the stage exits)"
        )
    return Path(database)


def store_client(uri: str) -> MlflowClient:
    """A client whose store exists with MLflow's current schema (created on first use)."""
    _quiet_mlflow()
    if urlsplit(uri).scheme != "sqlite":
        return MlflowClient(uri)
    database = sqlite_path(uri)
    # Two processes creating the same fresh store run MLflow's schema migrations at once and
    # break the database (seen: "duplicate column name"); take turns.
    lock = FileLock(database.with_name(f"{database.name}-lock"), timeout=120)
    try:
        with lock:
            _write_ahead_log(database)
            return MlflowClient(uri)
    except Timeout:
        raise RegbenchError(
            f"MLflow tracking store {uri}: {lock.lock_file} held by another process for 120 s"
        ) from None


def _write_ahead_log(database: Path) -> None:
    """Switch the store to SQLite's write-ahead log (a lasting property of the file).

    In the default rollback journal every commit waits for the disk (about 5 ms here, and a
    stage makes over a thousand) and a reader such as the UI blocks writers; with the WAL a
    commit does not wait and readers never block the writer. MLflow itself sets a 20 s busy
    timeout, so two writers (two train stages) queue instead of failing with "database is locked".
    """
    with contextlib.closing(sqlite3.connect(database, timeout=20)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def _quiet_mlflow() -> None:
    # MLflow logs every schema migration at INFO and, on a server, prints two "View run" lines
    # per finished run: hundreds of lines for one grid. Warnings and errors still show.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # Usage telemetry would try the network on every stage; offline machines have none.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def one_line(text: str) -> str:
    return " ".join(str(text).split())

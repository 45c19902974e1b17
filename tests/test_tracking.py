"""MLflow tracking against real stores: SQLite files in tmp_path and a real `mlflow server`."""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow.artifacts
import pandas as pd
import pytest
import requests
import torch
from mlflow import MlflowClient

from pipelines.core import results
from pipelines.core.errors import RegbenchError
from pipelines.core.results import IDENTITY_COLUMNS, METRIC_COLUMNS, sparsity_columns
from pipelines.training import orphans, store, tracking

TAGS = {
    "git_commit": "0123abc",
    "git_dirty": "false",
    "params_hash": "feed",
    "profile": "smoke",
    "device": "cpu",
    "torch": "2.14.1",
    "cuda": "none",
    "dvc_stage": "train@diabetes",
}
EPOCHS = 3
# The smoke profile's diabetes overlay in params.yaml, which these tests shrink further.
SMOKE_DIABETES = "diabetes: {epochs: 20, seeds: [0, 1, 2], maps: {seeds: [0, 1, 2]}}"


def small_grid(members: int = 6, epochs: int = EPOCHS, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(final, curves) for the first `members` of the synthetic grid; the last one diverged at epoch 2."""
    import synthetic  # here, not at the top: the spawned stages below import this module, and not torch

    runs, curves, _ = synthetic.make_results(seeds=1, epochs=epochs, seed=seed)
    final = runs.head(members).copy()
    final.loc[final.index[-1], "status"] = "diverged"
    final.loc[final.index[-1], "diverged_epoch"] = 2
    return final, curves[curves["member"] < members]


def epoch_rows(curves: pd.DataFrame, epoch: int) -> pd.DataFrame:
    return curves[curves["epoch"] == epoch].sort_values("member")


def track(
    uri: str, final: pd.DataFrame, curves: pd.DataFrame, dataset: str = "diabetes", **options: float
) -> tracking.GridRun:
    with tracking.GridRun(dataset, final, TAGS, uri, **options) as grid:
        for epoch in sorted(curves["epoch"].unique()):
            grid.log_evaluation(epoch_rows(curves, epoch))
        grid.finish(final)
    return grid


def all_runs(client: MlflowClient, experiment_id: str) -> list:
    return client.search_runs([experiment_id], max_results=10_000)


@pytest.fixture(scope="module")
def migrated_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty store with MLflow's schema: creating one runs dozens of migrations (seconds)."""
    database = tmp_path_factory.mktemp("template") / "mlflow.db"
    store.check_store(f"sqlite:///{database}")
    return database


@pytest.fixture
def uri(tmp_path: Path, migrated_store: Path) -> str:
    """A store of this test's own, copied from the migrated template (through SQLite: its log too)."""
    copy = tmp_path / "mlflow.db"
    with (
        contextlib.closing(sqlite3.connect(migrated_store)) as source,
        contextlib.closing(sqlite3.connect(copy)) as target,
    ):
        source.backup(target)
    return f"sqlite:///{copy}"


def test_tracking_uri_is_mlflow_db_in_the_working_directory_unless_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert store.tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5123")
    assert store.tracking_uri() == "http://127.0.0.1:5123"


def test_every_member_is_a_nested_child_run_with_its_params_curves_and_status(uri, tmp_path):
    final, curves = small_grid()
    grid = track(uri, final, curves)
    client = MlflowClient(uri)

    runs = {run.info.run_id: run for run in all_runs(client, grid.experiment_id)}
    assert client.get_experiment(grid.experiment_id).name == "regbench-diabetes"
    assert len(runs) == len(final) + 1
    parent = runs[grid.parent_run_id]
    assert TAGS.items() <= parent.data.tags.items()
    assert "mlflow.parentRunId" not in parent.data.tags
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics == {"members": len(final), "diverged": 1}

    assert len(set(grid.run_ids)) == len(final)
    for run_id, (_, member), (_, identity) in zip(
        grid.run_ids, final.iterrows(), final[IDENTITY_COLUMNS].astype(str).iterrows()
    ):
        run = runs[run_id]
        assert run.data.tags["mlflow.parentRunId"] == grid.parent_run_id
        assert run.data.params == identity.to_dict()  # run_ids[i] is the run of members row i
        assert run.info.run_name == f"{member['config']} seed={member['seed']}"
        assert run.info.artifact_uri.startswith((tmp_path / "mlartifacts" / "regbench-diabetes").as_uri())

        mine = curves[curves["member"] == member["member"]].sort_values("epoch")
        for column in METRIC_COLUMNS + sparsity_columns(curves):
            history = sorted(client.get_metric_history(run_id, column), key=lambda m: m.step)
            assert [m.step for m in history] == mine["epoch"].tolist()
            assert [m.value for m in history] == pytest.approx(mine[column].tolist(), rel=1e-12)
            assert run.data.metrics[f"final_{column}"] == pytest.approx(member[column], rel=1e-12)

        stats = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/weight_stats.json")
        assert stats == pytest.approx(
            member[["weight_l1", "weight_l2", "exact_zeros", "hoyer", *sparsity_columns(final)]]
            .astype(float)
            .to_dict(),
            rel=1e-12,
        )
        if member["status"] == "diverged":
            assert run.info.status == "FAILED"
            assert run.data.tags["failure_reason"] == "loss became non-finite at epoch 2"
        else:
            assert run.info.status == "FINISHED"
            assert "failure_reason" not in run.data.tags


def test_metrics_reach_the_store_during_training_when_flush_is_due(uri):
    final, curves = small_grid(members=2)
    client = MlflowClient(uri)
    with tracking.GridRun("diabetes", final, TAGS, uri, flush_seconds=0) as grid:
        grid.log_evaluation(epoch_rows(curves, 1))
        live = client.get_run(grid.run_ids[0])
        assert live.info.status == "RUNNING"
        assert live.data.metrics["val_acc"] == pytest.approx(epoch_rows(curves, 1)["val_acc"].iloc[0], rel=1e-12)
        grid.finish(final)


def test_the_trainer_logs_each_chunk_as_it_evaluates_while_later_chunks_wait(uri):
    import torch

    from pipelines.training import grid
    from pipelines.training.trainer import train_grid

    from test_trainer import THRESHOLDS, make_config, make_splits

    config = make_config(epochs=2, eval_every=1)
    members = grid.expand(config)
    identity = grid.identity_frame("diabetes", members, config, lambda seed: 0)
    client = MlflowClient(uri)
    evaluations, evaluated = [], set()
    with tracking.GridRun("diabetes", identity, TAGS, uri, flush_seconds=0) as run:
        run_of = dict(zip(identity["member"], run.run_ids))

        def history(member: int) -> list:
            return client.get_metric_history(run_of[member], "val_acc")

        def log_and_read_back(rows: pd.DataFrame) -> None:
            run.log_evaluation(rows)
            epoch = int(rows["epoch"].iloc[0])
            evaluations.append(epoch)
            evaluated.update(rows["member"])
            assert len(history(rows["member"].iloc[0])) == epoch  # in the store while training goes on
            waiting = [m for m in identity["member"] if m not in evaluated]
            if waiting:
                assert history(waiting[0]) == []  # a chunk not trained yet

        result = train_grid(
            members,
            make_splits(),
            config,
            THRESHOLDS,
            torch.device("cpu"),
            max_chunk_members=8,
            progress=False,
            on_evaluation=log_and_read_back,
        )
        run.finish(result.final)
    assert len(evaluations) > 2 and evaluations[:2] == [1, 2]  # several chunks, each evaluated twice
    for member in identity["member"]:
        assert sorted(m.step for m in history(member)) == [1, 2]


def test_long_trainings_are_logged_in_batches_of_at_most_1000_metrics(uri):
    epochs = 150  # 15 metrics x 150 epochs: more than two log_batch calls per run
    final, curves = small_grid(members=2, epochs=epochs)
    grid = track(uri, final, curves)
    history = MlflowClient(uri).get_metric_history(grid.run_ids[1], "hoyer")
    assert sorted(m.step for m in history) == list(range(1, epochs + 1))


@pytest.mark.parametrize(("error", "status"), [(RuntimeError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")])
def test_an_exception_inside_the_block_ends_every_run_and_propagates(uri, error, status):
    final, curves = small_grid(members=3)
    with pytest.raises(type(error)), tracking.GridRun("diabetes", final, TAGS, uri) as grid:
        grid.log_evaluation(epoch_rows(curves, 1))
        raise error
    client = MlflowClient(uri)
    runs = all_runs(client, grid.experiment_id)
    assert len(runs) == len(final) + 1
    assert {run.info.status for run in runs} == {status}
    assert client.get_run(grid.parent_run_id).data.tags["failure_reason"].startswith(type(error).__name__)


def test_leaving_the_block_without_finish_fails_the_runs(uri):
    final, _ = small_grid(members=2)
    with tracking.GridRun("diabetes", final, TAGS, uri) as grid:
        pass
    runs = all_runs(MlflowClient(uri), grid.experiment_id)
    assert {run.info.status for run in runs} == {"FAILED"}


def test_a_deleted_experiment_is_reported_with_what_to_do(uri):
    client = MlflowClient(uri)
    client.delete_experiment(client.create_experiment("regbench-diabetes"))
    final, _ = small_grid(members=2)
    with (
        pytest.raises(RegbenchError, match=r"regbench-diabetes is deleted; restore it"),
        tracking.GridRun("diabetes", final, TAGS, uri),
    ):
        pass


def test_logging_goes_on_while_a_reader_holds_the_store_open(uri):
    """As when the MLflow UI reads the store during training: the writer must not be locked out."""
    final, curves = small_grid(members=2)
    with contextlib.closing(sqlite3.connect(uri.removeprefix("sqlite:///"), isolation_level=None)) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM runs").fetchone()  # holds a read snapshot until closed
        grid = track(uri, final, curves)
    statuses = {run.info.status for run in all_runs(MlflowClient(uri), grid.experiment_id)}
    assert statuses == {"FINISHED", "FAILED"}


def test_check_store_creates_a_fresh_sqlite_store_in_a_new_directory(tmp_path):
    database = tmp_path / "new" / "dir" / "mlflow.db"
    store.check_store(f"sqlite:///{database}")
    with contextlib.closing(sqlite3.connect(database)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("SELECT count(*) FROM experiments").fetchone() == (1,)  # MLflow's Default


def test_check_store_rejects_an_unwritable_location_quickly(tmp_path):
    (tmp_path / "blocker").write_text("a file where a directory should be")
    uri = f"sqlite:///{tmp_path / 'blocker' / 'mlflow.db'}"
    start = time.monotonic()
    with pytest.raises(RegbenchError) as raised:
        store.check_store(uri)
    assert time.monotonic() - start < 5
    message = str(raised.value)
    assert "\n" not in message
    assert uri in message and "cannot write" in message and "MLFLOW_TRACKING_URI=" in message


def test_check_store_rejects_a_file_that_is_not_a_sqlite_database(tmp_path):
    database = tmp_path / "mlflow.db"
    database.write_text("not a database")
    with pytest.raises(RegbenchError, match="is not a SQLite database"):
        store.check_store(f"sqlite:///{database}")
    assert database.read_text() == "not a database"


def test_check_store_rejects_a_store_with_a_damaged_page_before_training(uri):
    track(uri, *small_grid())
    database = Path(uri.removeprefix("sqlite:///"))
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        root = connection.execute("SELECT rootpage FROM sqlite_master WHERE name = 'metrics'").fetchone()[0]
    with database.open("r+b") as handle:  # what a failing disk or a torn copy leaves: one page of garbage
        handle.seek((root - 1) * page_size)
        handle.write(bytes(range(256)) * (page_size // 256))
    started = time.monotonic()
    with pytest.raises(RegbenchError) as error:
        store.check_store(uri)
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert message.startswith(f"MLflow tracking store {uri}: {database} is damaged (SQLite quick_check: ")
    assert "\n" not in message and "restore it from a backup" in message


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_check_store_rejects_an_unreachable_server_quickly():
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens on a port just released
    start = time.monotonic()
    with pytest.raises(RegbenchError) as raised:
        store.check_store(uri)
    assert time.monotonic() - start < 5
    assert uri in str(raised.value)
    assert "cannot connect; start the server" in str(raised.value)
    assert "unset MLFLOW_TRACKING_URI" in str(raised.value)


@pytest.mark.parametrize(
    "uri", ["file:///tmp/mlruns", "/tmp/mlruns", "postgresql://db/mlflow", "sqlite://", "sqlite:///:memory:"]
)
def test_check_store_rejects_stores_it_cannot_use(uri):
    with pytest.raises(RegbenchError) as raised:
        store.check_store(uri)
    assert repr(uri) in str(raised.value)


def log_small_grid(
    uri: str, start: multiprocessing.synchronize.Barrier, final: pd.DataFrame, curves: pd.DataFrame
) -> None:
    """One 'train stage' in its own process; waits for the other so both hit the fresh store at once."""
    start.wait(timeout=120)
    store.check_store(uri)
    track(uri, final, curves, dataset="race", flush_seconds=0)


def test_two_processes_create_the_store_and_the_experiment_and_log_at_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # fresh: both run MLflow's migrations unless serialized
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(2)
    stages = [
        spawn.Process(target=log_small_grid, args=(uri, start, *small_grid(members=4, seed=seed))) for seed in (0, 1)
    ]
    for stage in stages:
        stage.start()
    for stage in stages:
        stage.join(timeout=240)
    assert [stage.exitcode for stage in stages] == [0, 0]

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("regbench-race")
    runs = all_runs(client, experiment.experiment_id)
    children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    assert len(runs) == 2 + 2 * 4
    assert len(children) == 2 * 4
    assert {run.info.status for run in runs} == {"FINISHED", "FAILED"}  # FAILED: the diverged member
    for run in children:
        assert len(client.get_metric_history(run.info.run_id, "test_acc")) == EPOCHS


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """A real `mlflow server` on a free 127.0.0.1 port with a SQLite backend; always stopped."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, f"mlflow server exited: {(tmp_path / 'server.log').read_text()[-2000:]}"
            assert time.monotonic() < deadline, "mlflow server did not answer /health within 180 s"
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # still starting
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server's own process group: it and its workers
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.mark.slow
def test_a_grid_logged_to_a_real_server_is_found_through_its_rest_api(mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    uri = store.tracking_uri()
    store.check_store(uri)
    final, curves = small_grid(members=3)
    grid = track(uri, final, curves)

    response = requests.post(
        f"{mlflow_server}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [grid.experiment_id], "max_results": 100},
        timeout=30,
    )
    response.raise_for_status()
    runs = {run["info"]["run_id"]: run for run in response.json()["runs"]}
    assert set(runs) == {grid.parent_run_id, *grid.run_ids}
    statuses = [runs[run_id]["info"]["status"] for run_id in grid.run_ids]
    assert statuses == ["FAILED" if s == "diverged" else "FINISHED" for s in final["status"]]
    child = runs[grid.run_ids[0]]
    tags = {t["key"]: t["value"] for t in child["data"]["tags"]}
    assert tags["mlflow.parentRunId"] == grid.parent_run_id
    params = {p["key"]: p["value"] for p in child["data"]["params"]}
    assert params["family"] == final["family"].iloc[0]

    history = requests.get(
        f"{mlflow_server}/api/2.0/mlflow/metrics/get-history",
        params={"run_id": grid.run_ids[0], "metric_key": "train_loss"},
        timeout=30,
    ).json()
    assert sorted(m["step"] for m in history["metrics"]) == list(range(1, EPOCHS + 1))
    stats = json.loads(
        requests.get(
            f"{mlflow_server}/get-artifact",
            params={"run_uuid": grid.run_ids[0], "path": "weight_stats.json"},
            timeout=30,
        ).text
    )
    assert math.isclose(stats["weight_l2"], final["weight_l2"].iloc[0], rel_tol=1e-12)


@pytest.mark.slow
def test_the_train_stage_logs_a_tiny_grid_to_a_real_server(mlflow_server, tmp_path, shared_mirror):
    """fetch, prepare and train (diabetes, smoke profile, 2 seeds) through MLFLOW_TRACKING_URI."""
    repo = Path(__file__).resolve().parents[1]
    text = (repo / "params.yaml").read_text().replace("\nprofile: standard", "\nprofile: smoke")
    text = text.replace(SMOKE_DIABETES, "diabetes: {epochs: 3, seeds: [0, 1], maps: null}")
    (tmp_path / "params.yaml").write_text(text)
    env = os.environ | {
        "PYTHONPATH": str(repo),
        "MLFLOW_TRACKING_URI": mlflow_server,
        "REGBENCH_DATA_MIRROR": str(shared_mirror),
    }
    for stage in ("fetch", "prepare", "train"):
        done = subprocess.run(
            [sys.executable, "-m", f"pipelines.{stage}", "diabetes"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "mlflow.db").exists()  # everything went to the server

    runs_csv = pd.read_csv(tmp_path / "reports/results/diabetes/runs.csv")
    summary = json.loads((tmp_path / "reports/results/diabetes/summary.json").read_text())
    found = requests.post(
        f"{mlflow_server}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [summary["experiment_id"]], "max_results": 1000},
        timeout=30,
    )
    found.raise_for_status()
    runs = {run["info"]["run_id"]: run for run in found.json()["runs"]}
    assert set(runs) == {summary["parent_run_id"], *runs_csv["run_id"]}
    first = runs[runs_csv["run_id"].iloc[0]]
    assert {p["key"]: p["value"] for p in first["data"]["params"]}["config"] == runs_csv["config"].iloc[0]
    history = requests.get(
        f"{mlflow_server}/api/2.0/mlflow/metrics/get-history",
        params={"run_id": runs_csv["run_id"].iloc[0], "metric_key": "val_acc"},
        timeout=30,
    ).json()
    assert sorted(m["step"] for m in history["metrics"]) == [3]  # diabetes evaluates every 5 epochs and at the end

    assert {m["key"] for m in first["data"]["metrics"]} >= {"final_prunable_fraction", "final_layer1_dead"}
    assert {"prunable_fraction", "layer3_hoyer", "layer2_dead"} <= set(runs_csv.columns)
    pruned = pd.read_csv(results.pruning_path("diabetes", tmp_path / results.RESULTS_DIR))
    networks = runs_csv[runs_csv["grid"] != results.LINEAR]  # no hidden layer, nothing to prune
    assert list(pruned.columns) == results.PRUNING_COLUMNS and len(pruned) == 13 * len(networks)
    unpruned = pruned[pruned["fraction"] == 0].set_index("member")["val_acc"]
    assert (unpruned == networks.set_index("member")["val_acc"]).all()  # the same networks, the same k/n

    moments = torch.load(results.adam_state_path("diabetes", tmp_path / results.MODELS_DIR), weights_only=True)
    adam = networks[networks["optimizer"].isin(["adam", "adamw"])]
    assert moments["members"] == adam["member"].tolist()
    assert moments["layers"][0]["weight"].shape[:2] == (len(adam), 64)
    assert (moments["step"] > 0).all() and (moments["layers"][0]["weight"] >= 0).all()


# --- a stage stopped from outside ---------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared_diabetes(tmp_path_factory: pytest.TempPathFactory, shared_mirror: Path) -> Path:
    """A working directory with the smoke profile, diabetes fetched and prepared, and a long training."""
    root = tmp_path_factory.mktemp("stopped")
    repo = Path(__file__).resolve().parents[1]
    text = (repo / "params.yaml").read_text().replace("\nprofile: standard", "\nprofile: smoke")
    # Long enough to be stopped while it trains.
    text = text.replace(SMOKE_DIABETES, "diabetes: {epochs: 5000, seeds: [0, 1], maps: null}")
    (root / "params.yaml").write_text(text)
    for stage in ("fetch", "prepare"):
        done = subprocess.run(
            [sys.executable, "-m", f"pipelines.{stage}", "diabetes"],
            cwd=root,
            env=stage_env(shared_mirror),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    return root


def stage_env(shared_mirror: Path) -> dict[str, str]:
    env = os.environ | {
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "REGBENCH_DATA_MIRROR": str(shared_mirror),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def train_until_running(root: Path, shared_mirror: Path) -> tuple[subprocess.Popen, list]:
    """Start the train stage; return it and its runs once all of them are RUNNING in ./mlflow.db."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.train", "diabetes"],
        cwd=root,
        env=stage_env(shared_mirror) | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    announced = re.match(r"train diabetes: (\d+) members", process.stdout.readline())
    assert announced, process.communicate()
    expected = int(announced.group(1)) + 1  # and the parent
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment_id = (
        client.get_experiment_by_name("regbench-diabetes").experiment_id if (root / "mlflow.db").exists() else None
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        experiment_id = experiment_id or getattr(
            client.get_experiment_by_name("regbench-diabetes"), "experiment_id", None
        )
        runs = (
            client.search_runs([experiment_id], f"tags.{orphans.PID_TAG} = '{process.pid}'", max_results=10_000)
            if experiment_id
            else []
        )
        if len(runs) == expected:
            return process, runs
        time.sleep(0.5)
    process.kill()
    pytest.fail("the train stage did not start its MLflow runs within 300 s")


@pytest.mark.slow
def test_sigterm_ends_the_runs_killed_in_one_line(prepared_diabetes: Path, shared_mirror: Path) -> None:
    process, runs = train_until_running(prepared_diabetes, shared_mirror)
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()  # a hung stage must not outlive the test
        process.communicate()
        raise AssertionError("the stage did not end within 120 s of SIGTERM") from None
    assert process.returncode == 130
    assert "Traceback" not in stderr and "error: interrupted (Ctrl-C or SIGTERM)" in stderr
    client = MlflowClient(f"sqlite:///{prepared_diabetes / 'mlflow.db'}")
    assert {client.get_run(run.info.run_id).info.status for run in runs} == {"KILLED"}


@pytest.mark.slow
def test_runs_of_a_sigkilled_stage_are_ended_killed_by_the_next_one(
    prepared_diabetes: Path, shared_mirror: Path
) -> None:
    process, runs = train_until_running(prepared_diabetes, shared_mirror)
    assert {run.data.tags[orphans.HOST_TAG] for run in runs} == {socket.gethostname()}
    process.kill()  # SIGKILL: what the out-of-memory killer sends; nothing in the stage runs
    process.communicate(timeout=60)
    client = MlflowClient(f"sqlite:///{prepared_diabetes / 'mlflow.db'}")
    assert {client.get_run(run.info.run_id).info.status for run in runs} == {"RUNNING"}

    params_file = prepared_diabetes / "params.yaml"
    params_file.write_text(params_file.read_text().replace("epochs: 5000", "epochs: 3"))
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.train", "diabetes"],
        cwd=prepared_diabetes,
        env=stage_env(shared_mirror),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"that process {process.pid} left RUNNING" in done.stderr
    for run in runs:
        ended = client.get_run(run.info.run_id)
        assert ended.info.status == "KILLED"
        assert ended.data.tags["failure_reason"].startswith(f"the training process (pid {process.pid} on ")
    summary = json.loads((prepared_diabetes / "reports/results/diabetes/summary.json").read_text())
    assert client.get_run(summary["parent_run_id"]).info.status == "FINISHED"


def test_make_ui_lists_each_experiments_runs_page(uri, capsys):
    from pipelines.training import browse

    grid = track(uri, *small_grid(members=2))
    browse.main([uri, "http://127.0.0.1:5001"])
    address = f"http://127.0.0.1:5001/#/experiments/{grid.experiment_id}/runs"
    assert f"regbench-diabetes: {address}" in capsys.readouterr().out


def test_make_ui_on_a_store_without_runs_says_so(tmp_path, capsys):
    from pipelines.training import browse

    browse.main([f"sqlite:///{tmp_path / 'mlflow.db'}", "http://127.0.0.1:5000"])
    assert "no regbench runs in" in capsys.readouterr().out

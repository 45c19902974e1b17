"""The ray backend with real parts: a Ray cluster of a head and two worker nodes on loopback, an
MLflow server on a PostgreSQL database, and the train stage as users run it: the results equal the
local backend's, the server holds one child run per member, Ctrl-C ends every run KILLED, a worker
node killed during training loses and duplicates no run, and a shard lost on every attempt fails
the stage with its members named.

The grid is small (diabetes, 8 configurations x 4 seeds: two shards of two seeds) and the results
are compared with the local backend's, bit for bit. Debian's postgresql is installed with apt-get
when missing, as test_report.py installs Chromium; no database server is a failure, not a skip.
A fast test checks the sharding itself, without Ray.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest
import requests
import torch
import yaml
from mlflow import MlflowClient
from ray.cluster_utils import Cluster

from pipelines.training import grid, pruning, scaleout
from pipelines.training.orphans import PID_TAG
from pipelines.training.tracking import MEMBER_TAG, RESUMED_TAG
from pipelines.training.trainer import train_grid

from test_trainer import THRESHOLDS, make_config, make_splits

REPO = Path(__file__).resolve().parents[1]
MEMBERS = 32
NODE = {"num_cpus": 1, "object_store_memory": 200 * 1024**2}


def test_shards_of_whole_seed_quanta_train_every_member_bit_identically() -> None:
    """Without Ray: each shard of seed_blocks, trained alone, gives its members' exact bits, each seed
    on its own split of the data, and the shards merge into the local backend's result, the linear
    references' included."""
    config = make_config(hidden=[8, 8], seeds=list(range(5)))
    members, data = grid.expand(config), make_splits(classes=4, splits=5)
    assert any(not m.hidden for m in members)
    quantum = scaleout.seed_quantum(members, data)
    blocks = scaleout.seed_blocks(members, data, slots=3, gpus=False)
    assert quantum > 1 and all(len(block) % quantum == 0 for block in blocks[:-1]) and len(blocks) > 1
    assert sum(blocks, []) == config.seeds
    cpu = torch.device("cpu")
    whole = train_grid(members, data, config, THRESHOLDS, cpu, progress=False)
    whole = pruning.with_structure(whole, members, data, config.activation, cpu)
    shards, parts = [], {}
    for number, block in enumerate(blocks, start=1):
        shard = [m for m in members if m.seed in block]
        part = train_grid(shard, data, config, THRESHOLDS, cpu, progress=False)
        part = pruning.with_structure(part, shard, data, config.activation, cpu)
        rows = [m.member for m in shard]
        pd.testing.assert_frame_equal(
            part.final, whole.final.set_index("member").loc[rows].reset_index(), check_exact=True
        )
        shards.append(
            scaleout.Shard(number, "test", shard, pd.DataFrame(), config, THRESHOLDS, "cpu", False, 0, None, "")
        )
        parts[number] = scaleout.ShardResult(part, [""] * len(shard), "cpu", "cpu")
    merged = scaleout._merge(members, shards, parts, 0.0, 1).result
    pd.testing.assert_frame_equal(merged.final, whole.final, check_exact=True)
    pd.testing.assert_frame_equal(merged.pruning, whole.pruning, check_exact=True)
    for (w, b), (w_merged, b_merged) in zip(
        [*whole.weights, whole.linear_weights], [*merged.weights, merged.linear_weights], strict=True
    ):
        assert torch.equal(w, w_merged) and torch.equal(b, b_merged)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin() -> Path:
    """The directory of Debian's PostgreSQL server programs, installed when missing."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
            assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert found, "apt-get installed postgresql but no initdb under /usr/lib/postgresql"
    return Path(found[-1]).parent


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server on a loopback port in a temporary directory; yields its database URL."""
    bin_dir = _postgres_bin()
    # PostgreSQL refuses to run as root: as root, run it as the postgres user (or nobody).
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres").pw_name
        except KeyError:
            user = "nobody"
    root = Path(tempfile.mkdtemp(prefix="regbench-pg-"))
    if user:
        shutil.chown(root, user)
    data, port = root / "data", _free_port()
    as_user = {"user": user} if user else {}
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "regbench", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        **as_user,
    )
    server = subprocess.Popen(
        [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **as_user,
    )
    try:
        for _ in range(120):
            ready = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
            )
            if ready.returncode == 0:
                break
            time.sleep(0.5)
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "regbench", "mlflow"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://regbench@127.0.0.1:{port}/mlflow"
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def tracking_server(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on the database, as `make tracking-server` starts it; yields its URL."""
    port = _free_port()
    artifacts = tmp_path_factory.mktemp("artifacts")
    mlflow = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--backend-store-uri",
            postgres,
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, f"mlflow server exited:\n{server.stderr.read() if server.stderr else ''}"
            assert time.monotonic() < deadline, "mlflow server did not answer within 180 s"
            time.sleep(1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head without CPUs (shards go to the workers) and two worker nodes of one CPU each."""
    ray_cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "object_store_memory": NODE["object_store_memory"]},
    )
    for _ in range(2):
        ray_cluster.add_node(**NODE)
    ray_cluster.wait_for_nodes()
    yield ray_cluster
    ray_cluster.shutdown()


def _stage(stage: str) -> list[str]:
    return [sys.executable, "-m", f"pipelines.{stage}", "diabetes"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    return env | {"PYTHONPATH": str(REPO)} | extra


def _run(workdir: Path, stage: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_stage(stage), cwd=workdir, env=_env(**env), capture_output=True, text=True, timeout=600)


def _set_backend(workdir: Path, backend: str, tracking: bool) -> None:
    path = workdir / "params.yaml"
    tree = yaml.safe_load(path.read_text())
    tree["train"]["backend"], tree["train"]["tracking"] = backend, tracking
    path.write_text(yaml.safe_dump(tree, sort_keys=False))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory with the small grid, its prepared data, and the local backend's results
    in reference/."""
    mirror = Path(os.environ.get("REGBENCH_DATA_MIRROR") or REPO.parent / "shared" / "datasets")
    assert (mirror / "diabetes").is_dir(), f"{mirror}: no dataset mirror; set REGBENCH_DATA_MIRROR"
    root = tmp_path_factory.mktemp("scaleout")
    tree = yaml.safe_load((REPO / "params.yaml").read_text())
    tree["profile"] = "standard"
    tree["data"]["mirror"] = str(mirror)
    diabetes = tree["train"]["diabetes"]
    # No learning-rate maps: this grid's members are counted below (MEMBERS). No linear references:
    # their biases are 2 floats a seed, so their seed quantum is 8 and these 4 seeds would make one
    # shard; the fast test above merges them.
    diabetes.pop("maps", None)
    tree["profiles"]["smoke"]["train"]["diabetes"].pop("maps", None)
    diabetes["linear_reference"] = False
    # 8 configurations: a seed's stacked tensors span whole units of the fused optimizer (seed
    # quantum 1), so the 4 seeds make two shards of two seeds on the two worker nodes.
    diabetes.update(
        hidden=[16, 16],
        epochs=30,
        eval_every=5,
        seeds=[0, 1, 2, 3],
        bias_ablation=[],
        optimizers={
            "adam": {
                "lr": 3.0e-3,
                "families": {
                    "l1": [1.0e-3, 1.0e-2],
                    "l2": [1.0e-3, 1.0e-2],
                    "weight_decay": [1.0e-2, 1.0e-1],
                    "dropout": [0.2],
                },
            }
        },
    )
    (root / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    for stage in ("fetch", "prepare"):
        done = _run(root, stage)
        assert done.returncode == 0, done.stderr
    _set_backend(root, "local", tracking=False)
    done = _run(root, "train")
    assert done.returncode == 0, done.stderr
    for name in ("reports", "models"):
        shutil.copytree(root / name, root / "reference" / name)
    return root


def _assert_same_results(workdir: Path) -> pd.DataFrame:
    """runs.csv (but for the run ids), curves.csv and the weights equal the local backend's, bit for bit."""
    ours, local = workdir / "reports/results/diabetes", workdir / "reference/reports/results/diabetes"
    runs = pd.read_csv(ours / "runs.csv")
    pd.testing.assert_frame_equal(
        runs.drop(columns="run_id"), pd.read_csv(local / "runs.csv").drop(columns="run_id"), check_exact=True
    )
    assert (ours / "curves.csv").read_bytes() == (local / "curves.csv").read_bytes()
    weights = torch.load(workdir / "models/diabetes/weights.pt")
    expected = torch.load(workdir / "reference/models/diabetes/weights.pt")
    assert weights["members"] == expected["members"]
    for layer, want in zip(weights["layers"], expected["layers"], strict=True):
        assert torch.equal(layer["weight"], want["weight"]) and torch.equal(layer["bias"], want["bias"])
    return runs


def _children(url: str, parent_run_id: str) -> list:
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("regbench-diabetes")
    return client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=1000
    )


def _assert_one_finished_run_per_member(url: str, workdir: Path, runs: pd.DataFrame) -> list:
    summary = json.loads((workdir / "reports/results/diabetes/summary.json").read_text())
    parent = MlflowClient(url).get_run(summary["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["backend"] == "ray"
    children = _children(url, parent.info.run_id)
    members = sorted(int(run.data.tags[MEMBER_TAG]) for run in children)
    assert members == list(range(MEMBERS)), "one child run per member, no duplicates"
    assert {run.info.status for run in children} == {"FINISHED"}
    assert sorted(run.info.run_id for run in children) == sorted(runs["run_id"])
    return children


def _ray_env(cluster: Cluster, uri: str) -> dict[str, str]:
    return {"RAY_ADDRESS": cluster.address, "MLFLOW_TRACKING_URI": uri}


@pytest.mark.slow
def test_ray_backend_gives_the_local_results_and_one_child_run_per_member(
    workdir: Path, cluster: Cluster, tracking_server: str
) -> None:
    _set_backend(workdir, "ray", tracking=True)
    done = _run(workdir, "train", **_ray_env(cluster, tracking_server))
    assert done.returncode == 0, done.stderr
    assert "seeds in 2 shard(s) [[0, 1], [2, 3]] on 3 Ray node(s)" in done.stdout
    _assert_one_finished_run_per_member(tracking_server, workdir, _assert_same_results(workdir))


@pytest.mark.slow
def test_a_sqlite_store_is_refused_on_more_than_one_node_before_training(workdir: Path, cluster: Cluster) -> None:
    _set_backend(workdir, "ray", tracking=True)
    started = time.monotonic()
    done = _run(workdir, "train", **_ray_env(cluster, f"sqlite:///{workdir / 'mlflow.db'}"))
    assert done.returncode != 0
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: MLFLOW_TRACKING_URI sqlite:") and "start a tracking server" in error
    assert "shard(s)" not in done.stdout and time.monotonic() - started < 120


def _shard_processes() -> list[psutil.Process]:
    processes = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if " ".join(process.cmdline()).startswith("ray::_train_shard"):
                processes.append(process)
    return processes


def _start_training(workdir: Path, cluster: Cluster, url: str, shards: int) -> subprocess.Popen[str]:
    """The train stage with the ray backend, returned once each of its `shards` has started its
    members' runs and none has finished. A shard trains this grid in about a second, too short a
    window to catch by polling, so each shard's process is stopped (SIGSTOP) while its runs are
    counted and stays stopped until all are seen; they go on (SIGCONT) just before the return."""
    _set_backend(workdir, "ray", tracking=True)
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("regbench-diabetes").experiment_id
    started_ms = int(time.time() * 1000)  # Ray reuses worker processes: a pid may own earlier runs
    stage = subprocess.Popen(
        _stage("train"),
        cwd=workdir,
        env=_env(**_ray_env(cluster, url)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Scanning every process is slow, and a shard runs on meanwhile: the shards found are polled
    # every 10 ms, and the scan for new ones runs twice a second.
    known: dict[int, psutil.Process] = {}
    stopped: dict[int, psutil.Process] = {}
    deadline, scanned = time.monotonic() + 300, 0.0
    try:
        while len(stopped) < shards:
            assert stage.poll() is None, f"the stage ended before its shards were seen training:\n{stage.communicate()}"
            assert time.monotonic() < deadline, "the shards did not start within 300 s"
            if len(known) < shards or time.monotonic() - scanned > 0.5:
                known |= {process.pid: process for process in _shard_processes()}
                scanned = time.monotonic()
            for process in known.values():
                if process.pid in stopped or not process.is_running():
                    continue
                process.suspend()
                query = f"tags.`{PID_TAG}` = '{process.pid}' and attributes.start_time >= {started_ms}"
                runs = client.search_runs([experiment], query, max_results=1000)
                if len(runs) == MEMBERS // shards:
                    statuses = sorted({r.info.status for r in runs})
                    assert statuses == ["RUNNING"], f"the shard's runs are {statuses} when it is stopped"
                    stopped[process.pid] = process
                else:
                    process.resume()
            time.sleep(0.01)
    finally:
        for process in stopped.values():
            with contextlib.suppress(psutil.Error):
                process.resume()
    return stage


@pytest.mark.slow
def test_ctrl_c_cancels_the_shards_and_ends_every_run_killed(
    workdir: Path, cluster: Cluster, tracking_server: str
) -> None:
    stage = _start_training(workdir, cluster, tracking_server, shards=2)
    stage.send_signal(signal.SIGINT)
    _, stderr = stage.communicate(timeout=300)
    assert stage.returncode == 130 and "error: interrupted (Ctrl-C or SIGTERM)" in stderr, stderr[-2000:]
    client = MlflowClient(tracking_server)
    experiment = client.get_experiment_by_name("regbench-diabetes").experiment_id
    newest = client.search_runs(
        [experiment], "attributes.run_name = 'train diabetes'", max_results=1, order_by=["attributes.start_time DESC"]
    )[0]
    assert newest.info.status == "KILLED"
    children = _children(tracking_server, newest.info.run_id)
    assert len(children) == MEMBERS and {run.info.status for run in children} == {"KILLED"}


@pytest.mark.slow
def test_a_killed_worker_node_loses_and_duplicates_no_run(
    workdir: Path, cluster: Cluster, tracking_server: str
) -> None:
    stage = _start_training(workdir, cluster, tracking_server, shards=2)
    cluster.remove_node(next(iter(cluster.worker_nodes)), allow_graceful=False)
    _, stderr = stage.communicate(timeout=600)
    assert stage.returncode == 0, stderr
    children = _assert_one_finished_run_per_member(tracking_server, workdir, _assert_same_results(workdir))
    resumed = [r for r in children if r.data.tags.get(RESUMED_TAG) == "true"]
    assert len(resumed) == MEMBERS // 2, "the killed node's shard ran again and took up its runs"


@pytest.mark.slow
def test_a_shard_lost_on_every_attempt_fails_the_stage_naming_its_members(
    workdir: Path, cluster: Cluster, tracking_server: str
) -> None:
    """After the node kill above one worker node is left, so one shard trains every seed; its worker
    process is killed on every attempt (only processes of this cluster's raylet)."""
    (worker,) = cluster.worker_nodes
    raylet = psutil.Process(worker.all_processes["raylet"][0].process.pid)
    # This stage never finishes, so it may train long: each attempt then lives long enough to be
    # caught with its runs started, whatever the load on the machine.
    path = workdir / "params.yaml"
    tree = yaml.safe_load(path.read_text())
    tree["train"]["diabetes"]["epochs"] = 3000
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    stage = _start_training(workdir, cluster, tracking_server, shards=1)
    killed: set[int] = set()
    while stage.poll() is None:
        for process in raylet.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.pid not in killed and " ".join(process.cmdline()).startswith("ray::_train_shard"):
                    process.kill()
                    killed.add(process.pid)
        time.sleep(0.2)
    _, stderr = stage.communicate()
    error = stderr.strip().splitlines()[-1]
    assert stage.returncode != 0 and len(killed) == 1 + scaleout.RETRIES, stderr
    assert error.startswith("error: train diabetes: shard 1 (seeds [0, 1, 2, 3]; members [0, 1, 2, 3, 4,")
    assert f"failed on every attempt (1 + {scaleout.RETRIES} retries)" in error
    client = MlflowClient(tracking_server)
    experiment = client.get_experiment_by_name("regbench-diabetes").experiment_id
    newest = client.search_runs(
        [experiment], "attributes.run_name = 'train diabetes'", max_results=1, order_by=["attributes.start_time DESC"]
    )[0]
    children = _children(tracking_server, newest.info.run_id)
    assert newest.info.status == "FAILED" and "shard 1" in newest.data.tags["failure_reason"]
    assert len(children) == MEMBERS and {run.info.status for run in children} == {"FAILED"}

"""The ray backend: a grid cut into shards of whole seeds, each trained by the batched trainer as a
Ray task on the cluster at RAY_ADDRESS, and merged into exactly the local backend's results.

A shard holds every member of some seeds, so that each seed's first layer stays one wide product,
and a member is trained the same in any shard: its initial weights, batch order and dropout noise
come from its seed alone (networks.py), and the merge restores the grid's member order.

One more thing decides the last bit on the CPU. torch's fused optimizers update a stacked tensor
in units of 16 float32 (a cache line): vectorized, except the tensor's last, incomplete unit,
which rounds differently. So a CPU shard holds a multiple of the *seed quantum*: the fewest seeds
whose stacked tensors span whole units in every cohort. Its members then sit in the same units as
in the local backend's one stack per cohort, and runs.csv, curves.csv and the weights are
bit-identical (tests/test_scaleout.py). The price is fewer, larger shards on CPUs (a grid whose
quantum is 8 seeds runs 10 seeds as shards of 8 and 2). GPU shards are single seeds or more: the
local backend's GPU chunks follow free memory, so GPU results already agree to rounding only, as
do both backends' with max_chunk_members above 0.

The prepared data are put in Ray's object store once; each node fetches them once and each
worker process deserializes them once, whatever number of shards it trains. Tracking: the driver
holds the parent MLflow run, every shard its members' child runs (tracking.py).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import ray
from ray.exceptions import RayError, RayTaskError

import pipelines
from pipelines.core import interrupts
from pipelines.core.errors import ParamsError, RegbenchError
from pipelines.core.params import DatasetTrain, Params
from pipelines.data.datasets import Prepared
from pipelines.training import adam_state, networks, pruning, tracking
from pipelines.training.chunking import in_member_order
from pipelines.training.devices import choose_device, device_name
from pipelines.training.grid import Member
from pipelines.training.parent_run import ParentRun
from pipelines.training.trainer import GridResult, train_grid

RETRIES = 3  # a shard whose worker or node dies is run again, up to this many times
FUSED_UNIT = 16  # float32 elements per unit of torch's fused CPU optimizers (64 bytes)


@dataclass
class Shard:
    """What one Ray task needs: its members and how to train and track them."""

    number: int
    dataset: str
    members: list[Member]
    identity: pd.DataFrame  # the members' rows of the identity frame
    grid_spec: DatasetTrain
    thresholds: list[float]
    device: str
    cuda_tf32: bool
    max_chunk_members: int
    uri: str | None
    parent_run_id: str

    def describe(self) -> str:
        seeds = sorted({m.seed for m in self.members})
        return f"shard {self.number} (seeds {seeds}; members {[m.member for m in self.members]})"


@dataclass
class ShardResult:
    result: GridResult
    run_ids: list[str]
    device_type: str
    device_name: str


@dataclass
class Sharded:
    """The merged result of every shard, as the local backend would have returned it."""

    result: GridResult
    run_ids: list[str]
    device_type: str
    device_name: str
    shards: int
    nodes: int
    shard_seconds: list[float]  # training time of each shard, inside its task


def train(
    dataset: str,
    members: list[Member],
    identity: pd.DataFrame,
    data: Prepared,
    study: Params,
    uri: str | None,
    tags: dict[str, str],
) -> tuple[Sharded, ParentRun | None]:
    """Train the grid on the Ray cluster; returns the merged result and the parent run (None
    without tracking). Raises RegbenchError naming the shard whose every attempt failed."""
    grid_spec = getattr(study.train, dataset)
    start = time.perf_counter()
    _connect()
    try:
        nodes = len([node for node in ray.nodes() if node["Alive"]])
        if uri and nodes > 1 and urlsplit(uri).scheme == "sqlite":
            raise RegbenchError(
                f"MLFLOW_TRACKING_URI {uri}: a SQLite file cannot take runs from the {nodes} nodes of the Ray cluster; "
                "start a tracking server (make tracking-server) and set MLFLOW_TRACKING_URI=http://HOST:PORT"
            )
        slots, resources = _slots(study.train.device)
        blocks = seed_blocks(members, data, slots, "num_gpus" in resources)
        print(
            f"train {dataset}: seeds in {len(blocks)} shard(s) {blocks} on {nodes} Ray node(s), "
            f"{slots} {'GPU' if 'num_gpus' in resources else 'CPU'}(s) at once"
        )
        parent = ParentRun(dataset, tags, uri) if uri else None
        with parent or contextlib.nullcontext():
            shards = [
                Shard(
                    i + 1,
                    dataset,
                    [m for m in members if m.seed in block],
                    identity[identity["seed"].isin(block)].reset_index(drop=True),
                    grid_spec,
                    study.train.sparsity_thresholds,
                    study.train.device,
                    study.train.cuda_tf32,
                    study.train.max_chunk_members,
                    uri,
                    parent.run_id if parent else "",
                )
                for i, block in enumerate(blocks)
            ]
            results = _run(shards, data, resources)
            sharded = _merge(members, shards, results, time.perf_counter() - start, nodes)
            if parent:
                parent.finish(sharded.result.final)
        return sharded, parent
    finally:
        ray.shutdown()


def seed_quantum(members: list[Member], data: Prepared) -> int:
    """The fewest seeds whose members' stacked tensors span whole FUSED_UNITs in every cohort (each
    of one architecture: the grid's network, or a linear reference's one layer)."""
    first_seed = members[0].seed
    quantum = 1
    cohorts = Counter(m.cohort for m in members if m.seed == first_seed)
    for (*_, hidden), configurations in cohorts.items():
        sizes = networks.layer_sizes(data.n_features, list(hidden), data.n_classes)
        per_member = [i * o for i, o in zip(sizes[:-1], sizes[1:])] + sizes[1:]  # weights, then biases
        for numel in per_member:
            quantum = math.lcm(quantum, FUSED_UNIT // math.gcd(configurations * numel, FUSED_UNIT))
    return quantum


def seed_blocks(members: list[Member], data: Prepared, slots: int, gpus: bool) -> list[list[int]]:
    """The seeds of each shard: consecutive in sorted order (the trainer stacks a cohort's seeds
    sorted), on CPUs a multiple of the seed quantum, as evenly as that allows over `slots` tasks."""
    seeds = sorted({m.seed for m in members})
    quantum = 1 if gpus else seed_quantum(members, data)
    per_shard = quantum * math.ceil(len(seeds) / (slots * quantum))
    return [seeds[i : i + per_shard] for i in range(0, len(seeds), per_shard)]


def _connect() -> None:
    """Join the cluster at RAY_ADDRESS, or start a Ray instance here (never someone else's `ray start`)."""
    address = os.environ.get("RAY_ADDRESS") or "local"
    # Workers import this package as the driver has it, and reach the store with its credentials.
    runtime_env = {
        "py_modules": [str(Path(pipelines.__file__).parent)],
        "env_vars": {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")},
    }
    try:
        ray.init(address=address, runtime_env=runtime_env, logging_level=logging.WARNING, include_dashboard=False)
    except ConnectionError as error:
        raise RegbenchError(
            f"RAY_ADDRESS={address}: cannot connect to a Ray cluster ({error}); start one with "
            "`ray start --head` or unset RAY_ADDRESS to use a Ray instance on this machine"
        ) from None


def _slots(device: str) -> tuple[int, dict[str, float]]:
    """How many shards run at once, and what each asks for: a GPU where the cluster has them."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus and device != "cpu":
        return gpus, {"num_gpus": 1, "num_cpus": 1}
    if device == "cuda":
        raise ParamsError("params.yaml: train.device: found 'cuda'; the Ray cluster has no GPU (use auto or cpu)")
    return max(1, int(resources.get("CPU", 1))), {"num_cpus": 1}


def _run(shards: list[Shard], data: Prepared, resources: dict[str, float]) -> dict[int, ShardResult]:
    """Every shard's result by number. Ctrl-C or a failed shard cancels the others."""
    # In a list, the reference reaches the task unresolved: the worker reads it once (_prepared).
    data_ref = [ray.put(data)]
    task = _train_shard.options(max_retries=RETRIES, retry_exceptions=False, **resources)
    pending = {task.remote(shard, data_ref): shard for shard in shards}
    done: dict[int, ShardResult] = {}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
            interrupts.check()  # the wait is the driver's safe point
            if not ready:
                continue
            shard = pending.pop(ready[0])
            try:
                done[shard.number] = ray.get(ready[0])
            except RayError as error:
                cause = error.cause if isinstance(error, RayTaskError) else error
                raise RegbenchError(
                    f"train {shard.dataset}: {shard.describe()} failed on every attempt "
                    f"(1 + {RETRIES} retries): {_one_line(cause)}"
                ) from None
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        # Let the cancelled workers die before their runs are ended, so none writes after that.
        ray.wait(list(pending), num_returns=len(pending), timeout=30)
        raise
    return done


def _one_line(error: BaseException) -> str:
    first = " ".join(str(error).split())
    return f"{type(error).__name__}: {first}"[:1000]


@ray.remote
def _train_shard(shard: Shard, data_ref: list[ray.ObjectRef]) -> ShardResult:
    data = _prepared(data_ref[0])
    device = choose_device(shard.device, shard.cuda_tf32)
    run = (
        tracking.GridRun(shard.dataset, shard.identity, {}, shard.uri, parent_run_id=shard.parent_run_id)
        if shard.uri
        else None
    )
    with run or contextlib.nullcontext():
        trained = train_grid(
            shard.members,
            data,
            shard.grid_spec,
            shard.thresholds,
            device,
            shard.max_chunk_members,
            progress=False,
            on_evaluation=run.log_evaluation if run else None,
        )
        result = pruning.with_structure(
            trained, shard.members, data, shard.grid_spec.activation, device, progress=False
        )
        if run:
            run.finish(result.final)
    return ShardResult(result, run.run_ids if run else [""] * len(shard.members), device.type, device_name(device))


_PREPARED: dict[str, Prepared] = {}  # in a worker process: the data of the latest grid


def _prepared(ref: ray.ObjectRef) -> Prepared:
    key = ref.hex()
    if key not in _PREPARED:
        _PREPARED.clear()
        _PREPARED[key] = ray.get(ref)
    return _PREPARED[key]


def _merge(
    members: list[Member], shards: list[Shard], results: dict[int, ShardResult], seconds: float, nodes: int
) -> Sharded:
    """The shards' results in the grid's member order, as train_grid returns them."""
    parts = [results[shard.number] for shard in shards]
    order = [m.member for m in members]
    final = pd.concat([p.result.final for p in parts]).set_index("member").loc[order].reset_index()
    curves = (
        pd.concat([p.result.curves for p in parts])
        .sort_values(["member", "epoch"], kind="stable")
        .reset_index(drop=True)
    )
    # Each shard's stacks, of its networks and of its linear references, restored to the grid's order.
    networks = [([m for m in shard.members if m.hidden], p.result.weights) for shard, p in zip(shards, parts)]
    references = [
        ([m for m in shard.members if not m.hidden], [p.result.linear_weights])
        for shard, p in zip(shards, parts)
        if p.result.linear_weights is not None
    ]
    linear = [m for m in members if not m.hidden]
    # As pruning.with_structure orders them: by fraction, then by the member's place in the grid.
    at = {member: i for i, member in enumerate(order)}
    pruned = pd.concat([p.result.pruning for p in parts])
    pruned = pruned.iloc[np.lexsort((pruned["member"].map(at).to_numpy(), pruned["fraction"].to_numpy()))]
    moments = [p.result.second_moments for p in parts if p.result.second_moments is not None]
    run_of = {m.member: run_id for shard, p in zip(shards, parts) for m, run_id in zip(shard.members, p.run_ids)}
    result = GridResult(
        final=final,
        curves=curves,
        weights=in_member_order(networks, [m for m in members if m.hidden]),
        seconds=seconds,
        member_samples=sum(p.result.member_samples for p in parts),
        second_moments=adam_state.in_member_order(moments, members) if moments else None,
        pruning=pruned.reset_index(drop=True),
        linear_weights=in_member_order(references, linear)[0] if linear else None,
    )
    return Sharded(
        result,
        [run_of[member] for member in order],
        parts[0].device_type,
        parts[0].device_name,
        len(shards),
        nodes,
        [p.result.seconds for p in parts],
    )

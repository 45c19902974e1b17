"""Benchmark: the ray backend against the local one, on this machine.

    python -m benchmarks.scaleout [--dataset diabetes] [--nodes 1 2]

Run where the train stage runs: a directory with params.yaml and data/prepared/<dataset>.*. Trains
the params' grid once with the local backend, then on Ray clusters on loopback of a head without
CPUs and 1, 2, ... worker nodes of one CPU and a 200 MB object store each; tracking is off, so
both measure training and its distribution only. Checks that every Ray result is bit-identical to
the local one and prints a Markdown table:

  wall s        the whole call, Ray's connection and shutdown included (not the cluster's start)
  (the local backend twice: on torch's threads, as users run it, and on one, as each shard runs)
  train s       inside train_grid, summed over the shards
  overhead/shard  (wall x shards run at once - train s) / shards: the slot-seconds a shard spends
                  outside train_grid (connection, runtime environment, scheduling, data, results)
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from ray.cluster_utils import Cluster

from pipelines.core import params
from pipelines.data.datasets import load_prepared
from pipelines.training import grid, pruning, scaleout
from pipelines.training.devices import choose_device
from pipelines.training.trainer import GridResult, train_grid

STORE_BYTES = 200 * 1024**2  # object store of each node


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="diabetes", choices=params.DATASETS)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2], help="worker nodes of each Ray cluster")
    args = parser.parse_args()

    study = params.load()
    config = getattr(study.train, args.dataset)
    data = load_prepared(args.dataset)
    members = grid.expand(config)
    identity = grid.identity_frame(args.dataset, members, config, data.split_of)
    print(
        f"scale-out benchmark: {args.dataset}, profile {study.profile}, {len(members)} members, "
        f"{len(config.seeds)} seeds, {config.epochs} epochs, seed quantum "
        f"{scaleout.seed_quantum(members, data)}; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )

    # The local backend as users run it (torch's threads), and on one thread as each Ray shard runs.
    rows = []
    for threads in dict.fromkeys([torch.get_num_threads(), 1]):
        torch.set_num_threads(threads)
        start = time.perf_counter()
        unpruned = train_grid(
            members,
            data,
            config,
            study.train.sparsity_thresholds,
            choose_device("cpu"),
            study.train.max_chunk_members,
            progress=False,
        )
        # As the stage and each shard do: the pruning curves and structure columns belong to the result.
        local = pruning.with_structure(unpruned, members, data, config.activation, choose_device("cpu"))
        wall = time.perf_counter() - start
        rows.append((f"local, {threads} thread{'s' * (threads > 1)}", "-", 1, wall, local.seconds, 0.0))

    for nodes in args.nodes:
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 0, "include_dashboard": False, "object_store_memory": STORE_BYTES},
        )
        try:
            for _ in range(nodes):
                cluster.add_node(num_cpus=1, object_store_memory=STORE_BYTES)
            cluster.wait_for_nodes()
            os.environ["RAY_ADDRESS"] = cluster.address
            start = time.perf_counter()
            sharded, _ = scaleout.train(args.dataset, members, identity, data, study, None, {})
            wall = time.perf_counter() - start
        finally:
            os.environ.pop("RAY_ADDRESS", None)
            cluster.shutdown()
        _check_identical(local, sharded.result)
        trained = sum(sharded.shard_seconds)
        at_once = min(nodes, sharded.shards)
        rows.append(
            (
                f"ray, {nodes} worker node{'s' * (nodes > 1)}",
                str(sharded.shards),
                at_once,
                wall,
                trained,
                (wall * at_once - trained) / sharded.shards,
            )
        )

    print("\n| backend | shards | at once | wall s | train s | overhead per shard s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, shards, at_once, wall, trained, overhead in rows:
        print(f"| {name} | {shards} | {at_once} | {wall:.1f} | {trained:.1f} | {overhead:.1f} |")


def _check_identical(local: GridResult, ray: GridResult) -> None:
    assert local.pruning is not None and ray.pruning is not None
    same = {
        "runs": local.final.equals(ray.final),
        "curves": local.curves.equals(ray.curves),
        "pruning": local.pruning.equals(ray.pruning),
        "weights": all(
            torch.equal(a, b) for pair, other in zip(local.weights, ray.weights) for a, b in zip(pair, other)
        ),
    }
    differ = [part for part, equal in same.items() if not equal]
    if differ:
        raise SystemExit(f"the ray backend's results differ from the local backend's: {', '.join(differ)}")


if __name__ == "__main__":
    main()

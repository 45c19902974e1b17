"""Stage `train`: every grid member of one dataset, trained at once and tracked in MLflow.

    python -m pipelines.train <dataset>

Reads data/prepared/<dataset>.*; writes the results contract (pipelines/core/results.py):
reports/results/<dataset>/{runs,curves,pruning}.csv + summary.json and
models/<dataset>/{weights,adam_state}.pt.
train.backend says where the grid is trained: here (local) or in shards on a Ray cluster (ray,
pipelines/training/scaleout.py); the results are the same.
"""

from __future__ import annotations

import contextlib

import pandas as pd
import torch

from pipelines.core import interrupts, params, provenance, results
from pipelines.core.errors import stage
from pipelines.data.datasets import load_prepared
from pipelines.training import grid, outputs, pruning, store, tracking
from pipelines.training.devices import choose_device, device_name
from pipelines.training.trainer import train_grid


@stage
def main(argv: list[str] | None = None) -> None:
    dataset = params.dataset_argument("train", argv, __doc__.splitlines()[0])

    study = params.load()
    grid_spec = getattr(study.train, dataset)
    data = load_prepared(dataset)
    members = grid.expand(grid_spec)
    identity = grid.identity_frame(dataset, members, grid_spec, data.split_of)
    uri = store.tracking_uri() if study.train.tracking else None
    if uri:
        store.check_store(uri)  # fail now, not after an hour of training
    # DVC and schedulers stop a stage with SIGTERM: raise it like Ctrl-C so that the MLflow runs
    # are ended KILLED instead of left RUNNING (SIGKILL cannot be caught: see tracking's host and pid tags).
    interrupts.install()
    shape = f"{len(members)} members ({_shape(identity)}), {grid_spec.epochs} epochs"

    if study.train.backend == "ray":
        print(f"train {dataset}: {shape} on Ray")
        from pipelines.training import scaleout  # here, so that the local backend starts without Ray

        sharded, parent = scaleout.train(dataset, members, identity, data, study, uri, _tags(dataset, study, "ray"))
        result, run_ids, device_type, name = (
            sharded.result,
            sharded.run_ids,
            sharded.device_type,
            sharded.device_name,
        )
        experiment = _experiment(parent.experiment_name, parent.experiment_id, parent.run_id) if parent else {}
    else:
        device = choose_device(study.train.device, study.train.cuda_tf32)
        device_type, name = device.type, device_name(device)
        print(f"train {dataset}: {shape} on {name}")
        with _grid_run(dataset, identity, study, name, uri) as run:
            trained = train_grid(
                members,
                data,
                grid_spec,
                study.train.sparsity_thresholds,
                device,
                study.train.max_chunk_members,
                on_evaluation=run.log_evaluation if run else None,
            )
            result = pruning.with_structure(trained, members, data, grid_spec.activation, device)
            if run:
                run.finish(result.final)
            run_ids = run.run_ids if run else [""] * len(members)
        experiment = _experiment(run.experiment_name, run.experiment_id, run.parent_run_id) if run else {}

    outputs.write(dataset, identity, result, run_ids, study, device_type, name, experiment)
    print(f"train {dataset}: {len(members)} members in {result.seconds:.1f} s, {result.diverged} diverged")


def _shape(identity: pd.DataFrame) -> str:
    """Configurations × seeds of the main grid, the learning-rate maps and the linear references, e.g.
    "49 configurations x 10 seeds + 60 map cells x 3 seeds + 2 linear references x 10 seeds"."""
    parts = []
    for grid_name, what in (("main", "configurations"), ("map", "map cells"), (results.LINEAR, "linear references")):
        cells = identity[identity["grid"] == grid_name]
        if len(cells):
            parts.append(f"{cells['config'].nunique()} {what} x {cells['seed'].nunique()} seeds")
    return " + ".join(parts)


def _tags(dataset: str, study: params.Params, device_name: str) -> dict[str, str]:
    git = provenance.git_state()
    return {
        "git_commit": git.commit or "unknown",
        "git_dirty": str(git.dirty).lower(),
        "params_hash": provenance.params_hash(study),
        "profile": study.profile,
        "device": device_name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "dvc_stage": f"train@{dataset}",
        "backend": study.train.backend,
    }


def _grid_run(
    dataset: str, identity: pd.DataFrame, study: params.Params, device_name: str, uri: str | None
) -> contextlib.AbstractContextManager:
    if uri is None:
        return contextlib.nullcontext()
    return tracking.GridRun(dataset, identity, _tags(dataset, study, device_name), uri)


def _experiment(name: str, experiment_id: str, parent_run_id: str) -> dict[str, str]:
    return {"experiment_name": name, "experiment_id": experiment_id, "parent_run_id": parent_run_id}


if __name__ == "__main__":
    main()

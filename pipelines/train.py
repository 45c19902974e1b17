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
import json
import signal

import pandas as pd
import torch

from pipelines.core import params, provenance, results
from pipelines.core.errors import stage
from pipelines.core.files import atomic_path
from pipelines.data.datasets import load_prepared
from pipelines.training import adam_state, grid, pruning, store, tracking
from pipelines.training.trainer import GridResult, choose_device, train_grid


@stage
def main(argv: list[str] | None = None) -> None:
    dataset = params.dataset_argument("train", argv, __doc__.splitlines()[0])

    settings = params.load()
    config = getattr(settings.train, dataset)
    data = load_prepared(dataset)
    members = grid.expand(config)
    identity = grid.identity_frame(dataset, members, config)
    uri = store.tracking_uri() if settings.train.tracking else None
    if uri:
        store.check_store(uri)  # fail now, not after an hour of training
    # DVC and schedulers stop a stage with SIGTERM: raise it like Ctrl-C so that the MLflow runs
    # are ended KILLED instead of left RUNNING (SIGKILL cannot be caught: see tracking's host and pid tags).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    shape = (
        f"{len(members)} members ({identity['config'].nunique()} configurations x {len(config.seeds)} seeds), "
        f"{config.epochs} epochs"
    )

    if settings.train.backend == "ray":
        print(f"train {dataset}: {shape} on Ray")
        from pipelines.training import scaleout  # here, so that the local backend starts without Ray

        sharded, parent = scaleout.train(
            dataset, members, identity, data, settings, uri, _tags(dataset, settings, "ray")
        )
        result, run_ids, device_type, device_name = (
            sharded.result,
            sharded.run_ids,
            sharded.device_type,
            sharded.device_name,
        )
        experiment = _experiment(parent.experiment_name, parent.experiment_id, parent.run_id) if parent else {}
    else:
        device = choose_device(settings.train.device, settings.train.cuda_tf32)
        device_type, device_name = device.type, _device_name(device)
        print(f"train {dataset}: {shape} on {device_name}")
        with _grid_run(dataset, identity, settings, device_name, uri) as run:
            trained = train_grid(
                members,
                data,
                config,
                settings.train.sparsity_thresholds,
                device,
                settings.train.max_chunk_members,
                on_evaluation=run.log_evaluation if run else None,
            )
            result = pruning.with_structure(trained, data, config.activation, device)
            if run:
                run.finish(result.final)
            run_ids = run.run_ids if run else [""] * len(members)
        experiment = _experiment(run.experiment_name, run.experiment_id, run.parent_run_id) if run else {}

    _write(dataset, identity, result, run_ids, settings, device_type, device_name, experiment)
    print(f"train {dataset}: {len(members)} members in {result.seconds:.1f} s, {result.diverged} diverged")


def _tags(dataset: str, settings: params.Params, device_name: str) -> dict[str, str]:
    git = provenance.git_state()
    return {
        "git_commit": git.commit or "unknown",
        "git_dirty": str(git.dirty).lower(),
        "params_hash": provenance.params_hash(settings),
        "profile": settings.profile,
        "device": device_name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "dvc_stage": f"train@{dataset}",
        "backend": settings.train.backend,
    }


def _grid_run(
    dataset: str, identity: pd.DataFrame, settings: params.Params, device_name: str, uri: str | None
) -> contextlib.AbstractContextManager:
    if uri is None:
        return contextlib.nullcontext()
    return tracking.GridRun(dataset, identity, _tags(dataset, settings, device_name), uri)


def _experiment(name: str, experiment_id: str, parent_run_id: str) -> dict[str, str]:
    return {"experiment_name": name, "experiment_id": experiment_id, "parent_run_id": parent_run_id}


def _write(
    dataset: str,
    identity: pd.DataFrame,
    result: GridResult,
    run_ids: list[str],
    settings: params.Params,
    device_type: str,
    device_name: str,
    experiment: dict[str, str],
) -> None:
    """The results directory and the weights directory, each replaced whole."""
    runs = identity.merge(result.final, on="member", validate="one_to_one")
    runs["run_id"] = run_ids
    runs = runs[results.RUN_COLUMNS + results.sparsity_columns(runs) + results.structure_columns(runs)]
    key = ["dataset", "member", "config", "family", "seed"]
    curves = identity[key].merge(result.curves, on="member", validate="one_to_many")
    pruning_curves = identity[key].merge(result.pruning, on="member", validate="one_to_many")[results.PRUNING_COLUMNS]
    summary = {
        "dataset": dataset,
        "device": device_type,
        "device_name": device_name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "seconds": round(result.seconds, 3),
        "tf32_matmuls": device_type == "cuda" and settings.train.cuda_tf32,
        "members": len(runs),
        "diverged": result.diverged,
        "profile": settings.profile,
        "experiment_name": experiment.get("experiment_name"),
        "experiment_id": experiment.get("experiment_id"),
        "parent_run_id": experiment.get("parent_run_id"),
    }
    with atomic_path(results.RESULTS_DIR / dataset) as out:
        out.mkdir()
        runs.to_csv(out / "runs.csv", index=False)
        curves.to_csv(out / "curves.csv", index=False)
        pruning_curves.to_csv(out / "pruning.csv", index=False)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with atomic_path(results.MODELS_DIR / dataset) as out:
        out.mkdir()
        layers = [{"weight": w, "bias": b} for w, b in result.weights]
        torch.save({"members": runs["member"].tolist(), "layers": layers}, out / "weights.pt")
        if result.second_moments is not None:
            adam_state.save(result.second_moments, out / "adam_state.pt")


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


if __name__ == "__main__":
    main()

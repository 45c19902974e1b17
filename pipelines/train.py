"""Stage `train`: every grid member of one dataset, trained at once and tracked in MLflow.

    python -m pipelines.train <dataset>

Reads data/prepared/<dataset>.*; writes the results contract (pipelines/core/results.py):
reports/results/<dataset>/{runs,curves,pruning}.csv + summary.json and models/<dataset>/{weights,adam_state}.pt.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time

import pandas as pd
import torch

from pipelines.core import params, provenance, results
from pipelines.core.errors import stage
from pipelines.core.files import atomic_path
from pipelines.data.datasets import Prepared, load_prepared
from pipelines.training import adam_state, grid, pruning, tracking
from pipelines.training.trainer import GridResult, choose_device, train_grid


@stage
def main(argv: list[str] | None = None) -> None:
    dataset = params.dataset_argument("train", argv, __doc__.splitlines()[0])

    settings = params.load()
    config = getattr(settings.train, dataset)
    device = choose_device(settings.train.device, settings.train.cuda_tf32)
    data = load_prepared(dataset)
    members = grid.expand(config)
    identity = grid.identity_frame(dataset, members, config)
    uri = tracking.tracking_uri() if settings.train.tracking else None
    if uri:
        tracking.check_store(uri)  # fail now, not after an hour of training
    print(f"train {dataset}: {len(members)} members ({identity['config'].nunique()} configurations x "
          f"{len(config.seeds)} seeds), {config.epochs} epochs on {_device_name(device)}")

    # DVC and schedulers stop a stage with SIGTERM: raise it like Ctrl-C so that the MLflow runs
    # are ended KILLED instead of left RUNNING (SIGKILL cannot be caught: see tracking's host and pid tags).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with _grid_run(dataset, identity, settings, device, uri) as run:
        result = train_grid(members, data, config, settings.train.sparsity_thresholds, device,
                            settings.train.max_chunk_members, on_evaluation=run.log_evaluation if run else None)
        print(f"train {dataset}: {len(members)} members in {result.seconds:.1f} s, {result.diverged} diverged")
        final, curves = _structure(result, data, config.activation, device)
        if run:
            run.finish(final)
        run_ids = run.run_ids if run else [""] * len(members)

    _write(dataset, identity, result, final, curves, run_ids, settings, device, run)


def _structure(result: GridResult, data: Prepared, activation: str,
               device: torch.device) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The final rows with the structure columns of the contract, and the pruning curves (rows of
    members in the grid's order); a diverged member's are NaN, as its metrics are."""
    started = time.perf_counter()
    structure, curves = pruning.measure([w for w, _ in result.weights], [b for _, b in result.weights], data,
                                        activation, device)
    diverged = (result.final["status"] == "diverged").to_numpy()
    structure.loc[diverged] = float("nan")
    curves.loc[diverged[curves["member"]], ["val_loss", "val_acc", "test_loss", "test_acc"]] = float("nan")
    curves["member"] = result.final["member"].to_numpy()[curves["member"]]
    print(f"train: pruning curves and structure measures in {time.perf_counter() - started:.1f} s")
    return pd.concat([result.final.reset_index(drop=True), structure], axis=1), curves


def _grid_run(dataset: str, identity: pd.DataFrame, settings: params.Params, device: torch.device,
              uri: str | None) -> contextlib.AbstractContextManager:
    if uri is None:
        return contextlib.nullcontext()
    git = provenance.git_state()
    tags = {
        "git_commit": git.commit or "unknown", "git_dirty": str(git.dirty).lower(),
        "params_hash": provenance.params_hash(settings), "profile": settings.profile,
        "device": _device_name(device), "torch": torch.__version__, "cuda": torch.version.cuda or "none",
        "dvc_stage": f"train@{dataset}",
    }
    return tracking.GridRun(dataset, identity, tags, uri)


def _write(dataset: str, identity: pd.DataFrame, result: GridResult, final: pd.DataFrame, pruned: pd.DataFrame,
           run_ids: list[str], settings: params.Params, device: torch.device, run: tracking.GridRun | None) -> None:
    """The results directory and the weights directory, each replaced whole."""
    runs = identity.merge(final, on="member", validate="one_to_one")
    runs["run_id"] = run_ids
    runs = runs[results.RUN_COLUMNS + results.sparsity_columns(runs) + results.structure_columns(runs)]
    key = ["dataset", "member", "config", "family", "seed"]
    curves = identity[key].merge(result.curves, on="member", validate="one_to_many")
    pruning_curves = identity[key].merge(pruned, on="member", validate="one_to_many")[results.PRUNING_COLUMNS]
    summary = {
        "dataset": dataset, "device": device.type, "device_name": _device_name(device),
        "torch": torch.__version__, "cuda": torch.version.cuda, "seconds": round(result.seconds, 3),
        "tf32_matmuls": torch.backends.cuda.matmul.allow_tf32,
        "members": len(runs), "diverged": result.diverged, "profile": settings.profile,
        "experiment_name": run.experiment_name if run else None,
        "experiment_id": run.experiment_id if run else None,
        "parent_run_id": run.parent_run_id if run else None,
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

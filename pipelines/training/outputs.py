"""What the train stage writes: the results contract of pipelines/core/results.py, from a trained
grid (runs.csv, curves.csv, pruning.csv, summary.json; weights.pt, linear.pt and adam_state.pt)."""

from __future__ import annotations

import json

import pandas as pd
import torch

from pipelines.core import params, results
from pipelines.core.files import atomic_path
from pipelines.training import adam_state
from pipelines.training.trainer import GridResult


def write(
    dataset: str,
    identity: pd.DataFrame,
    result: GridResult,
    run_ids: list[str],
    study: params.Params,
    device_type: str,
    device_name: str,
    experiment: dict[str, str],
) -> None:
    """The results directory and the weights directory of `dataset`, each replaced whole."""
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
        "tf32_matmuls": device_type == "cuda" and study.train.cuda_tf32,
        "members": len(runs),
        "diverged": result.diverged,
        "profile": study.profile,
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
        linear = runs["grid"] == results.LINEAR  # no hidden layer: their one layer is stored apart
        layers = [{"weight": w, "bias": b} for w, b in result.weights]
        torch.save({"members": runs.loc[~linear, "member"].tolist(), "layers": layers}, out / "weights.pt")
        if result.linear_weights is not None:
            weight, bias = result.linear_weights
            references = {"members": runs.loc[linear, "member"].tolist(), "layers": [{"weight": weight, "bias": bias}]}
            torch.save(references, out / "linear.pt")
        if result.second_moments is not None:
            adam_state.save(result.second_moments, out / "adam_state.pt")

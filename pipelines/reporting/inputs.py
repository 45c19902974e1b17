"""What the report reads: summary.json and the tables of analyze, the captions of figures, the training
summaries, the prepared-data metadata and the strength conventions of params.yaml, each checked."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.core import params, results, tables
from pipelines.core.errors import DataError, ParamsError
from pipelines.data import datasets

DISPLAY_NAMES = datasets.DISPLAY_NAMES
METRICS_KEYS = ("members", "diverged", "baseline_test_acc", "best_family", "best_test_acc")
SUMMARY_KEYS = (
    "device",
    "device_name",
    "torch",
    "cuda",
    "seconds",
    "members",
    "diverged",
    "profile",
    "experiment_name",
    "experiment_id",
    "parent_run_id",
)
PREPARED_KEYS = ("splits", "split_sizes", "class_names", "feature_names", "source_sha256")

# What each table of the report shows, {column: header}; "ci" joins a low/high pair (see _display).
SHOWN = {
    "comparisons": {
        "scope": "scope",
        "role": "role",
        "metric": "metric",
        "a": "a",
        "b": "b",
        "n": "n",
        "mean_a": "mean a",
        "mean_b": "mean b",
        "mean_diff": "a − b",
        "ci": "CI of a − b",
        "wilcoxon_p": "p (Wilcoxon)",
        "min_attainable_p": "smallest p",
        "holm_p": "p (Holm)",
        "cohens_dz": "d_z",
        "p_a_beats_b": "P(a > b)",
    },
    # The comparisons a verdict reads, in the hypothesis' own section; every one is in the appendix.
    "judged": {
        "optimizer": "optimizer",
        "metric": "metric",
        "a": "a",
        "b": "b",
        "n": "seeds",
        "mean_diff": "a − b",
        "ci": "CI of a − b",
        "wilcoxon_p": "p (Wilcoxon)",
        "min_attainable_p": "smallest p",
        "holm_p": "p (Holm)",
    },
    "margins": {
        "measure": "measure",
        "margin": "margin",
        "baseline_sd": "baseline's seed SD",
        "reason": "why this margin",
    },
    "selected": {
        "optimizer": "optimizer",
        "family": "family",
        "config": "configuration",
        "strength": "strength",
        "chosen": "chosen per split",
        "val_acc_mean": "val acc",
        "test_acc_mean": "test acc",
        "test_acc_ci": "CI of test acc",
        "n_seeds": "seeds",
        "n_diverged": "diverged",
        "edge": "at the grid's edge",
        "splits_at_edge": "splits choosing an edge",
    },
    "ranking": {
        "optimizer": "optimizer",
        "family": "family",
        "config": "configuration",
        "mean_rank": "mean rank",
        "friedman_p": "p (Friedman)",
        "n_seeds": "seeds",
    },
    "trends": {
        "optimizer": "optimizer",
        "family": "family",
        "metric": "metric",
        "levels": "strengths",
        "level_means": "means",
        "page_L": "Page L",
        "page_p": "p (Page)",
        "min_attainable_p": "smallest p",
        "n_seeds": "seeds",
        "monotone": "monotone",
    },
    "equivalence": {
        "optimizer": "optimizer",
        "a": "a",
        "b": "b",
        "metric": "metric",
        "margin": "margin",
        "mean_diff": "a − b",
        "tost_p": "p (TOST)",
        "equivalent": "equivalent",
    },
    "exclusions": {"config": "configuration", "members": "members", "diverged": "diverged"},
    "mechanism": {
        "family": "family",
        "config": "configuration",
        "seed": "seed",
        "slope": "slope on log √v̂",
        "n_weights": "weights",
        "excluded": "exact zeros left out",
        "dead_units": "dead units",
        "baseline_dead_units": "dead units (none)",
    },
    "lr_slopes": {
        "optimizer": "optimizer",
        "family": "family",
        "seed": "seed",
        "slope": "slope of log best λ on log lr",
        "at_edge": "best λ at the map's edge",
    },
}
# Tables of one hypothesis alone, shown (per dataset) in its section, each with what it is.
OWN_TABLES = {
    "H5": {
        "mechanism": "Per seed, Adam's selected l2 and adamw: the least-squares slope of log(|w|/|w_none|) on log √v̂ "
        "over every weight (exact zeros have no logarithm: left out and counted), and dead hidden units",
        "lr_slopes": "Per seed, the slope of log(validation-best λ) on log(lr) over the learning-rate map "
        "(PyTorch units: −1 means the decay per step lr·λ is fixed)",
    }
}


@dataclass(frozen=True)
class Figure:
    dataset: str
    name: str  # "<nn>_<name>", as in captions.json; captions refer to figures by <nn>
    title: str
    caption: str
    path: Path
    hypotheses: tuple[str, ...]  # the sections it belongs to; none: the Figures section

    @property
    def label(self) -> str:
        return self.name.split("_", 1)[0]


@dataclass(frozen=True)
class Inputs:
    """Everything the report reads, and the files it came from (hashed when there is no dvc.lock)."""

    metrics: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    figures: dict[str, list[Figure]]
    overview: list[Figure]  # the figures across datasets (the study at a glance), above the others
    summaries: dict[str, dict[str, Any]]
    runs: dict[str, pd.DataFrame]
    prepared: dict[str, dict[str, Any]]
    conventions: str
    files: list[Path]


def read_inputs(params_file: Path = params.PARAMS_FILE) -> Inputs:
    """Read and check every input; a missing or malformed one raises DataError naming the file."""
    metrics = _read_json(results.SUMMARY_FILE, "analyze")
    names = dataset_names(metrics)
    table_files = {name: results.TABLES_DIR / f"{name}.csv" for name in tables.COLUMNS}
    prepared_files = {d: datasets.prepared_paths(d)[1] for d in names}
    drawn = {d: _read_figures(results.FIGURES_DIR / d, d) for d in names}
    overview = _read_figures(results.FIGURES_DIR, "")
    return Inputs(
        metrics=metrics,
        tables=tables.read(),
        figures=drawn,
        overview=overview,
        summaries={d: _read_keys(results.summary_path(d), "train", SUMMARY_KEYS) for d in names},
        runs={d: results.read_runs(results.runs_path(d)) for d in names},
        prepared={d: _read_keys(path, "prepare", PREPARED_KEYS) for d, path in prepared_files.items()},
        conventions=strength_conventions(params_file),
        files=[
            results.SUMMARY_FILE,
            params_file,
            *table_files.values(),
            *prepared_files.values(),
            *(results.summary_path(d) for d in names),
            *(results.runs_path(d) for d in names),
            *(results.FIGURES_DIR / d / "captions.json" for d in names),
            results.FIGURES_DIR / "captions.json",
            *(f.path for listed in [*drawn.values(), overview] for f in listed),
        ],
    )


def _read_json(path: Path, producer: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the {producer} stage first (dvc repro)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None


def _read_keys(path: Path, producer: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """A JSON object that must hold `keys`; the error names the file and the missing ones."""
    value = _read_json(path, producer)
    missing = [k for k in keys if not isinstance(value, dict) or k not in value]
    if missing:
        raise DataError(f"{path}: missing keys {missing}; expected {list(keys)} from the {producer} stage")
    return value


def dataset_names(metrics: Any) -> list[str]:
    """The datasets summary.json covers, in the order of params.DATASETS, each checked for its headline keys."""
    if not isinstance(metrics, dict) or not metrics:
        raise DataError(
            f"{results.SUMMARY_FILE}: found {str(metrics)[:60]!r}; expected a mapping of dataset to metrics"
        )
    for dataset, entry in metrics.items():
        missing = [k for k in METRICS_KEYS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise DataError(f"{results.SUMMARY_FILE}: {dataset}: missing keys {missing}; expected {list(METRICS_KEYS)}")
    order = {name: i for i, name in enumerate(params.DATASETS)}
    return sorted(metrics, key=lambda d: (order.get(d, len(order)), d))


def _read_figures(folder: Path, dataset: str) -> list[Figure]:
    path = folder / "captions.json"
    captions = _read_json(path, "figures")
    if not isinstance(captions, dict):
        raise DataError(f"{path}: found {type(captions).__name__}; expected a mapping of figure name to caption")
    drawn = []
    for name, entry in sorted(captions.items()):
        if not isinstance(entry, dict) or not {"title", "caption"} <= entry.keys():
            raise DataError(f"{path}: {name}: found {str(entry)[:80]!r}; expected a title and a caption")
        image = folder / f"{name}.png"
        if not image.is_file():
            raise DataError(f"{image}: not found, yet {path} lists it; run the figures stage again")
        drawn.append(Figure(dataset, name, entry["title"], entry["caption"], image, tuple(entry.get("hypotheses", ()))))
    return drawn


def strength_conventions(path: Path = params.PARAMS_FILE) -> str:
    """The comment block that heads params.yaml from 'Strength conventions' on, without the '#'."""
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("#") and "Strength conventions" in line), None)
    if start is None:
        raise ParamsError(f"{path}: found no '# Strength conventions' comment block; expected one heading the file")
    block = itertools.takewhile(lambda line: line.startswith("#"), lines[start:])
    return "\n".join(line.removeprefix("#").removeprefix(" ") for line in block)

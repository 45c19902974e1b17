"""Preparation of one dataset: parse and validate the raw files, split them with a fixed seed (Pima:
several seeded splits, stacked), impute and standardize with statistics of each split's training part
only, write tensors and metadata."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torchvision.datasets import FashionMNIST

from pipelines.core import files, params
from pipelines.core.errors import DataError, ParamsError
from pipelines.data.datasets import (
    FASHION_TRAIN_IMAGES,
    PIMA_FEATURES,
    PIMA_ZERO_MEANS_MISSING,
    PREPARED_DIR,
    RAW_DIR,
    RAW_FILES,
    SPLITS,
    prepared_paths,
    read_idx,
    read_pima,
    split_diabetes,
    split_fashion,
)

Arrays = dict[str, np.ndarray]
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "fashion_mnist": tuple(FashionMNIST.classes),
    "diabetes": ("tested_negative", "tested_positive"),  # the words of the UCI description
}


def check_fashion_settings(data_params: params.FashionData) -> None:
    """The subset must fit in what validation leaves; the schema cannot see both keys at once."""
    room = FASHION_TRAIN_IMAGES - data_params.val_size
    if data_params.train_subset is not None and data_params.train_subset > room:
        raise ParamsError(
            f"{params.PARAMS_FILE}: data.fashion_mnist.train_subset (after the profile's overrides): "
            f"found {data_params.train_subset}; expected at most {room} (the {FASHION_TRAIN_IMAGES} "
            f"training images minus val_size {data_params.val_size}) or null"
        )


def source_hashes(raw_dir: Path, dataset: str, allow_modified: bool) -> dict[str, str]:
    """The sha256 of each raw file as prepare reads it, refused when it is not the pinned one (the file
    changed after fetch verified it) unless data.<dataset>.allow_modified says the change is deliberate."""
    found = {file.name: hashlib.sha256((raw_dir / file.name).read_bytes()).hexdigest() for file in RAW_FILES[dataset]}
    for file in RAW_FILES[dataset]:
        if found[file.name] != file.sha256 and not allow_modified:
            raise DataError(
                f"{raw_dir / file.name}: sha256 {found[file.name]}; expected the pinned {file.sha256} "
                f"(the file changed after fetch verified it); fetch it again (`python -m pipelines.fetch "
                f"{dataset}`), or set data.{dataset}.allow_modified: true to prepare edited data"
            )
    return found


def prepare_fashion(raw_dir: Path, data_params: params.FashionData) -> tuple[Arrays, dict[str, Any]]:
    """Split, flatten, scale to [0, 1] and standardize with one mean and std of the training split."""
    idx = {file.name: read_idx(raw_dir / file.name, file.shape) for file in RAW_FILES["fashion_mnist"]}
    n_classes = len(CLASS_NAMES["fashion_mnist"])
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        if idx[name].max() >= n_classes:
            raise DataError(f"{raw_dir / name}: found label {idx[name].max()}; expected 0 to {n_classes - 1}")
    train_images, train_labels = idx["train-images-idx3-ubyte"], idx["train-labels-idx1-ubyte"]
    parts = split_fashion(train_labels, data_params.val_size, data_params.train_subset, data_params.seed)
    images = {
        "train": train_images[parts["train"]],
        "val": train_images[parts["val"]],
        "test": idx["t10k-images-idx3-ubyte"],
    }
    labels = {
        "train": train_labels[parts["train"]],
        "val": train_labels[parts["val"]],
        "test": idx["t10k-labels-idx1-ubyte"],
    }
    # From a histogram of the 256 grey levels: exact, and no float copy of the training images.
    counts = np.bincount(images["train"].ravel(), minlength=256)
    levels = np.arange(256) / 255
    mean = float(counts @ levels / counts.sum())
    std = float(np.sqrt(counts @ (levels - mean) ** 2 / counts.sum()))
    arrays = {}
    for split in SPLITS:
        x = images[split].reshape(len(images[split]), -1) / np.float32(255)
        x -= np.float32(mean)  # in place: the full training split is 172 MB of float32
        x /= np.float32(std)
        arrays[f"x_{split}"] = x[None]  # one split: the official test set, for every seed
        arrays[f"y_{split}"] = labels[split].astype(np.int64)[None]
    pixels = [f"pixel_{row}_{col}" for row in range(28) for col in range(28)]
    return arrays, {"feature_names": pixels, "normalization": {"mean": mean, "std": std}, "imputation": None}


def prepare_diabetes(raw_dir: Path, data_params: params.DiabetesData) -> tuple[Arrays, dict[str, Any]]:
    """Draw data.diabetes.splits stratified splits and prepare each with statistics of its own
    training part; the arrays stack them, (splits, n, features) and (splits, n)."""
    (file,) = RAW_FILES["diabetes"]
    path = raw_dir / file.name
    frame = read_pima(path, rows=file.shape[0])
    labels = frame["Outcome"].to_numpy(np.int64)
    prepared = [
        _prepare_pima_split(
            frame,
            split_diabetes(labels, data_params.val_fraction, data_params.test_fraction, data_params.seed, split=k),
            data_params.impute,
            path,
        )
        for k in range(data_params.splits)
    ]
    arrays = {name: np.stack([split_arrays[name] for split_arrays, _ in prepared]) for name in prepared[0][0]}
    details = {
        "feature_names": list(PIMA_FEATURES),
        "split_method": "repeated stratified train/validation/test split; split k drawn by "
        "numpy.random.default_rng([data.diabetes.seed, k])",
        "normalization": [normalization for _, (normalization, _) in prepared],
        "imputation": {
            "method": data_params.impute,
            "statistic_of": "train",
            "per_split": [imputation for _, (_, imputation) in prepared],
        },
    }
    return arrays, details


def _prepare_pima_split(
    frame: pd.DataFrame, parts: dict[str, np.ndarray], impute: str, path: Path
) -> tuple[Arrays, tuple[dict[str, Any], dict[str, Any]]]:
    """One split: fill the zeros that mean "missing" and standardize every feature, with statistics of
    the split's training part. Returns its arrays, its normalization and its imputation."""
    missing = list(PIMA_ZERO_MEANS_MISSING)
    features = frame[list(PIMA_FEATURES)].copy()
    features[missing] = features[missing].replace(0.0, np.nan)
    fill = features.iloc[parts["train"]][missing].agg(impute)  # ignores the missing values
    if fill.isna().any():
        raise DataError(
            f"{path}: column {fill.index[fill.isna()][0]} is missing (0) in every training row; "
            "expected values to impute from"
        )
    filled = features.fillna(fill)
    train = filled.iloc[parts["train"]]
    mean, std = train.mean(), train.std(ddof=0)
    if (std == 0).any():
        raise DataError(
            f"{path}: column {std.index[std == 0][0]} is constant on the training split; "
            "expected variation to standardize"
        )
    standardized = ((filled - mean) / std).to_numpy(np.float32)
    labels = frame["Outcome"].to_numpy(np.int64)
    arrays = {}
    for split in SPLITS:
        arrays[f"x_{split}"] = np.ascontiguousarray(standardized[parts[split]])
        arrays[f"y_{split}"] = labels[parts[split]]
    imputation = {
        "values": fill.to_dict(),
        "imputed_counts": {
            split: {c: int(n) for c, n in features.iloc[parts[split]][missing].isna().sum().items()} for split in SPLITS
        },
    }
    normalization = {"mean": mean.to_dict(), "std": std.to_dict(), "std_ddof": 0}
    return arrays, (normalization, imputation)


PREPARERS: dict[str, Callable[[Path, Any], tuple[Arrays, dict[str, Any]]]] = {
    "fashion_mnist": prepare_fashion,
    "diabetes": prepare_diabetes,
}


def prepare(
    dataset: str, data: params.DataParams, raw_root: Path = RAW_DIR, out_root: Path = PREPARED_DIR
) -> tuple[Path, Path]:
    """Prepare `dataset` from raw_root/<dataset>/ and write its tensors and metadata to out_root."""
    data_params = getattr(data, dataset)
    if dataset == "fashion_mnist":
        check_fashion_settings(data_params)
    raw_dir = raw_root / dataset
    if not raw_dir.is_dir():
        raise DataError(f"{raw_dir}: not found; run `python -m pipelines.fetch {dataset}` first")
    # Parsed first: a broken cell named by its row and column says more than a changed hash.
    arrays, details = PREPARERS[dataset](raw_dir, data_params)
    hashes = source_hashes(raw_dir, dataset, data_params.allow_modified)
    class_names = CLASS_NAMES[dataset]
    metadata = {
        "dataset": dataset,
        "class_names": list(class_names),
        "splits": len(arrays["y_train"]),
        # Of every split: stratified splits of one table have the same sizes and class counts.
        "split_sizes": {split: arrays[f"y_{split}"].shape[1] for split in SPLITS},
        "class_balance": {
            split: dict(
                zip(class_names, np.bincount(arrays[f"y_{split}"][0], minlength=len(class_names)).tolist(), strict=True)
            )
            for split in SPLITS
        },
        "settings": data_params.model_dump(),
        # Of the bytes prepared here; the pinned hash where they are the files fetch verified.
        "source_sha256": hashes,
        "source_modified": [file.name for file in RAW_FILES[dataset] if hashes[file.name] != file.sha256],
        **details,
    }
    tensors_path, metadata_path = prepared_paths(dataset, out_root)
    with files.atomic_path(tensors_path) as staged:
        # torch.save names its archive after the file; staged has the target's name, so two runs
        # write the same bytes.
        torch.save({name: torch.from_numpy(array) for name, array in arrays.items()}, staged)
    files.write_json(metadata_path, metadata)
    return tensors_path, metadata_path

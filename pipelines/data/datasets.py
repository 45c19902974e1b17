"""The two datasets: their raw files (names, pinned hashes, where to get them), verified readers
of those files, seeded stratified splits, and the loader of what the prepare stage wrote."""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.core.errors import DataError
from pipelines.core.params import DATASETS

if TYPE_CHECKING:
    import torch

# How a reader names each dataset: in the report and the figures.
DISPLAY_NAMES = {"fashion_mnist": "Fashion-MNIST", "diabetes": "Pima Indians diabetes"}
RAW_DIR = Path("data/raw")
PREPARED_DIR = Path("data/prepared")
SOURCE_RECORD = "source.json"  # written by fetch beside the raw files: the sha256 of each


def origin_path(dataset: str, raw_root: Path = RAW_DIR) -> Path:
    """Where fetch records which source and location served each file: beside data/raw/<dataset>/, not
    in it, so that where the bytes came from never changes the hash DVC takes of them."""
    return raw_root / f"{dataset}.origin.json"


DEBIAN_DIR = Path("/usr/share/datasets")  # where Debian's dataset-fashion-mnist puts fashion-mnist/

FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
PIMA_URL = "https://raw.githubusercontent.com/jbrownlee/Datasets/master/pima-indians-diabetes.data.csv"


@dataclass(frozen=True)
class RawFile:
    """One file of data/raw/<dataset>/; `sha256` is of the bytes stored there.

    Fashion-MNIST is stored decompressed: mirrors recompress the gzip, so only the decompressed
    bytes have one hash, and data/raw/ is then the same whichever source served it.
    """

    name: str
    sha256: str
    shape: tuple[int, ...]  # of the array the file holds
    mirror_path: str  # inside a mirror, laid out like /work/shared/datasets
    url: str  # the official download
    gzipped: bool  # sources hold it gzip-compressed


def _fashion(name: str, sha256: str, shape: tuple[int, ...]) -> RawFile:
    return RawFile(name, sha256, shape, f"fashion-mnist/{name}.gz", f"{FASHION_URL}{name}.gz", gzipped=True)


FASHION_TRAIN_IMAGES, FASHION_TEST_IMAGES = 60_000, 10_000
PIMA_COLUMNS = (
    "Pregnancies",
    "Glucose",
    "BloodPressure",
    "SkinThickness",
    "Insulin",
    "BMI",
    "DiabetesPedigreeFunction",
    "Age",
    "Outcome",
)
PIMA_FEATURES = PIMA_COLUMNS[:-1]
PIMA_ZERO_MEANS_MISSING = ("Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI")

RAW_FILES: dict[str, tuple[RawFile, ...]] = {
    "fashion_mnist": (
        _fashion(
            "train-images-idx3-ubyte",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            (FASHION_TRAIN_IMAGES, 28, 28),
        ),
        _fashion(
            "train-labels-idx1-ubyte",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            (FASHION_TRAIN_IMAGES,),
        ),
        _fashion(
            "t10k-images-idx3-ubyte",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            (FASHION_TEST_IMAGES, 28, 28),
        ),
        _fashion(
            "t10k-labels-idx1-ubyte",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            (FASHION_TEST_IMAGES,),
        ),
    ),
    "diabetes": (
        RawFile(
            "pima-indians-diabetes.data.csv",
            "6bfe5d0f379d17a0e0819b996407e3c09bf80febd4287f2ed212190dfff154af",
            (768, len(PIMA_COLUMNS)),
            "diabetes/pima-indians-diabetes.data.csv",
            PIMA_URL,
            gzipped=False,
        ),
    ),
}

IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only one Fashion-MNIST uses


def read_idx(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Read an uncompressed IDX file of unsigned bytes whose header must announce `shape`.

    Ours rather than torchvision's read_sn3_pascalvincent_tensor, which checks the header with
    asserts (gone under python -O), never compares the file length with the header (a truncated
    file fails later in a reshape, with no file name) and is tied to FashionMNIST's own folder
    layout and gzip md5s; here any mismatch is a DataError naming the file, never a short array.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the fetch stage first") from None
    expected_magic = bytes([0, 0, IDX_UBYTE, len(shape)])
    if len(data) < 4 or data[:4] != expected_magic:
        raise DataError(
            f"{path}: magic number 0x{data[:4].hex()}; expected 0x{expected_magic.hex()} "
            f"(IDX, unsigned bytes, {len(shape)} dimensions)"
        )
    header = 4 + 4 * len(shape)
    if len(data) < header:
        raise DataError(f"{path}: {len(data)} bytes; expected a header of {header} bytes")
    found = struct.unpack(f">{len(shape)}I", data[4:header])
    if found != shape:
        raise DataError(f"{path}: header announces shape {found}; expected {shape}")
    expected_length = header + int(np.prod(shape))
    if len(data) != expected_length:
        raise DataError(f"{path}: {len(data)} bytes; expected {expected_length} for shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_pima(path: Path, rows: int) -> pd.DataFrame:
    """Read the Pima CSV (with or without a header row) into PIMA_COLUMNS; Outcome as int64."""
    try:
        table = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the fetch stage first") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not a readable CSV ({error})".replace("\n", " ")) from None
    if table.shape[1] != len(PIMA_COLUMNS):
        raise DataError(f"{path}: {table.shape[1]} columns; expected {len(PIMA_COLUMNS)} ({', '.join(PIMA_COLUMNS)})")
    if pd.isna(pd.to_numeric(table.iloc[0, 0], errors="coerce")):
        header = [name.strip() for name in table.iloc[0]]
        if header != list(PIMA_COLUMNS):
            raise DataError(f"{path}: header row {header}; expected {list(PIMA_COLUMNS)}")
        table = table.iloc[1:].reset_index(drop=True)
    if len(table) != rows:
        raise DataError(f"{path}: {len(table)} data rows; expected {rows}")
    table.columns = list(PIMA_COLUMNS)
    values = table.apply(pd.to_numeric, errors="coerce")
    for column in PIMA_COLUMNS:
        # "inf" and "1e400" parse, as infinity: one such cell makes its column's mean and std non-finite.
        bad = values.index[~np.isfinite(values[column])]
        if len(bad):
            raise DataError(
                f"{path}: data row {bad[0] + 1}, column {column}: found {table.at[bad[0], column]!r}; "
                "expected a finite number"
            )
    wrong = values.index[~values["Outcome"].isin([0, 1])]
    if len(wrong):
        raise DataError(
            f"{path}: data row {wrong[0] + 1}, column Outcome: found {table.at[wrong[0], 'Outcome']!r}; expected 0 or 1"
        )
    return values.astype({name: "float64" for name in PIMA_FEATURES} | {"Outcome": "int64"})


def stratified_take(labels: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw `count` positions of `labels` keeping each class's share; return (taken, rest), sorted.

    Each class gets the floor of its quota, and the classes with the largest remainders one more,
    so the counts add up to `count` exactly.
    """
    classes, sizes = np.unique(labels, return_counts=True)
    quota = count * sizes / len(labels)
    per_class = np.floor(quota).astype(np.int64)
    per_class[np.argsort(per_class - quota, kind="stable")[: count - per_class.sum()]] += 1
    per_label = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, per_class, strict=True)]
    taken = np.sort(np.concatenate(per_label))
    return taken, np.setdiff1d(np.arange(len(labels)), taken)


def split_fashion(labels: np.ndarray, val_size: int, train_subset: int | None, seed: int) -> dict[str, np.ndarray]:
    """Positions of the official training images for validation and training (the stratified
    subset of the rest, or all of it when `train_subset` is None)."""
    rng = np.random.default_rng(seed)
    val, rest = stratified_take(labels, val_size, rng)
    if train_subset is None:
        return {"train": rest, "val": val}
    subset, _ = stratified_take(labels[rest], train_subset, rng)
    return {"train": rest[subset], "val": val}


def split_diabetes(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int, split: int = 0
) -> dict[str, np.ndarray]:
    """Stratified positions for train, validation and test of draw `split`; fractions are of all rows.

    Draw k comes from its own generator, seeded by (seed, k): every draw has the same sizes and class
    counts, and asking for more draws never changes the earlier ones."""
    rng = np.random.default_rng([seed, split])
    test, rest = stratified_take(labels, round(test_fraction * len(labels)), rng)
    val, train = stratified_take(labels[rest], round(val_fraction * len(labels)), rng)
    return {"train": rest[train], "val": rest[val], "test": test}


SPLITS = ("train", "val", "test")
TENSORS = tuple(f"{kind}_{split}" for split in SPLITS for kind in ("x", "y"))


@dataclass(frozen=True)
class Split:
    """One train/validation/test split: standardized float32 features (n, features) and int64 labels (n,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass(frozen=True)
class Prepared:
    """A prepared dataset: K splits of the same sizes, stacked, features (K, n, features) and labels
    (K, n) per part. Training seed s uses split s mod K (Fashion-MNIST: K = 1, the official test set;
    Pima: K = data.diabetes.splits), so the configurations of one seed always share their data."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    metadata: dict[str, Any]

    @property
    def n_splits(self) -> int:
        return self.x_train.shape[0]

    @property
    def n_features(self) -> int:
        return self.x_train.shape[-1]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def sizes(self) -> dict[str, int]:
        """Rows per part, the same in every split."""
        return {part: getattr(self, f"y_{part}").shape[1] for part in SPLITS}

    def split_of(self, seed: int) -> int:
        """The split that training seed `seed` uses."""
        return seed % self.n_splits

    def of_seeds(self, seeds: list[int]) -> dict[str, torch.Tensor]:
        """Every tensor as (len(seeds), n, ...), each seed's from its split: with one split, a view of
        it for every seed; else a copy of the seeds' splits."""
        if self.n_splits == 1:
            return {name: getattr(self, name).expand(len(seeds), *getattr(self, name).shape[1:]) for name in TENSORS}
        return {name: getattr(self, name)[[self.split_of(s) for s in seeds]] for name in TENSORS}

    def split(self, k: int) -> Split:
        return Split(*(getattr(self, name)[k] for name in TENSORS))

    def for_seed(self, seed: int) -> Split:
        return self.split(self.split_of(seed))


def prepared_paths(dataset: str, root: Path = PREPARED_DIR) -> tuple[Path, Path]:
    """The tensors file and the metadata file of a prepared dataset."""
    return root / f"{dataset}.pt", root / f"{dataset}.json"


def load_prepared(dataset: str, root: Path = PREPARED_DIR) -> Prepared:
    """Load what `python -m pipelines.prepare <dataset>` wrote, checking names, dtypes and shapes."""
    import torch  # here, so that fetch, which needs only the definitions above, starts without torch

    if dataset not in DATASETS:
        raise DataError(f"dataset {dataset!r}: unknown; expected one of {list(DATASETS)}")
    tensors_path, metadata_path = prepared_paths(dataset, root)
    try:
        tensors = torch.load(tensors_path, weights_only=True)
        metadata = json.loads(metadata_path.read_text())
    except FileNotFoundError as error:
        raise DataError(
            f"{error.filename}: not found; run `python -m pipelines.prepare {dataset}` (or dvc repro) first"
        ) from None
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, json.JSONDecodeError, EOFError) as error:
        raise DataError(
            f"{root / dataset}.*: not readable ({error}); run the prepare stage again".replace("\n", " ")
        ) from None
    if not isinstance(tensors, dict) or sorted(tensors) != sorted(TENSORS):
        found = sorted(tensors) if isinstance(tensors, dict) else type(tensors).__name__
        raise DataError(f"{tensors_path}: holds {found}; expected the tensors {list(TENSORS)}")
    splits = tensors["x_train"].shape[:1]
    for part in SPLITS:
        x, y = tensors[f"x_{part}"], tensors[f"y_{part}"]
        if x.dtype != torch.float32 or y.dtype != torch.int64 or x.ndim != 3 or y.shape != x.shape[:2]:
            raise DataError(
                f"{tensors_path}: {part} part is x {x.dtype} {tuple(x.shape)}, y {y.dtype} "
                f"{tuple(y.shape)}; expected float32 (splits, n, features) and int64 (splits, n)"
            )
        if x.shape[:1] != splits:
            raise DataError(f"{tensors_path}: {part} part has {x.shape[0]} splits; expected {splits[0]}, as train")
    return Prepared(**tensors, class_names=tuple(metadata["class_names"]), metadata=metadata)

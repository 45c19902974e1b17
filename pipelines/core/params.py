"""The typed schema of params.yaml, and the one loader every stage calls before doing anything.

A scale profile (``profile:``) is an overlay merged over the file; overlays may only name keys
the file already has, so a typo in a profile is caught like a typo anywhere else.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.core.errors import ParamsError

PARAMS_FILE = Path("params.yaml")
DATASETS = ("fashion_mnist", "diabetes")

Strength = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Strengths = Annotated[list[Strength], Field(min_length=1)]


class Schema(BaseModel):
    """Base of every section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FashionData(Schema):
    val_size: Annotated[int, Field(ge=1, le=59_000)]
    train_subset: Annotated[int, Field(ge=10)] | None
    seed: Annotated[int, Field(ge=0)]
    allow_modified: bool = False


class DiabetesData(Schema):
    val_fraction: Annotated[float, Field(gt=0, lt=1)]
    test_fraction: Annotated[float, Field(gt=0, lt=1)]
    impute: Literal["median", "mean"]
    seed: Annotated[int, Field(ge=0)]
    splits: Annotated[int, Field(ge=1)]  # stratified splits drawn; training seed s uses split s mod splits
    allow_modified: bool = False

    @model_validator(mode="after")
    def _leaves_training_rows(self) -> DiabetesData:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must be below 0.9")
        return self


class DataParams(Schema):
    mirror: str | None
    fashion_mnist: FashionData
    diabetes: DiabetesData


class PairGrid(Schema):
    """Two strength lists; elastic takes their product, activity takes each list on its own."""

    l1: list[Strength] = []
    l2: list[Strength] = []

    @model_validator(mode="after")
    def _not_empty(self) -> PairGrid:
        if not self.l1 and not self.l2:
            raise ValueError("needs at least one strength in l1 or l2")
        return self


class Families(Schema):
    """Regularizer families trained under one optimizer; each lists its strengths."""

    l1: Strengths | None = None
    prox_l1: Strengths | None = None
    l2: Strengths | None = None
    l2_norm: Strengths | None = None
    elastic: PairGrid | None = None
    weight_decay: Strengths | None = None
    adamw: Strengths | None = None
    sgdw: Strengths | None = None
    dropout: Annotated[list[Probability | list[Probability]], Field(min_length=1)] | None = None
    activity: PairGrid | None = None

    @model_validator(mode="after")
    def _elastic_is_a_product(self) -> Families:
        if self.elastic is not None and not (self.elastic.l1 and self.elastic.l2):
            raise ValueError("elastic needs both l1 and l2 strengths")
        return self


class Optimizer(Schema):
    lr: Positive
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.0
    betas: tuple[Probability, Probability] = (0.9, 0.999)
    eps: Positive = 1e-8
    families: Families = Families()


class LrMap(Schema):
    """One optimizer's learning-rate × strength map: every lr with every strength of the L2 penalty
    and of the decoupled decay (adamw under adam, sgdw under sgd), each cell over the map's seeds."""

    lrs: Annotated[list[Positive], Field(min_length=2)]
    l2: Annotated[list[Positive], Field(min_length=2)]
    adamw: Annotated[list[Positive], Field(min_length=2)] | None = None
    sgdw: Annotated[list[Positive], Field(min_length=2)] | None = None


class Maps(Schema):
    """The cells off the main grid (H5 and the map figures only): per optimizer an LrMap."""

    seeds: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=2)]
    optimizers: dict[Literal["sgd", "adam"], LrMap]

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        return _distinct_seeds(seeds)


def _distinct_seeds(seeds: list[int]) -> list[int]:
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"seeds must be distinct (the paired design needs it); repeated: {repeated}")
    return seeds


class DatasetTrain(Schema):
    hidden: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]
    activation: Literal["relu", "tanh", "sigmoid"]
    batch_size: Annotated[int, Field(ge=1)]
    epochs: Annotated[int, Field(ge=1)]
    eval_every: Annotated[int, Field(ge=1)]
    seeds: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
    penalize_bias: bool
    # Families also trained with the opposite penalize_bias, for the H6 comparison.
    bias_ablation: list[Literal["l1", "prox_l1", "l2", "l2_norm", "elastic", "weight_decay", "adamw", "sgdw"]] = []
    optimizers: dict[Literal["sgd", "adam"], Optimizer]
    maps: Maps | None = None  # learning-rate × strength maps, trained besides the grid above
    # A linear reference per optimizer group: the network with no hidden layer (logistic regression,
    # softmax regression), unregularized, at the group's lr and over the grid's seeds.
    linear_reference: bool = False

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        return _distinct_seeds(seeds)

    @field_validator("optimizers")
    @classmethod
    def _grid_not_empty(cls, optimizers: dict[str, Optimizer]) -> dict[str, Optimizer]:
        if not optimizers:
            raise ValueError("the grid is empty: name at least one optimizer (sgd or adam)")
        return optimizers

    @model_validator(mode="after")
    def _consistent(self) -> DatasetTrain:
        sgd = self.optimizers.get("sgd")
        if sgd is not None and sgd.families.adamw is not None:
            raise ValueError("optimizers.sgd.families.adamw: decoupled AdamW decay needs optimizer adam")
        adam = self.optimizers.get("adam")
        if adam is not None and adam.families.sgdw is not None:
            raise ValueError("optimizers.adam.families.sgdw: decoupled SGDW decay needs optimizer sgd")
        for name, optimizer in self.optimizers.items():
            for p in optimizer.families.dropout or []:
                if isinstance(p, list) and len(p) != len(self.hidden):
                    raise ValueError(
                        f"optimizers.{name}.families.dropout: {p} has {len(p)} probabilities, "
                        f"expected one per hidden layer ({len(self.hidden)})"
                    )
        for name, lr_map in (self.maps.optimizers if self.maps else {}).items():
            decoupled, other = ("adamw", "sgdw") if name == "adam" else ("sgdw", "adamw")
            if name not in self.optimizers:
                raise ValueError(f"maps.optimizers.{name}: found a map for {name}; it needs optimizers.{name} too")
            if getattr(lr_map, decoupled) is None or getattr(lr_map, other) is not None:
                raise ValueError(
                    f"maps.optimizers.{name}: expected {decoupled} strengths and no {other} "
                    f"(decoupled decay under {name} is {decoupled})"
                )
        return self


class TrainParams(Schema):
    # Where the grid is trained; not a dependency of the train stage in dvc.yaml, since both
    # backends give the same results (pipelines/training/scaleout.py).
    backend: Literal["local", "ray"]
    device: Literal["auto", "cpu", "cuda"]
    cuda_tf32: bool
    tracking: bool
    max_chunk_members: Annotated[int, Field(ge=0)]
    sparsity_thresholds: Annotated[list[Positive], Field(min_length=1)]
    fashion_mnist: DatasetTrain
    diabetes: DatasetTrain


class Margin(Schema):
    """The smallest effect of interest on one measure: a difference within it is "no effect"."""

    value: Annotated[float, Field(gt=0, lt=1)]
    reason: Annotated[str, Field(min_length=1)]  # printed beside the margin in the report


class Margins(Schema):
    """One dataset's margins. test_acc: the equivalence margin on test accuracy (H6); the H2
    margins: how far l2 may move the scale-free sparsity (negligible, a TOST margin), the prunable
    fraction and the dead units (as a fraction of hidden units) from the baseline's."""

    test_acc: Margin
    negligible: Margin
    prunable_fraction: Margin
    dead_fraction: Margin


class DatasetMargins(Schema):
    fashion_mnist: Margins
    diabetes: Margins

    def of(self, dataset: str) -> Margins:
        margins: Margins = getattr(self, dataset)
        return margins


class AnalyzeParams(Schema):
    alpha: Annotated[float, Field(gt=0, lt=1)]
    # H1a/H1b: validation accuracy given up against the baseline (fractions), each a point where the
    # L1 and L2 frontiers are compared.
    accuracy_costs: Annotated[list[Annotated[float, Field(gt=0, lt=1)]], Field(min_length=1)]
    margins: DatasetMargins
    early_stopping: bool = False

    @field_validator("accuracy_costs")
    @classmethod
    def _increasing(cls, costs: list[float]) -> list[float]:
        if any(b <= a for a, b in zip(costs, costs[1:])):
            raise ValueError(f"found {costs}; expected strictly increasing costs (fractions, 0.005 = half a point)")
        return costs


class FiguresParams(Schema):
    dpi: Annotated[int, Field(ge=50, le=1200)]


class ReportParams(Schema):
    title: str
    authors: Annotated[list[str], Field(min_length=1)]
    version: str


class Params(Schema):
    profile: str
    data: DataParams
    train: TrainParams
    analyze: AnalyzeParams
    figures: FiguresParams
    report: ReportParams
    profiles: dict[str, dict[str, Any]]


def dataset_argument(stage: str, argv: Sequence[str] | None, description: str) -> str:
    """The dataset a per-dataset stage (`python -m pipelines.<stage> <dataset>`) was asked for."""
    parser = argparse.ArgumentParser(prog=f"python -m pipelines.{stage}", description=description)
    parser.add_argument("dataset", choices=DATASETS)
    return parser.parse_args(argv).dataset


def load(path: Path | str = PARAMS_FILE) -> Params:
    """Read, apply the chosen profile, validate. Any problem raises ParamsError naming the key."""
    path = Path(path)
    try:
        with path.open() as stream:  # a stream, not a string: YAML's messages then name the file
            raw = yaml.safe_load(stream)
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found; run from the repository root") from None
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {error}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: found {type(raw).__name__}, expected a mapping of sections")
    chosen = _validate(path, raw, raw.get("profile"))
    # Every other profile is checked too, so that `dvc exp run -S profile=paper` cannot fail late.
    for name in chosen.profiles:
        if name != chosen.profile:
            _validate(path, raw, name)
    return chosen


def _validate(path: Path, raw: dict[str, Any], name: object) -> Params:
    """The file with profile `name` applied, validated."""
    profiles = raw.get("profiles")
    merged = raw
    if isinstance(profiles, dict) and isinstance(name, str):  # else the schema reports the key
        if name not in profiles:
            raise ParamsError(f"{path}: profile: found {name!r}; expected one of {sorted(profiles)}")
        merged = copy.deepcopy(raw)
        _overlay(path, merged, profiles[name] or {}, f"profiles.{name}")
        merged["profile"] = name
    try:
        return Params.model_validate(merged)
    except ValidationError as error:
        within = f" (with profile {name})" if name != raw.get("profile") else ""
        raise ParamsError(_first_problem(path, merged, error) + within) from None


def _key_path(raw: Any, loc: tuple[int | str, ...], names_a_key: bool) -> list[str]:
    """The params key path of pydantic's error location: the parts that index the file's own tree.

    pydantic puts its own labels between them (the branch of a union, "constrained-float",
    "list[...]", "function-after[...]"); only a missing or unknown key, the last part, is not in the tree.
    """
    node, parts = raw, []
    for position, part in enumerate(loc):
        if _indexes(node, part):
            parts.append(str(part))
            node = node[part]
        elif names_a_key and position == len(loc) - 1:
            parts.append(str(part))
    return parts


def _indexes(node: Any, part: int | str) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _overlay(path: Path, base: dict[str, Any], overrides: Any, where: str) -> None:
    if not isinstance(overrides, dict):
        raise ParamsError(f"{path}: {where}: found {overrides!r}; expected a mapping of overrides")
    for key, value in overrides.items():
        if key not in base:
            raise ParamsError(f"{path}: {where}.{key}: unknown key; a profile may only override keys the file has")
        if isinstance(value, dict) and isinstance(base[key], dict):
            _overlay(path, base[key], value, f"{where}.{key}")
        else:
            base[key] = value


def _first_problem(path: Path, raw: dict[str, Any], error: ValidationError) -> str:
    problem = error.errors()[0]
    key = ".".join(_key_path(raw, problem["loc"], problem["type"] in ("extra_forbidden", "missing")))
    if problem["type"] == "extra_forbidden":
        return f"{path}: {key}: unknown key"
    if problem["type"] == "missing":
        return f"{path}: {key}: missing; this key is required"
    message = problem["msg"].removeprefix("Value error, ")
    return f"{path}: {key or '(top level)'}: found {problem['input']!r}; {message}"

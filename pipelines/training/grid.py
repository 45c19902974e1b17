"""The grid: a dataset's training params expanded into members, one per (configuration, seed).

Members are ordered by optimizer group, then configuration, then seed; the cells of the
learning-rate × strength maps (train.<dataset>.maps) follow, by optimizer, lr, family, strength,
then seed, marked grid="map" and named with their lr, so that the analyses of the main grid can
leave them out. The linear references (train.<dataset>.linear_reference) come last, per optimizer
group then seed: unregularized networks with no hidden layer, marked grid="linear". Members that
share a seed share initial weights, mini-batch order and dropout noise (see
pipelines/training/networks.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from pipelines.core.params import DatasetTrain, Families, Optimizer
from pipelines.core.results import LINEAR

# The headline strength of each family, for plots and trend tests (dropout: the mean p).
HEADLINE = {
    "l1": "l1",
    "prox_l1": "prox_l1",
    "l2": "l2",
    "l2_norm": "l2_norm",
    "elastic": "l1",
    "weight_decay": "weight_decay",
    "adamw": "decoupled_wd",
    "sgdw": "decoupled_wd",
}


@dataclass(frozen=True)
class Member:
    """One grid member: every setting it is trained with. Unused strengths are 0."""

    member: int
    config: str
    family: str
    optimizer: str  # sgd | adam | adamw | sgdw
    lr: float
    momentum: float
    betas: tuple[float, float]
    eps: float
    seed: int
    penalize_bias: bool
    hidden: tuple[int, ...]  # the hidden layers' widths: the dataset's network, or () for a linear reference
    dropout: tuple[float, ...]  # per hidden layer
    l1: float = 0.0
    prox_l1: float = 0.0
    l2: float = 0.0
    l2_norm: float = 0.0
    weight_decay: float = 0.0
    decoupled_wd: float = 0.0
    act_l1: float = 0.0
    act_l2: float = 0.0
    grid: str = "main"  # main | map (a cell of a learning-rate × strength map) | linear (LINEAR)

    @property
    def strength(self) -> float:
        if self.family == "dropout":
            return sum(self.dropout) / len(self.dropout)
        if self.family == "activity":
            return self.act_l1 or self.act_l2
        return getattr(self, HEADLINE[self.family]) if self.family in HEADLINE else 0.0

    @property
    def rule(self) -> str:
        """The optimizer's update rule; AdamW and SGDW are Adam's and SGD's with the decoupled decay
        applied before it."""
        return "adam" if self.optimizer in ("adam", "adamw") else "sgd"

    @property
    def cohort(self) -> tuple:
        """Members of one cohort share the update rule and its scalar hyperparameters, so they are
        trained together by one optimizer over stacked parameters, of one architecture."""
        return self.rule, self.lr, self.momentum, self.betas, self.eps, self.grid, self.hidden


def expand(grid_spec: DatasetTrain) -> list[Member]:
    """Every member of the grid, numbered in order."""
    settings = []
    for name, optimizer in grid_spec.optimizers.items():
        for family, values in _family_settings(optimizer.families, len(grid_spec.hidden)):
            settings.append((name, optimizer, family, values, grid_spec.penalize_bias))
            if family in grid_spec.bias_ablation:
                settings.append((name, optimizer, family, values, not grid_spec.penalize_bias))
    hidden = tuple(grid_spec.hidden)
    members: list[Member] = []
    for name, optimizer, family, values, penalize_bias in settings:
        for seed in grid_spec.seeds:
            members.append(_member(len(members), name, optimizer, family, values, penalize_bias, seed, hidden))
    members += _map_members(grid_spec, len(members))
    return members + _linear_members(grid_spec, len(members))


def _map_members(grid_spec: DatasetTrain, first: int) -> list[Member]:
    """The map cells: every lr × every strength of l2 and of the decoupled decay, over the map's seeds."""
    if grid_spec.maps is None:
        return []
    members: list[Member] = []
    hidden = tuple(grid_spec.hidden)
    for name, lr_map in grid_spec.maps.optimizers.items():
        optimizer = grid_spec.optimizers[name]
        decoupled = "adamw" if name == "adam" else "sgdw"
        cells = [("l2", {"l2": s}) for s in lr_map.l2]
        cells += [(decoupled, {"decoupled_wd": s}) for s in getattr(lr_map, decoupled) or []]
        for lr in lr_map.lrs:
            at_lr = optimizer.model_copy(update={"lr": lr})
            for family, values in cells:
                for seed in grid_spec.maps.seeds:
                    member = _member(first + len(members), name, at_lr, family, values, False, seed, hidden)
                    members.append(dataclasses.replace(member, grid="map", config=f"{member.config}/lr={lr:g}"))
    return members


def _linear_members(grid_spec: DatasetTrain, first: int) -> list[Member]:
    """The linear references: per optimizer group, at its lr, over the grid's seeds, so that they are
    paired by seed with the networks (the same mini-batches)."""
    if not grid_spec.linear_reference:
        return []
    members: list[Member] = []
    for name, optimizer in grid_spec.optimizers.items():
        for seed in grid_spec.seeds:
            member = _member(first + len(members), name, optimizer, LINEAR, {}, False, seed, ())
            members.append(dataclasses.replace(member, grid=LINEAR))
    return members


def _family_settings(families: Families, depth: int) -> list[tuple[str, dict]]:
    """(family, settings) for each configuration of an optimizer group, baseline first."""
    out: list[tuple[str, dict]] = [("none", {})]
    for family in ("l1", "prox_l1", "l2", "l2_norm", "weight_decay"):
        out += [(family, {family: s}) for s in getattr(families, family) or []]
    out += [("adamw", {"decoupled_wd": s}) for s in families.adamw or []]
    out += [("sgdw", {"decoupled_wd": s}) for s in families.sgdw or []]
    if families.elastic:
        out += [("elastic", {"l1": a, "l2": b}) for a in families.elastic.l1 for b in families.elastic.l2]
    for p in families.dropout or []:
        out.append(("dropout", {"dropout": tuple(p) if isinstance(p, list) else (p,) * depth}))
    if families.activity:
        out += [("activity", {"act_l1": s}) for s in families.activity.l1]
        out += [("activity", {"act_l2": s}) for s in families.activity.l2]
    return out


def _member(
    index: int,
    name: str,
    optimizer: Optimizer,
    family: str,
    values: dict,
    penalize_bias: bool,
    seed: int,
    hidden: tuple[int, ...],
) -> Member:
    optimizer_name = family if family in ("adamw", "sgdw") else name
    return Member(
        member=index,
        config=config_name(optimizer_name, family, values, penalize_bias),
        family=family,
        optimizer=optimizer_name,
        lr=optimizer.lr,
        momentum=optimizer.momentum,
        betas=optimizer.betas,
        eps=optimizer.eps,
        seed=seed,
        penalize_bias=penalize_bias,
        hidden=hidden,
        **{"dropout": (0.0,) * len(hidden)} | values,
    )


def config_name(optimizer: str, family: str, values: dict, penalize_bias: bool) -> str:
    """'<optimizer>/<family>[/k=v,...][/bias]': a configuration, without its seed."""

    def show(v: object) -> str:
        return ";".join(f"{p:g}" for p in v) if isinstance(v, tuple) else f"{v:g}"

    inner = ",".join(f"{k}={show(v)}" for k, v in values.items())
    return f"{optimizer}/{family}" + (f"/{inner}" if inner else "") + ("/bias" if penalize_bias else "")


def identity_frame(
    dataset: str, members: list[Member], grid_spec: DatasetTrain, split_of: Callable[[int], int]
) -> pd.DataFrame:
    """The identity columns of the results contract, one row per member; `split_of` maps a seed to
    the data split it trains on (datasets.Prepared.split_of)."""
    rows = []
    for m in members:
        fields = dataclasses.asdict(m)
        rows.append(
            {
                "dataset": dataset,
                **{
                    k: fields[k]
                    for k in (
                        "member",
                        "config",
                        "family",
                        "optimizer",
                        "lr",
                        "momentum",
                        "seed",
                    )
                },
                "split": split_of(m.seed),
                "penalize_bias": m.penalize_bias,
                "grid": m.grid,
                "strength": m.strength,
                **{k: fields[k] for k in ("l1", "prox_l1", "l2", "l2_norm", "weight_decay", "decoupled_wd")},
                "dropout": sum(m.dropout) / len(m.dropout) if m.dropout else 0.0,
                "dropout_layers": ";".join(f"{p:g}" for p in m.dropout),
                "act_l1": m.act_l1,
                "act_l2": m.act_l2,
                "hidden": "-".join(map(str, m.hidden)),
                "activation": grid_spec.activation,
                "batch_size": grid_spec.batch_size,
                "epochs": grid_spec.epochs,
            }
        )
    return pd.DataFrame(rows)

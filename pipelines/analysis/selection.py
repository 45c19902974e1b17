"""Which networks stand for a family: selected on validation, within each data split.

A seed trains on one split of the data (datasets.Prepared.split_of: Pima has several, Fashion-MNIST
one, its official test set). Each family's strength is selected within each split, as a
practitioner tunes on the validation set of the data they have: per split, the config with the
highest mean val_acc over the split's seeds, ties to the lower mean val_loss, then the smaller
strength (then the config name). Test accuracy is only reported. A family's replicate on a split is
thus the network its validation chose there, and the paired tests see the tuning's noise as well as
the seeds'. Where every split chose the same config (always, with one split) the family is that
config; otherwise it is an *arm*, named <group>/<family>/per-split: per seed, the member of the
config its split chose, added to the grid (Grid.with_arms) so that every test reads it as a config.
The arms table lists, per seed, the member that stands for each selected config or arm.
(H1a/H1b read frontiers at accuracy costs instead: pipelines/analysis/frontier.py.)

Two marks of a ladder too short. `edge`: where the optimum of the mean validation accuracy over
every seed sits on its ladder of strengths, e.g. "strongest l2": at an end the grid does not
bracket the optimum, so it is not one. The weakest end is no edge where that strength validates
within the smallest effect of interest of the baseline (analyze.margins.<dataset>.test_acc): the
ladder has reached "no visible effect", and the baseline, strength 0, lies below it.
`splits_at_edge`: the splits whose own choice sits at an end, by the same rule on the split.
Coupled weight_decay is never an arm: it is the l2 penalty by construction (the same gradient
term; tests/test_trainer.py checks the identity), and counting it would compare l2 with itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from pipelines.analysis import inference
from pipelines.analysis.grid import Grid
from pipelines.core import results, tables
from pipelines.core.params import AnalyzeParams

# Families trained but never compared: each is another family by construction.
IDENTICAL_TO = {"weight_decay": "l2"}
# A ladder of two strengths has both ends at an edge: every selection from it is marked.
LADDER_MIN = 2
ARM = "per-split"  # the last part of an arm's name


@dataclass(frozen=True)
class Selection:
    table: pd.DataFrame  # the selected table: one row per group and family
    arms: pd.DataFrame  # the arms table: per selected config or arm, the member of each seed
    grid: Grid  # the grid with the arms added


def select(grid: Grid, analysis_params: AnalyzeParams) -> Selection:
    """Each family's validation-selected config (or arm) per optimizer group, the baseline included."""
    margin = analysis_params.margins.of(grid.dataset).test_acc.value
    rows, stand_ins, arms = [], [], {}
    for group in grid.groups():
        for family in results.FAMILIES:
            candidates = grid.family(group, family)
            if candidates.empty or family in IDENTICAL_TO:
                continue
            validation = {split: _validation(grid, candidates, split) for split in _splits(grid, candidates)}
            choices = {split: _best(candidates, scores) for split, scores in validation.items()}
            pooled = _validation(grid, candidates, None)
            members = pd.concat([_on_split(grid.ok[config], split) for split, config in choices.items()]).sort_index()
            name = str(members["config"].iloc[0]) if len(set(choices.values())) == 1 else f"{group}/{family}/{ARM}"
            if name not in grid.ok:
                arms[name] = members
            stand_ins.append(
                members.reset_index()[["seed", "split", "member", "config"]].assign(
                    dataset=grid.dataset, optimizer=group, family=family, selected=name
                )
            )
            ci = inference.t_interval(members["test_acc"].to_numpy(), level=1 - analysis_params.alpha)
            rows.append(
                {
                    "dataset": grid.dataset,
                    "optimizer": group,
                    "family": family,
                    "config": name,
                    "strength": 0.0 if family == "none" else float(members["strength"].median()),
                    "chosen": _tally(choices.values()),
                    "val_acc_mean": members["val_acc"].mean(),
                    "test_acc_mean": members["test_acc"].mean(),
                    "test_acc_ci_low": ci.low,
                    "test_acc_ci_high": ci.high,
                    "n_seeds": len(members),
                    "n_diverged": int(candidates.loc[list(set(choices.values())), "diverged"].sum()),
                    "edge": _edge_of_best(candidates, pooled, margin),
                    "splits_at_edge": sum(_edge_of_best(candidates, v, margin) != "no" for v in validation.values()),
                }
            )
    arms_table = pd.concat(stand_ins, ignore_index=True) if stand_ins else pd.DataFrame()
    return Selection(
        tables.frame("selected", rows),
        tables.frame("arms", arms_table.to_dict("records")),
        grid.with_arms(arms),
    )


def _splits(grid: Grid, candidates: pd.DataFrame) -> list[int]:
    return sorted({int(s) for config in candidates.index for s in grid.ok[config]["split"]})


def _on_split(members: pd.DataFrame, split: int | None) -> pd.DataFrame:
    return members if split is None else members[members["split"] == split]


def _validation(grid: Grid, candidates: pd.DataFrame, split: int | None) -> pd.DataFrame:
    """Mean val_acc and val_loss over the ok seeds on `split` (None: every split) of each candidate
    that has one there, and of the group's baseline (family none)."""
    baseline = grid.baseline(str(candidates["group"].iloc[0]))
    means = {c: _on_split(grid.ok[c], split)[["val_acc", "val_loss"]].mean() for c in {*candidates.index, baseline}}
    return pd.DataFrame(means).T.dropna().assign(baseline=lambda v: v.index == baseline)


def _best(candidates: pd.DataFrame, validation: pd.DataFrame) -> str:
    """The candidate with the highest mean val_acc, ties to the lower mean val_loss, the smaller
    strength, the config name."""
    scored = candidates[["strength", "config"]].join(validation, how="inner")
    ranked = scored.sort_values(["val_acc", "val_loss", "strength", "config"], ascending=[False, True, True, True])
    return str(ranked.index[0])


def _edge_of_best(candidates: pd.DataFrame, validation: pd.DataFrame, margin: float) -> str:
    """edge() of the best candidate on `validation` (_validation's means on a split or over every seed)."""
    best = _best(candidates, validation)
    baseline = validation.loc[validation["baseline"], "val_acc"]
    like_none = not baseline.empty and abs(validation.at[best, "val_acc"] - baseline.iloc[0]) <= margin
    return edge(candidates, best, like_none)


def _tally(choices: Iterable[str]) -> str:
    """The configs chosen, each with its count of splits, most chosen first: "l2=0.063 ×6, l2=0.25 ×4"."""
    counted = Counter(config.rsplit("/", 1)[-1] for config in choices)
    return ", ".join(f"{setting} ×{n}" for setting, n in counted.most_common())


def edge(candidates: pd.DataFrame, config: str, like_none: bool) -> str:
    """Where `config` sits at the end of a ladder of LADDER_MIN or more strengths: "weakest <column>"
    or "strongest <column>", per strength column it uses (elastic and activity have two ladders),
    among the candidates equal to it in every other strength column; "no" inside its ladders (and
    for the baseline, which has none). The weakest end is no edge where the config validates
    `like_none` (within the smallest effect of interest of the baseline): the ladder has reached "no
    visible effect" there, and below it lies the baseline, strength 0, which brackets the optimum."""
    chosen = candidates.loc[config]
    ends = []
    for column in results.STRENGTH_COLUMNS:
        if not chosen[column] > 0:
            continue
        others = [c for c in results.STRENGTH_COLUMNS if c != column]
        ladder = candidates.loc[(candidates[others] == chosen[others]).all(axis=1), column].drop_duplicates()
        if len(ladder) < LADDER_MIN:
            continue
        if chosen[column] == ladder.min() and not like_none:
            ends.append(f"weakest {column}")
        elif chosen[column] == ladder.max():
            ends.append(f"strongest {column}")
    return ", ".join(ends) or "no"


def config_of(table: pd.DataFrame, group: str, family: str) -> str | None:
    """The config (or arm) the selected table names for (group, family), if any."""
    found = table[(table["optimizer"] == group) & (table["family"] == family)]
    return None if found.empty else str(found["config"].iloc[0])

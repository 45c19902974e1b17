"""What a hypothesis is: its id, title and rule, the tests it plans and how it judges their results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from pipelines.analysis.grid import Grid
from pipelines.analysis.plan import Findings, Plan
from pipelines.analysis.verdicts import Judgement
from pipelines.core.params import AnalyzeParams, Margins


@dataclass(frozen=True)
class Context:
    """What every hypothesis plans and judges from: the grid, the params, the chosen configs and the
    sparsity-accuracy frontiers."""

    grid: Grid
    settings: AnalyzeParams
    selected: pd.DataFrame  # pipelines.analysis.selection.select
    frontier: pd.DataFrame  # pipelines.analysis.frontier.frontier
    # H5 only: the per-weight slopes (tables "mechanism") and the maps' best strengths ("lr_best")
    mechanism: pd.DataFrame = field(default_factory=pd.DataFrame)
    lr_best: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def margins(self) -> Margins:
        """The dataset's smallest effects of interest (analyze.margins)."""
        return self.settings.margins.of(self.grid.dataset)


@dataclass(frozen=True)
class Hypothesis:
    """One hypothesis, whole. Planning is pure: it only describes tests, which plan.run runs.

    A hypothesis about optimizer groups plans per group (plan_group, for each group that can be
    analysed) and is inconclusive for a lost group; one about the dataset as a whole plans once
    (plan_dataset). Per-group tests come first, group by group, so the tables read that way."""

    id: str
    title: str
    rule: Callable[[Context], str]  # the checks written out for the report, without the verdict rule
    judge: Callable[[Context, Findings], Judgement]
    plan_group: Callable[[Context, str], Plan] | None = None
    plan_dataset: Callable[[Context], Plan] | None = None


def page_rule(analysis_params: AnalyzeParams) -> str:
    return f"Page's trend test over seeds, p < {analysis_params.alpha:g}, the baseline as"


def tost_rule(analysis_params: AnalyzeParams, margin: float) -> str:
    return f"paired-t TOST, margin ±{margin:g}, p < {analysis_params.alpha:g}"

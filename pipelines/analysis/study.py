"""The analysis of one dataset, whole: select and match configs, plan every hypothesis' tests, run
them, judge; out come the dataset's rows of every table (pipelines/core/tables.py) and its entry
of reports/summary.json.

summary.json: {dataset: {members, diverged, seeds, baseline_test_acc, best_family, best_optimizer,
best_config, best_test_acc, [lost_groups,] linear: {...}, H1a: {verdict, ...details}, ..., H6: {...}}}.
linear: the linear references against the networks (pipelines/analysis/linear.py).
lost_groups (only when there is one) gives the reason each unanalysed optimizer group was lost
(pipelines/analysis/grid.py); the best_* keys are null when every group was. The best family
is the validation-selected config with the highest mean val_acc over all groups (selection stays
on validation); baseline_test_acc is the baseline of its group. Each hypothesis' module lists its
details (accuracies and their differences as fractions).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from pipelines.analysis import linear, maps
from pipelines.analysis import plan as tests
from pipelines.analysis.frontier import frontier
from pipelines.analysis.grid import Grid
from pipelines.analysis.hypotheses import HYPOTHESES, Context, Hypothesis
from pipelines.analysis.mechanism import Models, mechanism_rows
from pipelines.analysis.selection import select
from pipelines.analysis.verdicts import CONTRADICTED, NOT_SHOWN, RULE, undecided
from pipelines.core import tables
from pipelines.core.params import AnalyzeParams

Tables = dict[str, pd.DataFrame]


def analyze_dataset(
    grid: Grid, analysis_params: AnalyzeParams, mapped: pd.DataFrame | None = None, models: Models | None = None
) -> tuple[Tables, dict[str, object]]:
    """Every table of one dataset, and its entry of summary.json. `mapped`: the map cells
    (pipelines.analysis.maps.cells); `models`: the final weights and v̂; H5 reads them."""
    selection = select(grid, analysis_params)
    grid, selected = selection.grid, selection.table
    context = Context(
        grid,
        analysis_params,
        selected,
        frontier(grid, analysis_params.accuracy_costs),
        mechanism=tables.frame("mechanism", mechanism_rows(grid, selected, models) if models is not None else []),
        lr_best=maps.best_strengths(grid.dataset, mapped)
        if mapped is not None and len(mapped)
        else tables.frame("lr_best", []),
    )
    findings = tests.run(grid, plan(context), analysis_params)
    summary = _summary(grid, context.selected) | {"linear": linear.versus_networks(grid, selected, analysis_params)}
    verdicts: list[dict[str, str]] = []
    for hypothesis in HYPOTHESES:
        row, summary[hypothesis.id] = _verdict(hypothesis, context, findings)
        verdicts.append(row)
    exclusions = grid.trained().assign(dataset=grid.dataset)[tables.COLUMNS["exclusions"]].reset_index(drop=True)
    return (
        {
            **_test_tables(grid.dataset, findings),
            "selected": context.selected,
            "arms": selection.arms,
            "frontier": context.frontier,
            "exclusions": exclusions,
            "mechanism": context.mechanism,
            "lr_best": context.lr_best,
            "lr_slopes": tables.frame("lr_slopes", [])
            if context.lr_best.empty
            else maps.seed_slopes(context.lr_best).assign(dataset=grid.dataset)[tables.COLUMNS["lr_slopes"]],
            "verdicts": tables.frame("verdicts", verdicts),
            "margins": _margins(context),
        },
        {key: _plain(value) for key, value in summary.items()},
    )


def _verdict(
    hypothesis: Hypothesis, context: Context, findings: tests.Findings
) -> tuple[dict[str, str], dict[str, object]]:
    """The hypothesis' row of the verdicts table and its entry of summary.json. A lost group is an
    undecided check of every hypothesis about groups."""
    judgement = hypothesis.judge(context, findings)
    lost = list(context.grid.lost().values()) if hypothesis.plan_group is not None else []
    judgement = replace(judgement, checks=judgement.checks + [undecided(why) for why in lost])
    verdict, why_undecided = judgement.verdict()
    evidence = judgement.evidence + (f". Undecided: {why_undecided}" if why_undecided else "")
    if lost and verdict in (CONTRADICTED, NOT_SHOWN):  # decided without the lost group, which still needs saying
        evidence += ". Not analysed: " + "; ".join(lost)
    row = {
        "dataset": context.grid.dataset,
        "hypothesis": hypothesis.id,
        "title": hypothesis.title,
        "verdict": verdict,
        "rule": hypothesis.rule(context) + RULE,
        "evidence": evidence + ".",
        **vars(judgement.headline),
        "finding": judgement.finding or judgement.headline.sentence(100 * (1 - context.settings.alpha)),
    }
    return row, {"verdict": verdict, **judgement.details}


def plan(context: Context) -> tests.Plan:
    """Every hypothesis' tests, group by group, then those about the whole dataset."""
    planned = tests.Plan()
    for group in context.grid.groups():
        for hypothesis in HYPOTHESES:
            if hypothesis.plan_group is not None:
                planned.extend(hypothesis.plan_group(context, group))
    for hypothesis in HYPOTHESES:
        if hypothesis.plan_dataset is not None:
            planned.extend(hypothesis.plan_dataset(context))
    return planned


def stack(outputs: list[Tables]) -> Tables:
    """One table of every name from every dataset's; empty ones are left out, as they would turn
    every column into objects (and the floats would lose their formatting)."""
    return {
        name: pd.concat([t[name] for t in outputs if not t[name].empty] or [outputs[0][name]], ignore_index=True)
        for name in tables.COLUMNS
    }


def _test_tables(dataset: str, findings: tests.Findings) -> Tables:
    return {
        "comparisons": tables.frame(
            "comparisons",
            [
                {
                    "dataset": dataset,
                    **vars(c.spec),
                    "family_a": c.family_a,
                    "family_b": c.family_b,
                    "optimizer": c.group,
                    **vars(c.test),
                    "role": "judged" if c.spec.predicted else "descriptive",
                    "holm_p": c.holm_p,
                }
                for c in findings.comparisons
            ],
        ),
        "ranking": tables.frame(
            "ranking",
            [
                {
                    "dataset": dataset,
                    "optimizer": r.spec.group,
                    "family": family,
                    "config": config,
                    "mean_rank": rank,
                    "test_acc_mean": mean,
                    "friedman_statistic": r.test.statistic,
                    "friedman_p": r.test.p,
                    "n_seeds": r.n_seeds,
                    "note": r.test.note,
                }
                for r in findings.rankings
                for family, config, rank, mean in zip(r.families, r.spec.configs, r.test.mean_ranks, r.test_acc_means)
            ],
        ),
        "trends": tables.frame(
            "trends",
            [
                {
                    "dataset": dataset,
                    "hypothesis": t.spec.hypothesis,
                    "optimizer": t.group,
                    "family": t.spec.family,
                    "metric": t.spec.metric,
                    "direction": "decreasing",
                    "levels": t.levels_text,
                    "level_means": t.means_text,
                    "first_mean": t.means[0],
                    "last_mean": t.means[-1],
                    "page_L": t.test.statistic,
                    "page_p": t.test.p,
                    "min_attainable_p": t.test.min_attainable_p,
                    "n_seeds": t.n_seeds,
                    "monotone": t.monotone,
                    "note": t.test.note,
                }
                for t in findings.trends
            ],
        ),
        "equivalence": tables.frame(
            "equivalence",
            [
                {
                    "dataset": dataset,
                    "hypothesis": e.spec.hypothesis,
                    "optimizer": e.group,
                    "a": e.spec.a,
                    "b": e.spec.b,
                    "metric": e.spec.metric,
                    "margin": e.margin,
                    "n": e.n,
                    "mean_diff": e.mean_diff,
                    "tost_p": e.tost_p,
                    "equivalent": e.equivalent,
                    "note": e.note,
                }
                for e in findings.equivalences
            ],
        ),
    }


def _margins(context: Context) -> pd.DataFrame:
    """The dataset's margins with their reasons, beside the seed-to-seed spread of the first
    group's baseline on the same measure, which a reader weighs each margin against."""
    grid, rows = context.grid, []
    first = next(iter(grid.groups()), None)
    for measure, margin in context.margins:
        spread = grid.values(grid.baseline(first), measure).std() if first is not None else math.nan
        rows.append(
            {
                "dataset": grid.dataset,
                "measure": measure,
                "margin": margin.value,
                "reason": margin.reason,
                "baseline_sd": spread,
            }
        )
    return tables.frame("margins", rows)


def _summary(grid: Grid, selected: pd.DataFrame) -> dict[str, object]:
    """The dataset's headline: the family one would pick on validation, and its test accuracy."""
    seeds = set().union(*(frame.index for frame in grid.ok.values()))
    # The main grid's networks: not the baseline read twice, nor the linear references (metrics' linear)
    trained = grid.trained()
    trained = trained[~trained["family"].isin(linear.NOT_CROWNED)]
    summary: dict[str, object] = {
        "members": trained["members"].sum(),
        "diverged": trained["diverged"].sum(),
        "seeds": len(seeds),
    }
    if grid.lost():  # only then, so that a study without one keeps its summary.json
        summary["lost_groups"] = list(grid.lost().values())
    if selected.empty:  # every group lost: there is nothing to pick
        return summary | dict.fromkeys(
            ("baseline_test_acc", "best_family", "best_optimizer", "best_config", "best_test_acc")
        )
    # The early-stopping baseline is compared in the tests and the linear reference reported beside
    # the networks (pipelines/analysis/linear.py), neither crowned here.
    best = linear.best_network(selected)
    baseline = selected[(selected["optimizer"] == best["optimizer"]) & (selected["family"] == "none")].iloc[0]
    return summary | {
        "baseline_test_acc": baseline["test_acc_mean"],
        "best_family": best["family"],
        "best_optimizer": best["optimizer"],
        "best_config": best["config"],
        "best_test_acc": best["test_acc_mean"],
    }


def _plain(value: object) -> object:
    """JSON-ready: numpy scalars to Python, NaN to null (NaN is not JSON)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value

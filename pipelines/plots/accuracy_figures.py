"""The figures of accuracy: test accuracy and generalization gap versus strength, learning
curves, and the paired statistics (evidence for H3 and H4)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd

from pipelines.core.results import FAMILIES
from pipelines.plots import style as plotting
from pipelines.plots.evidence import Evidence, config_label
from pipelines.plots.lines import (
    seeds_phrase,
    versus_strength,
)
from pipelines.plots.style import FAMILY_COLORS, INTERVAL, Drawn, family_label


def accuracy(ev: Evidence) -> Drawn:
    """04: test accuracy versus strength, with the unregularized baseline as a band."""
    return versus_strength(
        ev,
        "test_acc",
        100.0,
        "test accuracy (%)",
        "04_test_accuracy",
        "Test accuracy versus strength",
        "Test accuracy (%)",
    )


def generalization_gap(ev: Evidence) -> Drawn:
    """05: train minus test accuracy versus dropout p and versus strength."""
    return versus_strength(
        ev,
        "gap_acc",
        100.0,
        "train − test accuracy (points)",
        "05_generalization_gap",
        "Generalization gap versus dropout p and strength",
        "The generalization gap, train minus test accuracy in percentage points,",
    )


def learning_curves(ev: Evidence) -> Drawn:
    """06: train and test loss per epoch of each family at its selected strength."""
    curves = ev.curves.merge(ev.selected[["member", "config_label", "family_label"]], on="member")
    long = curves.melt(
        id_vars=["member", "epoch", "config_label", "family_label"],
        value_vars=["train_loss", "test_loss"],
        var_name="variant",
        value_name="loss",
    )
    long["variant"] = long["variant"].str.removesuffix("_loss")
    styles = plotting.line_styles(["train", "test"], markers=False)
    configs = list(dict.fromkeys(ev.selected["config_label"]))
    figure, axes = plotting.panels(len(configs), columns=4, height=1.75, sharex=True)
    for ax, config in zip(axes, configs):
        plotting.family_lines(ax, long[long["config_label"] == config], x="epoch", y="loss", styles=styles)
        ax.set(title=config, xlabel="", ylabel="")
    for ax in axes:
        if ax.xaxis.get_tick_params()["labelbottom"]:
            ax.set_xlabel("epoch")
        spec = ax.get_subplotspec()
        if spec is not None and spec.is_first_col():
            ax.set_ylabel("loss (nats)")
    plotting.legend(figure, {"split": plotting.style_entries(styles)})
    return Drawn(
        "06_learning_curves",
        figure,
        "Learning curves at the selected strengths",
        (
            "Training loss (solid) and test loss (dashed), the cross-entropy in nats, per evaluated epoch, "
            "one panel per family at its selected strength (chosen on validation accuracy by the analyze "
            f"stage) and per baseline. Lines: mean over {seeds_phrase(ev.selected)}; shaded: {INTERVAL}. "
            f"{ev.diverged()}"
        ),
    )


def statistics(ev: Evidence) -> Drawn:
    """10: paired differences versus baseline (forest plot) beside the Friedman ranking, one row per config."""
    rows = _statistics_rows(ev.comparisons, ev.ranking)
    figure, (forest, ranks) = plt.subplots(
        1, 2, sharey=True, width_ratios=[2, 1], layout="constrained", figsize=(plotting.WIDTH, 0.9 + 0.2 * len(rows))
    )
    for y, row in rows.iterrows():
        colour = FAMILY_COLORS[family_label(row["family"])] if row["family"] else None
        if not math.isnan(row["mean_diff"]):
            diff = row["mean_diff"] * 100
            forest.errorbar(
                diff,
                y,
                xerr=[[diff - row["ci_low"] * 100], [row["ci_high"] * 100 - diff]],
                fmt="o",
                color=colour,
                markersize=4,
                capsize=2,
            )
        elif row["family"] == "none":
            forest.plot(0, y, marker="o", markersize=4, mfc="white", color=colour)  # the reference itself
        if not math.isnan(row["mean_rank"]):
            ranks.barh(y, row["mean_rank"], color=colour, height=0.7)
    forest.axvline(0, color="0.3", lw=0.8)
    forest.set_yticks(rows.index, rows["label"])
    for tick, heading in zip(forest.get_yticklabels(), rows["family"] == ""):
        tick.set_fontweight("bold" if heading else "normal")
    forest.set_ylim(len(rows) - 0.5, -0.5)
    forest.set_xlabel("test accuracy − baseline (points)")
    p_values = forest.twinx()  # the p-values as right-hand tick labels: the layout makes room for them
    p_values.set_ylim(forest.get_ylim())
    p_values.set_yticks(
        rows.index, [f"p = {p:.2g}" if not math.isnan(p) else "" for p in rows["bh_p"]], fontsize="x-small"
    )
    p_values.tick_params(length=0)
    p_values.grid(False)
    ranks.set_xlabel("mean rank\n(1 = best)")
    seeds = plotting.seeds_phrase(pd.concat([ev.comparisons["n"], ev.ranking["n_seeds"]]))
    methods = ", ".join(sorted(set(ev.comparisons["ci_method"].dropna()) - {""}))
    return Drawn(
        "10_statistics",
        figure,
        "The statistics at a glance",
        (
            "Left: paired difference in test accuracy (percentage points) between each family's selected "
            "configuration and its optimizer group's unregularized baseline (open circle), seed by seed; "
            f"points are the mean difference over {seeds} and bars its bootstrap confidence interval"
            f"{f' ({methods})' if methods else ''}, both "
            "from reports/tables/comparisons.csv (hypothesis H4); p: Benjamini–Hochberg adjusted p-value. "
            "Right: mean rank of each configuration's test accuracy across seeds within its optimizer group "
            "(1 = best), whose heading gives the Friedman test's p-value, from reports/tables/ranking.csv. "
            "Members that diverged are excluded by the analyze stage."
        ),
    )


def _statistics_rows(comparisons: pd.DataFrame, ranking: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of either table, grouped by optimizer group, each group headed by a
    row (family "") naming it and its Friedman p-value."""
    ranked = ranking[["config", "optimizer", "family", "mean_rank", "friedman_p"]]
    compared = comparisons.rename(columns={"a": "config", "family_a": "family"}).set_index("config")
    only_compared = compared.loc[~compared.index.isin(ranked["config"]), ["optimizer", "family"]].reset_index()
    rows = pd.concat([ranked, only_compared.assign(mean_rank=math.nan, friedman_p=math.nan)], ignore_index=True)
    rows = rows.join(compared[["mean_diff", "ci_low", "ci_high", "bh_p"]], on="config")
    rows["label"] = [
        config_label(c, o, f).replace("\n", " ") for c, o, f in zip(rows["config"], rows["optimizer"], rows["family"])
    ]
    rows = rows.assign(_order=rows["family"].map(FAMILIES.index)).sort_values(["optimizer", "_order"])
    parts = []
    for optimizer, group in rows.groupby("optimizer", sort=True):
        friedman = group["friedman_p"].dropna()
        heading = optimizer + (f" (Friedman p = {friedman.iloc[0]:.2g})" if not friedman.empty else "")
        parts += [
            pd.DataFrame(
                [{"label": heading, "family": "", "mean_diff": math.nan, "mean_rank": math.nan, "bh_p": math.nan}]
            ),
            group,
        ]
    return pd.concat(parts, ignore_index=True).drop(columns="_order")

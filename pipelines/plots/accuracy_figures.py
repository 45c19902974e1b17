"""The figures of accuracy: test accuracy and generalization gap versus strength, learning
curves, and the paired statistics (evidence for H3 and H4)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from pipelines.core.results import FAMILIES
from pipelines.plots import style as plotting
from pipelines.plots.evidence import Evidence, config_label
from pipelines.plots.lines import paired_versus_strength, seeds_phrase, versus_strength
from pipelines.plots.style import FAMILY_COLORS, Drawn, family_label

DIFFERENCE_AXIS = "test accuracy − baseline (points)"
# Figure 06: validation loss is what selection and early stopping watch; training loss is context.
LOSS_STYLES: dict[str, dict] = {
    "val_loss": {"lw": 1.4},
    "train_loss": {"lw": 0.9, "ls": (0, (3, 1.5)), "alpha": 0.55},
}
SEED_ROW = 0.22  # figure 10: a row's seeds spread over ± this much of the row height


def accuracy(ev: Evidence) -> Drawn:
    """04: test accuracy minus the same seed's baseline versus strength, seeds drawn."""
    return paired_versus_strength(
        ev,
        "test_acc",
        100.0,
        DIFFERENCE_AXIS,
        "04_test_accuracy",
        "Test accuracy against the baseline, seed by seed, versus strength",
        "The paired difference in test accuracy, in percentage points",
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
    """06: validation and training loss per epoch, every selected configuration of a group overlaid."""
    curves = ev.curves.merge(ev.selected[["member", "family_label", "group"]], on="member")
    # The mean over seeds, taken here: seaborn would average on the log axis (a geometric mean).
    means = curves.groupby(["group", "config", "family_label", "epoch"], as_index=False)[list(LOSS_STYLES)].mean()
    groups = sorted(set(means["group"]))
    figure, axes = plotting.panels(len(groups), height=3.0, sharex=True)
    for ax, group in zip(axes, groups):
        here = means[means["group"] == group]
        for column, style in LOSS_STYLES.items():
            sns.lineplot(
                here,
                x="epoch",
                y=column,
                hue="family_label",
                units="config",
                estimator=None,
                palette=FAMILY_COLORS,
                legend=False,
                ax=ax,
                **style,
            )
        # log: an overfitting baseline's loss grows tenfold, and would flatten every other line on a linear axis
        ax.set(title=group, xlabel="epoch", ylabel="", yscale="log")
    axes[0].set_ylabel("loss (nats, log scale)")
    plotting.legend(
        figure,
        {
            "family": plotting.family_entries(ev.selected["family"]),
            "split": {
                "validation": Line2D([], [], color="0.2", **LOSS_STYLES["val_loss"]),
                "training": Line2D([], [], color="0.2", **LOSS_STYLES["train_loss"]),
            },
        },
    )
    return Drawn(
        "06_learning_curves",
        figure,
        "Learning curves at the selected strengths",
        (
            "Validation loss (solid) and training loss (dashed, faint), the cross-entropy in nats, per evaluated "
            "epoch, of each family at its selected strength (chosen on validation accuracy by the analyze stage) "
            "and of the unregularized baseline, overlaid in one panel per optimizer group (AdamW with Adam). "
            f"Lines: mean over {seeds_phrase(ev.selected)}; no interval is drawn, so that the lines stay "
            "legible (figures 04 and 10 draw the seeds and the intervals of the test accuracy). What to see: a "
            "validation loss that rises while the training loss falls is overfitting; a regularizer that holds "
            f"the validation loss down narrows it. {ev.diverged()}"
        ),
    )


def statistics(ev: Evidence) -> Drawn:
    """10: paired differences versus baseline (seeds, mean, t-interval, Holm p) beside the Friedman
    ranks, one row per configuration."""
    rows = _statistics_rows(ev.comparisons, ev.ranking)
    figure, (forest, ranks) = plt.subplots(
        1, 2, sharey=True, width_ratios=[2, 1], layout="constrained", figsize=(plotting.WIDTH, 0.9 + 0.2 * len(rows))
    )
    for y, row in rows.iterrows():
        colour = FAMILY_COLORS[family_label(row["family"])] if row["family"] else None
        if isinstance(row["b"], str):
            seeds = seed_differences(ev.test_acc, row["config"], row["b"])
            mean, (low, high) = seeds.mean(), plotting.mean_ci(seeds.tolist())
            spread = np.linspace(-SEED_ROW, SEED_ROW, len(seeds)) if len(seeds) > 1 else np.zeros(len(seeds))
            forest.scatter(seeds, y + spread, s=6, color=colour, alpha=0.4, lw=0, zorder=1)
            forest.errorbar(
                mean, y, xerr=[[mean - low], [high - mean]], fmt="o", color=colour, markersize=4, capsize=2, zorder=3
            )
        elif row["family"] == "none":
            forest.plot(0, y, marker="o", markersize=4, mfc="white", color=colour)  # the reference itself
        if not math.isnan(row["mean_rank"]):
            ranks.plot(row["mean_rank"], y, marker="o", markersize=5, color=colour)
    forest.axvline(0, color="0.3", lw=0.8)
    forest.set_yticks(rows.index, rows["label"])
    for tick, heading in zip(forest.get_yticklabels(), rows["family"] == ""):
        tick.set_fontweight("bold" if heading else "normal")
    forest.set_ylim(len(rows) - 0.5, -0.5)
    forest.set_xlabel(DIFFERENCE_AXIS)
    p_values = forest.twinx()  # the p-values as right-hand tick labels: the layout makes room for them
    p_values.set_ylim(forest.get_ylim())
    p_values.set_yticks(
        rows.index, [f"Holm p = {p:.2g}" if not math.isnan(p) else "" for p in rows["holm_p"]], fontsize="x-small"
    )
    p_values.tick_params(length=0)
    p_values.grid(False)
    ranks.set_xlim(0.5, rows["mean_rank"].max() + 0.5)
    ranks.xaxis.set_major_locator(MaxNLocator(integer=True))  # ranks count from 1
    ranks.set_xlabel("mean rank\n(1 = best)")
    seeds = plotting.seeds_phrase(pd.concat([ev.comparisons["n"], ev.ranking["n_seeds"]]))
    return Drawn(
        "10_statistics",
        figure,
        "The statistics at a glance",
        (
            "Left: paired difference in test accuracy (percentage points) between each configuration and its "
            "optimizer group's unregularized baseline (open circle) trained with the same seed, for each "
            "family at its selected strength and the early-stopping baseline (hypothesis H4). Small dots: one "
            f"seed each; large dot: the mean difference over {seeds}; bars: its 95% paired Student-t "
            "confidence interval (of the mean of the per-seed differences), computed here from the seeds. "
            "Right of each row: the p-value H4's verdict uses, the Wilcoxon signed-rank test's p Holm-adjusted "
            "within the hypothesis's family of its optimizer group (column holm_p of "
            "reports/tables/comparisons.csv). Right panel: mean rank of each configuration's test accuracy "
            "across seeds within its optimizer group (1 = best; dots, so that no bar reads longer as more), "
            "whose heading gives the Friedman test's p-value, from reports/tables/ranking.csv. "
            "Members that diverged are excluded, as the analyze stage excludes them."
        ),
    )


def seed_differences(test_acc: pd.DataFrame, a: str, b: str) -> pd.Series:
    """Config a's test accuracy minus config b's, in percentage points, on every seed where both finished."""
    return ((test_acc[a] - test_acc[b]) * 100).dropna()


def _statistics_rows(comparisons: pd.DataFrame, ranking: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of either table, grouped by optimizer group, each group headed by a
    row (family "") naming it and its Friedman p-value."""
    ranked = ranking[["config", "optimizer", "family", "mean_rank", "friedman_p"]]
    compared = comparisons.rename(columns={"a": "config", "family_a": "family"}).set_index("config")
    only_compared = compared.loc[~compared.index.isin(ranked["config"]), ["optimizer", "family"]].reset_index()
    rows = pd.concat([ranked, only_compared.assign(mean_rank=math.nan, friedman_p=math.nan)], ignore_index=True)
    rows = rows.join(compared[["b", "holm_p"]], on="config")
    rows["label"] = [
        config_label(c, o, f).replace("\n", " ") for c, o, f in zip(rows["config"], rows["optimizer"], rows["family"])
    ]
    rows = rows.assign(_order=rows["family"].map(FAMILIES.index)).sort_values(["optimizer", "_order"])
    parts = []
    for optimizer, group in rows.groupby("optimizer", sort=True):
        friedman = group["friedman_p"].dropna()
        heading = optimizer + (f" (Friedman p = {friedman.iloc[0]:.2g})" if not friedman.empty else "")
        parts += [
            pd.DataFrame([{"label": heading, "family": "", "b": None, "mean_rank": math.nan, "holm_p": math.nan}]),
            group,
        ]
    return pd.concat(parts, ignore_index=True).drop(columns="_order")

"""00: the study at a glance, drawn above every other figure: each hypothesis' headline effect on
each dataset (the verdicts table's measure, effect, interval and seeds), coloured by its outcome."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from pipelines.analysis.verdicts import CONTRADICTED, INCONCLUSIVE, NOT_SHOWN, OUTCOMES, SUPPORTED
from pipelines.data.datasets import DISPLAY_NAMES
from pipelines.plots.style import WIDTH, Drawn

NAME = "00_at_a_glance"
_PALETTE = sns.color_palette("colorblind", 10)
OUTCOME_COLORS = {SUPPORTED: _PALETTE[2], CONTRADICTED: _PALETTE[3], NOT_SHOWN: _PALETTE[1], INCONCLUSIVE: _PALETTE[7]}


def at_a_glance(verdicts: pd.DataFrame) -> Drawn:
    """One panel per hypothesis (rows) and dataset (columns): the headline effect with its interval
    on the measure's own scale, zero marked, the point coloured by the outcome."""
    hypotheses = list(dict.fromkeys(verdicts["hypothesis"]))
    datasets = list(dict.fromkeys(verdicts["dataset"]))
    figure, axes = plt.subplots(
        len(hypotheses),
        len(datasets),
        figsize=(WIDTH, 0.85 * len(hypotheses) + 0.9),
        squeeze=False,
        layout="constrained",
    )
    rows = verdicts.set_index(["hypothesis", "dataset"])
    for i, hypothesis in enumerate(hypotheses):
        for j, dataset in enumerate(datasets):
            ax = axes[i][j]
            _panel(ax, rows.loc[(hypothesis, dataset)] if (hypothesis, dataset) in rows.index else None)
            if j == 0:
                ax.set_ylabel(hypothesis, rotation=0, ha="right", va="center", fontweight="bold")
            if i == 0:
                ax.annotate(
                    DISPLAY_NAMES.get(dataset, dataset),
                    (0.5, 1.55),
                    xycoords="axes fraction",
                    ha="center",
                    fontweight="bold",
                )
    handles = [Patch(color=OUTCOME_COLORS[o], label=o) for o in OUTCOMES]
    figure.legend(handles=handles, loc="outside lower center", ncols=len(OUTCOMES), title="outcome")
    return Drawn(
        NAME,
        figure,
        "The study at a glance",
        "Each hypothesis (rows) on each dataset (columns): the headline effect the report cites, the mean over "
        "seeds of the paired difference named above its panel (in that measure's units, so each panel has its "
        "own scale), with its 95% Student-t interval across seeds; the grey line is zero, no effect. The "
        "colour is the hypothesis' outcome, decided by its rule (each section states it), not by this "
        "interval alone. An empty panel has no headline effect (the hypothesis could not be measured). "
        "From reports/tables/verdicts.csv.",
    )


def _panel(ax: Axes, row: pd.Series | None) -> None:
    ax.set_yticks([])
    ax.axvline(0, color="0.55", lw=0.8)
    if row is None or not row["n"] or math.isnan(row["effect"]):
        ax.set_xticks([])
        ax.set_title(
            "no headline effect" if row is None else f"{row['verdict']}: no headline effect", fontsize="x-small"
        )
        return
    effect, low, high = float(row["effect"]), float(row["ci_low"]), float(row["ci_high"])
    colour = OUTCOME_COLORS[row["verdict"]]
    if math.isnan(low):
        ax.plot(effect, 0, "o", color=colour)
    else:
        ax.errorbar(effect, 0, xerr=[[effect - low], [high - effect]], fmt="o", color=colour, capsize=3, lw=1.6)
    reach = max(abs(v) for v in (effect, low, high) if not math.isnan(v)) or 1.0
    ax.set_xlim(-1.15 * reach, 1.15 * reach)  # zero in the middle: the sign reads at a glance
    ax.tick_params(axis="x", labelsize="x-small")
    ax.set_title(f"{row['measure']} (n = {int(row['n'])})", fontsize="xx-small", wrap=True)

"""Drawing steps the figures share: which members are drawn as lines, the lines of a measure
versus strength, and the caption phrases about them."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from pipelines.plots import style as plotting
from pipelines.plots.evidence import Evidence
from pipelines.plots.style import INTERVAL, Drawn

NO_LINES = ("none", "elastic")  # the baseline is a band; elastic net has its own heatmaps (figure 07)
STRENGTH_AXIS = "strength λ"  # log scaled: the 10ⁿ tick labels show it, the captions say it


def lines_of(ok: pd.DataFrame) -> pd.DataFrame:
    """Rows drawn as lines over a strength: every family but the baseline and elastic net, strength > 0."""
    return ok[~ok["family"].isin(NO_LINES) & (ok["strength"] > 0)]


def line_families(runs: pd.DataFrame) -> set[str]:
    """The families that lines_of draws, from every member: a family none of whose members finished is
    drawn by no line, and its members still count as diverged in the caption."""
    return set(runs.loc[~runs["family"].isin(NO_LINES), "family"])


def seeds_phrase(frame: pd.DataFrame) -> str:
    return plotting.seeds_phrase(frame.groupby("config")["seed"].nunique())


def versus_strength(ev: Evidence, column: str, scale: float, ylabel: str, name: str, title: str, what: str) -> Drawn:
    """Figures 03–05: a panel per optimizer group over λ (log), one per group over dropout p, each with
    the group's baseline as a band."""
    lines = lines_of(ev.ok)
    dropout = lines["family"] == "dropout"
    lines = lines.assign(
        value=lines[column] * scale, panel=np.where(dropout, "dropout · " + lines["group"], lines["group"])
    )
    panel_names = sorted(set(lines.loc[~dropout, "panel"])) + sorted(set(lines.loc[dropout, "panel"]))
    styles = plotting.line_styles(sorted(set(lines["variant"])))
    baselines = ev.ok[ev.ok["family"] == "none"]
    figure, axes = plotting.panels(len(panel_names), height=2.6)
    for ax, panel in zip(axes, panel_names):
        plotting.family_lines(ax, lines[lines["panel"] == panel], x="strength", y="value", styles=styles)
        group = panel.removeprefix("dropout · ")
        plotting.baseline_band(ax, baselines.loc[baselines["group"] == group, column] * scale)
        if panel.startswith("dropout"):
            ax.set(xlabel="dropout probability p")
        else:
            ax.set(xscale="log", xlabel=STRENGTH_AXIS)
        ax.set(title=panel, ylabel="")
    axes[0].set_ylabel(ylabel)
    plotting.legend(
        figure,
        {
            "family": plotting.family_entries(lines["family"]),
            "optimizer": plotting.style_entries(styles),
            "baseline": plotting.BAND_ENTRY,
        },
    )
    return Drawn(
        name,
        figure,
        title,
        (
            f"{what} versus the strength of each family: one panel per optimizer group over λ (log scale; "
            "AdamW with Adam, line style: optimizer) and one over the dropout probability p (mean over "
            f"layers). Lines: mean over {seeds_phrase(lines)}; shaded: {INTERVAL}. Grey band: the group's "
            f"unregularized baseline, its mean (dotted) and 95% CI over {seeds_phrase(baselines)}. Elastic net "
            f"varies two strengths and is shown in figure 07.{overlapping(lines, ['value'], 'panel')}{ev.identical} "
            f"{ev.diverged(line_families(ev.runs) | {'none'})}"
        ),
    )


def overlapping(lines: pd.DataFrame, values: list[str], panel: str) -> str:
    """A caption sentence naming the lines of a panel that lie on top of each other (the same strengths,
    means within 0.2% of the panel's range apart), e.g. L2 and weight decay under SGD, one update."""
    pairs = set()
    for _, drawn in lines.groupby(panel):
        means = drawn.groupby(["family_label", "variant", "strength"])[values].mean()
        tolerance = 0.002 * float(np.nanmax(means.to_numpy()) - np.nanmin(means.to_numpy()))
        curves = {key: curve.droplevel([0, 1]) for key, curve in means.groupby(level=[0, 1])}
        for (a, curve_a), (b, curve_b) in itertools.combinations(curves.items(), 2):
            if curve_a.index.equals(curve_b.index) and np.allclose(curve_a, curve_b, rtol=0, atol=tolerance):
                pairs.add(f"{a[0]} ({a[1]}) and {b[0]} ({b[1]})")
    return f" Lines on top of each other: {'; '.join(sorted(pairs))}." if pairs else ""

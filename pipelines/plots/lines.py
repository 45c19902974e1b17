"""Drawing steps the figures share: which members are drawn as lines, the lines of a measure
versus strength, and the caption phrases about them."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from pipelines.plots import style as plotting
from pipelines.plots.evidence import Evidence
from pipelines.plots.style import BASELINE_COLOR, FAMILY_COLORS, INTERVAL, Drawn

NO_LINES = ("none", "elastic")  # the baseline is a band; elastic net has its own heatmaps (figure 07)
STRENGTH_AXIS = "strength λ"  # log scaled: the 10ⁿ tick labels show it, the captions say it
SEED_STRIP = 0.08  # width of the strip a point's seeds are spread over: decades on a log x, else x units


def lines_of(ok: pd.DataFrame) -> pd.DataFrame:
    """Rows drawn as lines over a strength: every family but the baseline and elastic net, strength > 0."""
    return ok[~ok["family"].isin(NO_LINES) & (ok["strength"] > 0)]


def line_families(runs: pd.DataFrame) -> set[str]:
    """The families that lines_of draws, from every member: a family none of whose members finished is
    drawn by no line, and its members still count as diverged in the caption."""
    return set(runs.loc[~runs["family"].isin(NO_LINES), "family"])


def seeds_phrase(frame: pd.DataFrame) -> str:
    return plotting.seeds_phrase(frame.groupby("config")["seed"].nunique())


def _strength_panels(lines: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The lines with their panel: one per optimizer group over λ, then one per group over dropout p."""
    dropout = lines["family"] == "dropout"
    lines = lines.assign(panel=np.where(dropout, "dropout · " + lines["group"], lines["group"]))
    return lines, sorted(set(lines.loc[~dropout, "panel"])) + sorted(set(lines.loc[dropout, "panel"]))


def _strength_axis(ax: Axes, panel: str) -> None:
    if panel.startswith("dropout"):
        ax.set(xlabel="dropout probability p")
    else:
        ax.set(xscale="log", xlabel=STRENGTH_AXIS)
    ax.set(title=panel, ylabel="")


def versus_strength(ev: Evidence, column: str, scale: float, ylabel: str, name: str, title: str, what: str) -> Drawn:
    """Figures 03 and 05: a panel per optimizer group over λ (log), one per group over dropout p, each with
    the group's baseline as a band. The measure itself, not a comparison: figure 04 draws the paired one."""
    lines, panel_names = _strength_panels(lines_of(ev.ok).assign(value=lambda frame: frame[column] * scale))
    styles = plotting.line_styles(sorted(set(lines["variant"])))
    baselines = ev.ok[ev.ok["family"] == "none"]
    figure, axes = plotting.panels(len(panel_names), height=2.6)
    for ax, panel in zip(axes, panel_names):
        plotting.family_lines(ax, lines[lines["panel"] == panel], x="strength", y="value", styles=styles)
        group = panel.removeprefix("dropout · ")
        plotting.baseline_band(ax, baselines.loc[baselines["group"] == group, column] * scale)
        _strength_axis(ax, panel)
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
            f"unregularized baseline, its mean (dotted) and 95% CI over {seeds_phrase(baselines)}. These "
            "intervals are of each configuration's own mean, not of a difference: whether two overlap is no "
            "test (the tests are paired by seed, reports/tables/comparisons.csv). Elastic net "
            f"varies two strengths and is shown in figure 07.{overlapping(lines, ['value'], 'panel')}{ev.identical} "
            f"{ev.diverged(line_families(ev.runs) | {'none'})}"
        ),
    )


def paired_differences(ok: pd.DataFrame, column: str, scale: float) -> pd.DataFrame:
    """The lines' members with `value`: their `column` minus that of their optimizer group's baseline
    trained with the same seed, times `scale`. A seed whose baseline did not finish has no pair."""
    baseline = ok.loc[ok["family"] == "none", ["group", "seed", column]].rename(columns={column: "baseline"})
    paired = lines_of(ok).merge(baseline, on=["group", "seed"], how="inner")
    return paired.assign(value=(paired[column] - paired["baseline"]) * scale)


def seed_dots(ax: Axes, lines: pd.DataFrame, *, log_x: bool) -> None:
    """Every seed's value as a small translucent dot in its family's colour, the seeds of a point spread
    evenly across a narrow strip of x (the same place for the same seed at every point)."""
    seeds = sorted(set(lines["seed"]))
    offset = lines["seed"].map({s: i / max(len(seeds) - 1, 1) - 0.5 for i, s in enumerate(seeds)})
    x = lines["strength"] * 10 ** (SEED_STRIP * offset) if log_x else lines["strength"] + SEED_STRIP * offset
    colours = lines["family_label"].map(FAMILY_COLORS).tolist()
    ax.scatter(x, lines["value"], s=5, c=colours, alpha=0.35, lw=0, zorder=1)


def paired_versus_strength(
    ev: Evidence, column: str, scale: float, ylabel: str, name: str, title: str, what: str
) -> Drawn:
    """Figure 04: each member's difference from its group's baseline at the same seed, versus strength:
    the seeds as dots, their mean as a line with the paired t-interval as bars, the baseline at 0."""
    lines, panel_names = _strength_panels(paired_differences(ev.ok, column, scale))
    styles = plotting.line_styles(sorted(set(lines["variant"])))
    figure, axes = plotting.panels(len(panel_names), height=2.8)
    for ax, panel in zip(axes, panel_names):
        drawn = lines[lines["panel"] == panel]
        seed_dots(ax, drawn, log_x=not panel.startswith("dropout"))
        plotting.family_lines(ax, drawn, x="strength", y="value", styles=styles, err_style="bars")
        ax.axhline(0, color=BASELINE_COLOR, lw=1.4, zorder=0)
        _strength_axis(ax, panel)
    axes[0].set_ylabel(ylabel)
    plotting.legend(
        figure,
        {
            "family": plotting.family_entries(lines["family"]),
            "optimizer": plotting.style_entries(styles),
            "drawn": {
                "one seed": Line2D([], [], ls="none", marker="o", markersize=3, color="0.4", alpha=0.5),
                "baseline (0)": Line2D([], [], color=BASELINE_COLOR, lw=1.4),
            },
        },
    )
    return Drawn(
        name,
        figure,
        title,
        (
            f"{what}: each member's value minus that of its optimizer group's unregularized baseline trained "
            "with the same seed (the same initial weights and mini-batches), versus the strength of each family: "
            "one panel per optimizer group over λ (log scale; AdamW with Adam, line style: optimizer) and one "
            "over the dropout probability p (mean over layers). Dots: one seed each, spread a little along x "
            f"so that they do not hide each other. Lines: the mean difference over {seeds_phrase(lines)}; "
            f"bars: its 95% paired Student-t confidence interval (of the mean of the per-seed differences). "
            "Grey line at 0: the baseline. A bar clear of 0 is a paired t-test at the 5% level, uncorrected; "
            "H4's verdict uses the tests of reports/tables/comparisons.csv (figure 10). A seed whose member or "
            "baseline diverged has no pair and is left out. Elastic net varies two strengths and is shown in "
            f"figure 07.{overlapping(lines, ['value'], 'panel')}{ev.identical} "
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

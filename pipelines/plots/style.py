"""The look every regbench figure shares: one seaborn theme, a fixed colour per regularizer family,
the interval drawn across seeds, panel grids and legends, caption phrases, and reproducible files."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")  # figures are files: never look for a display (CI, dvc repro, servers)

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pipelines.analysis import inference
from pipelines.core import files
from pipelines.core.results import FAMILIES

FAMILY_LABELS = {
    "none": "none (baseline)",
    "early_stopping": "early stopping",
    "l1": "L1",
    "prox_l1": "proximal L1",
    "l2": "L2",
    "l2_norm": "L2 norm",
    "elastic": "elastic net",
    "weight_decay": "weight decay",
    "adamw": "AdamW",
    "sgdw": "SGDW",
    "dropout": "dropout",
    "activity": "activity",
}
# Indices into seaborn's 10-colour "colorblind" palette. Related penalties get related hues (L1: blues,
# L2-type: warm), the baseline gets the grey, and the hard-to-see yellow goes to the least central family.
_PALETTE_INDEX = {
    "l1": 0,
    "prox_l1": 9,
    "l2": 1,
    "l2_norm": 5,
    "weight_decay": 3,
    "adamw": 6,
    "elastic": 4,
    "dropout": 2,
    "activity": 8,
    "none": 7,
}
_COLORBLIND = sns.color_palette("colorblind", 10)
# Ten colours for twelve families: SGDW takes the dark shade of AdamW's hue (both are decoupled
# decay), early stopping the dark shade of the baseline's grey (it is the baseline, stopped early).
_DARK = sns.color_palette("dark", 10)
_COLOURS = {f: _COLORBLIND[i] for f, i in _PALETTE_INDEX.items()} | {"sgdw": _DARK[6], "early_stopping": _DARK[7]}
FAMILY_COLORS = {FAMILY_LABELS[f]: _COLOURS[f] for f in FAMILIES}
BASELINE_COLOR = FAMILY_COLORS[FAMILY_LABELS["none"]]
BAND_ENTRY = {"mean (dotted) and 95% CI": Patch(facecolor=BASELINE_COLOR, alpha=0.35, edgecolor=BASELINE_COLOR)}

INTERVAL = "95% Student-t confidence interval of the mean across seeds"
WIDTH = 7.4  # inches: a full text width, so every figure is drawn at the size it is printed
# Line styles for the second grouping of a line plot (the optimizer): solid first, then sparser dashes.
_DASHES: list[str | tuple[float, ...]] = ["", (4, 1.5), (1, 1), (5, 1, 1, 1), (2, 2), (6, 2, 2, 2)]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "p", "h"]

_LEGEND_SPACING = 0.4  # between legend rows, in font sizes

Styles = dict[str, tuple[str | tuple[float, ...], str]]  # level -> (dashes, marker)


@dataclass
class Drawn:
    """A finished figure and what the report says about it."""

    name: str  # "<nn>_<name>": the file stem and the captions.json key
    figure: Figure
    title: str
    caption: str


def use_theme() -> None:
    """The one theme of every figure: seaborn's paper context on a light grid, the colorblind palette."""
    sns.set_theme(
        context="paper",
        style="whitegrid",
        palette="colorblind",
        rc={"axes.titlesize": "medium", "legend.frameon": False},
    )


def family_label(family: str) -> str:
    return FAMILY_LABELS[family]


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """The one interval the figures draw: the analysis' 95% Student-t interval of the mean (NaN below
    2 values). Of paired differences (figures 04 and 10) it is the paired t-interval of the tables."""
    interval = inference.t_interval(values, level=0.95)
    return interval.low, interval.high


def ci_half_width(values: Sequence[float]) -> float:
    """Half the width of mean_ci: the '±' written beside a mean."""
    low, high = mean_ci(values)
    return (high - low) / 2


def panels(
    count: int, *, columns: int | None = None, height: float = 2.2, sharex: bool = False, sharey: bool = True
) -> tuple[Figure, list[Axes]]:
    """A full-width figure of `count` panels, `columns` to a row, laid out by matplotlib's constrained
    layout (which also makes room for a legend placed 'outside')."""
    columns = columns or count
    rows = math.ceil(count / columns)
    figure, grid = plt.subplots(
        rows, columns, figsize=(WIDTH, height * rows), sharex=sharex, sharey=sharey, squeeze=False, layout="constrained"
    )
    for slot in range(count, rows * columns):
        row, column = divmod(slot, columns)
        grid[row, column].remove()
        if sharex:  # the panel above an empty slot is the bottom of its column: it shows the x ticks
            grid[row - 1, column].tick_params(labelbottom=True)
    return figure, list(grid.flat)[:count]


def line_styles(levels: Iterable[str], markers: bool = True) -> Styles:
    """Dashes and markers for the levels of a style grouping, in a fixed order; the lists cycle with
    lengths 6 and 10, so (dashes, marker) pairs repeat only after 30 levels."""
    levels = list(levels)
    dashes = itertools.islice(itertools.cycle(_DASHES), len(levels))
    marks = itertools.islice(itertools.cycle(_MARKERS), len(levels))
    return {level: (dash, mark if markers else "") for level, dash, mark in zip(levels, dashes, marks)}


def family_lines(
    ax: Axes, data: pd.DataFrame, *, x: str, y: str, styles: Styles, err_style: Literal["band", "bars"] = "band"
) -> None:
    """Mean of y over seeds per family (its fixed colour) and style level, with the interval as a band
    or as error bars (where the seeds are drawn as dots, which a band would hide)."""
    present = [level for level in styles if level in set(data["variant"])]
    markers = {level: styles[level][1] for level in present}
    sns.lineplot(
        data,
        x=x,
        y=y,
        hue="family_label",
        palette=FAMILY_COLORS,
        style="variant",
        style_order=present,
        dashes={level: styles[level][0] for level in present},
        markers=markers if all(markers.values()) else False,
        markersize=4,
        errorbar=mean_ci,
        err_style=err_style,
        err_kws={"capsize": 2, "elinewidth": 0.9} if err_style == "bars" else None,
        legend=False,
        ax=ax,
    )


def legend(figure: Figure, sections: Mapping[str, Mapping[str, Artist]]) -> None:
    """One legend for the whole figure, right of the panels, a heading per section; the figure grows
    taller if the legend would not fit beside the panels."""
    handles: list[Artist] = []
    labels: list[str] = []
    for heading, entries in sections.items():
        if not entries:
            continue
        if handles:
            handles.append(Line2D([], [], linestyle="none"))
            labels.append("")
        handles.append(Line2D([], [], linestyle="none"))
        labels.append(heading)
        handles += entries.values()
        labels += entries.keys()
    size = FontProperties(size="small").get_size_in_points() / 72
    figure.set_figheight(max(figure.get_figheight(), (len(handles) + 1) * size * (1 + _LEGEND_SPACING)))
    figure.legend(
        handles, labels, loc="outside right upper", handlelength=2.6, fontsize="small", labelspacing=_LEGEND_SPACING
    )


def family_entries(families: Iterable[str]) -> dict[str, Artist]:
    """Legend handles: a line in each family's colour (families by their contract names)."""
    return {
        family_label(f): Line2D([], [], color=FAMILY_COLORS[family_label(f)], lw=1.5)
        for f in FAMILIES
        if f in set(families)
    }


def style_entries(styles: Styles) -> dict[str, Artist]:
    """Legend handles: a dark line in each style level's dashes and marker."""
    return {
        level: Line2D([], [], color="0.2", lw=1.2, dashes=dashes or (None, None), marker=marker or None, markersize=4)
        for level, (dashes, marker) in styles.items()
    }


def baseline_band(ax: Axes, values: Sequence[float]) -> None:
    """Draw the baseline's mean (dotted) and its 95% CI across seeds (band) across the whole axes."""
    array = np.asarray(values, dtype=float)
    if len(array) == 0:
        return
    low, high = mean_ci(array.tolist())
    if not math.isnan(low):
        ax.axhspan(low, high, color=BASELINE_COLOR, alpha=0.35, lw=0, zorder=0)
    ax.axhline(array.mean(), color=BASELINE_COLOR, ls=":", lw=1.2, zorder=0)


def heatmap_cells(ax: Axes, mean: pd.DataFrame, half: pd.DataFrame, cmap: str, scale: Normalize | None = None) -> None:
    """A heatmap of means, each cell annotated 'mean ± half-width', to three significant digits; with
    `scale`, coloured on that shared scale and without a colourbar of its own (shared_colorbar)."""
    largest = float(np.nanmax(np.abs(mean.to_numpy()))) or 1.0
    decimals = max(0, 2 - math.floor(math.log10(largest)))
    text = mean.map(lambda v: f"{v:.{decimals}f}") + "\n±" + half.map(lambda v: f"{v:.{decimals}f}")
    sns.heatmap(
        mean,
        annot=text,
        fmt="",
        cmap=cmap,
        norm=scale,
        cbar=scale is None,
        ax=ax,
        linewidths=0.5,
        annot_kws={"fontsize": 6},
        xticklabels=[f"{v:g}" if isinstance(v, float) else v for v in mean.columns],
        yticklabels=[f"{v:g}" if isinstance(v, float) else v for v in mean.index],
    )


def shared_colorbar(figure: Figure, axes: Sequence[Axes], cmap: str, scale: Normalize, label: str) -> None:
    """One colourbar for heatmaps drawn on one shared scale (heatmap_cells with `scale`), beside them."""
    colorbar = figure.colorbar(ScalarMappable(scale, sns.color_palette(cmap, as_cmap=True)), ax=list(axes), shrink=0.6)
    colorbar.set_label(label)


def seeds_phrase(counts: pd.Series) -> str:
    """'10 seeds' when every drawn point has the same number of seeds, else '8–10 seeds per point'."""
    low, high = int(counts.min()), int(counts.max())
    if low == high:
        return f"{low} seed" + ("s" if low != 1 else "")
    return f"{low}–{high} seeds per point"


def diverged_phrase(drawn: pd.DataFrame, grid: pd.DataFrame) -> str:
    """A caption sentence saying that diverged members are excluded: counted per configuration among the
    `drawn` configurations, and how many more of the whole `grid` diverged, so that a caption never
    says "none diverged" of a grid where some did."""
    diverged = drawn.loc[drawn["status"] == "diverged", "config"]
    elsewhere = int((grid["status"] == "diverged").sum()) - len(diverged)
    more = f"{elsewhere} member{'s' if elsewhere != 1 else ''} of configurations not drawn here diverged"
    if diverged.empty:
        return (
            f"Diverged members are excluded (none of those drawn diverged; {more})."
            if elsewhere
            else "Diverged members are excluded (none diverged)."
        )
    counts = diverged.value_counts().sort_index()
    listed = "; ".join(f"{config}: {n}" for config, n in counts.items())
    return f"Diverged members are excluded from every statistic: {len(diverged)} in all ({listed})" + (
        f"; {more} too." if elsewhere else "."
    )


def save(drawn: Drawn, directory: Path, dpi: int) -> None:
    """Write <name>.png at `dpi` and a vector <name>.pdf, both free of timestamps and version stamps."""
    directory.mkdir(parents=True, exist_ok=True)
    drawn.figure.savefig(directory / f"{drawn.name}.png", dpi=dpi, metadata={"Software": None})
    # The layout is now computed (in figure fractions, whatever the dpi): freeze it for the PDF
    # rather than lay out every text box again.
    drawn.figure.set_layout_engine("none")
    drawn.figure.savefig(
        directory / f"{drawn.name}.pdf", metadata={"CreationDate": None, "Creator": None, "Producer": None}
    )
    plt.close(drawn.figure)


def write_captions(drawn: Iterable[Drawn], directory: Path, hypotheses: dict[str, tuple[str, ...]]) -> None:
    """captions.json: {"<nn>_<name>": {"title", "caption", "hypotheses"}} for the report stage,
    which draws a figure in the section of its first hypothesis and points to it from the others."""
    files.write_json(
        directory / "captions.json",
        {
            d.name: {"title": d.title, "caption": d.caption, "hypotheses": list(hypotheses.get(d.name, ()))}
            for d in drawn
        },
    )

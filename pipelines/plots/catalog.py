"""The figures, one function per figure, and the FIGURES registry the stage draws in order.

What is drawn: the main grid (members trained with the baseline's bias setting; the bias ablation
is left to the tables), members that finished ("ok"), lines at the mean across seeds with a 95%
Student-t interval. Elastic net varies two strengths, so it has its own heatmaps instead of lines.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from pipelines.core.results import FAMILIES, sparsity_columns, threshold_of
from pipelines.plots import style as plotting
from pipelines.plots.evidence import Evidence, config_label
from pipelines.plots.style import FAMILY_COLORS, INTERVAL, Drawn, family_label

# The hypotheses (of the analyze stage) each figure is evidence for; the report places it by them.
HYPOTHESES = {
    "01_sparsity": ("H1",), "02_weight_magnitudes": ("H1", "H2"), "03_weight_norm": ("H2", "H5"),
    "04_test_accuracy": ("H4",), "05_generalization_gap": ("H3",), "06_learning_curves": ("H3",),
    "08_first_layer_images": ("H1",), "09_input_features": ("H1",), "10_statistics": ("H4",),
}


MAGNITUDE_FLOOR = 1e-7  # |w| at or below it (exact zeros included) is drawn at the floor of the log axis
MAGNITUDE_POINTS = 121  # where each member's ECDF of log10|w| is evaluated: ~15 points a decade
IMAGE_UNITS = 6  # hidden units shown as 28x28 receptive fields: the first ones, not picked by eye
NO_LINES = ("none", "elastic")  # the baseline is a band; elastic net has its own heatmaps (figure 07)
STRENGTH_AXIS = "strength λ"  # log scaled: the 10ⁿ tick labels show it, the captions say it


# ---- the figures ----------------------------------------------------------------------------------

def sparsity(ev: Evidence) -> Drawn:
    """01: fraction of weights below each sparsity threshold (and exactly zero) versus strength."""
    lines = _lines(ev.ok)
    lines = lines[lines["family"] != "dropout"]
    measures = {c: f"|w| < {threshold_of(c):g}" for c in sparsity_columns(ev.runs)}
    measures["exact_zeros"] = "|w| = 0 exactly"
    styles = plotting.line_styles(sorted(set(lines["variant"])))
    figure, axes = plotting.panels(len(measures), height=2.3)
    for ax, (column, title) in zip(axes, measures.items()):
        plotting.family_lines(ax, lines, x="strength", y=column, styles=styles)
        ax.set(xscale="log", title=title, xlabel=STRENGTH_AXIS, ylabel="")
    axes[0].set_ylabel("fraction of weights")
    plotting.legend(figure, {"family": plotting.family_entries(lines["family"]),
                             "optimizer": plotting.style_entries(styles)})
    return Drawn("01_sparsity", figure, "Sparsity versus regularization strength", (
        "Fraction of all weights (every weight matrix, biases excluded) whose magnitude is below each "
        "threshold, and the fraction that is exactly zero, versus the strength λ of each family "
        f"(log scale; line style: optimizer). Lines: mean over {_seeds(lines)}; shaded: {INTERVAL}. "
        "Dropout has no λ (figure 05); elastic net varies two strengths (figure 07)."
        f"{_overlapping(lines, list(measures), 'group')} {ev.diverged(_families(ev.runs) - {'dropout'})}"))


def weight_magnitudes(ev: Evidence) -> Drawn:
    """02: ECDF of log10|w| per family at its selected strength, the mean over seeds of each member's ECDF."""
    long, at_floor = _magnitude_ecdfs(ev)
    floor, top = long["log_magnitude"].min(), long["log_magnitude"].max()
    groups = sorted(set(long["group"]))
    styles = plotting.line_styles(sorted(set(long["variant"])), markers=False)
    thresholds = [math.log10(threshold_of(c)) for c in sparsity_columns(ev.runs)]
    ticks = np.arange(math.ceil(floor), math.floor(top) + 1)
    tick_labels = [f"{t:.0f}".replace("-", "−") for t in ticks]
    tick_labels[0] = f"≤{tick_labels[0]}\n(and 0)"
    figure, axes = plotting.panels(len(groups), height=2.8)
    for ax, group in zip(axes, groups):
        plotting.family_lines(ax, long[long["group"] == group], x="log_magnitude", y="ecdf", styles=styles)
        for t in thresholds:
            ax.axvline(t, color="0.2", ls=(0, (1, 2)), lw=0.9, zorder=1)
        ax.set_xticks(ticks, tick_labels)
        ax.set(xlim=(floor, top), title=group, xlabel="log10 |w|", ylabel="")
    axes[0].set_ylabel("fraction of weights ≤ |w| (ECDF)")
    plotting.legend(figure, {"family": plotting.family_entries(ev.selected["family"]),
                             "optimizer": plotting.style_entries(styles)})
    zeros = "; ".join(f"{label}: {np.mean(v):.1%}" for label, v in at_floor.items() if np.mean(v) > 0.001)
    return Drawn("02_weight_magnitudes", figure, "Distribution of weight magnitudes", (
        "Empirical cumulative distribution of log10|w| over every weight matrix (biases excluded) of each "
        "family at its selected strength and of the unregularized baseline, one panel per optimizer "
        f"group (AdamW with Adam). Lines: mean ECDF over {_seeds(ev.selected)}; shaded: {INTERVAL}. "
        f"Magnitudes at or below {MAGNITUDE_FLOOR:g}, exact zeros included, are drawn at the left edge "
        f"(log10 = {floor:.0f}), so the jump there is the fraction of (near-)zero weights"
        + (f" ({zeros})." if zeros else "; no configuration has more than 0.1% of its weights there.")
        + " Dotted vertical lines: the sparsity thresholds of figure 01. Weights are read from "
        f"models/{ev.dataset}/weights.pt. {ev.diverged()}"))


def weight_norm(ev: Evidence) -> Drawn:
    """03: the L2 norm of the weights versus strength — the shrinkage curves."""
    return _versus_strength(ev, "weight_l2", 1.0, "weight L2 norm ‖w‖₂", "03_weight_norm",
                            "Shrinkage: weight norm versus strength",
                            "The L2 norm of all weight matrices together (biases excluded)")


def accuracy(ev: Evidence) -> Drawn:
    """04: test accuracy versus strength, with the unregularized baseline as a band."""
    return _versus_strength(ev, "test_acc", 100.0, "test accuracy (%)", "04_test_accuracy",
                            "Test accuracy versus strength", "Test accuracy (%)")


def generalization_gap(ev: Evidence) -> Drawn:
    """05: train minus test accuracy versus dropout p and versus strength."""
    return _versus_strength(ev, "gap_acc", 100.0, "train − test accuracy (points)", "05_generalization_gap",
                            "Generalization gap versus dropout p and strength",
                            "The generalization gap, train minus test accuracy in percentage points,")


def learning_curves(ev: Evidence) -> Drawn:
    """06: train and test loss per epoch of each family at its selected strength."""
    curves = ev.curves.merge(ev.selected[["member", "config_label", "family_label"]], on="member")
    long = curves.melt(id_vars=["member", "epoch", "config_label", "family_label"],
                       value_vars=["train_loss", "test_loss"], var_name="variant", value_name="loss")
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
    return Drawn("06_learning_curves", figure, "Learning curves at the selected strengths", (
        "Training loss (solid) and test loss (dashed), the cross-entropy in nats, per evaluated epoch, "
        "one panel per family at its selected strength (chosen on validation accuracy by the analyze "
        f"stage) and per baseline. Lines: mean over {_seeds(ev.selected)}; shaded: {INTERVAL}. "
        f"{ev.diverged()}"))


def elastic_net(ev: Evidence) -> Drawn | None:
    """07: heatmaps over (λ1, λ2) of test accuracy, sparsity and weight norm; None without elastic net."""
    elastic = ev.ok[ev.ok["family"] == "elastic"]
    if elastic.empty:
        return None
    measures = [("test_acc", 100.0, "test accuracy (%)", "rocket")]
    measures += [(c, 1.0, f"fraction |w| < {threshold_of(c):g}", "mako_r")
                 for c in sparsity_columns(ev.runs)]
    measures += [("weight_l2", 1.0, "weight L2 norm ‖w‖₂", "crest")]
    groups = sorted(set(elastic["group"]))
    figure, axes = plotting.panels(len(groups) * len(measures), columns=3, height=2.4, sharey=False)
    for ax, (group, (column, scale, label, cmap)) in zip(axes, [(g, m) for g in groups for m in measures]):
        chosen = elastic[elastic["group"] == group]
        cells = chosen.assign(value=chosen[column] * scale).groupby(["l2", "l1"])["value"]
        plotting.heatmap_cells(ax, cells.mean().unstack("l1"), cells.agg(plotting.ci_half_width).unstack("l1"), cmap)
        ax.invert_yaxis()  # λ2 grows upwards, like a plot's y axis
        ax.set(xlabel="λ1 (L1 strength)", ylabel="λ2 (L2 strength)",
               title=label if len(groups) == 1 else f"{group}: {label}")
    return Drawn("07_elastic_net", figure, "Elastic net over (λ1, λ2)", (
        "Elastic net (λ1·Σ|w| + (λ2/2)·Σw²) over its grid of strengths: test accuracy, the fraction of "
        "weights below each sparsity threshold, and the L2 norm of the weights. Each cell: mean over "
        f"{_seeds(elastic)}, and below it ± the half-width of the {INTERVAL}. {ev.diverged({'elastic'})}"))


def first_layer_images(ev: Evidence) -> Drawn | None:
    """08: first-layer weights of a few hidden units as 28x28 images; None unless the input is 784 pixels."""
    first = ev.weights.layers[0]
    if first.shape[2] != 28 * 28:
        return None
    coverage = ev.selected.groupby("seed")["config"].nunique()
    seed = int(coverage[coverage == coverage.max()].index.min())  # the first seed every config finished
    shown = ev.selected[ev.selected["seed"] == seed]
    units = list(range(min(IMAGE_UNITS, first.shape[1])))
    figure, axes = plt.subplots(len(shown), len(units), squeeze=False, layout="compressed",
                                figsize=(1.6 + 0.62 * len(units), 0.3 + 0.62 * len(shown)))
    cmap = sns.color_palette("RdBu_r", as_cmap=True)  # ColorBrewer's diverging map: white at zero
    for ax_row, member in zip(axes, shown.itertuples()):
        images = first[ev.weights.row[member.member], units].reshape(-1, 28, 28)
        scale = float(np.abs(images).max())
        for ax, image in zip(ax_row, images):
            ax.imshow(image, cmap=cmap, vmin=-scale or -1, vmax=scale or 1, interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
        ax_row[0].set_ylabel(f"{member.config_label}\n({f'±{scale:.2g}' if scale else 'all 0'})", rotation=0,
                             ha="right", va="center", fontsize="small")
    for ax, unit in zip(axes[0], units):
        ax.set_title(f"unit {unit}", fontsize="small")
    missing = sorted(set(ev.selected_configs) - set(shown["config"]))
    return Drawn("08_first_layer_images", figure, "First-layer receptive fields", (
        f"First-layer weights into hidden units {units[0]}–{units[-1]} (the first {len(units)}, not chosen "
        "by eye) drawn as 28×28 images, one row per family at its selected strength and per baseline, "
        f"all from seed {seed} (members sharing a seed share their initial weights, so a column is the "
        "same unit under each regularizer). Colour: blue negative, red positive, near-white zero; each row is "
        "scaled to its own largest |w|, given under its name. A single seed, so no interval is drawn; "
        f"{len(set(ev.selected['seed']))} seeds were trained."
        + (f" Not shown (no finished member at seed {seed}): {', '.join(missing)}." if missing else "")
        + f" {ev.diverged()}"))


def input_features(ev: Evidence) -> Drawn | None:
    """09: mean first-layer |w| per input feature and family; None unless the input is the 8 Pima features."""
    if not ev.feature_names:
        return None
    rows = [ev.weights.row[m] for m in ev.selected["member"]]
    magnitude = pd.DataFrame(np.abs(ev.weights.layers[0][rows]).mean(axis=1), columns=ev.feature_names)
    per_config = magnitude.groupby(ev.selected["config_label"].str.replace("\n", "  ").to_numpy(), sort=False)
    figure, ax = plt.subplots(figsize=(plotting.WIDTH, 1.2 + 0.34 * per_config.ngroups), layout="constrained")
    plotting.heatmap_cells(ax, per_config.mean(), per_config.agg(plotting.ci_half_width), "mako_r")
    colorbar = ax.collections[0].colorbar
    if colorbar is not None:  # heatmap_cells draws one
        colorbar.set_label("mean |w| over hidden units")
    ax.set(xlabel="input feature", ylabel="")
    ax.tick_params(axis="x", labelrotation=30)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    return Drawn("09_input_features", figure, "Which input features survive", (
        "Magnitude of the first-layer weights leaving each input feature (mean |w| over the hidden "
        "units), one row per family at its selected strength and per baseline. Each cell: mean over "
        f"{_seeds(ev.selected)}, and below it ± the half-width of the {INTERVAL}. A feature whose "
        f"weights shrink towards zero under L1 is one the penalty removes. {ev.diverged()}"))


def statistics(ev: Evidence) -> Drawn:
    """10: paired differences versus baseline (forest plot) beside the Friedman ranking, one row per config."""
    rows = _statistics_rows(ev.comparisons, ev.ranking)
    figure, (forest, ranks) = plt.subplots(1, 2, sharey=True, width_ratios=[2, 1], layout="constrained",
                                           figsize=(plotting.WIDTH, 0.9 + 0.2 * len(rows)))
    for y, row in rows.iterrows():
        colour = FAMILY_COLORS[family_label(row["family"])] if row["family"] else None
        if not math.isnan(row["mean_diff"]):
            diff = row["mean_diff"] * 100
            forest.errorbar(diff, y, xerr=[[diff - row["ci_low"] * 100], [row["ci_high"] * 100 - diff]], fmt="o",
                            color=colour, markersize=4, capsize=2)
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
    p_values.set_yticks(rows.index, [f"p = {p:.2g}" if not math.isnan(p) else "" for p in rows["bh_p"]],
                        fontsize="x-small")
    p_values.tick_params(length=0)
    p_values.grid(False)
    ranks.set_xlabel("mean rank\n(1 = best)")
    seeds = plotting.seeds_phrase(pd.concat([ev.comparisons["n"], ev.ranking["n_seeds"]]))
    methods = ", ".join(sorted(set(ev.comparisons["ci_method"].dropna()) - {""}))
    return Drawn("10_statistics", figure, "The statistics at a glance", (
        "Left: paired difference in test accuracy (percentage points) between each family's selected "
        "configuration and its optimizer group's unregularized baseline (open circle), seed by seed; "
        f"points are the mean difference over {seeds} and bars its bootstrap confidence interval"
        f"{f' ({methods})' if methods else ''}, both "
        "from reports/tables/comparisons.csv (hypothesis H4); p: Benjamini–Hochberg adjusted p-value. "
        "Right: mean rank of each configuration's test accuracy across seeds within its optimizer group "
        "(1 = best), whose heading gives the Friedman test's p-value, from reports/tables/ranking.csv. "
        "Members that diverged are excluded by the analyze stage."))


FIGURES: tuple[Callable[[Evidence], Drawn | None], ...] = (
    sparsity, weight_magnitudes, weight_norm, accuracy, generalization_gap, learning_curves,
    elastic_net, first_layer_images, input_features, statistics,
)


# ---- shared drawing steps --------------------------------------------------------------------------

def _lines(ok: pd.DataFrame) -> pd.DataFrame:
    """Rows drawn as lines over a strength: every family but the baseline and elastic net, strength > 0."""
    return ok[~ok["family"].isin(NO_LINES) & (ok["strength"] > 0)]


def _families(runs: pd.DataFrame) -> set[str]:
    """The families that _lines draws, from every member: a family none of whose members finished is
    drawn by no line, and its members still count as diverged in the caption."""
    return set(runs.loc[~runs["family"].isin(NO_LINES), "family"])


def _magnitude_ecdfs(ev: Evidence) -> tuple[pd.DataFrame, dict[str, list[float]]]:
    """Each selected member's ECDF of log10|w| (all weight matrices) on one grid from the floor to the
    largest |w|, counting |w| at or below the floor there; and per config, each member's share at the floor."""
    rows = [ev.weights.row[m] for m in ev.selected["member"]]
    top = max(float(np.abs(layer[rows]).max()) for layer in ev.weights.layers)
    floor = math.log10(MAGNITUDE_FLOOR)
    edges = np.linspace(floor, max(math.ceil(math.log10(max(top, MAGNITUDE_FLOOR)) * 10) / 10, floor + 1),
                        MAGNITUDE_POINTS)
    frames: list[pd.DataFrame] = []
    at_floor: dict[str, list[float]] = {}
    for member, row in zip(ev.selected.itertuples(), rows):
        magnitude = np.abs(np.concatenate([layer[row].ravel() for layer in ev.weights.layers]))
        low = int((magnitude <= MAGNITUDE_FLOOR).sum())
        counts, _ = np.histogram(np.log10(magnitude[magnitude > MAGNITUDE_FLOOR]), bins=edges)
        ecdf = np.concatenate([[low], low + np.cumsum(counts)]) / magnitude.size
        at_floor.setdefault(member.config_label.replace("\n", " "), []).append(low / magnitude.size)
        frames.append(pd.DataFrame({"log_magnitude": edges, "ecdf": ecdf, "family_label": member.family_label,
                                    "variant": member.variant, "group": member.group}))
    return pd.concat(frames, ignore_index=True), at_floor


def _seeds(frame: pd.DataFrame) -> str:
    return plotting.seeds_phrase(frame.groupby("config")["seed"].nunique())


def _versus_strength(ev: Evidence, column: str, scale: float, ylabel: str, name: str, title: str,
                     what: str) -> Drawn:
    """Figures 03–05: a panel per optimizer group over λ (log), one per group over dropout p, each with
    the group's baseline as a band."""
    lines = _lines(ev.ok)
    dropout = lines["family"] == "dropout"
    lines = lines.assign(value=lines[column] * scale,
                         panel=np.where(dropout, "dropout · " + lines["group"], lines["group"]))
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
    plotting.legend(figure, {"family": plotting.family_entries(lines["family"]),
                             "optimizer": plotting.style_entries(styles), "baseline": plotting.BAND_ENTRY})
    return Drawn(name, figure, title, (
        f"{what} versus the strength of each family: one panel per optimizer group over λ (log scale; "
        "AdamW with Adam, line style: optimizer) and one over the dropout probability p (mean over "
        f"layers). Lines: mean over {_seeds(lines)}; shaded: {INTERVAL}. Grey band: the group's "
        f"unregularized baseline, its mean (dotted) and 95% CI over {_seeds(baselines)}. Elastic net "
        f"varies two strengths and is shown in figure 07.{_overlapping(lines, ['value'], 'panel')} "
        f"{ev.diverged(_families(ev.runs) | {'none'})}"))


def _overlapping(lines: pd.DataFrame, values: list[str], panel: str) -> str:
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


def _statistics_rows(comparisons: pd.DataFrame, ranking: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of either table, grouped by optimizer group, each group headed by a
    row (family "") naming it and its Friedman p-value."""
    ranked = ranking[["config", "optimizer", "family", "mean_rank", "friedman_p"]]
    compared = comparisons.rename(columns={"a": "config", "family_a": "family"}).set_index("config")
    only_compared = compared.loc[~compared.index.isin(ranked["config"]), ["optimizer", "family"]].reset_index()
    rows = pd.concat([ranked, only_compared.assign(mean_rank=math.nan, friedman_p=math.nan)], ignore_index=True)
    rows = rows.join(compared[["mean_diff", "ci_low", "ci_high", "bh_p"]], on="config")
    rows["label"] = [config_label(c, o, f).replace("\n", " ") for c, o, f in
                     zip(rows["config"], rows["optimizer"], rows["family"])]
    rows = rows.assign(_order=rows["family"].map(FAMILIES.index)).sort_values(["optimizer", "_order"])
    parts = []
    for optimizer, group in rows.groupby("optimizer", sort=True):
        friedman = group["friedman_p"].dropna()
        heading = optimizer + (f" (Friedman p = {friedman.iloc[0]:.2g})" if not friedman.empty else "")
        parts += [pd.DataFrame([{"label": heading, "family": "", "mean_diff": math.nan, "mean_rank": math.nan,
                                 "bh_p": math.nan}]), group]
    return pd.concat(parts, ignore_index=True).drop(columns="_order")



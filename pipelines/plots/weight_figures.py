"""The figures of the weights: sparsity, magnitudes, norms, elastic net, first-layer images and
input features (evidence for H1a, H1b, H2 and H5)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import Normalize

from pipelines.core.results import sparsity_columns, threshold_of
from pipelines.plots import style as plotting
from pipelines.plots.evidence import Evidence
from pipelines.plots.lines import (
    STRENGTH_AXIS,
    line_families,
    lines_of,
    overlapping,
    seeds_phrase,
    versus_strength,
)
from pipelines.plots.style import INTERVAL, Drawn

MAGNITUDE_FLOOR = 1e-7  # |w| at or below it (exact zeros included) is drawn at the floor of the log axis
MAGNITUDE_POINTS = 121  # where each member's ECDF of log10|w| is evaluated: ~15 points a decade
IMAGE_UNITS = 6  # hidden units shown as 28x28 receptive fields: the first ones, not picked by eye


# Figure 01's measures: scale-free and functional (pipelines/training/pruning.py defines them).
SPARSITY_MEASURES = {
    "prunable_fraction": "prunable",
    "negligible": "|w| ≤ 0.01·RMS",
    "hoyer_layers": "Hoyer (0–1)",
    "zeros": "|w| = 0",
}


def sparsity(ev: Evidence) -> Drawn:
    """01: scale-free and functional sparsity versus strength."""
    lines = lines_of(ev.ok)
    lines = lines[lines["family"] != "dropout"]
    styles = plotting.line_styles(sorted(set(lines["variant"])))
    figure, axes = plotting.panels(len(SPARSITY_MEASURES), height=2.3)
    for ax, (column, title) in zip(axes, SPARSITY_MEASURES.items()):
        plotting.family_lines(ax, lines, x="strength", y=column, styles=styles)
        ax.set(xscale="log", title=title, xlabel=STRENGTH_AXIS, ylabel="")
    axes[0].set_ylabel("fraction of weights")
    plotting.legend(
        figure, {"family": plotting.family_entries(lines["family"]), "optimizer": plotting.style_entries(styles)}
    )
    return Drawn(
        "01_sparsity",
        figure,
        "Sparsity versus regularization strength, measured without a fixed threshold",
        (
            "Four measures of sparsity that do not depend on the weights' scale, versus the strength λ of each "
            "family (log scale; line style: optimizer): the prunable fraction (the largest share of each layer's "
            "smallest weights that can be set to zero, no fine-tuning, for at most half a point of validation "
            "accuracy), the fraction of weights at most 0.01 × their layer's RMS, Hoyer's sparsity per layer "
            "(0 flat, 1 a single nonzero; weighted by layer size) and the fraction of exact zeros. What to see: "
            "a family that makes networks sparse raises all four; one that only shrinks weights (L2) leaves "
            "them near the baseline's, however small its weights become. "
            f"Lines: mean over {seeds_phrase(lines)}; shaded: {INTERVAL}. Dropout has no λ (figure 05); elastic "
            "net varies two strengths (figure 07)."
            f"{overlapping(lines, list(SPARSITY_MEASURES), 'group')}{ev.identical} "
            f"{ev.diverged(line_families(ev.runs) - {'dropout'})}"
        ),
    )


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
    plotting.legend(
        figure, {"family": plotting.family_entries(ev.selected["family"]), "optimizer": plotting.style_entries(styles)}
    )
    zeros = "; ".join(f"{label}: {np.mean(v):.1%}" for label, v in at_floor.items() if np.mean(v) > 0.001)
    return Drawn(
        "02_weight_magnitudes",
        figure,
        "Distribution of weight magnitudes",
        (
            "Empirical cumulative distribution of log10|w| over every weight matrix (biases excluded) of each "
            "family at its selected strength and of the unregularized baseline, one panel per optimizer "
            f"group (AdamW with Adam). Lines: mean ECDF over {seeds_phrase(ev.selected)}; shaded: {INTERVAL}. "
            f"Magnitudes at or below {MAGNITUDE_FLOOR:g}, exact zeros included, are drawn at the left edge "
            f"(log10 = {floor:.0f}), so the jump there is the fraction of (near-)zero weights"
            + (f" ({zeros})." if zeros else "; no configuration has more than 0.1% of its weights there.")
            + " Dotted vertical lines: the sparsity thresholds of figure 01. Weights are read from "
            f"models/{ev.dataset}/weights.pt. {ev.diverged()}"
        ),
    )


def weight_norm(ev: Evidence) -> Drawn:
    """03: the L2 norm of the weights versus strength — the shrinkage curves."""
    return versus_strength(
        ev,
        "weight_l2",
        1.0,
        "weight L2 norm ‖w‖₂",
        "03_weight_norm",
        "Shrinkage: weight norm versus strength",
        "The L2 norm of all weight matrices together (biases excluded)",
    )


def elastic_net(ev: Evidence) -> Drawn | None:
    """07: heatmaps over (λ1, λ2) of fractions on one shared 0–1 colour scale: test accuracy, the
    sparsity measures of figure 01, and the weight norm as a fraction of the baseline's; None without
    elastic net."""
    elastic = ev.ok[ev.ok["family"] == "elastic"]
    if elastic.empty:
        return None
    baseline_norm = ev.ok[ev.ok["family"] == "none"].set_index(["group", "seed"])["weight_l2"]
    elastic = elastic.assign(
        norm_ratio=elastic["weight_l2"].to_numpy()
        / baseline_norm.reindex(pd.MultiIndex.from_frame(elastic[["group", "seed"]])).to_numpy()
    )
    measures = {"test_acc": "test accuracy"} | SPARSITY_MEASURES | {"norm_ratio": "‖w‖₂ / baseline's ‖w‖₂"}
    groups = sorted(set(elastic["group"]))
    cells = {
        (group, column): elastic[elastic["group"] == group].groupby(["l2", "l1"])[column]
        for group in groups
        for column in measures
    }
    # One colour scale for every panel: each is a fraction, so colours compare across panels; a norm
    # above the baseline's (possible, though no penalty aims at it) stretches the scale past 1.
    top = max(1.0, *(float(values.mean().max()) for values in cells.values()))
    scale = Normalize(0.0, top)
    figure, axes = plotting.panels(len(cells), columns=3, height=2.3, sharey=False)
    for ax, ((group, column), values) in zip(axes, cells.items()):
        plotting.heatmap_cells(
            ax, values.mean().unstack("l1"), values.agg(plotting.ci_half_width).unstack("l1"), "mako_r", scale
        )
        ax.invert_yaxis()  # λ2 grows upwards, like a plot's y axis
        ax.set(
            xlabel="λ1 (L1 strength)",
            ylabel="λ2 (L2 strength)",
            title=measures[column] if len(groups) == 1 else f"{group}: {measures[column]}",
        )
    plotting.shared_colorbar(figure, axes, "mako_r", scale, "fraction (every panel)")
    return Drawn(
        "07_elastic_net",
        figure,
        "Elastic net over (λ1, λ2)",
        (
            "Elastic net (λ1·Σ|w| + (λ2/2)·Σw²) over its grid of strengths, every panel a fraction on one shared "
            "colour scale from 0 to "
            f"{top:.3g}: test accuracy, the scale-free sparsity measures of figure 01 (prunable fraction, "
            "fraction of weights at most 0.01 × their layer's RMS, Hoyer's sparsity, exact zeros), and the L2 "
            "norm of the weights divided by that of the baseline trained with the same seed. Each cell: mean over "
            f"{seeds_phrase(elastic)}, and below it ± the half-width of the {INTERVAL}. {ev.diverged({'elastic'})}"
        ),
    )


def first_layer_images(ev: Evidence) -> Drawn | None:
    """08: first-layer weights of a few hidden units as 28x28 images; None unless the input is 784 pixels."""
    first = ev.weights.layers[0]
    if first.shape[2] != 28 * 28:
        return None
    coverage = ev.selected.groupby("seed")["config"].nunique()
    seed = int(coverage[coverage == coverage.max()].index.min())  # the first seed every config finished
    shown = ev.selected[ev.selected["seed"] == seed]
    units = list(range(min(IMAGE_UNITS, first.shape[1])))
    figure, axes = plt.subplots(
        len(shown),
        len(units),
        squeeze=False,
        layout="compressed",
        figsize=(1.6 + 0.62 * len(units), 0.3 + 0.62 * len(shown)),
    )
    cmap = sns.color_palette("RdBu_r", as_cmap=True)  # ColorBrewer's diverging map: white at zero
    for ax_row, member in zip(axes, shown.itertuples()):
        images = first[ev.weights.row[member.member], units].reshape(-1, 28, 28)
        scale = float(np.abs(images).max())
        for ax, image in zip(ax_row, images):
            ax.imshow(image, cmap=cmap, vmin=-scale or -1, vmax=scale or 1, interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            ax.grid(False)
        ax_row[0].set_ylabel(
            f"{member.config_label}\n({f'±{scale:.2g}' if scale else 'all 0'})",
            rotation=0,
            ha="right",
            va="center",
            fontsize="small",
        )
    for ax, unit in zip(axes[0], units):
        ax.set_title(f"unit {unit}", fontsize="small")
    missing = sorted(set(ev.selected_configs) - set(shown["config"]))
    return Drawn(
        "08_first_layer_images",
        figure,
        "First-layer receptive fields",
        (
            f"First-layer weights into hidden units {units[0]}–{units[-1]} (the first {len(units)}, not chosen "
            "by eye) drawn as 28×28 images, one row per family at its selected strength and per baseline, "
            f"all from seed {seed} (members sharing a seed share their initial weights, so a column is the "
            "same unit under each regularizer). Colour: blue negative, red positive, near-white zero; each row is "
            "scaled to its own largest |w|, given under its name. A single seed, so no interval is drawn; "
            f"{len(set(ev.selected['seed']))} seeds were trained."
            + (f" Not shown (no finished member at seed {seed}): {', '.join(missing)}." if missing else "")
            + f" {ev.diverged()}"
        ),
    )


def input_features(ev: Evidence) -> Drawn | None:
    """09: mean first-layer |w| per input feature and family; None unless the input is the 8 Pima features."""
    if not ev.feature_names:
        return None
    rows = [ev.weights.row[m] for m in ev.selected["member"]]
    per_feature = np.abs(ev.weights.layers[0][rows]).mean(axis=1)
    # Each network's row over its own largest feature: L1 shrinks every weight, and the feature it
    # keeps would vanish in a colour scale shared with the baseline's larger weights.
    largest = per_feature.max(axis=1, keepdims=True)
    relative = np.divide(per_feature, largest, out=np.zeros_like(per_feature), where=largest > 0)
    magnitude = pd.DataFrame(relative, columns=ev.feature_names)
    per_config = magnitude.groupby(ev.selected["config_label"].str.replace("\n", "  ").to_numpy(), sort=False)
    figure, ax = plt.subplots(figsize=(plotting.WIDTH, 1.2 + 0.34 * per_config.ngroups), layout="constrained")
    plotting.heatmap_cells(ax, per_config.mean(), per_config.agg(plotting.ci_half_width), "mako_r")
    colorbar = ax.collections[0].colorbar
    if colorbar is not None:  # heatmap_cells draws one
        colorbar.set_label("mean |w|, relative to the network's largest feature")
    ax.set(xlabel="input feature", ylabel="")
    ax.tick_params(axis="x", labelrotation=30)
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    return Drawn(
        "09_input_features",
        figure,
        "Which input features survive",
        (
            "Magnitude of the first-layer weights leaving each input feature (mean |w| over the hidden "
            "units), divided by that of the network's largest feature, so each row compares features within "
            "a network whatever the penalty did to its scale (an all-zero network is drawn as 0). One row per "
            "family at its selected strength and per baseline. Each cell: mean over "
            f"{seeds_phrase(ev.selected)}, and below it ± the half-width of the {INTERVAL}. What to see: "
            "a row near 1 on one feature and near 0 elsewhere is a network that kept one input; a flat row "
            f"uses every feature.{_kept_by_l1(magnitude, ev.selected['family'].to_numpy())} {ev.diverged()}"
        ),
    )


def _kept_by_l1(relative: pd.DataFrame, families: np.ndarray) -> str:
    """A caption sentence naming the feature the L1-type networks weigh most, on average."""
    l1 = relative[np.isin(families, ("l1", "prox_l1"))]
    if l1.empty:
        return ""
    mean = l1.mean()
    return f" Under the L1-type families the largest feature is {mean.idxmax()} (mean {mean.max():.2f} relative)."


def _magnitude_ecdfs(ev: Evidence) -> tuple[pd.DataFrame, dict[str, list[float]]]:
    """Each selected member's ECDF of log10|w| (all weight matrices) on one grid from the floor to the
    largest |w|, counting |w| at or below the floor there; and per config, each member's share at the floor."""
    rows = [ev.weights.row[m] for m in ev.selected["member"]]
    top = max(float(np.abs(layer[rows]).max()) for layer in ev.weights.layers)
    floor = math.log10(MAGNITUDE_FLOOR)
    edges = np.linspace(
        floor, max(math.ceil(math.log10(max(top, MAGNITUDE_FLOOR)) * 10) / 10, floor + 1), MAGNITUDE_POINTS
    )
    frames: list[pd.DataFrame] = []
    at_floor: dict[str, list[float]] = {}
    for member, row in zip(ev.selected.itertuples(), rows):
        magnitude = np.abs(np.concatenate([layer[row].ravel() for layer in ev.weights.layers]))
        low = int((magnitude <= MAGNITUDE_FLOOR).sum())
        counts, _ = np.histogram(np.log10(magnitude[magnitude > MAGNITUDE_FLOOR]), bins=edges)
        ecdf = np.concatenate([[low], low + np.cumsum(counts)]) / magnitude.size
        at_floor.setdefault(member.config_label.replace("\n", " "), []).append(low / magnitude.size)
        frames.append(
            pd.DataFrame(
                {
                    "log_magnitude": edges,
                    "ecdf": ecdf,
                    "family_label": member.family_label,
                    "variant": member.variant,
                    "group": member.group,
                }
            )
        )
    return pd.concat(frames, ignore_index=True), at_floor

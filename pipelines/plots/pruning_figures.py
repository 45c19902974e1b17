"""The figures of functional and scale-free sparsity (evidence for H1a, H1b and H2): pruning curves,
the sparsity-accuracy frontiers, and each layer's magnitudes relative to its RMS against the
initial weights."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from matplotlib.lines import Line2D

from pipelines.plots import style as plotting
from pipelines.plots.evidence import Evidence
from pipelines.plots.lines import seeds_phrase
from pipelines.plots.style import FAMILY_COLORS, INTERVAL, Drawn, family_label
from pipelines.training import networks

FRONTIER_FAMILIES = ("l1", "prox_l1", "l2")  # the families H1a and H1b compare
RATIO_FLOOR = -4.0  # log10(|w| / RMS) at or below it, zeros included, is drawn at the left edge
RATIO_POINTS = 101
NEGLIGIBLE = math.log10(0.01)  # the negligible measure's threshold, 0.01 × the layer's RMS


def pruning_curves(ev: Evidence) -> Drawn:
    """11: validation accuracy against the fraction of each layer pruned, each family at its selected strength."""
    members = ev.selected[["member", "family_label", "variant", "group"]]
    curves = ev.pruning.merge(members, on="member").dropna(subset=["val_acc"])
    curves = curves.assign(val_acc=100 * curves["val_acc"])
    groups = sorted(set(curves["group"]))
    styles = plotting.line_styles(sorted(set(curves["variant"])))
    figure, axes = plotting.panels(len(groups), height=2.8)
    for ax, group in zip(axes, groups):
        plotting.family_lines(ax, curves[curves["group"] == group], x="fraction", y="val_acc", styles=styles)
        ax.set(title=group, xlabel="fraction of each layer's weights pruned", ylabel="")
    axes[0].set_ylabel("validation accuracy (%)")
    plotting.legend(
        figure, {"family": plotting.family_entries(ev.selected["family"]), "optimizer": plotting.style_entries(styles)}
    )
    fractions = sorted(set(ev.pruning["fraction"]))
    return Drawn(
        "11_pruning_curves",
        figure,
        "Pruning curves: how much of each network can be removed",
        (
            "Validation accuracy after setting the smallest-magnitude fraction of every weight matrix to zero "
            f"(ranked within each layer, biases kept, no fine-tuning; fractions {fractions[0]:g} to "
            f"{fractions[-1]:g}), one line per family at its selected strength and per baseline, a panel per "
            f"optimizer group. Lines: mean over {seeds_phrase(ev.selected)}; shaded: {INTERVAL}. What to see: "
            "the further right a line stays flat, the more of the network is removable; a sparse network "
            f"keeps its accuracy until nearly every weight is gone. {ev.diverged()}"
        ),
    )


def pareto_frontier(ev: Evidence) -> Drawn:
    """12: prunable fraction against validation accuracy, every strength of every family, frontiers drawn."""
    ok = ev.ok[ev.ok["family"] != "elastic"]
    points = ok.groupby(["group", "family", "config"], as_index=False)[["val_acc", "prunable_fraction"]].mean()
    points["val_acc"] *= 100
    groups = sorted(set(points["group"]))
    figure, axes = plotting.panels(len(groups), height=3.0, sharey=True)
    for ax, group in zip(axes, groups):
        here = points[points["group"] == group]
        for family, chosen in here.groupby("family"):
            colour = FAMILY_COLORS[family_label(str(family))]
            ax.scatter(chosen["val_acc"], chosen["prunable_fraction"], s=14, color=colour, zorder=3)
            if family in FRONTIER_FAMILIES:
                envelope = _envelope(pd.concat([chosen, here[here["family"] == "none"]]))
                ax.step(envelope["val_acc"], envelope["prunable_fraction"], where="post", color=colour, lw=1.4)
        for row in ev.frontier[ev.frontier["optimizer"] == group].drop_duplicates("cost").itertuples():
            ax.axvline(100 * (row.baseline_val_acc_mean - row.cost), color="0.3", ls=(0, (1, 2)), lw=0.9)
        ax.set(title=group, xlabel="validation accuracy (%)", ylabel="")
    axes[0].set_ylabel("prunable fraction")
    plotting.legend(figure, {"family": plotting.family_entries(points["family"])})
    return Drawn(
        "12_pareto_frontier",
        figure,
        "Sparsity against accuracy: the frontiers of L1 and L2",
        (
            "Each point is one configuration (every strength of every family but elastic net, and the "
            f"baseline): its mean validation accuracy and mean prunable fraction over {seeds_phrase(ok)} (no "
            "interval is drawn here: the paired intervals of the differences at each cost are in H1a and H1b). "
            "Step lines: the frontier of L1, proximal L1 and L2, each over its strengths and the baseline (the "
            "most prunable configuration at or above each accuracy). Dotted vertical lines: the accuracy costs "
            "at which H1a and H1b compare the frontiers, below the baseline's validation accuracy. What to see: "
            "a family whose line lies higher buys more sparsity for the same accuracy; a line that stops right "
            f"of a dotted line is a grid that never reaches that cost.{ev.identical} {ev.diverged()}"
        ),
    )


def _envelope(points: pd.DataFrame) -> pd.DataFrame:
    """The configurations no other beats on both accuracy and prunable fraction, by accuracy."""
    ordered = points.sort_values(["val_acc", "prunable_fraction"], ascending=False)
    best = ordered["prunable_fraction"].cummax()
    kept = ordered[ordered["prunable_fraction"] >= best]
    return kept.sort_values("val_acc")


def layer_magnitudes(ev: Evidence) -> Drawn:
    """13: per layer, the ECDF of log10(|w| / layer RMS) per family at its selected strength, and at initialization."""
    long = _ratio_ecdfs(ev)
    initial = _initial_ecdfs(ev)
    layers = sorted(set(long["layer"]))
    groups = sorted(set(long["group"]))
    styles = plotting.line_styles(sorted(set(long["variant"])), markers=False)
    figure, axes = plotting.panels(len(groups) * len(layers), columns=len(layers), height=2.4)
    for ax, (group, layer) in zip(axes, [(g, i) for g in groups for i in layers]):
        plotting.family_lines(
            ax, long[(long["group"] == group) & (long["layer"] == layer)], x="log_ratio", y="ecdf", styles=styles
        )
        ax.plot(initial.index, initial[layer], color="black", ls=(0, (4, 2)), lw=1.1)
        ax.axvline(NEGLIGIBLE, color="0.3", ls=(0, (1, 2)), lw=0.9)
        ax.set(title=f"{group}, layer {layer}", xlabel="log10(|w| / layer RMS)", ylabel="")
    axes[0].set_ylabel("fraction of weights ≤ (ECDF)")
    initial_entry = {"initial weights": Line2D([], [], color="black", ls=(0, (4, 2)), lw=1.1)}
    plotting.legend(
        figure,
        {
            "family": plotting.family_entries(ev.selected["family"]) | initial_entry,
            "optimizer": plotting.style_entries(styles),
        },
    )
    return Drawn(
        "13_layer_magnitudes",
        figure,
        "Weight magnitudes relative to each layer's scale",
        (
            "Empirical cumulative distribution of log10(|w| / RMS of the layer) in each weight matrix, one "
            "panel per optimizer group and layer, for each family at its selected strength and the baseline; "
            f"dashed black: the initial weights of the same seeds. Lines: mean ECDF over {seeds_phrase(ev.selected)}; "
            f"shaded: {INTERVAL}. Ratios at or below 10^{RATIO_FLOOR:.0f}, exact zeros included, are drawn at the "
            "left edge; dotted: 0.01 × RMS, the threshold of the negligible measure. What to see: a penalty "
            "that only rescales a layer leaves its curve on the initial one's shape; one that sparsifies "
            f"moves mass to the left edge. Weights are read from models/{ev.dataset}/weights.pt. {ev.diverged()}"
        ),
    )


EDGES = np.linspace(RATIO_FLOOR, 1.5, RATIO_POINTS)


def _ecdf(weight: np.ndarray) -> np.ndarray:
    """The ECDF of log10(|w| / RMS) on EDGES, |w| at or below the floor counted at the left edge; an
    all-zero layer has every weight there."""
    magnitude = np.abs(weight.ravel()).astype(np.float64)
    rms = math.sqrt(float(np.mean(magnitude**2)))
    if rms == 0:
        return np.ones_like(EDGES)
    ratio = magnitude / rms
    low = ratio <= 10**RATIO_FLOOR
    counts, _ = np.histogram(np.log10(ratio[~low]), bins=EDGES)
    return np.concatenate([[low.sum()], low.sum() + np.cumsum(counts)]) / magnitude.size


def _ratio_ecdfs(ev: Evidence) -> pd.DataFrame:
    frames = []
    for member in ev.selected.itertuples():
        row = ev.weights.row[member.member]
        for layer, weights in enumerate(ev.weights.layers, start=1):
            frames.append(
                pd.DataFrame(
                    {
                        "log_ratio": EDGES,
                        "ecdf": _ecdf(weights[row]),
                        "layer": layer,
                        "family_label": member.family_label,
                        "variant": member.variant,
                        "group": member.group,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def _initial_ecdfs(ev: Evidence) -> pd.DataFrame:
    """Mean ECDF per layer (columns 1, 2, ...) of the initial weights of the selected seeds, rebuilt
    from each seed's deterministic initialization (pipelines/training/networks.py), not retrained."""
    layers = ev.weights.layers
    sizes = [layers[0].shape[2], *(w.shape[1] for w in layers)]
    curves = []
    with torch.no_grad():
        for seed in sorted(set(ev.selected["seed"])):
            initial = networks.initial_parameters(int(seed), sizes)
            curves.append(np.stack([_ecdf(weight.numpy()) for weight, _ in initial], axis=1))
    return pd.DataFrame(np.mean(curves, axis=0), index=EDGES, columns=range(1, len(layers) + 1))

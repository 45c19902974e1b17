"""Figure 14: the learning-rate × strength maps (evidence for H5), drawn like figure 2 of
Loshchilov & Hutter's AdamW paper: one heatmap per method and accuracy, learning rate against
strength, the validation-best strength at each learning rate marked."""

from __future__ import annotations

import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.patches import Rectangle

from pipelines.analysis.maps import METHODS
from pipelines.plots import style as plotting
from pipelines.plots.evidence import Evidence
from pipelines.plots.style import INTERVAL, Drawn

MEASURES = (("val_acc", "val acc (%)"), ("test_acc", "test acc (%)"))


def lr_maps(ev: Evidence) -> Drawn | None:
    """14: mean accuracy over seeds per (lr, strength) cell, a row per method and a column per accuracy,
    on one shared colour scale; None without maps."""
    finished = ev.maps[ev.maps["status"] == "ok"]
    if finished.empty:
        return None
    methods = [
        (g, f)
        for g, families in METHODS.items()
        for f in families
        if ((finished["group"] == g) & (finished["family"] == f)).any()
    ]
    # One scale for every panel: all are accuracies in %, so a colour means the same value everywhere.
    means = 100 * finished.groupby(["group", "family", "lr", "strength"])[[c for c, _ in MEASURES]].mean()
    scale = Normalize(float(means.min().min()), float(means.max().max()))
    figure, axes = plotting.panels(len(methods) * len(MEASURES), columns=len(MEASURES), height=2.0, sharey=False)
    for ax, ((group, family), (column, label)) in zip(axes, [(m, x) for m in methods for x in MEASURES]):
        method = finished[(finished["group"] == group) & (finished["family"] == family)]
        # groupby sorts: learning rates and strengths ascending, the same order in every panel
        cells = method.assign(value=100 * method[column]).groupby(["lr", "strength"])["value"]
        mean = cells.mean().unstack("strength")
        plotting.heatmap_cells(ax, mean, cells.agg(plotting.ci_half_width).unstack("strength"), "rocket", scale)
        _mark_best(ax, method.groupby(["lr", "strength"])["val_acc"].mean().unstack("strength"))
        ax.invert_yaxis()  # the learning rate grows upwards in every panel
        ax.set(
            xlabel="λ (PyTorch units)",
            ylabel="learning rate",
            title=f"{family if family != 'l2' else group + '+l2'}: {label}",
        )
    plotting.shared_colorbar(figure, axes, "rocket", scale, "accuracy (%), every panel")
    seeds = plotting.seeds_phrase(finished.groupby("config")["seed"].nunique())
    return Drawn(
        "14_lr_maps",
        figure,
        "Learning rate × strength: L2 penalty against decoupled decay",
        (
            "Each method (a row of panels) over the map's learning rates (increasing upwards in every panel) "
            "and strengths (increasing to the right): mean validation accuracy (left) and test accuracy (right) "
            f"over {seeds}, and below it ± the half-width of the {INTERVAL}. Every panel is coloured on one "
            "shared scale of accuracy. The boxed cell in each row is "
            "the strength with the highest mean validation accuracy at that learning rate. Decoupled decay (adamw, "
            "sgdw) shrinks by lr·λ per step, so a fixed best product lr·λ would put the boxes on a diagonal of slope "
            "−1 in these log axes. The members of these cells are not in any other figure or in H1–H4 and H6. "
            f"{plotting.diverged_phrase(ev.maps, ev.maps)}"
        ),
    )


def _mark_best(ax: object, val_acc: pd.DataFrame) -> None:
    """Box, in each row of the heatmap, the column with the highest mean validation accuracy."""
    for row, (_, values) in enumerate(val_acc.iterrows()):
        column = val_acc.columns.get_loc(values.idxmax())
        ax.add_patch(Rectangle((column, row), 1, 1, fill=False, edgecolor="deepskyblue", linewidth=2))  # type: ignore[attr-defined]

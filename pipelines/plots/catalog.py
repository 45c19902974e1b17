"""The FIGURES registry the stage draws in order, and the hypotheses each figure is evidence for.

What is drawn: the main grid (members trained with the baseline's bias setting; the bias ablation
is left to the tables; figure 14 alone draws the learning-rate maps' cells), members that finished
("ok"), lines at the mean across seeds with a 95% Student-t interval (style.mean_ci, the one
interval of the figures). Accuracy is drawn as the paired comparisons test it: each member minus its
group's baseline trained with the same seed, the seeds as dots (figures 04 and 10). Elastic net varies
two strengths, so it has its own heatmaps instead of lines. Coupled weight decay, the L2 penalty by
construction, is left out (captions say so).
"""

from __future__ import annotations

from collections.abc import Callable

from pipelines.plots.accuracy_figures import accuracy, generalization_gap, learning_curves, statistics
from pipelines.plots.evidence import Evidence
from pipelines.plots.map_figures import lr_maps
from pipelines.plots.pruning_figures import layer_magnitudes, pareto_frontier, pruning_curves
from pipelines.plots.style import Drawn
from pipelines.plots.weight_figures import (
    elastic_net,
    first_layer_images,
    input_features,
    sparsity,
    weight_magnitudes,
    weight_norm,
)

# The hypotheses (of the analyze stage) each figure is evidence for; the report places it by them.
HYPOTHESES = {
    "01_sparsity": ("H1a", "H1b"),
    "02_weight_magnitudes": ("H2", "H1a"),
    "03_weight_norm": ("H2", "H5"),
    "04_test_accuracy": ("H4",),
    "05_generalization_gap": ("H3",),
    "06_learning_curves": ("H3",),
    "08_first_layer_images": ("H1a", "H1b"),
    "09_input_features": ("H1a", "H1b"),
    "10_statistics": ("H4",),
    "11_pruning_curves": ("H1a", "H1b", "H2"),
    "12_pareto_frontier": ("H1a", "H1b"),
    "13_layer_magnitudes": ("H2", "H1a", "H1b"),
    "14_lr_maps": ("H5",),
}


FIGURES: tuple[Callable[[Evidence], Drawn | None], ...] = (
    sparsity,
    weight_magnitudes,
    weight_norm,
    accuracy,
    generalization_gap,
    learning_curves,
    elastic_net,
    first_layer_images,
    input_features,
    statistics,
    pruning_curves,
    pareto_frontier,
    layer_magnitudes,
    lr_maps,
)

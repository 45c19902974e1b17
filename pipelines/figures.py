"""The figures stage: the evidence drawn with seaborn, one function per figure.

    python -m pipelines.figures

Reads params key figures.dpi, reports/results/<dataset>/{runs,curves,pruning}.csv,
models/<dataset>/weights.pt, data/prepared/<dataset>.json (feature names, if present) and
reports/tables/{comparisons,ranking,selected,frontier,lr_best,verdicts}.csv; writes
reports/figures/<dataset>/<nn>_<name>.png and .pdf and captions.json for every
dataset with a runs.csv, and the study at a glance across datasets as
reports/figures/00_at_a_glance.png and .pdf with its own captions.json, the whole
reports/figures directory atomically.

The figures themselves are pipelines/plots/catalog.py.
"""

from __future__ import annotations

from tqdm import tqdm

from pipelines.core import files, params, tables
from pipelines.core.errors import stage
from pipelines.core.results import FIGURES_DIR
from pipelines.plots import style as plotting
from pipelines.plots.catalog import FIGURES, HYPOTHESES
from pipelines.plots.evidence import TABLES, datasets, load_evidence
from pipelines.plots.glance import at_a_glance


@stage
def main() -> None:
    """Draw every figure of every dataset with results into a fresh reports/figures."""
    dpi = params.load().figures.dpi
    names = datasets()
    analysis = tables.read(TABLES)
    plotting.use_theme()
    with files.atomic_path(FIGURES_DIR) as out:
        for dataset in names:
            evidence = load_evidence(dataset, analysis)
            drawn = []
            for draw in tqdm(FIGURES, desc=f"figures {dataset}", unit="figure"):
                figure = draw(evidence)
                if figure is not None:
                    plotting.save(figure, out / dataset, dpi)
                    drawn.append(figure)
            plotting.write_captions(drawn, out / dataset, HYPOTHESES)
        glance = at_a_glance(analysis["verdicts"])
        plotting.save(glance, out, dpi)
        plotting.write_captions([glance], out, {})


if __name__ == "__main__":
    main()

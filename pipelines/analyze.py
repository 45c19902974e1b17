"""The analyze stage: hypotheses H1–H6 tested on every dataset, paired by seed, corrected, judged.

    python -m pipelines.analyze

Reads reports/results/<dataset>/runs.csv for every dataset in pipelines.core.params.DATASETS
(through pipelines.core.results.read_runs; a missing file is an error naming it), curves.csv
(the early-stopping baseline: each member's best-validation epoch), for H5 the final weights and
Adam's v̂ in models/<dataset>/ (weights.pt, adam_state.pt), and the params keys of analyze: (alpha,
accuracy_costs, margins, early_stopping).

Writes reports/tables/<name>.csv, .md and .tex for each table of pipelines/core/tables.py,
reports/metrics/<dataset>/<hypothesis>.json (the headline: outcome, effect, interval, replicates;
what `dvc metrics show` prints) and reports/summary.json (every number, pipelines/analysis/study.py),
nothing unless every dataset's results are valid. Where the method lives, in pipelines/analysis/:
  grid.py        runs.csv read and checked, configs paired by seed, optimizer groups, lost groups
  selection.py   selection on validation accuracy
  frontier.py    H1a/H1b's sparsity-accuracy frontiers, read at analyze.accuracy_costs
  plan.py        the kinds of test, the one function that runs them, the corrections (BH, Holm)
  hypotheses/    one module per hypothesis: its title, rule, tests and judge (HYPOTHESES)
  verdicts.py    the rule from checks to supported / contradicted / not shown / inconclusive
  study.py       one dataset's analysis, whole: its tables and its entry of summary.json
  inference.py   the paired statistics
  mechanism.py   H5: per-weight slopes of the shrinkage on log √v̂
  maps.py        H5: the learning-rate × strength maps (the runs of grid "map", which grid.py leaves out)
"""

from __future__ import annotations

from pipelines.analysis import maps
from pipelines.analysis.grid import load_grid
from pipelines.analysis.mechanism import Models
from pipelines.analysis.study import analyze_dataset, stack
from pipelines.core import params, results, tables
from pipelines.core.errors import stage
from pipelines.core.files import write_json
from pipelines.core.params import AnalyzeParams


def analyze(analysis_params: AnalyzeParams, datasets: tuple[str, ...] = params.DATASETS) -> None:
    """Analyse every dataset, then write the tables, the headlines and summary.json; nothing is written unless
    every dataset's results are valid."""
    grids = [
        load_grid(results.runs_path(dataset), dataset, results.curves_path(dataset), analysis_params.early_stopping)
        for dataset in datasets
    ]
    outputs = [
        analyze_dataset(grid, analysis_params, maps.cells(results.read_runs(grid.path)), Models.load(grid.dataset))
        for grid in grids
    ]
    stacked = stack([t for t, _ in outputs])
    tables.write(stacked, results.TABLES_DIR)
    tables.write_headlines(stacked["verdicts"], results.HEADLINES_DIR)
    write_json(results.SUMMARY_FILE, {grid.dataset: summary for grid, (_, summary) in zip(grids, outputs)})


@stage
def main() -> None:
    analyze(params.load().analyze)


if __name__ == "__main__":
    main()

"""Everything the report templates show, shaped from its inputs; citation metadata with it."""

from __future__ import annotations

import datetime
import re
from typing import Any

import numpy as np
import pandas as pd

from pipelines.core import params, provenance
from pipelines.core.results import main_grid
from pipelines.reporting.inputs import DISPLAY_NAMES, OWN_TABLES, SHOWN, Figure, Inputs, dataset_names
from pipelines.reporting.numbers import markdown_table, number


def build_context(
    study: params.Params, inputs: Inputs, origin: provenance.Provenance, today: datetime.date
) -> dict[str, Any]:
    """Everything the templates show, shaped; numbers stay numbers until `number` writes them."""
    names = dataset_names(inputs.metrics)
    tables = {name: _display(frame) for name, frame in inputs.tables.items()}
    comparisons = tables["comparisons"]
    return {
        "title": study.report.title,
        "authors": study.report.authors,
        "version": study.report.version,
        "date": today.isoformat(),
        "profile": study.profile,
        "report_id": origin.report_id,
        "datasets": [_dataset_view(d, inputs, tables) for d in names],
        "overview": inputs.overview,
        "hypotheses": _hypothesis_views(names, inputs, tables),
        "conventions": inputs.conventions,
        "level": 1 - study.analyze.alpha,
        "totals": {key: sum(inputs.summaries[d][key] for d in names) for key in ("members", "diverged", "seconds")},
        "unreachable": int((comparisons["can_reach_alpha"].astype(str).str.lower() != "true").sum()),
        "comparisons": len(comparisons),
        "provenance": origin,
        "citation_cff": citation_cff(study, origin, today),
        "bibtex": bibtex(study, origin, today),
    }


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """Join each low/high interval pair into one (low, high) column and rewrite ';'-lists of numbers."""
    for low in [c for c in frame.columns if c.endswith("ci_low")]:
        high, joined = low.replace("ci_low", "ci_high"), low.removesuffix("_low")
        frame = frame.assign(**{joined: list(zip(frame[low], frame[high]))})
    for column in ("levels", "level_means"):
        if column in frame.columns:
            frame = frame.assign(**{column: [_listed(v) for v in frame[column]]})
    return frame


def _listed(value: Any) -> str:
    """'0;0.001;0.01' as '0 → 0.001 → 0.01', each number written by `number`."""
    if not isinstance(value, str):
        return number(value)
    return " → ".join(number(float(part)) for part in value.split(";"))


def _rows(frame: pd.DataFrame, **where: str) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in where.items():
        mask &= (frame[column] == value).to_numpy()
    return frame.loc[mask]


def _dataset_view(dataset: str, inputs: Inputs, tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    runs = inputs.runs[dataset]
    ranking = _rows(tables["ranking"], dataset=dataset).sort_values(["optimizer", "mean_rank"])
    return {
        "key": dataset,
        "name": DISPLAY_NAMES.get(dataset, dataset),
        "metrics": inputs.metrics[dataset],
        "summary": inputs.summaries[dataset],
        "prepared": inputs.prepared[dataset],
        "network": runs.iloc[0][["hidden", "activation", "epochs", "batch_size"]].to_dict(),
        "seeds": sorted(runs["seed"].unique().tolist()),
        "grid": _grid(main_grid(runs)),
        "map_members": int((runs["grid"] == "map").sum()),
        "selected": markdown_table(_rows(tables["selected"], dataset=dataset), SHOWN["selected"]),
        "ranking": markdown_table(ranking, SHOWN["ranking"]),
        "exclusions": markdown_table(_diverged(_rows(tables["exclusions"], dataset=dataset)), SHOWN["exclusions"]),
        "margins": markdown_table(_rows(tables["margins"], dataset=dataset), SHOWN["margins"]),
        # The appendix: every figure that is not the one figure of a hypothesis' section.
        "figures": [f for f in inputs.figures[dataset] if f not in _section_figures(inputs.figures[dataset])],
    }


def _section_figures(figures: list[Figure]) -> list[Figure]:
    """Each hypothesis' one figure: the first that names it first."""
    first: dict[str, Figure] = {}
    for f in figures:
        if f.hypotheses:
            first.setdefault(f.hypotheses[0], f)
    return list(first.values())


def _diverged(exclusions: pd.DataFrame) -> pd.DataFrame:
    return exclusions.loc[pd.to_numeric(exclusions["diverged"]) > 0]


def _grid(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per (optimizer, family): its learning rate, strengths and how many configurations and networks."""
    return [
        {
            "optimizer": optimizer,
            "family": family,
            "lr": group["lr"].iloc[0],
            "strengths": sorted(group["strength"].unique().tolist()),
            "configs": group["config"].nunique(),
            "members": len(group),
        }
        for (optimizer, family), group in runs.groupby(["optimizer", "family"], sort=True)
    ]


def _hypothesis_views(names: list[str], inputs: Inputs, tables: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    verdicts = tables["verdicts"]
    # Natural order, so that H10 would follow H9.
    hypotheses = sorted(
        verdicts["hypothesis"].unique(),
        key=lambda h: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(h))],
    )
    views = []
    for hypothesis in hypotheses:
        rows = _rows(verdicts, hypothesis=hypothesis)
        per_dataset = []
        for dataset in names:
            verdict = _rows(rows, dataset=dataset)
            if verdict.empty:
                continue
            where = {"dataset": dataset, "hypothesis": hypothesis}
            comparisons = _rows(tables["comparisons"], **where)
            per_dataset.append(
                {
                    "name": DISPLAY_NAMES.get(dataset, dataset),
                    # An empty finding is read back from the CSV as NaN: the hypothesis has none.
                    "verdict": verdict.iloc[0].fillna({"finding": ""}).to_dict(),
                    **{
                        name: markdown_table(_rows(tables[name], **where), SHOWN[name])
                        for name in ("comparisons", "trends", "equivalence")
                    },
                    "judged": markdown_table(_rows(comparisons, role="judged"), SHOWN["judged"]),
                    # A figure is drawn once, in the first section it names; the others refer to it.
                    "own_tables": [
                        (what, markdown_table(_rows(tables[name], dataset=dataset), SHOWN[name]))
                        for name, what in OWN_TABLES.get(hypothesis, {}).items()
                    ],
                    "figures": [f for f in _section_figures(inputs.figures[dataset]) if f.hypotheses[0] == hypothesis],
                    "see_also": [f for f in inputs.figures[dataset] if hypothesis in f.hypotheses],
                    "appendix_figures": [
                        f for f in inputs.figures[dataset] if f not in _section_figures(inputs.figures[dataset])
                    ],
                }
            )
        views.append({"id": hypothesis, "title": rows.iloc[0]["title"], "datasets": per_dataset})
    return views


def citation_cff(study: params.Params, origin: provenance.Provenance, today: datetime.date) -> dict[str, Any]:
    """CITATION.cff data for this report: its version, date and report id."""
    cff: dict[str, Any] = {
        "cff-version": "1.2.0",
        "message": "If you use these results, please cite this report by its version and report id.",
        "type": "software",
        "title": study.report.title,
        "authors": [{"name": name} for name in study.report.authors],
        "version": study.report.version,
        "date-released": today.isoformat(),
        "identifiers": [
            {
                "type": "other",
                "value": f"regbench-report-{origin.report_id}",
                "description": "report id: sha256 of the dvc.lock hashes of every upstream stage "
                "and of the effective params (first 12 hex digits)",
            }
        ],
    }
    if origin.git.commit:
        cff["commit"] = origin.git.commit
    return cff


def bibtex(study: params.Params, origin: provenance.Provenance, today: datetime.date) -> str:
    """A @techreport entry; the title and each author in braces so that BibTeX keeps their case and wholeness."""
    fields = {
        "title": "{" + study.report.title + "}",
        "author": " and ".join("{" + name + "}" for name in study.report.authors),
        "institution": "regbench",
        "type": "Benchmark report",
        "number": origin.report_id,
        "year": str(today.year),
        "note": f"Version {study.report.version}, report id {origin.report_id}"
        + (f", git commit {origin.git.commit}" if origin.git.commit else ""),
    }
    body = ",\n".join(f"  {key:<11} = {{{value}}}" for key, value in fields.items())
    return f"@techreport{{regbench-{origin.report_id},\n{body}\n}}"

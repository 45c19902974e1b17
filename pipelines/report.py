"""The report stage: reports/report.md and a self-contained reports/report.html.

    python -m pipelines.report

Every number in the report is read from a file an earlier stage wrote (metrics.json and the
tables of analyze, the captions of figures, the training summaries, the prepared-data metadata,
dvc.lock) and written by `number`. One Markdown template holds the content; the HTML is that
Markdown converted, with the figures embedded as data URIs so that the file stands alone.
"""

from __future__ import annotations

import base64
import datetime
import io
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import markdown
import numpy as np
import pandas as pd
import yaml
from PIL import Image

from pipelines import datasets, files, params, provenance, results
from pipelines.errors import DataError, ParamsError, stage

REPORT_MD = Path("reports/report.md")
REPORT_HTML = Path("reports/report.html")
TEMPLATES_DIR = Path(__file__).parent / "templates"

DISPLAY_NAMES = {"fashion_mnist": "Fashion-MNIST", "diabetes": "Pima Indians diabetes"}
METRICS_KEYS = ("members", "diverged", "baseline_test_acc", "best_family", "best_test_acc")
SUMMARY_KEYS = ("device", "device_name", "torch", "cuda", "seconds", "members", "diverged", "profile",
                "experiment_name", "experiment_id", "parent_run_id")
PREPARED_KEYS = ("split_sizes", "class_names", "feature_names", "source_sha256")

# The columns of analyze's tables that the report reads.
TABLE_COLUMNS = {
    "comparisons": ["dataset", "hypothesis", "scope", "metric", "a", "b", "optimizer", "n", "mean_a", "mean_b",
                    "mean_diff", "ci_low", "ci_high", "wilcoxon_p", "holm_p", "bh_p", "cohens_dz", "p_a_beats_b",
                    "can_reach_alpha"],
    "selected": ["dataset", "optimizer", "family", "config", "strength", "val_acc_mean", "test_acc_mean",
                 "test_acc_ci_low", "test_acc_ci_high", "n_seeds", "n_diverged"],
    "ranking": ["dataset", "optimizer", "family", "config", "mean_rank", "friedman_statistic", "friedman_p",
                "n_seeds"],
    "trends": ["dataset", "hypothesis", "optimizer", "family", "metric", "levels", "level_means", "page_L",
               "page_p", "bh_p", "n_seeds", "monotone"],
    "equivalence": ["dataset", "hypothesis", "optimizer", "a", "b", "metric", "margin", "mean_diff", "tost_p",
                    "equivalent"],
    "exclusions": ["dataset", "config", "members", "diverged"],
    "verdicts": ["dataset", "hypothesis", "title", "verdict", "rule", "evidence"],
}
# What each table of the report shows, {column: header}; "ci" joins a low/high pair (see _display).
SHOWN = {
    "comparisons": {"scope": "scope", "metric": "metric", "a": "a", "b": "b", "n": "n", "mean_a": "mean a",
                    "mean_b": "mean b", "mean_diff": "a − b", "ci": "CI of a − b", "wilcoxon_p": "p (Wilcoxon)",
                    "bh_p": "p (BH)", "holm_p": "p (Holm)", "cohens_dz": "d_z", "p_a_beats_b": "P(a > b)"},
    "selected": {"optimizer": "optimizer", "family": "family", "config": "configuration", "strength": "strength",
                 "val_acc_mean": "val acc", "test_acc_mean": "test acc", "test_acc_ci": "CI of test acc",
                 "n_seeds": "seeds", "n_diverged": "diverged"},
    "ranking": {"optimizer": "optimizer", "family": "family", "config": "configuration", "mean_rank": "mean rank",
                "friedman_p": "p (Friedman)", "n_seeds": "seeds"},
    "trends": {"optimizer": "optimizer", "family": "family", "metric": "metric", "levels": "strengths",
               "level_means": "means", "page_L": "Page L", "page_p": "p (Page)", "bh_p": "p (BH)",
               "n_seeds": "seeds", "monotone": "monotone"},
    "equivalence": {"optimizer": "optimizer", "a": "a", "b": "b", "metric": "metric", "margin": "margin",
                    "mean_diff": "a − b", "tost_p": "p (TOST)", "equivalent": "equivalent"},
    "exclusions": {"config": "configuration", "members": "members", "diverged": "diverged"},
}


def number(value: Any) -> str:
    """The one way the report writes a number: 3 significant digits, scientific notation below 0.001."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if x == 0:
            return "0"
        if abs(x) < 1e-3:
            return f"{x:.2e}"
        return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.3g}"
    return str(value)


def markdown_table(frame: pd.DataFrame, columns: dict[str, str]) -> str:
    """A Markdown table of `columns` ({column: header}), every cell written by `number`; "" for no rows."""
    if frame.empty:
        return ""
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for row in frame.to_dict("records"):
        cells = (number(row[c]).replace("|", "\\|").replace("\n", " ") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Figure:
    dataset: str
    name: str  # "<nn>_<name>", as in captions.json; captions refer to figures by <nn>
    title: str
    caption: str
    path: Path
    hypotheses: tuple[str, ...]  # the sections it belongs to; none: the Figures section

    @property
    def label(self) -> str:
        return self.name.split("_", 1)[0]


@dataclass(frozen=True)
class Inputs:
    """Everything the report reads, and the files it came from (hashed when there is no dvc.lock)."""

    metrics: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    figures: dict[str, list[Figure]]
    summaries: dict[str, dict[str, Any]]
    runs: dict[str, pd.DataFrame]
    prepared: dict[str, dict[str, Any]]
    conventions: str
    files: list[Path]


def read_inputs(params_file: Path = params.PARAMS_FILE) -> Inputs:
    """Read and check every input; a missing or malformed one raises DataError naming the file."""
    metrics = _read_json(results.METRICS_FILE, "analyze")
    names = dataset_names(metrics)
    table_files = {name: results.TABLES_DIR / f"{name}.csv" for name in TABLE_COLUMNS}
    prepared_files = {d: datasets.prepared_paths(d)[1] for d in names}
    drawn = {d: _read_figures(results.FIGURES_DIR / d, d) for d in names}
    return Inputs(
        metrics=metrics,
        tables={name: results.read_table(path, TABLE_COLUMNS[name], "analyze") for name, path in table_files.items()},
        figures=drawn,
        summaries={d: _read_keys(results.summary_path(d), "train", SUMMARY_KEYS) for d in names},
        runs={d: results.read_runs(results.runs_path(d)) for d in names},
        prepared={d: _read_keys(path, "prepare", PREPARED_KEYS) for d, path in prepared_files.items()},
        conventions=strength_conventions(params_file),
        files=[results.METRICS_FILE, params_file, *table_files.values(), *prepared_files.values(),
               *(results.summary_path(d) for d in names), *(results.runs_path(d) for d in names),
               *(results.FIGURES_DIR / d / "captions.json" for d in names),
               *(f.path for listed in drawn.values() for f in listed)],
    )


def _read_json(path: Path, producer: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run the {producer} stage first (dvc repro)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None


def _read_keys(path: Path, producer: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """A JSON object that must hold `keys`; the error names the file and the missing ones."""
    value = _read_json(path, producer)
    missing = [k for k in keys if not isinstance(value, dict) or k not in value]
    if missing:
        raise DataError(f"{path}: missing keys {missing}; expected {list(keys)} from the {producer} stage")
    return value


def dataset_names(metrics: Any) -> list[str]:
    """The datasets metrics.json covers, in the order of params.DATASETS, each checked for its headline keys."""
    if not isinstance(metrics, dict) or not metrics:
        raise DataError(f"{results.METRICS_FILE}: found {str(metrics)[:60]!r}; "
                        "expected a mapping of dataset to metrics")
    for dataset, entry in metrics.items():
        missing = [k for k in METRICS_KEYS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise DataError(f"{results.METRICS_FILE}: {dataset}: missing keys {missing}; expected {list(METRICS_KEYS)}")
    order = {name: i for i, name in enumerate(params.DATASETS)}
    return sorted(metrics, key=lambda d: (order.get(d, len(order)), d))


def _read_figures(folder: Path, dataset: str) -> list[Figure]:
    path = folder / "captions.json"
    captions = _read_json(path, "figures")
    if not isinstance(captions, dict):
        raise DataError(f"{path}: found {type(captions).__name__}; expected a mapping of figure name to caption")
    drawn = []
    for name, entry in sorted(captions.items()):
        if not isinstance(entry, dict) or not {"title", "caption"} <= entry.keys():
            raise DataError(f"{path}: {name}: found {str(entry)[:80]!r}; expected a title and a caption")
        image = folder / f"{name}.png"
        if not image.is_file():
            raise DataError(f"{image}: not found, yet {path} lists it; run the figures stage again")
        drawn.append(Figure(dataset, name, entry["title"], entry["caption"], image,
                            tuple(entry.get("hypotheses", ()))))
    return drawn


def strength_conventions(path: Path = params.PARAMS_FILE) -> str:
    """The comment block that heads params.yaml from 'Strength conventions' on, without the '#'."""
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("#") and "Strength conventions" in line), None)
    if start is None:
        raise ParamsError(f"{path}: found no '# Strength conventions' comment block; expected one heading the file")
    block = itertools.takewhile(lambda line: line.startswith("#"), lines[start:])
    return "\n".join(line.removeprefix("#").removeprefix(" ") for line in block)


def build_context(config: params.Params, inputs: Inputs, origin: provenance.Provenance,
                  today: datetime.date) -> dict[str, Any]:
    """Everything the templates show, shaped; numbers stay numbers until `number` writes them."""
    names = dataset_names(inputs.metrics)
    tables = {name: _display(frame) for name, frame in inputs.tables.items()}
    comparisons = tables["comparisons"]
    return {
        "title": config.report.title, "authors": config.report.authors, "version": config.report.version,
        "date": today.isoformat(), "profile": config.profile, "report_id": origin.report_id,
        "datasets": [_dataset_view(d, inputs, tables) for d in names],
        "hypotheses": _hypothesis_views(names, inputs, tables),
        "conventions": inputs.conventions,
        "intervals": {"level": 1 - config.analyze.alpha, "resamples": config.analyze.bootstrap_resamples},
        "totals": {key: sum(inputs.summaries[d][key] for d in names) for key in ("members", "diverged", "seconds")},
        "unreachable": int((comparisons["can_reach_alpha"].astype(str).str.lower() != "true").sum()),
        "comparisons": len(comparisons),
        "provenance": origin,
        "citation_cff": citation_cff(config, origin, today),
        "bibtex": bibtex(config, origin, today),
    }


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """Join each low/high interval pair into one '[low, high]' column and rewrite ';'-lists of numbers."""
    for low in [c for c in frame.columns if c.endswith("ci_low")]:
        high, joined = low.replace("ci_low", "ci_high"), low.removesuffix("_low")
        frame = frame.assign(**{joined: [f"[{number(a)}, {number(b)}]" for a, b in zip(frame[low], frame[high])]})
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
        "key": dataset, "name": DISPLAY_NAMES.get(dataset, dataset),
        "metrics": inputs.metrics[dataset], "summary": inputs.summaries[dataset],
        "prepared": inputs.prepared[dataset],
        "network": runs.iloc[0][["hidden", "activation", "epochs", "batch_size"]].to_dict(),
        "seeds": sorted(runs["seed"].unique().tolist()),
        "grid": _grid(runs),
        "selected": markdown_table(_rows(tables["selected"], dataset=dataset), SHOWN["selected"]),
        "ranking": markdown_table(ranking, SHOWN["ranking"]),
        "exclusions": markdown_table(_diverged(_rows(tables["exclusions"], dataset=dataset)), SHOWN["exclusions"]),
        "figures": [f for f in inputs.figures[dataset] if not f.hypotheses],
    }


def _diverged(exclusions: pd.DataFrame) -> pd.DataFrame:
    return exclusions.loc[pd.to_numeric(exclusions["diverged"]) > 0]


def _grid(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per (optimizer, family): its learning rate, strengths and how many configurations and networks."""
    return [{"optimizer": optimizer, "family": family, "lr": group["lr"].iloc[0],
             "strengths": sorted(group["strength"].unique().tolist()),
             "configs": group["config"].nunique(), "members": len(group)}
            for (optimizer, family), group in runs.groupby(["optimizer", "family"], sort=True)]


def _hypothesis_views(names: list[str], inputs: Inputs, tables: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    verdicts = tables["verdicts"]
    # Natural order, so that H10 would follow H9.
    hypotheses = sorted(verdicts["hypothesis"].unique(),
                        key=lambda h: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(h))])
    views = []
    for hypothesis in hypotheses:
        rows = _rows(verdicts, hypothesis=hypothesis)
        per_dataset = []
        for dataset in names:
            verdict = _rows(rows, dataset=dataset)
            if verdict.empty:
                continue
            where = {"dataset": dataset, "hypothesis": hypothesis}
            per_dataset.append({
                "name": DISPLAY_NAMES.get(dataset, dataset), "verdict": verdict.iloc[0].to_dict(),
                **{name: markdown_table(_rows(tables[name], **where), SHOWN[name])
                   for name in ("comparisons", "trends", "equivalence")},
                # A figure is drawn once, in the first section it names; the others refer to it.
                "figures": [f for f in inputs.figures[dataset] if f.hypotheses[:1] == (hypothesis,)],
                "see_also": [f for f in inputs.figures[dataset] if hypothesis in f.hypotheses[1:]],
            })
        views.append({"id": hypothesis, "title": rows.iloc[0]["title"], "datasets": per_dataset})
    return views


def citation_cff(config: params.Params, origin: provenance.Provenance, today: datetime.date) -> dict[str, Any]:
    """CITATION.cff data for this report: its version, date and report id."""
    cff: dict[str, Any] = {
        "cff-version": "1.2.0",
        "message": "If you use these results, please cite this report by its version and report id.",
        "type": "software",
        "title": config.report.title,
        "authors": [{"name": name} for name in config.report.authors],
        "version": config.report.version,
        "date-released": today.isoformat(),
        "identifiers": [{"type": "other", "value": f"regbench-report-{origin.report_id}",
                         "description": "report id: sha256 of the dvc.lock hashes of every upstream stage "
                                        "and of the effective params (first 12 hex digits)"}],
    }
    if origin.git.commit:
        cff["commit"] = origin.git.commit
    return cff


def bibtex(config: params.Params, origin: provenance.Provenance, today: datetime.date) -> str:
    """A @techreport entry; the title and each author in braces so that BibTeX keeps their case and wholeness."""
    fields = {
        "title": "{" + config.report.title + "}",
        "author": " and ".join("{" + name + "}" for name in config.report.authors),
        "institution": "regbench",
        "type": "Benchmark report",
        "number": origin.report_id,
        "year": str(today.year),
        "note": f"Version {config.report.version}, report id {origin.report_id}"
                + (f", git commit {origin.git.commit}" if origin.git.commit else ""),
    }
    body = ",\n".join(f"  {key:<11} = {{{value}}}" for key, value in fields.items())
    return f"@techreport{{regbench-{origin.report_id},\n{body}\n}}"


def render(context: dict[str, Any]) -> tuple[str, str]:
    """(Markdown, HTML) of the report: one content template, the HTML with its figures embedded."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(["html.j2"]),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["num"] = number
    env.filters["yaml"] = lambda value: yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
    content = env.get_template("report.md.j2")
    text = content.render(context, figure_src=lambda f: f.path.relative_to(REPORT_MD.parent).as_posix())
    embedded = content.render(context, figure_src=_data_uri)
    # The contents list the sections only: per-dataset subsections would double its length on a phone.
    converter = markdown.Markdown(extensions=["tables", "toc", "fenced_code"],
                                  extension_configs={"toc": {"toc_depth": "2-2"}})
    body = converter.convert(embedded)
    html = env.get_template("report.html.j2").render(context, body=body, toc=converter.toc)
    return text, html


# Embedded figures are reduced to a 64-colour palette: line plots and colour maps stay sharp and the
# HTML stays small enough for git and phones. The full-colour PNGs and vector PDFs stay in
# reports/figures/.
_EMBED_COLOURS = 64


def _data_uri(figure: Figure) -> str:
    with Image.open(figure.path) as image:
        buffer = io.BytesIO()
        image.convert("RGB").quantize(colors=_EMBED_COLOURS, method=Image.Quantize.MEDIANCUT).save(
            buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@stage
def main() -> None:
    config = params.load()
    inputs = read_inputs()
    origin = provenance.collect(config, inputs.files)
    text, html = render(build_context(config, inputs, origin, datetime.datetime.now(datetime.UTC).date()))
    # Both are rendered before either is written, so a failure while rendering leaves the old report.
    files.write_text(REPORT_MD, text)
    files.write_text(REPORT_HTML, html)
    print(f"report {origin.report_id}: {REPORT_MD}, {REPORT_HTML}")


if __name__ == "__main__":
    main()

"""The report stage: every number traceable to the analysis, atomic writes, a self-contained HTML.

Two kinds of input: small hand-made analysis tables (fast), and the real chain — synthetic
results, then the real analyze and figures stages, then the report (slow).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import subprocess
import sys
from contextlib import chdir
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines import report
from pipelines.core import results
from pipelines.core.tables import COLUMNS as TABLE_COLUMNS
from pipelines.core.tables import write_headlines
from pipelines.data import datasets
from pipelines.reporting import inputs, markup, numbers, render

import synthetic

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[1]
DATASETS = {"fashion_mnist": {"inputs": 784, "classes": 10}, "diabetes": {}}
HYPOTHESES = ("H1", "H2", "H3", "H4", "H5", "H6")


# --- inputs -------------------------------------------------------------------------------------


def _summary(dataset: str, runs: pd.DataFrame) -> dict:
    return {
        "device": "cpu",
        "device_name": "synthetic CPU",
        "torch": "2.14.1",
        "cuda": None,
        "seconds": 12.5 + len(dataset),
        "members": len(runs),
        "diverged": int((runs["status"] == "diverged").sum()),
        "profile": "smoke",
        "experiment_name": f"regbench-{dataset}",
        "experiment_id": "7",
        "parent_run_id": f"parent{dataset}",
    }


def _prepared(dataset: str) -> dict:
    """The keys of data/prepared/<dataset>.json that the report reads, as pipelines/prepare.py writes them."""
    classes = [f"class {i}" for i in range(DATASETS[dataset].get("classes", 2))]
    features = [f"x{i}" for i in range(DATASETS[dataset].get("inputs", 8))]
    return {
        "dataset": dataset,
        "splits": 10 if dataset == "diabetes" else 1,
        "split_sizes": {"train": 600, "val": 150, "test": 180},
        "class_names": classes,
        "feature_names": features,
        "source_sha256": {f"{dataset}.raw": "ab" * 32},
    }


def write_results(root: Path, seeds: int) -> None:
    """What train and prepare leave behind: results tables, summaries and prepared metadata."""
    for seed, (dataset, shape) in enumerate(DATASETS.items()):
        runs, _ = synthetic.write_results(root, dataset, seeds=seeds, seed=seed, **shape)
        (root / results.summary_path(dataset)).write_text(json.dumps(_summary(dataset, runs)))
        prepared = root / datasets.prepared_paths(dataset)[1]
        prepared.parent.mkdir(parents=True, exist_ok=True)
        prepared.write_text(json.dumps(_prepared(dataset)))


def _analysis(runs: pd.DataFrame, dataset: str, rng: np.random.Generator) -> tuple[dict, dict[str, list[dict]]]:
    """Hand-made analysis tables with the columns the report reads, consistent with summary.json."""
    grouped = runs.assign(optimizer=runs["optimizer"].map(results.group_of))  # adamw in adam, sgdw in sgd
    means = grouped.groupby(["optimizer", "family", "config"], as_index=False).agg(
        strength=("strength", "first"),
        val_acc_mean=("val_acc", "mean"),
        test_acc_mean=("test_acc", "mean"),
        n_seeds=("seed", "nunique"),
    )
    selected = means.loc[means.groupby(["optimizer", "family"])["val_acc_mean"].idxmax()].assign(
        dataset=dataset,
        test_acc_ci_low=lambda f: f["test_acc_mean"] - 0.01,
        test_acc_ci_high=lambda f: f["test_acc_mean"] + 0.01,
        n_diverged=0,
    )
    ranking = selected.assign(
        mean_rank=rng.uniform(1, len(selected), len(selected)), friedman_statistic=42.5, friedman_p=3.2e-6
    )
    networks = selected[selected["family"] != results.LINEAR]
    best = networks.loc[networks["val_acc_mean"].idxmax()]
    baseline = selected.loc[(selected["family"] == "none") & (selected["optimizer"] == best["optimizer"])].iloc[0]
    references = selected[selected["family"] == results.LINEAR].set_index("optimizer")
    tables: dict[str, list[dict]] = {name: [] for name in TABLE_COLUMNS}
    tables["selected"] = selected.to_dict("records")
    tables["ranking"] = ranking.to_dict("records")
    metrics = {
        "members": int((runs["grid"] == "main").sum()),
        "diverged": 0,
        "baseline_test_acc": float(baseline["test_acc_mean"]),
        "best_family": best["family"],
        "best_optimizer": best["optimizer"],
        "best_test_acc": float(best["test_acc_mean"]),
        "linear": {
            group: {
                "test_acc": float(reference["test_acc_mean"]),
                "best_network": best["config"],
                "best_network_test_acc": float(best["test_acc_mean"]),
                "minus_best_network": float(reference["test_acc_mean"] - best["test_acc_mean"]),
                "ci_low": float(reference["test_acc_mean"] - best["test_acc_mean"]) - 0.01,
                "ci_high": float(reference["test_acc_mean"] - best["test_acc_mean"]) + 0.01,
                "wilcoxon_p": 0.002,
                "n_seeds": int(reference["n_seeds"]),
                "reading": "the network is better",
            }
            for group, reference in references.iterrows()
        },
    }
    for i, hypothesis in enumerate(HYPOTHESES):
        verdict = ("supported", "contradicted", "not shown", "inconclusive")[i % 4]
        metrics[hypothesis] = {"verdict": verdict}
        tables["verdicts"].append(
            {
                "dataset": dataset,
                "hypothesis": hypothesis,
                "title": f"claim number {i + 1}",
                "finding": "" if i % 2 else f"Claim {i + 1} moves by +0.1 (95% interval +0.05 to +0.15, 10 seeds).",
                "verdict": verdict,
                "rule": "Wilcoxon p < 0.05.",
                "evidence": "see the table",
                # One hypothesis without a headline effect (as H6 without a bias ablation).
                **({"measure": "", "n": 0} if i == 5 else {"measure": f"adam: measure {i} at λ=0.01", "n": 10}),
                "effect": math.nan if i == 5 else float(rng.uniform(-0.2, 0.2)),
                "ci_low": math.nan if i == 5 else -0.25,
                "ci_high": math.nan if i == 5 else 0.25,
            }
        )
        p = float(rng.uniform(1e-6, 0.2))
        tables["comparisons"].append(
            {
                "dataset": dataset,
                "hypothesis": hypothesis,
                "scope": "selected",
                "metric": "test_acc",
                "a": "adam/l2",
                "b": "adam/none",
                "optimizer": "adam",
                "n": 10,
                "mean_a": 0.85,
                "mean_b": 0.84,
                "mean_diff": 0.01,
                "ci_low": 0.004,
                "ci_high": 0.016,
                "wilcoxon_p": p,
                "holm_p": p,
                "role": "judged",
                "min_attainable_p": 0.00195,
                "cohens_dz": 1.2,
                "p_a_beats_b": 0.9,
                "can_reach_alpha": i != 5,
            }
        )
        tables["trends"].append(
            {
                "dataset": dataset,
                "hypothesis": hypothesis,
                "optimizer": "adam",
                "family": "l1",
                "metric": "exact_zeros",
                "levels": "0;0.001;0.01",
                "level_means": "0;0.2;0.5",
                "page_L": 140.0,
                "page_p": 1e-5,
                "min_attainable_p": 1e-9,
                "n_seeds": 10,
                "monotone": True,
            }
        )
        tables["equivalence"].append(
            {
                "dataset": dataset,
                "hypothesis": hypothesis,
                "optimizer": "sgd",
                "a": "sgd/l2",
                "b": "sgd/weight_decay",
                "metric": "test_acc",
                "margin": 0.01,
                "mean_diff": 0.0004,
                "tost_p": 2e-4,
                "equivalent": True,
            }
        )
    tables["exclusions"] += [
        {"dataset": dataset, "config": "adam/l1/l1=0.01", "members": 4, "diverged": 2},
        {"dataset": dataset, "config": "adam/l2/l2=0.01", "members": 4, "diverged": 0},
    ]
    return metrics, tables


def _figures(folder: Path, dataset: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    captions = {}
    for n, name in enumerate(("sparsity", "gap"), start=1):
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.plot([0, 1, 2], [n, n + 1, n * 3])
        fig.savefig(folder / f"{n:02d}_{name}.png", dpi=60)
        plt.close(fig)
        captions[f"{n:02d}_{name}"] = {
            "title": f"The {name} of {dataset}",
            "caption": f"What {name} shows.",
            **({"hypotheses": ["H1", "H2"]} if name == "sparsity" else {}),
        }
    (folder / "captions.json").write_text(json.dumps(captions))


def _overview(folder: Path) -> None:
    """The figure across datasets, as the figures stage draws it at the top of reports/figures."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [1, 0])
    fig.savefig(folder / "00_at_a_glance.png", dpi=60)
    plt.close(fig)
    captions = {"00_at_a_glance": {"title": "The study at a glance", "caption": "Every headline effect."}}
    (folder / "captions.json").write_text(json.dumps(captions))


def write_handmade_analysis(root: Path) -> None:
    """summary.json, the headlines, the tables and figures with captions, as analyze and figures would write them."""
    rng = np.random.default_rng(0)
    metrics: dict = {}
    tables: dict[str, list[dict]] = {name: [] for name in TABLE_COLUMNS}
    for dataset in DATASETS:
        runs = results.read_runs(results.runs_path(dataset, root / results.RESULTS_DIR))
        metrics[dataset], dataset_tables = _analysis(runs, dataset, rng)
        for name, rows in dataset_tables.items():
            tables[name] += rows
        _figures(root / results.FIGURES_DIR / dataset, dataset)
    _overview(root / results.FIGURES_DIR)
    (root / results.TABLES_DIR).mkdir(parents=True)
    for name, rows in tables.items():
        pd.DataFrame(rows, columns=TABLE_COLUMNS[name]).to_csv(root / results.TABLES_DIR / f"{name}.csv", index=False)
    (root / results.SUMMARY_FILE).write_text(json.dumps(metrics))
    with chdir(root):
        write_headlines(pd.DataFrame(tables["verdicts"], columns=TABLE_COLUMNS["verdicts"]))


def run_stage(stage: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", f"pipelines.{stage}"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def handmade(workdir: Path) -> Path:
    """conftest's working directory with results and hand-made analysis outputs, and no report yet."""
    write_results(workdir, seeds=4)
    write_handmade_analysis(workdir)
    return workdir


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic results run through the real analyze, figures and report stages."""
    root = tmp_path_factory.mktemp("chain")
    write_results(root, seeds=10)
    (root / "params.yaml").write_text((REPO / "params.yaml").read_text())
    # The smallest dpi the schema allows: the figures stage is the slow part. Edited as text, so the
    # comments that head params.yaml (the report copies them) stay.
    params_file = root / "params.yaml"
    params_file.write_text(re.sub(r"(?m)^  dpi: \d+$", "  dpi: 50", params_file.read_text()))
    for stage in ("analyze", "figures", "report"):
        done = run_stage(stage, root)
        assert done.returncode == 0, f"{stage} failed: {done.stderr[-2000:]}"
    return root


@pytest.fixture(params=["handmade", pytest.param("chain", marks=pytest.mark.slow)])
def rendered(request: pytest.FixtureRequest) -> Path:
    """A directory holding a rendered report and everything it was made from."""
    if request.param == "chain":
        return request.getfixturevalue("chain")
    root = request.getfixturevalue("handmade")
    report.main()
    return root


def section(text: str, heading: str) -> str:
    """The Markdown between `## heading` and the next level-2 heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, f"no section '## {heading}' in the report"
    return match.group(1)


def close(shown: str, value: float) -> bool:
    """A number as the report writes it (3 significant digits) matches the value it came from."""
    return math.isclose(float(shown), value, rel_tol=5e-3, abs_tol=1e-12)


# --- content ------------------------------------------------------------------------------------


def test_number_writes_small_values_in_scientific_notation() -> None:
    assert numbers.number(3.2e-6) == "3.20e-06"
    assert numbers.number(0.04567) == "0.0457"
    assert numbers.number(0.8523) == "0.852"
    assert numbers.number(1234.56) == "1235"
    assert numbers.number(np.int64(10)) == "10"
    assert numbers.number(float("nan")) == "n/a"
    assert numbers.number(np.bool_(True)) == "yes"


def test_abstract_numbers_equal_the_metrics(rendered: Path) -> None:
    """Every number of the abstract: the totals and best families from summary.json, each verdict
    and its headline effect, interval and seeds from reports/metrics/<dataset>/<hypothesis>.json."""
    text = (rendered / render.REPORT_MD).read_text()
    metrics = json.loads((rendered / results.SUMMARY_FILE).read_text())
    abstract = section(text, "Abstract")
    mapped_total = 0
    for dataset, m in metrics.items():
        name = inputs.DISPLAY_NAMES[dataset]
        match = re.search(
            rf"\*\*{re.escape(name)}\*\*: (\S+) networks in the main grid(?: and (\S+) in H5's learning-rate "
            r"maps)?(?: plus (\S+) linear references)?, (\S+) of the main grid diverged;\s+the best trained family "
            r"on validation, `(\w+)`, reaches a mean test accuracy of\s+(\S+), against (\S+) for the "
            r"unregularized\s+baseline of the same optimizer(?:, and\s+(\S+) for its linear reference[\s\S]*?\))?\.\n",
            abstract,
        )
        assert match, f"no headline for {name} in the abstract:\n{abstract}"
        members, mapped, linear, diverged, best_family, best, baseline, reference = match.groups()
        assert int(members) == m["members"] and int(diverged) == m["diverged"]
        runs = pd.read_csv(results.runs_path(dataset, rendered / results.RESULTS_DIR))
        assert int(mapped or 0) == int((runs.get("grid", pd.Series(dtype=str)) == "map").sum())
        mapped_total += int(mapped or 0) + int(linear or 0)
        assert int(linear or 0) == int((runs.get("grid", pd.Series(dtype=str)) == results.LINEAR).sum())
        if m.get("linear", {}).get(m.get("best_optimizer")):
            assert reference and close(reference, m["linear"][m["best_optimizer"]]["test_acc"])
        assert close(baseline, m["baseline_test_acc"]) and close(best, m["best_test_acc"])
        assert best_family == m["best_family"]
        headlines = sorted((rendered / results.HEADLINES_DIR / dataset).glob("*.json"))
        assert headlines, f"no headline files for {dataset}"
        for path in headlines:
            hypothesis, headline = path.stem, json.loads(path.read_text())
            assert m[hypothesis]["verdict"] == headline["outcome"]
            line = re.search(
                rf"^- \*\*{hypothesis}\*\* — [^\n]*\n(?:  - [^\n]*\n)*?  - {re.escape(name)}: \*\*([^*]+)\*\*(.*)$",
                abstract,
                flags=re.M,
            )
            assert line and line.group(1) == headline["outcome"], f"{hypothesis} on {name}"
            effect = re.search(r": (\S+)(?: \[(\S+), (\S+)\])?, (\d+) seeds\.$", line.group(2))
            if not headline["n"]:
                assert line.group(2) == ".", f"{hypothesis} on {name}: no headline effect, yet {line.group(2)!r}"
                continue
            assert effect, f"{hypothesis} on {name}: no effect in {line.group(2)!r}"
            shown, low, high, n = effect.groups()
            assert close(shown, headline["effect"]) and int(n) == headline["n"]
            assert close(low, headline["ci_low"]) and close(high, headline["ci_high"])
        tested = re.search(r"tested\s+(\S+) hypotheses", abstract)
        assert tested and int(tested.group(1)) == len(headlines)
    total = re.search(r"— (\S+) networks\s+on (\S+) datasets", abstract)
    assert total and int(total.group(1)) == sum(m["members"] for m in metrics.values()) + mapped_total
    assert int(total.group(2)) == len(metrics)


def test_the_report_says_what_the_intervals_vary_over(rendered: Path) -> None:
    # Pima's prepared metadata has 10 splits, Fashion-MNIST's one (see _prepared).
    text = (rendered / render.REPORT_MD).read_text()
    flat, abstract = " ".join(text.split()), " ".join(section(text, "Abstract").split())
    sentence = (
        "Intervals and tests cover seed-to-seed variation and, on Pima Indians diabetes (10 stratified splits), "
        "the variation between data splits: there each seed has its own split and a replicate is a (split, seed) "
        "pair; Fashion-MNIST keeps one fixed split."
    )
    assert sentence in abstract and flat.count(sentence) == 2  # and under the error bars
    assert "| Pima Indians diabetes | 2 | 8 | 600 | 150 | 180 | 10 |" in text


def test_selected_table_numbers_equal_the_csv(rendered: Path) -> None:
    text = (rendered / render.REPORT_MD).read_text()
    selected = pd.read_csv(rendered / results.TABLES_DIR / "selected.csv")
    for dataset, rows in selected.groupby("dataset"):
        name = inputs.DISPLAY_NAMES[dataset]
        table = re.search(rf"\*\*{re.escape(name)}\*\* — selected configurations:\n\n(.*?)\n\n", text, flags=re.S)
        assert table, f"no selected table for {name}"
        row_pattern = r"^\| (\w+) \| (\w+) \| (\S+) \| \S+ \|[^|]*\| (\S+) \| (\S+) \| \[(\S+), (\S+)\]"
        cells = re.findall(row_pattern, table.group(1), flags=re.M)
        shown = {(o, f, c): numbers for o, f, c, *numbers in cells}
        assert len(shown) == len(rows)
        for row in rows.itertuples():
            values = (row.val_acc_mean, row.test_acc_mean, row.test_acc_ci_low, row.test_acc_ci_high)
            assert all(map(close, shown[(row.optimizer, row.family, row.config)], values)), row


def test_every_hypothesis_has_a_section_with_its_finding_verdict_rule_and_evidence(rendered: Path) -> None:
    text = (rendered / render.REPORT_MD).read_text()
    verdicts = pd.read_csv(rendered / results.TABLES_DIR / "verdicts.csv")
    for row in verdicts.itertuples():
        body = section(text, f"{row.hypothesis}: {row.title}")
        part = body.split(f"### {row.hypothesis} on {inputs.DISPLAY_NAMES[row.dataset]}\n")[1].split("\n### ")[0]
        # Rule and evidence are shown literally: escaped as Markdown text.
        rule, evidence = markup.text(row.rule), markup.text(row.evidence)
        expected = f"**Verdict: {row.verdict}.**\n\n*Rule.* {rule}\n\n*Evidence.* {evidence}\n"
        assert expected in part
        # A finding to cite, where the hypothesis has one, opens the section.
        finding = "" if pd.isna(row.finding) else f"*Finding.* {markup.text(row.finding)}\n\n"
        assert part.lstrip("\n").startswith(finding + "**Verdict:"), part[:300]


def test_conventions_are_copied_from_params_yaml(rendered: Path) -> None:
    text = (rendered / render.REPORT_MD).read_text()
    params_text = (rendered / "params.yaml").read_text()
    block = re.search(r"### Strength conventions\n.*?```text\n(.*?)```", text, flags=re.S).group(1)
    lines = block.strip("\n").splitlines()
    assert lines[0].startswith("Strength conventions") and len(lines) > 5
    assert all(f"# {line}".rstrip() in params_text for line in lines)


def test_each_hypothesis_shows_one_figure_and_the_rest_go_to_the_appendix(handmade: Path) -> None:
    report.main()
    text = (handmade / render.REPORT_MD).read_text()
    assert "figures/diabetes/01_sparsity.png" in section(text, "H1: claim number 1")
    assert "See also figure 01 (Pima Indians diabetes), *The sparsity of diabetes*, under H1." in section(
        text, "H2: claim number 2"
    )
    assert "01_sparsity.png" not in section(text, "H2: claim number 2") + section(text, "H3: claim number 3")
    assert "figures/diabetes/02_gap.png" in section(text, "Appendix B: more figures")
    assert "figures/00_at_a_glance.png" in section(text, "Abstract")


def test_limitations_list_the_configurations_with_diverged_networks(handmade: Path) -> None:
    report.main()
    limitations = section((handmade / render.REPORT_MD).read_text(), "Limitations")
    assert limitations.count("| adam/l1/l1=0.01 | 4 | 2 |") == len(DATASETS)
    assert "adam/l2/l2=0.01" not in limitations


def test_provenance_lists_the_dvc_lock_outputs_of_upstream_stages(handmade: Path) -> None:
    def stage(out: str, md5: str) -> dict:
        return {"cmd": "python -m pipelines.x", "deps": [], "outs": [{"path": out, "hash": "md5", "md5": md5}]}

    lock = {
        "schema": "2.0",
        "stages": {
            "train@diabetes": stage("models/diabetes", "1" * 32 + ".dir"),
            "report": stage("reports/report.md", "2" * 32),
        },
    }
    (handmade / "dvc.lock").write_text(yaml.safe_dump(lock))
    report.main()
    provenance = section((handmade / render.REPORT_MD).read_text(), "Provenance")
    assert f"| train@diabetes | `models/diabetes` | `{'1' * 32}.dir` |" in provenance
    assert "2" * 32 not in provenance and "not run through dvc" not in provenance


def test_report_md_links_figures_that_exist(rendered: Path) -> None:
    text = (rendered / render.REPORT_MD).read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(links) == sorted(
        p.relative_to(rendered / "reports").as_posix() for p in (rendered / results.FIGURES_DIR).glob("**/*.png")
    )


def test_html_is_self_contained(rendered: Path) -> None:
    html = (rendered / render.REPORT_HTML).read_text()
    sources = re.findall(r'<img[^>]* src="([^"]+)"', html)
    assert len(sources) == len(list((rendered / results.FIGURES_DIR).glob("**/*.png"))) > 0
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"<(script|link|iframe)\b", html)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert 'name="viewport"' in html and "overflow-x: auto" in html


def test_the_same_inputs_give_the_same_report_and_a_changed_param_a_new_id(handmade: Path) -> None:
    report.main()
    first = {p: (handmade / p).read_bytes() for p in (render.REPORT_MD, render.REPORT_HTML)}
    report.main()
    assert {p: (handmade / p).read_bytes() for p in first} == first
    params_file = handmade / "params.yaml"
    params_file.write_text(params_file.read_text().replace("\n  alpha: 0.05", "\n  alpha: 0.01", 1))
    report.main()
    ids = [
        re.search(r"report id `(\w+)`", text.decode()).group(1)
        for text in (first[render.REPORT_MD], (handmade / render.REPORT_MD).read_bytes())
    ]
    assert ids[0] != ids[1]


# --- bad input ----------------------------------------------------------------------------------


def test_a_missing_input_fails_in_one_line_and_keeps_the_old_report(handmade: Path) -> None:
    report.main()
    before = {p: (handmade / p).read_bytes() for p in (render.REPORT_MD, render.REPORT_HTML)}
    (handmade / results.TABLES_DIR / "trends.csv").unlink()
    failed = run_stage("report", handmade)
    assert failed.returncode == 1
    assert failed.stderr.strip().count("\n") == 0
    assert "reports/tables/trends.csv: not found; run the analyze stage first" in failed.stderr
    assert {p: (handmade / p).read_bytes() for p in before} == before
    assert sorted(p.name for p in (handmade / "reports").iterdir()) == [
        "figures",
        "metrics",
        "report.html",
        "report.md",
        "results",
        "summary.json",
        "tables",
    ]


@pytest.mark.parametrize(
    ("path", "change", "message"),
    [
        (
            "reports/tables/comparisons.csv",
            lambda f: f.drop(columns=["holm_p"]),
            "reports/tables/comparisons.csv: missing columns ['holm_p']",
        ),
        (
            "data/prepared/diabetes.json",
            lambda d: {k: v for k, v in d.items() if k != "split_sizes"},
            "data/prepared/diabetes.json: missing keys ['split_sizes']",
        ),
        (
            "reports/results/diabetes/summary.json",
            lambda d: {k: v for k, v in d.items() if k != "seconds"},
            "reports/results/diabetes/summary.json: missing keys ['seconds']",
        ),
        (
            "reports/summary.json",
            lambda d: d | {"diabetes": {"members": 1}},
            "reports/summary.json: diabetes: missing keys "
            "['diverged', 'baseline_test_acc', 'best_family', 'best_test_acc']",
        ),
        (
            "reports/figures/diabetes/captions.json",
            lambda d: d | {"99_lost": {"title": "t", "caption": "c"}},
            "reports/figures/diabetes/99_lost.png: not found",
        ),
    ],
)
def test_a_malformed_input_is_named_in_one_line(
    handmade: Path, capsys: pytest.CaptureFixture[str], path: str, change, message: str
) -> None:
    file = handmade / path
    if file.suffix == ".csv":
        change(pd.read_csv(file)).to_csv(file, index=False)
    else:
        file.write_text(json.dumps(change(json.loads(file.read_text()))))
    assert exit_code_of_main() == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith(f"error: {message}") and stderr.strip().count("\n") == 0
    assert not (handmade / render.REPORT_MD).exists()


def test_params_without_the_conventions_block_are_named(handmade: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params_file = handmade / "params.yaml"
    params_file.write_text(params_file.read_text().replace("# Strength conventions", "# Conventions"))
    assert exit_code_of_main() == 2
    assert "params.yaml: found no '# Strength conventions' comment block" in capsys.readouterr().err


def exit_code_of_main() -> int | str | None:
    """report.main() in this process (the subprocess path is tested above): the code it exits with."""
    with pytest.raises(SystemExit) as exited:
        report.main()
    return exited.value.code


# --- citation -----------------------------------------------------------------------------------


def test_rendered_citation_cff_validates(rendered: Path, tmp_path: Path) -> None:
    text = (rendered / render.REPORT_MD).read_text()
    cff = re.search(r"```yaml\n(.*?)```", section(text, "How to cite"), flags=re.S).group(1)
    (tmp_path / "CITATION.cff").write_text(cff)
    validate(tmp_path / "CITATION.cff")
    data = yaml.safe_load(cff)
    params = yaml.safe_load((rendered / "params.yaml").read_text())
    assert data["version"] == params["report"]["version"]
    report_id = re.search(r"report id `(\w+)`", text).group(1)
    assert data["identifiers"][0]["value"] == f"regbench-report-{report_id}"
    assert f"@techreport{{regbench-{report_id}," in text


def test_repository_citation_cff_validates_and_matches_params() -> None:
    validate(REPO / "CITATION.cff")
    data = yaml.safe_load((REPO / "CITATION.cff").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())["report"]
    assert data["version"] == params["version"]
    assert data["title"] == params["title"]
    assert [a["name"] for a in data["authors"]] == params["authors"]


def validate(path: Path) -> None:
    cffconvert = Path(sys.executable).with_name("cffconvert")
    checked = subprocess.run([str(cffconvert), "--validate", "--infile", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, f"{path}: {checked.stdout}{checked.stderr}"


# --- the HTML in a real browser -----------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
    "--enable-logging=stderr",
    "--v=0",
]
# Injected before </body>: writes what the browser decoded and laid out into the DOM, for --dump-dom.
PROBE = """<script>
window.addEventListener("load", () => {
  const check = document.createElement("pre");
  check.id = "check";
  check.textContent = JSON.stringify({
    images: [...document.images].map(image => image.naturalWidth),
    pageWidth: document.documentElement.scrollWidth, viewWidth: document.documentElement.clientWidth});
  document.body.appendChild(check);
});
</script>
"""


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, installed with apt-get when missing; no browser is a failure, not a skip."""
    if not CHROMIUM.exists():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
            if done.returncode != 0:
                pytest.fail(
                    f"headless Chromium is needed at {CHROMIUM}; `{' '.join(command)}` failed: "
                    f"{(done.stderr or done.stdout).strip()[-500:]}"
                )
    return CHROMIUM


def browse(chromium: Path, page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )


def check_in_browser(chromium: Path, html: str, folder: Path, width: int) -> tuple[dict, list[str]]:
    """(what the probe saw, console errors) for `html` in a window `width` pixels wide."""
    page = folder / f"probe-{width}.html"
    # The report's Content-Security-Policy forbids scripts: it is told to allow this one, by its hash.
    probe_hash = base64.b64encode(hashlib.sha256(PROBE.split(">", 1)[1].rsplit("<", 1)[0].encode()).digest())
    allowed = html.replace("default-src 'none';", f"default-src 'none'; script-src 'sha256-{probe_hash.decode()}';")
    page.write_text(allowed.replace("</body>", PROBE + "</body>"))
    done = browse(chromium, page, folder / "profile", f"--window-size={width},2000", "--dump-dom")
    check = re.search(r'<pre id="check">(.*?)</pre>', done.stdout, flags=re.S)
    assert check, f"the page did not finish loading in Chromium: {done.stderr[-1000:]}"
    errors = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return json.loads(check.group(1).replace("&quot;", '"')), errors


@pytest.mark.slow
def test_html_loads_in_chromium_with_every_image_decoded(chain: Path, chromium: Path, tmp_path: Path) -> None:
    html = (chain / render.REPORT_HTML).read_text()
    drawn = len(list((chain / results.FIGURES_DIR).glob("**/*.png")))
    for width in (1280, 390):
        seen, errors = check_in_browser(chromium, html, tmp_path, width)
        assert errors == [], f"console errors at {width}px: {errors}"
        assert len(seen["images"]) == drawn and all(w > 0 for w in seen["images"]), seen
        # Wide tables scroll inside their own box: the page itself never scrolls sideways.
        assert seen["pageWidth"] <= seen["viewWidth"], f"page wider than a {width}px window: {seen}"
    for name, size in (("wide", "1280,2000"), ("phone", "390,2000")):
        shot = tmp_path / f"screenshot-{name}.png"
        browse(
            chromium, chain / render.REPORT_HTML, tmp_path / "profile", f"--window-size={size}", f"--screenshot={shot}"
        )
        assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_the_browser_check_sees_a_broken_image_and_a_script_error(tmp_path: Path, chromium: Path) -> None:
    broken = (
        '<html><body><img src="data:image/png;base64,bm90IGEgcG5n">'
        '<script>throw new Error("boom")</script></body></html>'
    )
    seen, errors = check_in_browser(chromium, broken, tmp_path, 800)
    assert seen["images"] == [0]
    assert any("boom" in line for line in errors), errors


# --- hostile values -----------------------------------------------------------------------------

# Each would run, link or format if it reached the page as markup; each sets a marker on <body> if it runs.
HOSTILE = [
    '<script>document.body.setAttribute("data-pwned", "script")</script>',
    "<img src=x onerror=\"document.body.setAttribute('data-pwned', 'img')\">",
    "[click me](javascript:document.body.setAttribute('data-pwned','link'))",
    "\"><svg onload=\"document.body.setAttribute('data-pwned','svg')\">",
    "<javascript:alert(1)> **bold** _it_ `code` | pipe ```",
]


def _hostile(index: int) -> str:
    return HOSTILE[index % len(HOSTILE)]


def write_hostile_values(root: Path) -> list[str]:
    """Hostile strings in every field a user controls: params, results, run names, captions. Returns them."""
    # Edited as text: the comments heading params.yaml are part of the report.
    params_file = root / "params.yaml"
    report_block = yaml.safe_dump(
        {"report": {"title": _hostile(0), "authors": [_hostile(1), _hostile(2)], "version": _hostile(3)}}, width=1000
    )
    params_file.write_text(re.sub(r"(?m)^report:\n(  .*\n)+", lambda _: report_block, params_file.read_text()))
    summary = root / results.summary_path("diabetes")
    summary.write_text(
        json.dumps(
            json.loads(summary.read_text())
            | {"device_name": _hostile(4), "experiment_name": _hostile(0), "parent_run_id": _hostile(1)}
        )
    )
    prepared = root / datasets.prepared_paths("diabetes")[1]
    prepared.write_text(
        json.dumps(
            json.loads(prepared.read_text())
            | {"class_names": [_hostile(2), "b"], "source_sha256": {_hostile(3): _hostile(4)}}
        )
    )
    captions = root / results.FIGURES_DIR / "diabetes" / "captions.json"
    shown = json.loads(captions.read_text())
    shown["02_gap"] |= {"title": _hostile(0), "caption": _hostile(2)}
    captions.write_text(json.dumps(shown))
    verdicts = pd.read_csv(root / results.TABLES_DIR / "verdicts.csv")
    verdicts.loc[0, ["title", "rule", "evidence"]] = [_hostile(1), _hostile(3), _hostile(4)]
    verdicts.to_csv(root / results.TABLES_DIR / "verdicts.csv", index=False)
    exclusions = pd.read_csv(root / results.TABLES_DIR / "exclusions.csv")
    exclusions["config"] = _hostile(0)
    exclusions.to_csv(root / results.TABLES_DIR / "exclusions.csv", index=False)
    return HOSTILE


def visible_text(page: str) -> str:
    """The text a reader sees in `page` (tags dropped, entities decoded), whitespace collapsed."""

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.hidden = 0

        def handle_starttag(self, tag: str, attrs: list) -> None:
            self.hidden += tag in ("script", "style", "title")

        def handle_endtag(self, tag: str) -> None:
            self.hidden -= tag in ("script", "style", "title")

        def handle_data(self, data: str) -> None:
            if not self.hidden:
                self.parts.append(data)

    parser = Text()
    parser.feed(page)
    return " ".join("".join(parser.parts).split())


def test_hostile_values_show_literally_in_report_md_and_html(handmade: Path) -> None:
    hostile = write_hostile_values(handmade)
    report.main()
    html = (handmade / render.REPORT_HTML).read_text()
    body = html.split("<main>")[1]
    assert not re.search(r"<(script|svg|img[^>]*onerror)", body, flags=re.I)
    assert not re.search(r"""href=["']?\s*javascript:""", html, flags=re.I)
    assert 'http-equiv="Content-Security-Policy"' in html
    seen = visible_text(body)
    for value in hostile:
        assert " ".join(value.split()) in seen, f"not shown literally: {value}"


@pytest.mark.slow
def test_hostile_values_run_nothing_in_chromium(handmade: Path, chromium: Path, tmp_path: Path) -> None:
    hostile = write_hostile_values(handmade)
    report.main()
    html = (handmade / render.REPORT_HTML).read_text()
    # Escaping alone must hold: the page is also loaded without its Content-Security-Policy.
    without_csp = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    for name, page_html in (("as written", html), ("without CSP", without_csp)):
        page = tmp_path / f"{name.replace(' ', '-')}.html"
        page.write_text(page_html)
        done = browse(chromium, page, tmp_path / "profile", "--window-size=1280,2000", "--dump-dom")
        assert "</main>" in done.stdout, f"{name}: the page did not load: {done.stderr[-1000:]}"
        assert not re.search(r"<[^>]*\sdata-pwned=", done.stdout), f"{name}: a hostile value ran"
        assert not re.search(r"""href=["']?\s*javascript:""", done.stdout, flags=re.I), name
        seen = visible_text(done.stdout.split("<main>")[1])
        for value in hostile:
            assert " ".join(value.split()) in seen, f"{name}: not shown literally: {value}"

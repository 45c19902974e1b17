"""The prepare stage: the verified IDX reader, the Pima parser, the splits, train-only statistics,
and fetch + prepare of the real datasets from the shared mirror."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipelines import fetch, prepare
from pipelines.core import params
from pipelines.core.errors import DataError, ParamsError
from pipelines.core.params import DATASETS
from pipelines.data import preparation
from pipelines.data import sources as raw_sources
from pipelines.data.datasets import (
    PIMA_COLUMNS,
    PIMA_FEATURES,
    PIMA_ZERO_MEANS_MISSING,
    RAW_FILES,
    load_prepared,
    prepared_paths,
    read_idx,
    read_pima,
    split_diabetes,
    split_fashion,
    stratified_take,
)

PIMA = RAW_FILES["diabetes"][0]


def write_idx(path: Path, array: np.ndarray) -> Path:
    """An uncompressed IDX file of unsigned bytes holding `array`."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())
    return path


def pima_table(labels: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Plausible Pima rows for the given Outcome labels, with about 10% zeros ("missing") in the
    columns where zero means missing."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    table = pd.DataFrame(
        {
            "Pregnancies": rng.integers(0, 12, n),
            "Glucose": rng.normal(120, 30, n).round(),
            "BloodPressure": rng.normal(70, 12, n).round(),
            "SkinThickness": rng.normal(29, 10, n).round(),
            "Insulin": rng.normal(150, 90, n).round().clip(15),
            "BMI": rng.normal(32, 7, n).round(1),
            "DiabetesPedigreeFunction": rng.uniform(0.08, 2.4, n).round(3),
            "Age": rng.integers(21, 80, n),
            "Outcome": labels,
        }
    )
    for column in PIMA_ZERO_MEANS_MISSING:
        table.loc[rng.random(n) < 0.1, column] = 0
    return table[list(PIMA_COLUMNS)]


def pima_labels(n: int = PIMA.shape[0]) -> np.ndarray:
    return (np.arange(n) % 3 == 0).astype(np.int64)


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return write_idx(tmp_path / "images", np.arange(5 * 4 * 3).reshape(5, 4, 3))


def test_idx_reader_reads_what_was_written(images: Path) -> None:
    assert np.array_equal(read_idx(images, (5, 4, 3)), np.arange(60).reshape(5, 4, 3))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda b: b[:-1], "75 bytes; expected 76 for shape (5, 4, 3)"),
        (lambda b: b + b"\x00", "77 bytes; expected 76 for shape (5, 4, 3)"),
        (lambda b: b[:10], "10 bytes; expected a header of 16 bytes"),
        (lambda b: b"\x1f\x8b" + b[2:], "magic number 0x1f8b0803; expected 0x00000803"),
        (lambda b: b[:2] + b"\x0d" + b[3:], "magic number 0x00000d03; expected 0x00000803"),
        (lambda b: b[:3] + b"\x02" + b[4:], "magic number 0x00000802; expected 0x00000803"),
        (lambda b: b[:12] + (4).to_bytes(4, "big") + b[16:], "header announces shape (5, 4, 4); expected (5, 4, 3)"),
    ],
)
def test_idx_reader_refuses_damaged_files(images: Path, damage, expected: str) -> None:
    images.write_bytes(damage(images.read_bytes()))
    with pytest.raises(DataError, match=rf"^{images}: ") as caught:
        read_idx(images, (5, 4, 3))
    assert expected in str(caught.value)


def test_idx_reader_refuses_a_file_of_other_dimensions(tmp_path: Path) -> None:
    labels = write_idx(tmp_path / "labels", np.arange(5))
    with pytest.raises(DataError, match="expected 0x00000803 \\(IDX, unsigned bytes, 3 dimensions\\)"):
        read_idx(labels, (5, 4, 3))


def test_pima_parser_reads_both_variants(tmp_path: Path) -> None:
    table = pima_table(pima_labels())
    table.to_csv(tmp_path / "plain.csv", header=False, index=False)
    table.to_csv(tmp_path / "header.csv", header=True, index=False)
    plain = read_pima(tmp_path / "plain.csv", rows=len(table))
    assert list(plain.columns) == list(PIMA_COLUMNS)
    assert plain["Outcome"].dtype == np.int64 and (plain[list(PIMA_FEATURES)].dtypes == np.float64).all()
    assert np.allclose(plain.to_numpy(), table.to_numpy())
    pd.testing.assert_frame_equal(read_pima(tmp_path / "header.csv", rows=len(table)), plain)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.drop(columns="Age"), "8 columns; expected 9 (Pregnancies, Glucose"),
        (lambda t: t.assign(Extra=1), "10 columns; expected 9"),
        (lambda t: t.iloc[:-1], "767 data rows; expected 768"),
        (
            lambda t: t.astype({"BMI": object}).assign(BMI=lambda f: f["BMI"].where(f.index != 2, "abc")),
            "data row 3, column BMI: found 'abc'; expected a finite number",
        ),
        (
            lambda t: t.assign(Outcome=lambda f: f["Outcome"].where(f.index != 4, 2)),
            "data row 5, column Outcome: found '2'; expected 0 or 1",
        ),
        (
            lambda t: t.astype({"BMI": object}).assign(BMI=lambda f: f["BMI"].where(f.index != 6, "inf")),
            "data row 7, column BMI: found 'inf'; expected a finite number",
        ),
        (
            lambda t: t.astype({"Glucose": object}).assign(Glucose=lambda f: f["Glucose"].where(f.index != 0, "1e400")),
            "data row 1, column Glucose: found '1e400'; expected a finite number",
        ),
    ],
)
def test_pima_parser_refuses_bad_tables(tmp_path: Path, edit, expected: str) -> None:
    path = tmp_path / "pima.csv"
    edit(pima_table(pima_labels())).to_csv(path, header=False, index=False)
    with pytest.raises(DataError, match=rf"^{path}: ") as caught:
        read_pima(path, rows=PIMA.shape[0])
    assert expected in str(caught.value)


def test_pima_parser_refuses_a_wrong_header(tmp_path: Path) -> None:
    path = tmp_path / "pima.csv"
    pima_table(pima_labels()).rename(columns={"BMI": "bmi"}).to_csv(path, header=True, index=False)
    with pytest.raises(DataError, match="header row .*'bmi'.*; expected .*'BMI'"):
        read_pima(path, rows=PIMA.shape[0])


def test_stratified_take_keeps_class_shares_and_is_seeded() -> None:
    labels = np.repeat([0, 1, 2], [500, 300, 200])
    taken, rest = stratified_take(labels, 101, np.random.default_rng(0))
    assert len(taken) == 101 and np.array_equal(np.sort(np.concatenate([taken, rest])), np.arange(1000))
    assert np.abs(np.bincount(labels[taken]) - 101 * np.array([0.5, 0.3, 0.2])).max() < 1
    again, _ = stratified_take(labels, 101, np.random.default_rng(0))
    other, _ = stratified_take(labels, 101, np.random.default_rng(1))
    assert np.array_equal(taken, again) and not np.array_equal(taken, other)


def test_splits_partition_the_rows() -> None:
    labels = pima_labels()
    parts = split_diabetes(labels, 0.2, 0.2, seed=3)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(labels)))
    assert {k: len(v) for k, v in parts.items()} == {"train": 460, "val": 154, "test": 154}
    fashion = split_fashion(np.arange(600) % 10, val_size=50, train_subset=100, seed=0)
    assert len(fashion["val"]) == 50 and len(fashion["train"]) == 100
    assert not set(fashion["val"]) & set(fashion["train"])
    assert (np.bincount(fashion["train"] % 10) == 10).all()


def test_pima_splits_are_distinct_stratified_and_seeded() -> None:
    labels = pima_labels()
    draws = [split_diabetes(labels, 0.2, 0.2, seed=0, split=k) for k in range(10)]
    assert len({parts["test"].tobytes() for parts in draws}) == 10
    assert len({parts["val"].tobytes() for parts in draws}) == 10
    counts = [{part: np.bincount(labels[rows]).tolist() for part, rows in parts.items()} for parts in draws]
    assert all(c == counts[0] for c in counts)  # the same sizes and class counts in every split
    assert abs(counts[0]["test"][1] - 154 * labels.mean()) < 1  # stratified
    for parts in draws:
        assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(labels)))
    again = split_diabetes(labels, 0.2, 0.2, seed=0, split=3)
    assert all(np.array_equal(again[part], draws[3][part]) for part in again)
    assert not np.array_equal(split_diabetes(labels, 0.2, 0.2, seed=1, split=3)["test"], draws[3]["test"])


def test_imputation_and_scaling_use_each_splits_training_rows_only(tmp_path: Path) -> None:
    settings = params.DiabetesData(val_fraction=0.2, test_fraction=0.2, impute="median", seed=0, splits=2)
    labels = pima_labels()
    table = pima_table(labels)
    # Glucose raised by 500 in the held-out rows of split 0; they are training rows of split 1.
    first = split_diabetes(labels, settings.val_fraction, settings.test_fraction, settings.seed, split=0)
    held_out = np.concatenate([first["val"], first["test"]])
    table.loc[held_out, "Glucose"] = table.loc[held_out, "Glucose"].where(
        table.loc[held_out, "Glucose"] == 0, table.loc[held_out, "Glucose"] + 500
    )
    table.to_csv(tmp_path / PIMA.name, header=False, index=False)

    arrays, details = preparation.prepare_diabetes(tmp_path, settings)

    assert arrays["x_train"].shape == (2, 460, 8) and arrays["y_test"].shape == (2, 154)
    glucose = PIMA_FEATURES.index("Glucose")
    for k in range(2):
        parts = split_diabetes(labels, settings.val_fraction, settings.test_fraction, settings.seed, split=k)
        imputed = details["imputation"]["per_split"][k]["values"]
        train = table.loc[parts["train"]]
        for column in PIMA_ZERO_MEANS_MISSING:
            assert imputed[column] == train.loc[train[column] != 0, column].median()
        assert np.array_equal(arrays["y_val"][k], labels[parts["val"]])
        assert np.allclose(arrays["x_train"][k].mean(axis=0), 0, atol=1e-5)
        assert np.allclose(arrays["x_train"][k].std(axis=0), 1, atol=1e-5)
        stats = details["normalization"][k]
        filled = (imputed["Glucose"] - stats["mean"]["Glucose"]) / stats["std"]["Glucose"]
        missing_in_val = (table.loc[parts["val"], "Glucose"] == 0).to_numpy()
        assert missing_in_val.any()
        assert np.allclose(arrays["x_val"][k][missing_in_val, glucose], filled)
    everywhere = table.loc[table["Glucose"] != 0, "Glucose"].median()
    first_fill = details["imputation"]["per_split"][0]["values"]["Glucose"]
    assert abs(first_fill - everywhere) > 10  # leakage of split 0's held-out rows would show here
    assert arrays["x_val"][0][:, glucose].mean() > 5  # held-out rows are not re-centred
    assert details["imputation"]["per_split"][1]["values"]["Glucose"] > first_fill + 10  # split 1 trains on them


def test_too_large_training_subset_is_a_params_error() -> None:
    settings = params.FashionData(val_size=5000, train_subset=55_001, seed=0)
    with pytest.raises(ParamsError, match="data.fashion_mnist.train_subset .*found 55001; expected at most 55000"):
        preparation.check_fashion_settings(settings)


def test_prepare_before_fetch_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="raw/diabetes: not found; run `python -m pipelines.fetch diabetes` first"):
        preparation.prepare("diabetes", params.load().data, raw_root=tmp_path / "raw", out_root=tmp_path / "out")


def test_load_prepared_before_prepare_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"diabetes.pt: not found; run `python -m pipelines.prepare diabetes`"):
        load_prepared("diabetes", root=tmp_path)


def test_bad_raw_data_fails_in_one_line_and_keeps_earlier_outputs(
    workdir: Path, shared_mirror: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv(raw_sources.MIRROR_ENV, str(shared_mirror))
    fetch.main(["diabetes"])
    prepare.main(["diabetes"])
    outputs = prepared_paths("diabetes", workdir / "data/prepared")
    before = [path.read_bytes() for path in outputs]
    raw = workdir / "data/raw/diabetes" / PIMA.name
    lines = raw.read_text().splitlines()
    lines[9] = lines[9][: lines[9].rindex(",")] + ",2"
    raw.write_text("\n".join(lines) + "\n")
    capsys.readouterr()

    with pytest.raises(SystemExit) as caught:
        prepare.main(["diabetes"])

    assert caught.value.code == 1
    expected = f"error: {raw.relative_to(workdir)}: data row 10, column Outcome: found '2'; expected 0 or 1\n"
    assert capsys.readouterr().err == expected
    assert [path.read_bytes() for path in outputs] == before
    assert sorted(p.name for p in (workdir / "data/prepared").iterdir()) == sorted(p.name for p in outputs)


def edit_glucose(raw: Path) -> None:
    """A valid-looking edit: the first row's Glucose becomes 999."""
    lines = raw.read_text().splitlines()
    cells = lines[0].split(",")
    lines[0] = ",".join([cells[0], "999", *cells[2:]])
    raw.write_text("\n".join(lines) + "\n")


def test_edited_raw_data_is_refused_naming_both_hashes_and_keeps_earlier_outputs(
    workdir: Path, shared_mirror: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv(raw_sources.MIRROR_ENV, str(shared_mirror))
    fetch.main(["diabetes"])
    prepare.main(["diabetes"])
    outputs = prepared_paths("diabetes", workdir / "data/prepared")
    before = [path.read_bytes() for path in outputs]
    raw = workdir / "data/raw/diabetes" / PIMA.name
    edit_glucose(raw)
    found = hashlib.sha256(raw.read_bytes()).hexdigest()
    capsys.readouterr()

    with pytest.raises(SystemExit) as caught:
        prepare.main(["diabetes"])

    assert caught.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: {raw.relative_to(workdir)}: sha256 {found}; expected the pinned {PIMA.sha256} ")
    assert "data.diabetes.allow_modified: true" in error and error.count("\n") == 1
    assert [path.read_bytes() for path in outputs] == before


def test_edited_raw_data_with_the_override_records_the_hash_it_read(
    workdir: Path, shared_mirror: Path, set_param, monkeypatch
) -> None:
    monkeypatch.setenv(raw_sources.MIRROR_ENV, str(shared_mirror))
    fetch.main(["diabetes"])
    raw = workdir / "data/raw/diabetes" / PIMA.name
    edit_glucose(raw)
    set_param("data.diabetes.allow_modified", True)
    prepare.main(["diabetes"])
    metadata = load_prepared("diabetes", workdir / "data/prepared").metadata
    assert metadata["source_sha256"] == {PIMA.name: hashlib.sha256(raw.read_bytes()).hexdigest()} != PIMA.sha256
    assert metadata["source_modified"] == [PIMA.name]


@pytest.mark.slow
def test_fetch_and_prepare_the_real_datasets(
    workdir: Path, set_param, shared_mirror: Path, run_stage, monkeypatch
) -> None:
    monkeypatch.setenv(raw_sources.MIRROR_ENV, str(shared_mirror))
    set_param("data.fashion_mnist.train_subset", None)  # all 55,000 after validation
    for stage, dataset in [("fetch", d) for d in DATASETS] + [("prepare", d) for d in DATASETS]:
        done = run_stage(stage, dataset, workdir)
        assert done.returncode == 0, done.stderr
    prepared = workdir / "data/prepared"
    first = digests(prepared)
    for dataset in DATASETS:
        assert run_stage("prepare", dataset, workdir).returncode == 0
    assert digests(prepared) == first, "two prepare runs differ"

    fashion = load_prepared("fashion_mnist", workdir / "data/prepared").split(0)
    assert load_prepared("fashion_mnist", workdir / "data/prepared").n_splits == 1
    assert fashion.x_train.shape[1] == 784
    assert len(fashion.y_train) + len(fashion.y_val) == 60_000 and len(fashion.y_test) == 10_000
    assert len(fashion.y_val) == 5000 and (torch.bincount(fashion.y_val) == 500).all()
    assert (torch.bincount(torch.cat([fashion.y_train, fashion.y_val])) == 6000).all()
    assert (torch.bincount(fashion.y_test) == 1000).all()
    assert abs(fashion.x_train.mean().item()) < 1e-4 and abs(fashion.x_train.std().item() - 1) < 1e-4
    metadata = load_prepared("fashion_mnist", workdir / "data/prepared").metadata
    assert metadata["class_balance"]["train"]["Ankle boot"] == 5500
    assert metadata["source_sha256"] == {f.name: f.sha256 for f in RAW_FILES["fashion_mnist"]}

    pima = load_prepared("diabetes", workdir / "data/prepared")
    assert (pima.n_features, pima.n_classes, pima.n_splits) == (8, 2, params.load().data.diabetes.splits)
    for k in range(pima.n_splits):
        split = pima.split(k)
        labels = torch.cat([split.y_train, split.y_val, split.y_test])
        assert len(labels) == 768 and torch.bincount(labels).tolist() == [500, 268]
        for y in (split.y_train, split.y_val, split.y_test):
            assert abs(y.sum().item() - len(y) * 268 / 768) < 1  # stratified
    assert pima.metadata["split_sizes"] == {"train": 460, "val": 154, "test": 154}

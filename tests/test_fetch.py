"""The fetch stage: source order, verification, the all-sources-failed error, atomicity."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipelines import fetch
from pipelines.core.errors import DataError
from pipelines.data import sources as raw_sources
from pipelines.data.datasets import RAW_FILES, SOURCE_RECORD, origin_path

PIMA = RAW_FILES["diabetes"][0]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving a fresh folder; yields (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def pima_mirror(root: Path, shared_mirror: Path, corrupt: bool = False) -> Path:
    """A mirror holding the Pima CSV, or a copy with one digit changed."""
    (root / "diabetes").mkdir(parents=True)
    content = (shared_mirror / PIMA.mirror_path).read_bytes()
    if corrupt:
        content = content.replace(b"148", b"149", 1)
    (root / PIMA.mirror_path).write_bytes(content)
    return root


def record(raw_dir: Path) -> dict:
    """Which source and location served each file of raw_dir, as fetch recorded it."""
    return json.loads(origin_path(raw_dir.name, raw_dir.parent).read_text())["files"]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root (hidden ones included) with its bytes; None for directories."""
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


def test_env_mirror_wins_over_params_key(workdir: Path, set_param, shared_mirror: Path, monkeypatch) -> None:
    from_env = pima_mirror(workdir / "env-mirror", shared_mirror)
    from_params = pima_mirror(workdir / "params-mirror", shared_mirror)
    set_param("data.mirror", str(from_params))
    monkeypatch.setenv(raw_sources.MIRROR_ENV, str(from_env))
    fetch.main(["diabetes"])
    entry = record(workdir / "data/raw/diabetes")[PIMA.name]
    assert entry["source"] == "mirror $REGBENCH_DATA_MIRROR"
    assert entry["location"] == str(from_env / PIMA.mirror_path)

    monkeypatch.delenv(raw_sources.MIRROR_ENV)
    fetch.main(["diabetes"])
    entry = record(workdir / "data/raw/diabetes")[PIMA.name]
    assert entry["source"] == "mirror data.mirror"
    assert entry["location"] == str(from_params / PIMA.mirror_path)
    stored = (workdir / "data/raw/diabetes" / PIMA.name).read_bytes()
    assert stored == (shared_mirror / PIMA.mirror_path).read_bytes()


def test_mirror_wins_over_debian_dir_and_a_broken_file_falls_through(
    tmp_path: Path, shared_mirror: Path, monkeypatch, no_network: str
) -> None:
    debian = tmp_path / "debian"
    mirror = tmp_path / "mirror"
    for root in (debian, mirror):
        (root / "fashion-mnist").mkdir(parents=True)
        for file in RAW_FILES["fashion_mnist"]:
            (root / file.mirror_path).symlink_to(shared_mirror / file.mirror_path)
    broken = RAW_FILES["fashion_mnist"][1]
    (mirror / broken.mirror_path).unlink()
    gz = (shared_mirror / broken.mirror_path).read_bytes()
    (mirror / broken.mirror_path).write_bytes(gz[: len(gz) // 2])  # a truncated gzip
    monkeypatch.setenv(raw_sources.MIRROR_ENV, str(mirror))

    raw = raw_sources.fetch(
        "fashion_mnist", raw_sources.default_sources(None, debian_dir=debian), raw_root=tmp_path / "raw"
    )

    sources = {name: entry["source"] for name, entry in record(raw).items()}
    expected = {f.name: "mirror $REGBENCH_DATA_MIRROR" for f in RAW_FILES["fashion_mnist"]}
    expected[broken.name] = "Debian dataset-fashion-mnist"
    assert sources == expected
    for file in RAW_FILES["fashion_mnist"]:  # stored decompressed, with the pinned hash
        stored = (raw / file.name).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == file.sha256
        assert stored == gzip.decompress((shared_mirror / file.mirror_path).read_bytes())


def test_mismatching_mirror_falls_through_to_download(tmp_path: Path, shared_mirror: Path, http_server) -> None:
    base, served = http_server
    shutil.copy(shared_mirror / PIMA.mirror_path, served / "pima.csv")
    sources = [
        raw_sources.Directory("mirror", pima_mirror(tmp_path / "mirror", shared_mirror, corrupt=True)),
        raw_sources.Download("download", url_of=lambda file: f"{base}/pima.csv"),
    ]

    raw = raw_sources.fetch("diabetes", sources, raw_root=tmp_path / "raw")

    assert record(raw)[PIMA.name] == {"source": "download", "location": f"{base}/pima.csv"}
    assert (raw / PIMA.name).read_bytes() == (shared_mirror / PIMA.mirror_path).read_bytes()


def test_the_same_bytes_from_another_mirror_give_the_same_raw_output(tmp_path: Path, shared_mirror: Path) -> None:
    """What DVC hashes (data/raw/<dataset>/) depends on the bytes only, never on where they came from."""
    outputs = []
    for name in ("one", "another"):
        mirror = pima_mirror(tmp_path / name / "mirror", shared_mirror)
        raw = raw_sources.fetch(
            "diabetes", [raw_sources.Directory(f"mirror {name}", mirror)], raw_root=tmp_path / name / "raw"
        )
        assert record(raw)[PIMA.name] == {"source": f"mirror {name}", "location": str(mirror / PIMA.mirror_path)}
        outputs.append(snapshot(raw))
    assert outputs[0] == outputs[1]
    hashed = {"dataset": "diabetes", "files": {PIMA.name: {"sha256": PIMA.sha256}}}
    assert json.loads(outputs[0][SOURCE_RECORD]) == hashed


def test_all_sources_failing_lists_each_and_leaves_raw_untouched(
    tmp_path: Path, shared_mirror: Path, http_server, no_network: str
) -> None:
    base, _ = http_server
    raw = tmp_path / "raw"
    (raw / "diabetes").mkdir(parents=True)
    (raw / "diabetes" / PIMA.name).write_text("an earlier fetch\n")
    (raw / "diabetes" / SOURCE_RECORD).write_text("{}\n")
    (raw / "fashion_mnist").mkdir()
    before = snapshot(raw)
    bad = pima_mirror(tmp_path / "bad", shared_mirror, corrupt=True)
    bad_hash = hashlib.sha256((bad / PIMA.mirror_path).read_bytes()).hexdigest()
    sources = [
        raw_sources.Directory("empty mirror", tmp_path / "nowhere"),
        raw_sources.Directory("bad mirror", bad),
        raw_sources.Download("missing on server", url_of=lambda file: f"{base}/absent.csv"),
        raw_sources.Download("dead server", url_of=lambda file: f"{no_network}/pima.csv"),
    ]

    with pytest.raises(DataError) as caught:
        raw_sources.fetch("diabetes", sources, raw_root=raw)

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{PIMA.name}: no verified copy from any source")
    assert f"empty mirror ({tmp_path / 'nowhere' / PIMA.mirror_path}): not found" in message
    assert f"bad mirror ({bad / PIMA.mirror_path}): checksum mismatch: expected sha256 {PIMA.sha256}" in message
    assert f"found {bad_hash}" in message
    assert f"missing on server ({base}/absent.csv): HTTP error 404" in message
    assert f"dead server ({no_network}/pima.csv): network error" in message
    assert snapshot(raw) == before


def test_stage_failure_is_one_line_and_writes_nothing(workdir: Path, run_stage, monkeypatch) -> None:
    monkeypatch.setenv(raw_sources.MIRROR_ENV, str(workdir / "empty"))
    done = run_stage("fetch", "diabetes", workdir)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {PIMA.name}: no verified copy")
    assert f"mirror $REGBENCH_DATA_MIRROR ({workdir / 'empty' / PIMA.mirror_path}): not found" in lines[0]
    assert f"official download ({PIMA.url}): network error" in lines[0]
    assert not (workdir / "data").exists()


def test_gzip_sources_are_verified_after_decompression() -> None:
    labels = RAW_FILES["fashion_mnist"][1]
    with pytest.raises(raw_sources.Unavailable, match="not a valid gzip file"):
        raw_sources.verified(labels, b"not gzip at all")
    with pytest.raises(raw_sources.Unavailable, match=f"expected sha256 {labels.sha256} of the decompressed bytes"):
        raw_sources.verified(labels, gzip.compress(b"\x00\x00\x08\x01" + bytes(4)))


def test_unknown_dataset_is_refused(workdir: Path, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        fetch.main(["mnist"])
    assert caught.value.code == 2
    assert "invalid choice: 'mnist'" in capsys.readouterr().err

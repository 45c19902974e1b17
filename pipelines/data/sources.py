"""Where raw files come from (a mirror, Debian's directory, the official download), how each copy
is verified against its pinned sha256, and the all-or-nothing write of data/raw/<dataset>/."""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import requests
from tqdm import tqdm

from pipelines.core import files, params
from pipelines.core.errors import DataError
from pipelines.data.datasets import DEBIAN_DIR, RAW_DIR, RAW_FILES, SOURCE_RECORD, RawFile, origin_path

MIRROR_ENV = "REGBENCH_DATA_MIRROR"
TIMEOUT_S = 30.0  # per connection attempt and per read, not for the whole download
CHUNK_BYTES = 1 << 16


class Unavailable(Exception):
    """A source could not give a verified copy of a file; the message says why."""


class Source(Protocol):
    @property
    def label(self) -> str:
        """How error messages and the origin record name this source."""

    def where(self, file: RawFile) -> str | None:
        """The file's path or URL at this source; None when it does not serve that file."""

    def read(self, file: RawFile) -> bytes:
        """The file's bytes as this source holds them; raises Unavailable."""


@dataclass(frozen=True)
class Directory:
    """A local directory laid out like the shared mirror (fashion-mnist/, diabetes/)."""

    label: str
    root: Path
    datasets: tuple[str, ...] = params.DATASETS

    def where(self, file: RawFile) -> str | None:
        served = any(file in RAW_FILES[dataset] for dataset in self.datasets)
        return str(self.root / file.mirror_path) if served else None

    def read(self, file: RawFile) -> bytes:
        try:
            return (self.root / file.mirror_path).read_bytes()
        except FileNotFoundError:
            raise Unavailable("not found") from None
        except OSError as error:
            raise Unavailable(f"not readable ({error.strerror})") from None


def official_url(file: RawFile) -> str:
    return file.url


@dataclass(frozen=True)
class Download:
    """An HTTP(S) download, with a progress bar."""

    label: str
    url_of: Callable[[RawFile], str] = official_url

    def where(self, file: RawFile) -> str | None:
        return self.url_of(file)

    def read(self, file: RawFile) -> bytes:
        try:
            with requests.get(self.url_of(file), stream=True, timeout=TIMEOUT_S) as response:
                response.raise_for_status()
                size = int(response.headers.get("content-length", 0)) or None
                content = bytearray()
                with tqdm(total=size, unit="B", unit_scale=True, desc=f"download {file.name}", leave=False) as bar:
                    for chunk in response.iter_content(CHUNK_BYTES):
                        content += chunk
                        bar.update(len(chunk))
                return bytes(content)
        except requests.HTTPError as error:
            raise Unavailable(f"HTTP error {error.response.status_code} {error.response.reason}") from None
        except requests.RequestException as error:
            raise Unavailable(f"network error ({type(error).__name__})") from None


def default_sources(mirror: str | None, debian_dir: Path = DEBIAN_DIR) -> list[Source]:
    """The real order of sources: $REGBENCH_DATA_MIRROR (else the data.mirror setting), then
    Debian's dataset-fashion-mnist files, then the official download."""
    sources: list[Source] = []
    if os.environ.get(MIRROR_ENV):
        sources.append(Directory(f"mirror ${MIRROR_ENV}", Path(os.environ[MIRROR_ENV])))
    elif mirror is not None:
        sources.append(Directory("mirror data.mirror", Path(mirror)))
    sources.append(Directory("Debian dataset-fashion-mnist", debian_dir, datasets=("fashion_mnist",)))
    sources.append(Download("official download"))
    return sources


def verified(file: RawFile, content: bytes) -> bytes:
    """The bytes to store (decompressed when the source holds gzip) if their sha256 is the pinned one."""
    if file.gzipped:
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error) as error:
            raise Unavailable(f"not a valid gzip file ({error})") from None
    found = hashlib.sha256(content).hexdigest()
    if found != file.sha256:
        what = "decompressed bytes" if file.gzipped else "file"
        raise Unavailable(f"checksum mismatch: expected sha256 {file.sha256} of the {what}, found {found}")
    return content


def first_verified(file: RawFile, sources: Sequence[Source]) -> tuple[bytes, dict[str, str]]:
    """The stored bytes of `file` from the first source with a verified copy, and where they came from."""
    failures = []
    for source in sources:
        location = source.where(file)
        if location is None:
            continue
        try:
            content = verified(file, source.read(file))
        except Unavailable as reason:
            failures.append(f"{source.label} ({location}): {reason}")
            continue
        return content, {"source": source.label, "location": location}
    tried = "; ".join(failures) if failures else "none serves it"
    raise DataError(
        f"{file.name}: no verified copy from any source; tried {tried}. "
        f"Set ${MIRROR_ENV} or data.mirror to a directory laid out like the shared mirror"
    )


def fetch(dataset: str, sources: Sequence[Source], raw_root: Path = RAW_DIR) -> Path:
    """Write the verified raw files of `dataset` and source.json (their sha256) to raw_root/<dataset>/, all
    or nothing; which source served each file goes to origin_path(dataset), outside what DVC hashes."""
    contents, origins = {}, {}
    # Everything is gathered before anything is written, so a failure leaves raw_root untouched.
    for file in RAW_FILES[dataset]:
        contents[file.name], origins[file.name] = first_verified(file, sources)
    target = raw_root / dataset
    with files.atomic_path(target) as staged:
        staged.mkdir()
        for name, content in contents.items():
            (staged / name).write_bytes(content)  # the whole directory appears at once
        # The bytes alone decide what is here: the same files from another mirror hash the same.
        hashes = {file.name: {"sha256": file.sha256} for file in RAW_FILES[dataset]}
        files.write_json(staged / SOURCE_RECORD, {"dataset": dataset, "files": hashes})
    files.write_json(origin_path(dataset, raw_root), {"dataset": dataset, "files": origins})
    return target

"""Stage fetch: get the raw files of one dataset, verify them, write data/raw/<dataset>/ atomically.

    python -m pipelines.fetch fashion_mnist|diabetes

Sources are tried in order for every file, first verified copy wins: a local mirror
($REGBENCH_DATA_MIRROR, else params data.mirror), Debian's dataset-fashion-mnist directory, the
official download. data/raw/<dataset>/source.json records the sha256 of each file: no source, path
or timestamp, so the same files fetched again, from any source, give the same output for DVC. Which
source and location served each file is in data/raw/<dataset>.origin.json, which DVC does not hash.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.core import params
from pipelines.core.errors import stage
from pipelines.data.sources import default_sources, fetch


@stage
def main(argv: Sequence[str] | None = None) -> None:
    dataset = params.dataset_argument("fetch", argv, __doc__.splitlines()[0])
    study = params.load()
    target = fetch(dataset, default_sources(study.data.mirror))
    print(f"fetch {dataset}: wrote {target}/")


if __name__ == "__main__":
    main()

"""The addresses `make ui` prints: each regbench experiment's runs page in the MLflow UI.

    python -m pipelines.training.browse <tracking URI> <UI address>

MLflow 3's UI opens on its GenAI overview, which is empty for this project; the runs of an
experiment are at <UI address>/#/experiments/<id>/runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mlflow import MlflowClient

from pipelines.training.tracking import EXPERIMENT_PREFIX


def runs_addresses(uri: str, ui: str) -> dict[str, str]:
    """{experiment name: its runs page} for every regbench experiment in the store at `uri`."""
    experiments = MlflowClient(uri).search_experiments(filter_string=f"name LIKE '{EXPERIMENT_PREFIX}%'")
    return {
        e.name: f"{ui.rstrip('/')}/#/experiments/{e.experiment_id}/runs"
        for e in sorted(experiments, key=lambda e: e.name)
    }


def main(argv: Sequence[str] | None = None) -> None:
    uri, ui = argv if argv is not None else sys.argv[1:]
    addresses = runs_addresses(uri, ui)
    if not addresses:
        print(f"no regbench runs in {uri} yet: `make repro` trains and logs them")
    for name, address in addresses.items():
        print(f"  {name}: {address}")


if __name__ == "__main__":
    main()

"""Stage prepare: parse and validate one dataset's raw files, split them with a fixed seed, then
impute and standardize with statistics of the training split only.

    python -m pipelines.prepare fashion_mnist|diabetes

Writes data/prepared/<dataset>.pt (float32 x_<split> of shape (n, features), int64 y_<split>, for
train, val and test) and data/prepared/<dataset>.json (its metadata), each atomically.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.core import params
from pipelines.core.errors import stage
from pipelines.data.preparation import prepare


@stage
def main(argv: Sequence[str] | None = None) -> None:
    dataset = params.dataset_argument("prepare", argv, __doc__.splitlines()[0])
    study = params.load()
    tensors_path, metadata_path = prepare(dataset, study.data)
    print(f"prepare {dataset}: wrote {tensors_path} and {metadata_path}")


if __name__ == "__main__":
    main()

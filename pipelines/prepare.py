"""Stage prepare: parse and validate one dataset's raw files, split them with a fixed seed (Pima:
data.diabetes.splits stratified splits), then impute and standardize with statistics of each split's
training part only.

    python -m pipelines.prepare fashion_mnist|diabetes

Writes data/prepared/<dataset>.pt (float32 x_<part> of shape (splits, n, features), int64 y_<part>
of shape (splits, n), for the parts train, val and test; Fashion-MNIST has one split) and
data/prepared/<dataset>.json (its metadata), each atomically.
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

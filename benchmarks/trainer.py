"""Benchmark: the batched trainer against the one-network reference loop, side by side.

    python -m benchmarks.trainer [--device cpu|cuda] [--cases diabetes fashion_mnist gpu_target]

For each case it trains the grid of params.yaml (the chosen profile) with the batched trainer,
and a few of the same members with the reference loop, on random data of the dataset's shape
(speed does not depend on the values). It prints member-samples/s of both and their ratio, the
achieved GFLOP/s against this machine's own torch matmul GFLOP/s measured in the same run, and
peak memory. `gpu_target` is the GPU goal: 200 members x 20 epochs x 55,000 images.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import statistics
import time

import torch

from pipelines.core import params
from pipelines.core.params import DatasetTrain
from pipelines.data.datasets import Prepared
from pipelines.training import grid
from pipelines.training.devices import choose_device
from pipelines.training.reference import train_reference
from pipelines.training.trainer import train_grid

SHAPES = {"diabetes": (461, 154, 153, 8, 2), "fashion_mnist": (10_000, 5_000, 10_000, 784, 10)}


def random_data(train: int, val: int, test: int, features: int, classes: int, splits: int = 1) -> Prepared:
    """`splits` splits of random samples (the trainer gathers each seed's from its own when there are several)."""
    g = torch.Generator().manual_seed(0)

    def part(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(splits, n, features, generator=g), torch.randint(0, classes, (splits, n), generator=g)

    (xt, yt), (xv, yv), (xs, ys) = part(train), part(val), part(test)
    return Prepared(xt, yt, xv, yv, xs, ys, class_names=tuple(map(str, range(classes))), metadata={})


def matmul_gflops(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """This machine's float32 matmul throughput: the median of a few square products."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    timings = []
    for _ in range(repeats + 1):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        timings.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(timings[1:]) / 1e9


def grid_flops(grid_spec: DatasetTrain, data: Prepared, members: int) -> float:
    """Multiply-adds x 2 of training (forward, weight and input gradients) and of evaluation."""
    sizes = [data.n_features, *grid_spec.hidden, data.n_classes]
    products = [i * o for i, o in zip(sizes[:-1], sizes[1:])]
    per_train_sample = 2 * sum(products) * 3 - 2 * products[0]  # no gradient for the input itself
    evaluations = sum(
        1 for e in range(1, grid_spec.epochs + 1) if e % grid_spec.eval_every == 0 or e == grid_spec.epochs
    )
    eval_samples = sum(data.sizes().values())
    per_member = grid_spec.epochs * data.sizes()["train"] * per_train_sample + evaluations * eval_samples * 2 * sum(
        products
    )
    return members * per_member


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(
    name: str,
    grid_spec: DatasetTrain,
    data: Prepared,
    device: torch.device,
    reference_members: int,
    thresholds: list[float],
    peak_gflops: float,
) -> None:
    # The networks: grid_flops counts every member as one, and the benchmark stays comparable with
    # its runs before the linear references (a few percent of members, a fraction of a percent of FLOPs).
    members = [m for m in grid.expand(grid_spec) if m.hidden]
    # Warm up both trainers on two mini-batches: the first products of each shape pay one-off costs.
    few = dataclasses.replace(
        data, x_train=data.x_train[:, : 2 * grid_spec.batch_size], y_train=data.y_train[:, : 2 * grid_spec.batch_size]
    )
    warm = grid_spec.model_copy(update={"epochs": 1, "eval_every": 1})
    train_grid(members, few, warm, thresholds, device, progress=False)
    if reference_members:
        train_reference(members[0], few, warm, thresholds)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    result = train_grid(members, data, grid_spec, thresholds, device, progress=False)
    batched_rate = result.member_samples / result.seconds
    gflops = grid_flops(grid_spec, data, len(members)) / result.seconds / 1e9
    print(
        f"\n== {name}: {len(members)} members x {grid_spec.epochs} epochs x {data.sizes()['train']:,} samples "
        f"(hidden {grid_spec.hidden}, batch {grid_spec.batch_size}) on {device.type}"
    )
    print(
        f"batched   : {result.seconds:8.2f} s  {batched_rate:14,.0f} member-samples/s  "
        f"{gflops:8.1f} GFLOP/s = {gflops / peak_gflops:5.1%} of matmul  peak memory {_peak_memory_mb(device):,.0f} MiB"
    )
    if reference_members:
        # Spread the sample over the grid so every family and optimizer is represented.
        step = max(1, len(members) // reference_members)
        sample = members[::step][:reference_members]
        start = time.perf_counter()
        for member in sample:
            train_reference(member, data, grid_spec, thresholds)
        seconds = time.perf_counter() - start
        reference_rate = len(sample) * grid_spec.epochs * data.sizes()["train"] / seconds
        reference_gflops = grid_flops(grid_spec, data, len(sample)) / seconds / 1e9
        print(
            f"reference : {seconds:8.2f} s for {len(sample)} members  {reference_rate:14,.0f} member-samples/s  "
            f"{reference_gflops:8.1f} GFLOP/s = {reference_gflops / peak_gflops:5.1%} of matmul  (one member at a time)"
        )
        print(f"speed-up  : {batched_rate / reference_rate:8.1f}x  (batched / reference member-samples/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--cases", nargs="+", default=None, choices=["diabetes", "fashion_mnist", "gpu_target"])
    parser.add_argument("--reference-members", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=None, help="override epochs of the params grid")
    parser.add_argument("--tf32", action="store_true", help="also time CUDA matmuls on TF32 tensor cores")
    args = parser.parse_args()

    study = params.load()
    device = choose_device(args.device)  # strict float32 first; --tf32 adds the TF32 timing
    cases = args.cases or (["gpu_target"] if device.type == "cuda" else ["diabetes", "fashion_mnist"])
    thresholds = study.train.sparsity_thresholds
    torch.manual_seed(0)
    peak = matmul_gflops(device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, matmul 2048^3 float32: {peak:,.1f} GFLOP/s")
    for name in cases:
        if name == "gpu_target":
            base = study.train.fashion_mnist
            grid_spec = base.model_copy(update={"epochs": 20, "eval_every": 20})
            per_seed = len(grid.expand(grid_spec.model_copy(update={"seeds": [0]})))
            grid_spec = grid_spec.model_copy(update={"seeds": list(range(-(-200 // per_seed)))})
            data = random_data(55_000, 5_000, 10_000, 784, 10)
            members = len(grid.expand(grid_spec))
            print(f"(gpu_target: {members} members, the nearest whole number of seeds to 200)")
            run_case(name, grid_spec, data, device, 0, thresholds, peak)
            if args.tf32:
                torch.backends.cuda.matmul.allow_tf32 = True
                run_case(name + " (TF32 matmuls)", grid_spec, data, device, 0, thresholds, peak)
                torch.backends.cuda.matmul.allow_tf32 = False
            continue
        grid_spec = getattr(study.train, name)
        if args.epochs:
            grid_spec = grid_spec.model_copy(update={"epochs": args.epochs})
        splits = study.data.diabetes.splits if name == "diabetes" else 1  # as prepare writes them
        data = random_data(*SHAPES[name], splits=splits)
        run_case(name, grid_spec, data, device, args.reference_members, thresholds, peak)


if __name__ == "__main__":
    main()

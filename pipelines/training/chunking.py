"""How the batched trainer cuts a grid into chunks trained at once, and sizes them: members of a
cohort (one optimizer rule, one architecture) as a block of seeds by a block of configurations,
ordered so that each per-member term touches one slice of the stack; how the chunks' stacks are put
back in member order; evaluation blocks; how the CPU heap is kept."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator

import torch

from pipelines.core.params import DatasetTrain
from pipelines.core.results import LINEAR
from pipelines.data.datasets import Prepared
from pipelines.training import networks
from pipelines.training.grid import Member


def keep_freed_memory() -> None:
    """Have glibc keep freed memory for reuse instead of handing it back to the kernel.

    Every training step allocates and frees the same large tensors. glibc serves blocks above 32 MB
    with mmap and unmaps them when they are freed, so each step would fault them back in page by
    page: a quarter of a Fashion-MNIST step on the CPU. Other C libraries are left as they are.
    """
    if not sys.platform.startswith("linux"):
        return
    mallopt = getattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_MAX, 0)  # serve every block from the heap
        mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # and keep the freed top of the heap


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's <malloc.h>


def chunks(
    members: list[Member], grid_spec: DatasetTrain, data: Prepared, device: torch.device, max_chunk_members: int
) -> Iterator[list[Member]]:
    """Chunks of one cohort: a block of its seeds times a block of its configurations, laid out
    seed-major (member s·C + c of a chunk is configuration c of seed s)."""
    limit = max_chunk_members or members_that_fit(grid_spec, data, device)
    cohorts: dict[tuple, dict[tuple[str, int], Member]] = {}
    for m in members:
        cohorts.setdefault(m.cohort, {})[m.config, m.seed] = m
    for cohort in cohorts.values():
        seeds = sorted({seed for _, seed in cohort})
        configs = sorted({grid_spec for grid_spec, _ in cohort}, key=lambda c: feature_order(cohort[c, seeds[0]]))
        if len(cohort) != len(seeds) * len(configs):
            raise ValueError("the batched trainer needs every configuration of a cohort with every seed")
        seeds_at_once = min(len(seeds), limit)
        configs_at_once = max(1, limit // seeds_at_once)
        for i in range(0, len(seeds), seeds_at_once):
            for j in range(0, len(configs), configs_at_once):
                yield [cohort[c, s] for s in seeds[i : i + seeds_at_once] for c in configs[j : j + configs_at_once]]


Layers = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: weights (M, out, in) and biases (M, out)


def in_member_order(parts: list[tuple[list[Member], Layers]], members: list[Member]) -> Layers:
    """The stacked layers of `members`, one architecture, in their order, from parts (members and
    their stacked layers) of any architecture, chunks of a grid or shards of one; none for no members."""
    if not members:
        return []
    wanted = {m.member for m in members}
    chosen = [(part, layers) for part, layers in parts if part[0].member in wanted]  # a part has one architecture
    position = {m.member: i for i, m in enumerate(m for part, _ in chosen for m in part)}
    rows = torch.tensor([position[m.member] for m in members])

    def stacked(layer: int, tensor: int) -> torch.Tensor:  # tensor 0: weights, 1: biases
        return torch.cat([layers[layer][tensor] for _, layers in chosen])[rows]

    return [(stacked(i, 0), stacked(i, 1)) for i in range(len(chosen[0][1]))]


# The configurations of a chunk are ordered by family, so that the members using each per-member
# term form one block of configurations (activity + dropout: the head; l1: l1 + elastic; l2
# gradient: elastic + l2 + weight_decay) and the term touches a strided slice of the stack.
FAMILY_ORDER = (
    "activity",
    "dropout",
    "none",
    "prox_l1",
    "l1",
    "elastic",
    "l2",
    "weight_decay",
    "l2_norm",
    "adamw",
    "sgdw",
    LINEAR,  # a cohort of its own (grid.Member.cohort): no hidden layer to stack with the networks
)


def feature_order(m: Member) -> tuple:
    return FAMILY_ORDER.index(m.family), m.penalize_bias, m.config


def members_that_fit(grid_spec: DatasetTrain, data: Prepared, device: torch.device) -> int:
    """How many members fit at once: on CUDA half the free memory, on the CPU all of them."""
    if device.type != "cuda":
        return 1 << 30
    sizes = networks.layer_sizes(data.n_features, grid_spec.hidden, data.n_classes)
    parameters = sum((i + 1) * o for i, o in zip(sizes[:-1], sizes[1:]))
    activations = grid_spec.batch_size * 4 * sum(sizes[1:]) + EVAL_ROWS * sum(sizes[1:])
    per_member = 4 * (5 * parameters + 3 * activations)  # float32: weights, grads, 2 moments, scratch
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, int(free * 0.5 // per_member))


EVAL_ROWS = 1024  # at most this many samples evaluated at once, bounding memory to M x width x 1024


def eval_rows(sizes: list[int]) -> int:
    """Samples evaluated at once: a power of two (as matrix kernels like), with up to twice as many
    activations as weights. Every block of samples reads all the weights once, so large networks
    want large blocks, while small ones want blocks whose activations stay in cache."""
    weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
    rows = 1 << (2 * weights // sum(sizes[1:])).bit_length() - 1
    return min(EVAL_ROWS, max(32, rows))


def initial_stacks(
    members: list[Member], sizes: list[int], device: torch.device
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each layer's initial weights (M, out, in) and biases (M, out, 1) of the members, stacked in
    their order: a member starts from its seed's initial network, so members of a seed share it."""
    initial = {s: networks.initial_parameters(s, sizes) for s in dict.fromkeys(m.seed for m in members)}
    layers = range(len(sizes) - 1)
    weights = [torch.stack([initial[m.seed][i][0] for m in members]).to(device).requires_grad_() for i in layers]
    biases = [
        torch.stack([initial[m.seed][i][1][:, None] for m in members]).to(device).requires_grad_() for i in layers
    ]
    return weights, biases

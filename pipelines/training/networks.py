"""The MLP both trainers share: its initial weights and the random streams of one seed.

Everything random about a member comes from its seed through three independent streams (initial
weights, mini-batch order, dropout noise), so members that share a seed are paired: they start
from the same weights, see the same batches and draw the same dropout noise. Dropout keeps a unit
when its noise u ~ U[0, 1) is >= p, so masks are nested across p within a seed. Mini-batches are
consecutive slices of an epoch's order (the last one may be smaller).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}
_STREAMS = {"init": 1, "order": 2, "dropout": 3}


def generator(seed: int, stream: str, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of one of a seed's independent random streams."""
    return torch.Generator(device=device).manual_seed(seed * 1000 + _STREAMS[stream])


def layer_sizes(n_features: int, hidden: list[int], n_classes: int) -> list[int]:
    return [n_features, *hidden, n_classes]


def initial_parameters(seed: int, sizes: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight (out, in), bias (out,)) per layer, drawn like nn.Linear's default: U(±1/sqrt(fan_in))."""
    g = generator(seed, "init")
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = fan_in**-0.5
        weight = (torch.rand(fan_out, fan_in, generator=g) * 2 - 1) * bound
        bias = (torch.rand(fan_out, generator=g) * 2 - 1) * bound
        layers.append((weight, bias))
    return layers


def epoch_order(g: torch.Generator, n: int) -> torch.Tensor:
    """One epoch's order of the n training samples; mini-batches are its consecutive slices."""
    return torch.randperm(n, generator=g)


def dropout_noise(g: torch.Generator, n: int, widths: list[int], device: torch.device) -> list[torch.Tensor]:
    """One epoch's dropout noise: (n, width) per hidden layer, row i for the i-th sample of the
    epoch's order. Drawn once per epoch, so a mini-batch takes its rows without touching the RNG."""
    return [torch.rand(n, width, generator=g, device=device) for width in widths]

"""The MLP both trainers share: its initial weights and the random streams of one seed.

Everything random about a member comes from its seed through three independent streams (initial
weights, mini-batch order, dropout noise), so members that share a seed are paired: they start
from the same weights, see the same batches and draw the same dropout noise. Dropout keeps a unit
when its noise u ~ U[0, 1) is >= p, so masks are nested across p within a seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIVATIONS = {"relu": F.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}
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
        bound = fan_in ** -0.5
        weight = (torch.rand(fan_out, fan_in, generator=g) * 2 - 1) * bound
        bias = (torch.rand(fan_out, generator=g) * 2 - 1) * bound
        layers.append((weight, bias))
    return layers


def batch_order(g: torch.Generator, n: int, batch_size: int) -> list[torch.Tensor]:
    """One epoch's mini-batches of sample indices (the last one may be smaller)."""
    return list(torch.randperm(n, generator=g).split(batch_size))


def dropout_noise(g: torch.Generator, batch: int, width: int, device: torch.device) -> torch.Tensor:
    """Uniform noise deciding one layer's dropout mask for one mini-batch."""
    return torch.rand(batch, width, generator=g, device=device)

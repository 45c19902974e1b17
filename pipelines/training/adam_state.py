"""Adam's second-moment estimates, kept with the final weights: the per-weight v̂ that divides every
Adam step, the penalty's gradient included, which is how an L2 penalty and decoupled decay differ
under Adam. Written to models/<dataset>/adam_state.pt (its layout is in pipelines/core/results.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from pipelines.training.grid import Member


@dataclass
class SecondMoments:
    """For the members trained with Adam's rule (adam, adamw), in member order: exp_avg_sq as
    torch.optim.Adam keeps it, not bias-corrected, and what the correction needs,
    v̂ = exp_avg_sq / (1 − beta2^step)."""

    members: list[int]
    step: torch.Tensor  # (A,) int64: Adam steps taken
    beta2: torch.Tensor  # (A,) float64, as in params.yaml
    eps: torch.Tensor  # (A,) float64
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # exp_avg_sq per layer (A, out, in), (A, out), on the CPU


def of_optimizer(
    optimizer: torch.optim.Optimizer, parameters: list[torch.Tensor], members: list[Member]
) -> SecondMoments:
    """The state of an Adam optimizer over stacked parameters: the weights (M, out, in) of every
    layer, then the biases (M, out, 1)."""
    weights, biases = parameters[: len(parameters) // 2], parameters[len(parameters) // 2 :]
    state, first, count = optimizer.state, members[0], len(members)
    layers = [(state[w]["exp_avg_sq"].cpu(), state[b]["exp_avg_sq"][..., 0].cpu()) for w, b in zip(weights, biases)]
    return SecondMoments(
        members=[m.member for m in members],
        step=torch.full((count,), int(state[weights[0]]["step"]), dtype=torch.int64),
        beta2=torch.full((count,), first.betas[1], dtype=torch.float64),
        eps=torch.full((count,), first.eps, dtype=torch.float64),
        layers=layers,
    )


def in_member_order(chunks: list[SecondMoments], members: list[Member]) -> SecondMoments:
    """The chunks' second moments as one stack, in the members' order."""
    position = {member: i for i, member in enumerate(m for chunk in chunks for m in chunk.members)}
    ids = [m.member for m in members if m.member in position]
    rows = torch.tensor([position[i] for i in ids])

    def stack(tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(tensors)[rows]

    layers = [
        (stack([c.layers[i][0] for c in chunks]), stack([c.layers[i][1] for c in chunks]))
        for i in range(len(chunks[0].layers))
    ]
    return SecondMoments(
        members=ids,
        step=stack([c.step for c in chunks]),
        beta2=stack([c.beta2 for c in chunks]),
        eps=stack([c.eps for c in chunks]),
        layers=layers,
    )


def save(moments: SecondMoments, path: Path) -> None:
    torch.save(
        {
            "members": moments.members,
            "step": moments.step,
            "beta2": moments.beta2,
            "eps": moments.eps,
            "layers": [{"weight": w, "bias": b} for w, b in moments.layers],
        },
        path,
    )

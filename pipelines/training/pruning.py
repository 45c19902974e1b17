"""Functional and scale-free sparsity of trained networks, batched over members.

A threshold such as |w| < 0.01 measures a network's scale as much as its sparsity: L2 shrinks every
weight below it without making anything sparse, and Adam's step size sets a floor under L1's
weights. What matters is how much of a network can be removed without changing what it computes
(the pruning curve), and how weights compare with their own layer's scale.

Networks are stacked as the trainers and models/<dataset>/weights.pt hold them: weights per layer
(M, out, in), biases (M, out). Biases are never pruned and are not weights in any measure here.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch
from tqdm.auto import tqdm

from pipelines.core import interrupts
from pipelines.data.datasets import Prepared, Split
from pipelines.training import networks
from pipelines.training.evaluation import loss_and_accuracy
from pipelines.training.grid import Member
from pipelines.training.trainer import GridResult

# The fractions k of each layer's weights removed, from none to nearly all.
PRUNE_FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99)
# A weight of |w| ≤ RMS_EPSILON × its layer's RMS counts as negligible (scale-free).
RMS_EPSILON = 0.01
# The prunable fraction allows validation accuracy to fall this far (0.005 = half a point).
PRUNABLE_TOLERANCE = 0.005
# Bisection steps that refine the prunable fraction between two rungs of PRUNE_FRACTIONS: 3 narrow a
# gap of 0.1 to 0.0125. Read off the rungs alone, seeds tie on a rung and a paired rank test loses
# the tied pairs; on Fashion-MNIST that left H1a's 10 seeds unable to reach alpha at any effect.
REFINE_STEPS = 3
# float32's smallest normal number, 1.18e-38: nonzero weights below it are denormals, the mark of
# a weight that has decayed geometrically for lack of any gradient (Adam with L2 on dead units).
FLOAT32_SMALLEST_NORMAL = torch.finfo(torch.float32).tiny


def ranked(weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per layer, each weight's rank (M, n) in its member's layer from the smallest magnitude up
    (0 first); equal magnitudes in order of position, NaN last."""
    ranks = []
    for w in weights:
        order = w.flatten(1).abs().argsort(dim=1, stable=True)
        positions = torch.arange(order.shape[1], device=w.device).expand_as(order)
        ranks.append(torch.empty_like(order).scatter_(1, order, positions))
    return ranks


def prune(
    weights: list[torch.Tensor], fraction: float | torch.Tensor, ranks: list[torch.Tensor] | None = None
) -> list[torch.Tensor]:
    """Each member's layers with their round(fraction·n) smallest-magnitude weights set to 0, one
    fraction for every member or one each (M,), ranked within the layer (so a layer of large weights
    is not emptied for another's sake) by `ranks` (ranked(weights), computed here when not given), so
    exactly that many are removed."""
    pruned = []
    for w, rank in zip(weights, ranks or ranked(weights)):
        k = torch.round(torch.as_tensor(fraction, dtype=torch.float64, device=w.device) * rank.shape[1])
        pruned.append(w.flatten(1).masked_fill(rank < k.expand(len(w))[:, None], 0.0).view_as(w))
    return pruned


@torch.no_grad()
def pruning_curve(
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    activation: str,
    fractions: tuple[float, ...] = PRUNE_FRACTIONS,
    rows: int = 1024,
    ranks: list[torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Mean cross-entropy ("loss") and accuracy ("acc", float64 k/n) of every member with each
    fraction pruned (no fine-tuning), as (fractions, M) tensors; samples go `rows` at a time. A
    member with a non-finite weight (diverged) gets NaN. `ranks`: ranked(weights), if known."""
    ranks = ranks or ranked(weights)
    curve = [_scores(prune(weights, fraction, ranks), biases, x, y, activation, rows) for fraction in fractions]
    broken = ~_finite(weights).cpu()
    return {
        name: torch.where(broken, torch.nan, torch.stack([scores[i] for scores in curve]).cpu())
        for i, name in enumerate(("loss", "acc"))
    }


def prunable_fraction(
    accuracy: torch.Tensor, fractions: tuple[float, ...] = PRUNE_FRACTIONS, tolerance: float = PRUNABLE_TOLERANCE
) -> torch.Tensor:
    """Per member, the largest fraction before the first whose (validation) accuracy falls more
    than `tolerance` below the unpruned network's; `accuracy` is (fractions, M) from pruning_curve
    with fractions[0] = 0. A member whose unpruned accuracy is NaN (diverged) gets NaN."""
    value = torch.tensor(fractions, dtype=torch.float64)[_last_within(accuracy, fractions, tolerance)]
    return torch.where(accuracy[0].isnan(), torch.nan, value)


@torch.no_grad()
def refined_prunable_fraction(
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    activation: str,
    accuracy: torch.Tensor,
    fractions: tuple[float, ...] = PRUNE_FRACTIONS,
    steps: int = REFINE_STEPS,
    tolerance: float = PRUNABLE_TOLERANCE,
    ranks: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """prunable_fraction refined by bisection between its rung and the next, where the accuracy fell:
    each step prunes every member at the middle of its own interval and keeps the half in which the
    fall lies. The result is the largest fraction tested within `tolerance`. `accuracy` is
    pruning_curve's on the same samples x, y; a member within tolerance at the last rung keeps it."""
    ladder = torch.tensor(fractions, dtype=torch.float64)
    kept = _last_within(accuracy, fractions, tolerance)
    low, high = ladder[kept], ladder[(kept + 1).clamp(max=len(fractions) - 1)]
    unpruned, ranks = accuracy[0], ranks or ranked(weights)
    for _ in range(steps):
        middle = (low + high) / 2
        _, middle_accuracy = _scores(prune(weights, middle, ranks), biases, x, y, activation)
        within = _within(middle_accuracy.cpu(), unpruned, tolerance)
        low, high = torch.where(within, middle, low), torch.where(within, high, middle)
    return torch.where(unpruned.isnan(), torch.nan, low)


def _last_within(accuracy: torch.Tensor, fractions: tuple[float, ...], tolerance: float) -> torch.Tensor:
    """Per member (M,), the index of the last fraction before the first fall (0 for a NaN member)."""
    if fractions[0] != 0:
        raise ValueError(f"fractions must start at 0 (the unpruned network); found {fractions[0]}")
    within = _within(accuracy, accuracy[0], tolerance)
    return (within.to(torch.int64).cumprod(0).sum(0) - 1).clamp(min=0)


def _within(accuracy: torch.Tensor, unpruned: torch.Tensor, tolerance: float) -> torch.Tensor:
    # The slack keeps an accuracy exactly `tolerance` below (k/n arithmetic) within it.
    return accuracy >= unpruned - tolerance - 1e-12


def _scores(
    pruned: list[torch.Tensor],
    biases: list[torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    activation: str,
    rows: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss and accuracy (float64 k/n) of stacked networks on samples x, y, `rows` at a time."""
    interrupts.check()
    loss = torch.zeros(len(pruned[0]), dtype=torch.float64, device=x.device)
    correct = torch.zeros(len(pruned[0]), dtype=torch.float64, device=x.device)
    for start in range(0, len(y), rows):
        logits, _ = _forward(pruned, biases, x[start : start + rows], activation)
        block_loss, block_correct = loss_and_accuracy(logits, y[start : start + rows])
        loss += block_loss.double()
        correct += block_correct.double()
    return loss / len(y), correct / len(y)


def layer_measures(weights: list[torch.Tensor], epsilon: float = RMS_EPSILON) -> dict[str, torch.Tensor]:
    """Scale-free and structural measures per member, (M,) each: per layer i (1 = first) and overall,
    weighted by layer size.

      layer<i>_negligible, negligible  fraction of weights with |w| ≤ ε × the layer's RMS (an
                                       all-zero layer is all negligible)
      layer<i>_hoyer, hoyer_layers     Hoyer's sparsity of the layer (√n − ‖w‖₁/‖w‖₂)/(√n − 1):
                                       0 flat, 1 one nonzero; 1 for an all-zero layer
      layer<i>_zeros, zeros            fraction of exact zeros
      layer<i>_underflow, underflow    fraction of nonzero weights below float32's smallest normal
    NaN weights (a diverged member) give NaN.
    """
    out: dict[str, torch.Tensor] = {}
    sizes = torch.tensor([w[0].numel() for w in weights], dtype=torch.float64, device=weights[0].device)
    for i, w in enumerate(weights, start=1):
        flat = w.flatten(1).double()
        magnitude = flat.abs()
        n = flat.shape[1]
        rms = flat.square().mean(1, keepdim=True).sqrt()
        norm1, norm2 = magnitude.sum(1), flat.square().sum(1).sqrt()
        hoyer = (n**0.5 - norm1 / norm2) / (n**0.5 - 1)
        nan = magnitude.isnan().any(1)
        measures = {
            "negligible": (magnitude <= epsilon * rms).double().mean(1),
            "hoyer": torch.where(norm2 == 0, 1.0, hoyer),
            "zeros": (flat == 0).double().mean(1),
            "underflow": ((flat != 0) & (magnitude < FLOAT32_SMALLEST_NORMAL)).double().mean(1),
        }
        for name, value in measures.items():
            out[f"layer{i}_{name}"] = torch.where(nan, torch.nan, value)
    for name, overall in (
        ("negligible", "negligible"),
        ("hoyer", "hoyer_layers"),
        ("zeros", "zeros"),
        ("underflow", "underflow"),
    ):
        per_layer = torch.stack([out[f"layer{i}_{name}"] for i in range(1, len(weights) + 1)])
        out[overall] = (per_layer * sizes[:, None]).sum(0) / sizes.sum()
    return out


@torch.no_grad()
def dead_units(
    weights: list[torch.Tensor], biases: list[torch.Tensor], x: torch.Tensor, activation: str, rows: int = 1024
) -> dict[str, torch.Tensor]:
    """Per member (M,), the number of hidden units that never activate on the samples x: whose
    pre-activation is ≤ 0 on every one of them (under ReLU they output 0 and receive no gradient);
    per hidden layer ("layer<i>_dead") and in all ("dead_units"). NaN for a diverged member."""
    active = [torch.zeros(w.shape[:2], dtype=torch.bool, device=w.device) for w in weights[:-1]]
    for start in range(0, len(x), rows):
        _, hidden = _forward(weights, biases, x[start : start + rows], activation)
        for seen, h in zip(active, hidden):
            seen |= (h > 0).any(-1)
    dead = [(~seen).sum(1).double().cpu() for seen in active]
    broken = ~_finite(weights).cpu()
    out = {f"layer{i}_dead": count for i, count in enumerate(dead, start=1)}
    out["dead_units"] = torch.stack(dead).sum(0)
    return {name: torch.where(broken, torch.nan, count) for name, count in out.items()}


def measure(
    weights: list[torch.Tensor], biases: list[torch.Tensor], data: Split, activation: str, device: torch.device
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Everything above for stacked members on `device`: one row per member (prunable_fraction
    refined between the rungs, layer_measures and dead units on the validation set) and the pruning
    curves, one row per member (position `member` in the stack) and fraction, on the validation set.
    Not on the test set: nothing reads a pruned network's test accuracy, and on Fashion-MNIST's
    10,000 test images it would double the stage's pruning time (the unpruned test accuracy is in
    runs.csv)."""
    weights, biases = [w.to(device) for w in weights], [b.to(device) for b in biases]
    x, y, ranks = data.x_val.to(device), data.y_val.to(device), ranked(weights)
    val = pruning_curve(weights, biases, x, y, activation, ranks=ranks)
    per_member = {
        "prunable_fraction": refined_prunable_fraction(weights, biases, x, y, activation, val["acc"], ranks=ranks)
    }
    per_member |= {name: value.cpu() for name, value in layer_measures(weights).items()}
    per_member |= dead_units(weights, biases, x, activation)
    members, fractions = len(weights[0]), len(PRUNE_FRACTIONS)
    curve = pd.DataFrame(
        {
            "member": torch.arange(members).repeat(fractions).numpy(),
            "fraction": torch.tensor(PRUNE_FRACTIONS, dtype=torch.float64).repeat_interleave(members).numpy(),
            "val_loss": val["loss"].flatten().numpy(),
            "val_acc": val["acc"].flatten().numpy(),
        }
    )
    return pd.DataFrame({name: value.numpy() for name, value in per_member.items()}), curve


def with_structure(
    result: GridResult,
    members: list[Member],
    data: Prepared,
    activation: str,
    device: torch.device,
    progress: bool = True,
) -> GridResult:
    """The trained result with the contract's structure columns in its final rows and the networks'
    pruning curves (`member` as in the grid), each seed's on its split; a diverged member's are NaN, as
    its metrics are, and so are a linear reference's, which has no hidden layer to prune or find dead
    (results.LINEAR). `members` are the result's in its order. Networks are measured one seed at a
    time, because a product over a stack of members rounds differently as the stack grows, and a
    seed's members are the same stack whichever way the grid is sharded (pipelines/training/scaleout.py).
    `progress`: a bar over the seeds (minutes on Fashion-MNIST's standard grid)."""
    weights, biases = [w for w, _ in result.weights], [b for _, b in result.weights]
    networks = [i for i, m in enumerate(members) if m.hidden]  # their rows of result.final, in result.weights' order
    order = torch.tensor([members[i].seed for i in networks])
    structures, curves = [], []
    for seed in tqdm(sorted(set(order.tolist())), desc="pruning curves", unit="seed", disable=not progress):
        rows = torch.nonzero(order == seed).flatten()
        structure, curve = measure(
            [w[rows] for w in weights], [b[rows] for b in biases], data.for_seed(seed), activation, device
        )
        structures.append(structure.set_axis(rows.numpy()))
        curves.append(curve.assign(member=rows.numpy()[curve["member"]]))
    structure = pd.concat(structures).sort_index()
    curve = pd.concat(curves).sort_values(["fraction", "member"], kind="stable").reset_index(drop=True)
    diverged = (result.final["status"] == "diverged").to_numpy()[networks]
    structure.loc[diverged] = float("nan")
    curve.loc[diverged[curve["member"]], ["val_loss", "val_acc"]] = float("nan")
    curve["member"] = result.final["member"].to_numpy()[networks][curve["member"]]
    structure = structure.set_axis(networks).reindex(range(len(result.final)))  # NaN for the linear references
    final = pd.concat([result.final.reset_index(drop=True), structure], axis=1)
    return dataclasses.replace(result, final=final, pruning=curve)


def _finite(weights: list[torch.Tensor]) -> torch.Tensor:
    """(M,): whether every weight of a member is finite."""
    return torch.stack([w.flatten(1).isfinite().all(1) for w in weights]).all(0)


def _forward(
    weights: list[torch.Tensor], biases: list[torch.Tensor], x: torch.Tensor, activation: str
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits (M, classes, n) of the stacked networks on samples x (n, in), and each hidden layer's
    pre-activations (M, width, n)."""
    function = networks.ACTIVATIONS[activation]
    w, b = weights[0], biases[0]
    h = torch.addmm(b.reshape(-1, 1), w.reshape(-1, w.shape[2]), x.T).view(*w.shape[:2], -1)  # one product
    hidden = []
    for layer, (w, b) in enumerate(zip(weights, biases)):
        if layer:
            h = torch.baddbmm(b[..., None], w, h)
        if layer < len(weights) - 1:
            hidden.append(h)
            h = function(h)
    return h, hidden

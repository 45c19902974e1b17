"""The reference trainer: one network at a time, nn.Module + torch.optim + an ordinary loop.

It is kept to prove the batched trainer right (tests compare them member by member) and to measure
it (benchmarks/trainer.py). It shares with it only what defines the experiment: the seed's random
streams and initial weights (pipelines/training/networks.py), the penalties (pipelines/training/regularizers.py) and
what is measured (pipelines/training/evaluation.py).
"""

from __future__ import annotations

from typing import cast

import pandas as pd
import torch
from torch import nn

from pipelines.core.params import DatasetTrain
from pipelines.data.datasets import SPLITS, Prepared, Split
from pipelines.training import networks, regularizers
from pipelines.training.evaluation import loss_and_accuracy, split_measures, weight_measures
from pipelines.training.grid import Member


class MLP(nn.Module):
    def __init__(self, sizes: list[int], activation: str, dropout: tuple[float, ...]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.activation = networks.ACTIVATIONS[activation]
        self.dropout = dropout

    def forward(
        self, x: torch.Tensor, noise: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits and the hidden activations; with `noise` (one tensor per hidden layer), dropout
        keeps the units whose noise is at least p."""
        hidden = []
        for i, (layer, p) in enumerate(zip(self.layers[:-1], self.dropout)):
            x = self.activation(layer(x))
            hidden.append(x)
            if noise is not None:
                x = x * (noise[i] >= p) / (1 - p)
        return self.layers[-1](x), hidden


def train_reference(
    member: Member, data: Prepared, grid_spec: DatasetTrain, thresholds: list[float]
) -> tuple[dict, pd.DataFrame, MLP, torch.optim.Optimizer]:
    """Train one member on its seed's split; returns its final measures, its per-evaluation curve, the
    network and its optimizer (whose state the batched trainer's is checked against)."""
    split = data.for_seed(member.seed)
    sizes = networks.layer_sizes(data.n_features, list(member.hidden), data.n_classes)
    model = MLP(sizes, grid_spec.activation, member.dropout)
    linear = [cast(nn.Linear, layer) for layer in model.layers]
    with torch.no_grad():
        for layer, (weight, bias) in zip(linear, networks.initial_parameters(member.seed, sizes)):
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
    weights: list[torch.Tensor] = [layer.weight for layer in linear]
    biases: list[torch.Tensor] = [layer.bias for layer in linear]
    optimizer = _optimizer(member, weights, biases)
    order_stream = networks.generator(member.seed, "order")
    noise_stream = networks.generator(member.seed, "dropout") if any(member.dropout) else None
    n, widths = len(split.y_train), list(member.hidden)
    curves = []
    for epoch in range(1, grid_spec.epochs + 1):
        model.train()
        order = networks.epoch_order(order_stream, n)
        noise = networks.dropout_noise(noise_stream, n, widths, split.x_train.device) if noise_stream else None
        for start in range(0, n, grid_spec.batch_size):
            index = order[start : start + grid_spec.batch_size]
            batch_noise = [u[start : start + grid_spec.batch_size] for u in noise] if noise else None
            logits, hidden = model(split.x_train[index], batch_noise)
            loss = nn.functional.cross_entropy(logits, split.y_train[index])
            loss = loss + _penalty(member, weights, biases, hidden)
            optimizer.zero_grad()
            loss.backward()
            if member.optimizer == "sgdw":
                _decay_decoupled(member, weights, biases)
            optimizer.step()
            if member.prox_l1:
                with torch.no_grad():
                    for p in weights + (biases if member.penalize_bias else []):
                        regularizers.soft_threshold_(p, _proximal_threshold(member, optimizer, p))
        if epoch % grid_spec.eval_every == 0 or epoch == grid_spec.epochs:
            curves.append({"member": member.member, "epoch": epoch} | evaluate(model, split, thresholds))
    final = {k: v for k, v in curves[-1].items() if k != "epoch"}
    return final, pd.DataFrame(curves), model, optimizer


def _optimizer(member: Member, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> torch.optim.Optimizer:
    decay = member.decoupled_wd if member.optimizer == "adamw" else member.weight_decay
    groups = [
        {"params": weights, "weight_decay": decay},
        {"params": biases, "weight_decay": decay if member.penalize_bias else 0.0},
    ]
    if member.optimizer in ("sgd", "sgdw"):
        return torch.optim.SGD(groups, lr=member.lr, momentum=member.momentum)
    if member.optimizer == "adam":
        return torch.optim.Adam(groups, lr=member.lr, betas=member.betas, eps=member.eps)
    return torch.optim.AdamW(groups, lr=member.lr, betas=member.betas, eps=member.eps)


@torch.no_grad()
def _decay_decoupled(member: Member, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> None:
    """SGDW: w ← (1 − lr·λ)·w before the SGD step, outside its momentum buffer; torch.optim.AdamW's
    convention (decay lr·λ per step, applied to the weights before the update), under SGD."""
    for p in weights + (biases if member.penalize_bias else []):
        p.mul_(1 - member.lr * member.decoupled_wd)


def _proximal_threshold(member: Member, optimizer: torch.optim.Optimizer, p: torch.Tensor) -> torch.Tensor | float:
    """lr·λ under SGD; under Adam, rescaled by the step Adam has just taken (see regularizers)."""
    plain = member.lr * member.prox_l1
    if member.rule == "sgd":
        return plain
    state = optimizer.state[p]
    return regularizers.adam_scaled_threshold(plain, state["exp_avg_sq"], state["step"], member.betas[1], member.eps)


def _penalty(
    member: Member, weights: list[torch.Tensor], biases: list[torch.Tensor], hidden: list[torch.Tensor]
) -> torch.Tensor:
    terms = [
        (member.l1, regularizers.l1),
        (member.l2, regularizers.half_squared_l2),
        (member.l2_norm, regularizers.l2_norm),
    ]
    activity = [(member.act_l1, regularizers.activity_l1), (member.act_l2, regularizers.activity_l2)]
    penalized = weights + (biases if member.penalize_bias else [])
    total = torch.zeros(())
    for strength, penalty in terms:
        if strength:
            total = total + strength * sum(penalty(p) for p in penalized)
    for strength, activity_penalty in activity:
        if strength:
            total = total + strength * sum(activity_penalty(h) for h in hidden)
    return total


@torch.no_grad()
def evaluate(model: MLP, data: Split, thresholds: list[float]) -> dict[str, float]:
    """The contract's measures for one network, dropout off."""
    model.eval()
    losses, correct, sizes = {}, {}, {}
    for split in SPLITS:
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        logits, _ = model(x)
        losses[split], correct[split] = loss_and_accuracy(logits, y)
        sizes[split] = len(y)
    measures = split_measures(losses, correct, sizes)
    measures |= weight_measures([cast(nn.Linear, layer).weight for layer in model.layers], thresholds)
    return {k: float(v) for k, v in measures.items()}

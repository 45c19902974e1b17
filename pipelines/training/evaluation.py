"""What is measured on a network, by both trainers: classification loss and accuracy, and the
weight statistics (norms and sparsity) of its weight matrices. Biases are not weights here."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipelines.core.results import sparsity_column


def loss_and_accuracy(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy and number correct; classes along dim 1, as torch's losses take them:
    logits (n, classes) for one network, or (members, classes, n) with y (n,) or (members, n)."""
    if logits.dim() == 3:
        y = y.expand(logits.shape[0], -1)
    loss = F.cross_entropy(logits, y, reduction="none")
    correct = (logits.max(1).indices == y).to(logits.dtype)  # argmax, but fast along a strided dim
    return loss.sum(-1), correct.sum(-1)


def weight_measures(weights: list[torch.Tensor], thresholds: list[float], members: int = 0) -> dict[str, torch.Tensor]:
    """L1 and L2 norms, exact-zero fraction, fraction below each threshold and Hoyer sparsity.

    Hoyer's measure (√n − ‖w‖₁/‖w‖₂)/(√n − 1) is 0 for a flat weight vector and 1 for one nonzero.
    """
    flat = torch.cat([w.flatten(members) for w in weights], dim=-1)
    magnitude = flat.abs()
    n = flat.shape[-1]
    norm1 = magnitude.sum(-1)
    norm2 = torch.linalg.vector_norm(flat, dim=-1)
    root_n = n**0.5
    measures = {
        "weight_l1": norm1,
        "weight_l2": norm2,
        "exact_zeros": (flat == 0).to(flat.dtype).mean(-1),
        "hoyer": (root_n - norm1 / norm2) / (root_n - 1),
    }
    for t in thresholds:
        measures[sparsity_column(t)] = (magnitude < t).to(flat.dtype).mean(-1)
    return measures


def split_measures(
    losses: dict[str, torch.Tensor], correct: dict[str, torch.Tensor], sizes: dict[str, int]
) -> dict[str, torch.Tensor]:
    """Mean loss and accuracy per split, and the generalization gaps of the contract.

    An accuracy is the float64 of its integer count k/n, so that equal counts give equal numbers
    and the paired rank tests see true ties (in float32, k/n − (k−1)/n depends on k)."""
    out = {}
    for split in ("train", "val", "test"):
        out[f"{split}_loss"] = losses[split] / sizes[split]
        out[f"{split}_acc"] = correct[split].double() / sizes[split]
    out["gap_acc"] = out["train_acc"] - out["test_acc"]
    out["gap_loss"] = out["test_loss"] - out["train_loss"]
    return out

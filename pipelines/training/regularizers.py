"""The penalties, written once for both trainers (the conventions are stated in params.yaml).

Each takes a tensor whose first `members` dimensions index grid members (0 for one network, 1 for
the batched trainer) and returns one value per member, before multiplication by its strength.
The reference trainer differentiates the values with autograd; the batched trainer adds the
closed-form gradients (the *_gradient functions) to the members that use them, and the tests
check that both give the same networks. A gradient is returned as (tensor, scale), the gradient
being scale·tensor, so that the trainer adds strength·scale·tensor in one pass.
"""

from __future__ import annotations

import torch


def _per_member(members: int, t: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(members, t.dim()))


def l1(t: torch.Tensor, members: int = 0) -> torch.Tensor:
    """Σ|w|; its gradient is the subgradient sign(w), with sign(0) = 0."""
    return t.abs().sum(_per_member(members, t))


def half_squared_l2(t: torch.Tensor, members: int = 0) -> torch.Tensor:
    """(1/2)·Σw², so that λ times it has gradient λ·w, the same as weight decay λ."""
    return (t * t).sum(_per_member(members, t)) / 2


def l2_norm(t: torch.Tensor, members: int = 0) -> torch.Tensor:
    """‖w‖₂ (Frobenius, not squared), as tutorials write torch.norm(p, 2)."""
    return torch.linalg.vector_norm(t, dim=_per_member(members, t))


def l1_gradient(t: torch.Tensor, members: int = 0) -> tuple[torch.Tensor, float]:
    return t.sign(), 1.0


def half_squared_l2_gradient(t: torch.Tensor, members: int = 0) -> tuple[torch.Tensor, float]:
    return t, 1.0


def l2_norm_gradient(t: torch.Tensor, members: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """w/‖w‖₂, taken as 0 at w = 0 (autograd's choice too)."""
    norm = l2_norm(t, members).view(t.shape[:members] + (1,) * (t.dim() - members))
    return t, torch.where(norm > 0, norm.reciprocal(), 0.0)


def activity_l1(h: torch.Tensor, members: int = 0) -> torch.Tensor:
    """(1/B)·Σ|h| over a mini-batch of B hidden activations (Keras's activity_regularizer)."""
    return h.abs().sum(_per_member(members, h)) / h.shape[members]


def activity_l2(h: torch.Tensor, members: int = 0) -> torch.Tensor:
    """(1/B)·Σh² over a mini-batch of B hidden activations."""
    return (h * h).sum(_per_member(members, h)) / h.shape[members]


def soft_threshold_(w: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """The proximal step of λ·Σ|w| (threshold lr·λ under SGD, see adam_scaled_threshold), in place:
    sign(w)·max(|w| − t, 0), written as w − clamp(w, −t, t), which gives the same numbers in two
    passes, exact zeros included."""
    t = torch.as_tensor(threshold, dtype=w.dtype, device=w.device)
    return w.sub_(w.clamp(-t, t))


def adam_scaled_threshold(
    plain: torch.Tensor | float, exp_avg_sq: torch.Tensor, step: torch.Tensor, beta2: float, eps: float
) -> torch.Tensor:
    """The soft threshold of λ·Σ|w| in Adam's metric, per coordinate: plain = lr·λ divided by the
    denominator Adam divides that coordinate's step by, √v̂ + ε with v̂ = v/(1 − β2^t) (written
    as torch.optim.Adam writes it, √v/√(1 − β2^t) + ε; t = `step`, counted after the update).

    Adam takes steps of about lr in every coordinate, so a threshold of lr·λ is negligible against
    them and never reaches zero; the proximal step of the penalty in the metric Adam's step is
    taken in (a diagonally preconditioned proximal gradient step) is this one: Melchior et al.
    2019, "Proximal Adam: robust adaptive update scheme for constrained optimization"; Yun et al.
    2021, "Adaptive proximal gradient methods for structured neural networks" (ProxGen).
    """
    correction = (1 - beta2 ** step.to(torch.float64)).sqrt().to(exp_avg_sq.dtype)
    return plain / (exp_avg_sq.sqrt() / correction + eps)

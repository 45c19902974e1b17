"""The batched trainer: every member of a grid trained at once.

Parameters are stacked with a leading member dimension and multiplied with batched matrix
products; per-member hyperparameters are tensors. Members that share a seed share their mini-batch,
so the first layer of all of a seed's members is a single wide matrix product, and they share their
dropout noise. The optimizer arithmetic is torch.optim's own SGD and Adam (the decoupled decay of
AdamW and SGDW applied before it); tests check every family and optimizer against the
one-network-at-a-time reference in pipelines/training/reference.py.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pipelines.core import interrupts
from pipelines.core.params import DatasetTrain
from pipelines.data.datasets import SPLITS, Prepared
from pipelines.training import adam_state, chunking, networks, regularizers
from pipelines.training.evaluation import loss_and_accuracy, split_measures, weight_measures
from pipelines.training.grid import Member


@dataclass
class GridResult:
    """What training produced: final row and per-evaluation rows per member, and final weights."""

    final: pd.DataFrame  # member, status, diverged_epoch, epochs_run, metrics
    curves: pd.DataFrame  # member, epoch, metrics
    weights: chunking.Layers  # the networks' (every member with hidden layers), in member order, on the CPU
    seconds: float
    member_samples: int = 0
    second_moments: adam_state.SecondMoments | None = None  # None when no member was trained with Adam's rule
    pruning: pd.DataFrame | None = None  # pruning curves, added by pruning.with_structure
    # The linear references' one layer (L, classes, in), (L, classes), in member order; None when there are none
    linear_weights: tuple[torch.Tensor, torch.Tensor] | None = None
    diverged: int = field(init=False)

    def __post_init__(self) -> None:
        self.diverged = int((self.final["status"] == "diverged").sum())


def train_grid(
    members: list[Member],
    data: Prepared,
    grid_spec: DatasetTrain,
    thresholds: list[float],
    device: torch.device,
    max_chunk_members: int = 0,
    progress: bool = True,
    on_evaluation: Callable[[pd.DataFrame], None] | None = None,
) -> GridResult:
    """Train every member; members of one cohort (optimizer rule and architecture) are trained
    together, in chunks. `on_evaluation` receives each evaluation of a chunk as it is made (rows of
    curves)."""
    start = time.perf_counter()
    if device.type == "cpu":
        chunking.keep_freed_memory()
    data = dataclasses.replace(
        data,
        **{f"{kind}_{split}": getattr(data, f"{kind}_{split}").to(device) for split in SPLITS for kind in ("x", "y")},
    )
    chunks = list(chunking.chunks(members, grid_spec, data, device, max_chunk_members))
    steps = sum(grid_spec.epochs * math.ceil(data.sizes()["train"] / grid_spec.batch_size) for _ in chunks)
    bar = tqdm(total=steps, desc="train", unit="step", disable=not progress, dynamic_ncols=True)
    finals, curves, weights, moments = [], [], [], []
    with bar:
        for chunk in chunks:
            chunk_trainer = _Chunk(chunk, data, grid_spec, thresholds, device)
            for epoch in range(1, grid_spec.epochs + 1):
                evaluation = chunk_trainer.run_epoch(epoch, bar)
                if evaluation is not None and on_evaluation is not None:
                    on_evaluation(evaluation)
            finals.append(chunk_trainer.final())
            curves += chunk_trainer.curves
            weights.append((chunk, chunk_trainer.stacked_weights()))
            if chunk_trainer.rule == "adam" and chunk_trainer.hidden:  # adam_state.pt holds the networks'
                moments.append(adam_state.of_optimizer(chunk_trainer.optimizer, chunk_trainer.parameters, chunk))
    final = pd.concat(finals).set_index("member").loc[[m.member for m in members]].reset_index()
    linear = [m for m in members if not m.hidden]
    curve_frame = pd.concat(curves).sort_values(["member", "epoch"], kind="stable").reset_index(drop=True)
    return GridResult(
        final=final,
        curves=curve_frame,
        weights=chunking.in_member_order(weights, [m for m in members if m.hidden]),
        seconds=time.perf_counter() - start,
        member_samples=len(members) * grid_spec.epochs * data.sizes()["train"],
        second_moments=adam_state.in_member_order(moments, members) if moments else None,
        linear_weights=chunking.in_member_order(weights, linear)[0] if linear else None,
    )


class _Chunk:
    """One chunk of a cohort: stacked parameters, optimizer state and the seeds' random streams.

    Its members form a grid of S seeds by C configurations, stacked seed-major. Weights are
    (M, out, in) and activations (M, width, batch). The C members of one seed see the same
    mini-batch, so their first layers are one (C·width, in) by (in, batch) product; a per-member
    term views the stack as (S, C, ...) and takes the configurations that use it.
    """

    def __init__(
        self,
        members: list[Member],
        data: Prepared,
        grid_spec: DatasetTrain,
        thresholds: list[float],
        device: torch.device,
    ) -> None:
        self.members, self.grid_spec, self.thresholds, self.device = members, grid_spec, thresholds, device
        self.rule = members[0].rule
        self.hidden = list(members[0].hidden)  # one architecture per chunk: the grid's network, or none (linear)
        self.seeds = list(dict.fromkeys(m.seed for m in members))
        self.grid = (len(self.seeds), len(members) // len(self.seeds))
        # Each seed's split of the data, (S, n, ...) per tensor. With one split in the dataset (not the
        # chunk: a member's arithmetic stays the same however the grid is cut) evaluation is one product.
        self.parts, self.one_split = data.of_seeds(self.seeds), data.n_splits == 1
        self.seed_rows = torch.arange(len(self.seeds), device=device)[:, None]
        sizes = networks.layer_sizes(data.n_features, self.hidden, data.n_classes)
        self.eval_rows = chunking.eval_rows(sizes)
        self.weights, self.biases = chunking.initial_stacks(members, sizes, device)
        self.order_streams = [networks.generator(s, "order") for s in self.seeds]
        self.noise_streams = [networks.generator(s, "dropout", device) for s in self.seeds]
        self._hyperparameters()
        self.optimizer = self._optimizer()
        self.eager_steps = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.alive = torch.ones(len(members), dtype=torch.bool, device=device)
        self.finite = torch.ones(len(members), dtype=torch.bool, device=device)
        self.diverged_epoch: dict[int, int] = {}
        self.curves: list[pd.DataFrame] = []
        self.epochs_run = 0

    @property
    def parameters(self) -> list[torch.Tensor]:
        return self.weights + self.biases

    def _grid_view(self, t: torch.Tensor) -> torch.Tensor:
        """A stacked tensor (M, ...) seen as (seeds, configurations, ...)."""
        return t.view(*self.grid, *t.shape[1:])

    def _span(self, values: list[float]) -> slice | None:
        """The configurations from the first to the last with a member whose value is nonzero."""
        columns = torch.tensor(values).view(self.grid).ne(0).any(0).nonzero().view(-1).tolist()
        return slice(columns[0], columns[-1] + 1) if columns else None

    def _columns(self, values: list[float]) -> tuple[slice, torch.Tensor] | None:
        """The span of a term (see _span) and its members' values; None when every value is 0. A
        member inside the span whose value is 0 is left exactly as it is (the term adds 0,
        multiplies by 1 or thresholds at 0)."""
        span = self._span(values)
        return None if span is None else (span, self._values(values, span))

    def _values(self, values: list[float], span: slice) -> torch.Tensor:
        """Per-member values of the configurations in `span`, as (S, k, 1, 1)."""
        return torch.tensor(values, dtype=torch.float32).view(self.grid)[:, span, None, None].to(self.device)

    def _hyperparameters(self) -> None:
        ms = self.members
        # Penalty strengths on weights, and on biases (zero unless the member penalizes them).
        # Coupled weight decay adds λ·w to the gradient, exactly as the L2 penalty's gradient does.
        strengths = {
            "l1": [m.l1 for m in ms],
            "l2": [m.l2 + m.weight_decay for m in ms],
            "l2_norm": [m.l2_norm for m in ms],
            "decoupled_wd": [m.decoupled_wd for m in ms],
            "prox_l1": [m.prox_l1 for m in ms],
        }
        self.on_weights = {k: self._columns(v) for k, v in strengths.items()}
        self.on_biases = {k: self._columns([s * m.penalize_bias for s, m in zip(v, ms)]) for k, v in strengths.items()}
        # Activity penalties and dropout act on hidden activations, and only on the head of the
        # stack: the leading configurations, up to the last that has either (see chunking.FAMILY_ORDER).
        activity = {"l1": [m.act_l1 for m in ms], "l2": [m.act_l2 for m in ms]}
        dropout = [[m.dropout[i] for m in ms] for i in range(len(self.hidden))]
        uses = self._span([m.act_l1 or m.act_l2 or any(m.dropout) for m in ms])
        self.head = uses.stop if uses else 0
        head = slice(0, self.head)
        self.activity = {name: self._values(values, head) for name, values in activity.items() if any(values)}
        # A member with dropout draws noise for every hidden layer at every step, whatever the
        # others do, so its stream (and mask) never depends on which members share its chunk.
        self.drop = [self._values(p, head) for p in dropout] if any(map(any, dropout)) else None

    def _optimizer(self) -> torch.optim.Optimizer:
        """torch.optim's own update over the stacked tensors: one cohort shares lr, momentum, betas
        and eps, so the elementwise update of a stack is every member's update. The per-member
        decays are applied around it (see _update)."""
        m = self.members[0]
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        if self.rule == "sgd":
            return torch.optim.SGD(self.parameters, lr=m.lr, momentum=m.momentum, **fused)
        capturable = {"capturable": True} if self.device.type == "cuda" else {}  # for the CUDA graph
        return torch.optim.Adam(self.parameters, lr=m.lr, betas=m.betas, eps=m.eps, **fused, **capturable)

    # -- one epoch -------------------------------------------------------------------------------

    def run_epoch(self, epoch: int, bar: tqdm) -> pd.DataFrame | None:
        """Train one epoch; returns the evaluation's rows when the epoch is evaluated."""
        started = time.perf_counter()
        n, size = self.parts["y_train"].shape[1], self.grid_spec.batch_size
        # The epoch's order and dropout noise go to the device once: no host sync inside the epoch.
        order = torch.stack([networks.epoch_order(g, n) for g in self.order_streams]).to(self.device)
        noise = None
        if self.drop is not None:
            per_seed = [networks.dropout_noise(g, n, self.hidden, self.device) for g in self.noise_streams]
            noise = [torch.stack(layer) for layer in zip(*per_seed)]  # per layer (seeds, n, width)
        for start in range(0, n, size):
            rows = slice(start, start + size)
            self._run_step(order[:, rows], [u[:, rows] for u in noise] if noise else None)
            bar.update()
            interrupts.check()
        self._check_divergence(epoch)
        self.epochs_run = epoch
        evaluation = None
        if epoch % self.grid_spec.eval_every == 0 or epoch == self.grid_spec.epochs:
            evaluation = self._evaluate(epoch)
        rate = len(self.members) * n / (time.perf_counter() - started)
        bar.set_postfix(
            optimizer=self.members[0].optimizer, epoch=epoch, alive=int(self.alive.sum()), samples_s=f"{rate:,.0f}"
        )
        return evaluation

    def _run_step(self, index: torch.Tensor, noise: list[torch.Tensor] | None) -> None:
        """On CUDA, full mini-batches replay a captured CUDA graph of the step: launching its few
        hundred small kernels one by one from Python would cost more than running them."""
        if self.device.type != "cuda" or index.shape[1] != self.grid_spec.batch_size or self.eager_steps < 3:
            self.eager_steps += 1  # the first steps create the optimizer state the graph reuses
            self.optimizer.zero_grad()
            self._step(index, noise)
            return
        if self.graph is None:
            self.graph_inputs = (index.clone(), [u.clone() for u in noise] if noise else None)
            self.optimizer.zero_grad()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self._step(*self.graph_inputs)
        static_index, static_noise = self.graph_inputs
        static_index.copy_(index)
        for target, source in zip(static_noise or [], noise or []):
            target.copy_(source)
        self.graph.replay()

    def _member_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Labels per seed (S, n) as labels per member (M, n); labels shared by all (n,) as they are."""
        return y if y.dim() == 1 else y[:, None].expand(*self.grid, -1).reshape(len(self.members), -1)

    def _step(self, index: torch.Tensor, noise: list[torch.Tensor] | None) -> None:
        """One mini-batch: `index` (seeds, batch) of samples, `noise` per layer (seeds, batch, width)."""
        x, y = (self.parts[name][self.seed_rows, index] for name in ("x_train", "y_train"))  # each seed's split
        logits, penalty = self._forward(x, noise, training=True)
        y = self._member_labels(y)
        loss = F.cross_entropy(logits, y, reduction="none").sum(-1)  # loss_and_accuracy's loss, without the accuracy
        self.finite &= torch.isfinite(loss.detach())
        # Members are independent: the sum gives each member the gradient of its own terms.
        (loss.sum() / index.shape[1] + penalty).backward()
        with torch.no_grad():
            self._update()

    def _forward(
        self, x: torch.Tensor, noise: list[torch.Tensor] | None = None, training: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (M, classes, n) and, when training, the members' summed activity penalty.

        x is (S, n, d), each seed's samples from its split (in training its mini-batch), and layer 1 is
        one product per seed; or (n, d), the same samples for every member, and layer 1 is one product.
        """
        activation = networks.ACTIVATIONS[self.grid_spec.activation]
        w, b = self.weights[0], self.biases[0]
        if x.dim() == 3:
            h = torch.baddbmm(b.view(self.grid[0], -1, 1), w.view(self.grid[0], -1, w.shape[2]), x.transpose(1, 2))
        else:
            h = torch.addmm(b.view(-1, 1), w.view(-1, w.shape[2]), x.T)
        h = h.view(len(self.members), w.shape[1], -1)
        penalty = torch.zeros((), device=self.device)
        for layer in range(len(self.hidden)):
            if layer:
                h = torch.baddbmm(self.biases[layer], self.weights[layer], h)
            h = activation(h)
            if training and self.head:
                h, activity = self._head_terms(h, layer, noise)
                penalty = penalty + activity
        if not self.hidden:  # a linear reference: its one layer, above, gave the logits
            return h, penalty
        return torch.baddbmm(self.biases[-1], self.weights[-1], h), penalty

    def _head_terms(
        self, h: torch.Tensor, layer: int, noise: list[torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Activity penalties and dropout on the head of the stack; h is (M, width, batch), noise
        per layer (S, batch, width). Returns h, with the head's units dropped, and the penalty."""
        head, tail = self._grid_view(h).split([self.head, self.grid[1] - self.head], dim=1)
        penalty = torch.zeros((), device=self.device)
        for name, function in (("l1", regularizers.activity_l1), ("l2", regularizers.activity_l2)):
            if name in self.activity:
                values = function(head.transpose(-1, -2), members=2)  # the penalties take (..., batch, width)
                penalty = penalty + (self.activity[name].view(values.shape) * values).sum()
        if noise is not None and self.drop is not None:  # noise is drawn only when there is dropout
            p = self.drop[layer]
            head = head * (noise[layer].transpose(1, 2)[:, None] >= p) / (1 - p)
        return torch.cat([head, tail], dim=1).view_as(h), penalty

    def _update(self) -> None:
        """Weight penalties' gradients, then the optimizer step, then the proximal step.

        Each per-member term touches only the configurations of the members that use it, so its cost
        is proportional to them and every other member's arithmetic is exactly the plain optimizer's.
        """
        lr = self.members[0].lr
        for tensors, strengths in ((self.weights, self.on_weights), (self.biases, self.on_biases)):
            for p in tensors:
                grad, value = self._grid_view(cast(torch.Tensor, p.grad)), self._grid_view(p)
                for name, gradient in (
                    ("l1", regularizers.l1_gradient),
                    ("l2", regularizers.half_squared_l2_gradient),
                    ("l2_norm", regularizers.l2_norm_gradient),
                ):
                    term = strengths[name]
                    if term is not None:
                        columns, strength = term
                        direction, scale = gradient(value[:, columns], members=2)
                        grad[:, columns].addcmul_(direction, strength * scale)
                if strengths["decoupled_wd"] is not None:  # AdamW and SGDW decay the weights before the update
                    columns, strength = strengths["decoupled_wd"]
                    value[:, columns] *= 1 - lr * strength
        self.optimizer.step()
        for tensors, strengths in ((self.weights, self.on_weights), (self.biases, self.on_biases)):
            if strengths["prox_l1"] is not None:
                columns, strength = strengths["prox_l1"]
                for p in tensors:
                    regularizers.soft_threshold_(self._grid_view(p)[:, columns], self._threshold(p, columns, strength))

    def _threshold(self, p: torch.Tensor, columns: slice, strength: torch.Tensor) -> torch.Tensor:
        """Proximal L1's threshold for p's members in `columns`: lr·λ, under Adam rescaled (regularizers)."""
        m, state = self.members[0], self.optimizer.state[p]
        return (
            m.lr * strength
            if self.rule == "sgd"
            else regularizers.adam_scaled_threshold(
                m.lr * strength, self._grid_view(state["exp_avg_sq"])[:, columns], state["step"], m.betas[1], m.eps
            )
        )

    def _check_divergence(self, epoch: int) -> None:
        newly = (self.alive & ~self.finite).nonzero().view(-1).tolist()
        for i in newly:
            self.diverged_epoch[i] = epoch
        self.alive &= self.finite

    # -- evaluation ------------------------------------------------------------------------------

    @torch.no_grad()
    def _evaluate(self, epoch: int) -> pd.DataFrame:
        losses, correct, sizes = {}, {}, {}
        for split in SPLITS:
            x, y = (self.parts[f"{kind}_{split}"][0 if self.one_split else ...] for kind in ("x", "y"))
            total_loss = torch.zeros(len(self.members), device=self.device)
            total_correct = torch.zeros(len(self.members), device=self.device)
            for start in range(0, y.shape[-1], self.eval_rows):
                rows = slice(start, start + self.eval_rows)
                logits, _ = self._forward(x[..., rows, :])
                batch_loss, batch_correct = loss_and_accuracy(logits, self._member_labels(y[..., rows]))
                total_loss += batch_loss
                total_correct += batch_correct
            losses[split], correct[split], sizes[split] = total_loss, total_correct, y.shape[-1]
        measures = split_measures(losses, correct, sizes)
        measures |= weight_measures([w.detach() for w in self.weights], self.thresholds, members=1)
        dead = ~self.alive
        measures = {k: torch.where(dead, torch.nan, v).cpu() for k, v in measures.items()}
        frame = pd.DataFrame({k: v.numpy() for k, v in measures.items()})
        frame.insert(0, "epoch", epoch)
        frame.insert(0, "member", [m.member for m in self.members])
        self.curves.append(frame)
        return frame

    def final(self) -> pd.DataFrame:
        frame = self.curves[-1].drop(columns="epoch").copy()
        frame["status"] = ["diverged" if i in self.diverged_epoch else "ok" for i in range(len(self.members))]
        frame["diverged_epoch"] = [self.diverged_epoch.get(i) for i in range(len(self.members))]
        frame["diverged_epoch"] = frame["diverged_epoch"].astype("Int64")
        frame["epochs_run"] = self.epochs_run
        return frame

    def stacked_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer (M, out, in) and (M, out): nn.Linear's layout, on the CPU."""
        return [(w.detach().cpu(), b.detach()[..., 0].cpu()) for w, b in zip(self.weights, self.biases)]

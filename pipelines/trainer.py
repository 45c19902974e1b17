"""The batched trainer: every member of a grid trained at once.

Parameters are stacked with a leading member dimension (weights as (M, in, out) for batched matrix
products), per-member hyperparameters are (M, 1, 1) tensors, each member gathers its own mini-batch
(members of one seed gather the same one) and draws its dropout mask from its seed's noise. The
optimizer arithmetic follows torch.optim's SGD, Adam and AdamW update for update; tests check every
family and optimizer against the one-network-at-a-time reference in pipelines/reference.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
import dataclasses
from dataclasses import dataclass, field

import pandas as pd
import torch
from tqdm.auto import tqdm

from pipelines import networks, regularizers
from pipelines.datasets import SPLITS, Prepared
from pipelines.errors import ParamsError
from pipelines.evaluation import loss_and_accuracy, split_measures, weight_measures
from pipelines.grid import Member
from pipelines.params import DatasetTrain


@dataclass
class GridResult:
    """What training produced: final row and per-evaluation rows per member, and final weights."""

    final: pd.DataFrame   # member, status, diverged_epoch, epochs_run, metrics
    curves: pd.DataFrame  # member, epoch, metrics
    weights: list[tuple[torch.Tensor, torch.Tensor]]  # per layer (M, out, in), (M, out), on the CPU
    seconds: float
    member_samples: int = 0
    diverged: int = field(init=False)

    def __post_init__(self) -> None:
        self.diverged = int((self.final["status"] == "diverged").sum())


def choose_device(requested: str, tf32: bool = False) -> torch.device:
    """'auto' is CUDA when there is one, else the CPU. `tf32` lets CUDA matmuls use TF32."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ParamsError("params.yaml: train.device: found 'cuda'; no CUDA device is available (use auto or cpu)")
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else requested)
    torch.backends.cuda.matmul.allow_tf32 = tf32 and device.type == "cuda"
    return device


def train_grid(members: list[Member], data: Prepared, config: DatasetTrain, thresholds: list[float],
               device: torch.device, max_chunk_members: int = 0, progress: bool = True) -> GridResult:
    """Train every member; members of one cohort (optimizer rule) are trained together, in chunks."""
    start = time.perf_counter()
    data = dataclasses.replace(data, **{f"{kind}_{split}": getattr(data, f"{kind}_{split}").to(device)
                                        for split in SPLITS for kind in ("x", "y")})
    chunks = list(_chunks(members, config, data, device, max_chunk_members))
    steps = sum(config.epochs * math.ceil(len(data.y_train) / config.batch_size) for _ in chunks)
    bar = tqdm(total=steps, desc="train", unit="step", disable=not progress, dynamic_ncols=True)
    finals, curves, weights = [], [], []
    with bar:
        for chunk in chunks:
            chunk_trainer = _Chunk(chunk, data, config, thresholds, device)
            for epoch in range(1, config.epochs + 1):
                chunk_trainer.run_epoch(epoch, bar)
            finals.append(chunk_trainer.final())
            curves += chunk_trainer.curves
            weights.append(chunk_trainer.stacked_weights())
    order = [m.member for chunk in chunks for m in chunk]
    final = pd.concat(finals).set_index("member").loc[[m.member for m in members]].reset_index()
    position = {member: i for i, member in enumerate(order)}
    rows = torch.tensor([position[m.member] for m in members])
    stacked = [(torch.cat([w[i][0] for w in weights])[rows], torch.cat([w[i][1] for w in weights])[rows])
               for i in range(len(config.hidden) + 1)]
    curve_frame = pd.concat(curves).sort_values(["member", "epoch"], kind="stable").reset_index(drop=True)
    return GridResult(final=final, curves=curve_frame, weights=stacked, seconds=time.perf_counter() - start,
                      member_samples=len(members) * config.epochs * len(data.y_train))


def _chunks(members: list[Member], config: DatasetTrain, data: Prepared, device: torch.device,
            max_chunk_members: int) -> Iterator[list[Member]]:
    limit = max_chunk_members or _members_that_fit(config, data, device)
    cohorts: dict[tuple, list[Member]] = {}
    for m in sorted(members, key=_feature_order):
        cohorts.setdefault(m.cohort, []).append(m)
    for group in cohorts.values():
        for i in range(0, len(group), limit):
            yield group[i:i + limit]


# Members of a chunk are stacked in this family order, so that the members using each per-member
# term form one contiguous block (l1: l1 + elastic; l2 gradient: elastic + l2 + weight_decay) and
# the term touches a slice of the stack, not an index.
_FAMILY_ORDER = ("none", "dropout", "activity", "prox_l1", "l1", "elastic", "l2", "weight_decay", "l2_norm", "adamw")


def _feature_order(m: Member) -> tuple:
    return _FAMILY_ORDER.index(m.family), m.penalize_bias, m.config, m.member


def _members_that_fit(config: DatasetTrain, data: Prepared, device: torch.device) -> int:
    """How many members fit at once: on CUDA half the free memory, on the CPU all of them."""
    if device.type != "cuda":
        return 1 << 30
    sizes = networks.layer_sizes(data.x_train.shape[1], config.hidden, data.n_classes)
    parameters = sum((i + 1) * o for i, o in zip(sizes[:-1], sizes[1:]))
    activations = config.batch_size * (sizes[0] + 4 * sum(sizes[1:])) + _EVAL_ROWS * sum(sizes[1:])
    per_member = 4 * (5 * parameters + 3 * activations)  # float32: weights, grads, 2 moments, scratch
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, int(free * 0.5 // per_member))


_EVAL_ROWS = 1024  # samples evaluated at once, bounding evaluation memory to M x 1024 x width


class _Chunk:
    """One chunk of a cohort: stacked parameters, optimizer state and the seeds' random streams."""

    def __init__(self, members: list[Member], data: Prepared, config: DatasetTrain, thresholds: list[float],
                 device: torch.device) -> None:
        self.members, self.data, self.config, self.thresholds, self.device = members, data, config, thresholds, device
        self.rule = members[0].rule
        self.seeds = sorted({m.seed for m in members})
        self.seed_of = torch.tensor([self.seeds.index(m.seed) for m in members], device=device)
        sizes = networks.layer_sizes(data.x_train.shape[1], config.hidden, data.n_classes)
        initial = {s: networks.initial_parameters(s, sizes) for s in self.seeds}
        self.weights = [torch.stack([initial[m.seed][i][0].T for m in members]).to(device).requires_grad_()
                        for i in range(len(sizes) - 1)]
        self.biases = [torch.stack([initial[m.seed][i][1][None] for m in members]).to(device).requires_grad_()
                       for i in range(len(sizes) - 1)]
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

    def _column(self, values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32, device=self.device).view(-1, 1, 1)

    def _rows(self, values: list[float]) -> tuple[slice | torch.Tensor, torch.Tensor] | None:
        """The members with a nonzero value (a slice when contiguous) and their values as (k, 1, 1),
        or None when no member has one."""
        rows = [i for i, v in enumerate(values) if v]
        if not rows:
            return None
        strengths = self._column([values[i] for i in rows])
        if rows == list(range(rows[0], rows[-1] + 1)):
            return slice(rows[0], rows[-1] + 1), strengths
        return torch.tensor(rows, device=self.device), strengths

    def _hyperparameters(self) -> None:
        ms = self.members
        # Penalty strengths on weights, and on biases (zero unless the member penalizes them).
        # Coupled weight decay adds λ·w to the gradient, exactly as the L2 penalty's gradient does.
        strengths = {
            "l1": [m.l1 for m in ms], "l2": [m.l2 + m.weight_decay for m in ms], "l2_norm": [m.l2_norm for m in ms],
            "decoupled_wd": [m.decoupled_wd for m in ms], "prox_l1": [m.prox_l1 for m in ms],
        }
        self.on_weights = {k: self._rows(v) for k, v in strengths.items()}
        self.on_biases = {k: self._rows([s * m.penalize_bias for s, m in zip(v, ms)]) for k, v in strengths.items()}
        self.activity = {"l1": self._rows([m.act_l1 for m in ms]), "l2": self._rows([m.act_l2 for m in ms])}
        # A member with dropout draws noise for every hidden layer at every step, whatever the
        # others do, so its stream (and mask) never depends on which members share its chunk.
        dropping = self._rows([float(any(m.dropout)) for m in ms])
        self.uses_dropout = dropping is not None
        if dropping:
            self.dropout_rows = dropping[0]
            chosen = [m for m, uses in zip(ms, [any(m.dropout) for m in ms]) if uses]
            self.drop = [self._column([m.dropout[i] for m in chosen]) for i in range(len(self.config.hidden))]
            self.keep = [1 - p for p in self.drop]

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

    def run_epoch(self, epoch: int, bar: tqdm) -> None:
        started = time.perf_counter()
        n, size = len(self.data.y_train), self.config.batch_size
        # The epoch's order and dropout noise go to the device once: no host sync inside the epoch.
        order = torch.stack([networks.epoch_order(g, n) for g in self.order_streams]).to(self.device)
        noise = None
        if self.uses_dropout:
            per_seed = [networks.dropout_noise(g, n, self.config.hidden, self.device) for g in self.noise_streams]
            noise = [torch.stack(layer) for layer in zip(*per_seed)]  # per layer (seeds, n, width)
        for start in range(0, n, size):
            rows = slice(start, start + size)
            self._run_step(order[:, rows][self.seed_of], [u[:, rows] for u in noise] if noise else None)
            bar.update()
        self._check_divergence(epoch)
        self.epochs_run = epoch
        if epoch % self.config.eval_every == 0 or epoch == self.config.epochs:
            self._evaluate(epoch)
        rate = len(self.members) * len(self.data.y_train) / (time.perf_counter() - started)
        bar.set_postfix(optimizer=self.members[0].optimizer, epoch=epoch, alive=int(self.alive.sum()), samples_s=f"{rate:,.0f}")

    def _run_step(self, index: torch.Tensor, noise: list[torch.Tensor] | None) -> None:
        """On CUDA, full mini-batches replay a captured CUDA graph of the step: launching its few
        hundred small kernels one by one from Python would cost more than running them."""
        if self.device.type != "cuda" or index.shape[1] != self.config.batch_size or self.eager_steps < 3:
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

    def _step(self, index: torch.Tensor, noise: list[torch.Tensor] | None) -> None:
        """One mini-batch: `index` (members, batch) of samples, `noise` per layer (seeds, batch, width)."""
        x = self.data.x_train[index]
        y = self.data.y_train[index]
        logits, penalty = self._forward(x, noise)
        loss, _ = loss_and_accuracy(logits, y)
        self.finite &= torch.isfinite(loss.detach())
        # Members are independent: the sum gives each member the gradient of its own terms.
        (loss.sum() / index.shape[1] + penalty).backward()
        with torch.no_grad():
            self._update()

    def _forward(self, x: torch.Tensor, noise: list[torch.Tensor] | None = None,
                 first: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (M, n, classes) and, when training, the members' summed activity penalty.

        Training: x is (M, n, d), each member's own mini-batch. Evaluation: x is (n, d), the same
        samples for every member, and `first` is layer 1's weights laid out (d, M * width) so that
        layer 1 is a single wide matrix product.
        """
        activation = networks.ACTIVATIONS[self.config.activation]
        training = first is None
        penalty = torch.zeros((), device=self.device)
        h = x
        for layer, (w, b) in enumerate(zip(self.weights[:-1], self.biases[:-1])):
            if h.dim() == 2:
                h = activation((h @ first).view(h.shape[0], len(self.members), -1).transpose(0, 1) + b)
            else:
                h = activation(torch.baddbmm(b, h, w))
            if not training:
                continue
            for name, function in (("l1", regularizers.activity_l1), ("l2", regularizers.activity_l2)):
                if self.activity[name] is not None:
                    rows, strength = self.activity[name]
                    penalty = penalty + (strength.view(-1) * function(h[rows], members=1)).sum()
            if noise is not None:
                # A constant mask (1 for members without dropout) costs autograd one product.
                rows = self.dropout_rows
                mask = torch.ones_like(h)
                mask[rows] = (noise[layer][self.seed_of[rows]] >= self.drop[layer]) / self.keep[layer]
                h = h * mask
        w, b = self.weights[-1], self.biases[-1]
        return torch.baddbmm(b, h, w), penalty

    def _update(self) -> None:
        """Weight penalties' gradients, then the optimizer step, then the proximal step.

        Each per-member term touches only the rows of the members that use it, so its cost is
        proportional to them and every other member's arithmetic is exactly the plain optimizer's.
        """
        lr = self.members[0].lr
        for tensors, strengths in ((self.weights, self.on_weights), (self.biases, self.on_biases)):
            for p in tensors:
                for name, gradient in (("l1", regularizers.l1_gradient), ("l2", regularizers.half_squared_l2_gradient),
                                       ("l2_norm", regularizers.l2_norm_gradient)):
                    if strengths[name] is not None:
                        rows, strength = strengths[name]
                        p.grad[rows] += strength * gradient(p[rows], members=1)
                if strengths["decoupled_wd"] is not None:  # AdamW decays the weights before its update
                    rows, strength = strengths["decoupled_wd"]
                    p[rows] *= 1 - lr * strength
        self.optimizer.step()
        for tensors, strengths in ((self.weights, self.on_weights), (self.biases, self.on_biases)):
            if strengths["prox_l1"] is not None:
                rows, strength = strengths["prox_l1"]
                for p in tensors:
                    p[rows] = regularizers.soft_threshold(p[rows], lr * strength)

    def _check_divergence(self, epoch: int) -> None:
        newly = (self.alive & ~self.finite).nonzero().view(-1).tolist()
        for i in newly:
            self.diverged_epoch[i] = epoch
        self.alive &= self.finite

    # -- evaluation ------------------------------------------------------------------------------

    @torch.no_grad()
    def _evaluate(self, epoch: int) -> None:
        losses, correct, sizes = {}, {}, {}
        first = self.weights[0].transpose(0, 1).reshape(self.weights[0].shape[1], -1)
        for split in SPLITS:
            x, y = getattr(self.data, f"x_{split}"), getattr(self.data, f"y_{split}")
            total_loss = torch.zeros(len(self.members), device=self.device)
            total_correct = torch.zeros(len(self.members), device=self.device)
            for start in range(0, len(y), _EVAL_ROWS):
                logits, _ = self._forward(x[start:start + _EVAL_ROWS], first=first)
                batch_loss, batch_correct = loss_and_accuracy(logits, y[start:start + _EVAL_ROWS])
                total_loss += batch_loss
                total_correct += batch_correct
            losses[split], correct[split], sizes[split] = total_loss, total_correct, len(y)
        measures = split_measures(losses, correct, sizes)
        measures |= weight_measures([w.detach() for w in self.weights], self.thresholds, members=1)
        dead = ~self.alive
        measures = {k: torch.where(dead, torch.nan, v).cpu() for k, v in measures.items()}
        frame = pd.DataFrame({k: v.numpy() for k, v in measures.items()})
        frame.insert(0, "epoch", epoch)
        frame.insert(0, "member", [m.member for m in self.members])
        self.curves.append(frame)

    def final(self) -> pd.DataFrame:
        frame = self.curves[-1].drop(columns="epoch").copy()
        frame["status"] = ["diverged" if i in self.diverged_epoch else "ok" for i in range(len(self.members))]
        frame["diverged_epoch"] = [self.diverged_epoch.get(i) for i in range(len(self.members))]
        frame["diverged_epoch"] = frame["diverged_epoch"].astype("Int64")
        frame["epochs_run"] = self.epochs_run
        return frame

    def stacked_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer (M, out, in) and (M, out): nn.Linear's layout, on the CPU."""
        return [(w.detach().transpose(1, 2).contiguous().cpu(), b.detach()[:, 0].cpu())
                for w, b in zip(self.weights, self.biases)]

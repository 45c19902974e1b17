"""The batched trainer equals the plain one-network reference, member by member, and shows the
textbook facts about the regularizers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pipelines.core.params import DatasetTrain
from pipelines.data.datasets import TENSORS, Prepared
from pipelines.training import grid, regularizers
from pipelines.training.reference import train_reference
from pipelines.training.trainer import train_grid

THRESHOLDS = [1e-3, 1e-2]


def make_splits(n: int = 96, features: int = 6, classes: int = 3, seed: int = 0, splits: int = 1) -> Prepared:
    """`splits` draws of train, validation and test samples from one set of class centres."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, features, generator=g) * 2

    def part(size: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, classes, (size,), generator=g)
        return centers[y] + torch.randn(size, features, generator=g), y

    drawn = [[*part(n), *part(n // 2), *part(n // 2)] for _ in range(splits)]
    tensors = [torch.stack(stack) for stack in zip(*drawn)]
    return Prepared(*tensors, class_names=tuple(map(str, range(classes))), metadata={})


def make_config(**overrides: object) -> DatasetTrain:
    base = {
        "hidden": [7, 5],
        "activation": "relu",
        "batch_size": 16,
        "epochs": 2,
        "eval_every": 1,
        "seeds": [0, 1],
        "penalize_bias": False,
        "bias_ablation": ["l2", "weight_decay", "sgdw"],
        "linear_reference": True,
        "optimizers": {
            "adam": {
                "lr": 0.01,
                "families": {
                    "l1": [1e-3],
                    "prox_l1": [1e-2],
                    "l2": [1e-2],
                    "l2_norm": [1e-2],
                    "elastic": {"l1": [1e-3], "l2": [1e-2]},
                    "weight_decay": [1e-2],
                    "adamw": [0.1],
                    "dropout": [0.3, [0.5, 0.1]],
                    "activity": {"l1": [1e-3], "l2": [1e-3]},
                },
            },
            "sgd": {
                "lr": 0.05,
                "momentum": 0.9,
                "families": {
                    "l1": [1e-3],
                    "prox_l1": [1e-2],
                    "l2": [1e-2],
                    "weight_decay": [1e-2],
                    "sgdw": [0.1],
                    "dropout": [0.3],
                },
            },
        },
    }
    return DatasetTrain.model_validate(base | overrides)


@pytest.fixture(scope="module")
def batched():
    config = make_config()
    members = grid.expand(config)
    data = make_splits(splits=2)  # seeds 0 and 1 each on their own split
    return config, members, data, train_grid(members, data, config, THRESHOLDS, torch.device("cpu"), progress=False)


def test_every_family_and_optimizer_is_in_the_grid(batched):
    _, members, _, _ = batched
    assert {m.family for m in members} == {
        "none",
        "l1",
        "prox_l1",
        "l2",
        "l2_norm",
        "elastic",
        "weight_decay",
        "adamw",
        "sgdw",
        "dropout",
        "activity",
        "linear",
    }
    assert {m.optimizer for m in members} == {"sgd", "adam", "adamw", "sgdw"}
    assert any(m.penalize_bias for m in members)


def test_batched_members_equal_the_reference(batched):
    config, members, data, result = batched
    for member in members:
        final, curve, model, _ = train_reference(member, data, config, THRESHOLDS)
        ours = result.curves[result.curves["member"] == member.member].reset_index(drop=True)
        assert len(ours) == len(curve) == config.epochs
        for column in ("train_loss", "test_loss", "val_acc", "weight_l2", "weight_l1"):
            torch.testing.assert_close(
                torch.tensor(ours[column].to_numpy(float)),
                torch.tensor(curve[column].to_numpy(float)),
                rtol=1e-5,
                atol=1e-6,
                msg=f"{member.config} seed {member.seed}: {column}",
            )
        for layer, (weight, bias) in zip(model.layers, layers_of(result, members, member), strict=True):
            torch.testing.assert_close(
                weight, layer.weight.detach(), rtol=1e-5, atol=1e-6, msg=f"{member.config} seed {member.seed}: weights"
            )
            torch.testing.assert_close(bias, layer.bias.detach(), rtol=1e-5, atol=1e-6)


def layers_of(result, members, member):
    """A member's final (weight, bias) per layer: from the networks' stacks, or the linear references'."""
    if member.hidden:
        row = [m.member for m in members if m.hidden].index(member.member)
        return [(w[row], b[row]) for w, b in result.weights]
    row = [m.member for m in members if not m.hidden].index(member.member)
    weight, bias = result.linear_weights
    return [(weight[row], bias[row])]


def test_a_linear_reference_is_a_network_without_hidden_layer_paired_by_seed(batched):
    config, members, data, result = batched
    linear = [m for m in members if m.family == "linear"]
    assert [(m.optimizer, m.seed) for m in linear] == [(o, s) for o in ("adam", "sgd") for s in config.seeds]
    assert all(m.hidden == () and m.grid == "linear" and m.lr == config.optimizers[m.optimizer].lr for m in linear)
    assert result.linear_weights[0].shape == (len(linear), 3, 6)  # classes x features: no hidden layer
    assert len(result.weights[0][0]) == len(members) - len(linear)  # the networks' stack is theirs alone
    rows = result.final.set_index("member").loc[[m.member for m in linear]]
    assert (rows["status"] == "ok").all() and rows["test_acc"].notna().all()
    for member in linear:  # trained like every member (the reference equality above covers it too)
        final, _, model, _ = train_reference(member, data, config, THRESHOLDS)
        assert len(model.layers) == 1
        assert final["test_loss"] == pytest.approx(rows.at[member.member, "test_loss"], rel=1e-5)


def test_accuracies_are_float64_counts_over_n(batched):
    _, _, data, result = batched
    for split in ("train", "val", "test"):
        n = data.sizes()[split]
        accuracy = result.curves[f"{split}_acc"].to_numpy()
        assert accuracy.dtype == np.float64
        np.testing.assert_array_equal(accuracy, np.round(accuracy * n) / n)


def test_adam_second_moments_equal_torch_optim_adams_state(batched):
    config, members, data, result = batched
    moments = result.second_moments
    assert moments.members == [m.member for m in members if m.rule == "adam" and m.hidden]
    chosen = [m for m in members if m.seed == 1 and (m.family in ("none", "adamw", "prox_l1") or m.penalize_bias)]
    for member in [m for m in chosen if m.rule == "adam"]:
        _, _, model, optimizer = train_reference(member, data, config, THRESHOLDS)
        row = moments.members.index(member.member)
        for layer, (weight, bias) in zip(model.layers, moments.layers):
            state = optimizer.state[layer.weight]
            assert moments.step[row] == int(state["step"]) == 2 * 6  # 2 epochs of 6 mini-batches
            torch.testing.assert_close(
                weight[row], state["exp_avg_sq"], rtol=1e-4, atol=1e-12, msg=f"{member.config}: exp_avg_sq"
            )
            torch.testing.assert_close(bias[row], optimizer.state[layer.bias]["exp_avg_sq"], rtol=1e-4, atol=1e-12)
        assert (moments.beta2[row], moments.eps[row]) == (member.betas[1], member.eps)


def test_changing_one_member_leaves_the_others_bit_identical(batched):
    config, members, data, result = batched
    target = next(m for m in members if m.family == "l2")
    changed = [dataclasses.replace(m, l2=m.l2 * 10) if m.member == target.member else m for m in members]
    other = train_grid(changed, data, config, THRESHOLDS, torch.device("cpu"), progress=False)
    keep = [m.member for m in members if m.member != target.member and m.hidden]
    assert torch.equal(result.linear_weights[0], other.linear_weights[0])
    for (w, b), (w2, b2) in zip(result.weights, other.weights):
        assert torch.equal(w[keep], w2[keep]) and torch.equal(b[keep], b2[keep])
        assert not torch.equal(w[target.member], w2[target.member])


def test_same_seed_gives_bit_identical_results(batched):
    config, members, data, result = batched
    again = train_grid(members, data, config, THRESHOLDS, torch.device("cpu"), progress=False)
    assert result.final.equals(again.final)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(result.weights, again.weights))
    assert all(torch.equal(a, b) for a, b in zip(result.linear_weights, again.linear_weights))


def test_chunks_give_the_same_members(batched):
    config, members, data, result = batched
    chunked = train_grid(members, data, config, THRESHOLDS, torch.device("cpu"), max_chunk_members=5, progress=False)
    for (w, _), (w2, _) in zip([*result.weights, result.linear_weights], [*chunked.weights, chunked.linear_weights]):
        torch.testing.assert_close(w, w2, rtol=1e-5, atol=1e-6)


def test_each_seed_trains_and_is_measured_on_its_own_split(batched):
    # Seed 1's members equal the same members trained on a dataset holding only split 1, and differ
    # from them trained on split 0: the batched trainer gathers a seed's batches from its split.
    config, members, data, result = batched
    assert not torch.equal(data.for_seed(0).x_train, data.for_seed(1).x_train)
    seed_one = [m for m in members if m.seed == 1]
    ours = result.final.set_index("member").loc[[m.member for m in seed_one]]
    columns = ["train_loss", "val_loss", "test_loss", "weight_l2"]
    for k, same in ((1, True), (0, False)):
        alone = dataclasses.replace(data, **{name: getattr(data, name)[k : k + 1] for name in TENSORS})
        solo = train_grid(seed_one, alone, config, THRESHOLDS, torch.device("cpu"), progress=False)
        theirs = solo.final.set_index("member").loc[ours.index]
        assert np.allclose(ours[columns], theirs[columns], rtol=1e-5, atol=1e-6) == same, f"split {k}"


def _final(result, members, config_name):
    ids = [m.member for m in members if m.config == config_name]
    return result.final.set_index("member").loc[ids]


def test_sgd_l2_penalty_equals_sgd_weight_decay():
    config = make_config(
        epochs=3, optimizers={"sgd": {"lr": 0.05, "momentum": 0.9, "families": {"l2": [0.05], "weight_decay": [0.05]}}}
    )
    members = grid.expand(config)
    result = train_grid(members, make_splits(), config, THRESHOLDS, torch.device("cpu"), progress=False)
    l2, wd = _final(result, members, "sgd/l2/l2=0.05"), _final(result, members, "sgd/weight_decay/weight_decay=0.05")
    for column in ("train_loss", "weight_l2", "test_acc"):
        torch.testing.assert_close(
            torch.tensor(l2[column].to_numpy(float)), torch.tensor(wd[column].to_numpy(float)), rtol=1e-5, atol=1e-6
        )


def test_adam_l2_penalty_differs_from_adamw():
    config = make_config(epochs=3, optimizers={"adam": {"lr": 0.01, "families": {"l2": [0.1], "adamw": [0.1]}}})
    members = grid.expand(config)
    result = train_grid(members, make_splits(), config, THRESHOLDS, torch.device("cpu"), progress=False)
    l2, adamw = _final(result, members, "adam/l2/l2=0.1"), _final(result, members, "adamw/adamw/decoupled_wd=0.1")
    relative = (l2["weight_l2"].to_numpy() - adamw["weight_l2"].to_numpy()) / adamw["weight_l2"].to_numpy()
    assert (abs(relative) > 0.01).all(), relative


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgdw_equals_sgd_l2_without_momentum_and_differs_with_it(momentum):
    # SGDW: w ← (1 − lr·λ)·w − lr·b with b the momentum buffer of the data gradients alone; SGD+L2
    # puts λ·w into the buffer. Without momentum both are w − lr·(g + λ·w).
    config = make_config(
        epochs=3, optimizers={"sgd": {"lr": 0.05, "momentum": momentum, "families": {"l2": [0.1], "sgdw": [0.1]}}}
    )
    members = grid.expand(config)
    result = train_grid(members, make_splits(), config, THRESHOLDS, torch.device("cpu"), progress=False)
    l2, sgdw = _final(result, members, "sgd/l2/l2=0.1"), _final(result, members, "sgdw/sgdw/decoupled_wd=0.1")
    relative = (l2["weight_l2"].to_numpy() - sgdw["weight_l2"].to_numpy()) / sgdw["weight_l2"].to_numpy()
    if momentum:
        assert (abs(relative) > 0.01).all(), relative
    else:
        assert (abs(relative) < 1e-5).all(), relative


def test_proximal_l1_gives_exact_zeros_and_subgradient_l1_does_not():
    config = make_config(epochs=4, optimizers={"adam": {"lr": 0.01, "families": {"l1": [0.5], "prox_l1": [0.5]}}})
    members = grid.expand(config)
    result = train_grid(members, make_splits(), config, THRESHOLDS, torch.device("cpu"), progress=False)
    assert (_final(result, members, "adam/prox_l1/prox_l1=0.5")["exact_zeros"] > 0.1).all()
    assert (_final(result, members, "adam/l1/l1=0.5")["exact_zeros"] == 0).all()


def test_adam_threshold_is_lr_lambda_over_adams_own_denominator():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    optimizer = torch.optim.Adam([w], lr=0.01, betas=(0.9, 0.99), eps=1e-8)
    for _ in range(3):
        optimizer.zero_grad()
        (w**3).sum().backward()
        optimizer.step()
    state = optimizer.state[w]
    v_hat = state["exp_avg_sq"].double() / (1 - 0.99**3)
    expected = 0.01 * 0.5 / (v_hat.sqrt() + 1e-8)
    threshold = regularizers.adam_scaled_threshold(0.01 * 0.5, state["exp_avg_sq"], state["step"], 0.99, 1e-8)
    torch.testing.assert_close(threshold.double(), expected, rtol=1e-6, atol=0)


def test_adam_proximal_l1_makes_zeros_where_the_plain_threshold_leaves_none(monkeypatch):
    config = make_config(epochs=4, optimizers={"adam": {"lr": 0.01, "families": {"prox_l1": [0.02]}}})
    members = grid.expand(config)
    data = make_splits()
    result = train_grid(members, data, config, THRESHOLDS, torch.device("cpu"), progress=False)
    proximal = [m for m in members if m.family == "prox_l1"]
    assert (_final(result, members, proximal[0].config)["exact_zeros"] > 0.05).all()
    # The same members with the threshold lr·λ that Adam's step sizes ignore.
    monkeypatch.setattr(regularizers, "adam_scaled_threshold", lambda plain, *_: plain)
    for member in proximal:
        final, _, _, _ = train_reference(member, data, config, THRESHOLDS)
        assert final["exact_zeros"] == 0


def test_dropout_is_inactive_in_evaluation(batched):
    from pipelines.training.reference import MLP, evaluate

    config, members, data, result = batched
    member = next(m for m in members if m.family == "dropout")
    model = MLP([6, *config.hidden, 3], config.activation, member.dropout)
    with torch.no_grad():
        for layer, (weight, bias) in zip(model.layers, result.weights):
            layer.weight.copy_(weight[member.member])
            layer.bias.copy_(bias[member.member])
    measured = evaluate(model, data.for_seed(member.seed), THRESHOLDS)
    row = result.final.set_index("member").loc[member.member]
    assert measured == evaluate(model, data.for_seed(member.seed), THRESHOLDS)  # no randomness left in evaluation
    for column in ("train_loss", "test_acc", "val_loss"):
        assert measured[column] == pytest.approx(row[column], rel=1e-5)


def test_a_diverging_member_is_frozen_and_the_others_are_unaffected():
    config = make_config(epochs=3, optimizers={"sgd": {"lr": 0.05, "momentum": 0.9, "families": {"l2": [1e-3]}}})
    members = grid.expand(config)
    data = make_splits()
    calm = train_grid(members, data, config, THRESHOLDS, torch.device("cpu"), progress=False)
    target = [m for m in members if m.hidden][-1]
    wild = [dataclasses.replace(m, l2=1e8) if m.member == target.member else m for m in members]
    result = train_grid(wild, data, config, THRESHOLDS, torch.device("cpu"), progress=False)
    row = result.final.set_index("member").loc[target.member]
    assert row["status"] == "diverged" and 1 <= row["diverged_epoch"] <= config.epochs
    assert result.diverged == 1
    others = [m.member for m in members if m.member != target.member]
    assert (result.final.set_index("member").loc[others, "status"] == "ok").all()
    networks = [m.member for m in members if m.member != target.member and m.hidden]
    for (w, _), (w2, _) in zip(calm.weights, result.weights):
        assert torch.equal(w[networks], w2[networks])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_members_equal_the_cpu_reference():
    config = make_config()
    members = grid.expand(config)
    data = make_splits()
    result = train_grid(members, data, config, THRESHOLDS, torch.device("cuda"), progress=False)
    assert result.weights[0][0].device.type == "cpu"
    # CUDA's generator draws other dropout noise than the CPU's, so dropout members are left out.
    for member in [m for m in members if not any(m.dropout)][::3]:
        _, curve, model, _ = train_reference(member, data, config, THRESHOLDS)
        ours = result.curves[result.curves["member"] == member.member]
        torch.testing.assert_close(
            torch.tensor(ours["train_loss"].to_numpy(float)),
            torch.tensor(curve["train_loss"].to_numpy(float)),
            rtol=1e-4,
            atol=1e-5,
        )
        torch.testing.assert_close(
            layers_of(result, members, member)[0][0], model.layers[0].weight.detach(), rtol=1e-4, atol=1e-5
        )

"""pipelines/training/pruning.py against values worked out by hand on tiny networks."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from pipelines.training import grid, pruning
from pipelines.training.reference import MLP
from pipelines.training.trainer import train_grid

from test_trainer import make_config, make_splits

# One member, 2 inputs -> 2 ReLU units -> 2 classes. Ranked by magnitude, layer 1 loses 0.1, then
# 0.2, then 3; layer 2 loses 0.05, then 0.3, then 1. The output bias 0.01 breaks the tie of two
# zero logits towards class 0.
W1 = [[4.0, 0.1], [0.2, 3.0]]
W2 = [[1.0, 0.3], [0.05, 1.5]]
B2 = [0.01, 0.0]
X = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
Y = torch.tensor([0, 1])
FRACTIONS = (0.0, 0.25, 0.5, 0.75)


def tiny() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    return [torch.tensor([W1]), torch.tensor([W2])], [torch.zeros(1, 2), torch.tensor([B2])]


def test_prune_removes_the_smallest_per_layer_and_keeps_the_biases():
    weights, biases = tiny()
    half = pruning.prune(weights, 0.5)
    assert half[0].tolist() == [[[4.0, 0.0], [0.0, 3.0]]]
    assert half[1].tolist() == [[[1.0, 0.0], [0.0, 1.5]]]
    assert pruning.prune(weights, 0.75)[1].tolist() == [[[0.0, 0.0], [0.0, 1.5]]]
    assert torch.equal(weights[0], torch.tensor([W1]))  # the input is left as it was
    assert torch.equal(pruning.prune(weights, 0.0)[0], weights[0])


def test_pruning_curve_and_prunable_fraction_by_hand():
    weights, biases = tiny()
    curve = pruning.pruning_curve(weights, biases, X, Y, "relu", FRACTIONS)
    # 0, 25% and 50%: both samples right. 75%: layer 1 keeps only 4, layer 2 only 1.5, so the second
    # sample's hidden units are both 0 and its logits (0.01, 0) say class 0.
    assert curve["acc"][:, 0].tolist() == [1.0, 1.0, 1.0, 0.5]
    assert curve["acc"].dtype == torch.float64
    # At 50%: logits (4.01, 0) and (0.01, 4.5).
    half = (math.log1p(math.exp(-4.01)) + math.log1p(math.exp(0.01 - 4.5))) / 2
    assert curve["loss"][2, 0].item() == pytest.approx(half, rel=1e-5)  # float32 logits
    assert pruning.prunable_fraction(curve["acc"], FRACTIONS).tolist() == [0.5]


def test_prune_takes_a_fraction_per_member():
    weights, _ = tiny()
    pair = [torch.cat([w, w]) for w in weights]
    pruned = pruning.prune(pair, torch.tensor([0.25, 0.75]))
    for member, fraction in enumerate((0.25, 0.75)):
        alone = pruning.prune(weights, fraction)
        assert all(torch.equal(p[member], a[0]) for p, a in zip(pruned, alone))


def test_the_prunable_fraction_is_refined_by_bisection_between_rungs_by_hand():
    # tiny() on the ladder 0, 0.5, 1: within at 0.5 (2 of 4 weights per layer), fallen at 1 (no
    # weights: logits 0.01, 0 say class 0 twice). Bisection tries 0.75 (3 of 4 weights: fallen, as in
    # the curve above), then 0.625 (round(2.5) = 2 weights: within).
    weights, biases = tiny()
    ladder = (0.0, 0.5, 1.0)
    accuracy = pruning.pruning_curve(weights, biases, X, Y, "relu", ladder)["acc"]
    assert pruning.prunable_fraction(accuracy, ladder).tolist() == [0.5]
    refined = [
        pruning.refined_prunable_fraction(weights, biases, X, Y, "relu", accuracy, ladder, steps=steps).item()
        for steps in (0, 1, 2)
    ]
    assert refined == [0.5, 0.5, 0.625]


def test_unpruned_curve_equals_the_reference_network():
    weights, biases = tiny()
    model = MLP([2, 2, 2], "relu", (0.0,))
    with torch.no_grad():
        for layer, w, b in zip(model.layers, weights, biases):
            layer.weight.copy_(w[0])
            layer.bias.copy_(b[0])
    logits, _ = model(X)
    expected = torch.nn.functional.cross_entropy(logits, Y).item()
    assert pruning.pruning_curve(weights, biases, X, Y, "relu", (0.0,))["loss"][0, 0].item() == pytest.approx(expected)


def test_prunable_fraction_stops_at_the_first_fall_and_keeps_nan():
    accuracy = torch.tensor(
        [[0.9, 0.9, math.nan], [0.9, 0.8, math.nan], [0.9, 0.9, math.nan], [0.895, 0.9, math.nan]], dtype=torch.float64
    )
    fractions = (0.0, 0.5, 0.8, 0.9)
    result = pruning.prunable_fraction(accuracy, fractions, tolerance=0.005)
    assert result[:2].tolist() == [0.9, 0.0]  # 0.895 is exactly 0.005 below: within
    assert math.isnan(result[2])
    with pytest.raises(ValueError, match="start at 0"):
        pruning.prunable_fraction(accuracy, (0.1, 0.5, 0.8, 0.9))


def test_layer_measures_by_hand():
    denormal = 1e-39  # below float32's smallest normal, 1.18e-38, yet not zero
    first = torch.tensor([[[3.0, 4.0], [0.01, 0.0]]])  # RMS 2.5: 0.01 and 0 are below 0.01 × RMS
    second = torch.tensor([[[0.0, denormal, 1.0, 0.0]]])
    measures = pruning.layer_measures([first, second])
    assert measures["layer1_negligible"].item() == 0.5
    assert measures["layer1_zeros"].item() == 0.25 and measures["layer1_underflow"].item() == 0
    assert measures["layer2_zeros"].item() == 0.5 and measures["layer2_underflow"].item() == 0.25
    assert measures["layer2_negligible"].item() == 0.75  # RMS 0.5: the denormal and both zeros
    # Hoyer: layer 2 is one nonzero (the denormal is negligible against 1.0 in both norms): 1.
    assert measures["layer2_hoyer"].item() == pytest.approx(1.0)
    norm1, norm2 = 7.01, math.sqrt(25.0001)
    assert measures["layer1_hoyer"].item() == pytest.approx((2 - norm1 / norm2) / (2 - 1), rel=1e-6)
    assert measures["zeros"].item() == pytest.approx(3 / 8) and measures["underflow"].item() == pytest.approx(1 / 8)
    assert measures["negligible"].item() == pytest.approx(5 / 8)


def test_layer_measures_of_an_all_zero_layer_and_a_diverged_member():
    zero = torch.zeros(1, 2, 3)
    measures = pruning.layer_measures([torch.cat([zero, torch.full((1, 2, 3), math.nan)])])
    assert measures["layer1_hoyer"][0].item() == 1.0 and measures["layer1_negligible"][0].item() == 1.0
    assert measures["layer1_zeros"][0].item() == 1.0
    assert all(math.isnan(v[1].item()) for v in measures.values())


def test_dead_units_never_activate_on_the_samples():
    # Unit 1 sums the (nonnegative) inputs; unit 2 has only negative weights and bias: dead. Unit 3
    # is active on the second sample only, which is enough to be alive.
    weights = [torch.tensor([[[1.0, 1.0], [-1.0, -2.0], [-1.0, 1.0]]]), torch.ones(1, 2, 3)]
    biases = [torch.tensor([[0.0, -0.1, 0.0]]), torch.zeros(1, 2)]
    dead = pruning.dead_units(weights, biases, torch.tensor([[1.0, 0.0], [0.0, 2.0]]), "relu")
    assert dead["layer1_dead"].tolist() == [1] and dead["dead_units"].tolist() == [1]


def test_the_structure_equals_a_plain_loop_over_trained_networks_on_their_seeds_splits():
    # The curves of a trained grid, recomputed one network at a time on its seed's split: nn.Module,
    # and each layer's weights sorted by magnitude with the smallest round(k·n) set to zero.
    config = make_config(epochs=2, optimizers={"adam": {"lr": 0.01, "families": {"prox_l1": [0.02], "l2": [0.01]}}})
    members = grid.expand(config)
    data = make_splits(splits=2)
    trained = train_grid(members, data, config, [1e-3], torch.device("cpu"), progress=False)
    result = pruning.with_structure(trained, members, data, config.activation, torch.device("cpu"))
    structure, curves = result.final.set_index("member"), result.pruning
    weights, biases = [w for w, _ in result.weights], [b for _, b in result.weights]
    sizes = [6, *config.hidden, 3]
    members = [m for m in members if m.hidden]  # the networks: result.weights holds theirs

    def pruned_logits(member: grid.Member, fraction: float) -> torch.Tensor:
        model = MLP(sizes, config.activation, (0.0,) * len(config.hidden))
        with torch.no_grad():
            for layer, w, b in zip(model.layers, weights, biases):
                flat = w[member.member].flatten().clone()
                flat[flat.abs().sort(stable=True).indices[: round(fraction * flat.numel())]] = 0
                layer.weight.copy_(flat.view_as(layer.weight))
                layer.bias.copy_(b[member.member])
            return model(data.for_seed(member.seed).x_val)[0]

    for member in members:
        y = data.for_seed(member.seed).y_val
        for fraction in pruning.PRUNE_FRACTIONS:
            logits = pruned_logits(member, fraction)
            row = curves[(curves["member"] == member.member) & (curves["fraction"] == fraction)].iloc[0]
            assert row["val_acc"] == (logits.argmax(1) == y).double().mean().item()
            assert row["val_loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
        # The refined prunable fraction keeps validation accuracy within the tolerance.
        prunable = structure.loc[member.member, "prunable_fraction"]
        unpruned = curves[(curves["member"] == member.member) & (curves["fraction"] == 0)]["val_acc"].item()
        kept = (pruned_logits(member, prunable).argmax(1) == y).double().mean().item()
        assert kept >= unpruned - pruning.PRUNABLE_TOLERANCE - 1e-12
    assert structure.loc[[m.member for m in members], "prunable_fraction"].between(0, 0.99).all()
    assert (structure.loc[[m.member for m in members if m.family == "prox_l1"], "zeros"] > 0).all()


def test_the_linear_references_are_not_measured_and_the_networks_are_as_alone():
    config = make_config(epochs=2, optimizers={"adam": {"lr": 0.01, "families": {"l2": [0.01]}}})
    members = grid.expand(config)
    data, cpu = make_splits(), torch.device("cpu")
    linear = [m.member for m in members if not m.hidden]
    assert linear
    result = pruning.with_structure(
        train_grid(members, data, config, [1e-3], cpu, progress=False), members, data, config.activation, cpu
    )
    networks = [m for m in members if m.hidden]
    alone = train_grid(networks, data, config, [1e-3], cpu, progress=False)
    alone = pruning.with_structure(alone, networks, data, config.activation, cpu)
    final = result.final.set_index("member")
    assert final.loc[linear, ["prunable_fraction", "dead_units", "layer1_negligible"]].isna().all().all()
    assert final.loc[linear, "test_acc"].notna().all()
    assert not set(result.pruning["member"]) & set(linear)
    pd.testing.assert_frame_equal(final.drop(index=linear), alone.final.set_index("member"), check_exact=True)
    pd.testing.assert_frame_equal(result.pruning, alone.pruning, check_exact=True)


def test_an_all_zero_network_and_a_nan_member_get_defined_values():
    # Member 0 has every weight 0 (a constant predictor: pruning changes nothing, every unit is
    # dead, every weight negligible); member 1 is tiny() with a NaN weight (diverged): NaN throughout.
    (w1, w2), (b1, b2) = tiny()
    nan = w1.clone()
    nan[0, 0, 0] = math.nan
    weights = [torch.cat([torch.zeros_like(w1), nan]), torch.cat([torch.zeros_like(w2), w2])]
    biases = [torch.cat([b1, b1]), torch.cat([b2, b2])]
    curve = pruning.pruning_curve(weights, biases, X, Y, "relu", FRACTIONS)
    assert curve["acc"][:, 0].tolist() == [0.5] * len(FRACTIONS)
    assert curve["acc"][:, 1].isnan().all()
    prunable = pruning.prunable_fraction(curve["acc"], FRACTIONS)
    assert prunable[0].item() == FRACTIONS[-1] and math.isnan(prunable[1].item())
    refined = pruning.refined_prunable_fraction(weights, biases, X, Y, "relu", curve["acc"], FRACTIONS)
    assert refined[0].item() == FRACTIONS[-1] and math.isnan(refined[1].item())  # the last rung: nothing to refine
    dead = pruning.dead_units(weights, biases, X, "relu")
    assert dead["dead_units"][0].item() == 2 and math.isnan(dead["dead_units"][1].item())
    measures = pruning.layer_measures(weights)
    overall = ("negligible", "hoyer_layers", "zeros", "underflow")
    assert [measures[m][0].item() for m in overall] == [1, 1, 1, 0]
    # The NaN layer's measures and the overall ones are NaN; the finite layer keeps its values.
    assert all(math.isnan(measures[m][1].item()) for m in (*overall, "layer1_negligible", "layer1_hoyer"))
    assert measures["layer2_zeros"][1].item() == 0

"""params.yaml is validated before a stage reads or writes anything: every kind of mistake stops
it with exit code 2 and one line naming the key path, the value found and what is allowed."""

from __future__ import annotations

import pytest

from pipelines.core import params

CASES = [
    # (dotted key, bad value, words the one-line message must contain)
    ("train.diabetes.epoch", 5, ["train.diabetes.epoch", "unknown key"]),
    ("train.diabetes.epochs", "ten", ["train.diabetes.epochs", "'ten'", "integer"]),
    (
        "train.diabetes.optimizers.adam.families.l1",
        [1e-3, -0.5],
        ["families.l1.1", "-0.5", "greater than or equal to 0"],
    ),
    (
        "train.diabetes.optimizers.adam.families.dropout",
        [0.2, 0.3, 1.0],
        ["train.diabetes.optimizers.adam.families.dropout.2: found 1.0;", "less than 1"],
    ),
    ("train.diabetes.optimizers", {}, ["train.diabetes.optimizers", "the grid is empty"]),
    ("train.fashion_mnist.seeds", [0, 1, 1, 2], ["train.fashion_mnist.seeds", "[0, 1, 1, 2]", "repeated: [1]"]),
    ("train.diabetes.seeds", [], ["train.diabetes.seeds", "at least 1"]),
    ("analyze.alpha", 1.5, ["analyze.alpha", "1.5", "less than 1"]),
    ("analyze.accuracy_costs", [0.01, 0.005], ["analyze.accuracy_costs", "[0.01, 0.005]", "strictly increasing"]),
    ("analyze.accuracy_costs", [], ["analyze.accuracy_costs", "at least 1"]),
    (
        "analyze.margins.diabetes.prunable_fraction.value",
        0,
        ["analyze.margins.diabetes.prunable_fraction.value", "greater than 0"],
    ),
    ("profile", "huge", ["profile", "'huge'", "smoke"]),
    ("profiles.smoke.train.diabetes.epohcs", 3, ["profiles.smoke.train.diabetes.epohcs", "unknown key"]),
]


@pytest.mark.parametrize(("key", "value", "words"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_value_stops_a_stage_with_one_line_naming_the_key(key, value, words, workdir, set_param, run_stage):
    set_param(key, value)
    done = run_stage("train", "diabetes", workdir)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert sorted(p.name for p in workdir.iterdir()) == ["params.yaml"]  # nothing read or written
    assert "constrained" not in lines[0] and "function-" not in lines[0]  # pydantic's own labels


def test_a_yaml_syntax_error_names_the_file_and_line(workdir, capsys):
    (workdir / "params.yaml").write_text("profile: smoke\ndata:\n  mirror: [unclosed\n")
    with pytest.raises(params.ParamsError) as error:
        params.load()
    message = str(error.value)
    assert message.startswith("params.yaml: not valid YAML: ") and "\n" not in message
    assert '"params.yaml", line 3' in message and "<unicode string>" not in message


def test_the_repository_params_are_valid_in_every_profile(workdir, set_param):
    for profile in ("smoke", "standard", "paper"):
        set_param("profile", profile)
        loaded = params.load()
        assert loaded.profile == profile
    assert params.load().train.fashion_mnist.epochs > 2  # the paper overlay applied


def test_a_profile_overlay_is_applied(workdir, set_param):
    set_param("profile", "smoke")
    smoke = params.load()
    assert smoke.train.diabetes.seeds == [0, 1, 2]
    assert smoke.data.fashion_mnist.train_subset == 1000


def test_a_bad_value_in_an_unused_profile_is_caught_too(workdir, set_param):
    set_param("profiles.paper.train.diabetes.epochs", 0)
    with pytest.raises(params.ParamsError, match=r"train\.diabetes\.epochs: found 0; .* \(with profile paper\)"):
        params.load()


@pytest.mark.parametrize(("optimizer", "family"), [("sgd", "adamw"), ("adam", "sgdw")])
def test_decoupled_decay_under_the_other_optimizer_is_one_line_naming_the_key(optimizer, family, workdir, set_param):
    set_param(f"train.diabetes.optimizers.{optimizer}.families.{family}", [0.1])
    with pytest.raises(params.ParamsError) as raised:
        params.load()
    assert f"optimizers.{optimizer}.families.{family}" in str(raised.value)
    assert "\n" not in str(raised.value)

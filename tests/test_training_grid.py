"""Training breadth: every optimizer (with and without its options) and the new losses, three
witnesses: Keras's model.fit (float64 at 1e-9, float32 at 1e-5), central differences of the
generated loss, and the CLI's JSON report.

The grid is a covering, not a full product: every optimizer configuration meets three of the
loss/output cells (rotating), and every loss/output cell meets two optimizers; hidden
activations rotate too. Seven samples in batches of three leave a short last batch; three
epochs make t run across epochs. Keras runs in this process (one small fit per cell).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from symbp.witnesses import finite_differences

from symbp.witnesses import compare, module as generated
from symbp.witnesses.keras import keras_train
from symbp.witnesses.report import CheckReport
from symbp.emit.codegen import module_source
from symbp.derivation.derive import loss_warnings
from symbp.rules import activations, losses
from symbp.spec import Spec, SpecError

SAMPLES, INPUTS, HIDDEN, OUTPUTS = 7, 3, 4, 3
BATCH_SIZE, EPOCHS = 3, 3

OPTIMIZERS = [
    ("sgd", {"learning_rate": 0.1}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd", {"learning_rate": 0.1, "momentum": 0.7, "nesterov": True}),
    ("sgd", {"learning_rate": 0.1, "weight_decay": 0.05}),
    ("adam", {"learning_rate": 0.05}),
    ("adam", {"learning_rate": 0.05, "amsgrad": True, "beta_1": 0.8, "beta_2": 0.95}),
    ("adam", {"learning_rate": 0.05, "weight_decay": 0.1, "epsilon": 1e-4}),
    ("adamw", {"learning_rate": 0.05}),
    ("adamw", {"learning_rate": 0.05, "amsgrad": True, "weight_decay": 0.3}),
    ("rmsprop", {"learning_rate": 0.02}),
    ("rmsprop", {"learning_rate": 0.02, "momentum": 0.6}),
    ("rmsprop", {"learning_rate": 0.02, "centered": True, "rho": 0.8}),
    ("rmsprop", {"learning_rate": 0.02, "centered": True, "momentum": 0.3, "weight_decay": 0.05}),
    ("adagrad", {"learning_rate": 0.1}),
    ("adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.3, "epsilon": 1e-3}),
    ("adamax", {"learning_rate": 0.05}),
    ("adamax", {"learning_rate": 0.05, "beta_1": 0.7, "beta_2": 0.9, "weight_decay": 0.1}),
    ("nadam", {"learning_rate": 0.05}),
    ("nadam", {"learning_rate": 0.05, "beta_1": 0.85, "beta_2": 0.99, "weight_decay": 0.05}),
]

#: (loss, its arguments, output activation); the cross-entropies also on the activation they do
#: not expect (Keras's logits quirk) and on one that takes the clipped probability path
LOSS_CELLS = [
    ("categorical_crossentropy", {}, "softmax"),
    ("categorical_crossentropy", {}, "sigmoid"),
    ("categorical_crossentropy", {}, "softplus"),
    ("sparse_categorical_crossentropy", {}, "softmax"),
    ("sparse_categorical_crossentropy", {}, "sigmoid"),
    ("sparse_categorical_crossentropy", {}, "tanh"),
    ("binary_crossentropy", {}, "sigmoid"),
    ("binary_crossentropy", {}, "softmax"),
    ("binary_crossentropy", {}, "tanh"),
    ("mean_squared_error", {}, "linear"),
    ("mean_squared_error", {}, "softmax"),
    ("mean_absolute_error", {}, "linear"),
    ("mean_absolute_error", {}, "sigmoid"),
    ("huber", {}, "linear"),
    ("huber", {"delta": 0.3}, "tanh"),
    ("huber", {"delta": 2.0}, "elu"),
]
HIDDEN_ACTIVATIONS = ["tanh", "sigmoid", "elu", "softplus", "relu", "gelu"]



def takes_clipped_path(cell) -> bool:
    """A cross-entropy on an output that does not tag its logits: clipped, so kinked."""
    return losses[cell[0]].logits_formula is not None and not activations[cell[2]].tags_logits


#: cells whose loss is smooth (huber is C1, enough for central differences); relu hidden layers
#: have a kink at 0 too
SMOOTH_LOSS_CELLS = [cell for cell in LOSS_CELLS
                     if cell[0] != "mean_absolute_error" and not takes_clipped_path(cell)]
SMOOTH_HIDDEN = ["tanh", "sigmoid", "elu", "softplus", "gelu"]


def labels(loss: str, rng: np.random.Generator) -> list:
    classes = rng.integers(0, OUTPUTS, SAMPLES)
    if loss == "sparse_categorical_crossentropy":
        return classes.reshape(-1, 1).tolist()
    if loss == "categorical_crossentropy":
        return np.eye(OUTPUTS)[classes].tolist()
    if loss == "binary_crossentropy":
        return (rng.random((SAMPLES, OUTPUTS)) > 0.5).astype(float).tolist()
    return rng.normal(0.3, 1.0, (SAMPLES, OUTPUTS)).round(3).tolist()


def make_spec(optimizer: tuple, cell: tuple, hidden: str, seed: int = 0) -> Spec:
    loss, arguments, output = cell
    rng = np.random.default_rng(seed)
    data = {"x": rng.normal(0, 1, (SAMPLES, INPUTS)).round(3).tolist(), "y": labels(loss, rng)}
    name, settings = optimizer
    return Spec.from_dict({
        "name": "grid", "seed": seed, "data": data,
        "layers": [{"units": HIDDEN, "activation": hidden}, {"units": OUTPUTS, "activation": output}],
        "loss": {"name": loss, **arguments},
        "optimizer": {"name": name, **settings},
        "training": {"batch_size": BATCH_SIZE, "epochs": EPOCHS},
    })


def cell_id(optimizer, cell, hidden) -> str:
    name, settings = optimizer
    options = ",".join(f"{k}={v}" for k, v in settings.items() if k != "learning_rate")
    arguments = ",".join(f"{k}={v}" for k, v in cell[1].items())
    return f"{name}[{options}]-{cell[0]}[{arguments}]-{hidden}>{cell[2]}"


def grid() -> list:
    cells = {}
    for n, optimizer in enumerate(OPTIMIZERS):
        for offset in (0, 5, 11):
            cell = LOSS_CELLS[(n + offset) % len(LOSS_CELLS)]
            hidden = HIDDEN_ACTIVATIONS[(n + offset) % len(HIDDEN_ACTIVATIONS)]
            cells[cell_id(optimizer, cell, hidden)] = (optimizer, cell, hidden)
    for n, cell in enumerate(LOSS_CELLS):
        for optimizer in (OPTIMIZERS[1], OPTIMIZERS[4 + n % 2 * 13]):   # sgd momentum; adam or nadam
            hidden = HIDDEN_ACTIVATIONS[n % len(HIDDEN_ACTIVATIONS)]
            cells[cell_id(optimizer, cell, hidden)] = (optimizer, cell, hidden)
    return [pytest.param(*value, id=key) for key, value in cells.items()]


GRID = grid()


def assert_report_matches(report: CheckReport) -> None:
    failures = {c.name: c.max_abs_diff for c in report.parameters if not c.match}
    assert not failures, f"parameters differ from Keras: {failures}"
    assert report.losses.match, (report.losses.witness, report.losses.symbp)
    assert len(report.losses.witness) == EPOCHS


@pytest.mark.parametrize("optimizer, cell, hidden", GRID)
def test_float64_parity_with_keras(optimizer, cell, hidden):
    spec = make_spec(optimizer, cell, hidden)
    report = compare.check(spec, "float64")
    assert report.tolerance == 1e-9
    assert_report_matches(report)




#: every loss cell, the logits quirks included (Keras takes the logits path in float32 too)
FLOAT32_LOSS_CELLS = LOSS_CELLS
FLOAT32_CELLS = [(optimizer, FLOAT32_LOSS_CELLS[n * 5 % len(FLOAT32_LOSS_CELLS)], "tanh")
                 for n, optimizer in enumerate(OPTIMIZERS) if n % 2 == 0 or optimizer[0] == "nadam"]


@pytest.mark.parametrize("optimizer, cell, hidden", [pytest.param(*c, id=cell_id(*c)) for c in FLOAT32_CELLS])
def test_float32_replay_stays_float32_and_matches_keras(optimizer, cell, hidden):
    spec = make_spec(optimizer, cell, hidden, seed=1)
    report = compare.check(spec, "float32")   # also fails on any parameter not float32
    assert report.tolerance == 1e-5
    assert_report_matches(report)


@pytest.mark.parametrize("cell", SMOOTH_LOSS_CELLS, ids=lambda c: f"{c[0]}{c[1] or ''}>{c[2]}")
@pytest.mark.parametrize("hidden", SMOOTH_HIDDEN)
def test_finite_differences_agree_with_gradients(cell, hidden):
    spec = make_spec(OPTIMIZERS[4], cell, hidden, seed=2)
    module = generated.load_module(module_source(spec), spec.name)
    report = finite_differences.check(spec, module)
    assert report.match and report.gradients, report.describe(spec)
    # and again at the trained weights (a different point, after several adam steps)
    trained, _ = module.train()
    again = finite_differences.compare_gradients(module, trained, module.X, module.Y)
    assert again.match, again.describe(spec)


def test_finite_differences_catch_a_wrong_gradient():
    spec = make_spec(OPTIMIZERS[0], LOSS_CELLS[0], "tanh")
    module = generated.load_module(module_source(spec), spec.name)
    right = module.gradients
    module.gradients = lambda params, x, y: {**right(params, x, y), "b0": 1.01 * right(params, x, y)["b0"]}
    report = finite_differences.check(spec, module)
    assert not report.match
    assert [g.name for g in report.gradients if not g.match] == ["b0"]


def test_float32_rounding_of_hyperparameters_is_needed():
    """Keras keeps SGD's momentum as float32: the exact 0.9 drifts past the float64 tolerance."""
    spec = make_spec(OPTIMIZERS[1], LOSS_CELLS[0], "tanh")
    source = module_source(spec)
    assert "MOMENTUM = 0.8999999761581421  # Keras rounds momentum to float32" in source
    module = generated.load_module(source, spec.name)
    module.MOMENTUM = 0.9
    keras_params, _ = keras_train(spec)
    params, _ = generated.module_train(spec, module=module)
    drift = max(float(np.max(np.abs(keras_params[n] - params[n]))) for n in spec.param_names)
    assert drift > 1e-9


def test_step_carries_slots_and_step_count():
    spec = make_spec(OPTIMIZERS[17], LOSS_CELLS[3], "tanh")   # nadam: slots and a step slot
    module = generated.load_module(module_source(spec), spec.name)
    params = module.initial_params()
    x, y = module.X[:BATCH_SIZE], module.Y[:BATCH_SIZE]
    once, state = module.step(params, x, y)
    assert state["t"] == 1 and set(state) == {"t", "u_product", "momentum", "velocity"}
    assert state["u_product"] == pytest.approx(0.9 * (1 - 0.5 * 0.96))
    assert all(state["momentum"][n].shape == params[n].shape for n in module.PARAM_NAMES)
    twice, state2 = module.step(once, x, y, state)
    assert state2["t"] == 2 and state["t"] == 1   # the old state is not mutated
    fresh, _ = module.step(once, x, y)            # without the state the step differs
    assert not np.allclose(fresh["W0"], twice["W0"])


def test_warnings_name_keras_surprises():
    assert loss_warnings("categorical_crossentropy", "softmax") == ()
    assert loss_warnings("mean_squared_error", "relu") == ()
    (quirk,) = loss_warnings("binary_crossentropy", "softmax")
    assert "sigmoid cross-entropy of z" in quirk and "logits z" in quirk
    (quirk,) = loss_warnings("categorical_crossentropy", "sigmoid")
    assert "softmax cross-entropy of z" in quirk
    (clipped,) = loss_warnings("sparse_categorical_crossentropy", "tanh")
    assert "clips" in clipped
    source = module_source(make_spec(OPTIMIZERS[0], ("binary_crossentropy", {}, "softmax"), "tanh"))
    docstring = source.split('"""')[1]
    assert "Warning: binary_crossentropy on a softmax output" in docstring
    assert "_sigmoid(z2)" in source   # the stable logits path, not a softmax expression


def test_sparse_labels_are_validated():
    base = make_spec(OPTIMIZERS[0], LOSS_CELLS[3], "tanh").to_dict()
    base["data"]["y"] = [[3]] * SAMPLES   # class 3 of 3 units
    with pytest.raises(SpecError, match="class indices 0 .. 2"):
        Spec.from_dict(base)
    base["data"]["y"] = np.eye(OUTPUTS)[[0] * SAMPLES].tolist()
    with pytest.raises(SpecError, match="one class index per sample"):
        Spec.from_dict(base)


def test_loss_arguments_are_validated():
    base = make_spec(OPTIMIZERS[0], LOSS_CELLS[14], "tanh").to_dict()
    assert base["loss"] == {"name": "huber", "delta": 0.3}
    base["loss"]["delta"] = -1.0
    base["loss"]["delt"] = 1.0
    with pytest.raises(SpecError) as raised:
        Spec.from_dict(base)
    assert "loss.delta: must be positive" in str(raised.value)
    assert "loss.delt: unknown key (did you mean 'delta'?)" in str(raised.value)


@pytest.mark.parametrize("optimizer, cell", [
    (OPTIMIZERS[11], ("binary_crossentropy", {}, "softmax")),
    (OPTIMIZERS[18], ("huber", {"delta": 0.5}, "linear")),
], ids=["rmsprop-bce-on-softmax", "nadam-huber"])
def test_cli_check_json_reports_every_parameter(tmp_path, symbp_cli, optimizer, cell):
    spec = make_spec(optimizer, cell, "tanh")
    path = tmp_path / "grid.toml"
    spec.save(path)
    result = symbp_cli("check", str(path), "--json", "--finite-differences")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["match"] is True and report["dtype"] == "float64"
    assert set(report["parameters"]) == {"W0", "b0", "W1", "b1"}
    assert all(p["match"] and p["max_abs_diff"] <= 1e-9 for p in report["parameters"].values())
    assert len(report["epoch_losses"]["keras"]) == EPOCHS
    assert set(report["finite_differences"]["gradients"]) == {"W0", "b0", "W1", "b1"}
    assert report["finite_differences"]["match"] is True
    assert report["warnings"] == list(loss_warnings(cell[0], cell[2]))
    assert ("symbp: warning:" in result.stderr) == bool(report["warnings"])

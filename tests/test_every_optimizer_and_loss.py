"""Every optimizer and loss through the handouts, the notebooks, `derive` and `variants`.

Those outputs were built against plain SGD and the three core losses; each case here pairs one
optimizer configuration with one loss. The handouts' numbers are read back from the PDFs and
checked against the generated module (``backward``, ``step``, ``train``) and, for what the handout
works out on its own (Adam's alpha, nadam's u_t, the huber and MAE losses, sparse labels' one-hot
rows), against formulas written here from Keras's documentation. The solution notebooks run in a
fresh kernel and must print "They match!" against Keras for every parameter and the loss.
"""

from __future__ import annotations

import re

import sympy as sp

import numpy as np
import pytest

from symbp.emit.codegen import module_path, module_source
from symbp.emit.handouts import HandoutOptions, render_handouts
from symbp.witnesses.module import load_module
from symbp.emit.latex import format_number, matrix_tex
from symbp.emit.outputs import rendered_outputs
from symbp.spec import Spec
from symbp.classroom.variants import draw_variants
from test_handouts import compile_both, formatted, numbers_in
from test_notebooks import assert_every_check_matches, executed_solution

X = [[0.5, -0.2, 0.1], [0.3, 0.8, -0.6], [-0.4, 0.2, 0.9]]


def f32(value: float) -> float:
    return float(np.float32(value))


def case(name, optimizer, loss, output, y, units=None, batch_size=2, epochs=1):
    """A 3-2-K network (tanh hidden layer) with fixed weights; K from the labels."""
    rng = np.random.default_rng(11)
    units = units or len(y[0])
    layers = [{"units": width, "activation": act,
               "weights": np.round(rng.uniform(-1, 1, (fan_in, width)), 2).tolist(),
               "bias": np.round(rng.uniform(-0.3, 0.3, width), 2).tolist()}
              for fan_in, width, act in [(3, 2, "tanh"), (2, units, output)]]
    return Spec.from_dict({"name": name, "data": {"x": X, "y": y}, "layers": layers, "loss": loss,
                           "optimizer": optimizer,
                           "training": {"batch_size": batch_size, "epochs": epochs, "shuffle": False}})


CASES = {
    "adam_amsgrad_scce": lambda: case(
        "adam_amsgrad_scce", {"name": "adam", "learning_rate": 0.1, "amsgrad": True},
        {"name": "sparse_categorical_crossentropy"}, "softmax", [[2], [0], [1]], units=3, epochs=2),
    "adamw_huber": lambda: case(
        "adamw_huber", {"name": "adamw", "learning_rate": 0.1, "beta_1": 0.8},
        {"name": "huber", "delta": 0.5}, "linear", [[0.9, -0.5], [1.0, 0.2], [-0.3, 0.4]]),
    "rmsprop_mae": lambda: case(
        "rmsprop_mae", {"name": "rmsprop", "learning_rate": 0.05, "centered": True, "momentum": 0.5},
        {"name": "mean_absolute_error"}, "linear", [[0.9, -0.5], [1.0, 0.2], [-0.3, 0.4]], epochs=2),
    "adagrad_cce": lambda: case(
        "adagrad_cce", {"name": "adagrad", "learning_rate": 0.5, "initial_accumulator_value": 0.2},
        {"name": "categorical_crossentropy"}, "softmax", [[0, 1], [1, 0], [0.3, 0.7]], batch_size=3),
    "adamax_bce": lambda: case(
        "adamax_bce", {"name": "adamax", "learning_rate": 0.1}, {"name": "binary_crossentropy"},
        "sigmoid", [[1], [0], [1]], batch_size=1),
    "nadam_mse": lambda: case(
        "nadam_mse", {"name": "nadam", "learning_rate": 0.1, "beta_2": 0.99},
        {"name": "mean_squared_error"}, "tanh", [[0.5, -0.5], [0.2, 0.1], [-0.3, 0.4]], epochs=2),
    "sgd_nesterov_decay_huber": lambda: case(
        "sgd_nesterov_decay_huber", {"name": "sgd", "learning_rate": 0.3, "momentum": 0.9,
                                     "nesterov": True, "weight_decay": 0.01},
        {"name": "huber"}, "sigmoid", [[0.9, 0.1], [0.2, 0.6], [0.5, 0.5]], batch_size=3, epochs=3),
}


def keras_step_scalars(spec: Spec) -> set[str]:
    """The per-step numbers of step 1 as Keras's optimizers compute them (KERAS-SEMANTICS.md)."""
    opt = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, **spec.optimizer.arguments}
    b1, b2, lr = opt["beta_1"], opt["beta_2"], opt["learning_rate"]
    if spec.optimizer.name in ("adam", "adamw"):
        return {format_number(lr * np.sqrt(1 - f32(b2)) / (1 - f32(b1)), 8)}
    if spec.optimizer.name == "nadam":
        u_t, u_next = f32(b1) * (1 - 0.5 * f32(0.96)), f32(b1) * (1 - 0.5 * f32(0.96) ** 2)
        return formatted(u_t, u_next, b1 * (1 - 0.5 * 0.96))
    return set()


def keras_batch_loss(spec: Spec, outputs: np.ndarray, y: np.ndarray) -> float | None:
    """MAE and huber of the first batch, as Keras reduces them."""
    error = outputs - y
    if spec.loss.name == "mean_absolute_error":
        return float(np.mean(np.abs(error)))
    if spec.loss.name == "huber":
        delta = spec.loss.arguments.get("delta", 1.0)
        return float(np.mean(np.where(np.abs(error) <= delta, error ** 2 / 2,
                                      delta * np.abs(error) - delta ** 2 / 2)))
    return None


@pytest.fixture(scope="module")
def handouts(tmp_path_factory):
    """Each case's module and its compiled handouts' text (compiled once for all checks)."""
    out = {}
    for key, make in CASES.items():
        spec = make()
        module = load_module(module_source(spec), spec.name)
        texts = compile_both(spec, tmp_path_factory.mktemp(key), HandoutOptions(explain=("W0[1,0]",)))
        out[key] = spec, module, texts
    return out


@pytest.mark.parametrize("key", sorted(CASES))
def test_handouts_show_the_modules_numbers_and_hide_them_from_students(key, handouts):
    spec, module, texts = handouts[key]
    params = module.initial_params()
    x, y = module.X[:spec.batch_size], module.Y[:spec.batch_size]
    grads, deltas = module.backward(params, x, y)
    updated, _ = module.step(params, x, y)
    solution, student = numbers_in(texts["solution"]), numbers_in(texts["student"])

    answers = formatted(*deltas, *grads.values(), *updated.values()) | keras_step_scalars(spec)
    assert not answers - solution
    given = formatted(spec.x, spec.y, *params.values(), *module.forward(params, x), module.loss(params, x, y))
    assert given <= solution and given <= student
    assert not (answers - given) & student
    if spec.epochs * len(spec.x) > spec.batch_size:
        final, losses = module.train()
        assert not formatted(*final.values(), losses if spec.epochs > 1 else []) - solution
    assert "Update rule for every weight" in texts["solution"]
    if keras_step_scalars(spec):
        assert "per-step numbers" in texts["solution"] and "per-step numbers" in texts["student"]


@pytest.mark.parametrize("key", ["adamw_huber", "rmsprop_mae", "sgd_nesterov_decay_huber"])
def test_elementwise_losses_match_keras_formulas(key, handouts):
    spec, module, texts = handouts[key]
    params = module.initial_params()
    x, y = module.X[:spec.batch_size], module.Y[:spec.batch_size]
    outputs = module.forward(params, x)[-1]
    expected = keras_batch_loss(spec, outputs, y)
    assert format_number(expected, 8) in numbers_in(texts["solution"])
    if spec.loss.name == "huber":   # the rows its cases compare, |a - y|, are worked out
        assert not formatted(np.abs(outputs - y)) - numbers_in(texts["solution"])


def test_sparse_labels_are_shown_and_used_as_one_hot_rows():
    spec = CASES["adam_amsgrad_scce"]()
    solution = render_handouts(spec)["solution"]
    indices = np.array(spec.y)[:spec.batch_size, 0].astype(int)
    one_hot = matrix_tex(np.eye(3)[indices], 8)
    loss_section = solution.split(r"\section*{Loss}")[1].split(r"\section*{Back")[0]
    assert one_hot in loss_section
    assert matrix_tex(np.array(spec.y)[:spec.batch_size], 8) not in loss_section
    assert matrix_tex(np.eye(3)[np.array(spec.y)[:, 0].astype(int)], 8) in solution  # in the givens


@pytest.mark.parametrize("key", sorted(CASES))
def test_optimizer_symbols_are_letters(key):
    """No raw Python name (velocity_hat, beta_1_f32, u_product) reaches the LaTeX."""
    solution = render_handouts(CASES[key](), HandoutOptions(explain=("W1[0,0]",)))["solution"]
    math = " ".join(re.findall(r"\\mathline\{(.*)\}$", solution, flags=re.M))
    assert not re.findall(r"f32(?!\()", math)
    assert "\\_" not in math and "product" not in math and "velocity" not in math


# ---------------------------------------------------------------- derive and variants
def test_derive_writes_the_module_with_the_loss_arguments(tmp_path):
    spec = CASES["adamw_huber"]()
    files = rendered_outputs(spec, tmp_path)
    module = load_module(files[module_path(spec, tmp_path)], spec.name)
    params = module.initial_params()
    outputs = module.forward(params, module.X)[-1]
    assert np.isclose(module.loss(params, module.X, module.Y), keras_batch_loss(spec, outputs, module.Y),
                      rtol=1e-13)


def test_variants_draw_class_indices_for_sparse_labels():
    data = CASES["adam_amsgrad_scce"]().to_dict()
    data["variants"] = {"vary": ["weights", "y"]}
    variants = draw_variants(Spec.from_dict(data), 4, seed=3)
    labels = np.array([v.y for v in variants])
    assert labels.shape == (4, 3, 1)
    assert set(np.unique(labels)) <= {0.0, 1.0, 2.0} and len(np.unique(labels)) > 1


# ---------------------------------------------------------------- notebooks
@pytest.mark.parametrize("key", ["adam_amsgrad_scce", "adamw_huber", "rmsprop_mae", "nadam_mse"])
def test_solution_notebook_matches_keras(key, tmp_path):
    spec = CASES[key]()
    assert_every_check_matches(executed_solution(spec, tmp_path)[0], spec)


#: what a module must never print: a negative power (NumPy's printer wrote x**(-1.0)) or a
#: matrix product with a number or the batch size B as an operand (B**(-1.0) @ a.T @ delta)
NOT_PRINTED = re.compile(r"\*\*\(?-\d|\bB\s*@|@\s*\(?B\b|(?<![\w.\]])\d+(\.\d+)?\s*@|@\s*\(?-?\d")


def modules_of_every_loss_and_optimizer():
    """A module per Keras loss and per torch loss over output activations that reach each of
    their forms (logits, clipped, worked out), and per optimizer of both frameworks."""
    from symbp.rules import activations, loss_registry, optimizer_registry
    from test_torch import LOSSES as TORCH_LOSSES, OPTIMIZERS as TORCH_OPTIMIZERS, torch_spec
    outputs = ["linear", "sigmoid", "softmax", "softplus", "silu"]
    assert set(outputs) <= set(activations.names())
    specs = {}
    for loss in loss_registry("keras").names():
        y = [[2], [0], [1]] if loss.startswith("sparse") else [[0, 1, 0], [1, 0, 0], [0.2, 0.3, 0.5]]
        for output in outputs:
            specs[(loss, output)] = case(loss, {"name": "sgd"}, {"name": loss}, output, y, units=3)
    for loss, y, _ in TORCH_LOSSES:
        for output in outputs:
            specs[(str(loss), output)] = torch_spec(loss, {"name": "SGD", "lr": 0.1}, y, ("tanh", output))
    for optimizer in optimizer_registry("keras").names():
        specs[optimizer] = case(optimizer, {"name": optimizer}, {"name": "mean_squared_error"}, "tanh",
                                [[0.5, -0.5], [0.2, 0.1], [-0.3, 0.4]])
    for optimizer in TORCH_OPTIMIZERS:
        specs[str(optimizer)] = torch_spec({"name": "MSELoss"}, optimizer, [[0.3, -1.5, 0.2], [1.1, 0.4, -0.2],
                                           [-0.7, 0.0, 0.9], [0.2, 2.5, -0.4], [0.0, 0.6, 0.1]])
    assert {o["name"].lower() for o in TORCH_OPTIMIZERS} == set(optimizer_registry("torch").names())
    return specs


def test_no_module_prints_a_negative_power_or_a_matrix_product_with_a_scalar():
    found = {}
    for key, spec in modules_of_every_loss_and_optimizer().items():
        for line in module_source(spec).splitlines():
            found.update({(key, m.group()): line for m in NOT_PRINTED.finditer(line)})
    assert not found, found


def test_the_numpy_printer_divides_where_sympy_holds_a_negative_power():
    from symbp.emit.printers import ArrayPrinter
    batch, x = sp.Symbol("B"), sp.Symbol("x")
    a, delta = sp.MatrixSymbol("a", 3, 2), sp.MatrixSymbol("delta", 3, 4)
    printed = ArrayPrinter().doprint
    assert printed(sp.MatMul(1 / batch, a.T, delta)) == "(a.T @ delta)/B"
    assert printed(sp.MatMul(-2 / batch, a.T, delta)) == "(-2)*(a.T @ delta)/B"
    assert printed(1 / (x - 1) - 3) == "1/(x - 1) - 3" and printed(1 + (x - 1) ** -2) == "1 + 1/(x - 1)**2"

"""Keras parity grid: every activation x each core loss x several depths, batches and epochs.

Each cell trains the same network with Keras ``model.fit(shuffle=False)`` and with the
generated module's ``train``; every final parameter and every epoch loss must agree to 1e-9
in float64 (1e-5 in float32). Batch sizes leave a short last batch.
"""

from __future__ import annotations

import numpy as np
import pytest

from symbp.witnesses.compare import check
from symbp.rules import activations
from symbp.spec import Spec

ACTIVATIONS = activations.names()
CORE_LOSSES = ["categorical_crossentropy", "binary_crossentropy", "mean_squared_error"]


def labels(loss: str, rows: int, units: int, rng) -> list:
    if loss == "categorical_crossentropy":
        return np.eye(units)[rng.integers(0, units, size=rows)].tolist()
    if loss == "binary_crossentropy":
        return rng.integers(0, 2, size=(rows, units)).astype(float).tolist()
    return rng.normal(0.0, 1.0, size=(rows, units)).round(3).tolist()


def make_spec(widths, acts, loss, *, rows=5, batch_size=2, epochs=3, seed=0, lr=0.05) -> Spec:
    rng = np.random.default_rng(seed)
    layers = [{"units": widths[n + 1], "activation": act,
               "weights": rng.normal(0.0, 0.6, size=(widths[n], widths[n + 1])).round(4).tolist(),
               "bias": rng.normal(0.0, 0.2, size=widths[n + 1]).round(4).tolist()}
              for n, act in enumerate(acts)]
    # keep the output row away from all zeros (relu under a cross-entropy: 0/0 in Keras too)
    layers[-1]["bias"] = [b + 1.0 for b in layers[-1]["bias"]]
    return Spec.from_dict({
        "name": "grid_cell",
        "data": {"x": rng.normal(0.0, 1.0, size=(rows, widths[0])).round(3).tolist(),
                 "y": labels(loss, rows, widths[-1], rng)},
        "layers": layers,
        "loss": {"name": loss},
        "optimizer": {"name": "sgd", "learning_rate": lr},
        "training": {"batch_size": batch_size, "epochs": epochs, "shuffle": False},
    })


def assert_matches(report):
    failures = {c.name: c.max_abs_diff for c in report.parameters if not c.match}
    assert not failures, f"parameters differ from Keras: {failures}"
    assert report.losses.match, (report.losses.witness, report.losses.symbp)
    assert report.match


@pytest.mark.parametrize("loss", CORE_LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_with_every_loss(activation, loss):
    """The activation in the hidden layer and at the output, under each loss (float64)."""
    spec = make_spec([3, 4, 3], [activation, activation], loss, seed=len(activation))
    assert_matches(check(spec, "float64"))


DEPTH_CELLS = [
    ([2, 3], ["sigmoid"], "binary_crossentropy", 4, 3),
    ([4, 3, 3, 4], ["tanh", "tanh", "softmax"], "categorical_crossentropy", 7, 3),
    ([3, 5, 4, 4, 2], ["relu", "elu", "selu", "linear"], "mean_squared_error", 6, 4),
    ([2, 4, 4, 4, 4, 4, 3], ["gelu", "silu", "softplus", "softsign", "leaky_relu", "softmax"],
     "categorical_crossentropy", 5, 2),
    ([3, 6, 6, 6, 6, 6, 6, 6, 2], ["tanh"] * 7 + ["sigmoid"], "binary_crossentropy", 9, 4),
]


@pytest.mark.parametrize("widths,acts,loss,rows,batch_size", DEPTH_CELLS,
                         ids=lambda v: None if not isinstance(v, list) or not v or not isinstance(v[0], int) else "x".join(map(str, v)))
def test_depths_batches_and_epochs(widths, acts, loss, rows, batch_size):
    spec = make_spec(widths, acts, loss, rows=rows, batch_size=batch_size, epochs=4, seed=rows)
    assert rows % batch_size != 0  # a short last batch in every epoch
    assert_matches(check(spec, "float64"))


@pytest.mark.parametrize("loss", CORE_LOSSES)
@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "softmax", "gelu"])
def test_float32_agrees_to_1e5(activation, loss):
    spec = make_spec([3, 4, 3], ["tanh", activation], loss, seed=7)
    report = check(spec, "float32")
    assert report.tolerance == 1e-5
    assert_matches(report)


def test_seed_spec_through_the_cli(symbp_cli):
    import json
    result = symbp_cli("check", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["match"] is True and report["tolerance"] == 1e-9
    assert set(report["parameters"]) == {"W0", "b0", "W1", "b1", "W2", "b2"}
    assert all(p["match"] and p["max_abs_diff"] < 1e-12 for p in report["parameters"].values())


def test_a_mismatch_is_reported(monkeypatch):
    """The check can fail: a module that trains with the wrong learning rate does not match."""
    from symbp.witnesses.compare import check
    from symbp.witnesses.module import load_module
    from symbp.emit.codegen import module_source
    spec = make_spec([3, 4, 3], ["tanh", "softmax"], "categorical_crossentropy")
    module = load_module(module_source(spec).replace("LEARNING_RATE = 0.05", "LEARNING_RATE = 0.0500001"),
                         spec.name)
    report = check(spec, "float64", module=module)
    assert not report.match
    assert any(not c.match for c in report.parameters)


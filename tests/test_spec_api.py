"""The Python API mirrors the spec file: build in code, save, load, same network."""

import dataclasses
import pickle
import tomllib

import numpy as np
import pytest

from symbp.emit.codegen import module_source
from symbp.spec import LayerSpec, LossSpec, OptimizerSpec, Spec, TrainingSpec, dense, load_spec, network


def test_builtin_spec_round_trips_through_toml(tmp_path):
    spec = load_spec()
    path = tmp_path / "again.toml"
    spec.save(path)
    again = load_spec(path)
    assert again.to_dict() == spec.to_dict()
    assert module_source(again) == module_source(spec)


def test_network_built_in_code_equals_the_file():
    seed = load_spec()
    params = seed.initial_params()
    built = network(
        "cs4820_a7", seed.x, seed.y,
        [dense(layer.units, layer.activation, params[f"W{n}"], params[f"b{n}"])
         for n, layer in enumerate(seed.layers)],
        "categorical_crossentropy", {"name": "sgd", "learning_rate": 0.1},
        batch_size=1, epochs=1, title=seed.title)
    assert module_source(built) == module_source(seed)


def test_initializers_are_deterministic_and_written_out(tmp_path):
    spec = network("init", [[0.5, -1.0, 2.0]], [[1.0, 0.0]],
                   [dense(4, "relu"), dense(2, "softmax", kernel_initializer="he_uniform")],
                   "categorical_crossentropy", "sgd", seed=3)
    first, second = spec.initial_params(), spec.initial_params()
    for name in spec.param_names:
        np.testing.assert_array_equal(first[name], second[name])
    limit = np.sqrt(6.0 / (3 + 4))
    assert np.all(np.abs(first["W0"]) <= limit) and np.any(first["W0"] != 0)
    assert np.all(first["b0"] == 0)
    full = spec.with_initial_params()
    data = tomllib.loads(full.to_toml())
    np.testing.assert_array_equal(np.array(data["layers"][0]["weights"]), first["W0"])
    assert Spec.from_dict(data).initial_params()["W1"].tolist() == first["W1"].tolist()


# ---------------------------------------------------------------- the typed tables
def test_loss_optimizer_and_training_are_typed_with_arguments_apart_from_the_name():
    spec = network("typed", [[1.0, 2.0]], [[0.5]], [dense(1, "linear")], {"name": "huber", "delta": 0.5},
                   {"name": "adam", "learning_rate": 0.01, "amsgrad": True},
                   batch_size=1, epochs=3)
    assert isinstance(spec.loss, LossSpec) and spec.loss.name == "huber"
    assert spec.loss.arguments == {"delta": 0.5}
    assert isinstance(spec.optimizer, OptimizerSpec) and spec.optimizer.name == "adam"
    assert spec.optimizer.arguments == {"learning_rate": 0.01, "amsgrad": True}
    assert spec.training == TrainingSpec(batch_size=1, epochs=3, shuffle=False)
    assert (spec.batch_size, spec.epochs) == (1, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.loss.name = "mse"


def test_typed_tables_round_trip_the_file_format_unchanged():
    text = load_spec().to_toml()
    spec = Spec.from_dict(tomllib.loads(text))
    assert spec.to_toml() == text
    assert tomllib.loads(text)["loss"] == spec.loss.to_dict() == {"name": "categorical_crossentropy"}
    assert tomllib.loads(text)["training"] == {"batch_size": 1, "epochs": 1, "shuffle": False}
    assert Spec.from_dict(spec.to_dict()) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec   # variants' worker processes get specs pickled


def test_training_defaults_are_keras_fit_defaults_and_mappings_are_converted():
    seed = load_spec()
    data = seed.to_dict()
    del data["training"]
    assert Spec.from_dict(data).training == TrainingSpec(32, 1, False)
    by_hand = Spec(seed.name, seed.x, seed.y, seed.layers, {"name": "categorical_crossentropy"},
                   {"name": "sgd", "learning_rate": 0.1}, {"batch_size": 1})
    assert by_hand.loss == seed.loss and by_hand.optimizer == seed.optimizer
    assert by_hand.training == seed.training


def test_a_layer_keeps_its_parameters_by_keras_variable_name():
    seed = load_spec()
    layer = seed.layers[0]
    assert layer.type == "Dense" and layer.kernel == layer.weights == seed.to_dict()["layers"][0]["weights"]
    assert layer.parameter("kernel") == layer.kernel and layer.parameter("bias") == layer.bias
    assert LayerSpec(2, "tanh", kernel=[[1.0, 2.0]]).weights == [[1.0, 2.0]]
    built = network("alias", [[1.0]], [[1.0]], [dense(1, kernel=[[0.5]], bias=[0.0])], "mse", "sgd")
    assert built.layers[0].kernel == [[0.5]] and built.to_dict()["layers"][0]["weights"] == [[0.5]]
    drawn = network("drawn", [[1.0, 2.0]], [[1.0]], [dense(3), dense(1)], "mse", "sgd", seed=4)
    written = drawn.with_initial_params()
    assert [layer.kernel is not None and layer.bias is not None for layer in written.layers] == [True, True]
    params = drawn.initial_params()
    assert written.layers[1].kernel == params["W1"].tolist()


def test_network_takes_typed_loss_and_optimizer():
    spec = network("t", [[1.0]], [[1.0]], [dense(1)], LossSpec("huber", {"delta": 2.0}),
                   OptimizerSpec("sgd", {"learning_rate": 0.5}))
    assert spec.loss.arguments == {"delta": 2.0} and spec.optimizer.arguments == {"learning_rate": 0.5}

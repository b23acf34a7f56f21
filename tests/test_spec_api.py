"""The Python API mirrors the spec file: build in code, save, load, same network."""

import tomllib

import numpy as np

from symbp.emit.codegen import module_source
from symbp.spec import Spec, dense, load_spec, network


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

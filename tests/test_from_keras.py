"""Saved Keras models as input: round trip to a spec, same training as Keras, clear errors."""

import numpy as np
import pytest

from symbp.errors import UnusableInput
from symbp.io.from_keras import spec_from_keras, spec_toml_from_keras
from symbp.witnesses.keras import _keras, keras_floatx
from symbp.witnesses.module import module_train
from symbp.spec import LossSpec, load_spec

DATA_TOML = """\
[data]
x = [[0.9, -1.2, 0.7], [0.1, 0.4, -0.5], [-0.3, 0.8, 0.2]]
y = [[0, 1], [1, 0], [0, 1]]

[training]
batch_size = 2
epochs = 3
"""
KERNELS = [np.array([[0.2, -0.5, 0.3, 0.1], [0.4, 0.1, -0.2, 0.6], [-0.3, 0.2, 0.5, 0.1]]),
           np.array([[0.5, -0.3], [0.2, 0.4], [-0.6, 0.1], [0.3, 0.3]])]
BIASES = [np.array([0.1, 0.0, -0.1, 0.2]), np.array([0.0, 0.1])]


@pytest.fixture(scope="module")
def keras():
    return _keras()


def save_model(keras, path, layers, dtype="float64", compile=True, weights=True, **compile_args):
    """Save a model of ``layers()`` (called under ``dtype``: a layer keeps the floatx it was made in)."""
    with keras_floatx(dtype):
        model = keras.Sequential([keras.Input(shape=(3,)), *layers()])
        if weights:
            model.set_weights([w for pair in zip(KERNELS, BIASES) for w in pair])
        if compile:
            model.compile(**({"optimizer": keras.optimizers.SGD(learning_rate=0.1, momentum=0.5),
                              "loss": "categorical_crossentropy"} | compile_args))
        model.save(path)
    return path


def dense_pair(keras, **first):
    return lambda: [keras.layers.Dense(4, activation="tanh", **first), keras.layers.Dense(2, activation="softmax")]


@pytest.fixture(scope="module")
def saved(keras, tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras")
    (folder / "data.toml").write_text(DATA_TOML)
    return save_model(keras, folder / "net.keras", dense_pair(keras)), folder / "data.toml"


def test_round_trip_gives_the_same_training_as_keras(keras, saved):
    path, data = saved
    spec = spec_from_keras(path, data)
    assert [l.activation for l in spec.layers] == ["tanh", "softmax"]
    assert spec.loss == LossSpec("categorical_crossentropy") and spec.loss.arguments == {}
    assert spec.optimizer.arguments["learning_rate"] == 0.1 and spec.optimizer.arguments["momentum"] == 0.5
    assert spec.batch_size == 2 and spec.epochs == 3
    for n, (kernel, bias) in enumerate(zip(KERNELS, BIASES)):
        np.testing.assert_array_equal(spec.initial_params()[f"W{n}"], kernel)
        np.testing.assert_array_equal(spec.initial_params()[f"b{n}"], bias)
    with keras_floatx("float64"):
        model = keras.saving.load_model(path)
        history = model.fit(np.array(spec.x), np.array(spec.y), batch_size=2, epochs=3, shuffle=False, verbose=0)
        keras_weights = model.get_weights()
    params, losses = module_train(spec)
    for name, keras_value in zip(spec.param_names, keras_weights, strict=True):
        assert keras_value.dtype == np.float64
        assert np.max(np.abs(params[name] - keras_value)) <= 1e-9
        assert not np.allclose(params[name], spec.initial_params()[name])  # training moved it
    np.testing.assert_allclose(losses, history.history["loss"], rtol=0, atol=1e-9)


def test_spec_command_round_trips(saved, tmp_path, symbp_cli):
    path, data = saved
    out = tmp_path / "net.toml"
    result = symbp_cli("spec", "--from-keras", str(path), "--data", str(data), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert load_spec(out).to_dict() == spec_from_keras(path, data).to_dict()


def test_without_data_the_spec_has_marked_placeholder_data(saved, tmp_path):
    path, _ = saved
    text = spec_toml_from_keras(path)
    assert "placeholder" in text.splitlines()[1]
    (tmp_path / "placeholder.toml").write_text(text)
    spec = load_spec(tmp_path / "placeholder.toml")
    assert spec.x == [[0.0, 0.0, 0.0]] and spec.y == [[1.0, 0.0]]
    with pytest.raises(UnusableInput, match="--data"):
        spec_from_keras(path)


def test_npz_data(saved, tmp_path):
    path, _ = saved
    np.savez(tmp_path / "data.npz", x=np.array([[0.5, 0.5, 0.5]]), y=np.array([[1.0, 0.0]]))
    spec = spec_from_keras(path, tmp_path / "data.npz")
    assert spec.x == [[0.5, 0.5, 0.5]] and spec.batch_size == 32
    np.savez(tmp_path / "bad.npz", inputs=np.zeros((1, 3)))
    with pytest.raises(UnusableInput, match="no array named x or y"):
        spec_from_keras(path, tmp_path / "bad.npz")


def test_float32_values_read_as_written(keras, tmp_path, saved):
    path = save_model(keras, tmp_path / "f32.keras", dense_pair(keras), dtype="float32")
    assert keras.saving.load_model(path).get_weights()[0].dtype == np.float32
    spec = spec_from_keras(path, saved[1])
    assert spec.layers[0].weights == KERNELS[0].tolist()  # 0.2, not 0.20000000298023224
    assert spec.optimizer.arguments["learning_rate"] == 0.1


@pytest.mark.parametrize("case, message", [
    ("dropout", r"layer 1 \('dropout.*Dropout\): symbp represents only these layers: Dense, Conv2D"),
    ("conv", r"layer 0 \('conv1d.*Conv1D\): dilation_rate=\(2,\); symbp represents only undilated"),
    ("regularizer", r"layer 0 \('dense.*Dense\): kernel_regularizer is set"),
    ("no_bias", r"layer 0 .*use_bias=False"),
    ("activation", r"layer 0 .*activation 'hard_sigmoid'"),
    ("uncompiled", r"saved without compile\(\)"),
    ("label_smoothing", r"label_smoothing"),
    ("clipnorm", r"clipnorm=1.0"),
])
def test_what_symbp_cannot_represent_is_a_clear_error(keras, tmp_path, saved, case, message):
    path = tmp_path / f"{case}.keras"
    if case == "dropout":
        save_model(keras, path, lambda: [keras.layers.Dense(4), keras.layers.Dropout(0.5), keras.layers.Dense(2)],
                   weights=False)
    elif case == "conv":
        model = keras.Sequential([keras.Input(shape=(4, 1)), keras.layers.Conv1D(2, 2, dilation_rate=2), keras.layers.Flatten(),
                                  keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
        model.save(path)
    elif case == "regularizer":
        save_model(keras, path, dense_pair(keras, kernel_regularizer=keras.regularizers.L2(0.01)))
    elif case == "no_bias":
        save_model(keras, path, lambda: [keras.layers.Dense(4, use_bias=False), keras.layers.Dense(2)], weights=False)
    elif case == "activation":
        save_model(keras, path, lambda: [keras.layers.Dense(4, activation="hard_sigmoid"), keras.layers.Dense(2)])
    elif case == "uncompiled":
        save_model(keras, path, dense_pair(keras), compile=False)
    elif case == "label_smoothing":
        save_model(keras, path, dense_pair(keras),
                   loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    elif case == "clipnorm":
        save_model(keras, path, dense_pair(keras), optimizer=keras.optimizers.SGD(clipnorm=1.0))
    with pytest.raises(UnusableInput, match=message):
        spec_from_keras(path, saved[1])


def test_cli_errors_exit_2(saved, tmp_path, keras, symbp_cli):
    path, data = saved
    missing = symbp_cli("check", "--from-keras", str(path))
    assert missing.returncode == 2 and "--data" in missing.stderr
    both = symbp_cli("codegen", "some.toml", "--from-keras", str(path), "--data", str(data))
    assert both.returncode == 2 and "either SPEC or --from-keras" in both.stderr
    reg = save_model(keras, tmp_path / "reg.keras", dense_pair(keras, kernel_regularizer="l2"))
    result = symbp_cli("derive", "--from-keras", str(reg), "--data", str(data), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "layer 0" in result.stderr and "kernel_regularizer" in result.stderr
    assert "Traceback" not in result.stderr


def test_floatx_switch_reaches_new_layers(keras):
    """Keras caches its dtype policy: keras_floatx must set it too, or float32 runs stay float64."""
    from symbp.witnesses.keras import keras_train
    spec = load_spec()
    assert all(w.dtype == np.float64 for w in keras_train(spec, "float64")[0].values())
    assert all(w.dtype == np.float32 for w in keras_train(spec, "float32")[0].values())


def test_data_of_the_wrong_width_is_blamed_on_the_data(saved, tmp_path):
    """The model's weights are not what the user typed: a width mismatch names data.x."""
    path, _ = saved
    (tmp_path / "narrow.toml").write_text("[data]\nx = [[0.1, 0.2], [0.3, 0.4]]\ny = [[0, 1], [1, 0]]\n")
    with pytest.raises(UnusableInput, match=r"narrow.toml: data.x has 2 columns but the model takes 3 inputs") \
            as info:
        spec_from_keras(path, tmp_path / "narrow.toml")
    assert "layers[0]" not in str(info.value)


# ---------------------------------------------------------------- convolutional models (issue 13)
CNN_MODELS = {
    "conv2d-max-conv2d-avg-same": ((6, 6, 2), lambda keras: [
        keras.layers.Conv2D(3, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(2, (2, 1), strides=(1, 2), activation="tanh"),
        keras.layers.AveragePooling2D(2, strides=1, padding="same"), keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax")]),
    "conv1d-global-max": ((7, 2), lambda keras: [
        keras.layers.Conv1D(3, 3, strides=2, padding="same", activation="elu"), keras.layers.GlobalMaxPooling1D(),
        keras.layers.Dense(3, activation="softmax")]),
    "conv2d-global-avg": ((5, 5, 1), lambda keras: [
        keras.layers.Conv2D(2, 2, activation="sigmoid"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax")]),
    "conv1d-avg-max-flatten": ((8, 3), lambda keras: [
        keras.layers.Conv1D(2, 2, activation="linear"), keras.layers.AveragePooling1D(2, strides=1),
        keras.layers.MaxPooling1D(3, strides=2, padding="same"), keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax")]),
}


@pytest.mark.parametrize("name", list(CNN_MODELS))
def test_cnn_models_round_trip(keras, tmp_path, name, symbp_cli):
    """Build with Keras, save, read back: the spec's module predicts as the model does, and
    `symbp check` (Keras's model.fit against the module) passes on the spec file."""
    shape, layers = CNN_MODELS[name]
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, *shape)), np.eye(3)[rng.integers(0, 3, 5)]
    with keras_floatx("float64"):
        model = keras.Sequential([keras.Input(shape=shape), *layers(keras)])
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
        model.save(tmp_path / "cnn.keras")
        predicted = model.predict(x, verbose=0)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    spec = spec_from_keras(tmp_path / "cnn.keras", tmp_path / "data.npz")
    assert [layer.type for layer in spec.layers] == [type(layer).__name__ for layer in model.layers]
    for layer, keras_layer in zip(spec.layers, model.layers):
        for kind, value in zip(("kernel", "bias"), keras_layer.get_weights()):
            np.testing.assert_array_equal(np.array(layer.parameter(kind)), value)  # Keras's layout, as saved
    from symbp.witnesses.module import spec_module
    got = spec_module(spec).forward(spec.initial_params(), np.array(spec.x))[-1]
    assert np.max(np.abs(got - predicted)) <= 1e-9 * max(1.0, np.max(np.abs(predicted)))
    out = tmp_path / "cnn.toml"
    made = symbp_cli("spec", "--from-keras", str(tmp_path / "cnn.keras"), "--data", str(tmp_path / "data.npz"),
                     "-o", str(out))
    assert made.returncode == 0, made.stderr
    assert load_spec(out).to_dict() == spec.to_dict()
    checked = symbp_cli("check", str(out), "--json")
    assert checked.returncode == 0, checked.stderr


def test_cnn_placeholder_data_and_image_data_checks(keras, tmp_path):
    shape, layers = CNN_MODELS["conv2d-global-avg"]
    with keras_floatx("float64"):
        model = keras.Sequential([keras.Input(shape=shape), *layers(keras)])
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        model.save(tmp_path / "cnn.keras")
    (tmp_path / "placeholder.toml").write_text(spec_toml_from_keras(tmp_path / "cnn.keras"))
    assert np.shape(load_spec(tmp_path / "placeholder.toml").x) == (1, *shape)
    np.savez(tmp_path / "wrong.npz", x=np.zeros((2, 4, 5, 1)), y=np.eye(3)[:2])
    with pytest.raises(UnusableInput, match=r"wrong.npz: data.x: each sample has shape \(4, 5, 1\) but the "
                                            r"model takes inputs of shape \(5, 5, 1\)"):
        spec_from_keras(tmp_path / "cnn.keras", tmp_path / "wrong.npz")
    np.savez(tmp_path / "five.npz", x=np.zeros((2, 1, 5, 5, 1)), y=np.eye(3)[:2])
    with pytest.raises(UnusableInput, match=r"array x has shape \(2, 1, 5, 5, 1\)"):
        spec_from_keras(tmp_path / "cnn.keras", tmp_path / "five.npz")


@pytest.mark.parametrize("layer, message", [
    (lambda k: k.layers.Conv2D(2, 2, groups=1, data_format="channels_first"), r"data_format='channels_first'"),
    (lambda k: k.layers.Conv2D(2, 2, use_bias=False), r"use_bias=False"),
    (lambda k: k.layers.Conv2D(2, 2, kernel_regularizer="l2"), r"kernel_regularizer is set"),
])
def test_cnn_settings_symbp_cannot_represent_are_named(keras, tmp_path, layer, message):
    model = keras.Sequential([keras.Input(shape=(4, 4, 2)), layer(keras), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "bad.keras")
    np.savez(tmp_path / "data.npz", x=np.zeros((1, 4, 4, 2)), y=np.zeros((1, 2)))
    with pytest.raises(UnusableInput, match=r"layer 0 \('conv2d.*Conv2D\): " + message):
        spec_from_keras(tmp_path / "bad.keras", tmp_path / "data.npz")

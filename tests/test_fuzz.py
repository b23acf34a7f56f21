"""Property-based fuzzing of the spec: random valid specs generate, import, train and agree with
central differences; random corruptions of them get a SpecError (CLI: exit 2 and a message),
never a traceback.

CI runs a bounded number of examples (deterministic). A long campaign draws fresh examples:

    SYMBP_FUZZ_EXAMPLES=3000 python -m pytest -q tests/test_fuzz.py -k corrupt --hypothesis-show-statistics
    SYMBP_FUZZ_EXAMPLES=1000 python -m pytest -q tests/test_fuzz.py -k valid --hypothesis-show-statistics

(docs/fuzzing.md records the last one).
"""

from __future__ import annotations

import copy
import math
import os
import warnings

import numpy as np
import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from symbp.cli import main
from symbp.emit.codegen import module_source
from symbp.witnesses.module import load_module
from symbp.rules import activations, optimizers
from symbp.spec import DATA_KEYS, LAYER_KEYS, TOP_KEYS, TRAINING_KEYS, Spec, SpecError

CAMPAIGN = os.environ.get("SYMBP_FUZZ_EXAMPLES")


def fuzz_settings(ci_examples: int):
    """CI: a fixed, deterministic set of examples; a campaign: SYMBP_FUZZ_EXAMPLES fresh ones."""
    return settings(max_examples=int(CAMPAIGN) if CAMPAIGN else ci_examples, deadline=None,
                    derandomize=not CAMPAIGN, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------- valid specs
#: activations whose derivative jumps at z = 0 (finite differences straddling 0 disagree)
KINKED = {"relu", "leaky_relu", "selu", "elu"}

#: loss -> (output activations it is fuzzed with, labels for one row of k outputs)
def _one_hot(draw, k):
    row = [0.0] * k
    row[draw(st.integers(0, k - 1))] = 1.0
    return row


def _distribution(draw, k):
    weights = [draw(st.floats(0.05, 1.0)) for _ in range(k)]
    return [w / sum(weights) for w in weights]


def _reals(draw, k):
    return [draw(st.floats(-2, 2)) for _ in range(k)]


LOSSES = {
    "mean_squared_error": (sorted(activations), _reals),
    "mean_absolute_error": (sorted(activations), _reals),
    "huber": (sorted(activations), _reals),
    "categorical_crossentropy": (["softmax", "sigmoid", "softplus"],
                                 lambda draw, k: draw(st.sampled_from([_one_hot, _distribution]))(draw, k)),
    "sparse_categorical_crossentropy": (["softmax", "sigmoid", "softplus"],   # one class index per row
                                        lambda draw, k: [float(draw(st.integers(0, k - 1)))]),
    "binary_crossentropy": (["sigmoid", "softmax"], lambda draw, k: [draw(st.floats(0, 1)) for _ in range(k)]),
}
#: losses whose gradient jumps where an output equals its label (finite differences straddling it disagree)
KINKED_LOSSES = {"mean_absolute_error"}

#: values drawn for each optimizer argument (Keras's names); booleans are drawn as booleans
OPTIMIZER_VALUES = {
    "learning_rate": [0.001, 0.01, 0.1, 0.5], "momentum": [0.0, 0.5, 0.9], "weight_decay": [0.004, 0.01, 0.1],
    "beta_1": [0.5, 0.8, 0.9], "beta_2": [0.9, 0.99, 0.999], "epsilon": [1e-7, 1e-4, 0.1],
    "rho": [0.5, 0.9, 0.95], "initial_accumulator_value": [0.0, 0.1, 1.0],
}


@st.composite
def optimizer_settings(draw) -> dict:
    """A registered optimizer with a random subset of its Keras arguments set."""
    name = draw(st.sampled_from(sorted(optimizers)))
    settings = {"name": name, "learning_rate": draw(st.sampled_from(OPTIMIZER_VALUES["learning_rate"]))}
    for key, default in sorted(optimizers[name].defaults.items()):
        if key == "learning_rate" or not draw(st.booleans()):
            continue
        settings[key] = draw(st.booleans()) if isinstance(default, bool) \
            else draw(st.sampled_from(OPTIMIZER_VALUES[key]))
    return settings

small = st.floats(-1.5, 1.5, allow_nan=False).map(lambda v: round(v, 3))


@st.composite
def valid_specs(draw) -> dict:
    features = draw(st.integers(1, 4))
    samples = draw(st.integers(1, 4))
    depth = draw(st.integers(1, 3))
    loss_name = draw(st.sampled_from(sorted(LOSSES)))
    outputs, labels = LOSSES[loss_name]
    loss = {"name": loss_name}
    if loss_name == "huber" and draw(st.booleans()):
        loss["delta"] = draw(st.sampled_from([0.1, 0.5, 1.5]))
    widths = [features] + [draw(st.integers(1, 4)) for _ in range(depth)]
    layers = []
    for n in range(depth):
        choices = outputs if n == depth - 1 else sorted(activations)
        layer = {"units": widths[n + 1], "activation": draw(st.sampled_from(choices))}
        if draw(st.booleans()):
            layer["weights"] = [[draw(small) for _ in range(widths[n + 1])] for _ in range(widths[n])]
            layer["bias"] = [draw(small) for _ in range(widths[n + 1])]
        else:
            layer["kernel_initializer"] = draw(st.sampled_from(["glorot_uniform", "he_normal", "lecun_uniform"]))
        layers.append(layer)
    return {
        "name": "net_" + draw(st.from_regex(r"[a-z0-9_]{0,10}", fullmatch=True)),
        "title": draw(st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF,
                                            exclude_categories=("Cc", "Cf", "Zs")) | st.just(" "),
                              max_size=30).filter(str.isprintable)),
        "seed": draw(st.integers(0, 1000)),
        "data": {"x": [[draw(st.floats(-2, 2)) for _ in range(features)] for _ in range(samples)],
                 "y": [labels(draw, widths[-1]) for _ in range(samples)]},
        "layers": layers,
        "loss": loss,
        "optimizer": draw(optimizer_settings()),
        "training": {"batch_size": draw(st.integers(1, samples + 1)), "epochs": draw(st.integers(1, 2))},
    }


def central_differences(loss, params, x, y, h=1e-6):
    """dL/dp for every entry p of every parameter: (L(p + s) - L(p - s)) / 2s, s = h max(1, |p|)."""
    grads = {}
    for name, value in params.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            step = h * max(1.0, abs(value[index]))
            shifted = []
            for sign in (1, -1):
                moved = value.copy()
                moved[index] += sign * step
                shifted.append(loss({**params, name: moved}, x, y))
            grad[index] = (shifted[0] - shifted[1]) / (2 * step)
        grads[name] = grad
    return grads


@fuzz_settings(80)
@given(valid_specs())
def test_valid_specs_generate_import_and_match_finite_differences(data):
    spec = Spec.from_dict(data, "fuzz.toml")
    event(f"loss {spec.loss.name}, output {spec.layers[-1].activation}")
    event(f"{len(spec.layers)} layer(s)")
    event(f"optimizer {spec.optimizer.name}")
    source = module_source(spec)
    compile(source, "fuzz", "exec")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from the generated code
        module = load_module(source, spec.name)
        params, x, y = module.initial_params(), module.X, module.Y
        if KINKED & {layer.activation for layer in spec.layers}:
            z_rows = module._forward(params, x)[0]
            assume(min(float(np.min(np.abs(z))) for z in z_rows) > 1e-3)
        if spec.loss.name in KINKED_LOSSES:
            assume(float(np.min(np.abs(module.forward(params, x)[-1] - y))) > 1e-3)
        loss = module.loss(params, x, y)
        grads = module.gradients(params, x, y)
        numeric = central_differences(module.loss, params, x, y)
        new_params, _ = module.step(params, x, y)
        trained, epoch_losses = module.train()
    assert math.isfinite(loss)
    optimizer, lr = spec.optimizer.name, spec.optimizer.arguments["learning_rate"]
    decay = {**optimizers[optimizer].defaults, **spec.optimizer.arguments}["weight_decay"] or 0.0
    for name in spec.param_names:
        assert grads[name].shape == params[name].shape
        np.testing.assert_allclose(grads[name], numeric[name], rtol=1e-5, atol=1e-7 * max(1.0, abs(loss)),
                                   err_msg=f"{name} of {data}")
        assert np.all(np.isfinite(new_params[name])) and np.all(np.isfinite(trained[name]))
        if optimizer == "sgd" and not spec.optimizer.arguments.get("momentum") and not decay:
            np.testing.assert_allclose(new_params[name], params[name] - module.LEARNING_RATE * grads[name],
                                       rtol=0, atol=1e-15)
        if optimizer in ("adam", "adamw", "adamax"):   # Keras's first step moves an entry by at most lr
            decayed = params[name] - params[name] * float(np.float32(decay)) * lr
            assert np.all(np.abs(new_params[name] - decayed) <= lr * (1 + 1e-6) + 1e-12), (name, data)
    assert len(epoch_losses) == spec.epochs and all(map(math.isfinite, epoch_losses))


# ---------------------------------------------------------------- corruptions
NOT_A_NUMBER = [float("nan"), float("inf"), float("-inf"), "1.0", True, [1.0], {"v": 1.0}, 10 ** 400]
BAD_VALUES = {
    "name": ["", "1abc", "my-net", "x y", "class", "os", "a" * 65, 3, ["n"], "x;import os", "__init__"],
    "title": ["a\nb", "\x00", "\x1b[2J", "x" * 201, 3, ["t"], "line\u2028sep"],
    "seed": [-1, 1.5, "0", True, float("nan"), 2 ** 40, [0]],
    "units": [0, -1, 2.5, "3", True, [2], 10 ** 9, float("inf")],
    "activation": ["", "tanhh", "Relu!", 3, ["relu"], "x" * 100, "soft max"],
    "initializer": ["glorot", "", 1, ["zeros"], "he_normall"],
    "loss": ["", "msee", "cross_entropy", 1, ["mse"]],
    "optimizer": ["", "sgdd", "adamz", 1, ["sgd"]],
    "learning_rate": [0, -0.1, float("nan"), float("inf"), "0.1", True, [0.1], 10 ** 400],
    "momentum": [-0.1, 1.5, "0.9", float("nan"), True],
    "nesterov": [1, "yes", 0.0, [True]],
    "batch_size": [0, -1, 1.5, "1", True, float("inf")],
    "epochs": [0, -3, 2.5, "1", False, 10 ** 7],
    "shuffle": [True, 1, "false"],
    "table": [1, "x", [1, 2], True, 2.5],
    "matrix": [[], "x", 1, [[]], [1.0, 2.0], [["a"]], [[float("nan")]], {"a": 1}],
}


VALID_KEYS = TOP_KEYS | LAYER_KEYS | TRAINING_KEYS | DATA_KEYS | {
    key for name in optimizers for key in optimizers[name].defaults} | {"name"}


def _typo(draw, key: str) -> str:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return key + draw(st.sampled_from("xs_e"))
    if kind == 1:
        return key[:-1] if len(key) > 1 else key + key
    if kind == 2:
        return key.upper() if key.upper() != key else key + "X"
    return key.replace("_", "") + "_" if "_" in key else "_" + key


def _rename(table: dict, old: str, new: str) -> None:
    table[new] = table.pop(old)


@st.composite
def corruptions(draw, data: dict, widths: list[int]):
    """One corruption that makes the spec invalid (a description of it, for messages).

    ``widths`` are the valid spec's [inputs, units...]: shapes are built from them, never from
    values an earlier corruption may have made huge.
    """
    layer_index = draw(st.integers(0, len(data["layers"]) - 1))
    layer = data["layers"][layer_index]
    inputs, units = widths[layer_index], widths[layer_index + 1]
    choice = draw(st.integers(0, 18))
    if choice == 0:  # a required key removed
        where = draw(st.sampled_from(["name", "data", "layers", "loss", "optimizer", "x", "y", "units",
                                      "loss.name", "optimizer.name"]))
        if where in ("x", "y"):
            del data["data"][where]
        elif where == "units":
            del layer["units"]
        elif where.endswith(".name"):
            del data[where.split(".")[0]]["name"]
        else:
            del data[where]
        return f"removed {where}"
    if choice == 1:  # a key misspelt
        table = draw(st.sampled_from(["top", "layer", "training", "optimizer", "data"]))
        table = {"top": data, "layer": layer, "training": data["training"], "optimizer": data["optimizer"],
                 "data": data["data"]}[table]
        key = draw(st.sampled_from(sorted(table)))
        new = _typo(draw, key)
        if new in table or new in VALID_KEYS:  # a second typo could undo the first
            new += "_typo"
        _rename(table, key, new)
        return f"renamed {key} to {new}"
    if choice == 2:
        data["name"] = draw(st.sampled_from(BAD_VALUES["name"]))
        return "bad name"
    if choice == 3:
        data["title"] = draw(st.sampled_from(BAD_VALUES["title"]))
        return "bad title"
    if choice == 4:
        data["seed"] = draw(st.sampled_from(BAD_VALUES["seed"]))
        return "bad seed"
    if choice == 5:
        layer["units"] = draw(st.sampled_from(BAD_VALUES["units"]))
        return "bad units"
    if choice == 6:
        layer["activation"] = draw(st.sampled_from(BAD_VALUES["activation"]))
        return "bad activation"
    if choice == 7:
        key = draw(st.sampled_from(["kernel_initializer", "bias_initializer"]))
        layer.pop("weights", None), layer.pop("bias", None)
        layer[key] = draw(st.sampled_from(BAD_VALUES["initializer"]))
        return "bad initializer"
    if choice == 8:
        data["loss"]["name"] = draw(st.sampled_from(BAD_VALUES["loss"]))
        return "bad loss"
    if choice == 9:
        key = draw(st.sampled_from(["name", "learning_rate", "momentum", "nesterov"]))
        data["optimizer"] = {"name": "sgd", "learning_rate": 0.1}
        data["optimizer"][key] = draw(st.sampled_from(BAD_VALUES["optimizer" if key == "name" else key]))
        return f"bad optimizer.{key}"
    if choice == 10:
        key = draw(st.sampled_from(["batch_size", "epochs", "shuffle"]))
        data["training"][key] = draw(st.sampled_from(BAD_VALUES[key]))
        return f"bad training.{key}"
    if choice == 11:
        key = draw(st.sampled_from(["data", "loss", "optimizer", "training"]))
        data[key] = draw(st.sampled_from(BAD_VALUES["table"]))
        return f"{key} not a table"
    if choice == 12:
        data["data"][draw(st.sampled_from(["x", "y"]))] = draw(st.sampled_from(BAD_VALUES["matrix"]))
        return "bad matrix"
    if choice == 13:  # one entry of x, y, a kernel or a bias not a finite number
        target = draw(st.sampled_from(["x", "y", "weights", "bias"]))
        value = draw(st.sampled_from(NOT_A_NUMBER))
        if target in ("x", "y"):
            rows = data["data"][target]
            rows[draw(st.integers(0, len(rows) - 1))][draw(st.integers(0, len(rows[0]) - 1))] = value
        else:
            if target == "weights":
                layer["weights"] = [[0.5] * units for _ in range(inputs)]
                layer["weights"][draw(st.integers(0, inputs - 1))][draw(st.integers(0, units - 1))] = value
            else:
                layer["bias"] = [0.0] * units
                layer["bias"][draw(st.integers(0, units - 1))] = value
        return f"non-number in {target}"
    if choice == 14:  # shapes that do not chain
        kind = draw(st.sampled_from(["kernel rows", "kernel columns", "bias", "ragged", "samples", "labels"]))
        if kind == "kernel rows":
            rows = inputs + draw(st.sampled_from([-1, 1]))
            layer["weights"] = [[0.1] * units for _ in range(rows if rows > 0 else inputs + 1)]
        elif kind == "kernel columns":
            layer["weights"] = [[0.1] * (units + 1) for _ in range(inputs)]
        elif kind == "bias":
            layer["bias"] = [0.0] * (units + 1)
        elif kind == "ragged":
            data["data"]["x"].append(data["data"]["x"][0] + [1.0])
            data["data"]["y"].append(data["data"]["y"][0])
        elif kind == "samples":
            data["data"]["y"].append(data["data"]["y"][0])
        else:
            data["data"]["y"] = [row + [0.0] for row in data["data"]["y"]]
        return f"shape: {kind}"
    if choice == 15:
        data["layers"] = draw(st.sampled_from([[], [1], ["relu"], [[]]]))
        return "bad layers"
    if choice == 16:  # labels the loss cannot take
        if data["loss"]["name"] in ("mean_squared_error", "mean_absolute_error", "huber"):
            data["loss"] = {"name": "binary_crossentropy"}   # takes no reals outside [0, 1]
        if data["loss"]["name"] == "binary_crossentropy":
            data["data"]["y"][0][0] = draw(st.sampled_from([-0.5, 1.5, 2.0]))
        elif data["loss"]["name"] == "sparse_categorical_crossentropy":
            data["data"]["y"][0] = [draw(st.sampled_from([-1.0, 0.5, float(widths[-1])]))]
        else:
            data["data"]["y"][0] = [2 * v for v in data["data"]["y"][0]]
        return "labels the loss cannot take"
    if choice == 17:  # a number past its range, past float32, or too large for integer arithmetic
        case = draw(st.sampled_from(sorted(EXTREME_NUMBERS)))
        EXTREME_NUMBERS[case][1](data)
        return f"extreme number: {case}"
    data[_typo(draw, draw(st.sampled_from(["name", "layers", "loss", "title", "epochs", "weights"])))
         + "_unknown"] = draw(st.sampled_from([1, "x", [1], {"a": 1}]))
    return "unknown top-level key"


@st.composite
def corrupted_specs(draw):
    data = copy.deepcopy(draw(valid_specs()))
    data["name"] = "fuzzed"
    widths = [len(data["data"]["x"][0])] + [layer["units"] for layer in data["layers"]]
    what = [draw(corruptions(data, widths))]  # the first always applies: the spec is still well-formed
    for _ in range(draw(st.integers(0, 2))):
        try:
            what.append(draw(corruptions(data, widths)))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            pass  # an earlier corruption removed what this one would change
    return data, what


def assert_reported(data, what) -> SpecError:
    try:
        Spec.from_dict(data, "fuzz.toml")
    except SpecError as err:
        assert err.problems, what
        text = str(err)
        assert text.startswith("fuzz.toml: ") and "Traceback" not in text
        assert all(p.message and "\n" not in str(p) for p in err.problems), text
        return err
    raise AssertionError(f"accepted a corrupted spec ({what}): {data!r}")


@fuzz_settings(60)
@given(corrupted_specs())
def test_corrupted_specs_are_reported_never_raised(case):
    data, what = case
    for kind in what:
        event(kind.split(" to ")[0] if kind.startswith("renamed") else kind)
    assert_reported(data, what)


@fuzz_settings(25)
@given(corrupted_specs())
def test_corrupted_spec_files_exit_2_with_a_message(tmp_path_factory, case):
    data, what = case
    folder = tmp_path_factory.mktemp("corrupt")
    path = folder / "spec.toml"
    try:
        path.write_text(tomli_w.dumps(data), encoding="utf-8")
    except (TypeError, ValueError):
        assume(False)  # not expressible in TOML (e.g. a non-table at the top)
    result = CliRunner().invoke(main, ["codegen", str(path), "-o", str(folder / "out")])
    assert result.exit_code == 2, (what, result.output, result.exception)
    assert str(path) in result.output and "Traceback" not in result.output, result.output
    assert not (folder / "out").exists()


HOSTILE_CHARACTERS = list("[]{}=\"',.#\\\n \t") + ["\x00", "\x7f", "é", "\u2028", "'''", '"""', "1e999", "nan"]


@fuzz_settings(40)
@given(valid_specs(), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(HOSTILE_CHARACTERS), st.booleans()),
                               min_size=1, max_size=4))
def test_mangled_spec_text_is_either_valid_or_exit_2(tmp_path_factory, data, edits):
    data["name"] = "mangled"
    text = tomli_w.dumps(data)
    for where, fragment, insert in edits:
        at = int(where * len(text))
        text = text[:at] + fragment + text[at + (0 if insert else 1):]
    folder = tmp_path_factory.mktemp("mangled")
    path = folder / "spec.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    result = CliRunner().invoke(main, ["codegen", str(path), "-o", str(folder / "out")])
    event(f"exit status {result.exit_code}")
    assert result.exit_code in (0, 2), (text, result.output, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert str(path) in result.output and not (folder / "out").exists()
    else:
        (written,) = (folder / "out").glob("*.py")  # the edit may have changed the name
        load_module(written.read_text(encoding="utf-8"), written.stem)


@pytest.mark.parametrize("seed", range(3))
def test_real_processes_on_corrupted_files(tmp_path, symbp_cli, seed):
    """A few corruptions through a real ``python -m symbp``: exit 2, no traceback on stderr."""
    data, what = _fixed_corruption(seed)
    path = tmp_path / "spec.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    result = symbp_cli("codegen", str(path), "-o", str(tmp_path / "out"))
    assert result.returncode == 2, (what, result.stderr)
    assert "Traceback" not in result.stderr and str(path) in result.stderr
    assert not (tmp_path / "out").exists()


def _fixed_corruption(seed: int):
    """A deterministic corrupted spec (hypothesis's example() is not for tests)."""
    data = {"name": "fixed", "data": {"x": [[1.0, 2.0]], "y": [[1.0]]},
            "layers": [{"units": 2, "activation": "relu"}, {"units": 1}],
            "loss": {"name": "mse"}, "optimizer": {"name": "sgd", "learning_rate": 0.1}}
    if seed == 0:
        data["layers"][1]["units"] = "one"
        data["optimizer"]["learning_rate"] = float("nan")
    elif seed == 1:
        data["layerz"] = data.pop("layers")
    else:
        data["data"]["x"] = [[1.0, 2.0], [3.0]]
        data["loss"]["name"] = "cross"
    return data, f"fixed corruption {seed}"


# ---------------------------------------------------------------- numbers past what Keras or a module holds
BASE_SPEC = {"name": "extreme", "data": {"x": [[0.5, -0.2]], "y": [[1.0]]},
             "layers": [{"units": 1, "activation": "linear", "weights": [[0.3], [0.1]], "bias": [0.0]}],
             "loss": {"name": "mse"}, "optimizer": {"name": "adam", "learning_rate": 0.01},
             "training": {"batch_size": 1, "epochs": 1}}

#: (where the message points, the change) for each number the 2026 fuzz campaign saw end in exit 3
EXTREME_NUMBERS = {
    "batch_size 10^21": ("training.batch_size", lambda d: d.setdefault("training", {}).update(batch_size=10 ** 21)),
    "batch_size 2^63": ("training.batch_size", lambda d: d.setdefault("training", {}).update(batch_size=2 ** 63)),
    "range +-1e308": ("variants.range", lambda d: d.update(variants={"range": [-1e308, 1e308]})),
    "range to 10^400": ("variants.range", lambda d: d.update(variants={"range": [0, 10 ** 400]})),
    "step 5e-324": ("variants.range", lambda d: d.update(variants={"step": 5e-324})),
    "per-item step 5e-324": ("variants.x.range", lambda d: d.update(variants={"x": {"step": 5e-324}})),
    "beta_1 past float32": ("optimizer.beta_1", lambda d: d.update(optimizer={"name": "adam", "beta_1": 3.5e38})),
    "adamw weight_decay past float32": ("optimizer.weight_decay",
                                        lambda d: d.update(optimizer={"name": "adamw", "weight_decay": 1e39})),
    "huber delta 1e300": ("loss.delta", lambda d: d.update(loss={"name": "huber", "delta": 1e300})),
    "beta_2 = 1025": ("optimizer.beta_2", lambda d: d.update(optimizer={"name": "adam", "beta_2": 1025.0})),
    "beta_1 = 1": ("optimizer.beta_1", lambda d: d.update(optimizer={"name": "nadam", "beta_1": 1.0})),
    "beta_2 1 in float32": ("optimizer.beta_2", lambda d: d.update(optimizer={"name": "adam", "beta_2": 0.9999999999})),
    "learning rate 0 in float32": ("optimizer.learning_rate",
                                   lambda d: d.update(optimizer={"name": "sgd", "learning_rate": 1e-50})),
    "rho = 2": ("optimizer.rho", lambda d: d.update(optimizer={"name": "rmsprop", "rho": 2.0})),
}


@pytest.mark.parametrize("case", sorted(EXTREME_NUMBERS))
def test_numbers_past_what_keras_or_a_module_holds_exit_2(tmp_path, case):
    """Each is the spec's fault: exit 2 naming the place, nothing written (they exited 3, or
    wrote a module with a bare inf, before the ranges of symbp.rules.ranges)."""
    where, change = EXTREME_NUMBERS[case]
    data = copy.deepcopy(BASE_SPEC)
    change(data)
    path = tmp_path / "spec.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    result = CliRunner().invoke(main, ["codegen", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, (case, result.output, result.exception)
    assert f"{where}:" in result.output and "internal error" not in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_an_integer_too_long_to_read_exits_2(tmp_path):
    """A 5,000-digit integer: Python refuses to convert it (ValueError, was exit 3)."""
    path = tmp_path / "spec.toml"
    path.write_text(tomli_w.dumps(BASE_SPEC) + "\n[variants]\nstep = " + "9" * 5000 + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["codegen", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "too long" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_an_npz_whose_header_claims_a_huge_array_is_unusable_input(tmp_path):
    """MemoryError while reading it is the file's fault (UnusableInput: exit 2), not symbp's."""
    from symbp.errors import UnusableInput
    from symbp.io.from_keras import load_data
    import zipfile
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d,), }" % 2 ** 45
    header = header + " " * (63 - (len(header) + 10) % 64) + "\n"
    member = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1")
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", member)
        archive.writestr("y.npy", member)
    with pytest.raises(UnusableInput, match="huge.npz"):
        load_data(path)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_no_printer_writes_a_bare_inf_or_nan(value):
    """Every number printed as code goes through float_literal (or the array literal)."""
    import sympy as sp
    from symbp.emit.codegen import EquationPrinter, array_literal
    from symbp.emit.printers import ArrayPrinter, NonFiniteLiteral, float_literal
    with pytest.raises(NonFiniteLiteral):
        float_literal(value)
    with pytest.raises(NonFiniteLiteral):
        array_literal(np.array([[1.0, value]]))
    for printer in (ArrayPrinter(), EquationPrinter()):
        with pytest.raises(NonFiniteLiteral):
            printer.doprint(sp.Symbol("w") * sp.Float(value))

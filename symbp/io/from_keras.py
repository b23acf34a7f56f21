"""A saved Keras model as a spec: a Sequential model of the registered layers (Dense, Conv1D/Conv2D,
max/average pooling, global pooling, Flatten), its weights, loss and optimizer.

``spec_from_keras(path, data)`` reads ``model.keras`` (``keras.saving.load_model``) and the
training data (a Keras model holds none): a TOML file with the spec's own ``[data]`` table (and
optionally ``[training]``), or a ``.npz`` file with arrays ``x`` and ``y``. What a spec cannot
represent (another layer type, a regulariser, a constraint, no bias, a dilated or grouped
convolution, channels_first, a loss option, gradient clipping, a learning-rate schedule) is an
:class:`UnusableInput` naming the layer or setting. A convolution or pooling layer becomes a
[[layers]] table with its Keras class name as ``type``, its arguments by Keras's names (filters,
kernel_size, strides, padding, pool_size, activation) and its kernel and bias in Keras's layout.

A float32 model's values are read as the shortest decimal that rounds to the same float32
(0.1, not 0.10000000149011612), which is what its author typed. The optimizer's state (slots,
step count) is not read: the spec trains afresh, as a new ``model.fit`` would.
"""

from __future__ import annotations

import io
import json
import keyword
import re
import tomllib
import warnings
import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import UnusableInput
from .files import not_a_regular_file
from ..rules import activations, losses, optimizers
from ..rules.layers import DENSE, LINEAR, layers as layer_rules
from ..spec import LIMITS, MAX_SPEC_BYTES, Spec
from ..wording import article, plural

#: settings of any Keras optimizer that symbp leaves out only at their "off" value
_OPTIMIZER_OFF = {"clipnorm": None, "clipvalue": None, "global_clipnorm": None, "use_ema": False,
                  "loss_scale_factor": None, "gradient_accumulation_steps": None}
_OPTIMIZER_IGNORED = {"name", "ema_momentum", "ema_overwrite_frequency"}
_DENSE_OFF = ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
              "kernel_constraint", "bias_constraint", "lora_rank", "quantization_config")
#: settings of a convolution or pooling layer that symbp represents at this value only (None: Keras's default)
_WINDOW_OFF = {"data_format": "channels_last", "groups": 1, "keepdims": False}


def _keras():
    from ..witnesses.keras import _keras as import_keras
    return import_keras()


#: the largest config.json / metadata.json a model within the spec's limits needs (32 Dense
#: layers take ~100 KB)
MAX_CONFIG_BYTES = 4 * 2**20
#: the largest weights file: every parameter the limits allow in float64, with up to three
#: optimizer slots each, plus room for HDF5's own structure
MAX_WEIGHTS_BYTES = 4 * 8 * LIMITS["parameters"] + 16 * 2**20
#: a dimension any array of a spec may have: samples, features, units
_MAX_DIMENSION = max(LIMITS["samples"], LIMITS["features"], LIMITS["units"])


def _zip_members(path: Path, what: str) -> zipfile.ZipFile:
    """``path`` opened as a zip file (a .keras or .npz file is one), or an UnusableInput."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise UnusableInput(f"{path}: not a {what} (not a zip archive: {err})") from None


def _check_keras_members(archive: zipfile.ZipFile, source: str) -> None:
    """Each member's uncompressed size (as the zip declares it) before anything is inflated."""
    for member in archive.infolist():
        limit = MAX_WEIGHTS_BYTES if member.filename.endswith(".h5") else MAX_CONFIG_BYTES
        if member.file_size > limit:
            raise UnusableInput(f"{source}: {member.filename} is {member.file_size:,} bytes uncompressed; "
                                f"a model within symbp's limits needs at most {limit:,}")


def _declared_sizes(node: Any, found: dict) -> None:
    """Collect from a Keras config every declared ``units`` and every dimension of a shape."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("units", "filters") and isinstance(value, int):
                found["units"].append(value)
            elif key in ("batch_shape", "input_shape", "batch_input_shape", "shape") \
                    and isinstance(value, list):
                found["dimensions"] += [v for v in value if isinstance(v, int)]
            else:
                _declared_sizes(value, found)
    elif isinstance(node, list):
        for value in node:
            _declared_sizes(value, found)


def _check_declared_shapes(config: Any, source: str) -> None:
    """The config's layer sizes against the limits, before Keras builds (allocates) any layer."""
    found = {"units": [], "dimensions": []}
    _declared_sizes(config, found)
    if len(found["units"]) > LIMITS["layers"]:
        raise UnusableInput(f"{source}: declares {len(found['units'])} layers with units or filters; symbp allows at most "
                            f"{LIMITS['layers']}")
    for kind, values, limit in (("units", found["units"], LIMITS["units"]),
                                ("an input dimension", found["dimensions"], _MAX_DIMENSION)):
        too_large = [v for v in values if v > limit]
        if too_large:
            raise UnusableInput(f"{source}: declares {kind} of {max(too_large):,}; symbp allows at most "
                                f"{limit:,}")


def _check_weight_shapes(archive: zipfile.ZipFile, source: str) -> None:
    """Every array the weights file declares (HDF5 metadata only), before any is read."""
    import h5py
    names = [name for name in archive.namelist() if name.endswith(".h5")]
    def check(array_name, item):
        if isinstance(item, h5py.Dataset) and item.size * item.dtype.itemsize > MAX_WEIGHTS_BYTES:
            raise UnusableInput(f"{source}: {name} declares {array_name} of shape {item.shape}; "
                                f"larger than any model within symbp's limits")
    for name in names:
        with archive.open(name) as member:
            try:
                weights = h5py.File(io.BytesIO(member.read()), "r")
            except OSError as err:
                raise UnusableInput(f"{source}: {name} is not a readable HDF5 weights file ({err})") from None
            with weights:
                weights.visititems(check)


def check_model_file(path: Path) -> None:
    """A .keras file's declared sizes within the limits, checked before Keras loads it: the zip's
    member sizes, config.json's layer sizes, the weights file's array shapes."""
    source = str(path)
    with _zip_members(path, "Keras model file (.keras)") as archive:
        _check_keras_members(archive, source)
        try:
            config = json.loads(archive.read("config.json"))
        except KeyError:
            raise UnusableInput(f"{source}: no config.json inside; not a Keras model file (.keras)") from None
        except (ValueError, RecursionError) as err:
            raise UnusableInput(f"{source}: config.json is not valid JSON ({err})") from None
        _check_declared_shapes(config, source)
        _check_weight_shapes(archive, source)


def load_model(path: str | Path):
    """The saved model, loaded in float64 (so a float64 model keeps its exact hyperparameters)."""
    path = Path(path)
    why = not_a_regular_file(path)
    if why is not None:
        raise UnusableInput(f"{path}: {why} (the Keras model to read)")
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise UnusableInput(f"{path}: not a saved Keras model (a .keras file is a zip archive "
                            "written by model.save; this one is not)")
    check_model_file(path)
    from ..witnesses.keras import keras_floatx
    with keras_floatx("float64") as keras, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the optimizer's saved slots: not read (see above)
        try:
            return keras.saving.load_model(path, compile=True)
        except Exception as err:  # Keras raises many kinds for an unreadable file
            raise UnusableInput(f"{path}: cannot be loaded as a Keras model "
                                f"({type(err).__name__}: {err})") from None


def _typed(value: float, float32: bool) -> float:
    """A float as its author wrote it: float32 values as their shortest round-tripping decimal."""
    value = float(value)
    return float(str(np.float32(value))) if float32 and float(np.float32(value)) == value else value


def _rule_of(layer, where: str):
    """The registered layer rule of a Keras layer, by its class name (Dense, Conv2D, ...)."""
    name = type(layer).__name__
    if name not in layer_rules or layer_rules[name].name != name or layer_rules[name] is LINEAR:
        raise UnusableInput(f"{where}: symbp represents only these layers: "
                            f"{', '.join(rule.name for rule in _keras_rules())}")
    return layer_rules[name]


def _keras_rules() -> list:
    return [layer_rules[name] for name in layer_rules.names() if layer_rules[name] is not LINEAR]


def _check_settings(config: dict, where: str, rule) -> None:
    """The config's settings symbp leaves out at their "off" value only (see the module)."""
    for key in _DENSE_OFF:
        if config.get(key):
            raise UnusableInput(f"{where}: {key} is set; symbp cannot represent it")
    if rule.parameters and not config.get("use_bias", True):
        raise UnusableInput(f"{where}: use_bias=False; symbp's {rule.name} layers have a bias")
    for key, value in _WINDOW_OFF.items():
        if config.get(key, value) not in (value, None):
            raise UnusableInput(f"{where}: {key}={config[key]!r}; symbp represents only {key}={value!r}")
    if any(int(d) != 1 for d in np.atleast_1d(config.get("dilation_rate", 1))):
        raise UnusableInput(f"{where}: dilation_rate={config['dilation_rate']!r}; symbp represents only "
                            "undilated windows (1)")
    if config.get("padding", "valid") not in ("valid", "same"):
        raise UnusableInput(f"{where}: padding={config['padding']!r}; symbp represents \"valid\" and \"same\"")
    if rule.parameters and (not isinstance(config.get("activation"), str) or config["activation"] not in activations):
        raise UnusableInput(f"{where}: activation {config.get('activation')!r} is not one symbp knows "
                            f"({', '.join(activations.names())})")


def _plain(value):
    """A Keras config value as TOML writes it: tuples as lists."""
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _layer_table(layer, rule, float32: bool) -> dict:
    """One [[layers]] table: Dense's units, activation, weights, bias; another layer's type, its
    arguments by Keras's names and its parameters by Keras's variable names (kernel, bias)."""
    config = layer.get_config()
    values = [np.vectorize(lambda v: _typed(v, float32), otypes=[float])(w) for w in layer.get_weights()]
    activation = activations.canonical(config["activation"]) if rule.parameters else None
    if rule is DENSE:
        return {"units": int(layer.units), "activation": activation,
                "weights": values[0].tolist(), "bias": values[1].tolist()}
    table = {"type": rule.name, **{key: _plain(config[key]) for key in rule.keras_arguments
                                   if key in config and key != "activation"}}
    if rule.parameters:
        table["activation"] = activation
        table.update({parameter.kind: value.tolist() for parameter, value in zip(rule.parameters, values)})
    return table


def _layers(model, source: str) -> tuple[tuple, list[dict], bool]:
    """(the input shape of one sample, the [[layers]] tables, whether the weights are float32)."""
    keras = _keras()
    if not isinstance(model, keras.Sequential):
        raise UnusableInput(f"{source}: {article(type(model).__name__)} model; symbp reads Sequential models "
                            "of the layers it represents (Dense, convolution, pooling, Flatten)")
    if not model.layers:
        raise UnusableInput(f"{source}: the model has no layers")
    rules = []
    for n, layer in enumerate(model.layers):
        where = f"{source}: layer {n} ({layer.name!r}, {type(layer).__name__})"
        rule = _rule_of(layer, where)
        _check_settings(layer.get_config(), where, rule)
        if rule.parameters and (not layer.built or len(layer.get_weights()) != len(rule.parameters)):
            raise UnusableInput(f"{where}: the layer has no weights (build the model before saving it)")
        rules.append(rule)
    input_shape = getattr(model, "input_shape", None)
    if input_shape is not None and rules[0] is DENSE and len(input_shape) != 2:
        raise UnusableInput(f"{source}: input shape {tuple(input_shape)[1:]}; symbp reads models whose "
                            "Dense input is one row of features per sample")
    if input_shape is None or any(size is None for size in tuple(input_shape)[1:]):
        raise UnusableInput(f"{source}: the model's input shape is not fixed ({input_shape}); symbp needs "
                            "keras.Input(shape=...) with every size given")
    weights = model.get_weights()
    float32 = all(w.dtype == np.float32 for w in weights)
    if not float32 and not all(w.dtype == np.float64 for w in weights):
        raise UnusableInput(f"{source}: weights of dtype {sorted({str(w.dtype) for w in weights})}; "
                            "symbp reads float32 or float64 models")
    layers = [_layer_table(layer, rule, float32) for layer, rule in zip(model.layers, rules)]
    return tuple(int(size) for size in tuple(input_shape)[1:]), layers, float32


def _loss(model, source: str) -> str:
    loss = model.loss
    if isinstance(loss, str):
        name = loss
    elif callable(loss) and hasattr(loss, "get_config"):
        config = loss.get_config()
        name = config.get("name", "")
        unusual = {k: v for k, v in config.items()
                   if (k, v) not in {("reduction", "sum_over_batch_size"), ("from_logits", False),
                                     ("label_smoothing", 0.0), ("label_smoothing", 0), ("axis", -1)}
                   and k not in {"name", "dtype"}}
        if unusual:
            raise UnusableInput(f"{source}: loss {name!r} with {unusual}; symbp represents the loss "
                                "with Keras's defaults (no label smoothing, not from logits, mean over the batch)")
    elif callable(loss):
        name = getattr(loss, "__name__", repr(loss))
    else:
        raise UnusableInput(f"{source}: loss {loss!r} (a list or dict of losses) cannot be represented")
    if name not in losses:
        raise UnusableInput(f"{source}: loss {name!r} is not one symbp knows ({', '.join(losses.names())})")
    return losses.canonical(name)


def _optimizer(model, source: str, float32: bool) -> dict:
    optimizer = getattr(model, "optimizer", None)
    kind = type(optimizer).__name__.lower()
    if kind not in optimizers:
        raise UnusableInput(f"{source}: optimizer {type(optimizer).__name__} is not one symbp knows "
                            f"({', '.join(optimizers.names())})")
    rule = optimizers[kind]
    out: dict[str, Any] = {"name": optimizers.canonical(kind)}
    for key, value in optimizer.get_config().items():
        if key in _OPTIMIZER_IGNORED:
            continue
        if key in rule.defaults:
            if isinstance(value, dict):
                raise UnusableInput(f"{source}: optimizer {key} is {article(str(value.get('class_name', 'schedule')))}; "
                                    "symbp needs a number")
            if value is not None:
                out[key] = value if isinstance(value, bool) else _typed(value, float32)
        elif value != _OPTIMIZER_OFF.get(key, None if not isinstance(value, bool) else False):
            raise UnusableInput(f"{source}: optimizer setting {key}={value!r}; symbp cannot represent it")
    return out


#: what an array of a non-numeric dtype kind holds, for messages
_DTYPE_KINDS = {"c": "complex numbers", "U": "strings", "S": "bytes", "M": "dates", "m": "time spans",
                "O": "Python objects", "V": "records"}


def _real_rows(array: np.ndarray, where: str) -> np.ndarray:
    """An .npz array as float64 rows; only integers, floats and booleans are numbers here
    (a complex array would silently lose its imaginary part, strings or dates make no sense)."""
    if array.dtype.kind not in "biuf":
        kind = _DTYPE_KINDS.get(array.dtype.kind, "values")
        raise UnusableInput(f"{where} holds {kind} (dtype {array.dtype}); symbp needs real numbers")
    return np.atleast_2d(np.asarray(array, dtype=np.float64))


#: what each array of a .npz data file may be: (dimensions it may have, limit of each)
_NPZ_LIMITS = {"x": (LIMITS["samples"], LIMITS["features"]), "y": (LIMITS["samples"], LIMITS["units"])}
#: the most axes each may have: x of a convolution's images (samples, height, width, channels)
_NPZ_AXES = {"x": 4, "y": 2}


def _npz_header(archive: zipfile.ZipFile, key: str, source: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of ``key``.npy from its header alone (nothing inflated beyond it)."""
    with archive.open(f"{key}.npy") as member:
        try:
            version = np.lib.format.read_magic(member)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(member)
        except (ValueError, OSError, zipfile.BadZipFile) as err:
            raise UnusableInput(f"{source}: array {key} has no readable .npy header ({err})") from None
    return shape, dtype


def check_npz_file(path: Path) -> None:
    """Arrays x and y present, numeric, within the limits (samples, features (a sample's numbers:
    x may be images, up to 4-D), outputs; y at most 2-D), read from their .npy headers before any
    array is read."""
    source = str(path)
    with _zip_members(path, ".npz file") as archive:
        present = {name[:-4] for name in archive.namelist() if name.endswith(".npy")}
        missing = {"x", "y"} - present
        if missing:
            raise UnusableInput(f"{source}: no array named {' or '.join(sorted(missing))} "
                                f"(found {', '.join(sorted(present)) or 'none'})")
        numbers = 0
        for key, limits in _NPZ_LIMITS.items():
            shape, dtype = _npz_header(archive, key, source)
            numbers += int(np.prod(shape))
            if dtype.kind not in "biuf":
                raise UnusableInput(f"{source}: array {key} holds {_DTYPE_KINDS.get(dtype.kind, 'values')} "
                                    f"(dtype {dtype}); symbp needs real numbers (integer or float)")
            if len(shape) > _NPZ_AXES[key]:
                raise UnusableInput(f"{source}: array {key} has shape {shape}; symbp reads "
                                    + ("(samples, columns) arrays" if key == "y" else
                                       "(samples, features) or (samples, steps.., channels) arrays"))
            rows = shape if len(shape) == 2 else (1, *shape) if len(shape) < 2 else (shape[0], int(np.prod(shape[1:])))
            for size, limit, what in zip(rows, limits, ("samples", "columns")):
                if size > limit:
                    raise UnusableInput(f"{source}: array {key} has shape {shape}: at most {limit:,} "
                                        f"{what}")
        if numbers > LIMITS["data_values"]:
            raise UnusableInput(f"{source}: x and y hold {numbers:,} numbers; at most "
                                f"{LIMITS['data_values']:,} (samples x (features + outputs))")


def _read_npz(path: Path) -> dict:
    check_npz_file(path)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            x, y = (_real_rows(arrays[k], f"{path}: array {k}") for k in ("x", "y"))
    except (OSError, ValueError, MemoryError, zipfile.BadZipFile) as err:
        raise UnusableInput(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from None
    return {"x": x.tolist(), "y": y.tolist()}


def _read_data_toml(path: Path) -> str:
    """The file's text, refused past the spec size cap before more of it is read."""
    with path.open("rb") as handle:
        raw = handle.read(MAX_SPEC_BYTES + 1)
    if len(raw) > MAX_SPEC_BYTES:
        raise UnusableInput(f"{path}: larger than {MAX_SPEC_BYTES // 2**20} MB, the limit of a spec "
                            "and of a data file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UnusableInput(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def load_data(path: str | Path) -> tuple[dict, dict]:
    """({"x": rows, "y": rows}, training table) from a .toml ([data], [training]) or .npz (x, y) file.

    Sizes are checked before the data is read: a .npz file's array headers, a .toml file's
    length (the spec cap, MAX_SPEC_BYTES).
    """
    path = Path(path)
    why = not_a_regular_file(path)
    if why is not None:
        raise UnusableInput(f"{path}: {why} (the training data to read)")
    if path.suffix == ".npz":
        return _read_npz(path), {}
    try:
        table = tomllib.loads(_read_data_toml(path))
    except (tomllib.TOMLDecodeError, ValueError) as err:  # ValueError: an integer of 4300+ digits
        raise UnusableInput(f"{path}: not a TOML file with a [data] table ({err})") from None
    if not isinstance(table.get("data"), dict):
        raise UnusableInput(f"{path}: no [data] table (with x and y), as in a spec")
    training = table.get("training", {})
    return table["data"], training if isinstance(training, dict) else {}


def _check_inputs(table: dict, inputs: int | tuple, where: str) -> None:
    """The data's sample shape against the model's input shape (``inputs``: one sample's, as
    (features,) or (steps.., channels); an int: features). The model's weights are not what the
    user typed here, so a mismatch is the data's (the spec validator alone would blame
    ``layers[0].weights``). Data that is not a regular array of numbers is left to the validator."""
    inputs = (inputs,) if isinstance(inputs, int) else tuple(inputs)
    rows = table.get("x")
    if not isinstance(rows, list) or not rows or not all(isinstance(row, list) for row in rows):
        return
    try:
        shape = np.shape(np.array(rows, dtype=np.float64))[1:]
    except (ValueError, TypeError):
        return
    if shape == inputs:
        return
    if len(inputs) == 1 and len(shape) == 1:
        raise UnusableInput(f"{where} has {plural(shape[0], 'column')} but the model takes "
                            f"{plural(inputs[0], 'input')} (its first layer's weights have "
                            f"{plural(inputs[0], 'row')})")
    raise UnusableInput(f"{where}: each sample has shape {shape} but the model takes inputs of shape "
                        f"{inputs} (keras.Input's shape)")


def _spec_name(path: Path) -> str:
    name = re.sub(r"\W", "_", path.stem, flags=re.ASCII)[:64] or "model"
    if not name.isidentifier() or keyword.iskeyword(name):   # \w+ is one unless it starts with a digit
        name = ("model_" + name)[:64]
    return name


def spec_dict_from_keras(path: str | Path, data: Optional[str | Path] = None) -> tuple[dict, bool]:
    """The spec mapping of a saved model, and whether its data is a placeholder (no ``data``)."""
    path = Path(path)
    source = str(path)
    model = load_model(path)
    inputs, layers, float32 = _layers(model, source)
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise UnusableInput(f"{source}: the model was saved without compile(); symbp needs its loss "
                            "and optimizer")
    loss = _loss(model, source)
    optimizer = _optimizer(model, source, float32)
    if data is not None:
        data_table, training = load_data(data)
        _check_inputs(data_table, inputs, f"{data}: data.x")
    else:
        label = [0.0] * layers[-1]["units"]
        if losses[loss].labels_are_distributions:
            label[0] = 1.0
        data_table, training = {"x": np.zeros((1, *inputs)).tolist(), "y": [label]}, {}
    title = f"From the Keras model {path.name}"
    spec = {"name": _spec_name(path), "title": title if title.isprintable() and len(title) <= 200 else "",
            "seed": 0, "data": data_table, "layers": layers, "loss": {"name": loss},
            "optimizer": optimizer, "training": {"shuffle": False, **training}}
    return spec, data is None


def spec_from_keras(path: str | Path, data: Optional[str | Path] = None) -> Spec:
    """The spec of a saved model, trained on ``data``; validated like any spec file."""
    if data is None:
        raise UnusableInput("a Keras model holds no training data: give --data FILE (a .toml file with a "
                            "[data] table, or a .npz file with arrays x and y)")
    spec, _ = spec_dict_from_keras(path, data)
    return Spec.from_dict(spec, f"{path} with data from {data}")


def spec_toml_from_keras(path: str | Path, data: Optional[str | Path] = None) -> str:
    """The spec file of a saved model; without ``data``, placeholder data marked for replacing."""
    spec, placeholder = spec_dict_from_keras(path, data)
    text = Spec.from_dict(spec, str(path) if data is None else f"{path} with data from {data}").to_toml()
    header = f"# symbp spec of the Keras model {Path(path).name}\n"
    if placeholder:
        header += ("# [data] below is a placeholder (a Keras model holds no training data):\n"
                   "# replace x (samples x inputs, or samples x steps.. x channels) and y (samples x\n"
                   "# outputs) with your own.\n")
    return header + text

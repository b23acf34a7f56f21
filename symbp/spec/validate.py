"""Validating a spec mapping: one function per table, each adding what it finds to one
:class:`~symbp.spec.values.Problems`, so a spec's every problem is reported together.

:func:`validate_spec` reads the tables in the file's order: the top level (name, title, seed),
``[data]``, each ``[[layers]]`` table, ``[loss]`` (with the labels it needs), ``[optimizer]``,
``[training]``, ``[variants]``, then the sizes memory grows with (:func:`check_limits`). A table
gets what it depends on as arguments (the loss gets the output layer's place and units), never
from state another table left behind.
"""

from __future__ import annotations

import keyword
import math
import re
import sys
from typing import Any, Optional

import numpy as np

from ..derivation.network import build_layers
from ..rules import FRAMEWORKS, activations, loss_registry, optimizer_registry
from ..rules.layers import layers as layer_rules
from ..rules.initializers import INITIALIZERS
from ..rules.losses import ARGUMENT_RANGES as KERAS_LOSS_RANGES
from ..rules.optimizers import ARGUMENT_RANGES as KERAS_OPTIMIZER_RANGES
from ..rules.torch_losses import ARGUMENT_RANGES as TORCH_LOSS_RANGES, REDUCTIONS
from ..rules.torch_optimizers import ARGUMENT_RANGES as TORCH_OPTIMIZER_RANGES
from ..wording import plural
from .handout import ASK_FORMS, HANDOUT_KEYS, parse_ask
from .model import WEIGHTS_KEY, LayerSpec, LossSpec, OptimizerSpec, Problem, Spec, SpecError, TrainingSpec
from .values import (Problems, at_most, in_range, is_finite_number, key_shown, kind_of, matrix, name_in,
                     named_table, nearest, nesting_depth, number, numbers_array, shown, table, unknown_keys,
                     vector)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
#: module names a generated ``<name>.py`` must not shadow (it sits beside the user's scripts),
#: besides every module importable here (see :func:`shadows_a_module`)
RESERVED_NAMES = frozenset(sys.stdlib_module_names) | {"numpy", "np", "symbp", "sympy", "keras",
                                                       "tensorflow", "jinja2", "click"}
#: sizes past which a spec is not a teaching example (and would make huge literals or slow runs);
#: "parameters" (weights and biases in all), "batch_values" (one batch's inputs and every
#: layer's outputs, batch_size x (features + all units)) and "data_values" (samples x (features
#: + outputs), about what a 16 MB spec file holds) and "window_values" (one batch's window
#: entries of every convolution and pooling layer, :attr:`Layer.window_values`) keep every
#: command within ~2 GB of memory
LIMITS = {"layers": 32, "units": 1024, "features": 1024, "samples": 10_000, "epochs": 10_000,
          "seed": 2**32 - 1, "parameters": 2**22, "batch_values": 2**22, "data_values": 2**23,
          "window_values": 2**24}
TOP_KEYS = {"name", "title", "seed", "framework", "data", "layers", "loss", "optimizer", "training", "variants",
            "handout"}
LAYER_KEYS = {"units", "activation", "weights", "bias", "kernel_initializer", "bias_initializer",
              "bias_trainable"}
TRAINING_KEYS = {"batch_size", "epochs", "shuffle"}
DATA_KEYS = {"x", "y"}
VARIANT_ITEMS = ("weights", "bias", "x", "y")
VARIANT_KEYS = {"vary", "step", "range", "max_abs_z", "kink_margin", *VARIANT_ITEMS}
#: what ``symbp variants`` draws when a spec has no [variants] table (or leaves a key out)
VARIANT_DEFAULTS = {"vary": ["weights"], "step": 0.1, "range": [-1.0, 1.0], "max_abs_z": 3.0,
                    "kink_margin": 0.05}
#: framework -> the ranges of its loss arguments and of its optimizer arguments
ARGUMENT_RANGES = {"keras": (KERAS_LOSS_RANGES, KERAS_OPTIMIZER_RANGES),
                   "torch": (TORCH_LOSS_RANGES, TORCH_OPTIMIZER_RANGES)}
#: the optimizer argument every spec's optimizer gets (its default when the table leaves it out)
LEARNING_RATE_KEY = {"keras": "learning_rate", "torch": "lr"}
#: the losses whose labels are between 0 and 1
BINARY_LOSSES = ("binary_crossentropy", "bceloss", "bcewithlogitsloss")
#: a variants grid's values are k * step with |k| at most this (integers exact in a float64)
MAX_GRID_MULTIPLE = 2**53


def shadows_a_module(name: str) -> bool:
    """Would ``<name>.py`` in the user's folder shadow a module Python or a library imports?

    True for the standard library's names, ``RESERVED_NAMES``, and any top-level module or
    package importable in the running environment (``optree``, ``absl``, ``ml_dtypes``: Keras's
    own dependencies; ``IPython``: the notebook kernel's). A blocklist would always lag what is
    installed, so the environment itself is asked. The current folder is left out of the
    search: a module symbp wrote there earlier must not block writing it again.
    """
    if name in RESERVED_NAMES or name in sys.builtin_module_names:
        return True
    import importlib.machinery
    import os
    here = {"", ".", os.getcwd()}
    search = [entry for entry in sys.path if entry not in here]
    try:
        return importlib.machinery.PathFinder.find_spec(name, search) is not None
    except (ImportError, ValueError, OSError):
        return True


def _limit(problems: Problems, value: Any, where: str, limit_name: str, what: str) -> None:
    at_most(problems, value, where, LIMITS[limit_name], what)


# ---------------------------------------------------------------- the whole spec
def validate_spec(data: Any, source: str) -> Spec:
    """The spec a mapping of the file's format describes, or one SpecError with every problem."""
    if not isinstance(data, dict):
        raise SpecError(source, [Problem("", f"expected a table at the top, found {kind_of(data)}")])
    problems = Problems()
    unknown_keys(problems, data, TOP_KEYS, "")
    name, title, seed = check_top_level(problems, data)
    framework = check_framework(problems, data.get("framework", "keras"))
    x, y = check_data(problems, data)
    layer_tables = data.get("layers")
    layers = check_layers(problems, layer_tables, None if x is None else x.shape[1:], framework)
    # the label width is checked against the output layer only when every layer is valid
    complete = isinstance(layer_tables, list) and len(layers) == len(layer_tables)
    loss = check_loss(problems, named_table(problems, data, "loss"), y, len(layers) - 1,
                      layers[-1].units if layers and complete else None, framework)
    optimizer = check_optimizer(problems, named_table(problems, data, "optimizer"), framework)
    training = check_training(problems, table(problems, data, "training", required=False))
    variants = check_variants(problems, data["variants"]) if "variants" in data else None
    handout = check_handout(problems, data["handout"]) if "handout" in data else None
    check_limits(problems, x, y, layers, training, complete)
    problems.raise_if_any(source)
    return Spec(name, x.tolist(), y.tolist(), layers, loss, optimizer, training, title, seed, variants,
                framework, handout)


def check_top_level(problems: Problems, data: dict) -> tuple[Any, str, Any]:
    """``name`` (an identifier that shadows no module), ``title`` (one printable line), ``seed``."""
    name = data.get("name")
    if name is None:
        problems.add("name", "missing (required: names the generated module)")
    elif not isinstance(name, str) or not _IDENTIFIER.match(name) or keyword.iskeyword(name):
        problems.add("name", f"must be a Python identifier of at most 64 letters, digits and "
                             f"underscores (it names the generated module), found {shown(name)}")
    elif name.startswith("__") or shadows_a_module(name):
        problems.add("name", f"{name!r} is the name of an installed Python module; <name>.py "
                             f"would shadow it where it is written: choose another name")
    title = data.get("title", "")
    if not isinstance(title, str):
        problems.expected("title", "a string", kind_of(title))
        title = ""
    elif len(title) > 200 or not title.isprintable():
        problems.add("title", f"must be one line of at most 200 printable characters, found {shown(title)}")
    seed = data.get("seed", 0)
    if number(problems, seed, "seed", integer=True) is not None:
        if seed < 0:
            problems.add("seed", f"must be 0 or more, found {seed}")
        _limit(problems, seed, "seed", "seed", "(a 32-bit seed)")
    return name, title, seed


def check_framework(problems: Problems, framework: Any) -> str:
    """``framework``: "keras" (the default) or "torch"; the names of the loss and optimizer and
    the layer layout are read in its registries (Keras after a problem, to report the rest)."""
    if framework in FRAMEWORKS:
        return framework
    problems.add("framework", f"unknown framework {shown(framework)} (one of {', '.join(map(repr, FRAMEWORKS))})")
    return "keras"


def check_data(problems: Problems, data: dict) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """``[data]``: x (samples x features) and y (samples x outputs), as many samples each."""
    data_table = table(problems, data, "data")
    unknown_keys(problems, data_table, DATA_KEYS, "data.")
    x = y = None
    if isinstance(data.get("data"), dict):
        for key, what in (("x", "samples x features"), ("y", "samples x outputs")):
            if key not in data_table:
                problems.add(f"data.{key}", f"missing (required: {what})")
        x = check_x(problems, data_table["x"], data.get("layers")) if "x" in data_table else None
        y = matrix(problems, data_table["y"], "data.y") if "y" in data_table else None
    if x is not None and y is not None and x.shape[0] != y.shape[0]:
        problems.add("data.y", f"has {plural(y.shape[0], 'sample')} but data.x has {x.shape[0]}")
    if x is not None:
        _limit(problems, x.shape[0], "data.x", "samples", "samples (rows)")
        _limit(problems, int(np.prod(x.shape[1:])), "data.x", "features", "features (columns)")
    return x, y


def check_x(problems: Problems, value: Any, layer_tables: Any) -> Optional[np.ndarray]:
    """data.x: samples x features, or (samples, steps.., channels) when the first layer reads
    windows (Conv2D: (samples, height, width, channels); Conv1D: (samples, steps, channels))."""
    first = layer_tables[0] if isinstance(layer_tables, list) and layer_tables and isinstance(layer_tables[0], dict) else {}
    kind = first.get("type", "Dense")
    if not isinstance(kind, str) or kind not in layer_rules:   # its shape unknown: the type's problem says why
        return numbers_array(problems, value, "data.x")
    rule = layer_rules[kind]
    rank, depth = rule.gather.spatial if rule.indexed else 0, nesting_depth(value)
    if not rank and depth > 2:
        problems.add("data.x", f"{rule.name} takes a 2-D array (samples x features), found {depth}-D data: "
                               f"images or sequences need a convolution or a Flatten layer first")
        return None
    if not rank:
        return matrix(problems, value, "data.x")
    array = numbers_array(problems, value, "data.x")
    if array is not None and (array.ndim != rank + 2 or array.size == 0):
        found = f"{array.ndim}-D" if array.ndim != rank + 2 else f"an empty axis, shape {array.shape}"
        problems.add("data.x", f"{kind} needs a {rank + 2}-D array (samples, "
                               f"{'steps' if rank == 1 else 'height, width'}, channels) of numbers, found {found}")
        return None
    return array


# ---------------------------------------------------------------- [[layers]]
def check_layers(problems: Problems, value: Any, inputs: Optional[tuple], framework: str = "keras") -> list[LayerSpec]:
    """Every ``[[layers]]`` table, each layer's input shape the output shape of the one before
    (``inputs``: a sample's shape, batch left out)."""
    if value is None:
        problems.add("layers", "missing (required: one [[layers]] table per Dense layer)")
        return []
    if not isinstance(value, list):
        problems.expected("layers", "an array of tables ([[layers]])", kind_of(value))
        return []
    if not value:
        problems.add("layers", "is empty: a network needs at least one layer")
        return []
    _limit(problems, len(value), "layers", "layers", "layers")
    out, shape = [], inputs
    for n, entry in enumerate(value):
        layer, shape = check_layer(problems, entry, f"layers[{n}]", shape, framework)
        if layer is not None:
            out.append(layer)
    return out


def check_layer(problems: Problems, entry: Any, where: str, shape: Optional[tuple],
                framework: str = "keras") -> tuple[Optional[LayerSpec], Optional[tuple]]:
    """One ``[[layers]]`` table, checked by the function of its ``type`` (Dense: absent): the
    layer (None when unusable) and its output shape when valid (the next layer's input)."""
    if not isinstance(entry, dict):
        problems.expected(where, "a table ([[layers]])", kind_of(entry))
        return None, None
    kind = name_in(problems, layer_rules, entry.get("type", "Dense"), f"{where}.type")
    if kind is None:
        return None, None
    rule = layer_rules[kind]
    if rule.indexed:
        return check_window_layer(problems, entry, where, rule, shape)
    if shape is not None and len(shape) > 1:   # its own keys are then no problem: its input is
        problems.add(where, f"{rule.name} needs a flat input (samples x features): add a Flatten layer before it")
        return None, None
    layer, units = check_dense_layer(problems, entry, where, None if shape is None else shape[0], framework)
    return layer, None if units is None else (units,)


def check_dense_layer(problems: Problems, entry: dict, where: str, fan_in: Optional[int],
                      framework: str = "keras") -> tuple[Optional[LayerSpec], Optional[int]]:
    """One Dense table: units, activation, weights (fan_in x units), bias (units,), initializers
    (torch's Linear: ``weight``, units x fan_in); the layer (None when unusable) and its units
    when valid (the next layer's fan-in)."""
    weights_key = WEIGHTS_KEY[framework]
    unknown_keys(problems, entry, LAYER_KEYS - {"weights"} | {weights_key, "type"}, where + ".")
    units = _check_units(problems, entry.get("units"), f"{where}.units")
    activation = name_in(problems, activations, entry.get("activation", "linear"), f"{where}.activation")
    kernel = entry.get(weights_key)
    rows, columns = (units, fan_in) if framework == "torch" else (fan_in, units)
    if kernel is not None and matrix(problems, kernel, f"{where}.{weights_key}", rows, columns) is None:
        kernel = None
    bias = entry.get("bias")
    if bias is not None and units is not None and vector(problems, bias, f"{where}.bias", units) is None:
        bias = None
    rule = layer_rules["linear" if framework == "torch" else "dense"]
    initializers = {f"{p.kind}_initializer": check_initializer(problems, entry, where, p) for p in rule.parameters}
    trainable = entry.get("bias_trainable", True)
    if not isinstance(trainable, bool):
        problems.expected(f"{where}.bias_trainable", "true or false", kind_of(trainable))
    if units is None or activation is None:
        return None, units
    return LayerSpec(units, activation, kernel, bias, **initializers, type=rule.name,
                     bias_trainable=trainable is not False), units


def check_window_layer(problems: Problems, entry: dict, where: str, rule,
                       shape: Optional[tuple]) -> tuple[Optional[LayerSpec], Optional[tuple]]:
    """One table of a layer that reads its input through a gather (Conv1D/2D, pooling, global
    pooling, Flatten): its Keras arguments (``rule.arguments``), activation and parameters in
    Keras's layout; the layer and its output shape (from ``rule.output_shape``)."""
    rank = rule.gather.spatial if rule.gather is not None else 0
    allowed = {"type"} | {key for key, _ in rule.arguments}
    allowed |= {k for p in rule.parameters for k in (p.kind, p.spec_key, f"{p.kind}_initializer")}
    unknown_keys(problems, entry, allowed, where + ".")
    arguments = _window_arguments(problems, entry, where, rule, rank)
    activation = "linear"
    if rule.parameters:
        activation = name_in(problems, activations, entry.get("activation", "linear"), f"{where}.activation")
    if arguments is None or activation is None or shape is None:
        return None, None
    if rule.gather.kind == "windows" and len(shape) != rank + 1:
        problems.add(where, f"{rule.name} needs inputs of {rank + 1} axes per sample "
                            f"({'steps' if rank == 1 else 'height, width'}, channels), found shape {shape}")
        return None, None
    output = tuple(rule.output_shape(shape, arguments))
    if any(size <= 0 for size in output):
        problems.add(where, f"its window is larger than its input {shape} (output shape {output}): "
                            f"use a smaller window or padding \"same\"")
        return None, None
    parameters = _window_parameters(problems, entry, where, rule, shape, arguments)
    return LayerSpec(int(output[-1]), activation, type=rule.name, arguments=arguments, **parameters), output


#: a windowed layer's arguments that are sizes (an int, or one int per spatial axis)
SIZE_ARGUMENTS = ("kernel_size", "pool_size", "strides")
PADDINGS = ("valid", "same")


def _window_size(problems: Problems, value: Any, where: str, rank: int) -> Optional[list]:
    """A Keras size: a positive int (at most 1024) or a list of one per spatial axis."""
    values = value if isinstance(value, list) else [value]
    if len(values) not in (1, rank) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1024
                                               for v in values):
        problems.expected(where, f"a positive integer (at most 1024) or {rank} of them (one per axis)", shown(value))
        return None
    return values * rank if len(values) == 1 else list(values)


def _window_arguments(problems: Problems, entry: dict, where: str, rule, rank: int) -> Optional[dict]:
    """The rule's Keras arguments from ``entry`` (defaults filled in), or None after a problem."""
    out, ok = {}, True
    for key, default in rule.arguments:
        value = entry.get(key, default)
        if key == "activation" or (value is None and default is None and key not in ("filters", "kernel_size")):
            continue
        if value is None:
            problems.add(f"{where}.{key}", "missing (required)")
            ok = False
        elif key in SIZE_ARGUMENTS:
            out[key] = _window_size(problems, value, f"{where}.{key}", rank)
            ok = ok and out[key] is not None
        elif key == "filters":
            out[key] = value
            if number(problems, value, f"{where}.filters", integer=True, positive=True) is None:
                ok = False
            elif value > 1024:
                problems.add(f"{where}.filters", f"at most 1024 filters, found {value}")
                ok = False
        elif key == "padding":
            out[key] = value
            if value not in PADDINGS:
                problems.expected(f"{where}.padding", '"valid" or "same"', shown(value))
                ok = False
    return out if ok else None


def _window_parameters(problems: Problems, entry: dict, where: str, rule, shape: tuple, arguments: dict) -> dict:
    """kernel (its alias ``weights``, as for Dense) and bias in Keras's layout, and the
    initializers of the others."""
    out = {}
    for parameter in rule.parameters:
        keys = [k for k in dict.fromkeys((parameter.kind, parameter.spec_key)) if k in entry]
        if len(keys) > 1:
            problems.add(f"{where}.{parameter.kind}", f"given twice ({' and '.join(keys)}): give one")
        if keys:
            values = _shaped_array(problems, entry[keys[0]], f"{where}.{keys[0]}",
                                   tuple(parameter.shape(shape, arguments)))
            if values is not None:
                out[parameter.kind] = values.tolist()
        out[f"{parameter.kind}_initializer"] = check_initializer(problems, entry, where, parameter)
    return out


def check_initializer(problems: Problems, entry: dict, where: str, parameter) -> Any:
    """``<kind>_initializer``: a registered initializer's name (Keras's, or torch's
    ``torch_default``); left out, the layer rule's default for that parameter."""
    key = f"{parameter.kind}_initializer"
    init = entry.get(key, parameter.initializer)
    if not isinstance(init, str) or init not in INITIALIZERS:
        problems.add(f"{where}.{key}", f"unknown initializer {shown(init)}{nearest(str(init), INITIALIZERS)}")
    return init


def _shaped_array(problems: Problems, value: Any, where: str, expected: tuple) -> Optional[np.ndarray]:
    """An array of finite numbers of shape ``expected`` (a parameter in Keras's layout), or None."""
    values = numbers_array(problems, value, where)
    if values is not None and values.shape != expected:
        problems.expected(where, f"an array of shape {expected} (Keras's layout)", f"shape {values.shape}")
        return None
    return values


def _check_units(problems: Problems, units: Any, where: str) -> Optional[int]:
    if units is None:
        problems.add(where, "missing (required)")
        return None
    if number(problems, units, where, integer=True, positive=True) is None:
        return None
    if units > LIMITS["units"]:
        _limit(problems, units, where, "units", "units")
        return None
    return units


# ---------------------------------------------------------------- [loss], [optimizer], [training]
def check_loss(problems: Problems, loss_table: dict, y: Optional[np.ndarray], output_layer: int,
               units: Optional[int], framework: str = "keras") -> Optional[LossSpec]:
    """The loss's name (in ``framework``'s registry) and arguments (torch's: and ``reduction``);
    the labels' shape and values against it (``units``: the output layer's, None when a layer is
    invalid; ``output_layer``: its place, for the message)."""
    registry = loss_registry(framework)
    name = name_in(problems, registry, loss_table["name"], "loss.name") if "name" in loss_table else None
    rule = registry[name] if name else None
    extra = {"reduction"} if framework == "torch" else set()
    unknown_keys(problems, loss_table, {"name"} | extra | set(rule.arguments if rule else ()), "loss.")
    indices = bool(rule and (rule.sparse_labels or (rule.either_labels and y is not None
                                                    and y.shape[1] == 1 and units != 1)))
    if y is not None and units is not None and not indices and y.shape[1] != units:
        problems.add("data.y", f"has {plural(y.shape[1], 'column')} but the output layer "
                               f"(layers[{output_layer}]) has {plural(units, 'unit')}"
                               + _class_index_hint(name, y, units))
    if loss_table and "name" not in loss_table:
        problems.add("loss.name", "missing (required)")
    if rule is None:
        return None
    if y is not None:
        check_labels(problems, name, rule, y, units, indices)
    ranges = ARGUMENT_RANGES[framework][0]
    arguments = {key: loss_table[key] for key in rule.arguments if key in loss_table
                 and in_range(problems, loss_table[key], f"loss.{key}", ranges[key]) is not None}
    if "reduction" in loss_table and framework == "torch":
        arguments.update(_check_reduction(problems, loss_table["reduction"]))
    return LossSpec(name, arguments)


def _check_reduction(problems: Problems, reduction: Any) -> dict:
    """torch's ``reduction``: "mean" or "sum" ({} after a problem)."""
    if reduction in REDUCTIONS:
        return {"reduction": reduction}
    problems.add("loss.reduction", f"must be one of {', '.join(map(repr, REDUCTIONS))} "
                                   f"(\"none\" gives no loss to train on), found {shown(reduction)}")
    return {}


def check_labels(problems: Problems, name: str, rule, y: np.ndarray, units: Optional[int],
                 indices: Optional[bool] = None) -> None:
    """The labels a loss takes: class indices below ``units`` (sparse, or CrossEntropyLoss given
    one column: ``indices``), rows summing to 1 (categorical_crossentropy, CrossEntropyLoss's
    probabilities), values in [0, 1] (binary cross-entropies)."""
    if indices if indices is not None else rule.sparse_labels:
        if y.shape[1] != 1:
            problems.add("data.y", f"{name} needs one class index per sample (a single "
                                   f"column, [[2], [0], ...]), found {plural(y.shape[1], 'column')}")
        elif units is not None and not _class_indices(y, units):
            problems.add("data.y", f"{name} needs class indices 0 .. {units - 1} (the output layer's units)")
    elif (name == "categorical_crossentropy" or rule.either_labels) and not np.allclose(y.sum(axis=1), 1.0, atol=1e-9):
        problems.add("data.y", f"{name} needs label rows that sum to 1 (one-hot or probabilities)")
    if name in BINARY_LOSSES and (y.min() < 0 or y.max() > 1):
        problems.add("data.y", f"{name} needs labels between 0 and 1")


def _class_indices(y: np.ndarray, units: int) -> bool:
    return bool(np.all(y == np.round(y)) and y.min() >= 0 and y.max() < units)


def _class_index_hint(loss: Optional[str], y: np.ndarray, units: Optional[int]) -> str:
    """For categorical_crossentropy given one class index per sample ([[2], [0], ...]): the
    loss that takes labels in that form, since one-hot rows are what it expects."""
    if loss != "categorical_crossentropy" or y.shape[1] != 1 or units in (None, 1):
        return ""
    if not _class_indices(y, units):
        return ""
    example = ", ".join("1" if k == 1 else "0" for k in range(units))
    return ("; these look like class indices: use loss sparse_categorical_crossentropy for "
            f"them, or write each label one-hot ([{example}] for class 1)")


def check_optimizer(problems: Problems, optimizer_table: dict, framework: str = "keras") -> Optional[OptimizerSpec]:
    """The optimizer's name and its arguments (``framework``'s names and ranges; numbers as
    floats, since Keras's SGD rejects momentum = 0); the learning rate defaults to the optimizer's."""
    if not optimizer_table:
        return None
    if "name" not in optimizer_table:
        problems.add("optimizer.name", "missing (required)")
        return None
    registry = optimizer_registry(framework)
    name = name_in(problems, registry, optimizer_table["name"], "optimizer.name")
    if name is None:
        return None
    rule = registry[name]
    arguments: dict[str, Any] = {}
    for key, value in optimizer_table.items():
        if key == "name":
            continue
        if key not in rule.defaults:
            problems.add(f"optimizer.{key_shown(key)}", f"not an argument of {name}{nearest(str(key), rule.defaults)}")
            continue
        value = _optimizer_argument(problems, value, f"optimizer.{key}", ARGUMENT_RANGES[framework][1].get(key),
                                    rule.defaults[key])
        if value is not None:
            arguments[key] = value
    key = LEARNING_RATE_KEY[framework]
    arguments.setdefault(key, rule.defaults[key])
    if framework == "torch" and arguments.get("nesterov") and (not arguments.get("momentum") or arguments.get("dampening")):
        problems.add("optimizer.nesterov", "torch's Nesterov momentum needs a momentum above 0 and dampening 0")
    return OptimizerSpec(name, arguments)


def _optimizer_argument(problems: Problems, value: Any, where: str, allowed, default: Any) -> Any:
    """One argument as its default's type: a boolean switch, a pair (torch's ``betas``) of numbers
    in range, or a number in its range (a float unless the default is an int)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            problems.expected(where, "true or false", kind_of(value))
            return None
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list) or len(value) != len(default):
            problems.expected(where, f"{len(default)} numbers ([0.9, 0.999])", shown(value))
            return None
        checked = [in_range(problems, v, f"{where}[{n}]", allowed) for n, v in enumerate(value)]
        return [float(v) for v in value] if None not in checked else None
    if in_range(problems, value, where, allowed) is None:
        return None
    return value if isinstance(default, int) else float(value)


def check_training(problems: Problems, training_table: dict) -> TrainingSpec:
    """batch_size and epochs (positive integers, Keras's defaults 32 and 1); shuffle false."""
    unknown_keys(problems, training_table, TRAINING_KEYS, "training.")
    given = {key: training_table[key] for key in ("batch_size", "epochs") if key in training_table
             and number(problems, training_table[key], f"training.{key}", integer=True, positive=True) is not None}
    training = TrainingSpec(**given)
    _limit(problems, training.epochs, "training.epochs", "epochs", "epochs")
    # a batch past the samples limit is the whole data (same as batch_size = samples); no
    # larger number reaches Keras's or NumPy's integer arithmetic
    _limit(problems, training.batch_size, "training.batch_size", "samples",
           "samples per batch (the most a spec has)")
    if "shuffle" in training_table and training_table["shuffle"] is not False:
        problems.add("training.shuffle", "must be false: symbp replays model.fit(shuffle=False)")
    return training


# ---------------------------------------------------------------- [handout]
def check_handout(problems: Problems, handout_table: Any) -> Optional[dict]:
    """[handout] (symbp.spec.handout): ask (an array of entries such as "W1[0:2,0:3]"), digits
    (1 to 16), first_index (0 or 1), derivative_table, symbolic_rules, name_line (booleans)."""
    if not isinstance(handout_table, dict):
        problems.expected("handout", "a table", kind_of(handout_table))
        return None
    unknown_keys(problems, handout_table, HANDOUT_KEYS, "handout.")
    out: dict[str, Any] = {}
    for key in ("derivative_table", "symbolic_rules", "name_line"):
        if key in handout_table:
            if isinstance(handout_table[key], bool):
                out[key] = handout_table[key]
            else:
                problems.expected(f"handout.{key}", "true or false", kind_of(handout_table[key]))
    for key, low, high in (("digits", 1, 16), ("first_index", 0, 1)):
        value = handout_table.get(key)
        if key in handout_table and number(problems, value, f"handout.{key}", integer=True) is not None:
            if low <= value <= high:
                out[key] = value
            else:
                problems.add(f"handout.{key}", f"must be from {low} to {high}, found {value!r}")
    if "ask" in handout_table:
        out["ask"] = _check_ask(problems, handout_table["ask"])
    return out


def _check_ask(problems: Problems, ask: Any) -> list:
    """The asked entries: an array of strings each :func:`symbp.spec.handout.parse_ask` reads."""
    if not isinstance(ask, list) or not all(isinstance(entry, str) for entry in ask):
        problems.expected("handout.ask", f"an array of quantities ({ASK_FORMS})", kind_of(ask))
        return []
    for n, entry in enumerate(ask):
        try:
            parse_ask(entry)
        except ValueError as err:
            problems.add(f"handout.ask[{n}]", f"{shown(entry)}: {err}")
    return list(ask)


# ---------------------------------------------------------------- [variants]
def check_variants(problems: Problems, variants_table: Any) -> Optional[dict]:
    """[variants]: vary (items), step and range of the value grid, max_abs_z, kink_margin; per-item
    sub-tables ([variants.x]) override step and range."""
    if not isinstance(variants_table, dict):
        problems.expected("variants", "a table", kind_of(variants_table))
        return None
    unknown_keys(problems, variants_table, VARIANT_KEYS, "variants.")
    vary = _check_vary(problems, variants_table.get("vary", VARIANT_DEFAULTS["vary"]))
    out: dict[str, Any] = {"vary": vary}
    if "max_abs_z" in variants_table and number(problems, variants_table["max_abs_z"], "variants.max_abs_z",
                                                positive=True) is not None:
        out["max_abs_z"] = variants_table["max_abs_z"]
    margin = variants_table.get("kink_margin")
    if "kink_margin" in variants_table and number(problems, margin, "variants.kink_margin") is not None:
        if margin < 0:
            problems.add("variants.kink_margin", f"must be 0 or more, found {margin!r}")
        else:
            out["kink_margin"] = margin
    check_grid(problems, variants_table, "variants.", out, VARIANT_DEFAULTS["step"], VARIANT_DEFAULTS["range"])
    for item in VARIANT_ITEMS:
        if item in variants_table:
            _check_item_grid(problems, variants_table[item], item, out)
    return out


def _check_vary(problems: Problems, vary: Any) -> list:
    """The items drawn afresh: a non-empty array of distinct names from VARIANT_ITEMS."""
    if not isinstance(vary, list) or not vary or not all(isinstance(v, str) for v in vary):
        problems.expected("variants.vary", f"a non-empty array of names from {list(VARIANT_ITEMS)}", kind_of(vary))
        return list(vary) if isinstance(vary, list) else []
    for item in vary:
        if item not in VARIANT_ITEMS:
            problems.add("variants.vary", f"unknown item {item!r}{nearest(item, VARIANT_ITEMS)} "
                                          f"(one of {', '.join(VARIANT_ITEMS)})")
    if len(set(vary)) != len(vary):
        problems.add("variants.vary", "lists an item twice")
    return list(vary)


def _check_item_grid(problems: Problems, sub: Any, item: str, out: dict) -> None:
    """[variants.<item>]: its own step and range, defaulting to the table's."""
    if not isinstance(sub, dict):
        problems.expected(f"variants.{item}", "a table (step, range)", kind_of(sub))
        return
    unknown_keys(problems, sub, {"step", "range"}, f"variants.{item}.")
    out[item] = {}
    check_grid(problems, sub, f"variants.{item}.", out[item], out.get("step", VARIANT_DEFAULTS["step"]),
               out.get("range", VARIANT_DEFAULTS["range"]))


def check_grid(problems: Problems, grid_table: dict, where: str, out: dict, default_step: float,
               default_range: list) -> None:
    """step (positive) and range [low, high] holding at least two multiples of step, each
    k * step with |k| <= MAX_GRID_MULTIPLE (2^53: k exact, low / step finite)."""
    step, bounds = default_step, default_range
    if "step" in grid_table and number(problems, grid_table["step"], where + "step", positive=True) is not None:
        step = out["step"] = grid_table["step"]
    if "range" in grid_table:
        value = grid_table["range"]
        if not isinstance(value, list) or len(value) != 2 or not all(map(is_finite_number, value)):
            problems.expected(where + "range", "[low, high] (two finite numbers)", shown(value))
            return
        if value[0] >= value[1]:
            problems.add(where + "range", f"low must be below high, found {value!r}")
            return
        bounds = out["range"] = list(value)
    if not max(abs(bounds[0] / step), abs(bounds[1] / step)) <= MAX_GRID_MULTIPLE:
        problems.add(where + "range", f"{shown(bounds)} reaches past {MAX_GRID_MULTIPLE:.3g} "
                                      f"multiples of step {step!r} (choose a larger step or a smaller range)")
        return
    if math.floor(bounds[1] / step + 1e-9) - math.ceil(bounds[0] / step - 1e-9) < 1:
        problems.add(where + "range", f"{bounds!r} holds fewer than two multiples of step {step!r}")


# ---------------------------------------------------------------- the sizes memory grows with
def check_limits(problems: Problems, x: Optional[np.ndarray], y: Optional[np.ndarray],
                 layers: list[LayerSpec], training: TrainingSpec, complete: bool = True) -> None:
    """Numbers of data, samples x (features + outputs); parameters, sum((fan_in + 1) * units)
    over the layers (each kept with its gradient and optimizer slots); one batch's values,
    min(batch_size, samples) * (features + sum(units)) (every z and a of the batch, each with
    its delta in back-propagation)."""
    if x is not None and y is not None and x.shape[0] == y.shape[0]:
        _limit(problems, x.size + y.size, "data", "data_values",
               "numbers of data (samples x (features + outputs))")
    if x is None or not layers:
        return
    if x.ndim != 2 or any(layer.type != "Dense" for layer in layers):
        if complete and not problems.found:
            check_shaped_limits(problems, x.shape, layers, training.batch_size)
        return
    samples, features = x.shape
    widths = [features, *(layer.units for layer in layers)]
    parameters = sum((fan_in + 1) * width for fan_in, width in zip(widths, widths[1:]))
    _limit(problems, parameters, "layers", "parameters", "parameters (weights and biases in all)")
    batch_values = min(training.batch_size, samples) * sum(widths)
    _limit(problems, batch_values, "training.batch_size", "batch_values",
           "values in one batch (batch_size x (features + all units))")


def check_shaped_limits(problems: Problems, data_shape: tuple, layers: list[LayerSpec], batch_size: int) -> None:
    """Parameters and one batch's values of a network with windowed layers, from its shapes."""
    built = build_layers(tuple(data_shape[1:]), [(layer.type, {"units": layer.units, "activation": layer.activation,
                                                               **layer.arguments}) for layer in layers])
    parameters = sum(int(np.prod(layer.param_shape(p.kind))) for layer in built for p in layer.rule.parameters)
    if parameters == 0:
        problems.add("layers", "no layer with parameters (Conv2D, Dense, ...): nothing to train")
    _limit(problems, parameters, "layers", "parameters", "parameters (weights and biases in all)")
    values = min(batch_size, data_shape[0]) * sum(int(np.prod(shape)) for shape in
                                                  [data_shape[1:], *(layer.output_shape for layer in built)])
    _limit(problems, values, "training.batch_size", "batch_values",
           "values in one batch (batch_size x (input and every layer's output))")
    per_sample = sum(layer.window_values for layer in built)
    _limit(problems, min(batch_size, data_shape[0]) * per_sample, "layers" if per_sample > LIMITS["window_values"]
           else "training.batch_size", "window_values",
           "window entries in one batch (batch_size x each windowed layer's positions x window x channels)")

"""The network spec: a TOML file whose keys are Keras's own names, and its Python mirror.

``load_spec(path)`` reads and validates a file; ``Spec.from_dict`` validates a mapping; every
problem found is collected into one :class:`SpecError` that names where each problem is
(``layers[1].weights``), what was expected and what was found.
"""

from __future__ import annotations

import keyword
import math
import re
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..derivation.network import build_layers, layers_from_spec, param_names as network_param_names
from ..rules.initializers import INITIALIZERS, Draw, initialize  # noqa: F401 (part of the spec's API)
from ..rules import activations, losses, optimizers
from ..rules.losses import ARGUMENT_RANGES as LOSS_ARGUMENT_RANGES
from ..rules.optimizers import ARGUMENT_RANGES as OPTIMIZER_ARGUMENT_RANGES
from ..rules.ranges import FLOAT32_MAX, Interval, finite_in_float32, float32
from ..rules.registry import UnknownName
from ..rules.layers import layers as layer_rules
from ..wording import did_you_mean, plural

BUILTIN_EXAMPLE = "cs4820_a7"


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class SpecError(ValueError):
    """Every problem found in one spec, reported together (the message shows the first
    ``SHOWN`` of them so it fits on one screen; ``problems`` holds all)."""

    SHOWN = 20

    def __init__(self, source: str, problems: list[Problem]):
        self.source, self.problems = source, problems
        lines = [f"{source}: {len(problems)} problem{'s' if len(problems) != 1 else ''} in the spec"]
        lines += [f"  - {p}" for p in problems[:self.SHOWN]]
        if len(problems) > self.SHOWN:
            lines.append(f"  ... and {len(problems) - self.SHOWN} more")
        super().__init__("\n".join(lines))


@dataclass
class LayerSpec:
    units: int                   # the width of its output (its last axis; Dense's units)
    activation: str = "linear"
    weights: Optional[list] = None   # the kernel (Keras's layout)
    bias: Optional[list] = None
    kernel_initializer: str = "glorot_uniform"
    bias_initializer: str = "zeros"
    type: str = "Dense"          # the Keras class name
    arguments: dict = field(default_factory=dict)   # Keras arguments besides units and activation


@dataclass
class Spec:
    name: str
    x: list
    y: list
    layers: list[LayerSpec]
    loss: dict = field(default_factory=lambda: {"name": "mean_squared_error"})
    optimizer: dict = field(default_factory=lambda: {"name": "sgd", "learning_rate": 0.01})
    training: dict = field(default_factory=lambda: {"batch_size": 32, "epochs": 1, "shuffle": False})
    title: str = ""
    seed: int = 0
    #: the [variants] table as validated (what ``symbp variants`` draws afresh); None when absent
    variants: Optional[dict] = None

    # ------------------------------------------------------------ derived views
    @property
    def widths(self) -> list[int]:
        return [len(self.x[0])] + [layer.units for layer in self.layers]

    @property
    def param_names(self) -> list[str]:
        return [str(name) for name in network_param_names(layers_from_spec(self))]

    @property
    def batch_size(self) -> int:
        return int(self.training.get("batch_size", 32))

    @property
    def epochs(self) -> int:
        return int(self.training.get("epochs", 1))

    def initial_sources(self) -> dict[str, np.ndarray | Draw]:
        """Each parameter as the spec gives it (the layer's ``weights``/``bias``): its array, or
        the draw of its initializer (``kernel_initializer``, ...; the layer rule's default)."""
        sources: dict[str, np.ndarray | Draw] = {}
        for given, layer in zip(self.layers, layers_from_spec(self)):
            for parameter, name in zip(layer.rule.parameters, layer.param_names):
                values = getattr(given, parameter.spec_key, None)
                initializer = getattr(given, f"{parameter.kind}_initializer", parameter.initializer)
                sources[str(name)] = (np.array(values, dtype=np.float64) if values is not None
                                      else INITIALIZERS[initializer](layer.param_shape(parameter.kind)))
        return sources

    def initial_params(self) -> dict[str, np.ndarray]:
        """The spec's weights; missing ones drawn from their Keras-named initializer and ``seed``
        (one generator, in parameter order)."""
        rng = np.random.default_rng(self.seed)
        return {name: source.sample(rng) if isinstance(source, Draw) else source
                for name, source in self.initial_sources().items()}

    def with_initial_params(self) -> "Spec":
        """The same spec with every weight and bias written out (nothing left to initializers)."""
        params = self.initial_params()
        layers = [LayerSpec(layer.units, layer.activation,
                            **{p.spec_key: params[str(name)].tolist()
                               for p, name in zip(built.rule.parameters, built.param_names)},
                            type=layer.type, arguments=dict(layer.arguments))
                  for layer, built in zip(self.layers, layers_from_spec(self))]
        return Spec(self.name, self.x, self.y, layers, dict(self.loss), dict(self.optimizer),
                    dict(self.training), self.title, self.seed)

    def require_dense(self, what: str) -> None:
        """Raise a SpecError naming the first layer ``what`` (handouts, notebooks, variants) does
        not support yet: those presenters cover Dense networks; codegen and check cover all."""
        for n, layer in enumerate(self.layers):
            if layer.type != "Dense":
                raise SpecError(self.name, [Problem(f"layers[{n}].type", (
                    f"{what} support Dense layers only so far, found {layer.type}: `symbp codegen` and "
                    f"`symbp check` take this network"))])

    # ------------------------------------------------------------ TOML
    def to_dict(self) -> dict:
        out: dict[str, Any] = {"name": self.name}
        if self.title:
            out["title"] = self.title
        out["seed"] = self.seed
        out["data"] = {"x": self.x, "y": self.y}
        out["layers"] = []
        for layer in self.layers:
            if layer.type != "Dense":
                out["layers"].append(_indexed_layer_table(layer))
                continue
            entry: dict[str, Any] = {"units": layer.units, "activation": layer.activation}
            if layer.weights is not None:
                entry["weights"] = layer.weights
            else:
                entry["kernel_initializer"] = layer.kernel_initializer
            if layer.bias is not None:
                entry["bias"] = layer.bias
            else:
                entry["bias_initializer"] = layer.bias_initializer
            out["layers"].append(entry)
        out["loss"] = dict(self.loss)
        out["optimizer"] = {k: v for k, v in self.optimizer.items() if v is not None}
        out["training"] = dict(self.training)
        if self.variants is not None:
            out["variants"] = self.variants
        return out

    def to_toml(self) -> str:
        import tomli_w
        return tomli_w.dumps(self.to_dict())

    def save(self, path: str | Path) -> None:
        from ..io.files import write_atomically
        write_atomically(Path(path), self.to_toml())

    @classmethod
    def from_dict(cls, data: Any, source: str = "<spec>") -> "Spec":
        with np.errstate(all="ignore"):  # label checks on huge finite values may overflow: no warnings
            return _Validator(source).spec(data)


def _indexed_layer_table(layer: LayerSpec) -> dict:
    """A non-Dense layer's [[layers]] table: type, arguments, kernel and bias (or initializers)."""
    entry: dict[str, Any] = {"type": layer.type, **layer.arguments}
    if layer_rules[layer.type].parameters:
        entry["activation"] = layer.activation
        for key, values in (("kernel", layer.weights), ("bias", layer.bias)):
            if values is not None:
                entry[key] = values
            else:
                entry[f"{key}_initializer"] = getattr(layer, f"{key}_initializer")
    return entry


# ---------------------------------------------------------------- initializers (Keras names)
# INITIALIZERS, Draw, initialize: symbp/rules/initializers.py (each draw runs here and prints into
# generated modules)


# ---------------------------------------------------------------- loading
def builtin_spec_path() -> Path:
    return Path(str(resources.files("symbp") / "examples" / f"{BUILTIN_EXAMPLE}.toml"))


MAX_SPEC_BYTES = 16 * 2**20


def load_spec(path: str | Path | None = None) -> Spec:
    """Read and validate a spec file; ``None`` means the built-in example."""
    from ..io.files import not_a_regular_file
    path = builtin_spec_path() if path is None else Path(path)
    source = str(path)
    why = not_a_regular_file(path)
    if why is not None:
        raise SpecError(source, [Problem("", why)])
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
        if len(raw) > MAX_SPEC_BYTES:
            raise SpecError(source, [Problem("", f"larger than {MAX_SPEC_BYTES // 2**20} MB: "
                                                 "not a spec file")])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise SpecError(source, [Problem("", "no such file")]) from None
    except IsADirectoryError:
        raise SpecError(source, [Problem("", "is a directory, not a spec file")]) from None
    except PermissionError:
        raise SpecError(source, [Problem("", "not readable (permission denied)")]) from None
    except UnicodeDecodeError as err:
        raise SpecError(source, [Problem("", f"not UTF-8 text ({err.reason} at byte {err.start})")]) from None
    except OSError as err:
        raise SpecError(source, [Problem("", f"cannot be read ({err.strerror})")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(source, [Problem("", _toml_message(err))]) from None
    except ValueError as err:   # Python's limit on converting integers of over 4300 digits
        raise SpecError(source, [Problem("", f"a number too long to read ({_shown(str(err))})")]) from None
    except RecursionError:
        raise SpecError(source, [Problem("", "not valid TOML: arrays or tables nested too deeply")]) from None
    return Spec.from_dict(data, source)


def _toml_message(err: tomllib.TOMLDecodeError) -> str:
    """tomllib's message with its position first: 'TOML syntax error at line 3, column 5: ...'."""
    message = str(err)
    found = re.fullmatch(r"(.*) \(at (line \d+, column \d+|end of document)\)", message, re.S)
    if found:
        return f"TOML syntax error at {found.group(2)}: {found.group(1)}"
    return f"TOML syntax error: {message}"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
#: module names a generated ``<name>.py`` must not shadow (it sits beside the user's scripts),
#: besides every module importable here (see :func:`shadows_a_module`)
RESERVED_NAMES = frozenset(sys.stdlib_module_names) | {"numpy", "np", "symbp", "sympy", "keras",
                                                       "tensorflow", "jinja2", "click"}


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


#: sizes past which a spec is not a teaching example (and would make huge literals or slow runs);
#: "parameters" (weights and biases in all), "batch_values" (one batch's inputs and every
#: layer's outputs, batch_size x (features + all units)) and "data_values" (samples x (features
#: + outputs), about what a 16 MB spec file holds) keep every command within ~2 GB of memory
LIMITS = {"layers": 32, "units": 1024, "features": 1024, "samples": 10_000, "epochs": 10_000,
          "seed": 2**32 - 1, "parameters": 2**22, "batch_values": 2**22, "data_values": 2**23}
TOP_KEYS = {"name", "title", "seed", "data", "layers", "loss", "optimizer", "training", "variants"}
LAYER_KEYS = {"units", "activation", "weights", "bias", "kernel_initializer", "bias_initializer"}
TRAINING_KEYS = {"batch_size", "epochs", "shuffle"}
DATA_KEYS = {"x", "y"}
VARIANT_ITEMS = ("weights", "bias", "x", "y")
VARIANT_KEYS = {"vary", "step", "range", "max_abs_z", "kink_margin", *VARIANT_ITEMS}
#: what ``symbp variants`` draws when a spec has no [variants] table (or leaves a key out)
VARIANT_DEFAULTS = {"vary": ["weights"], "step": 0.1, "range": [-1.0, 1.0], "max_abs_z": 3.0,
                    "kink_margin": 0.05}
#: a variants grid's values are k * step with |k| at most this (integers exact in a float64)
MAX_GRID_MULTIPLE = 2**53


def _shown(value: Any, limit: int = 60) -> str:
    """A value as the message shows it: repr'd, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _key(key: Any) -> str:
    """A table key as a message shows it: bare when it is a plain name, else repr'd and cut."""
    return key if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,40}", key) else _shown(key, 40)


def _nearest(name: str, options) -> str:
    """' (did you mean ...?)' from symbp.wording: common aliases (lr), then edit distance."""
    return did_you_mean(name, options)


def _as_rows(values: list, shown: int = 3) -> str:
    """A flat array as the rows it probably meant, one value per row: [[0], [1], [2]]."""
    rows = ", ".join(f"[{_shown(v, 20)}]" for v in values[:shown])
    return f"[{rows}{', ...' if len(values) > shown else ''}]"


def _is_finite_number(value: Any) -> bool:
    """An int or float (not a bool) that is finite as a float64 (huge integers are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _kind(value: Any) -> str:
    """What a value is, as a message says it: 'a string ('3')', 'an array', 'a table'."""
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)
    return f"{kind} ({_shown(value, 30)})" if isinstance(value, (str, bool)) else kind


def _class_index_hint(loss: Optional[str], y: np.ndarray, units: Optional[int]) -> str:
    """For categorical_crossentropy given one class index per sample ([[2], [0], ...]): the
    loss that takes labels in that form, since one-hot rows are what it expects."""
    if loss != "categorical_crossentropy" or y.shape[1] != 1 or units in (None, 1):
        return ""
    if not (np.all(y == np.round(y)) and y.min() >= 0 and y.max() < units):
        return ""
    example = ", ".join("1" if k == 1 else "0" for k in range(units))
    return ("; these look like class indices: use loss sparse_categorical_crossentropy for "
            f"them, or write each label one-hot ([{example}] for class 1)")


class _Validator:
    """Walks a spec mapping, collecting every problem before raising one SpecError."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, where: str, message: str) -> None:
        if Problem(where, message) not in self.problems:
            self.problems.append(Problem(where, message))

    def unknown_keys(self, table: dict, allowed: set, where: str) -> None:
        for key in table:
            if key not in allowed:
                self.problem(f"{where}{_key(key)}",
                             f"unknown key{_nearest(str(key), allowed)}")

    def table(self, data: dict, key: str, required: bool = True) -> dict:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(key, "missing (required table)")
            return {}
        if not isinstance(value, dict):
            self.problem(key, f"expected a table, found {_kind(value)}")
            return {}
        return value

    def named_table(self, data: dict, key: str) -> dict:
        """A required table whose ``name`` key is required too ([loss], [optimizer])."""
        table = self.table(data, key)
        if key in data and isinstance(data[key], dict) and "name" not in table:
            self.problem(f"{key}.name", "missing (required)")
        return table

    def at_most(self, value: Any, where: str, limit_name: str, what: str) -> None:
        if value is not None and value > LIMITS[limit_name]:
            self.problem(where, f"at most {LIMITS[limit_name]} {what}, found {value}")

    def number(self, value: Any, where: str, *, integer=False, positive=False) -> Optional[float]:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(where, f"expected {'an integer' if integer else 'a number'}, found {_kind(value)}")
            return None
        if integer and not isinstance(value, int):
            self.problem(where, f"expected an integer, found {value!r}")
            return None
        if not _is_finite_number(value):
            self.problem(where, f"expected a finite number, found {_shown(value)}")
            return None
        if positive and value <= 0:
            self.problem(where, f"must be positive, found {value!r}")
            return None
        return value

    def in_range(self, value: Any, where: str, interval: Interval) -> Optional[float]:
        """A rule's argument: a number in ``interval`` that stays finite, and in ``interval``,
        when Keras rounds it to float32 (|x| <= 3.4e38; beta_1 = 0.9999999999 is 1.0 there,
        and Adam's 1 - beta_1^t is 0; see symbp.rules.ranges)."""
        if self.number(value, where) is None:
            return None
        if not finite_in_float32(value):
            self.problem(where, f"must be at most {FLOAT32_MAX:.4g} in size (Keras rounds it to "
                                f"float32), found {_shown(value)}")
            return None
        if value not in interval:
            self.problem(where, f"must be {interval.requirement()}, found {value!r}")
            return None
        if float32(value) not in interval:
            self.problem(where, f"must be {interval.requirement()} also as Keras rounds it to float32 "
                                f"({float32(value)!r}), found {value!r}")
            return None
        return value

    def matrix(self, value: Any, where: str, rows: Optional[int] = None,
               cols: Optional[int] = None) -> Optional[np.ndarray]:
        """A rectangular array of finite numbers, optionally of a given shape."""
        if isinstance(value, list) and value and not any(isinstance(r, (list, dict)) for r in value):
            self.problem(where, f"must be 2-D, an array of rows (one per sample), found a flat array: "
                                f"write {_as_rows(value)}")
            return None
        if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
            self.problem(where, f"expected a non-empty 2-D array (an array of rows), found {_kind(value)}")
            return None
        widths = {len(r) for r in value}
        if len(widths) != 1 or 0 in widths:
            self.problem(where, f"rows must all have the same non-zero length, found lengths {sorted(widths)}")
            return None
        bad = [(r, c) for r, row in enumerate(value) for c, v in enumerate(row) if not _is_finite_number(v)]
        if bad:
            r, c = bad[0]
            self.problem(f"{where}[{r}][{c}]", f"expected a finite number, found {_shown(value[r][c])}"
                         + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
            return None
        array = np.array(value, dtype=np.float64)
        if (rows is not None and array.shape[0] != rows) or (cols is not None and array.shape[1] != cols):
            self.problem(where, f"expected shape ({rows if rows is not None else 'any'} x "
                                f"{cols if cols is not None else 'any'}), found {array.shape[0]} x {array.shape[1]}")
            return None
        return array

    def vector(self, value: Any, where: str, length: int) -> Optional[np.ndarray]:
        if not isinstance(value, list) or any(isinstance(v, list) for v in value):
            self.problem(where, f"expected an array of {plural(length, 'number')}, found {_kind(value)}")
            return None
        bad = [c for c, v in enumerate(value) if not _is_finite_number(v)]
        if bad:
            self.problem(f"{where}[{bad[0]}]", f"expected a finite number, found {_shown(value[bad[0]])}")
            return None
        if len(value) != length:
            self.problem(where, f"expected {plural(length, 'number')} (the layer's units), found {len(value)}")
            return None
        return np.array(value, dtype=np.float64)

    def name_in(self, registry, value: Any, where: str) -> Optional[str]:
        if not isinstance(value, str):
            self.problem(where, f"expected a name (string), found {_kind(value)}")
            return None
        try:
            return registry.canonical(value)
        except UnknownName as err:
            hint = f" (did you mean {' or '.join(map(repr, err.suggestions))}?)" if err.suggestions else ""
            self.problem(where, f"unknown {registry.kind} {_shown(value)}{hint}")
            return None

    # ------------------------------------------------------------ the whole spec
    def spec(self, data: Any) -> Spec:
        if not isinstance(data, dict):
            raise SpecError(self.source, [Problem("", f"expected a table at the top, found {_kind(data)}")])
        self.unknown_keys(data, TOP_KEYS, "")
        name = data.get("name")
        if name is None:
            self.problem("name", "missing (required: names the generated module)")
        elif not isinstance(name, str) or not _IDENTIFIER.match(name) or keyword.iskeyword(name):
            self.problem("name", f"must be a Python identifier of at most 64 letters, digits and "
                                 f"underscores (it names the generated module), found {_shown(name)}")
        elif name.startswith("__") or shadows_a_module(name):
            self.problem("name", f"{name!r} is the name of an installed Python module; <name>.py "
                                 f"would shadow it where it is written: choose another name")
        title = data.get("title", "")
        if not isinstance(title, str):
            self.problem("title", f"expected a string, found {_kind(title)}")
            title = ""
        elif len(title) > 200 or not title.isprintable():
            self.problem("title", f"must be one line of at most 200 printable characters, found "
                                  f"{_shown(title)}")
        seed = data.get("seed", 0)
        if self.number(seed, "seed", integer=True) is not None:
            if seed < 0:
                self.problem("seed", f"must be 0 or more, found {seed}")
            self.at_most(seed, "seed", "seed", "(a 32-bit seed)")

        data_table = self.table(data, "data")
        self.unknown_keys(data_table, DATA_KEYS, "data.")
        x = y = None
        if isinstance(data.get("data"), dict):
            for key, what in (("x", "samples x features"), ("y", "samples x outputs")):
                if key not in data_table:
                    self.problem(f"data.{key}", f"missing (required: {what})")
            x = self.data_x(data_table["x"], data.get("layers")) if "x" in data_table else None
            y = self.matrix(data_table["y"], "data.y") if "y" in data_table else None
        if x is not None and y is not None and x.shape[0] != y.shape[0]:
            self.problem("data.y", f"has {plural(y.shape[0], 'sample')} but data.x has {x.shape[0]}")
        if x is not None:
            self.at_most(x.shape[0], "data.x", "samples", "samples (rows)")
            self.at_most(int(np.prod(x.shape[1:])), "data.x", "features", "features (columns)")

        layers = self.layers(data.get("layers"), None if x is None else x.shape[1:])
        # the label width is checked against the output layer only when every layer is valid
        complete = isinstance(data.get("layers"), list) and len(layers) == len(data["layers"])
        self.output_layer = len(layers) - 1
        loss = self.loss(self.named_table(data, "loss"), y, layers[-1].units if layers and complete else None)
        optimizer = self.optimizer(self.named_table(data, "optimizer"))
        training = self.training(self.table(data, "training", required=False))
        variants = self.variants(data["variants"]) if "variants" in data else None
        if x is not None and y is not None and x.shape[0] == y.shape[0]:
            self.at_most(x.size + y.size, "data", "data_values",
                         "numbers of data (samples x (features + outputs))")
        if x is not None and x.ndim == 2 and layers and all(layer.type == "Dense" for layer in layers):
            self.working_sizes(x.shape, [layer.units for layer in layers], training["batch_size"])
        elif x is not None and complete and not self.problems:
            self.indexed_working_sizes(x.shape, layers, training["batch_size"])
        if self.problems:
            raise SpecError(self.source, self.problems)
        return Spec(name, x.tolist(), y.tolist(), layers, loss, optimizer, training, title, seed, variants)

    def working_sizes(self, data_shape: tuple[int, int], units: list[int], batch_size: int) -> None:
        """The sizes memory grows with: parameters sum((fan_in + 1) * units) over the layers (each
        kept with its gradient and optimizer slots), and one batch's values,
        min(batch_size, samples) * (features + sum(units)) (every z and a of the batch, each
        with its delta in back-propagation)."""
        samples, features = data_shape
        widths = [features, *units]
        parameters = sum((fan_in + 1) * width for fan_in, width in zip(widths, widths[1:]))
        self.at_most(parameters, "layers", "parameters", "parameters (weights and biases in all)")
        batch_values = min(batch_size, samples) * sum(widths)
        self.at_most(batch_values, "training.batch_size", "batch_values",
                     "values in one batch (batch_size x (features + all units))")

    def data_x(self, value: Any, layers: Any) -> Optional[np.ndarray]:
        """data.x: samples x features, or (samples, steps.., channels) when the first layer reads
        windows (Conv2D: (samples, height, width, channels))."""
        first = layers[0] if isinstance(layers, list) and layers and isinstance(layers[0], dict) else {}
        kind = first.get("type", "Dense")
        rank = layer_rules[kind].gather.spatial if kind in layer_rules and layer_rules[kind].indexed else 0
        if not rank:
            return self.matrix(value, "data.x")
        try:
            array = np.array(value, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            array = None
        if array is None or array.ndim != rank + 2 or array.size == 0:
            self.problem("data.x", f"{kind} needs a {rank + 2}-D array (samples, "
                                   f"{'steps' if rank == 1 else 'height, width'}, channels) of numbers")
            return None
        if not np.all(np.isfinite(array)):
            self.problem("data.x", "expected finite numbers only")
            return None
        return array

    def layers(self, value: Any, inputs: Optional[tuple]) -> list[LayerSpec]:
        if value is None:
            self.problem("layers", "missing (required: one [[layers]] table per Dense layer)")
            return []
        if not isinstance(value, list):
            self.problem("layers", f"expected an array of tables ([[layers]]), found {_kind(value)}")
            return []
        if not value:
            self.problem("layers", "is empty: a network needs at least one layer")
            return []
        self.at_most(len(value), "layers", "layers", "layers")
        out = []
        fan_in = inputs
        for n, table in enumerate(value):
            where = f"layers[{n}]"
            if not isinstance(table, dict):
                self.problem(where, f"expected a table ([[layers]]), found {_kind(table)}")
                fan_in = None
                continue
            kind = self.name_in(layer_rules, table.get("type", "Dense"), f"{where}.type")
            if kind is None:
                fan_in = None
                continue
            if kind != "dense" or (fan_in is not None and len(fan_in) != 1):
                layer, fan_in = self.indexed_layer(table, where, layer_rules[kind], fan_in)
                if layer is not None:
                    out.append(layer)
                continue
            fan_in = None if fan_in is None else fan_in[0]
            self.unknown_keys(table, LAYER_KEYS | {"type"}, where + ".")
            units = table.get("units")
            if units is None:
                self.problem(f"{where}.units", "missing (required)")
            elif self.number(units, f"{where}.units", integer=True, positive=True) is None:
                units = None
            elif units > LIMITS["units"]:
                self.at_most(units, f"{where}.units", "units", "units")
                units = None
            activation = self.name_in(activations, table.get("activation", "linear"), f"{where}.activation")
            weights = table.get("weights")
            if weights is not None and self.matrix(weights, f"{where}.weights", fan_in, units) is None:
                weights = None
            bias = table.get("bias")
            if bias is not None and units is not None and self.vector(bias, f"{where}.bias", units) is None:
                bias = None
            initializers = {}
            for key, default in (("kernel_initializer", "glorot_uniform"), ("bias_initializer", "zeros")):
                init = table.get(key, default)
                if not isinstance(init, str) or init not in INITIALIZERS:
                    self.problem(f"{where}.{key}", f"unknown initializer {_shown(init)}"
                                                   f"{_nearest(str(init), INITIALIZERS)}")
                initializers[key] = init
            if units is not None and activation is not None:
                out.append(LayerSpec(units, activation, weights, bias, **initializers))
            fan_in = None if units is None else (units,)
        return out

    def indexed_layer(self, table: dict, where: str, rule, shape: Optional[tuple]):
        """A layer of a type other than Dense (Conv2D, pooling, Flatten): its Keras arguments
        checked, its output shape computed; (LayerSpec or None, its output shape or None)."""
        from ..spec.layer_arguments import check_layer
        return check_layer(self, table, where, rule, shape)

    def indexed_working_sizes(self, data_shape: tuple, layers: list, batch_size: int) -> None:
        """Parameters and one batch's values of a network with indexed layers, from its shapes."""
        built = build_layers(tuple(data_shape[1:]), [(l.type, {"units": l.units, "activation": l.activation,
                                                               **l.arguments}) for l in layers])
        parameters = sum(int(np.prod(layer.param_shape(p.kind))) for layer in built for p in layer.rule.parameters)
        if parameters == 0:
            self.problem("layers", "no layer with parameters (Conv2D, Dense, ...): nothing to train")
        self.at_most(parameters, "layers", "parameters", "parameters (weights and biases in all)")
        values = min(batch_size, data_shape[0]) * sum(int(np.prod(s)) for s in
                                                      [data_shape[1:], *(layer.output_shape for layer in built)])
        self.at_most(values, "training.batch_size", "batch_values",
                     "values in one batch (batch_size x (input and every layer's output))")

    def loss(self, table: dict, y: Optional[np.ndarray], units: Optional[int]) -> dict:
        """The loss's name and arguments; checks the labels' shape and values against it."""
        name = self.name_in(losses, table["name"], "loss.name") if "name" in table else None
        rule = losses[name] if name else None
        self.unknown_keys(table, {"name"} | set(rule.arguments if rule else ()), "loss.")
        if y is not None and units is not None and not (rule and rule.sparse_labels) \
                and y.shape[1] != units:
            self.problem("data.y", f"has {plural(y.shape[1], 'column')} but the output layer "
                                   f"(layers[{self.output_layer}]) has {plural(units, 'unit')}"
                                   + _class_index_hint(name, y, units))
        if table and "name" not in table:
            self.problem("loss.name", "missing (required)")
        if rule is None:
            return {}
        if y is not None:
            if rule.sparse_labels:
                if y.shape[1] != 1:
                    self.problem("data.y", f"{name} needs one class index per sample (a single "
                                           f"column, [[2], [0], ...]), found {plural(y.shape[1], 'column')}")
                elif units is not None and not (np.all(y == np.round(y)) and y.min() >= 0 and y.max() < units):
                    self.problem("data.y", f"{name} needs class indices 0 .. {units - 1} "
                                           f"(the output layer's units)")
            if name == "categorical_crossentropy" and not np.allclose(y.sum(axis=1), 1.0, atol=1e-9):
                self.problem("data.y", "categorical_crossentropy needs label rows that sum to 1 "
                                       "(one-hot or probabilities)")
            if name == "binary_crossentropy" and (y.min() < 0 or y.max() > 1):
                self.problem("data.y", "binary_crossentropy needs labels between 0 and 1")
        out: dict[str, Any] = {"name": name}
        for key in rule.arguments:
            if key in table and self.in_range(table[key], f"loss.{key}", LOSS_ARGUMENT_RANGES[key]) is not None:
                out[key] = table[key]
        return out

    def optimizer(self, table: dict) -> dict:
        if not table:
            return {}
        if "name" not in table:
            self.problem("optimizer.name", "missing (required)")
            return {}
        name = self.name_in(optimizers, table["name"], "optimizer.name")
        if name is None:
            return {}
        rule = optimizers[name]
        out: dict[str, Any] = {"name": name}
        for key, value in table.items():
            if key == "name":
                continue
            where = f"optimizer.{key}"
            if key not in rule.defaults:
                self.problem(f"optimizer.{_key(key)}",
                             f"not an argument of {name}{_nearest(str(key), rule.defaults)}")
                continue
            default = rule.defaults[key]
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    self.problem(where, f"expected true or false, found {_kind(value)}")
                    continue
            elif self.in_range(value, where, OPTIMIZER_ARGUMENT_RANGES[key]) is None:
                continue
            elif not isinstance(default, int):
                value = float(value)  # Keras wants floats (SGD rejects momentum = 0)
            out[key] = value
        out.setdefault("learning_rate", rule.defaults["learning_rate"])
        return out

    def training(self, table: dict) -> dict:
        self.unknown_keys(table, TRAINING_KEYS, "training.")
        out = {"batch_size": 32, "epochs": 1, "shuffle": False}
        for key in ("batch_size", "epochs"):
            if key in table and self.number(table[key], f"training.{key}", integer=True,
                                            positive=True) is not None:
                out[key] = table[key]
        self.at_most(out["epochs"], "training.epochs", "epochs", "epochs")
        # a batch past the samples limit is the whole data (same as batch_size = samples); no
        # larger number reaches Keras's or NumPy's integer arithmetic
        self.at_most(out["batch_size"], "training.batch_size", "samples",
                     "samples per batch (the most a spec has)")
        if "shuffle" in table:
            if table["shuffle"] is not False:
                self.problem("training.shuffle", "must be false: symbp replays model.fit(shuffle=False)")
        return out

    def variants(self, table: Any) -> Optional[dict]:
        """[variants]: vary (items), step and range of the value grid, max_abs_z, kink_margin; per-item
        sub-tables ([variants.x]) override step and range."""
        if not isinstance(table, dict):
            self.problem("variants", f"expected a table, found {_kind(table)}")
            return None
        self.unknown_keys(table, VARIANT_KEYS, "variants.")
        vary = table.get("vary", VARIANT_DEFAULTS["vary"])
        if not isinstance(vary, list) or not vary or not all(isinstance(v, str) for v in vary):
            self.problem("variants.vary", f"expected a non-empty array of names from {list(VARIANT_ITEMS)}, "
                                          f"found {_kind(vary)}")
        else:
            for item in vary:
                if item not in VARIANT_ITEMS:
                    self.problem("variants.vary", f"unknown item {item!r}{_nearest(item, VARIANT_ITEMS)} "
                                                  f"(one of {', '.join(VARIANT_ITEMS)})")
            if len(set(vary)) != len(vary):
                self.problem("variants.vary", "lists an item twice")
        out: dict[str, Any] = {"vary": list(vary) if isinstance(vary, list) else []}
        if "max_abs_z" in table and self.number(table["max_abs_z"], "variants.max_abs_z", positive=True) is not None:
            out["max_abs_z"] = table["max_abs_z"]
        if "kink_margin" in table and self.number(table["kink_margin"], "variants.kink_margin") is not None:
            if table["kink_margin"] < 0:
                self.problem("variants.kink_margin", f"must be 0 or more, found {table['kink_margin']!r}")
            else:
                out["kink_margin"] = table["kink_margin"]
        self.grid(table, "variants.", out, VARIANT_DEFAULTS["step"], VARIANT_DEFAULTS["range"])
        for item in VARIANT_ITEMS:
            if item in table:
                sub = table[item]
                if not isinstance(sub, dict):
                    self.problem(f"variants.{item}", f"expected a table (step, range), found {_kind(sub)}")
                    continue
                self.unknown_keys(sub, {"step", "range"}, f"variants.{item}.")
                out[item] = {}
                self.grid(sub, f"variants.{item}.", out[item], out.get("step", VARIANT_DEFAULTS["step"]),
                          out.get("range", VARIANT_DEFAULTS["range"]))
        return out

    def grid(self, table: dict, where: str, out: dict, default_step: float, default_range: list) -> None:
        """step (positive) and range [low, high] holding at least two multiples of step, each
        k * step with |k| <= MAX_GRID_MULTIPLE (2^53: k exact, low / step finite)."""
        step, bounds = default_step, default_range
        if "step" in table and self.number(table["step"], where + "step", positive=True) is not None:
            step = out["step"] = table["step"]
        if "range" in table:
            value = table["range"]
            if not isinstance(value, list) or len(value) != 2 or not all(map(_is_finite_number, value)):
                self.problem(where + "range", f"expected [low, high] (two finite numbers), found {_shown(value)}")
                return
            if value[0] >= value[1]:
                self.problem(where + "range", f"low must be below high, found {value!r}")
                return
            bounds = out["range"] = list(value)
        if not max(abs(bounds[0] / step), abs(bounds[1] / step)) <= MAX_GRID_MULTIPLE:
            self.problem(where + "range", f"{_shown(bounds)} reaches past {MAX_GRID_MULTIPLE:.3g} "
                                          f"multiples of step {step!r} (choose a larger step or a smaller range)")
            return
        if math.floor(bounds[1] / step + 1e-9) - math.ceil(bounds[0] / step - 1e-9) < 1:
            self.problem(where + "range", f"{bounds!r} holds fewer than two multiples of step {step!r}")


def dense(units: int, activation: str = "linear", weights=None, bias=None, **initializers) -> dict:
    """One Dense layer for :func:`network` (Keras names; weights (inputs, units), bias (units,))."""
    layer = {"units": units, "activation": activation, **initializers}
    if weights is not None:
        layer["weights"] = np.asarray(weights, dtype=np.float64).tolist()
    if bias is not None:
        layer["bias"] = np.asarray(bias, dtype=np.float64).tolist()
    return layer


def network(name: str, x, y, layers: list[dict], loss: str | dict, optimizer: str | dict,
            *, batch_size: int = 32, epochs: int = 1, title: str = "", seed: int = 0) -> Spec:
    """Build and validate a spec in code: the Python mirror of the TOML file.

    >>> spec = network("tiny", [[1.0, 2.0]], [[1.0]], [dense(1, "sigmoid")], "mse",
    ...                {"name": "sgd", "learning_rate": 0.1}, batch_size=1)
    """
    data = {"name": name, "title": title, "seed": seed,
            "data": {"x": np.asarray(x, dtype=np.float64).tolist(),
                     "y": np.asarray(y, dtype=np.float64).tolist()},
            "layers": layers,
            "loss": {"name": loss} if isinstance(loss, str) else dict(loss),
            "optimizer": {"name": optimizer} if isinstance(optimizer, str) else dict(optimizer),
            "training": {"batch_size": batch_size, "epochs": epochs, "shuffle": False}}
    return Spec.from_dict(data, source=f"network {name!r}")

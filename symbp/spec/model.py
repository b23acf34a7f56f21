"""The spec as typed objects: the network (:class:`Spec`), its layers, loss, optimizer and training.

The TOML file's tables map one to one onto these: ``[[layers]]`` onto :class:`LayerSpec` (its
parameters by Keras variable name, ``kernel`` and ``bias``), ``[loss]`` onto :class:`LossSpec`,
``[optimizer]`` onto :class:`OptimizerSpec` (a name and its arguments by Keras's argument names)
and ``[training]`` onto :class:`TrainingSpec`. Reading a file is :mod:`.load`, checking a mapping
:mod:`.validate`, building one in code :mod:`.build`; ``Spec.to_dict()`` / ``from_dict()``
round-trip the file's format.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from ..derivation.network import layers_from_spec, param_names as network_param_names
from ..rules.initializers import INITIALIZERS, Draw, initialize  # noqa: F401 (part of the spec's API)


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


# ---------------------------------------------------------------- the tables
@dataclass
class LayerSpec:
    """One ``[[layers]]`` table: the layer's Keras class (``type``), its arguments, and each
    parameter by its Keras variable name (``kernel`` (inputs x units), ``bias`` (units,)), or
    None to draw it from ``<kind>_initializer``. A layer type with other parameters subclasses
    this with a field per parameter (``Conv2D``'s ``kernel`` has the same name)."""
    units: int
    activation: str = "linear"
    kernel: Optional[list] = None
    bias: Optional[list] = None
    kernel_initializer: str = "glorot_uniform"
    bias_initializer: str = "zeros"
    type: str = "Dense"
    #: False keeps the bias as given (textbook examples that update the weights only)
    bias_trainable: bool = True
    #: its Keras arguments besides units and activation (Conv2D's filters, kernel_size,
    #: strides, padding; pooling's pool_size, ...), by Keras's names; Dense: none
    arguments: dict = field(default_factory=dict)

    @property
    def weights(self) -> Optional[list]:
        """Dense's ``kernel`` by the name the spec file gives it (``weights``)."""
        return self.kernel

    def parameter(self, kind: str) -> Optional[list]:
        """The values given for its parameter ``kind`` (a Keras variable name), or None."""
        return getattr(self, kind, None)

    def initializer(self, kind: str, default: str) -> str:
        """The Keras initializer named for its parameter ``kind`` (``kernel_initializer``)."""
        return getattr(self, f"{kind}_initializer", default)


@dataclass(frozen=True)
class _NamedTable:
    """A table holding a registered rule's ``name`` and its ``arguments`` (every other key)."""
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self):   # a copy: the caller's mapping may change later (a plain dict: pickled to workers)
        object.__setattr__(self, "arguments", dict(self.arguments))

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]):
        """The table as the file writes it: ``name`` and its arguments side by side; an
        argument given as None (a Keras config's unset value) is left out."""
        return cls(table["name"], {k: v for k, v in table.items() if k != "name" and v is not None})

    def to_dict(self) -> dict:
        return {"name": self.name, **self.arguments}


@dataclass(frozen=True)
class LossSpec(_NamedTable):
    """``[loss]``: a loss by Keras name (``huber``) and its arguments (``delta``)."""


@dataclass(frozen=True)
class OptimizerSpec(_NamedTable):
    """``[optimizer]``: an optimizer by Keras name and its arguments by Keras's argument names
    (``learning_rate``, ``momentum``, ...); numbers as floats, switches as booleans."""


@dataclass(frozen=True)
class TrainingSpec:
    """``[training]``: ``model.fit``'s batch_size and epochs (Keras's defaults 32 and 1); symbp
    replays ``shuffle=False`` only."""
    batch_size: int = 32
    epochs: int = 1
    shuffle: bool = False

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> "TrainingSpec":
        return cls(**{k: table[k] for k in ("batch_size", "epochs", "shuffle") if k in table})

    def to_dict(self) -> dict:
        return {"batch_size": self.batch_size, "epochs": self.epochs, "shuffle": self.shuffle}


def _typed(value, kind):
    """``value`` as ``kind`` (a mapping as the file writes it is accepted too)."""
    return value if isinstance(value, kind) else kind.from_mapping(value)


# ---------------------------------------------------------------- the network
@dataclass
class Spec:
    name: str
    x: list
    y: list
    layers: list[LayerSpec]
    loss: LossSpec = field(default_factory=lambda: LossSpec("mean_squared_error"))
    optimizer: OptimizerSpec = field(default_factory=lambda: OptimizerSpec("sgd", {"learning_rate": 0.01}))
    training: TrainingSpec = field(default_factory=TrainingSpec)
    title: str = ""
    seed: int = 0
    #: the [variants] table as validated (what ``symbp variants`` draws afresh); None when absent
    variants: Optional[dict] = None
    #: "keras" (Keras's names, Dense layers) or "torch" (torch.nn / torch.optim names, Linear layers)
    framework: str = "keras"
    #: the [handout] table as validated (symbp.spec.handout: the student sheet's scaffolding and
    #: asked entries; the CLI's flags override it); None when absent
    handout: Optional[dict] = None

    @property
    def class_indices(self) -> bool:
        """The labels are one class index per sample (a single column for a wider output)."""
        return len(self.y[0]) == 1 and self.layers[-1].units > 1

    def __post_init__(self):
        self.loss = _typed(self.loss, LossSpec)
        self.optimizer = _typed(self.optimizer, OptimizerSpec)
        self.training = _typed(self.training, TrainingSpec)
        if self.framework == "torch":   # a torch spec's [[layers]] are nn.Linear (weight: units x inputs)
            self.layers = [replace(layer, type="Linear") if layer.type == "Dense" else layer for layer in self.layers]

    # ------------------------------------------------------------ derived views
    @property
    def widths(self) -> list[int]:
        return [len(self.x[0])] + [layer.units for layer in self.layers]

    @property
    def param_names(self) -> list[str]:
        return [str(name) for name in network_param_names(layers_from_spec(self))]

    @property
    def fixed_params(self) -> list[str]:
        """Parameters training leaves as they are: the biases of layers with bias_trainable = false."""
        return [str(name) for given, layer in zip(self.layers, layers_from_spec(self))
                if not given.bias_trainable for name in layer.param_names if name.kind == "bias"]

    @property
    def batch_size(self) -> int:
        return int(self.training.batch_size)

    @property
    def epochs(self) -> int:
        return int(self.training.epochs)

    def initial_sources(self) -> dict[str, np.ndarray | Draw]:
        """Each parameter as the spec gives it (the layer's ``kernel``/``bias``): its array, or
        the draw of its initializer (``kernel_initializer``, ...; the layer rule's default)."""
        sources: dict[str, np.ndarray | Draw] = {}
        for given, layer in zip(self.layers, layers_from_spec(self)):
            for parameter, name in zip(layer.rule.parameters, layer.param_names):
                values = given.parameter(parameter.kind)
                initializer = given.initializer(parameter.kind, parameter.initializer)
                sources[str(name)] = (np.array(values, dtype=np.float64) if values is not None
                                      else INITIALIZERS[initializer](layer.param_shape(parameter.kind), layer.fan_in))
        return sources

    def initial_params(self) -> dict[str, np.ndarray]:
        """The spec's weights; missing ones drawn from their named initializer and ``seed``
        (one generator, in parameter order)."""
        rng = np.random.default_rng(self.seed)
        return {name: source.sample(rng) if isinstance(source, Draw) else source
                for name, source in self.initial_sources().items()}

    def with_params(self, params: dict[str, np.ndarray]) -> list[LayerSpec]:
        """Its layers with every parameter set from ``params`` (by generated name: W0, b0, ...)."""
        return [replace(layer, **{p.kind: np.asarray(params[str(name)]).tolist()
                                  for p, name in zip(built.rule.parameters, built.param_names)})
                for layer, built in zip(self.layers, layers_from_spec(self))]

    def with_initial_params(self) -> "Spec":
        """The same spec with every weight and bias written out (nothing left to initializers)."""
        return Spec(self.name, self.x, self.y, self.with_params(self.initial_params()), self.loss,
                    self.optimizer, self.training, self.title, self.seed, framework=self.framework,
                    handout=self.handout)

    # ------------------------------------------------------------ TOML
    def to_dict(self) -> dict:
        out: dict[str, Any] = {"name": self.name}
        if self.title:
            out["title"] = self.title
        out["seed"] = self.seed
        if self.framework != "keras":
            out["framework"] = self.framework
        out["data"] = {"x": self.x, "y": self.y}
        out["layers"] = [_layer_table(layer, WEIGHTS_KEY[self.framework]) for layer in self.layers]
        out["loss"] = self.loss.to_dict()
        out["optimizer"] = self.optimizer.to_dict()
        out["training"] = self.training.to_dict()
        if self.variants is not None:
            out["variants"] = self.variants
        if self.handout is not None:
            out["handout"] = self.handout
        return out

    def to_toml(self) -> str:
        import tomli_w
        return tomli_w.dumps(self.to_dict())

    def save(self, path: str | Path) -> None:
        from ..io.files import write_atomically
        write_atomically(Path(path), self.to_toml())

    @classmethod
    def from_dict(cls, data: Any, source: str = "<spec>") -> "Spec":
        """Validate a mapping of the file's format (:func:`symbp.spec.validate.validate_spec`)."""
        from .validate import validate_spec
        with np.errstate(all="ignore"):  # label checks on huge finite values may overflow: no warnings
            return validate_spec(data, source)


#: the layer key of the weight matrix: Keras's kernel (inputs x units), torch's Linear.weight (units x inputs)
WEIGHTS_KEY = {"keras": "weights", "torch": "weight"}


def _layer_table(layer: LayerSpec, weights_key: str = "weights") -> dict[str, Any]:
    """A Dense layer as its ``[[layers]]`` table: the kernel under the file's key ``weights``."""
    from ..rules.layers import layers as layer_rules
    if layer_rules[layer.type].indexed:   # convolution, pooling, Flatten: type and Keras arguments
        return _indexed_layer_table(layer)
    entry: dict[str, Any] = {"units": layer.units, "activation": layer.activation}
    if layer.kernel is not None:
        entry[weights_key] = layer.kernel
    else:
        entry["kernel_initializer"] = layer.kernel_initializer
    if layer.bias is not None:
        entry["bias"] = layer.bias
    else:
        entry["bias_initializer"] = layer.bias_initializer
    if not layer.bias_trainable:
        entry["bias_trainable"] = False
    return entry


def _indexed_layer_table(layer: LayerSpec) -> dict[str, Any]:
    """A non-Dense layer's [[layers]] table: type, arguments, kernel and bias (or initializers)."""
    from ..rules.layers import layers as layer_rules
    entry: dict[str, Any] = {"type": layer.type, **layer.arguments}
    if layer_rules[layer.type].parameters:
        entry["activation"] = layer.activation
        for kind in ("kernel", "bias"):
            values = layer.parameter(kind)
            if values is not None:
                entry[kind] = values
            else:
                entry[f"{kind}_initializer"] = layer.initializer(kind, "")
    return entry


#: names that lived here before the spec package was split (load, validate, build): still
#: importable from ``symbp.spec.model`` for code written against it; new code imports ``symbp.spec``
_MOVED = {"load_spec": "load", "builtin_spec_path": "load", "MAX_SPEC_BYTES": "load",
          "BUILTIN_EXAMPLE": "load", "dense": "build", "network": "build",
          "LIMITS": "validate", "TOP_KEYS": "validate", "LAYER_KEYS": "validate",
          "TRAINING_KEYS": "validate", "DATA_KEYS": "validate", "VARIANT_ITEMS": "validate",
          "VARIANT_KEYS": "validate", "VARIANT_DEFAULTS": "validate", "MAX_GRID_MULTIPLE": "validate",
          "RESERVED_NAMES": "validate", "shadows_a_module": "validate"}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib
        return getattr(importlib.import_module(f"{__package__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""A saved PyTorch ``state_dict`` as a spec: ``symbp spec --from-torch weights.pt --layers ...``.

Only what can be read safely: ``torch.load(path, weights_only=True)``, torch's restricted
unpickler, which rebuilds tensors and containers and refuses any other object (never arbitrary
code). A state_dict holds weights only, so the caller names each Linear layer's activation
(``--layers tanh,tanh,linear``) and the loss and optimizer (torch class names; torch's defaults);
the data comes from ``--data`` as for ``--from-keras``, or is a placeholder to replace.

The state_dict must be a ``nn.Sequential`` of Linear layers (activations hold no parameters):
``<prefix>.weight`` (units x inputs) and ``<prefix>.bias`` (units) per layer, in order, each
layer taking the last one's units. Anything else (a BatchNorm's running_mean, a missing bias,
shapes that do not chain) is named in a one-screen error.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import UnusableInput
from .files import not_a_regular_file
from .from_keras import _check_inputs, _spec_name, load_data
from ..rules import activations, loss_registry, optimizer_registry
from ..spec.model import LIMITS, Spec
from ..wording import plural

#: the largest state_dict file read (4,194,304 float64 parameters, the spec's limit, and room)
MAX_STATE_DICT_BYTES = 64 * 2**20


def load_state_dict(path: Path) -> dict:
    """The file's state_dict as {key: float64 array}, read with torch's weights-only unpickler."""
    from ..witnesses.torch import require_torch
    why = not_a_regular_file(path)
    if why is not None:
        raise UnusableInput(f"{path}: {why} (the state_dict to read)")
    if path.stat().st_size > MAX_STATE_DICT_BYTES:
        raise UnusableInput(f"{path}: larger than {MAX_STATE_DICT_BYTES // 2**20} MB (the most a spec's "
                            f"parameters need)")
    torch = require_torch()
    try:
        with warnings.catch_warnings():   # torch warns of pickle protocols it reads all the same
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False: never, for a file from elsewhere
        raise UnusableInput(f"{path}: not a state_dict symbp can read: torch.load(weights_only=True), "
                            f"which rebuilds tensors and containers only, refused it (save "
                            f"model.state_dict() with torch.save)") from None
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, TypeError) as err:
        raise UnusableInput(f"{path}: not a PyTorch file torch.load can read ({type(err).__name__})") from None
    if not isinstance(state, dict):
        raise UnusableInput(f"{path}: holds {type(state).__name__}, not a state_dict (save model.state_dict())")
    arrays = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise UnusableInput(f"{path}: entry {str(key)[:64]!r} is not a tensor")
        arrays[key] = value.detach().numpy() if not value.is_floating_point() \
            else value.detach().to(torch.float64).numpy()
    return arrays


def linear_layers(state: dict, source: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight, bias) of each Linear layer, in the state_dict's order, checked to chain."""
    prefixes = list(dict.fromkeys(key.rpartition(".")[0] for key in state))
    layers = []
    for prefix in prefixes:
        names = {key.rpartition(".")[2] for key in state if key.rpartition(".")[0] == prefix}
        if names != {"weight", "bias"}:
            raise UnusableInput(f"{source}: {prefix or 'the top level'} holds {sorted(names)[:6]}: symbp reads "
                                f"Linear layers (weight and bias) only")
        weight, bias = state[f"{prefix}.weight" if prefix else "weight"], state[f"{prefix}.bias" if prefix else "bias"]
        if weight.dtype != np.float64 or bias.dtype != np.float64:
            raise UnusableInput(f"{source}: {prefix}'s weight and bias are not floating-point tensors")
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise UnusableInput(f"{source}: {prefix}.weight {weight.shape} and {prefix}.bias {bias.shape} "
                                f"are not a Linear layer's (units x inputs and units)")
        if layers and weight.shape[1] != layers[-1][0].shape[0]:
            raise UnusableInput(f"{source}: {prefix}.weight takes {plural(weight.shape[1], 'input')} but the "
                                f"layer before gives {plural(layers[-1][0].shape[0], 'unit')}")
        layers.append((weight, bias))
    if not layers or len(layers) > LIMITS["layers"]:
        raise UnusableInput(f"{source}: {plural(len(layers), 'Linear layer')} (symbp reads 1 to {LIMITS['layers']})")
    return layers


def _names(value: str, what: str, registry) -> str:
    try:
        return registry.canonical(value)
    except KeyError as err:
        raise UnusableInput(f"--{what}: {err}") from None


def spec_dict_from_torch(path: str | Path, layer_activations: list[str], data: Optional[str | Path] = None,
                         loss: str = "CrossEntropyLoss", optimizer: str = "SGD") -> dict:
    """The spec mapping of a saved state_dict with the named activations, loss and optimizer."""
    path = Path(path)
    layers = linear_layers(load_state_dict(path), str(path))
    if len(layer_activations) != len(layers):
        raise UnusableInput(f"--layers names {plural(len(layer_activations), 'activation')} but {path} holds "
                            f"{plural(len(layers), 'Linear layer')}: name one per layer (linear for none)")
    names = [_names(name.strip(), "layers", activations) for name in layer_activations]
    loss_rule = loss_registry("torch")[_names(loss, "loss", loss_registry("torch"))]
    optimizer_name = optimizer_registry("torch")[_names(optimizer, "optimizer", optimizer_registry("torch"))].name
    inputs, units = layers[0][0].shape[1], layers[-1][0].shape[0]
    if data is not None:
        data_table, training = load_data(data)
        _check_inputs(data_table, inputs, f"{data}: data.x")
    else:
        one_hot = loss_rule.labels_are_distributions or loss_rule.sparse_labels
        data_table = {"x": [[0.0] * inputs], "y": [[0.0]] if one_hot else [[0.0] * units]}
        training = {}
    return {"name": _spec_name(path), "title": "", "seed": 0, "framework": "torch", "data": data_table,
            "layers": [{"units": int(w.shape[0]), "activation": act, "weight": w.tolist(), "bias": b.tolist()}
                       for (w, b), act in zip(layers, names)],
            "loss": {"name": loss_rule.name}, "optimizer": {"name": optimizer_name},
            "training": {k: v for k, v in training.items() if k != "shuffle"}}


def spec_toml_from_torch(path: str | Path, layer_activations: list[str], data: Optional[str | Path] = None,
                         loss: str = "CrossEntropyLoss", optimizer: str = "SGD") -> str:
    """The spec file of a saved state_dict; without ``data``, placeholder data marked for replacing."""
    spec = spec_dict_from_torch(path, layer_activations, data, loss, optimizer)
    text = Spec.from_dict(spec, str(path) if data is None else f"{path} with data from {data}").to_toml()
    header = f"# symbp spec of the PyTorch state_dict {Path(path).name}\n"
    if data is None:
        header += ("# [data] below is a placeholder (a state_dict holds no training data):\n"
                   "# replace x (samples x inputs) and y (as the loss takes them) with your own.\n")
    return header + text

"""The PyTorch witness: a ``framework = "torch"`` spec trained by ``nn.Sequential`` and
``torch.optim`` (float64, or float32), against the generated module's ``train``.

The model is the spec's network as a torch course builds it: ``nn.Linear(inputs, units)`` then
the activation's module, for each layer; the weights copied in (``Linear.weight`` is
(units x inputs), as the spec gives it); batches of consecutive rows (``DataLoader(shuffle=False)``),
each ``zero_grad``, ``loss.backward()``, ``optimizer.step()``; an epoch's loss the batch-size-
weighted mean of the batch losses before each step. :class:`TorchWitness` is registered under
"torch": :func:`symbp.witnesses.compare.check` compares its Run with the generated module's and
the report names it "PyTorch".
"""

from __future__ import annotations

import importlib

import numpy as np

from ..derivation.network import layers_from_spec
from ..rules import activations, torch_losses, torch_optimizers
from ..spec.model import Spec
from .base import Run, Witness, register

#: symbp activation -> (torch.nn module class, its arguments): each the formula symbp states
#: (leaky_relu's slope 0.2 and gelu's erf form, as the activation registry has them)
ACTIVATION_MODULES = {
    "tanh": ("Tanh", {}), "sigmoid": ("Sigmoid", {}), "relu": ("ReLU", {}),
    "leaky_relu": ("LeakyReLU", {"negative_slope": 0.2}), "elu": ("ELU", {}), "selu": ("SELU", {}),
    "softplus": ("Softplus", {}), "softsign": ("Softsign", {}), "silu": ("SiLU", {}),
    "gelu": ("GELU", {}), "softmax": ("Softmax", {"dim": -1}),
}

#: the layer rule's parameter kind -> the torch module's attribute (nn.Linear: weight, bias)
TORCH_ATTRIBUTES = {"kernel": "weight", "bias": "bias"}

INSTALL_HINT = "pip install 'symbp[torch]'"


def require_torch():
    """torch, or an input error (exit 2) that names the extra to install."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        from ..errors import UnusableInput
        raise UnusableInput(f'this spec has framework = "torch": checking it trains the network with '
                            f'PyTorch, which is not installed here ({INSTALL_HINT})') from None


def build_torch_model(spec: Spec, params: dict, dtype):
    """nn.Sequential of each layer rule's torch.nn module (Linear) and its activation's module,
    holding ``params`` (W0, b0, ...: already in torch's layout, weight units x inputs)."""
    torch = require_torch()
    modules, inputs = [], len(spec.x[0])
    for built, layer in zip(layers_from_spec(spec), spec.layers):
        module = getattr(torch.nn, built.rule.name)(inputs, layer.units, dtype=dtype)
        with torch.no_grad():
            for name in built.param_names:
                getattr(module, TORCH_ATTRIBUTES[name.kind]).copy_(torch.as_tensor(params[name.code]))
        modules.append(module)
        activation = activations.canonical(layer.activation)
        if activation != "linear":
            class_name, arguments = ACTIVATION_MODULES[activation]
            modules.append(getattr(torch.nn, class_name)(**arguments))
        inputs = layer.units
    return torch.nn.Sequential(*modules)


def torch_loss(spec: Spec):
    """The torch.nn loss object of the spec's loss (torch's argument names, ``reduction`` too)."""
    torch = require_torch()
    return getattr(torch.nn, torch_losses[spec.loss.name].name)(**spec.loss.arguments)


def torch_optimizer(spec: Spec, parameters):
    """The torch.optim optimizer of the spec's optimizer (a pair such as betas as a tuple)."""
    torch = require_torch()
    rule = torch_optimizers[spec.optimizer.name]
    arguments = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.optimizer.arguments.items()}
    return getattr(torch.optim, rule.name)(parameters, **arguments)


def torch_targets(spec: Spec, y: np.ndarray):
    """The labels as the loss takes them: class indices as a long vector, else float rows."""
    torch = require_torch()
    rule = torch_losses[spec.loss.name]
    if rule.sparse_labels or (rule.either_labels and spec.class_indices):
        return torch.as_tensor(y[:, 0].astype(np.int64))
    return torch.as_tensor(y)


def _epoch(model, loss_fn, optimizer, x, y, batch_size: int) -> float:
    """One epoch over consecutive batches: zero_grad, backward, step; the batch-size-weighted
    mean of the batch losses before each step."""
    total = 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
    return total / len(x)


def torch_train(spec: Spec, dtype: str = "float64") -> tuple[dict[str, np.ndarray], list[float]]:
    """Train the spec's network with torch; (final params by symbp's names, epoch losses)."""
    torch = require_torch()
    torch_dtype = getattr(torch, dtype)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch_dtype)   # torch.optim keeps its step counts in this dtype
    try:
        torch.manual_seed(spec.seed)
        model = build_torch_model(spec, spec.initial_params(), torch_dtype)
        loss_fn, optimizer = torch_loss(spec), torch_optimizer(spec, model.parameters())
        x = torch.as_tensor(np.array(spec.x, dtype=dtype))
        y = torch_targets(spec, np.array(spec.y, dtype=dtype))
        epoch_losses = [_epoch(model, loss_fn, optimizer, x, y, spec.batch_size) for _ in range(spec.epochs)]
        params = [p.detach().numpy().copy() for p in model.parameters()]
    finally:
        torch.set_default_dtype(previous)
    return dict(zip(spec.param_names, params)), epoch_losses


@register
class TorchWitness(Witness):
    """PyTorch: nn.Sequential trained by torch.optim from the spec's initial weights (``train``
    above), its parameters already in the module's layout (Linear.weight is units x inputs)."""
    name = "torch"
    framework = "PyTorch"

    def train(self, spec: Spec, dtype: str = "float64") -> Run:
        if spec.framework != "torch":
            from ..errors import UnusableInput
            raise UnusableInput('the PyTorch witness trains specs with framework = "torch" '
                                f'(this one is written for {spec.framework})')
        params, losses = torch_train(spec, dtype)
        return Run(params, losses)

"""The PyTorch witness: a ``framework = "torch"`` spec trained by ``nn.Sequential`` and
``torch.optim`` (float64, or float32), against the generated module's ``train``.

The model is the spec's network as a torch course builds it: ``nn.Linear(inputs, units)`` then
the activation's module, for each layer; the weights copied in (``Linear.weight`` is
(units x inputs), as the spec gives it); batches of consecutive rows (``DataLoader(shuffle=False)``),
each ``zero_grad``, ``loss.backward()``, ``optimizer.step()``; an epoch's loss the batch-size-
weighted mean of the batch losses before each step. Compared by :mod:`symbp.witnesses.keras`'s
report and tolerance, with "PyTorch" as the witness's name.
"""

from __future__ import annotations

import importlib

import numpy as np

from ..rules import torch_losses, torch_optimizers
from ..spec.model import Spec
from .tolerance import TOLERANCES

#: symbp activation -> (torch.nn module class, its arguments): each the formula symbp states
#: (leaky_relu's slope 0.2 and gelu's erf form, as the activation registry has them)
ACTIVATION_MODULES = {
    "tanh": ("Tanh", {}), "sigmoid": ("Sigmoid", {}), "relu": ("ReLU", {}),
    "leaky_relu": ("LeakyReLU", {"negative_slope": 0.2}), "elu": ("ELU", {}), "selu": ("SELU", {}),
    "softplus": ("Softplus", {}), "softsign": ("Softsign", {}), "silu": ("SiLU", {}),
    "gelu": ("GELU", {}), "softmax": ("Softmax", {"dim": -1}),
}

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
    """nn.Sequential of Linear and activation modules, holding ``params`` (W0, b0, ...)."""
    torch = require_torch()
    modules, inputs = [], len(spec.x[0])
    for position, layer in enumerate(spec.layers):
        linear = torch.nn.Linear(inputs, layer.units, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(params[f"W{position}"]))
            linear.bias.copy_(torch.as_tensor(params[f"b{position}"]))
        modules.append(linear)
        from ..rules import activations
        name = activations.canonical(layer.activation)
        if name != "linear":
            class_name, arguments = ACTIVATION_MODULES[name]
            modules.append(getattr(torch.nn, class_name)(**arguments))
        inputs = layer.units
    return torch.nn.Sequential(*modules)


def torch_loss(spec: Spec):
    """The torch.nn loss object of the spec's [loss] (torch's argument names)."""
    torch = require_torch()
    rule = torch_losses[spec.loss["name"]]
    return getattr(torch.nn, rule.name)(**{k: v for k, v in spec.loss.items() if k != "name"})


def torch_optimizer(spec: Spec, parameters):
    """The torch.optim optimizer of the spec's [optimizer] (a pair such as betas as a tuple)."""
    torch = require_torch()
    rule = torch_optimizers[spec.optimizer["name"]]
    arguments = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.optimizer.items() if k != "name"}
    return getattr(torch.optim, rule.name)(parameters, **arguments)


def torch_targets(spec: Spec, y: np.ndarray):
    """The labels as the loss takes them: class indices as a long vector, else float rows."""
    torch = require_torch()
    if torch_losses[spec.loss["name"]].sparse_labels or (
            torch_losses[spec.loss["name"]].either_labels and spec.class_indices):
        return torch.as_tensor(y[:, 0].astype(np.int64))
    return torch.as_tensor(y)


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
        epoch_losses = []
        for _ in range(spec.epochs):
            total = 0.0
            for start in range(0, len(x), spec.batch_size):
                xb, yb = x[start:start + spec.batch_size], y[start:start + spec.batch_size]
                optimizer.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(xb)
            epoch_losses.append(total / len(x))
        params = [p.detach().numpy().copy() for p in model.parameters()]
    finally:
        torch.set_default_dtype(previous)
    return dict(zip(spec.param_names, params)), epoch_losses


def check(spec: Spec, dtype: str = "float64", module=None):
    """Train with torch and with the generated module; compare every parameter and epoch loss
    (symbp.witnesses.tolerance), as the Keras check does."""
    from .keras import CheckReport, _compare, module_train
    if dtype not in TOLERANCES:
        raise ValueError(f"dtype must be float64 or float32, not {dtype!r}")
    tolerance = TOLERANCES[dtype]
    torch_params, torch_losses_by_epoch = torch_train(spec, dtype)
    params, losses = module_train(spec, dtype, module)
    report = CheckReport(dtype, tolerance.relative, witness="PyTorch")
    for name in spec.param_names:
        report.parameters.append(_compare(name, torch_params[name], params[name], tolerance))
    report.losses = _compare("loss", torch_losses_by_epoch, losses, tolerance)
    for c in report.parameters:   # float32 in must give float32 out
        if params[c.name].dtype != np.dtype(dtype):
            c.match = False
    return report

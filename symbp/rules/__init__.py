"""The rule registries: activations, layers, and per framework the losses and optimizers.

Keras's losses and optimizers are registered by Keras name (:mod:`.losses`, :mod:`.optimizers`),
torch's by their ``torch.nn`` / ``torch.optim`` class names (:mod:`.torch_losses`,
:mod:`.torch_optimizers`): the same name can mean different arithmetic in each (SGD's momentum,
Adam's epsilon), so a spec's ``framework`` chooses the registry its names are read in.
"""

from .activations import Activation, activations
from .losses import Loss, losses
from .optimizers import Optimizer, optimizers
from .registry import Registry, UnknownName
from .torch_losses import torch_losses
from .torch_optimizers import torch_optimizers

#: framework name -> (its losses, its optimizers)
FRAMEWORKS = {"keras": (losses, optimizers), "torch": (torch_losses, torch_optimizers)}
#: framework name -> the name a text gives it ("which PyTorch computes with")
FRAMEWORK_NAMES = {"keras": "Keras", "torch": "PyTorch"}


def loss_registry(framework: str = "keras") -> Registry:
    """The losses of ``framework`` ("keras" or "torch")."""
    return FRAMEWORKS[framework][0]


def optimizer_registry(framework: str = "keras") -> Registry:
    """The optimizers of ``framework`` ("keras" or "torch")."""
    return FRAMEWORKS[framework][1]


__all__ = ["Activation", "FRAMEWORKS", "FRAMEWORK_NAMES", "Loss", "Optimizer", "Registry", "UnknownName", "activations",
           "loss_registry", "losses", "optimizer_registry", "optimizers", "torch_losses", "torch_optimizers"]

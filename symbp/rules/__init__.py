"""The rule registries: activations, losses, optimizers, each by Keras name."""

from .activations import Activation, activations
from .losses import Loss, losses
from .optimizers import Optimizer, optimizers
from .registry import Registry, UnknownName

__all__ = ["Activation", "Loss", "Optimizer", "Registry", "UnknownName",
           "activations", "losses", "optimizers"]

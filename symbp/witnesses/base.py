"""What every witness is: a framework (or method) that trains a spec on its own and says what it got.

A witness is a class registered here by its framework's name (``"keras"``, ``"torch"``):
``train(spec, dtype)`` trains the spec's network in ``dtype`` from the spec's initial parameters
and returns a :class:`Run`. The comparison with the generated module
(:func:`symbp.witnesses.compare.check`) and its report (:mod:`symbp.witnesses.report`) are the
same for every witness; so is the tolerance (:mod:`symbp.witnesses.tolerance`). A new framework
is one new class (``witnesses/torch.py``: build the model from the layer rules, train, read its
weights back in the module's layout), registered with :func:`register` and its module named in
:data:`BUILT_IN` (imported on first use).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..rules.registry import Registry
from .tolerance import TOLERANCES, Tolerance


@dataclass
class Run:
    """What a witness got, named and shaped as the generated module names and shapes it.

    ``params``: the parameters after training, by ParamName code (``W0``, ``b0``, ...) in the
    module's (Keras's) layout; ``epoch_losses``: the mean loss of each epoch, as ``model.fit``'s
    history; ``gradients``: dL/dp at the initial parameters over all the data as one batch, by
    the same names, where the witness has them (None where it does not; a gradient witness such
    as finite differences has only these).
    """
    params: dict[str, np.ndarray] | None
    epoch_losses: list[float] | None
    gradients: dict[str, np.ndarray] | None = None


class Witness:
    """A framework that trains a spec independently of symbp's derivation (see the module)."""
    #: the registry key: ``symbp check --witness keras``
    name: ClassVar[str] = ""
    #: how the report names it: "Keras:" lines, "Everything matches Keras."
    framework: ClassVar[str] = ""

    def train(self, spec, dtype: str = "float64") -> Run:
        """Train ``spec`` in ``dtype`` (``model.fit(shuffle=False)`` semantics) and return the Run."""
        raise NotImplementedError(f"{type(self).__name__} does not train")

    def gradient_tolerance(self, dtype: str) -> Tolerance:
        """How closely its ``Run.gradients`` must agree with the module's, relative to the largest
        of its gradient entries over all parameters: the framework tolerance of ``dtype``."""
        return TOLERANCES[dtype]


witnesses: Registry[type[Witness]] = Registry("witness")

#: the witnesses symbp ships, imported on first use (Keras pulls in TensorFlow only when it trains)
BUILT_IN = {"keras": "symbp.witnesses.keras", "torch": "symbp.witnesses.torch",
            "finite_differences": "symbp.witnesses.finite_differences"}


def register(cls: type[Witness]) -> type[Witness]:
    """Class decorator: make ``cls`` the witness of its ``name``."""
    return witnesses.add(cls.name, cls)


def witness(name: str = "keras") -> Witness:
    """A fresh witness of framework ``name`` (UnknownName, with the nearest name, if none)."""
    if name not in witnesses:   # a built-in not imported yet (or a misspelling: suggest from all)
        for module in BUILT_IN.values():
            importlib.import_module(module)
    return witnesses[name]()

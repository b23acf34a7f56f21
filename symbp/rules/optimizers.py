"""Optimizers, each stated once as its update rule (as Keras applies it).

Convention: ``rule(h, w, g, slots, t)`` returns the ordered assignments of one step for one
parameter ``w`` with gradient ``g``: slot updates first, the parameter's last. ``h`` maps each
hyperparameter (Keras's argument name) to a SymPy symbol, ``slots`` each slot name to its
symbol, ``t`` is the 1-based step count (continuing across epochs). Assignments are element-wise.
Keras's decoupled ``weight_decay`` (``w <- w - lr * f32(wd) * w``, before the update) is added by
:mod:`symbp.derive` for every optimizer, as Keras does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import sympy as sp

from .registry import Registry


@dataclass(frozen=True)
class Optimizer:
    name: str
    rule: Callable[..., list[tuple[sp.Symbol, sp.Expr]]]
    #: Keras argument name -> default value
    defaults: dict[str, object]
    #: hyperparameters Keras rounds to float32 even in a float64 model
    float32_hyperparameters: frozenset[str] = frozenset()
    #: slot name -> initial value (a number, broadcast to the parameter's shape)
    slots: dict[str, float] = field(default_factory=dict)
    #: hyperparameters that select the form of the rule (booleans), not numbers in it
    switches: frozenset[str] = frozenset()

    @property
    def doc(self) -> str:
        return (self.rule.__doc__ or "").strip()

    def active_slots(self, settings: dict[str, object]) -> dict[str, float]:
        """The slots this configuration uses (SGD without momentum has none)."""
        if self.name == "sgd" and not settings.get("momentum"):
            return {}
        return dict(self.slots)


optimizers: Registry[Optimizer] = Registry("optimizer")


def sgd(h, w, g, slots, t, settings):
    """w <- w - lr g;  momentum: m <- f32(mu) m - lr g, w <- w + m;
    nesterov: m <- f32(mu) m - lr g, w <- w + f32(mu) m - lr g"""
    if not settings.get("momentum"):
        return [(w, w - h["learning_rate"] * g)]
    m = slots["momentum"]
    mu, lr = h["momentum"], h["learning_rate"]
    if settings.get("nesterov"):
        return [(m, mu * m - lr * g), (w, w + mu * m - lr * g)]
    return [(m, mu * m - lr * g), (w, w + m)]


optimizers.add("sgd", Optimizer(
    "sgd", sgd,
    defaults={"learning_rate": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": None},
    float32_hyperparameters=frozenset({"momentum", "weight_decay"}),
    slots={"momentum": 0.0},
    switches=frozenset({"nesterov"}),
))

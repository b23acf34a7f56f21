"""Optimizers, each stated once as its update rule (as Keras applies it).

Convention: ``rule(h, w, g, slots, t, settings)`` returns the ordered assignments of one step
for one parameter ``w`` with gradient ``g``. ``h`` maps each hyperparameter (Keras's argument
name) and each fixed constant to a SymPy symbol, ``slots`` maps each slot name (per-parameter
state such as ``momentum``, ``velocity``) and each step slot (state shared by all parameters,
such as nadam's ``u_product``) to its symbol, ``t`` is the 1-based step count (continuing across
epochs) and ``settings`` holds the configuration (switches such as ``nesterov`` decide the form).

An assignment may target ``w``, a slot, a step slot, or a new local symbol (``alpha``). Assignments
that depend only on ``t``, hyperparameters and step slots are step-level scalars: the derivation
computes them once per step, before the loop over parameters. A slot that no assignment names is
not used by that configuration (SGD without momentum has none).

``F32(x)`` marks where Keras casts a Python-float hyperparameter to a tensor (``ops.cast``): the
value is rounded to float32 there even in a float64 model (f32(0.9) = 0.8999999761581421), while
the same hyperparameter used directly in arithmetic stays exact. Keras's decoupled
``weight_decay`` (``w <- w - w f32(wd) lr``, before the update) is added by :mod:`symbp.derivation.derive`
for every optimizer, as Keras's base optimizer does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import sympy as sp

from .ranges import DECAY_RATE, NON_NEGATIVE, POSITIVE, UNIT, require_ranges
from .registry import Registry


class F32(sp.Function):
    """F32(x): the hyperparameter x as Keras casts it to a tensor, rounded to float32."""


@dataclass(frozen=True)
class Optimizer:
    name: str
    rule: Callable[..., list[tuple[sp.Symbol, sp.Expr]]]
    #: Keras argument name -> default value
    defaults: dict[str, object]
    #: slot name -> initial value: a number, or the hyperparameter whose value it starts from
    slots: dict[str, Union[float, str]] = field(default_factory=dict)
    #: hyperparameters that select the form of the rule (booleans), not numbers in it
    switches: frozenset[str] = frozenset()
    #: step slot name -> initial value: one scalar per optimizer, carried across steps
    step_slots: dict[str, float] = field(default_factory=dict)
    #: fixed numbers the rule names (not arguments of the Keras class)
    constants: dict[str, float] = field(default_factory=dict)
    #: the framework whose class this is (torch.optim's live in :mod:`symbp.rules.torch_optimizers`)
    framework: str = "keras"
    #: an argument given as a pair, by the names its entries have in the rule (torch's betas)
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: the rule states its own weight decay (torch's); else Keras's decoupled decay is added
    states_weight_decay: bool = False

    @property
    def doc(self) -> str:
        return (self.rule.__doc__ or "").strip()


optimizers: Registry[Optimizer] = Registry("optimizer")

#: the arguments every Keras optimizer takes that symbp follows
COMMON_DEFAULTS = {"weight_decay": None}

#: the values each numeric argument may take (any optimizer that has it), besides being finite in
#: float32 (see symbp.rules.ranges): betas and rho are decay rates, 1 - x^t > 0 for every step t
ARGUMENT_RANGES = {"learning_rate": POSITIVE, "momentum": UNIT, "beta_1": DECAY_RATE,
                   "beta_2": DECAY_RATE, "rho": DECAY_RATE, "epsilon": NON_NEGATIVE,
                   "weight_decay": NON_NEGATIVE, "initial_accumulator_value": NON_NEGATIVE}


def optimizer(name: str, defaults: dict, *, slots=None, switches=(), step_slots=None,
              constants=None):
    """Register ``rule`` as the optimizer ``name`` (Keras's defaults, slots and switches)."""
    def register(rule):
        require_ranges(f"optimizer {name}", defaults, ARGUMENT_RANGES)
        optimizers.add(name, Optimizer(name, rule, {**defaults, **COMMON_DEFAULTS}, dict(slots or {}),
                                       frozenset(switches), dict(step_slots or {}),
                                       dict(constants or {})))
        return rule
    return register


@optimizer("sgd", {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
           slots={"momentum": 0.0}, switches={"nesterov"})
def sgd(h, w, g, slots, t, settings):
    """w <- w - lr g;  momentum: m <- f32(mu) m - lr g, w <- w + m;
    nesterov: m <- f32(mu) m - lr g, w <- w + f32(mu) m - lr g"""
    lr = h["learning_rate"]
    if not settings.get("momentum"):
        return [(w, w - lr * g)]
    m, mu = slots["momentum"], F32(h["momentum"])
    if settings.get("nesterov"):
        return [(m, mu * m - lr * g), (w, w + mu * m - lr * g)]
    return [(m, mu * m - lr * g), (w, w + m)]


ADAM_DEFAULTS = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
                 "amsgrad": False}
ADAM_SLOTS = {"momentum": 0.0, "velocity": 0.0, "velocity_hat": 0.0}


def _adam(h, w, g, slots, t, settings):
    """m <- m + (g - m)(1 - b1), v <- v + (g^2 - v)(1 - b2),
    alpha = lr sqrt(1 - f32(b2)^t) / (1 - f32(b1)^t), w <- w - alpha m / (sqrt(v) + eps);
    amsgrad: v_hat <- max(v_hat, v) used in place of v"""
    m, v = slots["momentum"], slots["velocity"]
    b1, b2, eps = h["beta_1"], h["beta_2"], h["epsilon"]
    alpha = sp.Symbol("alpha", positive=True)
    steps = [(alpha, h["learning_rate"] * sp.sqrt(1 - F32(b2) ** t) / (1 - F32(b1) ** t)),
             (m, m + (g - m) * (1 - b1)),
             (v, v + (g ** 2 - v) * (1 - b2))]
    if settings.get("amsgrad"):
        v_hat = slots["velocity_hat"]
        steps.append((v_hat, sp.Max(v_hat, v)))
        v = v_hat
    return steps + [(w, w - alpha * m / (sp.sqrt(v) + eps))]


adam = optimizer("adam", ADAM_DEFAULTS, slots=ADAM_SLOTS, switches={"amsgrad"})(_adam)
optimizers.add("adamw", Optimizer("adamw", _adam, {**ADAM_DEFAULTS, "weight_decay": 0.004},
                                  dict(ADAM_SLOTS), frozenset({"amsgrad"})))


@optimizer("rmsprop", {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
                       "centered": False},
           slots={"velocity": 0.0, "momentum": 0.0, "average_gradient": 0.0}, switches={"centered"})
def rmsprop(h, w, g, slots, t, settings):
    """v <- rho v + (1 - rho) g^2, D = v + eps
    (centered: g_avg <- rho g_avg + (1 - rho) g, D = v - g_avg^2 + eps), inc = lr g / sqrt(D);
    momentum: m <- mu m + inc, w <- w - m; else w <- w - inc"""
    v, rho, eps = slots["velocity"], h["rho"], h["epsilon"]
    increment = sp.Symbol("increment", real=True)
    steps = [(v, rho * v + (1 - rho) * g ** 2)]
    if settings.get("centered"):
        average = slots["average_gradient"]
        steps.append((average, rho * average + (1 - rho) * g))
        denominator = v - average ** 2 + eps
    else:
        denominator = v + eps
    steps.append((increment, h["learning_rate"] * g / sp.sqrt(denominator)))
    if settings.get("momentum"):
        m = slots["momentum"]
        return steps + [(m, h["momentum"] * m + increment), (w, w - m)]
    return steps + [(w, w - increment)]


@optimizer("adagrad", {"learning_rate": 0.001, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
           slots={"accumulator": "initial_accumulator_value"})
def adagrad(h, w, g, slots, t, settings):
    """acc starts at f32(initial_accumulator_value); acc <- acc + g^2, w <- w - lr g / sqrt(acc + eps)"""
    acc = slots["accumulator"]
    return [(acc, acc + g ** 2), (w, w - h["learning_rate"] * g / sp.sqrt(acc + h["epsilon"]))]


@optimizer("adamax", {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
           slots={"momentum": 0.0, "norm": 0.0})
def adamax(h, w, g, slots, t, settings):
    """m <- m + (g - m)(1 - b1), u <- max(b2 u, |g|), w <- w - lr m / ((1 - f32(b1)^t)(u + eps))"""
    m, u = slots["momentum"], slots["norm"]
    b1 = h["beta_1"]
    return [(m, m + (g - m) * (1 - b1)),
            (u, sp.Max(h["beta_2"] * u, sp.Abs(g))),
            (w, w - h["learning_rate"] * m / ((1 - F32(b1) ** t) * (u + h["epsilon"])))]


@optimizer("nadam", {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
           slots={"momentum": 0.0, "velocity": 0.0}, step_slots={"u_product": 1.0},
           constants={"decay": 0.96})
def nadam(h, w, g, slots, t, settings):
    """P <- P b1 (1 - 0.96^t / 2) (the momentum-cache product, exact b1 and 0.96),
    u_t = f32(b1)(1 - f32(0.96)^t / 2), u_next = f32(b1)(1 - f32(0.96)^(t+1) / 2);
    m <- m + (g - m)(1 - f32(b1)), v <- v + (g^2 - v)(1 - f32(b2)),
    m_hat = u_next m / (1 - P u_next) + (1 - u_t) g / (1 - P), v_hat = v / (1 - f32(b2)^t),
    w <- w - lr m_hat / (sqrt(v_hat) + eps)"""
    m, v, product = slots["momentum"], slots["velocity"], slots["u_product"]
    b1, b2, decay = F32(h["beta_1"]), F32(h["beta_2"]), F32(h["decay"])
    u_t, u_next = sp.symbols("u_t u_next", positive=True)
    m_hat, v_hat = sp.symbols("m_hat v_hat", real=True)
    return [
        (product, product * h["beta_1"] * (1 - h["decay"] ** t / 2)),
        (u_t, b1 * (1 - decay ** t / 2)),
        (u_next, b1 * (1 - decay ** (t + 1) / 2)),
        (m, m + (g - m) * (1 - b1)),
        (v, v + (g ** 2 - v) * (1 - b2)),
        (m_hat, u_next * m / (1 - product * u_next) + (1 - u_t) * g / (1 - product)),
        (v_hat, v / (1 - b2 ** t)),
        (w, w - m_hat * h["learning_rate"] / (sp.sqrt(v_hat) + h["epsilon"])),
    ]

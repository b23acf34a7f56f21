"""torch.optim's optimizers, each stated once as its update rule (as torch's single-tensor step,
the one it takes for CPU tensors, applies it).

The convention of :mod:`symbp.rules.optimizers` (``rule(h, w, g, slots, t, settings)`` returns
ordered assignments; ``h`` maps each argument, by torch's name, to a symbol), with torch's ways:

* weight decay is stated by each rule: coupled L2, ``d = g + weight_decay w``, used in place of
  the gradient everywhere after (SGD, Adam, RMSprop, Adagrad, Adamax, NAdam, RAdam), or
  decoupled, ``w <- w (1 - lr weight_decay)`` first (AdamW);
* ``betas = [b1, b2]`` reaches the rule as ``beta1`` and ``beta2`` (``pairs``);
* every hyperparameter is a Python float used exactly (torch casts none to float32);
* ``t`` is torch's ``state["step"]`` after its increment (1 at the first step).
"""

from __future__ import annotations

import sympy as sp

from .optimizers import Optimizer
from .ranges import DECAY_RATE, NON_NEGATIVE, POSITIVE, UNIT, require_ranges
from .registry import Registry

torch_optimizers: Registry[Optimizer] = Registry("optimizer")

#: the values each numeric argument may take (betas: each entry), besides being finite in float32
ARGUMENT_RANGES = {"lr": POSITIVE, "momentum": UNIT, "dampening": UNIT, "weight_decay": NON_NEGATIVE,
                   "betas": DECAY_RATE, "eps": NON_NEGATIVE, "alpha": DECAY_RATE,
                   "lr_decay": NON_NEGATIVE, "initial_accumulator_value": NON_NEGATIVE,
                   "momentum_decay": NON_NEGATIVE}

BETAS = {"betas": ("beta1", "beta2")}


def torch_optimizer(name: str, defaults: dict, *, slots=None, switches=(), step_slots=None, pairs=None):
    """Register ``rule`` as torch.optim's ``name`` (torch's defaults, slots and switches)."""
    def register(rule):
        require_ranges(f"optimizer {name}", defaults, ARGUMENT_RANGES)
        torch_optimizers.add(name.lower(), Optimizer(
            name, rule, dict(defaults), dict(slots or {}), frozenset(switches), dict(step_slots or {}),
            framework="torch", pairs=dict(pairs or {}), states_weight_decay=True))
        return rule
    return register


def coupled_decay(h, w, g, settings) -> tuple[list, sp.Expr]:
    """d = g + weight_decay w (torch's L2 weight decay), or g itself without weight decay."""
    if not settings.get("weight_decay"):
        return [], g
    d = sp.Symbol("d", real=True)
    return [(d, g + h["weight_decay"] * w)], d


@torch_optimizer("SGD", {"lr": 0.001, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0,
                         "nesterov": False}, slots={"momentum_buffer": 0.0}, switches={"nesterov"})
def sgd(h, w, g, slots, t, settings):
    """d = g + wd w; momentum: b <- mu b + (1 - dampening) d (b <- d at the first step),
    d <- d + mu b (nesterov) or d <- b; w <- w - lr d"""
    steps, d = coupled_decay(h, w, g, settings)
    if settings.get("momentum"):
        b, mu = slots["momentum_buffer"], h["momentum"]
        # the first step copies d into the buffer: no dampening then (min(t - 1, 1) is 0 at t = 1)
        kept = sp.Symbol("kept", positive=True)   # a per-step scalar: the share of d the buffer takes
        steps += [(kept, 1 - h["dampening"] * sp.Min(t - 1, 1)), (b, mu * b + kept * d)]
        if settings.get("nesterov"):
            steps.append((sp.Symbol("d", real=True), d + mu * b))
            d = sp.Symbol("d", real=True)
        else:
            d = b
    return steps + [(w, w - h["lr"] * d)]


ADAM_DEFAULTS = {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False}
ADAM_SLOTS = {"exp_avg": 0.0, "exp_avg_sq": 0.0, "max_exp_avg_sq": 0.0}


def _adam(decoupled: bool):
    def adam(h, w, g, slots, t, settings):
        """(AdamW: w <- w (1 - lr wd); Adam: d = g + wd w); m <- m + (d - m)(1 - b1),
        v <- b2 v + (1 - b2) d^2 (amsgrad: v_max <- max(v_max, v) in its place),
        w <- w - lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps)"""
        if decoupled:
            steps, d = ([(w, w * (1 - h["lr"] * h["weight_decay"]))] if settings.get("weight_decay") else []), g
        else:
            steps, d = coupled_decay(h, w, g, settings)
        m, v = slots["exp_avg"], slots["exp_avg_sq"]
        b1, b2 = h["beta1"], h["beta2"]
        step_size, root = sp.symbols("step_size bias_correction2_sqrt", positive=True)
        steps += [(step_size, h["lr"] / (1 - b1 ** t)), (root, sp.sqrt(1 - b2 ** t)),
                  (m, m + (d - m) * (1 - b1)), (v, v * b2 + (1 - b2) * d ** 2)]
        if settings.get("amsgrad"):
            steps.append((slots["max_exp_avg_sq"], sp.Max(slots["max_exp_avg_sq"], v)))
            v = slots["max_exp_avg_sq"]
        return steps + [(w, w - step_size * m / (sp.sqrt(v) / root + h["eps"]))]
    return adam


torch_optimizer("Adam", ADAM_DEFAULTS, slots=ADAM_SLOTS, switches={"amsgrad"}, pairs=BETAS)(_adam(False))
torch_optimizer("AdamW", {**ADAM_DEFAULTS, "weight_decay": 0.01}, slots=ADAM_SLOTS, switches={"amsgrad"},
                pairs=BETAS)(_adam(True))


@torch_optimizer("RMSprop", {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0,
                             "centered": False},
                 slots={"square_avg": 0.0, "grad_avg": 0.0, "momentum_buffer": 0.0}, switches={"centered"})
def rmsprop(h, w, g, slots, t, settings):
    """d = g + wd w; v <- alpha v + (1 - alpha) d^2, D = sqrt(v) + eps
    (centered: d_avg <- d_avg + (d - d_avg)(1 - alpha), D = sqrt(v - d_avg^2) + eps);
    momentum: b <- mu b + d / D, w <- w - lr b; else w <- w - lr d / D"""
    steps, d = coupled_decay(h, w, g, settings)
    v, alpha = slots["square_avg"], h["alpha"]
    steps.append((v, alpha * v + (1 - alpha) * d ** 2))
    if settings.get("centered"):
        average = slots["grad_avg"]
        steps.append((average, average + (d - average) * (1 - alpha)))
        denominator = sp.sqrt(v - average ** 2) + h["eps"]
    else:
        denominator = sp.sqrt(v) + h["eps"]
    if settings.get("momentum"):
        b = slots["momentum_buffer"]
        return steps + [(b, h["momentum"] * b + d / denominator), (w, w - h["lr"] * b)]
    return steps + [(w, w - h["lr"] * d / denominator)]


@torch_optimizer("Adagrad", {"lr": 0.01, "lr_decay": 0.0, "weight_decay": 0.0,
                             "initial_accumulator_value": 0.0, "eps": 1e-10},
                 slots={"sum": "initial_accumulator_value"})
def adagrad(h, w, g, slots, t, settings):
    """d = g + wd w; clr = lr / (1 + (t - 1) lr_decay); s <- s + d^2 (s starts at
    initial_accumulator_value); w <- w - clr d / (sqrt(s) + eps)"""
    steps, d = coupled_decay(h, w, g, settings)
    total, clr = slots["sum"], sp.Symbol("clr", positive=True)
    return steps + [(clr, h["lr"] / (1 + (t - 1) * h["lr_decay"])), (total, total + d ** 2),
                    (w, w - clr * d / (sp.sqrt(total) + h["eps"]))]


@torch_optimizer("Adamax", {"lr": 0.002, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
                 slots={"exp_avg": 0.0, "exp_inf": 0.0}, pairs=BETAS)
def adamax(h, w, g, slots, t, settings):
    """d = g + wd w; m <- m + (d - m)(1 - b1), u <- max(b2 u, |d| + eps),
    w <- w - lr / (1 - b1^t) m / u"""
    steps, d = coupled_decay(h, w, g, settings)
    m, u, clr = slots["exp_avg"], slots["exp_inf"], sp.Symbol("clr", positive=True)
    return steps + [(m, m + (d - m) * (1 - h["beta1"])), (u, sp.Max(h["beta2"] * u, sp.Abs(d) + h["eps"])),
                    (clr, h["lr"] / (1 - h["beta1"] ** t)), (w, w - clr * m / u)]


@torch_optimizer("NAdam", {"lr": 0.002, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                           "momentum_decay": 0.004},
                 slots={"exp_avg": 0.0, "exp_avg_sq": 0.0}, step_slots={"mu_product": 1.0}, pairs=BETAS)
def nadam(h, w, g, slots, t, settings):
    """d = g + wd w; mu_t = b1 (1 - 0.96^(t psi) / 2), mu_next = b1 (1 - 0.96^((t + 1) psi) / 2),
    P <- P mu_t; m <- m + (d - m)(1 - b1), v <- b2 v + (1 - b2) d^2, D = sqrt(v / (1 - b2^t)) + eps;
    w <- w - lr (1 - mu_t) / (1 - P) d / D, then w <- w - lr mu_next / (1 - P mu_next) m / D"""
    steps, d = coupled_decay(h, w, g, settings)
    m, v, product = slots["exp_avg"], slots["exp_avg_sq"], slots["mu_product"]
    b1, b2, psi = h["beta1"], h["beta2"], h["momentum_decay"]
    mu_t, mu_next, denominator = sp.Symbol("mu_t", positive=True), sp.Symbol("mu_next", positive=True), \
        sp.Symbol("denom", positive=True)
    return [(mu_t, b1 * (1 - sp.Rational(1, 2) * sp.Float(0.96) ** (t * psi))),
            (mu_next, b1 * (1 - sp.Rational(1, 2) * sp.Float(0.96) ** ((t + 1) * psi))),
            (product, product * mu_t)] + steps + [
            (m, m + (d - m) * (1 - b1)), (v, b2 * v + (1 - b2) * d ** 2),
            (denominator, sp.sqrt(v / (1 - b2 ** t)) + h["eps"]),
            (w, w - h["lr"] * (1 - mu_t) / (1 - product) * d / denominator),
            (w, w - h["lr"] * mu_next / (1 - product * mu_next) * m / denominator)]


@torch_optimizer("RAdam", {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
                 slots={"exp_avg": 0.0, "exp_avg_sq": 0.0}, pairs=BETAS)
def radam(h, w, g, slots, t, settings):
    """d = g + wd w; m <- m + (d - m)(1 - b1), v <- b2 v + (1 - b2) d^2;
    rho_inf = 2 / (1 - b2) - 1, rho_t = rho_inf - 2 t b2^t / (1 - b2^t);
    rho_t > 5: r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)),
    w <- w - lr m / (1 - b1^t) r sqrt(1 - b2^t) / (sqrt(v) + eps); else w <- w - lr m / (1 - b1^t)"""
    steps, d = coupled_decay(h, w, g, settings)
    m, v = slots["exp_avg"], slots["exp_avg_sq"]
    b1, b2 = h["beta1"], h["beta2"]
    rho_inf, rho_t, rect = sp.Symbol("rho_inf", positive=True), sp.Symbol("rho_t", real=True), \
        sp.Symbol("rect", nonnegative=True)
    # rect is used only where rho_t > 5 (so rho_inf > 5): there max(rho_t, 5) = rho_t and
    # max(rho_inf, 5) = rho_inf; elsewhere they keep the unused value finite (b2 <= 0.6 makes
    # rho_inf <= 4, and torch never rectifies) and max(., 0) keeps it real
    rho_t_used, rho_inf_used = sp.Max(rho_t, 5), sp.Max(rho_inf, 5)
    radicand = (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf_used - 4) * (rho_inf_used - 2) * rho_t_used)
    adaptive = sp.Piecewise((rect * sp.sqrt(1 - b2 ** t) / (sp.sqrt(v) + h["eps"]), rho_t > 5), (1, True))
    return steps + [(rho_inf, 2 / (1 - b2) - 1), (rho_t, rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)),
                    (rect, sp.sqrt(sp.Max(radicand, 0))),
                    (m, m + (d - m) * (1 - b1)), (v, b2 * v + (1 - b2) * d ** 2),
                    (w, w - m / (1 - b1 ** t) * h["lr"] * adaptive)]

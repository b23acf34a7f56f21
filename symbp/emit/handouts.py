"""The LaTeX handouts: the worked solution and the student sheet of one training step.

``handout_context(spec, options)`` prepares everything the templates print: each rule of the
derivation model in symbols (:class:`~symbp.emit.latex.RowLatexPrinter`), the same rule with the
numbers filled in, and its result. Every number of the worked step comes from the generated module's
``trace`` (z, a, g, f'(z), delta, gradients, the optimizer's scalars, slots and intermediates,
the parts a rule works out on the way), the training's from its ``train``: nothing here
evaluates an expression. The templates only loop and print.

The worked step is the first batch of the first epoch (``model.fit(shuffle=False)``'s first
update); with more steps the handout adds the parameters after training and the loss per epoch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import sympy as sp

from ..derivation.calculus import j as _UNIT
from ..derivation.network import layers_from_spec
from .codegen import derive_spec, network_summary
from ..errors import HandoutError
from ..derivation.derive import NetworkDerivation, derive_activation, g as G_ROW
from ..derivation.chain_rule import Target, chain_rule
from ..derivation import naming
from ..derivation.naming import PARAMETER_CODES, ParamName
from .handout_latex import PEN_HEIGHT, LatexPresenter, appendix_table, pen_box_width
from .trace import PARTS, output_gradient, worked_parts
from .worked_solution import (BatchMean, ChainRuleItem, Equation, EntryUpdate, Given, IndexForm, Part, Section,
                              Step)
from .latex import (ONES_ROW, PARAMETER_AXES, RowLatexPrinter, escape_latex, format_number, shown_columns,
                    shown_indices, tensor_slices)
from .render import latex_env, render
from ..spec import Spec
from ..spec.handout import TABLE_OPTIONS, Ask, parse_ask

BIAS_SYMBOLS = {"theta": r"\theta", "b": "b"}
#: LaTeX of an optimizer slot, by slot name (others print as \mathrm{name})
SLOT_SYMBOLS = {"momentum": "m", "velocity": "v", "m": "m", "v": "v", "u": "u", "norm": "u",
                "accumulator": "A", "average_gradient": r"\bar{g}", "v_hat": r"\hat{v}",
                "velocity_hat": r"\hat{v}",
                # torch.optim's state, by the letters its documentation uses
                "momentum_buffer": "b", "exp_avg": "m", "exp_avg_sq": "v", "max_exp_avg_sq": r"v^{\max}",
                "square_avg": "v", "grad_avg": r"\bar{g}", "sum": r"\mathrm{sum}", "exp_inf": "u"}
#: LaTeX of an optimizer's other quantities (per-step scalars, step slots, intermediates) and
#: fixed constants, by symbol name (others print as SymPy writes them)
QUANTITY_SYMBOLS = {"alpha": r"\alpha", "u_product": r"\Pi", "u_t": "u_{t}", "u_next": "u_{t+1}",
                    "m_hat": r"\hat{m}", "v_hat": r"\hat{v}", "increment": r"\Delta",
                    "decay": r"\mathrm{decay}",
                    # torch.optim's quantities, as its documentation writes them
                    "kept": "c_{t}", "step_size": r"\eta_{t}", "bias_correction2_sqrt": r"\sqrt{1 - \beta_2^{t}}",
                    "clr": r"\eta_{t}", "mu_t": r"\mu_{t}", "mu_next": r"\mu_{t+1}", "mu_product": r"\Pi",
                    "rho_inf": r"\rho_{\infty}", "rho_t": r"\rho_{t}", "rect": "r_{t}", "denom": r"D"}
#: the largest layer drawn in full; wider layers show their first units, a gap and the last
DRAWN_UNITS = 8
#: edges carry their weight when no layer is wider than this
LABELLED_WIDTH = 4


def slot_tex(slot: str) -> str:
    return SLOT_SYMBOLS.get(slot, r"\mathrm{%s}" % escape_latex(slot))


def quantity_tex(symbol: sp.Symbol) -> str:
    return QUANTITY_SYMBOLS.get(symbol.name, sp.latex(symbol))


def float32_tex(tex: str) -> str:
    """A constant as Keras rounds it to float32: a tilde over its letter (beta_1 -> tilde beta_1)."""
    head, sep, rest = tex.partition("_")
    accent = r"\tilde" if head.startswith("\\") and head[1:].isalpha() or len(head) == 1 else r"\widetilde"
    return rf"{accent}{{{head}}}{sep}{rest}"


@dataclass(frozen=True)
class HandoutOptions:
    digits: int = 8
    explain: tuple[str, ...] = ()
    bias_symbol: str = "theta"
    #: the index of the first layer's parameters in print: 0 (W0, as Keras's order) or 1 (W1, textbooks)
    first_index: int = 0
    #: scaffolding of the student sheet: the SymPy derivative column of the layer table, a name/ID line
    student_derivatives: bool = True
    name_line: bool = False
    #: the entries the student sheet asks for (symbp.spec.handout: "W1[0:2,0:3]", "delta2"); () asks all
    ask: tuple[str, ...] = ()
    #: the student sheet shows the back-propagation rules in symbols (as the solution states them)
    student_rules: bool = False

    def __post_init__(self):
        if self.bias_symbol not in BIAS_SYMBOLS:
            raise HandoutError(f"--bias-symbol must be one of {sorted(BIAS_SYMBOLS)}, "
                               f"not {self.bias_symbol!r}")
        if not 1 <= self.digits <= 16:
            raise HandoutError(f"--digits must be between 1 and 16, not {self.digits}")
        if self.first_index not in (0, 1):
            raise HandoutError(f"--first-index must be 0 or 1, not {self.first_index}")
        self.asked   # the entries' syntax, checked before any work

    @property
    def asked(self) -> list[Ask]:
        """The asked entries, read (a syntax error names the entry)."""
        out = []
        for text in self.ask:
            try:
                out.append(parse_ask(text))
            except ValueError as err:
                raise HandoutError(f"--ask {text!r}: {err}") from None
        return out

    @classmethod
    def for_spec(cls, spec: Spec, **given) -> "HandoutOptions":
        """The spec's [handout] table (symbp.spec.handout.TABLE_OPTIONS), each option given here
        (a CLI flag; None or an empty --ask: not given) overriding its key."""
        values = {TABLE_OPTIONS[key]: value for key, value in (spec.handout or {}).items()}
        values.update({key: value for key, value in given.items()
                       if value is not None and not (key in ("ask", "explain") and not value)})
        return cls(**{key: tuple(value) if key in ("ask", "explain") else value for key, value in values.items()})


# ---------------------------------------------------------------- notation
class Notation:
    """The handout's symbols: layer l = 1..L, parameters W_n, theta_n with n = l - 1 (seed), or
    n = l with ``first_index`` 1 (textbooks: W_1 feeds z_1)."""

    def __init__(self, bias_symbol: str, first_index: int = 0):
        self.bias, self.first_index = BIAS_SYMBOLS[bias_symbol], first_index

    def param(self, name: ParamName | str) -> str:
        """A parameter's TeX: W_{0} (W_{1} from index 1), and the bias as the course writes it
        (\\theta_{0} or b_{0})."""
        name = name if isinstance(name, ParamName) else ParamName.parse(name)
        return name.tex({"bias": self.bias}, self.first_index)

    @property
    def param_index(self) -> str:
        """The index of layer l's parameters in the notation paragraph."""
        return "l" if self.first_index else "l-1"

    def grad(self, name: str) -> str:
        return rf"\frac{{\partial L}}{{\partial {self.param(name)}}}"

    @staticmethod
    def layer(l: int) -> dict[str, str]:
        """Symbols of the derivation's rows for layer l."""
        return {"z": f"z_{{{l}}}", "a": f"a_{{{l}}}", "g": f"g_{{{l}}}", "delta": rf"\delta_{{{l}}}",
                "y": "y"}

    def layer_rule(self, layer) -> dict[str, str]:
        """Symbols of a layer rule's matrices for a layer instance: its input, its delta and each
        parameter (the rule's MatrixSymbol, named by its letter) as that layer's parameter."""
        l = layer.number
        return {"a_prev": f"a_{{{l - 1}}}", "delta": rf"\delta_{{{l}}}",
                **{p.code: self.param(ParamName(layer.position, p.kind)) for p in layer.rule.parameters}}

    def parameter_list(self, layer) -> str:
        """``$W_{0}$ and $\\theta_{0}$``: a layer's parameters, in its rule's order."""
        names = [f"${self.param(name)}$" for name in layer.param_names]
        return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


# ---------------------------------------------------------------- the network picture
#: a weight label's half width and half height (cm, \scriptsize "-0.71"), a neuron's radius
LABEL_HALF = (0.36, 0.22)
NODE_RADIUS = 0.4
NEURON_RADIUS = 0.45
LABEL_POSITIONS = tuple(np.round(np.linspace(0.1, 0.9, 33), 3))


def _border_points(edge: dict) -> tuple[float, float, float, float]:
    """Where an edge leaves its source neuron's circle and enters its target's (cm)."""
    (x0, y0), (x1, y1) = (edge["from"]["x"], edge["from"]["y"]), (edge["to"]["x"], edge["to"]["y"])
    length = float(np.hypot(x1 - x0, y1 - y0))
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    return x0 + ux * NODE_RADIUS, y0 + uy * NODE_RADIUS, x1 - ux * NODE_RADIUS, y1 - uy * NODE_RADIUS


def _place_labels(edges: list[dict], layers: list[dict]) -> bool:
    """Choose each edge's label position (``at``, a fraction of the way between the circles) so
    that no two labels and no label and neuron overlap; False when some edge has no free place
    (draw no labels then)."""
    placed: list[tuple[float, float]] = []
    nodes = [(n["x"], n["y"]) for layer in layers for n in layer["nodes"]]
    for edge in edges:
        x0, y0, x1, y1 = _border_points(edge)
        for position in LABEL_POSITIONS:
            x, y = x0 + position * (x1 - x0), y0 + position * (y1 - y0)
            free = all(abs(x - px) > 2 * LABEL_HALF[0] or abs(y - py) > 2 * LABEL_HALF[1] for px, py in placed)
            clear = all(abs(x - nx) > LABEL_HALF[0] + NEURON_RADIUS or abs(y - ny) > LABEL_HALF[1] + NEURON_RADIUS
                        for nx, ny in nodes)
            if free and clear:
                placed.append((x, y))
                edge["at"] = (round(x, 3), round(y, 3))
                break
        else:
            return False
    return True


def f_prime(l: int) -> str:
    return f"f_{{{l}}}'(z_{{{l}}})"


# ---------------------------------------------------------------- the worked step
#: a parameter entry to expand by the scalar chain rule: W{n}[row, col] or b{n}[col]
Explained = Target


#: how an error message names the indices of a parameter entry, by its rank
ENTRY_INDEX_NAMES = {1: ("col",), 2: ("row", "col"), 3: ("u", "k", "c"), 4: ("u", "v", "k", "c")}
_EXPLAIN = re.compile(r"\s*([A-Za-z]+?)\s*_?(\d+)\s*\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]\s*\Z")


def _explained_param(target: str, letter: str, n: int, spec: Spec) -> tuple[ParamName, tuple]:
    """The parameter ``letter``/``n`` name (theta: the bias) and its Keras shape, checked."""
    letter = PARAMETER_CODES["bias"] if letter == "theta" else letter
    try:
        name = ParamName.parse(f"{letter}{n}")
    except ValueError as err:
        raise HandoutError(f"--explain {target!r}: {err}") from None
    layers = layers_from_spec(spec)
    if n >= len(layers) or name not in layers[n].param_names:
        raise HandoutError(f"--explain {target!r}: the network has parameters "
                           f"{', '.join(spec.param_names)} (no {name})")
    if layers[n].rule.entry is None and not layers[n].rule.indexed:
        raise HandoutError(f"--explain {target!r}: the {layers[n].rule.name} layer rule states no "
                           f"indexed entry to differentiate")
    return name, layers[n].param_shape(name.kind)


def parse_explain(target: str, spec: Spec, first_index: int = 0) -> Explained:
    """``W1[2,0]``, ``b1[0]`` (or ``theta1[0]``), any parameter's entry, checked against its
    shape; the number counts layers from ``first_index`` as the handout prints them."""
    match = _EXPLAIN.match(target)
    if not match:
        raise HandoutError(f"--explain {target!r}: expected a weight like W1[2,0] or a bias like b1[0]")
    letter, n, indices = match.groups()
    if int(n) < first_index:
        raise HandoutError(f"--explain {target!r}: layers' parameters are numbered from {first_index}")
    name, shape = _explained_param(target, letter, int(n) - first_index, spec)
    index = tuple(int(i) for i in indices.split(","))
    if len(index) != len(shape):
        form = f"{name}[{','.join(ENTRY_INDEX_NAMES.get(len(shape), ('i',) * len(shape)))}]"
        raise HandoutError(f"--explain {target!r}: a {name.kind} entry has "
                           f"{len(shape)} ind{'ex' if len(shape) == 1 else 'ices'}, {form}")
    if any(i >= size for i, size in zip(index, shape)):
        raise HandoutError(f"--explain {target!r}: {name} has shape {shape}; indices start at 0")
    if len(index) > 2:    # a kernel's W[u, v, k, c] (Conv1D: W[u, k, c])
        return Explained(name.code, None, index[-1], index)
    return Explained(name.code, index[0] if len(index) == 2 else None, index[-1])


#: the loss plot's points (epochs past it are sampled evenly) and the most epochs it labels one by one
MAX_PLOT_POINTS, MAX_PLOT_TICKS = 200, 20


class _Numbers:
    """Every number of the worked step, read from the generated module's ``trace`` (the step's
    z, a, g, f'(z), delta, gradients, optimizer values): nothing here is evaluated."""

    def __init__(self, spec: Spec, options: HandoutOptions, model: NetworkDerivation, module):
        self.spec, self.options, self.model, self.module = spec, options, model, module
        self.digits = options.digits
        self.notation = Notation(options.bias_symbol, options.first_index)
        self.params = module.initial_params()
        rows = min(spec.batch_size, len(spec.x))
        self.x, self.labels = module.X[:rows], module.Y[:rows]     # as the module takes them
        self.trace = trace = module.trace(self.params, self.x, self.labels)
        layers = range(1, model.depth + 1)
        self.y = trace["y"]     # the label rows the loss reads (one-hot rows of sparse labels)
        self.z = {l: trace[f"z{l}"] for l in layers}
        self.a = {l: trace[f"a{l}"] for l in range(model.depth + 1)}
        self.grads = {name: trace[f"d{name}"] for name in spec.param_names}
        self.delta = {l: trace[f"delta{l}"] for l in layers}
        self.loss = float(trace["loss"])
        self.sample_losses = [float(value) for value in trace["per_sample"].reshape(-1)]
        self.updated = trace["updated"]
        self.g = {l: trace[f"g{l}"] for l in layers if f"g{l}" in trace}
        self.derivative = {l: trace[f"fprime{l}"] for l in layers if f"fprime{l}" in trace}


class _StepWriter:
    """What every unit of the handout shares: the numbers (a :class:`_Numbers`'s attributes) and
    how a step is written (``lhs = rule = rule with numbers = result``)."""

    def __init__(self, numbers: _Numbers):
        vars(self).update(vars(numbers))

    def label_rows(self, labels, units: int) -> np.ndarray:
        """The label rows the loss reads: one-hot rows of class indices for a sparse loss."""
        if self.model.loss.rule.sparse_labels:
            return np.eye(units)[np.asarray(labels, dtype=np.int64).reshape(-1)]
        return np.asarray(labels, dtype=np.float64)

    def symbols(self, expr, names, **kw) -> str:
        """A rule in symbols, for the tables the templates print beside the steps."""
        return RowLatexPrinter(names, digits=self.digits, **kw).doprint(expr)

    @staticmethod
    def shown_activation(layer):
        """The layer's activation rules as the handout writes them: a named constant exact (1/sqrt 2)
        or by name (lambda), derived from that form (symbp.rules.activations.Constant); the
        numbers are still the trace's, computed with the values Keras uses."""
        act = layer.activation
        return derive_activation(act.rule.name, shown=True) if act.rule.constants else act

    def parameter_values(self, layer) -> dict[str, np.ndarray]:
        """A layer instance's parameters by its rule's letters (W, b): what its rule's matrices hold."""
        return {p.code: self.params[ParamName(layer.position, p.kind).code] for p in layer.rule.parameters}

    def row_values(self, l: int) -> dict[str, object]:
        arguments = {str(sym): value for sym, value in self.model.loss.arguments.values()}
        return {"z": self.z[l], "a": self.a[l], "y": self.y, "B": float(len(self.x)), **arguments,
                "K": float(self.a[l].shape[1]), **({"g": self.g[l]} if l in self.g else {})}

    def step(self, title, lhs, expr, names, values, result, transposed=None, shown_lhs=None,
             filled_expr=None, worked=None, axes=None, quantity=None) -> Step:
        """A step of one :class:`Equation`: ``lhs = rule = rule with values = result``.

        ``filled_expr`` (default ``expr``) is the form the values are filled into; for the
        trace key ``worked``, its parts are worked out first (:func:`~symbp.emit.trace.worked_parts`).
        """
        return Step(title, [self.equation(lhs, expr, names, values, result, transposed, shown_lhs,
                                          filled_expr, worked, axes)], quantity)

    def equation(self, lhs, expr, names, values, result, transposed=None, shown_lhs=None,
                 filled_expr=None, worked=None, axes=None) -> Equation:
        parts = ()
        if worked is not None:
            filled_expr, parts = self.worked(expr if filled_expr is None else filled_expr, worked)
        return Equation(lhs, expr, names, values, result, transposed, filled_expr, parts,
                        shown_lhs=shown_lhs, axes=axes)

    def worked(self, expr, key) -> tuple[sp.Expr, tuple[Part, ...]]:
        """The rule the values go into and its parts with their values from the trace: row sums
        (their column then stands in the filled-in rule), then the rows a piecewise rule compares."""
        found, values = worked_parts(expr), list(self.trace[PARTS].get(key, []))
        parts = [Part(total, value, str(column.base)) for (total, column), value in zip(found.sums, values)]
        meaning = {column: total for total, column in found.sums}   # a side shows the row sum, not its column's name
        parts += [Part(side.xreplace(meaning), value, filled_rule=side)
                  for side, value in zip(found.sides, values[len(found.sums):])]
        return found.rest, tuple(parts)


class _OptimizerSteps(_StepWriter):
    """The optimizer: its hyperparameters, its rule, its per-step scalars and each parameter's
    assignments (slots and intermediates), numbers from the trace's ``update``."""

    def hyperparameters(self) -> list[tuple[str, str, str]]:
        opt = self.model.optimizer
        used = set().union(*(expr.free_symbols for _, expr in opt.step_assignments + opt.assignments))
        used |= {init for _, init in list(opt.slots.values()) + list(opt.step_slots.values())
                 if isinstance(init, sp.Basic)}
        out, names = [], self.constant_names()
        for name, sym in opt.symbols.items():
            if sym not in used:
                continue
            note = ""
            source = opt.float32_of.get(name)
            exact = opt.settings.get(source, getattr(opt.rule, "constants", {}).get(source))
            if source is not None and exact is not None and opt.values[name] != float(exact):
                note = f"{'Keras keeps it' if source == name else 'as Keras casts it'} as float32: " \
                       f"f32({format_number(exact, 16)})"
            label = name if source in (None, name) else source
            out.append((escape_latex(label.replace("_", " ")), names[str(sym)],
                        format_number(opt.values[name], max(self.digits, 10)), escape_latex(note)))
        return out

    def constant_names(self) -> dict[str, str]:
        """LaTeX of the optimizer's constants and per-step quantities, by symbol name."""
        opt = self.model.optimizer
        names = {str(opt.t): "t"}
        for key, sym in opt.symbols.items():
            source = opt.float32_of.get(key, key)
            tex = QUANTITY_SYMBOLS.get(sym.name, sp.latex(sym))
            if source != key:   # the f32 rounding of a constant Keras also uses exact
                source_symbol = opt.symbols[source]
                tex = float32_tex(QUANTITY_SYMBOLS.get(source_symbol.name, sp.latex(source_symbol)))
            names[str(sym)] = tex
        for target, _ in opt.step_assignments:
            names[str(target)] = quantity_tex(target)
        for sym, _ in opt.step_slots.values():
            names[str(sym)] = quantity_tex(sym)
        return names

    def optimizer_start(self) -> dict[str, float]:
        """The optimizer's constants at step t = 1 and its step slots' start values, by symbol name."""
        opt = self.model.optimizer
        values = {str(opt.t): 1.0, **{str(sym): opt.values[h] for h, sym in opt.symbols.items()}}
        values.update({str(sym): self.start_value(init, values) for sym, init in opt.step_slots.values()})
        return values

    @staticmethod
    def start_value(init, values: dict) -> float:
        """A slot's start: a number, or a constant's value (adagrad's initial accumulator)."""
        return float(values[str(init)]) if isinstance(init, sp.Symbol) else float(init)

    def step_scalars(self) -> dict[str, float]:
        """:meth:`optimizer_start` with each per-step scalar (Adam's alpha, nadam's u_t, ...)."""
        values = self.optimizer_start()
        for target, _ in self.model.optimizer.step_assignments:
            values[str(target)] = float(self.trace[str(target)])
        return values

    def step_quantities(self) -> list[Step]:
        """Each per-step scalar of the optimizer: its rule, the numbers filled in, its value."""
        opt = self.model.optimizer
        names, values = self.constant_names(), self.optimizer_start()
        step_slots = {str(sym) for sym, _ in opt.step_slots.values()}
        steps = []
        for target, expr in opt.step_assignments:
            before = dict(values)
            values[str(target)] = float(self.trace[str(target)])
            lhs = names[str(target)] + (r"^{\mathrm{new}}" if str(target) in step_slots else "")
            title = (rf"Step slot ${names[str(target)]}$ (kept from step to step)" if str(target) in step_slots
                     else rf"Scalar ${lhs}$ of this step")
            steps.append(self.step(title, lhs, expr, names, before, values[str(target)]))
        return steps

    def update_values(self, name: str) -> list[tuple[sp.Symbol, sp.Expr, dict, np.ndarray]]:
        """Each assignment of one step on ``name``: (target, expression, values before, value)."""
        opt = self.model.optimizer
        values = self.step_scalars()
        values.update({str(sym): np.full_like(self.params[name], self.start_value(init, values))
                       for sym, init in opt.slots.values()})
        values.update({str(opt.w): self.params[name], str(opt.grad): self.grads[name]})
        out = []
        for (target, expr), (traced, value) in zip(opt.assignments, self.trace["update"][name]):
            if traced != str(target):
                raise RuntimeError(f"symbp bug: the trace assigns {traced} where the model assigns {target}")
            before = dict(values)
            values[str(target)] = np.broadcast_to(value, self.params[name].shape)
            out.append((target, expr, before, values[str(target)]))
        if not np.allclose(values[str(opt.w)], self.updated[name], rtol=1e-12, atol=1e-14, equal_nan=True):
            raise RuntimeError(f"symbp bug: the handout's update of {name} differs from the module's step")
        return out

    def per_parameter(self) -> dict[sp.Symbol, str]:
        """The optimizer's per-parameter symbols (w, g, slots, intermediates) -> their LaTeX letter."""
        opt = self.model.optimizer
        letters = {sym: slot_tex(slot) for slot, (sym, _) in opt.slots.items()}
        letters.update({target: quantity_tex(target) for target, _ in opt.assignments
                        if target != opt.w and target not in letters})
        return letters

    def update_names(self, name: str, param: str | None = None) -> dict[str, str]:
        """Names of one parameter's update: ``param`` (default its symbol) for w, its gradient for
        g, slots and intermediates subscripted with it, constants and step scalars."""
        opt, nt = self.model.optimizer, self.notation
        param = param or nt.param(name)
        names = {**self.constant_names(), str(opt.w): param,
                 str(opt.grad): rf"\frac{{\partial L}}{{\partial {param}}}"}
        for sym, letter in self.per_parameter().items():
            letter = f"{{{letter}}}" if "_" in letter or "^" in letter else letter   # one subscript
            names[str(sym)] = f"{letter}_{{{param}}}" if param == nt.param(name) else f"{letter}[{param}]"
        return names

    def as_rows(self, expr: sp.Expr) -> sp.Expr:
        """An update rule with its per-parameter symbols as rows: printed as whole matrices
        (coefficients first: eta g, mu m)."""
        opt = self.model.optimizer
        per_parameter = [opt.w, opt.grad, *self.per_parameter()]
        return expr.xreplace({sym: sp.IndexedBase(sym.name)[_UNIT] for sym in per_parameter})

    def update_steps(self, name: str) -> list[Step]:
        opt, nt = self.model.optimizer, self.notation
        names = self.update_names(name)
        slots = {sym for sym, _ in opt.slots.values()}
        final = max(i for i, (target, _) in enumerate(opt.assignments) if target == opt.w)   # after weight decay
        steps = []
        for i, (target, expr, before, value) in enumerate(self.update_values(name)):
            decay = opt.symbols.get("weight_decay")
            if target == opt.w and decay is not None and decay in expr.free_symbols:
                title = rf"Weight decay of ${nt.param(name)}$ (before the update, as {escape_latex(opt.rule.name)} does)"
            elif target == opt.w:
                title = rf"Update of ${nt.param(name)}$ ({escape_latex(opt.rule.name)})"
            elif target in slots:
                title = rf"Optimizer slot of ${nt.param(name)}$"
            else:   # an intermediate of the rule (nadam's m_hat, ...)
                title = rf"Optimizer quantity for ${nt.param(name)}$"
            lhs = names[str(target)] if target not in slots and target != opt.w else \
                rf"{names[str(target)]}^{{\mathrm{{new}}}}"
            steps.append(self.step(title, lhs, self.as_rows(expr), names, before, value, shown_lhs=lhs,
                                   axes=PARAMETER_AXES,
                                   quantity=naming.UPDATED.format(param=name) if i == final else None))
        return steps

    def update_rule(self) -> list[str]:
        """The optimizer's update rule, one assignment a line, for a generic parameter w."""
        opt = self.model.optimizer
        names = {**self.constant_names(), str(opt.w): "w",
                 str(opt.grad): r"\frac{\partial L}{\partial w}"}
        names.update({str(sym): letter for sym, letter in self.per_parameter().items()})
        return [rf"{names[str(t)]} \leftarrow {self.symbols(self.as_rows(e), names)}"
                for t, e in opt.step_assignments + opt.assignments]


class _ForwardSteps(_StepWriter):
    """The givens, the forward pass layer by layer, the loss, and the table of layers."""

    def givens(self) -> list[Step]:
        nt = self.notation
        steps = [Step("Inputs (one row per sample)", [Given("x = a_{0}", np.asarray(self.spec.x, dtype=float))]),
                 self.labels_given()]
        for layer in self.model.layers:
            for name in layer.layer.param_names:
                steps.append(Step(self.given_title(name), [Given(nt.param(name), self.params[name.code],
                                                                 axes=PARAMETER_AXES)]))
        return steps + self.loss_arguments()

    def given_title(self, name: ParamName) -> str:
        """Weights between layer l - 1 and layer l; Thetas (Biases) of layer l; <Kind> of layer l."""
        l = name.layer + 1
        if name.kind == "kernel":
            return f"Weights between the input and layer {l}" if l == 1 else \
                f"Weights between layer {l - 1} and layer {l}"
        kind = ("Thetas" if self.notation.bias == r"\theta" else "Biases") if name.kind == "bias" \
            else escape_latex(name.kind.replace("_", " ").capitalize())
        return f"{kind} of layer {l}"

    def labels_given(self) -> Step:
        y = np.asarray(self.spec.y, dtype=np.float64)
        items = [Given("y", y)]
        if not self.model.loss.rule.sparse_labels:
            return Step("Labels", items)
        rows = self.label_rows(y, self.spec.widths[-1])
        items.append(Given("y", rows, note="as one-hot rows (what the loss reads)"))
        return Step("Labels (one class index per sample, counted from 0)", items)

    def loss_arguments(self) -> list[Step]:
        loss = self.model.loss
        return [Step(rf"Loss argument \texttt{{{escape_latex(name)}}} of {escape_latex(loss.rule.name)}",
                     [Given(sp.latex(sym), value)])
                for name, (sym, value) in loss.arguments.items()]

    def forward(self) -> list[Step]:
        """Each layer's steps, each step marked with its layer."""
        from .handout_indexed import IndexedSteps
        return [replace(step, layer=layer.number) for layer in self.model.layers
                for step in (IndexedSteps(self).forward(layer) if layer.layer.rule.indexed else self.dense_forward(layer))]

    def dense_forward(self, layer) -> list[Step]:
        """A Dense layer's steps: z with its numbers, then the activation."""
        l = layer.number
        names = {**self.notation.layer_rule(layer.layer), **self.notation.layer(l)}
        values = self.parameter_values(layer.layer)
        numbers = {"a_prev": self.a[l - 1], **values}
        act = self.shown_activation(layer)
        return [self.step(f"Layer {l}: pre-activation", f"z_{{{l}}}", layer.calculus.z, names, numbers,
                          self.z[l], {code: v.T for code, v in values.items() if np.ndim(v) == 2}),
                self.step(f"Layer {l}: {escape_latex(act.rule.name)} activation", f"a_{{{l}}}",
                          act.forward, names, {"z": self.z[l]}, self.a[l], worked=f"a{l}")]

    def loss_steps(self) -> tuple[str, list[Step]]:
        """The per-sample loss in index form, then for the batch's rows; the batch mean."""
        loss, depth = self.model.loss, self.model.depth
        row = "z" if loss.on_logits else "a"
        intro = (rf"Per sample, over the $K = {self.a[depth].shape[1]}$ units of a row of "
                 rf"${row} = {row}_{{{depth}}}$ and $y$; the batch loss $L$ is the "
                 rf"{'sum' if loss.batch_reduction == 'sum' else 'mean'} over the $B = {len(self.x)}$ row{'s' if len(self.x) > 1 else ''} of the batch.")
        if loss.on_logits:
            intro += (rf" Keras computes {escape_latex(loss.rule.name)} on a "
                      rf"{escape_latex(loss.activation.name)} output from its logits $z_{{{depth}}}$.")
        per_row = np.array(self.sample_losses).reshape(-1, 1)
        names = self.notation.layer(depth)
        in_rows = self.equation("l", loss.per_sample, names, self.row_values(depth), per_row,
                                worked="per_sample")
        mean = BatchMean(self.loss, loss.batch_reduction, self.spec.framework == "keras")
        return intro, [Step("Loss", [IndexForm("l", loss.per_sample), in_rows, mean])]

    def shape_table(self) -> list[dict]:
        """Each layer of a network with indexed layers: its type and geometry, output shape, activation."""
        from .handout_indexed import IndexedLayer
        rows = [{"number": 0, "layer": "input", "shape": r" \times ".join(map(str, np.shape(self.a[0])[1:])),
                 "activation": ""}]
        for layer in self.model.layers:
            kind = IndexedLayer(layer, len(self.x)).describe() if layer.layer.rule.indexed else \
                f"{escape_latex(layer.layer.rule.name)}, {layer.units} units"
            rows.append({"number": layer.number, "layer": kind,
                         "shape": r" \times ".join(map(str, layer.layer.output_shape)),
                         "activation": escape_latex(layer.activation.rule.name)})
        return rows

    def layer_table(self) -> list[dict]:
        rows = []
        for layer in self.model.layers:
            act = self.shown_activation(layer)
            names = {"z": "z", "a": "a", "g": r"\frac{\partial L}{\partial a}"}
            rows.append({"number": layer.number, "units": layer.units,
                         "activation": escape_latex(act.rule.name),
                         "forward": self.symbols(act.forward, names),
                         "derivative": self.symbols(act.derivative, names) if act.derivative is not None
                         else rf"\text{{row-wise: }} \delta = {self.symbols(act.backward, names)}"})
        return rows


#: the title of a parameter's gradient step, by Keras variable name (others: "Gradient of the <kind>")
GRADIENT_TITLES = {"kernel": "Gradient of the weights ${param}$",
                   "bias": "Gradient of the {biases} ${param}$ (column sums of $\\delta_{{{l}}}$)"}


class _BackpropSections(_StepWriter):
    """One section per layer from the output down: its delta, gradients, gradient passed down
    and parameter updates (after the optimizer's per-step numbers, when it has any)."""

    def __init__(self, numbers: _Numbers, optimizer: _OptimizerSteps):
        super().__init__(numbers)
        self.optimizer = optimizer

    def output_delta(self) -> list[Step]:
        loss, depth = self.model.loss, self.model.depth
        layer = self.model.layers[-1]
        names = self.notation.layer(depth)
        title = rf"Error gradient $\delta_{{{depth}}} = \partial L / \partial z_{{{depth}}}$"
        if loss.on_logits:
            return [self.step(title + " (the loss on the logits: activation and loss together)",
                              rf"\delta_{{{depth}}}", loss.delta, names, self.row_values(depth),
                              self.delta[depth], quantity=f"delta{depth}")]
        steps = [self.step(rf"Gradient of the loss with respect to the output, "
                           rf"$g_{{{depth}}} = \partial L / \partial a_{{{depth}}}$",
                           f"g_{{{depth}}}", output_gradient(self.model), names, self.row_values(depth),
                           self.g[depth], worked=f"g{depth}", quantity=f"g{depth}")]
        return steps + self.activation_steps(layer)

    def activation_steps(self, layer) -> list[Step]:
        l, act = layer.number, self.shown_activation(layer)
        names = self.notation.layer(l)
        steps = []
        if layer.layer.rule.indexed and act.rule.name == "linear":   # pooling, Flatten: delta = g
            return [self.step(rf"Error gradient $\delta_{{{l}}} = \partial L / \partial z_{{{l}}} = g_{{{l}}}$ "
                              rf"(no activation)", rf"\delta_{{{l}}}", G_ROW[_UNIT], names, None, self.delta[l],
                              quantity=f"delta{l}")]
        if act.derivative is not None:
            steps.append(self.step(rf"Derivative of {escape_latex(act.rule.name)} (derived by SymPy), "
                                   rf"element-wise", f_prime(l), act.derivative, names,
                                   self.row_values(l), self.derivative[l], quantity=f"fprime{l}"))
        title = rf"Error gradient $\delta_{{{l}}} = \partial L / \partial z_{{{l}}}$"
        if act.derivative is None:
            steps.append(self.step(title, rf"\delta_{{{l}}}", act.backward, names, self.row_values(l),
                                   self.delta[l], worked=f"delta{l}", quantity=f"delta{l}"))
            return steps
        # element-wise: delta = g f'(z), filled in with the derivative's numbers found above
        derivative = sp.IndexedBase("derivative")[_UNIT]
        rule = G_ROW[_UNIT] * derivative
        numbers = {"g": self.g[l], "derivative": self.derivative[l]}
        equation = self.equation(rf"\delta_{{{l}}}", act.backward, names, numbers, self.delta[l], filled_expr=rule)
        steps.append(Step(title, [replace(equation, via=(rule, {**names, "derivative": f_prime(l)}))],
                          f"delta{l}"))
        return steps

    def layer_gradient_steps(self, layer) -> list[Step]:
        """dL/d each parameter of a layer, then the gradient it passes down: its rule's derived
        matrix formulas (:func:`symbp.derivation.derive.derive_layer`) with the trace's numbers."""
        nt, calculus, l = self.notation, layer.calculus, layer.number
        names, values = nt.layer_rule(layer.layer), self.parameter_values(layer.layer)
        a_prev, delta = self.a[l - 1], self.delta[l]
        numbers = {"a_prev": a_prev, "delta": delta, **values, ONES_ROW: np.ones((1, len(delta)))}
        transposed = {"a_prev": a_prev.T, "delta": delta.T, **{code: v.T for code, v in values.items() if np.ndim(v) == 2}}
        biases = "thetas" if nt.bias != "b" else "biases"
        steps = []
        for parameter, name in zip(layer.layer.rule.parameters, layer.layer.param_names):
            title = GRADIENT_TITLES.get(name.kind, "Gradient of the {kind} ${param}$").format(
                param=nt.param(name), biases=biases, l=l, kind=escape_latex(name.kind.replace("_", " ")))
            steps.append(self.step(title, nt.grad(name), calculus.gradients[name.kind], names, numbers,
                                   self.grads[name.code], transposed, quantity=name.gradient))
        if l > 1:
            used = [name for name in layer.layer.param_names
                    if calculus.g_down.has(calculus.parameters[name.kind])]
            before = "" if not used else (f" (with {', '.join(f'${nt.param(n)}$' for n in used)} before "
                                          f"{'its' if len(used) == 1 else 'their'} update)")
            steps.append(self.step(f"Gradient passed down to layer {l - 1}, "
                                   f"$g_{{{l - 1}}} = \\partial L / \\partial a_{{{l - 1}}}${before}",
                                   f"g_{{{l - 1}}}", calculus.g_down, names, numbers, self.g[l - 1], transposed,
                                   quantity=f"g{l - 1}"))
        return steps

    def backprop(self) -> list[Section]:
        sections = []
        if self.model.optimizer.step_assignments:
            sections.append(Section(
                "The optimizer's per-step numbers (step $t = 1$)",
                f"{escape_latex(self.model.optimizer.rule.name)} computes these once per step, "
                f"the same for every weight and {'theta' if self.notation.bias != 'b' else 'bias'}.",
                self.optimizer.step_quantities()))
        for layer in reversed(self.model.layers):
            l = layer.number
            steps = self.output_delta() if l == self.model.depth else self.activation_steps(layer)
            if layer.layer.rule.indexed:
                from .handout_indexed import IndexedSteps
                steps += IndexedSteps(self).gradient_steps(layer)
            else:
                steps += self.layer_gradient_steps(layer)
            for name in layer.layer.param_names:
                steps.extend(self.optimizer.update_steps(name.code))
            title = f"Layer {l}" + (" (output layer)" if l == self.model.depth else "")
            sections.append(Section(title, self.layer_intro(layer), steps))
        return sections

    def layer_intro(self, layer) -> str:
        """Dense: its activation, units and parameters; an indexed layer: its type and geometry too."""
        activation = escape_latex(layer.activation.rule.name)
        parameters = f"parameters {self.notation.parameter_list(layer.layer)}" if layer.layer.param_names \
            else "no parameters"
        if not layer.layer.rule.indexed:
            return f"{activation} activation, {layer.units} units; {parameters}."
        from .handout_indexed import IndexedLayer
        return f"{IndexedLayer(layer, len(self.x)).describe()}; {activation} activation; {parameters}."


class _ChainRuleSteps(_StepWriter):
    """``--explain``: one entry's scalar chain rule (:mod:`symbp.derivation.chain_rule`) and its update."""

    def __init__(self, numbers: _Numbers, optimizer: _OptimizerSteps):
        super().__init__(numbers)
        self.optimizer = optimizer

    def explain(self, target: Explained) -> Step:
        """dL/dw for one entry as a product of named factors (derived: :mod:`symbp.derivation.chain_rule`),
        each with its number, their sum the module's gradient entry; then the entry's update."""
        layer = self.model.layers[target.layer - 1]
        chain = chain_rule(self.model, target, self.trace, self.params, self.shown_activation(layer).derivative)
        index = chain.target.index
        param = f"{self.notation.param(target.name)}[{','.join(map(str, index))}]"
        item = ChainRuleItem(param, chain, float(self.grads[target.name][index]),
                             tuple(self.entry_updates(target.name, index, param)))
        return Step(f"The chain rule for ${param}$", [item])

    def entry_updates(self, name: str, index: tuple, param: str) -> list[EntryUpdate]:
        """Each optimizer assignment at the entry, with its values (from the trace's update)."""
        opt = self.model.optimizer
        names = self.optimizer.update_names(name, param)
        renewed = {opt.w} | {sym for sym, _ in opt.slots.values()}
        updates = []
        for assigned, expr, before, value in self.optimizer.update_values(name):
            entries = {k: float(np.asarray(v)[index]) for k, v in before.items() if np.ndim(v)}
            constants = {k: v for k, v in before.items() if not np.ndim(v)}
            lhs = names[str(assigned)] + (r"^{\mathrm{new}}" if assigned in renewed else "")
            updates.append(EntryUpdate(lhs, expr, names, entries, constants, float(value[index])))
        return updates


class _Pictures(_StepWriter):
    """The network drawing, the loss per epoch and the parameters after training."""

    def kernel_by_inputs(self, n: int) -> Optional[np.ndarray]:
        """Layer n + 1's weights as (inputs x units): Keras's kernel, torch's weight transposed
        (None: the layer has no kernel)."""
        weights = self.params.get(ParamName(n, "kernel").code)
        if weights is None:
            return None
        return weights.T if layers_from_spec(self.spec)[n].rule.name == "Linear" else weights

    def network_picture(self) -> dict:
        """The layers as columns of neurons, each labelled with its bias, and the edges between
        them as arrows from circle to circle (cm), labelled with their kernel entry (a layer
        without a kernel joins unit k to unit k); the picture's box holds it all. (LaTeX's
        picture environment draws it: TikZ took half a handout's compile time.)"""
        widths = self.spec.widths
        layers = [self.picture_layer(l, width) for l, width in enumerate(widths)]
        edges = [edge for l in range(1, len(widths)) for edge in self.picture_edges(l, layers)]
        label = max(widths) <= LABELLED_WIDTH and _place_labels(edges, layers)
        for edge in edges:
            edge["line"] = tuple(round(v, 3) for v in _border_points(edge))
            if label and edge["weight"] is not None:
                edge["text"] = format_number(edge["weight"], 2, significant=0)
            del edge["from"], edge["to"], edge["weight"]
        xs = [layer["x"] for layer in layers]
        bottom = min(node["y"] for layer in layers for node in layer["nodes"]) - NEURON_RADIUS - 0.1
        left, top = min(xs) - 1.0, max(layer["top"] for layer in layers) + 0.6
        box = (round(max(xs) + 1.0 - left, 3), round(top - bottom, 3), round(left, 3), round(bottom, 3))
        return {"layers": layers, "edges": edges, "labelled": label, "box": box}

    def picture_layer(self, l: int, width: int, spacing_x: float = 4.2, spacing_y: float = 1.5) -> dict:
        """Layer l's column (l = 0 the input): its drawn units (a gap past DRAWN_UNITS) and labels."""
        units = list(range(width)) if width <= DRAWN_UNITS else list(range(DRAWN_UNITS - 2)) + [None, width - 1]
        height = (len(units) - 1) * spacing_y
        nodes = [{"id": f"n{l}u{k}", "unit": unit, "gap": unit is None, "x": l * spacing_x,
                  "y": round(height / 2 - k * spacing_y, 3),
                  "text": "" if unit is None else (f"x_{{{unit}}}" if l == 0 else f"{unit}")}
                 for k, unit in enumerate(units)]
        name = "input" if l == 0 else ("output" if l == len(self.spec.widths) - 1 else f"hidden {l}")
        activation = "" if l == 0 else escape_latex(self.spec.layers[l - 1].activation)
        bias = ParamName(l - 1, "bias")
        return {"name": name, "activation": activation, "nodes": nodes, "x": l * spacing_x,
                "top": round(height / 2 + 0.9, 3),
                "bias": self.notation.param(bias) if l and bias.code in self.params else ""}

    def picture_edges(self, l: int, layers: list[dict]) -> list[dict]:
        """The edges into layer l, each with its kernel entry (None: no kernel, unit to unit)."""
        kernel = self.kernel_by_inputs(l - 1)
        return [{"text": "", "from": source, "to": target,
                 "weight": None if kernel is None else kernel[source["unit"], target["unit"]]}
                for source in layers[l - 1]["nodes"] for target in layers[l]["nodes"]
                if not (source["gap"] or target["gap"])
                and (kernel is not None or source["unit"] == target["unit"])]

    def training(self) -> tuple[dict, list[float]]:
        """The module's whole training (final params, epoch losses), run once for the handout."""
        if not hasattr(self, "_training"):
            from ..witnesses.module import training_progress
            self._training = self.module.train(progress=training_progress(self.spec, "handout's training"))
        return self._training

    def loss_plot(self) -> Optional[dict]:
        """Points for the plot (at most MAX_PLOT_POINTS, evenly spaced epochs and the last) and the
        table's rows (the first and last epochs around a row of dots when there are many)."""
        if self.spec.epochs < 2:
            return None
        _, losses = self.training()
        every = -(-len(losses) // MAX_PLOT_POINTS)
        plotted = sorted(set(range(0, len(losses), every)) | {len(losses) - 1})
        return {"points": [(e + 1, format_number(losses[e], self.digits)) for e in plotted],
                "ticks": len(plotted) <= MAX_PLOT_TICKS,
                "table": [(r"\vdots", "") if e is None else (e + 1, format_number(losses[e], self.digits))
                          for e in shown_indices(len(losses))]}

    def trained(self) -> Optional[list[Step]]:
        steps_per_epoch = -(-len(self.spec.x) // self.spec.batch_size)
        if self.spec.epochs * steps_per_epoch < 2:
            return None
        final, _ = self.training()
        return [Step(f"${self.notation.param(name)}$", [Given(self.notation.param(name), final[name], shape=False)])
                for name in self.spec.param_names]


@dataclass
class WorkedSolution:
    """The handout's content as data (:mod:`symbp.emit.worked_solution`): steps and sections, the
    parameters before and after the step; the units that built it, for the tables beside it."""
    givens: list
    forward: list
    loss_intro: str
    loss: list
    backprop: list
    explained: list
    trained: Optional[list]
    updated: list            # (parameter, before, after)
    numbers: "_Numbers"
    tables: "_ForwardSteps"
    optimizer: "_OptimizerSteps"
    pictures: "_Pictures"


def worked_solution(spec: Spec, options: HandoutOptions = HandoutOptions(),
                    model: NetworkDerivation | None = None, module=None) -> WorkedSolution:
    """The worked first step of ``spec`` as data, every number from the module's trace."""
    from ..witnesses.module import spec_module
    explained = [parse_explain(target, spec, options.first_index) for target in options.explain]
    model = model or derive_spec(spec)
    module = module or spec_module(spec, model)
    numbers = _Numbers(spec, options, model, module)
    optimizer, forward, pictures = _OptimizerSteps(numbers), _ForwardSteps(numbers), _Pictures(numbers)
    chain_rules = _ChainRuleSteps(numbers, optimizer)
    loss_intro, loss_steps = forward.loss_steps()
    return WorkedSolution(
        forward.givens(), forward.forward(), loss_intro, loss_steps,
        _BackpropSections(numbers, optimizer).backprop(), [chain_rules.explain(t) for t in explained],
        pictures.trained(), [(name, numbers.params[name], numbers.updated[name]) for name in spec.param_names],
        numbers, forward, optimizer, pictures)


def constant_notes(model: NetworkDerivation, framework: str = "keras") -> list[str]:
    """Each named constant of the network's activations stated once (LaTeX): its symbol or exact
    form, its value, and the float32 rounding ``framework`` (Keras, PyTorch) computes with when it
    rounds it."""
    from ..rules import FRAMEWORK_NAMES
    notes = []
    for rule in dict.fromkeys(layer.activation.rule for layer in model.layers):
        for constant in rule.constants:
            shown = sp.latex(constant.shown)
            value = format_number(float(constant.exact), 16)
            note = rf"${shown} = {value}$" if constant.shown.is_Symbol else rf"${shown} \approx {value}$"
            if not constant.rounded_in(framework):   # exact in float64, rounded in float32
                note += rf" (float32: ${format_number(float(np.float32(float(constant.exact))), 16)}$)"
            else:
                note += (rf" stands for its float32 rounding ${format_number(float(constant.value), 16)}$, "
                         rf"which {FRAMEWORK_NAMES[framework]} computes with")
            notes.append(note + rf" (\texttt{{{escape_latex(rule.name)}}})")
    return notes


def asked_quantities(options: HandoutOptions, work: WorkedSolution) -> Optional[dict[str, Ask]]:
    """The quantities the student sheet asks for (trace name -> its entry), each checked to be a
    step of the sheet (of the back-propagation, or a CNN's map); None when every entry is asked
    (no --ask)."""
    if not options.ask:
        return None
    steps = list(dict.fromkeys(step.quantity for step in
                               work.forward + [step for section in work.backprop for step in section.steps]
                               if step.quantity))
    shown = naming.printed_answer_names(work.numbers.spec.param_names, options.first_index)
    shown.update({f"{name}_updated": shown[f"{name}_updated"].removesuffix("_updated")
                  for name in work.numbers.spec.param_names})
    out = {}
    for ask in options.asked:
        try:
            quantity = ask.quantity(options.first_index)
        except ValueError as err:
            raise HandoutError(f"--ask {ask.text!r}: {err}") from None
        if quantity not in steps:
            names = ", ".join(shown.get(q, q) for q in steps)
            raise HandoutError(f"--ask {ask.text!r}: the sheet has no {ask.text.split('[')[0]!r} to ask "
                               f"(it can ask for {names})")
        out[quantity] = ask
    return out


def given_forward(steps: list[Step], asked: Optional[dict[str, Ask]]) -> list[int]:
    """The forward steps a student sheet shows (their indices): every one; or, when the sheet asks
    for a feature map (a CNN's a1), those of the layers before the first asked map's, and of that
    layer and the later ones only their rules and the asked steps: their numbers would give an
    asked map away (max pooling boxes the entries it selects, an entry is worked out, z is given)."""
    first = min((step.layer for step in steps if asked and step.quantity in asked), default=None)
    return [k for k, step in enumerate(steps)
            if first is None or step.layer < first or not step.numbered or step.quantity in asked]


def solution_and_sheet_steps(work, options: HandoutOptions, latex: "LatexPresenter") -> dict:
    """The forward pass and back-propagation as the solution prints them (``forward``,
    ``backprop``) and as the student sheet does (``student_forward``, ``student_backprop``):
    the same, or with ``--ask`` only the asked quantities blanked and the forward pass given up
    to the first asked map (``forward_asked``, ``asking``; ``backprop_asked``: a sheet asking only
    for maps has no back-propagation section)."""
    forward = [latex.step(step) for step in work.forward]
    backprop = [latex.section(section) for section in work.backprop]
    student_forward, student_backprop = forward, backprop
    asked = asked_quantities(options, work)
    if asked is not None:
        asking = LatexPresenter(options.digits, work.numbers.notation.param, asked)
        student_forward = [asking.step(work.forward[k]) for k in given_forward(work.forward, asked)]
        student_backprop = [asking.section(section) for section in work.backprop]
    return {"forward": forward, "student_forward": student_forward, "backprop": backprop,
            "student_backprop": student_backprop, "forward_asked": any(step.asked for step in student_forward),
            "backprop_asked": any(section.asked for section in student_backprop), "asking": asked is not None}


def handout_context(spec: Spec, options: HandoutOptions = HandoutOptions(),
                    model: NetworkDerivation | None = None, module=None) -> dict:
    """Everything the solution and student templates print: the worked solution written by the
    LaTeX presenter, and the tables beside it."""
    work = worked_solution(spec, options, model, module)
    model, notation = work.numbers.model, work.numbers.notation
    latex = LatexPresenter(options.digits, notation.param)
    steps_per_epoch = -(-len(spec.x) // spec.batch_size)
    return {
        "title": escape_latex(spec.title or spec.name),
        "name": escape_latex(spec.name),
        "bias_word": "thetas" if options.bias_symbol == "theta" else "biases",
        "bias_noun": "theta" if options.bias_symbol == "theta" else "bias",
        "bias": notation.bias,
        "param_index": notation.param_index,
        "fixed": ", ".join(f"${notation.param(name)}$" for name in spec.fixed_params),
        "blank_width": round(0.55 * (options.digits + 3), 2),
        "depth": model.depth,
        "architecture": escape_latex(architecture(spec)),
        "layers": work.tables.layer_table(),
        "constants": constant_notes(model, spec.framework),
        "network": work.pictures.network_picture() if not model.has_indexed_layers else None,
        "shapes": work.tables.shape_table() if model.has_indexed_layers else [],
        "notation": network_notation(model, notation, options),
        "givens": [latex.step(step) for step in work.givens],
        "appendix": [table for step in work.givens for item in step.items
                     if isinstance(item, Given) and (table := appendix_table(item, options.digits)) is not None],
        "hyperparameters": work.optimizer.hyperparameters(),
        "loss_name": escape_latex(model.loss.rule.name),
        "optimizer_name": escape_latex(model.optimizer.rule.name),
        "update_rule": work.optimizer.update_rule(),
        "batch_rows": len(work.numbers.x),
        "samples": len(spec.x),
        "batch_size": spec.batch_size,
        "epochs": spec.epochs,
        "steps": spec.epochs * steps_per_epoch,
        "torch": spec.framework == "torch",
        **solution_and_sheet_steps(work, options, latex),
        "loss_intro": work.loss_intro,
        "loss": [latex.step(step) for step in work.loss],
        "pen_width": pen_box_width(options.digits),
        "pen_height": PEN_HEIGHT,
        "student_rules": options.student_rules,
        "explained": [latex.step(step) for step in work.explained],
        "updated": [(notation.param(name) + label, latex.m(before[index]), latex.m(after[index]))
                    for name, before, after in work.updated for index, label in updated_slices(before)],
        "trained": None if work.trained is None else [latex.step(step) for step in work.trained],
        "loss_plot": work.pictures.loss_plot(),
        "max_columns": shown_columns(max(max(spec.widths), len(spec.x), len(spec.y[0]))) + 2,
        "digits": options.digits,
        "student_derivatives": options.student_derivatives,
        "name_line": options.name_line,
    }


def architecture(spec: Spec) -> str:
    """What a handout, a question or a message calls the network: 4 - 3 - 3 - 4 (the widths);
    with indexed layers, the module's summary of types and shapes (:func:`network_summary`)."""
    layers = layers_from_spec(spec)
    if any(layer.rule.indexed for layer in layers):
        return network_summary(layers)
    return " - ".join(str(w) for w in spec.widths)


def network_notation(model: NetworkDerivation, notation: Notation, options: HandoutOptions) -> list[str]:
    """The notation paragraph's sentences (LaTeX prose) of a network with indexed layers, in the
    handout's symbols (:mod:`symbp.emit.notation`); [] for a Dense network (the template's own)."""
    if not model.has_indexed_layers:
        return []
    from .notation import indexed_notation
    index = notation.param_index.replace("l-1", "{l-1}")
    return indexed_notation((layer.layer.rule for layer in model.layers), model.depth, f"W_{index}",
                            f"{notation.bias}_{index}", "thetas" if options.bias_symbol == "theta" else "biases")


def updated_slices(values) -> list[tuple[tuple, str]]:
    """A parameter's before/after rows: itself (label ""), or a kernel of more than two axes one
    matrix per input and output channel (label ``[:,:,0,1]``)."""
    if np.ndim(values) <= 2:
        return [((), "")]
    return [(index, f"[{label}]") for index, label in tensor_slices(np.shape(values), PARAMETER_AXES)]


def render_handouts(spec: Spec, options: HandoutOptions = HandoutOptions(),
                    model: NetworkDerivation | None = None, module=None) -> dict[str, str]:
    """{"solution": LaTeX, "student": LaTeX} for ``spec`` (``module``: its loaded generated module)."""
    context = handout_context(spec, options, model, module)
    env = latex_env()
    return {kind: render(env, f"{kind}.tex.j2", **context, student=kind == "student")
            for kind in ("solution", "student")}


def handout_paths(spec: Spec, directory) -> dict[str, Path]:
    """Where ``symbp derive`` writes the handouts: DIR/<name>_solution.tex, DIR/<name>_student.tex."""
    return {kind: Path(directory) / f"{spec.name}_{kind}.tex" for kind in ("solution", "student")}

"""The LaTeX handouts: the worked solution and the student sheet of one training step.

``handout_context(spec, options)`` prepares everything the templates print: each rule of the
derivation model in symbols (:class:`~symbp.latex.RowLatexPrinter`), the same rule with the
numbers filled in, and its result. Every number comes from the generated module (``forward``,
``backward``, ``loss``, ``step``, ``train``), or, for the intermediate values the module keeps
inside (the gradient ``g = dL/da`` a layer receives, ``f'(z)``, an optimizer's slots), from the
same derivation-model expression evaluated by the NumPy printer. The templates only loop and print.

The worked step is the first batch of the first epoch (``model.fit(shuffle=False)``'s first
update); with more steps the handout adds the parameters after training and the loss per epoch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import sympy as sp

from .calculus import B, j as _UNIT
from .codegen import derive_spec
from .errors import HandoutError
from .derive import NetworkDerivation, g as G_ROW
from .latex import (ONES_ROW, IndexLatexPrinter, RowLatexPrinter, blank_matrix_tex, escape_latex, format_number,
                    matrix_tex, shape_tex, shown_columns, shown_indices)
from .printers import HELPERS, ArrayPrinter
from .render import latex_env, render
from .spec import Spec

BIAS_SYMBOLS = {"theta": r"\theta", "b": "b"}
#: LaTeX of an optimizer slot, by slot name (others print as \mathrm{name})
SLOT_SYMBOLS = {"momentum": "m", "velocity": "v", "m": "m", "v": "v", "u": "u", "norm": "u",
                "accumulator": "A", "average_gradient": r"\bar{g}", "v_hat": r"\hat{v}",
                "velocity_hat": r"\hat{v}"}
#: LaTeX of an optimizer's other quantities (per-step scalars, step slots, intermediates) and
#: fixed constants, by symbol name (others print as SymPy writes them)
QUANTITY_SYMBOLS = {"alpha": r"\alpha", "u_product": r"\Pi", "u_t": "u_{t}", "u_next": "u_{t+1}",
                    "m_hat": r"\hat{m}", "v_hat": r"\hat{v}", "increment": r"\Delta",
                    "decay": r"\mathrm{decay}"}
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

    def __post_init__(self):
        if self.bias_symbol not in BIAS_SYMBOLS:
            raise HandoutError(f"--bias-symbol must be one of {sorted(BIAS_SYMBOLS)}, "
                               f"not {self.bias_symbol!r}")
        if not 1 <= self.digits <= 16:
            raise HandoutError(f"--digits must be between 1 and 16, not {self.digits}")


@dataclass
class Step:
    """One quantity: what it is, then display lines (symbols, numbers filled in, result)."""
    title: str
    lines: list[str]
    blank: list[str] = field(default_factory=list)   # the student sheet's version


@dataclass
class Section:
    title: str
    intro: str
    steps: list[Step]


# ---------------------------------------------------------------- notation
class Notation:
    """The handout's symbols: layer l = 1..L, parameters W_n, theta_n with n = l - 1 (seed)."""

    def __init__(self, bias_symbol: str):
        self.bias = BIAS_SYMBOLS[bias_symbol]

    def param(self, name: str) -> str:
        kind, n = name[0], name[1:]
        return f"W_{{{n}}}" if kind == "W" else f"{self.bias}_{{{n}}}"

    def grad(self, name: str) -> str:
        return rf"\frac{{\partial L}}{{\partial {self.param(name)}}}"

    @staticmethod
    def layer(l: int) -> dict[str, str]:
        """Symbols of the derivation's rows for layer l."""
        return {"z": f"z_{{{l}}}", "a": f"a_{{{l}}}", "g": f"g_{{{l}}}", "delta": rf"\delta_{{{l}}}",
                "y": "y"}

    def dense(self, l: int) -> dict[str, str]:
        return {"a_prev": f"a_{{{l - 1}}}", "W": self.param(f"W{l - 1}"),
                "b": self.param(f"b{l - 1}"), "delta": rf"\delta_{{{l}}}"}


# ---------------------------------------------------------------- the network picture
#: a weight label's half width and half height (cm, \scriptsize "-0.71"), a neuron's radius
LABEL_HALF = (0.36, 0.22)
NODE_RADIUS = 0.4
NEURON_RADIUS = 0.45
LABEL_POSITIONS = tuple(np.round(np.linspace(0.1, 0.9, 33), 3))


def _place_labels(edges: list[dict], layers: list[dict]) -> bool:
    """Choose each edge's label position (fraction of the way) so that no two labels and no
    label and neuron overlap; False when some edge has no free place (draw no labels then)."""
    placed: list[tuple[float, float]] = []
    nodes = [(n["x"], n["y"]) for layer in layers for n in layer["nodes"]]
    for edge in edges:
        (x0, y0), (x1, y1) = (edge["from"]["x"], edge["from"]["y"]), (edge["to"]["x"], edge["to"]["y"])
        length = float(np.hypot(x1 - x0, y1 - y0))
        ux, uy = (x1 - x0) / length, (y1 - y0) / length    # TikZ's pos runs between the borders
        x0, y0, x1, y1 = x0 + ux * NODE_RADIUS, y0 + uy * NODE_RADIUS, x1 - ux * NODE_RADIUS, y1 - uy * NODE_RADIUS
        for position in LABEL_POSITIONS:
            x, y = x0 + position * (x1 - x0), y0 + position * (y1 - y0)
            free = all(abs(x - px) > 2 * LABEL_HALF[0] or abs(y - py) > 2 * LABEL_HALF[1] for px, py in placed)
            clear = all(abs(x - nx) > LABEL_HALF[0] + NEURON_RADIUS or abs(y - ny) > LABEL_HALF[1] + NEURON_RADIUS
                        for nx, ny in nodes)
            if free and clear:
                placed.append((x, y))
                edge["pos"] = position
                break
        else:
            return False
    return True


# ---------------------------------------------------------------- evaluating model expressions
def evaluate(expr: sp.Basic, values: dict[str, object]) -> np.ndarray:
    """The NumPy value of a derivation-model expression, rows and symbols bound by name."""
    variables = {name: f"v{n}" for n, name in enumerate(values)}
    printer = ArrayPrinter(variables)
    code = printer.doprint(expr)
    namespace: dict[str, object] = {"np": np, "math": __import__("math")}
    for helper in printer.helpers_used:
        argument, _, body = HELPERS[helper]
        exec(f"def {helper}({argument}):\n" + "".join(f"    {line}\n" for line in body), namespace)
    namespace.update({variables[name]: value for name, value in values.items()})
    return np.asarray(eval(code, namespace), dtype=np.float64)  # our own printer's output


def f_prime(l: int) -> str:
    return f"f_{{{l}}}'(z_{{{l}}})"


def _number_tex(value: float, digits: int) -> str:
    text = format_number(value, digits)
    return rf"\left({text}\right)" if text.startswith("-") else text


# ---------------------------------------------------------------- the worked step
@dataclass(frozen=True)
class Explained:
    """A parameter entry to expand by the scalar chain rule: W{n}[row, col] or b{n}[col]."""
    name: str
    row: Optional[int]
    col: int


_EXPLAIN = re.compile(r"\s*(W|b|theta)\s*_?(\d+)\s*\[\s*(\d+)\s*(?:,\s*(\d+)\s*)?\]\s*\Z")


def parse_explain(target: str, spec: Spec) -> Explained:
    """``W1[2,0]``, ``b1[0]`` (or ``theta1[0]``) checked against the spec's shapes."""
    match = _EXPLAIN.match(target)
    if not match:
        raise HandoutError(f"--explain {target!r}: expected a weight like W1[2,0] or a bias like b1[0]")
    kind, n, first, second = match.groups()
    kind, n = ("b" if kind == "theta" else kind), int(n)
    if n >= len(spec.layers):
        raise HandoutError(f"--explain {target!r}: the network has parameters "
                           f"{', '.join(spec.param_names)} (no {kind}{n})")
    rows, cols = spec.widths[n], spec.widths[n + 1]
    if kind == "W":
        if second is None:
            raise HandoutError(f"--explain {target!r}: a kernel entry needs two indices, W{n}[row,col]")
        row, col = int(first), int(second)
        if row >= rows or col >= cols:
            raise HandoutError(f"--explain {target!r}: W{n} has shape ({rows}, {cols}); "
                               f"indices start at 0")
        return Explained(f"W{n}", row, col)
    if second is not None:
        raise HandoutError(f"--explain {target!r}: a bias entry has one index, b{n}[col]")
    col = int(first)
    if col >= cols:
        raise HandoutError(f"--explain {target!r}: b{n} has shape ({cols},); indices start at 0")
    return Explained(f"b{n}", None, col)


#: the loss plot's points (epochs past it are sampled evenly) and the most epochs it labels one by one
MAX_PLOT_POINTS, MAX_PLOT_TICKS = 200, 20


class _Worker:
    """Builds the handout's sections from the derivation model and the module's numbers."""

    def __init__(self, spec: Spec, options: HandoutOptions, model: NetworkDerivation, module):
        self.spec, self.options, self.model, self.module = spec, options, model, module
        self.digits = options.digits
        self.notation = Notation(options.bias_symbol)
        self.params = module.initial_params()
        rows = min(spec.batch_size, len(spec.x))
        self.x, self.labels = module.X[:rows], module.Y[:rows]     # as the module takes them
        zs, outputs = module._forward(self.params, self.x)
        self.y = self.label_rows(self.labels, outputs[-1].shape[1])  # as the loss reads them
        self.z = {l: zs[l - 1] for l in range(1, model.depth + 1)}
        self.a = dict(enumerate(outputs))
        grads, deltas = module.backward(self.params, self.x, self.labels)
        self.grads = grads
        self.delta = {l: deltas[l - 1] for l in range(1, model.depth + 1)}
        self.loss = float(module.loss(self.params, self.x, self.labels))
        self.sample_losses = [float(module.loss(self.params, self.x[r:r + 1], self.labels[r:r + 1]))
                              for r in range(rows)]
        self.updated, _ = module.step(self.params, self.x, self.labels)
        self.g: dict[int, np.ndarray] = {}
        self.derivative: dict[int, np.ndarray] = {}

    def label_rows(self, labels, units: int) -> np.ndarray:
        """The label rows the loss reads: one-hot rows of class indices for a sparse loss."""
        if self.model.loss.rule.sparse_labels:
            return np.eye(units)[np.asarray(labels, dtype=np.int64).reshape(-1)]
        return np.asarray(labels, dtype=np.float64)

    # ---- printing helpers
    def m(self, values) -> str:
        return matrix_tex(values, self.digits)

    def symbols(self, expr, names, **kw) -> str:
        return RowLatexPrinter(names, digits=self.digits, **kw).doprint(expr)

    def filled(self, expr, names, transposed=None) -> str:
        return RowLatexPrinter(names, transposed, digits=self.digits, filled=True).doprint(expr)

    def row_values(self, l: int) -> dict[str, object]:
        arguments = {str(sym): value for sym, value in self.model.loss.arguments.values()}
        return {"z": self.z[l], "a": self.a[l], "y": self.y, "B": float(len(self.x)), **arguments,
                "K": float(self.a[l].shape[1]), **({"g": self.g[l]} if l in self.g else {})}

    def row_numbers(self, l: int) -> dict[str, str]:
        return {name: (self.m(v) if np.ndim(v) else format_number(v, self.digits))
                for name, v in self.row_values(l).items()}

    def step(self, title, lhs, expr, names, numbers, result, transposed=None, shown_lhs=None,
             filled_expr=None, values=None) -> Step:
        """``lhs = rule = rule with numbers = result``; the student's ``lhs = [blanks]``.

        ``filled_expr`` (default ``expr``) is the form the numbers are filled into; with the
        rows' ``values``, row sums inside it are worked out first (see ``row_sums_first``).
        """
        lines = [f"{lhs} = {self.symbols(expr, names)}"]
        filled_expr = expr if filled_expr is None else filled_expr
        if values is not None:
            filled_expr, numbers, sums = self.row_sums_first(filled_expr, names, numbers, values)
            lines += sums
        if values is not None and filled_expr.has(sp.Piecewise):
            lines += self.piecewise_sides(filled_expr, names, numbers, values)
        if numbers is not None and not filled_expr.has(sp.Piecewise) \
                and filled_expr.free_symbols | filled_expr.atoms(sp.Indexed, sp.MatrixSymbol):
            lines.append(rf"\qquad = {self.filled(filled_expr, numbers, transposed)}")
        lines.append(rf"\qquad = {self.m(result)} \quad ({shape_tex(result)})")
        blank = [f"{shown_lhs or lhs} = {blank_matrix_tex(np.shape(result))} \\quad ({shape_tex(result)})"]
        return Step(title, lines, blank)

    def piecewise_sides(self, expr, names, numbers, values) -> list[str]:
        """Each row a piecewise rule's conditions compare, with its numbers (huber's |a - y|):
        the entries' cases follow from them."""
        lines, seen = [], set()
        for piecewise in sorted(expr.atoms(sp.Piecewise), key=sp.default_sort_key):
            for _, condition in piecewise.args:
                for side in getattr(condition, "args", ()):
                    if side in seen or not side.has(sp.Indexed) or isinstance(side, sp.Indexed):
                        continue
                    seen.add(side)
                    lines.append(rf"\qquad \text{{with }} {self.symbols(side, names)} = "
                                 rf"{self.filled(side, numbers)} = {self.m(evaluate(side, values))}")
        return lines

    def row_sums_first(self, expr, names, numbers, values):
        """Work out each innermost row sum on a line of its own, when the rest of ``expr`` still
        needs the rows (softmax's e^z / rowsum(e^z)): the filled-in line then shows its column."""
        lines, numbers = [], dict(numbers or {})
        for n, total in enumerate(sorted(expr.atoms(sp.Sum), key=sp.default_sort_key)):
            if total.atoms(sp.Sum) != {total}:
                continue
            column = sp.IndexedBase(f"rowsum{n}")
            rest = expr.xreplace({total: column[_UNIT]})
            if not rest.atoms(sp.Indexed) - {column[_UNIT]}:
                continue
            value = evaluate(total, values)
            lines.append(rf"\qquad \text{{with }} {self.symbols(total, names)} = "
                         rf"{self.filled(total, numbers)} = {self.m(value)}")
            numbers[str(column)] = self.m(value)
            expr = rest
        return expr, numbers, lines

    # ---- sections
    def givens(self) -> list[Step]:
        nt = self.notation
        steps = [Step("Inputs (one row per sample)", [rf"x = a_{{0}} = {self.m(self.spec.x)} "
                                                        rf"\quad ({shape_tex(self.spec.x)})"]),
                 self.labels_given()]
        for name in self.spec.param_names:
            l = int(name[1:]) + 1
            where = (f"between the input and layer {l}" if l == 1 else f"between layer {l - 1} and layer {l}") \
                if name[0] == "W" else f"of layer {l}"
            kind = "Weights" if name[0] == "W" else ("Thetas" if nt.bias == r"\theta" else "Biases")
            steps.append(Step(f"{kind} {where}",
                              [rf"{nt.param(name)} = {self.m(self.params[name])} \quad "
                               rf"({shape_tex(self.params[name])})"]))
        return steps + self.loss_arguments()

    def labels_given(self) -> Step:
        y = np.asarray(self.spec.y, dtype=np.float64)
        lines = [rf"y = {self.m(y)} \quad ({shape_tex(y)})"]
        if not self.model.loss.rule.sparse_labels:
            return Step("Labels", lines)
        rows = self.label_rows(y, self.spec.widths[-1])
        lines.append(rf"\text{{as one-hot rows (what the loss reads): }} y = {self.m(rows)} \quad "
                     rf"({shape_tex(rows)})")
        return Step("Labels (one class index per sample, counted from 0)", lines)

    def loss_arguments(self) -> list[Step]:
        loss = self.model.loss
        return [Step(rf"Loss argument \texttt{{{escape_latex(name)}}} of {escape_latex(loss.rule.name)}",
                     [rf"{sp.latex(sym)} = {format_number(value, self.digits)}"])
                for name, (sym, value) in loss.arguments.items()]

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

    def forward(self) -> list[Step]:
        steps = []
        dense = self.model.dense
        for layer in self.model.layers:
            l = layer.number
            names = {**self.notation.dense(l), **self.notation.layer(l)}
            numbers = {"a_prev": self.m(self.a[l - 1]), "W": self.m(self.params[f"W{l - 1}"]),
                       "b": self.m(self.params[f"b{l - 1}"])}
            steps.append(self.step(f"Layer {l}: pre-activation", f"z_{{{l}}}", dense.z, names, numbers,
                                   self.z[l]))
            act = layer.activation
            steps.append(self.step(f"Layer {l}: {escape_latex(act.rule.name)} activation", f"a_{{{l}}}",
                                   act.forward, names, {"z": self.m(self.z[l])}, self.a[l],
                                   values={"z": self.z[l]}))
        return steps

    def loss_steps(self) -> tuple[str, list[Step]]:
        """The per-sample loss in index form, then for the batch's rows; the batch mean."""
        loss, depth = self.model.loss, self.model.depth
        row = "z" if loss.on_logits else "a"
        intro = (rf"Per sample, over the $K = {self.a[depth].shape[1]}$ units of a row of "
                 rf"${row} = {row}_{{{depth}}}$ and $y$; the batch loss $L$ is the mean over the "
                 rf"$B = {len(self.x)}$ row{'s' if len(self.x) > 1 else ''} of the batch.")
        if loss.on_logits:
            intro += (rf" Keras computes {escape_latex(loss.rule.name)} on a "
                      rf"{escape_latex(loss.activation.name)} output from its logits $z_{{{depth}}}$.")
        per_row = np.array(self.sample_losses).reshape(-1, 1)
        names = self.notation.layer(depth)
        in_rows = self.step("", "l", loss.per_sample, names, self.row_numbers(depth), per_row,
                            values=self.row_values(depth))
        lines = [f"l = {IndexLatexPrinter(self.digits).doprint(loss.per_sample)}"] + in_rows.lines
        total = rf"L = \frac{{1}}{{B}} \sum_{{r}} l_{{r}} = {format_number(self.loss, self.digits)}"
        shown = f"{self.loss:.4f}"
        if shown != format_number(self.loss, self.digits):
            total += rf" \approx {shown} \quad \text{{(Keras's progress bar shows 4 digits)}}"
        return intro, [Step("Loss", lines + [total])]

    def output_delta(self) -> list[Step]:
        loss, depth = self.model.loss, self.model.depth
        layer = self.model.layers[-1]
        names = self.notation.layer(depth)
        title = rf"Error gradient $\delta_{{{depth}}} = \partial L / \partial z_{{{depth}}}$"
        if loss.on_logits:
            return [self.step(title + " (the loss on the logits: activation and loss together)",
                              rf"\delta_{{{depth}}}", loss.delta, names, self.row_numbers(depth),
                              self.delta[depth])]
        gradient = loss.gradient / B
        self.g[depth] = evaluate(gradient, self.row_values(depth))
        steps = [self.step(rf"Gradient of the loss with respect to the output, "
                           rf"$g_{{{depth}}} = \partial L / \partial a_{{{depth}}}$",
                           f"g_{{{depth}}}", gradient, names, self.row_numbers(depth), self.g[depth],
                           values=self.row_values(depth))]
        return steps + self.activation_steps(layer)

    def activation_steps(self, layer) -> list[Step]:
        l, act = layer.number, layer.activation
        names = self.notation.layer(l)
        steps = []
        if act.derivative is not None:
            self.derivative[l] = np.broadcast_to(evaluate(act.derivative, self.row_values(l)), self.z[l].shape)
            steps.append(self.step(rf"Derivative of {escape_latex(act.rule.name)} (derived by SymPy), "
                                   rf"element-wise", f_prime(l), act.derivative, names,
                                   self.row_numbers(l), self.derivative[l]))
        title = rf"Error gradient $\delta_{{{l}}} = \partial L / \partial z_{{{l}}}$"
        if act.derivative is None:
            steps.append(self.step(title, rf"\delta_{{{l}}}", act.backward, names, self.row_numbers(l),
                                   self.delta[l], values=self.row_values(l)))
            return steps
        # element-wise: delta = g f'(z), filled in with the derivative's numbers found above
        derivative = sp.IndexedBase("derivative")[_UNIT]
        rule = G_ROW[_UNIT] * derivative
        numbers = {"g": self.m(self.g[l]), "derivative": self.m(self.derivative[l])}
        steps.append(self.step(title, rf"\delta_{{{l}}} = {self.symbols(rule, {**names, 'derivative': f_prime(l)})}",
                               act.backward, names, numbers, self.delta[l], filled_expr=rule,
                               shown_lhs=rf"\delta_{{{l}}}"))
        return steps

    def backprop(self) -> list[Section]:
        sections = []
        if self.model.optimizer.step_assignments:
            sections.append(Section(
                "The optimizer's per-step numbers (step $t = 1$)",
                f"{escape_latex(self.model.optimizer.rule.name)} computes these once per step, "
                f"the same for every weight and {'theta' if self.notation.bias != 'b' else 'bias'}.",
                self.step_quantities()))
        dense, nt = self.model.dense, self.notation
        for layer in reversed(self.model.layers):
            l, n = layer.number, layer.number - 1
            steps = self.output_delta() if l == self.model.depth else self.activation_steps(layer)
            names = nt.dense(l)
            a_prev, delta = self.a[l - 1], self.delta[l]
            numbers = {"a_prev": self.m(a_prev), "delta": self.m(delta),
                       "W": self.m(self.params[f"W{n}"]), ONES_ROW: self.m(np.ones((1, len(delta))))}
            transposed = {"a_prev": self.m(a_prev.T), "W": self.m(self.params[f"W{n}"].T)}
            steps.append(self.step(f"Gradient of the weights ${nt.param(f'W{n}')}$", nt.grad(f"W{n}"),
                                   dense.dW, names, numbers, self.grads[f"W{n}"], transposed))
            steps.append(self.step(f"Gradient of the {'thetas' if nt.bias != 'b' else 'biases'} "
                                   f"${nt.param(f'b{n}')}$ (column sums of $\\delta_{{{l}}}$)",
                                   nt.grad(f"b{n}"), dense.db, names, numbers, self.grads[f"b{n}"]))
            if l > 1:
                self.g[l - 1] = evaluate(dense.g_down, {"delta": delta, "W": self.params[f"W{n}"]})
                steps.append(self.step(f"Gradient passed down to layer {l - 1}, "
                                       f"$g_{{{l - 1}}} = \\partial L / \\partial a_{{{l - 1}}}$ "
                                       f"(with ${nt.param(f'W{n}')}$ before its update)",
                                       f"g_{{{l - 1}}}", dense.g_down, names, numbers, self.g[l - 1],
                                       transposed))
            for name in (f"W{n}", f"b{n}"):
                steps.extend(self.update_steps(name))
            title = f"Layer {l}" + (" (output layer)" if l == self.model.depth else "")
            intro = (f"{escape_latex(layer.activation.rule.name)} activation, {layer.units} units; "
                     f"parameters ${nt.param(f'W{n}')}$ and ${nt.param(f'b{n}')}$.")
            sections.append(Section(title, intro, steps))
        return sections

    # ---- the optimizer's update
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
        return float(evaluate(init, values)) if isinstance(init, sp.Basic) else float(init)

    def step_scalars(self) -> dict[str, float]:
        """:meth:`optimizer_start` with each per-step scalar (Adam's alpha, nadam's u_t, ...)."""
        values = self.optimizer_start()
        for target, expr in self.model.optimizer.step_assignments:
            values[str(target)] = float(evaluate(expr, values))
        return values

    def step_quantities(self) -> list[Step]:
        """Each per-step scalar of the optimizer: its rule, the numbers filled in, its value."""
        opt, d = self.model.optimizer, self.digits
        names, values = self.constant_names(), self.optimizer_start()
        step_slots = {str(sym) for sym, _ in opt.step_slots.values()}
        steps = []
        for target, expr in opt.step_assignments:
            numbers = {k: format_number(v, d) for k, v in values.items()}
            values[str(target)] = float(evaluate(expr, values))
            lhs = names[str(target)] + (r"^{\mathrm{new}}" if str(target) in step_slots else "")
            lines = [f"{lhs} = {self.symbols(expr, names)}",
                     rf"\qquad = {self.filled(expr, numbers)} = {format_number(values[str(target)], d)}"]
            title = (rf"Step slot ${names[str(target)]}$ (kept from step to step)" if str(target) in step_slots
                     else rf"Scalar ${lhs}$ of this step")
            steps.append(Step(title, lines, [rf"{lhs} = \blank"]))
        return steps

    def update_values(self, name: str) -> list[tuple[sp.Symbol, sp.Expr, dict, np.ndarray]]:
        """Each assignment of one step on ``name``: (target, expression, values before, value)."""
        opt = self.model.optimizer
        values = self.step_scalars()
        values.update({str(sym): np.full_like(self.params[name], self.start_value(init, values))
                       for sym, init in opt.slots.values()})
        values.update({str(opt.w): self.params[name], str(opt.grad): self.grads[name]})
        out = []
        for target, expr in opt.assignments:
            before = dict(values)
            values[str(target)] = np.broadcast_to(evaluate(expr, values), self.params[name].shape)
            out.append((target, expr, before, values[str(target)]))
        if not np.allclose(values[str(opt.w)], self.updated[name], rtol=1e-12, atol=1e-14):
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
        steps = []
        for target, expr, before, value in self.update_values(name):
            numbers = {k: (self.m(v) if np.ndim(v) else format_number(v, self.digits)) for k, v in before.items()}
            decay = opt.symbols.get("weight_decay")
            if target == opt.w and decay is not None and decay in expr.free_symbols:
                title = rf"Weight decay of ${nt.param(name)}$ (before the update, as Keras does)"
            elif target == opt.w:
                title = rf"Update of ${nt.param(name)}$ ({escape_latex(opt.rule.name)})"
            elif target in slots:
                title = rf"Optimizer slot of ${nt.param(name)}$"
            else:   # an intermediate of the rule (nadam's m_hat, ...)
                title = rf"Optimizer quantity for ${nt.param(name)}$"
            lhs = names[str(target)] if target not in slots and target != opt.w else \
                rf"{names[str(target)]}^{{\mathrm{{new}}}}"
            steps.append(self.step(title, lhs, self.as_rows(expr), names, numbers, value,
                                   shown_lhs=lhs))
        return steps

    def update_rule(self) -> list[str]:
        """The optimizer's update rule, one assignment a line, for a generic parameter w."""
        opt = self.model.optimizer
        names = {**self.constant_names(), str(opt.w): "w",
                 str(opt.grad): r"\frac{\partial L}{\partial w}"}
        names.update({str(sym): letter for sym, letter in self.per_parameter().items()})
        return [rf"{names[str(t)]} \leftarrow {self.symbols(self.as_rows(e), names)}"
                for t, e in opt.step_assignments + opt.assignments]

    # ---- the scalar chain rule for one entry
    def scalar(self, expr, names) -> str:
        """A row expression for one entry: names bound to entries or numbers, products as dots."""
        return RowLatexPrinter(names, digits=self.digits, filled=True, product=r"\cdot").doprint(expr)

    def explain(self, target: Explained) -> Step:
        """dL/dw for one entry as a product of named factors, each with its number; the update."""
        nt, d, opt = self.notation, self.digits, self.model.optimizer
        l = int(target.name[1:]) + 1
        c, layer = target.col, self.model.layers[l - 1]
        entry = f"{c}" if target.row is None else f"{target.row},{c}"
        param = f"{nt.param(target.name)}[{entry}]"
        d_param = rf"\frac{{\partial L}}{{\partial {param}}}"
        through_activation = layer.activation.derivative is not None and not (
            l == self.model.depth and self.model.loss.on_logits)
        batch = len(self.x)
        row_label = "0" if batch == 1 else "r"

        def factors(r):
            names = []
            if through_activation:
                names += [rf"\frac{{\partial L}}{{\partial a_{{{l}}}[{r},{c}]}}",
                          rf"\frac{{\partial a_{{{l}}}[{r},{c}]}}{{\partial z_{{{l}}}[{r},{c}]}}"]
            else:
                names.append(rf"\frac{{\partial L}}{{\partial z_{{{l}}}[{r},{c}]}}")
            return names + [rf"\frac{{\partial z_{{{l}}}[{r},{c}]}}{{\partial {param}}}"]

        total = r"\sum_{r} " if batch > 1 else ""
        lines = [rf"{d_param} = {total}" + r" \cdot ".join(factors(row_label))]
        products = []
        for r in range(batch):
            named, values = factors(r), []
            if through_activation:
                value = self.g[l][r, c]
                if l < self.model.depth:
                    terms = " + ".join(rf"{_number_tex(self.delta[l + 1][r, k], d)} \cdot "
                                       rf"{_number_tex(self.params[f'W{l}'][c, k], d)}"
                                       for k in range(self.delta[l + 1].shape[1]))
                    lines.append(rf"\quad {named[0]} = \sum_{{k}} \delta_{{{l + 1}}}[{r},k] \, "
                                 rf"{nt.param(f'W{l}')}[{c},k]")
                    lines.append(rf"\qquad = {terms} = {format_number(value, d)}")
                else:
                    lines.append(rf"\quad {named[0]} = g_{{{l}}}[{r},{c}] = {format_number(value, d)}"
                                 r" \quad \text{(computed above)}")
                derivative = layer.activation.derivative
                symbolic = self.scalar(derivative, {"a": f"a_{{{l}}}[{r},{c}]", "z": f"z_{{{l}}}[{r},{c}]"})
                if derivative.has(sp.Piecewise):   # the branch follows from z
                    filled = rf" \quad (z_{{{l}}}[{r},{c}] = {format_number(self.z[l][r, c], d)})"
                    lines.append(rf"\quad {named[1]} = {symbolic} = "
                                 rf"{format_number(self.derivative[l][r, c], d)}{filled}")
                else:
                    filled = self.scalar(derivative, {"a": _number_tex(self.a[l][r, c], d),
                                                      "z": _number_tex(self.z[l][r, c], d)})
                    lines.append(rf"\quad {named[1]} = {symbolic} = {filled} = "
                                 rf"{format_number(self.derivative[l][r, c], d)}")
                values += [value, self.derivative[l][r, c]]
            else:
                lines.append(rf"\quad {named[0]} = \delta_{{{l}}}[{r},{c}] = "
                             rf"{format_number(self.delta[l][r, c], d)} \quad \text{{(computed above)}}")
                values.append(self.delta[l][r, c])
            if target.row is None:
                lines.append(rf"\quad {named[-1]} = 1")
                values.append(1.0)
            else:
                lines.append(rf"\quad {named[-1]} = a_{{{l - 1}}}[{r},{target.row}] = "
                             rf"{format_number(self.a[l - 1][r, target.row], d)}")
                values.append(self.a[l - 1][r, target.row])
            products.append(r" \cdot ".join(_number_tex(v, d) for v in values))
        index = (c,) if target.row is None else (target.row, c)
        lines.append(rf"{d_param} = " + " + ".join(products)
                     + f" = {format_number(self.grads[target.name][index], d)}")
        names = self.update_names(target.name, param)
        renewed = {opt.w} | {sym for sym, _ in opt.slots.values()}
        for assigned, expr, before, value in self.update_values(target.name):
            numbers = {k: (_number_tex(np.asarray(v)[index], d) if np.ndim(v) else format_number(v, d))
                       for k, v in before.items()}
            lhs = names[str(assigned)] + (r"^{\mathrm{new}}" if assigned in renewed else "")
            lines.append(rf"{lhs} = {self.scalar(expr, names)} = "
                         rf"{self.scalar(expr, numbers)} = {format_number(value[index], d)}")
        return Step(f"The chain rule for ${param}$", lines)

    # ---- pictures
    def network_picture(self) -> dict:
        widths = self.spec.widths
        spacing_x, spacing_y = 4.2, 1.5
        layers, edges = [], []
        label = max(widths) <= LABELLED_WIDTH
        for l, width in enumerate(widths):
            units = list(range(width)) if width <= DRAWN_UNITS else \
                list(range(DRAWN_UNITS - 2)) + [None, width - 1]
            height = (len(units) - 1) * spacing_y
            nodes = []
            for k, unit in enumerate(units):
                nodes.append({"id": f"n{l}u{k}", "unit": unit, "gap": unit is None, "x": l * spacing_x,
                              "y": round(height / 2 - k * spacing_y, 3),
                              "text": "" if unit is None else (f"x_{{{unit}}}" if l == 0 else f"{unit}")})
            name = "input" if l == 0 else ("output" if l == len(widths) - 1 else f"hidden {l}")
            activation = "" if l == 0 else escape_latex(self.spec.layers[l - 1].activation)
            layers.append({"name": name, "activation": activation, "nodes": nodes, "x": l * spacing_x,
                           "top": round(height / 2 + 0.9, 3), "bias": "" if l == 0 else
                           self.notation.param(f"b{l - 1}")})
        for l in range(1, len(widths)):
            for source in layers[l - 1]["nodes"]:
                for target in layers[l]["nodes"]:
                    if not (source["gap"] or target["gap"]):
                        edges.append({"source": source["id"], "target": target["id"], "text": "",
                                      "pos": 0.5, "from": source, "to": target,
                                      "weight": self.params[f"W{l - 1}"][source["unit"], target["unit"]]})
        label = label and _place_labels(edges, layers)
        for edge in edges:
            if label:
                edge["text"] = format_number(edge["weight"], 2, significant=0)
            del edge["from"], edge["to"], edge["weight"]
        return {"layers": layers, "edges": edges, "labelled": label}

    def training(self) -> tuple[dict, list[float]]:
        """The module's whole training (final params, epoch losses), run once for the handout."""
        if not hasattr(self, "_training"):
            from .keras_check import training_progress
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
        return [Step(f"${self.notation.param(name)}$",
                     [rf"{self.notation.param(name)} = {self.m(final[name])}"]) for name in self.spec.param_names]

    def layer_table(self) -> list[dict]:
        rows = []
        for layer in self.model.layers:
            act = layer.activation
            names = {"z": "z", "a": "a", "g": r"\frac{\partial L}{\partial a}"}
            rows.append({"number": layer.number, "units": layer.units,
                         "activation": escape_latex(act.rule.name),
                         "forward": self.symbols(act.forward, names),
                         "derivative": self.symbols(act.derivative, names) if act.derivative is not None
                         else rf"\text{{row-wise: }} \delta = {self.symbols(act.backward, names)}"})
        return rows


def handout_context(spec: Spec, options: HandoutOptions = HandoutOptions(),
                    model: NetworkDerivation | None = None, module=None) -> dict:
    """Everything the solution and student templates print, prepared in Python."""
    from .keras_check import spec_module
    explained = [parse_explain(target, spec) for target in options.explain]
    model = model or derive_spec(spec)
    module = module or spec_module(spec, model)
    work = _Worker(spec, options, model, module)
    loss_intro, loss_steps = work.loss_steps()
    backprop = work.backprop()
    steps_per_epoch = -(-len(spec.x) // spec.batch_size)
    rows = len(work.x)
    max_columns = shown_columns(max(max(spec.widths), len(spec.x), len(spec.y[0]))) + 2
    return {
        "title": escape_latex(spec.title or spec.name),
        "name": escape_latex(spec.name),
        "bias_word": "thetas" if options.bias_symbol == "theta" else "biases",
        "bias_noun": "theta" if options.bias_symbol == "theta" else "bias",
        "bias": work.notation.bias,
        "blank_width": round(0.55 * (options.digits + 3), 2),
        "depth": model.depth,
        "architecture": escape_latex(" - ".join(str(w) for w in spec.widths)),
        "layers": work.layer_table(),
        "network": work.network_picture(),
        "givens": work.givens(),
        "hyperparameters": work.hyperparameters(),
        "loss_name": escape_latex(model.loss.rule.name),
        "optimizer_name": escape_latex(model.optimizer.rule.name),
        "update_rule": work.update_rule(),
        "batch_rows": rows,
        "samples": len(spec.x),
        "batch_size": spec.batch_size,
        "epochs": spec.epochs,
        "steps": spec.epochs * steps_per_epoch,
        "forward": work.forward(),
        "loss_intro": loss_intro,
        "loss": loss_steps,
        "backprop": backprop,
        "explained": [work.explain(target) for target in explained],
        "updated": [(f"${work.notation.param(name)}$", work.m(work.params[name]), work.m(work.updated[name]))
                    for name in spec.param_names],
        "trained": work.trained(),
        "loss_plot": work.loss_plot(),
        "max_columns": max_columns,
        "digits": options.digits,
    }


def render_handouts(spec: Spec, options: HandoutOptions = HandoutOptions(),
                    model: NetworkDerivation | None = None, module=None) -> dict[str, str]:
    """{"solution": LaTeX, "student": LaTeX} for ``spec`` (``module``: its loaded generated module)."""
    context = handout_context(spec, options, model, module)
    env = latex_env()
    return {kind: render(env, f"{kind}.tex.j2", **context) for kind in ("solution", "student")}


def handout_paths(spec: Spec, directory) -> dict[str, Path]:
    """Where ``symbp derive`` writes the handouts: DIR/<name>_solution.tex, DIR/<name>_student.tex."""
    return {kind: Path(directory) / f"{spec.name}_{kind}.tex" for kind in ("solution", "student")}

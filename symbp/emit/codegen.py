"""The generated NumPy module: the derivation model printed through ``templates/module.py.j2``.

``module_source(spec)`` prepares every line (code by :class:`ArrayPrinter`, its equation by
:class:`EquationPrinter`); the template only lays them out.
"""

from __future__ import annotations

from functools import lru_cache

import io
import re
import textwrap
import zipfile
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import sympy as sp
from sympy.printing.str import StrPrinter

from ..derivation import naming
from ..derivation.calculus import B, K
from ..derivation.derive import NetworkDerivation, derive_network
from ..derivation.network import layers_from_spec, torch_parameter_keys
from .printers import (HELPERS, ArrayPrinter, BoundNames, FiniteNumbers, PositiveFirst, array_literal_rows,
                       float_literal)
from . import indexed
from .render import python_env, render
from ..rules.initializers import TRUNCATED_NORMAL_SOURCE
from ..spec import Draw, Spec
from .trace import trace_context


class EquationPrinter(BoundNames, FiniteNumbers, PositiveFirst, StrPrinter):
    """One-line plain-text equations for comments: rows by name, sums as sum_i(..)."""

    printmethod = "_symbp_str"

    def __init__(self, names: dict | None = None):
        super().__init__({})
        self.bind_names(names)

    _print_Symbol = _print_Dummy = BoundNames.bound_name

    def _print_Sum(self, expr):
        return f"rowsum({self._print(expr.function)})"

    def _print_Clip(self, expr):
        return "clip({}, {}, {})".format(*(self._print(arg) for arg in expr.args))

    def _print_MatMul(self, expr):
        factors = list(expr.args)
        if isinstance(factors[0], sp.OneMatrix):
            inner = self._print(factors[1])
            return inner if factors[0].shape[1] == 1 else f"colsum({inner})"
        return " ".join(self.parenthesize(f, 50) for f in factors)

    def _print_Transpose(self, expr):
        return f"{self.parenthesize(expr.arg, 60)}^T"

    def _print_HadamardProduct(self, expr):
        """a ⊙ b as ``a*b``: every product in these comments is element-wise, as in NumPy."""
        return "*".join(f"({self._print(f)})" if isinstance(f, sp.MatAdd) else self._print(f) for f in expr.args)

    def _print_MatAdd(self, expr):
        """a W + b: a matrix product never needs brackets in a sum (StrPrinter's Add printing
        asks each product for its precedence, a full ``doit`` of its negation, ~1 ms a layer)."""
        first, *rest = (self._print(term) for term in self._as_ordered_terms(expr))
        return " ".join([first] + [f"- {t[1:]}" if t.startswith("-") else f"+ {t}" for t in rest])

    def _print_Piecewise(self, expr):
        parts = [f"{self._print(e)} if {self._print(c)}" for e, c in expr.args[:-1]]
        return "(" + " else ".join(parts + [self._print(expr.args[-1].expr)]) + ")"


#: printed before a line whose np.where computes branches it then discards (log of a clipped-away
#: value, e^z of a large z): their overflow or 0/0 must not leak as RuntimeWarnings
UNUSED_BRANCHES_GUARD = ('with np.errstate(over="ignore", divide="ignore", invalid="ignore"):'
                         '  # np.where evaluates every branch')


@dataclass(frozen=True)
class Line:
    """One equation: ``target = code``, with the equation it implements (and a guard to run it in)."""
    target: str
    code: str
    equation: str
    guard: str = ""
    drop: tuple = ()   # names read for the last time here: a step frees them (the trace keeps them)


def array_literal(values: np.ndarray) -> str:
    """A NumPy array literal with every float written exactly (repr round-trips; finite only)."""
    return f"np.array({array_literal_rows(values)})"


#: numbers (x, y and the weights a spec gives) past which the module reads them from a sidecar
#: ``<name>_data.npz`` instead of holding them as literals: a literal costs Python ~100 bytes
#: of memory per number to compile, so 8 million of them took 6.7 GB and 20 s to import
MAX_LITERAL_NUMBERS = 4096


def module_data(spec: Spec) -> dict[str, np.ndarray]:
    """The arrays the module reads from its sidecar .npz ({} when it holds them as literals):
    X, Y and every weight or bias the spec gives, by parameter name."""
    given = {name: source for name, source in spec.initial_sources().items() if not isinstance(source, Draw)}
    arrays = {"X": np.array(spec.x, dtype=np.float64), "Y": np.array(spec.y, dtype=np.float64),
              **{name: np.asarray(value, dtype=np.float64) for name, value in given.items()}}
    return arrays if sum(a.size for a in arrays.values()) > MAX_LITERAL_NUMBERS else {}


def data_file_name(spec: Spec) -> str:
    return f"{spec.name}_data.npz"


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` as an .npz file (what np.savez writes), byte-identical for the same arrays: every
    member has the same fixed date, so regenerating a module rewrites the same sidecar."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)
    return out.getvalue()


class _Emitter:
    def __init__(self):
        self.helpers: set[str] = set()
        self.symbols_used: set[str] = set()

    def line(self, target: str, expr, names: dict, equation_lhs: str | None = None) -> Line:
        code, helpers, equation, branches_may_fail = _printed_line(expr, tuple(sorted(names.items())))
        self.helpers |= helpers
        if isinstance(expr, sp.Basic):
            self.symbols_used |= {str(s) for s in expr.free_symbols}
        guard = UNUSED_BRANCHES_GUARD if branches_may_fail else ""
        return Line(target, code, f"{equation_lhs or target} = {equation}", guard)


@lru_cache(maxsize=4096)
def _printed_line(expr, names: tuple) -> tuple[str, frozenset, str, bool]:
    """An equation as NumPy code and as text: (code, helpers it calls, equation, whether its
    unused branches may fail). The same for every student of a class (names, not numbers), so
    ``variants`` prints each once per process."""
    printer = ArrayPrinter(dict(names))
    code = printer.doprint(expr)
    return code, frozenset(printer.helpers_used), EquationPrinter(dict(names)).doprint(expr), printer.branches_may_fail


def _docstring_safe(text: str) -> str:
    """The title for the module docstring only when it is plain printable text; else ''."""
    plain = text.isprintable() and not any(ch in text for ch in '\\"\'')
    return text if plain else ""


def _float32_note(opt, key: str) -> str:
    """Why a constant differs from the spec's number: Keras casts it to float32 (a comment)."""
    source = opt.float32_of.get(key)
    if source is None:
        return ""
    given = opt.settings.get(source, opt.rule.constants.get(source))
    if opt.values[key] == float(given):
        return ""
    where = "wherever it uses it" if key == source else "where it casts it to a tensor"
    return f"Keras rounds {source} to float32 {where}, even in a float64 model: f32({given!r})"


def derive_spec(spec: Spec) -> NetworkDerivation:
    """The derivation model of ``spec``'s network, loss (with its arguments) and optimizer."""
    return derive_network(layers_from_spec(spec), spec.loss, spec.optimizer, spec.framework,
                          spec.framework == "torch" and spec.class_indices)


@dataclass(frozen=True)
class LayerLines:
    """One layer's forward lines (z, then a) and its parameters, for the module and notebooks."""
    number: int
    forward: list
    param_names: tuple


@dataclass(frozen=True)
class ModuleContext:
    """Everything ``templates/module.py.j2`` prints (and the notebooks reuse), by field name."""
    spec: Spec
    title: str
    docstring_title: str
    architecture: str
    loss_name: str
    loss_doc: str
    optimizer_name: str
    optimizer_doc: str
    loss_summary: str
    optimizer_summary: str
    param_names: list
    fixed_params: list          # parameters step returns unchanged (bias_trainable = false)
    x_literal: str
    y_literal: str
    epochs: int
    batch_size: int
    params: list
    seed: int
    data_file: str              # the sidecar .npz the module reads X, Y and given weights from, or ""
    draws_weights: bool
    initializer_helper: str
    z_names: list
    a_names: list
    gathered_names: list        # the windows (and masks) of windowed layers _forward returns too
    unread_forward: list        # large arrays of the forward pass backward never reads: dropped as it starts
    backward_drops: bool        # backward deletes large arrays once read (its docstring says so)
    delta_names: list
    layers: list                # LayerLines, input to output
    forward: list               # every layer's forward lines, in order
    loss_line: Line
    label_line: str
    labels_doc: str
    warnings: list
    backward: list
    gradient_names: list
    uses_B: bool
    uses_K: bool
    batch_reduction: str        # the batch loss from the rows' losses: "mean" or "sum" (torch)
    torch_names: list           # (parameter, its state_dict key) of a torch spec; [] for Keras
    loss_constants: list        # (constant, value, note) of the loss's arguments
    optimizer_constants: list   # (constant, value, note) of the optimizer's hyperparameters
    slots: list
    step_slots: list
    step_update: list
    update: list
    trace: object               # the trace() block's lines (symbp.emit.trace.TraceContext)
    helpers: list
    needs_math: bool

    @property
    def hyperparameters(self) -> list:
        """Every module constant: the loss's arguments, then the optimizer's."""
        return self.loss_constants + self.optimizer_constants

    def template_variables(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"hyperparameters": self.hyperparameters}


def _forward_lines(model: NetworkDerivation, emit: "_Emitter") -> list[LayerLines]:
    """z{l} = the layer rule's forward formula, a{l} = its activation, for each layer."""
    out = []
    for layer in model.layers:
        l, codes = layer.number, tuple(p.code for p in layer.calculus.rule.parameters)
        names = {**naming.layer_rule_names(l, codes), **naming.layer_names(l)}
        if layer.layer.rule.indexed:
            lines = [*indexed.gather_lines(layer, emit, Line), indexed.forward_line(layer, Line)]
        else:
            lines = [emit.line(naming.PRE_ACTIVATION.format(l=l), layer.calculus.z, names)]
        lines.append(emit.line(naming.OUTPUT.format(l=l), layer.activation.forward, names))
        out.append(LayerLines(l, lines, tuple(str(p) for p in layer.layer.param_names)))
    return out


def _rule_names(layer) -> dict[str, str]:
    """Bindings of ``layer``'s rule matrices (its input, delta and parameters) for its number."""
    return naming.layer_rule_names(layer.number, tuple(p.code for p in layer.calculus.rule.parameters))


def _backward_lines(model: NetworkDerivation, emit: "_Emitter", loss_names: dict) -> list[Line]:
    """From the output down: delta{l} (the loss's at the top, else g{l} passed down from the
    layer above then the activation's chain rule), then each parameter's gradient."""
    backward, depth = [], model.depth   # what windowed layers read: the forward pass's (gathered_names)
    for layer in reversed(model.layers):
        l = layer.number
        names = {**naming.layer_names(l), **_rule_names(layer)}
        if l == depth:
            backward.append(emit.line(naming.DELTA.format(l=l), model.loss.delta, {**names, **loss_names}))
        else:
            above = model.layers[l]
            if above.layer.rule.indexed:
                backward += indexed.passed_down_lines(above, emit, Line)
            else:
                backward.append(emit.line(naming.UPSTREAM.format(l=l), above.calculus.g_down, _rule_names(above)))
            backward.append(emit.line(naming.DELTA.format(l=l), layer.activation.backward, names))
        if layer.layer.rule.indexed:
            backward += indexed.gradient_lines(layer, emit, Line)
            continue
        for param in layer.layer.param_names:
            backward.append(emit.line(param.gradient, layer.calculus.gradients[param.kind], names))
    return backward


def _large_arrays(model: NetworkDerivation) -> tuple[list[str], list[str]]:
    """The arrays of a step that have positions, the large ones: the forward pass's (z, a, windows,
    masks of convolution and pooling layers) and backward's (g, dwin), each list in layer order."""
    forward, backward = [], []
    for layer in model.layers:
        l, gathered = layer.number, indexed.gathered_of(layer)
        forward += gathered
        if gathered:
            backward.append(naming.WINDOWS_GRADIENT.format(l=l))
        if len(layer.layer.output_shape) > 1:
            forward += [naming.PRE_ACTIVATION.format(l=l), naming.OUTPUT.format(l=l)]
            backward.append(naming.UPSTREAM.format(l=l))
    return forward, backward


def _dropping_after_last_read(lines: list[Line], model: NetworkDerivation) -> tuple[list[Line], list[str]]:
    """The backward lines, each dropping the large arrays (:func:`_large_arrays`) it reads for the
    last time, and the forward pass's large arrays backward never reads (dropped as it starts).
    With glibc malloc's defaults, the memory a step reaches is handed back to the system at its
    end and faulted in again at the next (a page fault per 4 KiB), so a LeNet step that held the
    forward pass's arrays to its end (9 MB) was 20% slower than one that drops them (6 MB).
    Deltas and gradients are returned, never dropped; a trace (``record``) keeps everything."""
    forward, backward = _large_arrays(model)
    order = {name: i for i, name in enumerate(forward + backward)}
    last_read: dict[str, int] = {}
    for i, line in enumerate(lines):
        for name in set(re.findall(r"[A-Za-z_]\w*", line.code)) & order.keys():
            last_read[name] = i
    ordered = lambda names: tuple(sorted(names, key=order.get))
    dropped = [replace(line, drop=ordered(n for n, at in last_read.items() if at == i and n != line.code))
               for i, line in enumerate(lines)]   # not a name the line's target now holds too
    return dropped, list(ordered(set(forward) - set(last_read)))


def _optimizer_lines(opt, emit: "_Emitter") -> tuple[list[Line], list[Line], dict]:
    """The per-step scalars (Python floats: weakly typed, they keep float32 parameters float32),
    the per-parameter assignments, and the constants' names."""
    opt_names = {str(sym): naming.hyperparameter(name) for name, sym in opt.symbols.items()}
    update = [emit.line(str(target), expr, opt_names) for target, expr in opt.assignments]
    step_update = [emit.line(str(target), expr, opt_names) for target, expr in opt.step_assignments]
    step_update = [Line(line.target, f"float({line.code})", line.equation) for line in step_update]
    return step_update, update, opt_names


def _constants(model: NetworkDerivation) -> tuple[list, list]:
    """(name, value, note) of the loss's arguments and of the optimizer constants its lines use."""
    loss, opt = model.loss, model.optimizer
    slot_inits = {name: init for name, (_, init) in opt.slots.items()}
    used = set().union(*(expr.free_symbols for _, expr in opt.step_assignments + opt.assignments),
                       {init for init in slot_inits.values() if isinstance(init, sp.Symbol)})
    loss_constants = [(naming.loss_argument(loss.rule.name, name), float_literal(value), f"{loss.rule.name}'s {name}")
                      for name, (_, value) in loss.arguments.items()]
    optimizer_constants = [(naming.hyperparameter(name), float_literal(opt.values[name]), _float32_note(opt, name))
                           for name, sym in opt.symbols.items() if sym in used]
    return loss_constants, optimizer_constants


def _loss_lines(model: NetworkDerivation, emit: "_Emitter", loss_names: dict) -> tuple[Line, str]:
    """The per-sample loss line, and the line turning class indices into one-hot rows (sparse)."""
    loss, depth = model.loss, model.depth
    loss_line = emit.line("per_sample", loss.per_sample, {**naming.layer_names(depth), **loss_names}, "l")
    if not loss.rule.sparse_labels:
        return loss_line, ""
    emit.helpers.add("_one_hot")
    return loss_line, (f"{naming.LABELS} = _one_hot({naming.LABELS}, {naming.OUTPUT.format(l=depth)})  "
                       f"# class indices -> one-hot rows, as Keras's sparse loss reads them")


def network_summary(layers) -> str:
    """The network of layer instances (:func:`symbp.derivation.network.layers_from_spec`) in one
    line: ``4 -> 3 tanh -> ...`` for Dense layers; each layer's type, activation and output shape
    when any is indexed (``6x6x1 -> Conv2D relu (4x4x3) -> ...``), since a CNN's widths (its
    channels) say nothing of its images."""
    if not any(layer.rule.indexed for layer in layers):
        return " -> ".join([str(layers[0].input_shape[-1])] + [f"{layer.units} {layer.activation}" for layer in layers])
    shape = lambda s: "x".join(map(str, s))
    return " -> ".join([shape(layers[0].input_shape)] + [
        f"{layer.rule.name} {layer.activation} ({shape(layer.output_shape)})" for layer in layers])


def _descriptions(model: NetworkDerivation, step_update: list, update: list) -> dict:
    """The docstring's prose: architecture, loss and optimizer as one-line summaries."""
    loss, opt = model.loss, model.optimizer
    on_logits = (f" (on the logits z, as Keras does for a {loss.activation.name} output)"
                 if loss.on_logits else "")
    loss_doc = " ".join((loss.rule.logits_formula.__doc__ if loss.on_logits else loss.rule.doc).split())
    optimizer_doc = "; ".join(line.equation for line in step_update + update)
    return {
        "architecture": network_summary([layer.layer for layer in model.layers]),
        "loss_name": loss.rule.name + on_logits, "loss_doc": loss_doc,
        "optimizer_name": opt.rule.name, "optimizer_doc": optimizer_doc,
        "loss_summary": textwrap.fill(f"Loss: {loss.rule.name}{on_logits}; {loss_doc}; {loss.batch_reduction} "
                                      f"over the batch.",
                                      95, subsequent_indent="    "),
        "optimizer_summary": textwrap.fill(f"Optimizer: {opt.rule.name}; {optimizer_doc}.", 95,
                                           subsequent_indent="    "),
    }


def _initial_values(spec: Spec) -> dict:
    """The parameters as literals or as the initializer calls that draw them."""
    sources = spec.initial_sources()
    draws = [source for source in sources.values() if isinstance(source, Draw)]
    sidecar = bool(module_data(spec))
    return {
        "data_file": data_file_name(spec) if sidecar else "",
        "params": [(name, source.code() if isinstance(source, Draw) else
                    f'_DATA["{name}"].copy()' if sidecar else array_literal(source))
                   for name, source in sources.items()],
        "seed": spec.seed,
        "draws_weights": any(draw.uses_rng for draw in draws),
        "initializer_helper": TRUNCATED_NORMAL_SOURCE if any(d.method == "truncated_normal" for d in draws) else "",
    }


def module_context(spec: Spec, model: NetworkDerivation | None = None) -> ModuleContext:
    model = model or derive_spec(spec)
    emit, loss, depth, opt = _Emitter(), model.loss, model.depth, model.optimizer
    layer_lines = _forward_lines(model, emit)
    loss_names = {str(sym): naming.loss_argument(loss.rule.name, name)
                  for name, (sym, _) in loss.arguments.items()}
    loss_line, label_line = _loss_lines(model, emit, loss_names)
    backward, unread_forward = _dropping_after_last_read(_backward_lines(model, emit, loss_names), model)
    step_update, update, opt_names = _optimizer_lines(opt, emit)
    loss_constants, optimizer_constants = _constants(model)
    trace = trace_context(model, emit, loss_names)   # before the helpers: its lines may use some
    names = [param for layer in model.layers for param in layer.layer.param_names]
    return ModuleContext(
        spec=spec, title=repr(spec.title or spec.name),
        docstring_title=_docstring_safe(spec.title) or spec.name,
        **_descriptions(model, step_update, update),
        param_names=[str(name) for name in names],
        fixed_params=spec.fixed_params,
        x_literal='_DATA["X"]' if module_data(spec) else array_literal(np.array(spec.x)),
        y_literal='_DATA["Y"]' if module_data(spec) else array_literal(np.array(spec.y)),
        epochs=spec.epochs, batch_size=spec.batch_size, **_initial_values(spec),
        z_names=[naming.PRE_ACTIVATION.format(l=l) for l in range(1, depth + 1)],
        a_names=[naming.OUTPUT.format(l=l) for l in range(depth + 1)],
        gathered_names=indexed.gathered_names(model.layers),
        delta_names=[naming.DELTA.format(l=l) for l in range(1, depth + 1)],
        layers=layer_lines, forward=[line for layer in layer_lines for line in layer.forward],
        loss_line=loss_line, label_line=label_line,
        labels_doc=("Y holds one class index per sample (a column); loss and gradients take "
                    "their one-hot rows." if loss.rule.sparse_labels else ""),
        warnings=[textwrap.fill(f"Warning: {warning}.", 95) for warning in model.warnings],
        backward=backward, unread_forward=unread_forward,
        backward_drops=bool(unread_forward) or any(line.drop for line in backward),
        gradient_names=[(str(name), name.gradient) for name in names],
        uses_B=str(B) in emit.symbols_used, uses_K=str(K) in emit.symbols_used,
        batch_reduction=loss.batch_reduction,
        torch_names=[(str(name), key) for name, key in torch_parameter_keys(layers_from_spec(spec))]
        if spec.framework == "torch" else [],
        loss_constants=loss_constants, optimizer_constants=optimizer_constants,
        slots=[(name, opt_names[str(init)] if isinstance(init, sp.Symbol) else float_literal(init))
               for name, (_, init) in opt.slots.items()],
        step_slots=[(name, float_literal(init)) for name, (_, init) in opt.step_slots.items()],
        step_update=step_update, update=update, trace=trace,
        helpers=[(name, *HELPERS[name]) for name in sorted(emit.helpers)],
        needs_math="_erfc" in emit.helpers)


def module_source(spec: Spec, model: NetworkDerivation | None = None) -> str:
    return render(python_env(), "module.py.j2", **module_context(spec, model).template_variables())


def module_path(spec: Spec, directory: Path) -> Path:
    return Path(directory) / f"{spec.name}.py"


def module_files(spec: Spec, directory: Path, source: str | None = None) -> dict[Path, str | bytes]:
    """What ``symbp codegen`` writes: the module, and its sidecar .npz when it has one."""
    files: dict[Path, str | bytes] = {module_path(spec, directory): source or module_source(spec)}
    data = module_data(spec)
    if data:
        files[Path(directory) / data_file_name(spec)] = npz_bytes(data)
    return files

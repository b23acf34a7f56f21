"""The assignment as Jupyter notebooks: a student's copy and its solution, for any spec.

Both come from ``templates/notebook.py.j2`` (cells in "percent" form: a line ``# %%`` starts a
code cell, ``# %% [markdown]`` a markdown cell, `` tags=a,b`` adds Jupyter cell tags). Every
NumPy line is the generated module's (``module_context``) or printed from the same derivation
(the per-parameter update). The notebook does one training step on the spec's first batch, then
``model.fit`` on that batch in Keras, and prints "They match!" per weight and bias.

Cells tagged ``answer`` hold the answers (the student's copy has ``...`` there). The solution
shows every answer's printed output and both copies show the completed cells' output: what each
cell's prints show, with the values of the generated module's ``trace`` (nothing is run here).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy as sp

from ..derivation import naming
from .codegen import EquationPrinter, Line, ModuleContext, array_literal, derive_spec, module_context
from ..derivation.derive import NetworkDerivation, derive_activation
from ..derivation.naming import ParamName
from .elision import shown, shown_source
from .printers import HELPERS, ArrayPrinter
from .render import python_env, render
from ..spec import LossSpec, Spec
from ..witnesses.tolerance import TOLERANCES

TEMPLATE = "notebook.py.j2"
KINDS = ("student", "solution")
#: cells that need Keras (or its results): never run here
NOT_RUN_HERE = {"keras", "torch", "validation"}
#: the validation cells' tolerance (symbp.witnesses.tolerance: relative to each value's scale)
TOLERANCE = TOLERANCES["float64"]
#: NumPy's print options in a fresh kernel (the outputs shown must be what it prints)
FRESH_PRINT_OPTIONS = dict(precision=8, threshold=1000, edgeitems=3, linewidth=75, suppress=False,
                           nanstr="nan", infstr="inf", sign="-", floatmode="maxprec", legacy=False)
_CELL_START = re.compile(r"# %%(?P<markdown> \[markdown\])?(?: tags=(?P<tags>[\w,-]+))?")


@dataclass(frozen=True)
class Answer:
    """One line a student completes: the solution's ``target = code`` and a hint (no answer in it)."""
    target: str
    code: str
    equation: str
    hint: str


@dataclass(frozen=True)
class AnswerCell:
    lines: list[Answer]
    printed: str


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def layer_name(l: int, depth: int) -> str:
    """Layer l in words (0 is the input layer)."""
    return "input layer" if l == 0 else "output layer" if l == depth else f"hidden layer {l}"


def _activation_functions(spec: Spec) -> tuple[list[dict], set[str]]:
    """Each activation of the network: its forward formula and its derivative, printed by
    ArrayPrinter from the SymPy derivation (row-wise rules: the backward rule from g)."""
    functions, helpers = [], set()
    for name in dict.fromkeys(layer.activation for layer in spec.layers):
        derivation = derive_activation(name, framework=spec.framework)
        names = {"z": "z", "a": "a", "g": "g"}
        forward = ArrayPrinter(names)
        entry = {"name": name, "doc": derivation.rule.doc, "forward": forward.doprint(derivation.forward)}
        helpers |= forward.helpers_used
        expr = derivation.derivative if derivation.derivative is not None else derivation.backward
        printer = ArrayPrinter(names)
        code = printer.doprint(expr)
        helpers |= printer.helpers_used
        bases = {str(e.base) for e in sp.sympify(expr).atoms(sp.Indexed)}
        if derivation.derivative is not None:
            entry["derivative_name"] = f"derivative_{name}"
            entry["arguments"] = [b for b in ("z", "a") if b in bases] or ["z"]
            entry["derivative"] = code if bases else f"np.full_like(z, {code})"
            entry["derivative_doc"] = (f"f'(z) = {EquationPrinter(names).doprint(expr)}"
                                       + (", with a = f(z)" if "a" in bases else ""))
        else:
            entry["derivative_name"] = f"backward_{name}"
            entry["arguments"] = [b for b in ("z", "a", "g") if b in bases]
            entry["derivative"] = code
            entry["derivative_doc"] = (f"dL/dz = {EquationPrinter(names).doprint(expr)}: the Jacobian "
                                       "of the row applied to g = dL/da")
        functions.append(entry)
    return functions, helpers


def _update_lines(model: NetworkDerivation, param: str, gradient: str) -> list[Line]:
    """The optimizer's assignments for one parameter, named for the notebook (W2 -> W2_updated)."""
    opt = model.optimizer
    names = {str(sym): naming.hyperparameter(name) for name, sym in opt.symbols.items()}
    names[str(opt.grad)] = gradient
    names.update({str(sym): naming.SLOT.format(slot=slot, param=param) for slot, (sym, _) in opt.slots.items()})
    current, lines = param, []
    for target, expr in opt.assignments:
        names[str(opt.w)] = current
        if target == opt.w:
            current = naming.UPDATED.format(param=param)
        if target != opt.w and str(target) not in names:   # an intermediate (nadam's m_hat, ...)
            names[str(target)] = f"{target}_{param}"
        name = current if target == opt.w else names[str(target)]
        lines.append(Line(name, ArrayPrinter(names).doprint(expr),
                          f"{name} = {EquationPrinter(names).doprint(expr)}"))
    return lines


#: losses Keras lacks, as the notebook defines them (symbp.witnesses.keras.CUSTOM_LOSSES)
CUSTOM_LOSS_SOURCE = {
    "half_sum_squared_error": ("def half_sum_squared_error(y_true, y_pred):\n"
                               "    \"\"\"E = 1/2 sum over the outputs; compile averages it over the batch.\"\"\"\n"
                               "    return 0.5 * keras.ops.sum(keras.ops.square(y_pred - y_true), axis=-1)\n"),
}


def keras_loss_source(loss: LossSpec) -> str:
    """The spec's loss as the notebook's ``compile`` gets it: its name, its Keras class with the
    arguments (``keras.losses.Huber(delta=0.5)``), as :func:`symbp.witnesses.keras.keras_loss`,
    or the function CUSTOM_LOSS_SOURCE defines."""
    if loss.name in CUSTOM_LOSS_SOURCE:
        return loss.name
    arguments = {k: float(v) for k, v in loss.arguments.items()}
    if not arguments:
        return repr(loss.name)
    cls = "".join(part.title() for part in loss.name.split("_"))
    return f"keras.losses.{cls}(" + ", ".join(f"{k}={v!r}" for k, v in arguments.items()) + ")"


#: characters with a meaning in Markdown (and MathJax's $) that a title must not start
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#|$~])")


def torch_section(spec: Spec) -> dict:
    """Section 2 of a torch spec's notebook: the nn.Sequential's modules, the loss and the
    optimizer as code (torch's class names, the spec's numbers by repr: never its text)."""
    from ..rules import activations, torch_losses, torch_optimizers
    from ..witnesses.torch import ACTIVATION_MODULES

    def call(prefix: str, arguments: dict) -> str:
        return prefix + ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in arguments.items()) + ")"

    modules, inputs = [], len(spec.x[0])
    for layer in spec.layers:
        modules.append(f"nn.Linear({inputs}, {layer.units})")
        name = activations.canonical(layer.activation)
        if name != "linear":
            class_name, arguments = ACTIVATION_MODULES[name]
            modules.append(call(f"nn.{class_name}(", arguments))
        inputs = layer.units
    loss = torch_losses[spec.loss.name]
    optimizer = torch_optimizers[spec.optimizer.name]
    return {"torch": True, "torch_modules": modules,
            "torch_loss": call(f"nn.{loss.name}(", spec.loss.arguments),
            "torch_optimizer": call(f"torch.optim.{optimizer.name}(model.parameters(), ", spec.optimizer.arguments)
                               .replace("(model.parameters(), )", "(model.parameters())")}


def markdown_text(text: str) -> str:
    """``text`` as Markdown that shows it literally: Markdown's and MathJax's characters
    backslash-escaped, and ``&``, ``<``, ``>`` as HTML entities, so raw HTML in a title (or a
    Keras file's name) shows as text and never becomes a tag, a link or a script."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _answer(line: Line, meaning: str, shape) -> Answer:
    return Answer(line.target, line.code, line.equation, f"{meaning}, shape {_shape(shape)}")


def _kernel_and_bias(layer) -> tuple[str | None, str | None]:
    """The notebook's two parameter slots of a layer (its text speaks of weights and thetas);
    None for a layer without parameters (pooling, Flatten)."""
    by_kind = {name.kind: str(name) for name in layer.layer.param_names}
    return by_kind.get("kernel"), by_kind.get("bias")


def _forward_layers(module: ModuleContext, model: NetworkDerivation, params: dict) -> list[dict]:
    """Section 1.1: each layer's given parameters and its forward lines."""
    layers, depth = [], model.depth
    for layer, lines in zip(model.layers, module.layers):
        l = layer.number
        kernel, bias = _kernel_and_bias(layer)
        layers.append({
            "number": l, "kernel": kernel, "bias": bias,
            "kernel_literal": array_literal(params[kernel]) if kernel else "",
            "bias_literal": array_literal(params[bias]) if bias else "",
            "lower": layer_name(l - 1, depth), "upper": layer_name(l, depth), "type": layer.layer.rule.name,
            "forward": lines.forward, "output": naming.OUTPUT.format(l=l)})
    return layers


def _fixed_update(param: str) -> list[Line]:
    """A parameter training keeps (bias_trainable = false): its update is itself."""
    updated = naming.UPDATED.format(param=param)
    return [Line(updated, f"{param}.copy()", f"{updated} = {param} (kept fixed: bias_trainable = false)")]


def _backward_steps(module: ModuleContext, model: NetworkDerivation, params: dict, rows: int,
                    values: dict) -> list[dict]:
    """Section 1.3 below the output delta: each layer's gradients and updates, then the delta
    passed down (through an indexed layer: dL/dwin first), from the output layer to the first.
    ``values``: the traced step (:func:`traced_values`), for the shapes of dL/dwin."""
    by_target = {line.target: line for line in module.backward}
    depth, backward = model.depth, []
    for layer in reversed(model.layers):
        l = layer.number
        kernel, bias = _kernel_and_bias(layer)
        step = {"number": l, "kernel": kernel, "bias": bias, "type": layer.layer.rule.name,
                "lower": layer_name(l - 1, depth), "upper": layer_name(l, depth)}
        for name in layer.layer.param_names:
            param, shape = str(name), params[str(name)].shape
            lines = [_answer(by_target[name.gradient], f"dL/d{param}", shape)]
            lines += [_answer(line, "the updated " + param if line.target == naming.UPDATED.format(param=param)
                              else f"the new {line.target}", shape)
                      for line in (_fixed_update(param) if param in module.fixed_params
                                   else _update_lines(model, param, name.gradient))]
            step[param] = AnswerCell(lines, naming.UPDATED.format(param=param))
        step["delta"] = None
        if l > 1:
            below, delta = naming.UPSTREAM.format(l=l - 1), naming.DELTA.format(l=l - 1)
            shape = (rows, *layer.layer.input_shape)
            windows = naming.WINDOWS_GRADIENT.format(l=l)
            through = [_answer(by_target[windows], f"dL/d{naming.WINDOWS.format(l=l)}",
                               np.shape(values[windows]))] if layer.layer.rule.indexed else []
            step["delta"] = AnswerCell(
                through + [_answer(by_target[below], f"dL/d{naming.OUTPUT.format(l=l - 1)}", shape),
                           _answer(by_target[delta], f"dL/d{naming.PRE_ACTIVATION.format(l=l - 1)}", shape)], delta)
        backward.append(step)
    return backward


def keras_layer_source(layer) -> str:
    """The Keras constructor of a layer, after ``keras.layers.``: ``Dense(3, activation="tanh")``,
    ``Conv2D(filters=3, kernel_size=3, activation="relu")`` (the arguments the spec gives)."""
    if layer.rule.name == "Dense":
        return f'Dense({layer.units}, activation="{layer.activation}")'
    name, arguments = layer.rule.keras_layer(layer.arguments)
    return f"{name}({', '.join(f'{key}={value!r}' for key, value in arguments.items())})"


def _check_description(param: str, depth: int) -> str:
    """Section 3's words for a parameter: the weights between two layers, or a layer's thetas."""
    name = ParamName.parse(param)
    if name.kind == "kernel":
        return f"weights between {layer_name(name.layer, depth)} and {layer_name(name.layer + 1, depth)}"
    return f"biases (thetas) in {layer_name(name.layer + 1, depth)}"


#: numbers a notebook writes out as literals (the first batch's x and y, every weight and bias):
#: the notebook is self-contained and read cell by cell, so past this it is refused, not written
MAX_NOTEBOOK_NUMBERS = 100_000


def check_notebook_size(spec: Spec) -> None:
    """Refuse (exit 2) a spec whose notebook would hold more than MAX_NOTEBOOK_NUMBERS literals."""
    from ..derivation.network import layers_from_spec
    rows = min(spec.batch_size, len(spec.x))
    numbers = rows * (int(np.size(spec.x[0])) + len(spec.y[0])) + sum(
        int(np.prod(layer.param_shape(name.kind))) for layer in layers_from_spec(spec) for name in layer.param_names)
    if numbers > MAX_NOTEBOOK_NUMBERS:
        from ..errors import UnusableInput
        raise UnusableInput(f"--notebook: the notebooks would write {numbers:,} numbers as literals (the "
                            f"first batch's x and y, every weight and bias); at most "
                            f"{MAX_NOTEBOOK_NUMBERS:,}: use a smaller network or batch for the notebooks")


@dataclass(frozen=True)
class AskedEntry:
    """An entry the sheets ask for (--ask), as the notebook's answer cell: the notebook's
    variable holding it, the rows and columns selected (slices), its label as the handout
    names it (written from the parsed entry, never from the user's text)."""
    label: str
    variable: str
    index: tuple[slice, ...]
    cell: AnswerCell

    def select(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values)[self.index]


def _slice_code(part: slice) -> str:
    return f"{part.start}:{part.stop}"


def asked_entries(options, module: ModuleContext, values: dict) -> list[AskedEntry]:
    """The --ask entries (symbp.emit.handouts.HandoutOptions.asked) as answer cells: ``asked_1 =
    W0_updated[0:2, 0:3]``, every axis of the quantity (its shape ``values``', the traced step's)
    sliced; an entry whose quantity the notebook does not compute is an error."""
    from ..errors import HandoutError
    if options is None:
        return []
    variables = ({line.target for line in module.backward} | set(module.a_names[1:])
                 | {naming.UPDATED.format(param=p) for p in module.param_names})
    out = []
    for k, ask in enumerate(options.asked, start=1):
        variable = ask.quantity(options.first_index)
        if variable not in variables:
            raise HandoutError(f"--ask {ask.text!r}: the notebooks compute no {variable} (they ask "
                               f"for the layers' outputs, deltas, g, gradients and updated parameters)")
        try:
            index = tuple(slice(axis[0], axis[-1] + 1) for axis in ask.picked(np.shape(values[variable])))
        except ValueError as err:
            raise HandoutError(f"--ask {ask.text!r}: {err}") from None
        base = variable.removesuffix("_updated").removeprefix("d") if ask.kind in ("gradient", "updated") else None
        name = (f"{'d' if ask.kind == 'gradient' else ''}{ParamName.parse(base).printed(options.first_index)}"
                if base else variable)
        label = f"{name}[{', '.join(map(_slice_code, index))}]"
        code = f"{variable}[{', '.join(map(_slice_code, index))}]"
        what = "the updated " + name if ask.kind == "updated" else name
        target = f"asked_{k}"
        out.append(AskedEntry(label, variable, index, AnswerCell(
            [Answer(target, code, f"{target} = {code}", f"entries {label} of {what} ({variable} here)")], target)))
    return out


def notebook_context(spec: Spec, model: NetworkDerivation | None = None, options=None) -> dict:
    """Everything the notebook template prints for one step on the first batch (``options``: --ask)."""
    check_notebook_size(spec)
    model = model or derive_spec(spec)
    module = module_context(spec, model)
    depth, params = model.depth, spec.initial_params()
    x, y = np.array(spec.x[:spec.batch_size]), np.array(spec.y[:spec.batch_size])
    rows = len(x)
    output_delta = naming.DELTA.format(l=depth)
    output_line = next(line for line in module.backward if line.target == output_delta)
    values = traced_values(spec, model)
    functions, helpers = _activation_functions(spec)
    helpers |= {name for name, *_ in module.helpers}
    uses_t = any(expr.has(model.optimizer.t)
                 for _, expr in model.optimizer.step_assignments + model.optimizer.assignments)
    return {
        "title": markdown_text(spec.title or spec.name),
        "architecture": module.architecture,
        "loss_name": module.loss_name,
        "optimizer_name": module.optimizer_name,
        "optimizer_doc": module.optimizer_doc,
        "first_batch_only": rows < len(spec.x) or spec.epochs > 1,
        "rows": rows, "all_rows": len(spec.x), "epochs": spec.epochs,
        "helpers": [(name, *HELPERS[name]) for name in sorted(helpers)],
        "needs_math": "_erfc" in helpers,
        "activations": functions,
        "x_literal": array_literal(x), "y_literal": array_literal(y),
        "layers": _forward_layers(module, model, params),
        "loss_line": module.loss_line,
        "loss_constants": module.loss_constants,
        "hyperparameters": module.optimizer_constants,
        "sparse_labels": model.loss.rule.sparse_labels,
        "uses_t": uses_t,
        "step_slots": module.step_slots,
        "step_update": module.step_update,
        "slots": [(naming.SLOT.format(slot=slot, param=param), param, init)
                  for slot, init in module.slots for param in module.param_names],
        "output_delta": AnswerCell([_answer(output_line, f"dL/d{naming.PRE_ACTIVATION.format(l=depth)}",
                                            (rows, model.layers[-1].units))], output_delta),
        "output_z": naming.PRE_ACTIVATION.format(l=depth),
        "backward": _backward_steps(module, model, params, rows, values),
        "notation": notebook_notation(model),
        **_framework_section(spec, model, module),
        "shown_source": shown_source().rstrip("\n"), "asked": asked_entries(options, module, values),
    }


def _framework_section(spec: Spec, model: NetworkDerivation, module: ModuleContext) -> dict:
    """Section 2 and 3 of the notebook: the same model in Keras (or PyTorch), and a check per
    parameter and the loss against the framework's numbers."""
    torch = spec.framework == "torch"
    result = naming.TORCH_RESULT if torch else naming.KERAS_RESULT
    return {
        "input_shape": _shape(model.layers[0].layer.input_shape),
        "outputs": model.layers[-1].units,
        "keras_layers": [keras_layer_source(layer.layer) for layer in model.layers],
        "optimizer_config": repr({"class_name": spec.optimizer.name, "config": dict(spec.optimizer.arguments)}),
        "loss_keras": "" if torch else keras_loss_source(spec.loss),
        "custom_loss": CUSTOM_LOSS_SOURCE.get(spec.loss.name, ""),
        "frozen_biases": [n for n, layer in enumerate(spec.layers) if not layer.bias_trainable],
        "param_names": module.param_names,
        "keras_names": [result.format(param=p) for p in module.param_names],
        "checks": [(p, result.format(param=p), naming.UPDATED.format(param=p),
                    _check_description(p, model.depth)) for p in module.param_names],
        "witness": "PyTorch" if torch else "Keras",
        "witness_loss": "loss_torch" if torch else "loss_keras",
        **(torch_section(spec) if torch else {"torch": False}),
        "tolerance": repr(TOLERANCE.relative),
    }


def notebook_notation(model: NetworkDerivation) -> list[str]:
    """The notation sentences of a network with indexed layers (:mod:`symbp.emit.notation`, the
    handouts' text), in the notebook's names W_{l-1}, b_{l-1}; [] for a Dense network."""
    if not model.has_indexed_layers:
        return []
    from .notation import indexed_notation
    return indexed_notation((layer.layer.rule for layer in model.layers), model.depth, "W_{l-1}", "b_{l-1}",
                            "biases (thetas)")


# ---------------------------------------------------------------- cells
def split_cells(text: str) -> list[tuple[str, list[str], str]]:
    """(kind, tags, source) of every cell in percent form."""
    cells: list[tuple[str, list[str], list[str]]] = []
    for line in text.splitlines():
        start = _CELL_START.fullmatch(line)
        if start:
            cells.append(("markdown" if start["markdown"] else "code",
                          start["tags"].split(",") if start["tags"] else [], []))
        elif cells:
            cells[-1][2].append(line)
        elif line.strip():
            raise ValueError(f"notebook template: text before the first cell: {line!r}")
    return [(kind, tags, "\n".join(body).strip("\n")) for kind, tags, body in cells]


def traced_values(spec: Spec, model: NetworkDerivation) -> dict[str, object]:
    """The notebook's variables after its step, by the notebook's names, from the generated
    module's ``trace`` of the first batch: x, y (the label rows), W0, b0, ..., a1, ..., loss,
    each delta, g, dW, db, and each ``<param>_updated``."""
    from ..witnesses.module import spec_module
    module = spec_module(spec, model)   # with its sidecar data, when it has one
    params = module.initial_params()
    rows = min(spec.batch_size, len(spec.x))
    trace = module.trace(params, module.X[:rows], module.Y[:rows])
    values = {key: value for key, value in trace.items() if isinstance(value, (np.ndarray, float))}
    values.update(params, x=trace[naming.OUTPUT.format(l=0)], loss=np.float64(trace["loss"]))
    values.update({naming.UPDATED.format(param=name): value for name, value in trace["updated"].items()})
    return values


def _printed(call: ast.Call, values: dict) -> str:
    """What ``print(...)`` of string constants and variable names prints, from ``values``."""
    parts = []
    for argument in call.args:
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            parts.append(argument.value)
        elif isinstance(argument, ast.Name) and argument.id in values:
            parts.append(str(values[argument.id]))
        elif (isinstance(argument, ast.Call) and getattr(argument.func, "id", "") == "shown"
              and len(argument.args) == 1 and getattr(argument.args[0], "id", None) in values):
            parts.append(str(shown(values[argument.args[0].id])))   # the notebook's own elision
        else:
            raise ValueError(f"notebook template: a print of {ast.dump(argument)} has no traced value")
    return " ".join(parts) + "\n"


def printed_outputs(cells: list[tuple[str, list[str], str]], values: dict) -> dict[int, str]:
    """What each code cell not tagged NOT_RUN_HERE prints, index -> text: each of its prints
    (statements of the cell) with the traced values, as a fresh kernel prints them. Nothing runs."""
    printed = {}
    for index, (kind, tags, source) in enumerate(cells):
        if kind != "code" or NOT_RUN_HERE & set(tags):
            continue
        calls = [node.value for node in ast.parse(source).body if isinstance(node, ast.Expr)
                 and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "print"]
        with np.printoptions(**FRESH_PRINT_OPTIONS):
            printed[index] = "".join(_printed(call, values) for call in calls)
    return printed


def notebooks(spec: Spec, model: NetworkDerivation | None = None, options=None) -> dict:
    """{"student": notebook, "solution": notebook} (nbformat v4 nodes); run cells show their output.
    ``options``: the handouts' (the entries --ask selects are asked in a cell of their own)."""
    import nbformat
    from nbformat import v4

    context = notebook_context(spec, model, options)
    cells = {kind: split_cells(render(python_env(), TEMPLATE, solution=(kind == "solution"), **context))
             for kind in KINDS}
    if [(k, t) for k, t, _ in cells["student"]] != [(k, t) for k, t, _ in cells["solution"]]:
        raise AssertionError("notebook template: student and solution cells differ in structure")
    values = traced_values(spec, model or derive_spec(spec))
    values.update({entry.cell.printed: entry.select(values[entry.variable]) for entry in context["asked"]})
    printed = printed_outputs(cells["solution"], values)
    out = {}
    for kind in KINDS:
        nb = v4.new_notebook()
        nb.metadata.update({
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}})
        for index, (cell_kind, tags, source) in enumerate(cells[kind]):
            metadata = {"tags": tags} if tags else {}
            # ids by position, not nbformat's random ones: the same spec gives the same bytes
            if cell_kind == "markdown":
                nb.cells.append(v4.new_markdown_cell(source, metadata=metadata, id=f"cell-{index}"))
                continue
            cell = v4.new_code_cell(source, metadata=metadata, id=f"cell-{index}")
            if index in printed and (kind == "solution" or "answer" not in tags) and printed[index]:
                cell.outputs = [v4.new_output("stream", name="stdout", text=printed[index])]
            nb.cells.append(cell)
        nbformat.validate(nb)
        out[kind] = nb
    return out


def notebook_paths(spec: Spec, directory: Path) -> dict[str, Path]:
    return {kind: Path(directory) / f"{spec.name}_{kind}.ipynb" for kind in KINDS}


def rendered_notebooks(spec: Spec, directory: Path, model: NetworkDerivation | None = None,
                       nbgrader=False, options=None) -> dict[Path, str]:
    """DIR/<name>_student.ipynb and DIR/<name>_solution.ipynb: path -> JSON text (nothing written).
    ``nbgrader``: with nbgrader's cell metadata and autograder cells (symbp.classroom.nbgrader;
    True: a class of this spec alone, or the GradedClass of a class of variants)."""
    import nbformat
    books = notebooks(spec, model, options)
    if nbgrader:
        from ..classroom.nbgrader import GradedClass, add_nbgrader_cells, key_quantities
        graded = nbgrader if isinstance(nbgrader, GradedClass) else None
        books = {kind: add_nbgrader_cells(nb, spec, key_quantities(spec), kind == "solution", graded)
                 for kind, nb in books.items()}
    return {path: nbformat.writes(books[kind]) + "\n" for kind, path in notebook_paths(spec, directory).items()}

"""Lines of the indexed layers (convolution, pooling, Flatten) in the generated module.

Each indexed rule (:mod:`symbp.rules.layers`) reads its input through a Gather: the line
``win{l} = _windows(a{l-1}, window, strides, padding)`` (a strided view of the padded input, no
copy) or ``a{l-1}`` flattened; pooling's selection weights ``mask{l}`` (the forward pass hands
windows and masks to the backward pass); then its entry formula and its derived entry
gradients, each printed as one ``np.tensordot`` or ``np.einsum`` (:class:`EinsumPrinter`), with
the formula in index notation as the line's comment. The gradient passed down is the derived
``dwin{l}`` added back by the windows' adjoint (``_windows_adjoint``) or reshaped.
"""

from __future__ import annotations

from ..derivation import naming
from ..rules.layers import MASKS
from .printers import EinsumPrinter, IndexNotationPrinter


def _names(layer) -> dict[str, str]:
    return naming.indexed_names(layer.number, tuple(p.code for p in layer.calculus.rule.parameters))


def indexed_line(line_class, target: str, indices: tuple, expr, names: dict, offsets_summed: bool = False,
                 emit=None):
    """``target = <einsum>  # target[indices] = <formula in index notation>``; offsets_summed: see
    :class:`EinsumPrinter`; the helpers the code calls are added to ``emit.helpers``."""
    printer = EinsumPrinter(indices, names, offsets_summed)
    code = printer.doprint(expr)
    if emit is not None:
        emit.helpers |= printer.helpers_used
    return line_class(target, code, entry_equation(target, indices, expr, names))


def entry_equation(target: str, indices: tuple, expr, names: dict) -> str:
    """``target[indices] = <formula in index notation>``: an indexed line's comment."""
    entry = ",".join(str(s).rstrip("'") for s in indices)
    return f"{target}[{entry}] = {IndexNotationPrinter(names).doprint(expr)}"


def window_geometry(layer) -> tuple[tuple, tuple, str]:
    """(window, strides, padding) of an indexed layer's windows, as literals go in its lines."""
    return layer.layer.window_geometry()


def gather_lines(layer, emit, line_class) -> list:
    """win{l} (and mask{l}) of indexed layer ``layer``: what its entry formula reads."""
    l, gather = layer.number, layer.calculus.rule.gather
    a_prev, win, mask = naming.OUTPUT.format(l=l - 1), naming.WINDOWS.format(l=l), naming.MASK.format(l=l)
    if gather.kind == "flatten":
        return [line_class(win, f"{a_prev}.reshape(len({a_prev}), -1)", f"{win} = {a_prev} in rows (C order)")]
    window, strides, padding = window_geometry(layer)
    squeeze = f"[:, {', '.join(['0'] * len(window))}]" if gather.global_window else ""
    emit.helpers.add("_windows")
    ones = f'_windows(np.ones_like({a_prev}[:1]), {window}, {strides}, "{padding}"){squeeze}'
    copied = bool(layer.calculus.rule.parameters)   # a convolution's: read by two products (see _window_rows)
    if copied:
        emit.helpers.add("_window_rows")
    gathered = f'{"_window_rows" if copied else "_windows"}({a_prev}, {window}, {strides}, "{padding}"){squeeze}'
    lines = [line_class(win, gathered, f"{win}[n,p..,k,u..] = {a_prev}[n, p*s+u - pad, .., k]: the "
                        f"{'x'.join(map(str, window))} windows, strides {strides}, {padding} padding"
                        + (", copied into rows" if copied else ""))]
    if gather.selects_maximum:
        helper = f"_{gather.mask}"   # _first_max (MaxPooling) or _shared_max (GlobalMaxPooling): see MASKS
        emit.helpers.add(helper)
        inside = f", {ones}" if padding == "same" else ""
        maximum = naming.WINDOW_MAX.format(l=l)
        lines.append(line_class(f"{mask}, {maximum}", f"{helper}({win}, {len(window)}{inside})",
                                f"{mask} = {MASKS[gather.mask]}; "
                                f"{maximum} = that maximum"))
    elif gather.mask == "mean":
        emit.helpers.add("_mean_mask")
        lines.append(line_class(mask, f"_mean_mask({ones}, {len(window)})",
                                f"{mask} = 1 / (entries of the input in the window)"))
    return lines


def gathered_of(layer) -> list[str]:
    """win{l} and mask{l} of a windowed layer (convolution, pooling), [] of any other."""
    gather = layer.layer.rule.gather if layer.layer.rule.indexed else None
    if gather is None or gather.kind != "windows":
        return []
    return [naming.WINDOWS.format(l=layer.number)] + ([naming.MASK.format(l=layer.number)] if gather.mask else [])


def gathered_names(layers) -> list[str]:
    """win{l} and mask{l} of every windowed layer, input to output: what the forward pass hands
    the backward pass besides z and a (the windows are views, max pooling's mask costs as much as
    the pooling itself)."""
    return [name for layer in layers for name in gathered_of(layer)]


def forward_line(layer, line_class):
    """z{l} = the rule's entry formula over win{l}; max pooling's is the maximum its mask's helper
    (``_first_max``, ``_shared_max``) found with the mask (the entry the mask's weighted sum
    selects: the same number, one product less)."""
    calculus, gather = layer.calculus, layer.calculus.rule.gather
    z = naming.PRE_ACTIVATION.format(l=layer.number)
    if gather.selects_maximum:
        maximum = naming.WINDOW_MAX.format(l=layer.number)
        equation = entry_equation(z, calculus.out, calculus.z, _names(layer))
        return line_class(z, maximum, f"{equation}: {maximum}, the maximum {naming.MASK.format(l=layer.number)} selects")
    return indexed_line(line_class, z, calculus.out, calculus.z, _names(layer),
                        offsets_summed=gather.kind == "windows" and not gather.global_window)


def gradient_lines(layer, emit, line_class) -> list:
    """dW{n}, db{n}: the derived entry gradients of the layer's parameters."""
    names = _names(layer)
    lines = []
    for param in layer.layer.param_names:
        entry, formula = layer.calculus.gradients[param.kind]
        lines.append(indexed_line(line_class, param.gradient, entry.indices, formula, names, emit=emit))
    return lines


def passed_down_lines(above, emit, line_class) -> list:
    """g{l} from indexed layer ``above`` (l + 1): dwin{l+1} (derived), then the gather's adjoint."""
    l = above.number - 1
    target, formula = above.calculus.g_win
    dwin, g = naming.WINDOWS_GRADIENT.format(l=l + 1), naming.UPSTREAM.format(l=l)
    z = naming.PRE_ACTIVATION.format(l=l)   # a{l}'s shape: z{l} is still needed below, a{l} is not
    lines = [indexed_line(line_class, dwin, target.indices, formula, _names(above))]
    if above.calculus.rule.gather.kind == "flatten":
        return lines + [line_class(g, f"{dwin}.reshape({z}.shape)", f"{g} = {dwin} in a{l}'s shape")]
    window, strides, padding = window_geometry(above)
    if above.calculus.rule.gather.global_window:
        dwin = f"{dwin}[:, {', '.join(['None'] * len(window))}]"
    emit.helpers.add("_windows_adjoint")
    return lines + [line_class(g, f'_windows_adjoint({dwin}, {z}.shape, {window}, {strides}, "{padding}")',
                               f"{g}[n, i.., k] = sum of {naming.WINDOWS_GRADIENT.format(l=l + 1)} over the window entries that read a{l}[n, i.., k]")]

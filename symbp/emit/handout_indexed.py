"""The worked solution of the indexed layers (convolution, pooling, Flatten, global pooling).

Each indexed layer rule (:mod:`symbp.rules.layers`) states one entry formula over the windows
``win`` of its input; :func:`symbp.derivation.derive.derive_indexed_layer` derives its entry
gradients. The handout prints those formulas, not typed TeX: the rule with its window read back
in the input (``win_l[n,p,q,k,u,v] = a_{l-1}[n, p s + u - pad, q s + v - pad, k]``, the layer's
strides and padding filled in), its sums' limits the layer's sizes; one entry worked out term by
term (SymPy's ``doit`` writes the sum out, the printer puts the trace's numbers in); every
feature map as a matrix per sample and channel; max pooling's selected entries boxed.

Every number is read from the generated module's ``trace`` (win, mask, z, a, delta, g, dwin,
gradients); this module only picks entries and positions. The layouts (maps, boxes, blanks) are
the presenters' (:mod:`symbp.emit.handout_latex`, :mod:`symbp.emit.handout_html`).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..rules.layers import MASKS, same_padding
from .handouts import _StepWriter
from .indexed import window_geometry
from .latex import PARAMETER_AXES, escape_latex
from .worked_solution import EntryForm, EntrySum, Given, Result, Step

#: a worked entry writes its terms out up to this many (a larger sum shows its rule only)
MAX_TERMS = 64
#: the index a rule of the passed-down gradient is written at (an entry of a_{l-1})
_INPUT_INDICES = tuple(sp.Symbol(s, integer=True, nonnegative=True) for s in ("i", "j"))
A_PREV, G_PREV, DWIN = sp.IndexedBase("a_prev"), sp.IndexedBase("g_prev"), sp.IndexedBase("dwin")
#: what "same" padding reads, by the Gather's mask (None: a convolution's zeros)
PADDING_NOTES = {None: "same padding: the input read as 0 outside its entries",
                 "first_max": "same padding: never selected", "mean": "same padding: not counted"}


def unprimed(expr: sp.Expr) -> sp.Expr:
    """A derived entry rule with its primed indices (u', c') written plain where no plain one is used."""
    symbols = expr.free_symbols | {limit[0] for s in expr.atoms(sp.Sum) for limit in s.limits}
    names = {str(s) for s in symbols}
    return expr.xreplace({s: sp.Symbol(str(s)[:-1], integer=True, nonnegative=True) for s in symbols
                          if str(s).endswith("'") and str(s)[:-1] not in names})


class IndexedLayer:
    """One indexed layer instance's geometry: its sizes, and its windows read back in its input."""

    def __init__(self, derivation, rows: int):
        self.derivation, self.calculus, self.layer = derivation, derivation.calculus, derivation.layer
        self.rule, self.gather, self.l = self.calculus.rule, self.calculus.rule.gather, derivation.number
        self.rows = rows
        if self.gather.kind == "windows":
            self.window, self.strides, self.padding = window_geometry(derivation)

    def sizes(self) -> dict:
        """Each index's count symbol -> this layer's number (batch rows, positions, offsets, channels)."""
        return self.derivation.index_sizes(self.rows)

    def limited(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with its sums' limits this layer's sizes."""
        return unprimed(expr.xreplace(self.sizes()))

    def pad_before(self) -> tuple:
        if self.padding != "same" or self.gather.global_window:
            return (0,) * len(self.window)
        sizes = self.layer.input_shape[:len(self.window)]
        return tuple(same_padding(n, k, s)[0] for n, k, s in zip(sizes, self.window, self.strides))

    def read_back(self, win_entry: sp.Indexed) -> sp.Indexed:
        """win[n, p.., k, u..] as the input entry it reads: a_prev[n, p s + u - pad, .., k]."""
        if self.gather.kind == "flatten":
            return self.unflattened(win_entry)
        rank, idx = len(self.window), win_entry.indices
        if self.gather.global_window:
            return A_PREV[(idx[0], *idx[2:], idx[1])]
        positions, channel, offsets = idx[1:1 + rank], idx[1 + rank], idx[2 + rank:]
        read = [p * s + u - pad for p, u, s, pad in zip(positions, offsets, self.strides, self.pad_before())]
        return A_PREV[(idx[0], *read, channel)]

    def unflattened(self, win_entry: sp.Indexed) -> sp.Indexed:
        """Flatten's win[n, f] as a_prev[n, i, j, c]: f's digits in C order (i = floor(f / (Q C)), ...)."""
        n, f = win_entry.indices
        shape, indices = self.layer.input_shape, []
        for axis, size in enumerate(shape):
            index = sp.floor(f / int(np.prod(shape[axis + 1:]))) if axis + 1 < len(shape) else f
            indices.append(index if axis == 0 else sp.Mod(index, size))
        return A_PREV[(n, *indices)]

    def in_input(self, expr: sp.Expr) -> sp.Expr:
        """``expr`` with every window entry read back in the input a_{l-1}."""
        win = self.calculus.win
        return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == win, self.read_back)

    def selected(self, mask: np.ndarray, input_shape: tuple) -> np.ndarray:
        """Max pooling's selected input entries (mask 1), as a boolean array of the input's shape."""
        marked = np.zeros(input_shape, dtype=bool)
        rank = len(self.window)
        for index in zip(*np.nonzero(mask == 1)):
            n, rest = index[0], index[1:]
            if self.gather.global_window:
                channel, offsets, positions = rest[0], rest[1:], (0,) * rank
            else:
                positions, channel, offsets = rest[:rank], rest[rank], rest[rank + 1:]
            at = tuple(p * s + u - pad for p, u, s, pad in zip(positions, offsets, self.strides, self.pad_before()))
            if all(0 <= i < size for i, size in zip(at, input_shape[1:-1])):
                marked[(n, *at, channel)] = True
        return marked

    def describe(self) -> str:
        """Conv2D, 3 filters 3x3, strides 1, valid padding (the handout's words for the layer)."""
        args, name = self.layer.arguments, escape_latex(self.rule.name)
        if self.gather.kind == "flatten":
            return f"{name}: the feature maps in one row per sample (C order)"
        if self.gather.global_window:
            return f"{name} over each whole feature map"
        size = r" \times ".join(map(str, self.window))
        strides = str(self.strides[0]) if len(set(self.strides)) == 1 else f"({', '.join(map(str, self.strides))})"
        geometry = f"strides {strides}, {escape_latex(self.padding)} padding"
        if self.layer.param_names:
            return f"{name}, {args['filters']} filters ${size}$, {geometry}"
        return f"{name}, windows ${size}$, {geometry}"


class IndexedSteps(_StepWriter):
    """The forward and backward steps of indexed layers, numbers from the trace."""

    def names(self, layer) -> dict[str, str]:
        """TeX of the bases of a layer's entry rules."""
        l, nt = layer.number, self.notation
        return {"win": rf"\mathrm{{win}}_{{{l}}}", "mask": rf"\mathrm{{mask}}_{{{l}}}",
                "delta": rf"\delta_{{{l}}}", "a_prev": f"a_{{{l - 1}}}", "z": f"z_{{{l}}}",
                "g_prev": f"g_{{{l - 1}}}", "dwin": rf"\frac{{\partial L}}{{\partial \mathrm{{win}}_{{{l}}}}}",
                **{p.code: nt.param(name) for p, name in zip(layer.layer.rule.parameters, layer.layer.param_names)},
                **{f"d{p.code}": nt.grad(name) for p, name in zip(layer.layer.rule.parameters, layer.layer.param_names)}}

    def values(self, layer) -> dict[str, np.ndarray]:
        """The trace's arrays behind a layer's bases."""
        l, trace = layer.number, self.trace
        out = {"win": trace[f"win{l}"], "delta": self.delta[l], **self.parameter_values(layer.layer)}
        if f"mask{l}" in trace:
            out["mask"] = trace[f"mask{l}"]
        if f"dwin{l}" in trace:
            out["dwin"] = trace[f"dwin{l}"]
        return out

    def entry_sum(self, layer, lhs: sp.Indexed, rule: sp.Expr, at: tuple, result: float) -> list:
        """[the worked entry] at index ``at`` of ``rule`` (free indices ``lhs.indices``), when its
        terms are few enough to write out."""
        geometry = IndexedLayer(layer, len(self.x))
        rule = geometry.limited(rule)
        at_entry = dict(zip(geometry.limited(lhs).indices, at))
        entry_rule = rule.xreplace(at_entry)
        count = int(np.prod([int(high - low + 1) for total in entry_rule.atoms(sp.Sum) for _, low, high in total.limits]))
        if count > MAX_TERMS:   # counted before SymPy writes the sum out
            return []
        terms = entry_rule.doit()
        return [EntrySum(geometry.limited(lhs).xreplace(at_entry), entry_rule, terms, self.names(layer),
                         self.values(layer), float(result))]

    # ---------------------------------------------------------------- forward
    def forward(self, layer) -> list[Step]:
        geometry = IndexedLayer(layer, len(self.x))
        calc, l, names = layer.calculus, layer.number, self.names(layer)
        z_entry = sp.IndexedBase("z")[calc.out]
        padded = calc.rule.gather.kind == "windows" and not calc.rule.gather.global_window \
            and geometry.padding == "same"
        note = PADDING_NOTES[calc.rule.gather.mask] if padded else ""
        rule = [EntryForm(geometry.limited(z_entry), geometry.limited(geometry.in_input(calc.z)), names, note)]
        if calc.rule.gather.mask:
            mask = next(e for e in calc.z.atoms(sp.Indexed) if e.base == calc.mask)   # its entry in the rule
            rule.append(EntryForm(geometry.limited(mask), sp.Symbol("selection"),
                                  {**names, "selection": rf"\text{{{MASKS[calc.rule.gather.mask]}}}"}))
        steps = [Step(f"Layer {l}: {geometry.describe()}", rule)]
        if calc.rule.gather.kind == "windows":
            steps += self.pooled_input(layer, geometry) + self.worked_window(layer, geometry)
        # a map of the answer key (a1) is asked at its last step: its activation's, or z's (a = z)
        from ..classroom.rules_of_step import map_layer
        act, output = layer.activation, f"a{l}" if map_layer(layer.layer) else None
        linear = act.rule.name == "linear"
        z = f"$z_{{{l}}} = a_{{{l}}}$ (no activation)" if linear else f"$z_{{{l}}}$"
        steps.append(Step(f"Layer {l}: pre-activation {z}" + (", each feature map" if self.z[l].ndim > 2 else ""),
                          [Given(f"z_{{{l}}}", self.z[l])], output if linear else None))
        if not linear:
            steps.append(self.step(f"Layer {l}: {escape_latex(act.rule.name)} activation, element-wise", f"a_{{{l}}}",
                                   act.forward, {**self.notation.layer_rule(layer.layer), **self.notation.layer(l)},
                                   {"z": self.z[l]}, self.a[l], worked=f"a{l}", quantity=output))
        return steps

    def pooled_input(self, layer, geometry: IndexedLayer) -> list[Step]:
        """Max pooling: its input's maps with the entries it selects boxed."""
        l = layer.number
        if not layer.calculus.rule.gather.selects_maximum:
            return []
        marked = geometry.selected(self.trace[f"mask{l}"], self.a[l - 1].shape)
        return [Step(f"Layer {l}: the entries each window selects (boxed), in $a_{{{l - 1}}}$",
                     [Given(f"a_{{{l - 1}}}", self.a[l - 1], marked=marked)])]

    def worked_window(self, layer, geometry: IndexedLayer) -> list[Step]:
        """The first entry of z_l worked out: its window, the kernel slices or selection weights."""
        calc, l, names = layer.calculus, layer.number, self.names(layer)
        win, at = self.trace[f"win{l}"], (0,) * len(calc.out)
        rank = len(geometry.window)
        head = (0,) * (1 if geometry.gather.global_window else 1 + rank)
        channels = range(win.shape[len(head)]) if layer.layer.param_names else (0,)
        items = []
        for k in channels:
            index = (*head, k)
            label = ",".join(map(str, index)) + ",:" * rank
            selected = self.trace[f"mask{l}"][index] > 0 if calc.rule.gather.selects_maximum else None
            items.append(Given(rf"\mathrm{{win}}_{{{l}}}[{label}]", win[index], marked=selected))
            if layer.layer.param_names:
                kernel = self.parameter_values(layer.layer)["W"]
                items.append(Given(f"{names['W']}[{':,' * rank}{k},0]", kernel[(slice(None),) * rank + (k, 0)]))
            else:
                items.append(Given(rf"\mathrm{{mask}}_{{{l}}}[{label}]", self.trace[f"mask{l}"][index]))
        z_entry = sp.IndexedBase("z")[calc.out]
        items += self.entry_sum(layer, z_entry, calc.z, at, self.z[l][at])
        entry = ",".join("0" for _ in at)
        return [Step(f"Layer {l}: one entry worked out, $z_{{{l}}}[{entry}]$, with its window", items)]

    # ---------------------------------------------------------------- backward
    def gradient_steps(self, layer) -> list[Step]:
        """Each parameter's gradient (rule, one entry worked, every entry), then g_{l-1}."""
        geometry = IndexedLayer(layer, len(self.x))
        calc, l, names, nt = layer.calculus, layer.number, self.names(layer), self.notation
        steps = []
        for parameter, name in zip(layer.layer.rule.parameters, layer.layer.param_names):
            entry, formula = calc.gradients[parameter.kind]
            lhs = sp.IndexedBase(f"d{parameter.code}")[entry.indices]
            value = self.grads[name.code]
            kind = "a correlation of the input with $\\delta$" if parameter.kind == "kernel" else "the sum of $\\delta$"
            items = [EntryForm(geometry.limited(lhs), geometry.limited(geometry.in_input(formula)), names)]
            items += self.entry_sum(layer, lhs, formula, (0,) * value.ndim, value[(0,) * value.ndim])
            items.append(Result(nt.grad(name), value, PARAMETER_AXES))
            steps.append(Step(f"Gradient of the {escape_latex(parameter.kind)} ${nt.param(name)}$ ({kind} over "
                              f"the batch and every position)", items, name.gradient))
        if l > 1:
            steps.append(self.passed_down(layer, geometry))
        return steps

    def passed_down(self, layer, geometry: IndexedLayer) -> Step:
        """g_{l-1}: the derived dL/dwin_l, then each window's entries added back where they were read."""
        calc, l, names = layer.calculus, layer.number, self.names(layer)
        entry, formula = calc.g_win
        items = [EntryForm(geometry.limited(DWIN[entry.indices]), geometry.limited(formula), names)]
        title = f"Gradient passed down to layer {l - 1}, $g_{{{l - 1}}} = \\partial L / \\partial a_{{{l - 1}}}$"
        marked = None
        if calc.rule.gather.kind == "flatten":
            title += f" ($\\delta_{{{l}}}$'s rows in the shape of $a_{{{l - 1}}}$)"
        elif calc.rule.gather.selects_maximum:
            title += " (each window's $\\delta$ routed to its selected entry, boxed)"
            marked = geometry.selected(self.trace[f"mask{l}"], self.a[l - 1].shape)
        elif layer.layer.param_names:
            items.append(self.full_correlation(layer, geometry))
            title += " (every window's part added back where it was read: a full correlation with the flipped kernel)"
        else:
            title += " (every window's part added back where it was read)"
        items.append(Result(f"g_{{{l - 1}}}", self.g[l - 1], marked=marked))
        return Step(title, items, f"g{l - 1}")

    def full_correlation(self, layer, geometry: IndexedLayer) -> EntryForm:
        """g_{l-1}[n,i,j,k] = sum_{u,v,c} delta_l[n, i - u, j - v, c] W[u,v,k,c] (strides 1, no
        padding: the zero-padded delta correlated with the flipped kernel), from the derived dwin by
        reading each window entry back (p = i - u); for other strides as the adjoint's sum."""
        calc = layer.calculus
        entry, formula = calc.g_win
        rank = len(geometry.window)
        n, positions, k, offsets = entry.indices[0], entry.indices[1:1 + rank], entry.indices[1 + rank], \
            entry.indices[2 + rank:]
        inputs = _INPUT_INDICES[:rank]
        if any(s != 1 for s in geometry.strides) or any(geometry.pad_before()):
            return EntryForm(G_PREV[(n, *inputs, k)], sp.Symbol("adjoint"),
                             {**self.names(layer), "adjoint": r"\sum \frac{\partial L}{\partial \mathrm{win}} "
                              r"\text{ over the window entries that read it}"})
        read = formula.xreplace({p: i - u for p, i, u in zip(positions, inputs, offsets)})
        limits = [(u, 0, sp.Symbol(f"U{m}")) for m, u in enumerate(offsets)]
        sizes = {sp.Symbol(f"U{m}"): w - 1 for m, w in enumerate(geometry.window)}
        total = sp.Sum(read, *limits).xreplace(sizes)
        return EntryForm(geometry.limited(G_PREV[(n, *inputs, k)]), geometry.limited(total),
                         self.names(layer), note="delta read as 0 outside its positions")

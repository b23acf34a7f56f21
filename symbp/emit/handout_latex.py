"""The LaTeX presenter of the worked solution (:mod:`symbp.emit.worked_solution`).

Each item becomes display lines: a rule in symbols by :class:`~symbp.emit.latex.RowLatexPrinter`,
the same rule with its values filled in, the result as a matrix with its shape; the student
sheet's version of a step keeps only blanks of the right shape. The templates print the
:class:`LatexStep` and :class:`LatexSection` this returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

import numpy as np
import sympy as sp

from ..derivation.naming import ParamName
from .latex import (ACTIVATION_AXES, MAX_SHOWN, EntryLatexPrinter, IndexLatexPrinter, RowLatexPrinter,
                    blank_matrix_tex, format_number, matrix_tex, shape_tex, tensor_slices)
from .worked_solution import (BatchMean, ChainRuleItem, EntryForm, EntrySum, Equation, EntryUpdate, Given,
                              IndexForm, Result, Section, Step)


@dataclass
class AskTable:
    """The entries a student sheet asks of one quantity (``--ask W1[0:2,0:3]``): a box a pen
    fits in per entry, in groups of columns that fit the page, rows and columns labelled. An
    array of more than two axes is asked as the matrices the sheet prints it as (``maps``: each
    an index with the matrix axes None, ``(0, None, None, 2)``), the same rows and columns of each."""
    lhs: str
    shape: str
    rows: list[int]
    groups: list[list[int]]
    maps: list[tuple] = field(default_factory=lambda: [()])

    def entries(self, at: tuple, rows: str, columns: str, separator: str = ",") -> str:
        """``lhs[...]`` of one asked matrix: its index ``at`` with ``rows`` and ``columns`` in the
        matrix axes (``at`` empty: a matrix or vector itself, ``lhs[rows, columns]``)."""
        fill = iter((rows, columns))
        return f"{self.lhs}[{separator.join(next(fill) if i is None else str(i) for i in at or (None, None))}]"

    @property
    def headings(self) -> list[str]:
        """What the sheet writes above each asked matrix: the quantity, or each map (``\\delta_{1}[0,:,:,2]``)."""
        return [self.entries(at, ":", ":") if at else self.lhs for at in self.maps]


@dataclass
class LatexStep:
    title: str
    lines: list[str]
    blank: list[str] = field(default_factory=list)   # the student sheet's version
    rules: list[str] = field(default_factory=list)   # the rules in symbols (student scaffolding)
    asked: Optional[AskTable] = None                 # the boxes of a sheet that asks for entries


@dataclass
class AppendixTable:
    """A given matrix printed in full: its columns in groups that fit the page, each group a
    table of rows (row index, numbers) that may break across pages."""
    lhs: str
    shape: str
    groups: list[tuple[list[int], list[tuple[int, list[str]]]]]


#: the most matrices an array of more than two axes prints (its maps past them are elided)
MAX_MAPS = 12

#: the columns of a group of the appendix, and the largest matrix it prints in full
APPENDIX_COLUMNS, APPENDIX_MAX_ENTRIES = 6, 8192

#: the end of a matrix not carrying a ^ or _: where a too-wide line may break (a W: juxtaposed)
_MATRIX_END = re.compile(r"\\end\{bmatrix\}(?![\^_])")


def breakable(line: str) -> str:
    """``line`` with a permitted break after each matrix, for a line too wide for the page
    (its \\mathline then sets it as a paragraph; a display line ignores the breaks)."""
    return _MATRIX_END.sub(lambda m: m.group(0) + r"\allowbreak ", line)


@dataclass
class LatexSection:
    title: str
    intro: str
    steps: list[LatexStep]

    @property
    def asked(self) -> bool:
        return any(step.asked is not None for step in self.steps)


def number_tex(value: float, digits: int) -> str:
    """A number as a factor: negative ones in brackets."""
    text = format_number(value, digits)
    return rf"\left({text}\right)" if text.startswith("-") else text


#: the widest a pen box gets (mm) per character of a number, its smallest width and its height:
#: handwriting needs ~2.8 mm a digit and a line of ~8 mm
PEN_MM_PER_CHARACTER, PEN_MIN_WIDTH, PEN_HEIGHT = 2.8, 16.0, 8.0
#: the text width of the sheet (A4, 2 cm margins) less the row labels, in mm; the most boxes a sheet asks of one quantity
PEN_ROW_WIDTH, MAX_ASKED_ENTRIES = 155.0, 512


def pen_box_width(digits: int) -> float:
    """A box wide enough for a handwritten number of ``digits`` decimals (sign, digit, point)."""
    return round(max(PEN_MIN_WIDTH, PEN_MM_PER_CHARACTER * (digits + 3)), 1)


@lru_cache(maxsize=4096)
def rule_tex(expr, names: tuple, digits: int) -> str:
    """A rule in symbols (names bound to their LaTeX): the same for every student of a class,
    so ``variants`` prints each once per process."""
    return RowLatexPrinter(dict(names), digits=digits).doprint(expr)


def appendix_table(given: Given, digits: int) -> AppendixTable | None:
    """The full values of a given the body shows elided (past MAX_SHOWN rows or columns);
    None when it shows whole, or is too large to print (APPENDIX_MAX_ENTRIES)."""
    values = np.atleast_2d(np.asarray(given.value, dtype=float))
    if values.ndim > 2 or max(values.shape) <= MAX_SHOWN or values.size > APPENDIX_MAX_ENTRIES:
        return None
    groups = []
    for start in range(0, values.shape[1], APPENDIX_COLUMNS):
        columns = list(range(start, min(start + APPENDIX_COLUMNS, values.shape[1])))
        rows = [(r, [format_number(values[r, c], digits) for c in columns])
                for r in range(values.shape[0])]
        groups.append((columns, rows))
    return AppendixTable(given.lhs, shape_tex(given.value), groups)


class LatexPresenter:
    """Writes steps and sections as LaTeX; ``param_tex`` writes a parameter (W0 -> W_{0});
    ``asked`` (quantity -> :class:`~symbp.spec.handout.Ask`): the student sheet asks only these."""

    def __init__(self, digits: int, param_tex, asked: Optional[dict] = None):
        self.digits, self.param_tex, self.asked = digits, param_tex, asked

    # ---- numbers and rules
    def m(self, values, marked=None) -> str:
        return matrix_tex(values, self.digits, marked)

    def blank(self, shape: tuple) -> str:
        """A matrix of empty boxes of ``shape``: an answer the student sheet withholds."""
        return blank_matrix_tex(shape)

    def maps(self, lhs: str, values, axes=None, marked=None, blank: bool = False) -> list[str]:
        """An array of more than two axes as one line per matrix (``z_{1}[0,:,:,2] = [...]``:
        each sample's and channel's feature map), the shape after the first; ``blank``: boxes.
        Past MAX_MAPS matrices, the first ones and the last around a line of dots."""
        values = np.asarray(values)
        slices = tensor_slices(values.shape, axes or ACTIVATION_AXES)
        elided = len(slices) - MAX_MAPS
        if elided > 0:
            slices = slices[:MAX_MAPS - 1] + [None] + slices[-1:]
        lines = []
        for entry in slices:
            if entry is None:
                lines.append(rf"\vdots \quad \text{{({elided} more maps, in the generated module)}}")
                continue
            index, label = entry
            shown = self.blank(values[index].shape) if blank else \
                self.m(values[index], None if marked is None else np.asarray(marked)[index])
            lines.append(f"{lhs}[{label}] = {shown}")
        lines[0] += rf" \quad ({shape_tex(values)})"
        return lines

    def number(self, value) -> str:
        return self.m(value) if np.ndim(value) else format_number(value, self.digits)

    def numbers(self, values: dict | None) -> dict | None:
        return None if values is None else {name: self.number(v) for name, v in values.items()}

    def symbols(self, expr, names) -> str:
        return rule_tex(expr, tuple(sorted(names.items())), self.digits)

    def filled(self, expr, names, transposed=None) -> str:
        return RowLatexPrinter(names, transposed, digits=self.digits, filled=True).doprint(expr)

    def scalar(self, expr, names) -> str:
        """A row expression for one entry: names bound to entries or numbers, products as dots."""
        return RowLatexPrinter(names, digits=self.digits, filled=True, product=r"\cdot").doprint(expr)

    # ---- steps and sections
    def section(self, section: Section) -> LatexSection:
        return LatexSection(section.title, section.intro, [self.step(step) for step in section.steps])

    def step(self, step: Step) -> LatexStep:
        lines, blank, rules = [], [], []
        for item in step.items:
            item_lines, item_blank = self.item(item)
            lines += item_lines
            blank += item_blank
            if isinstance(item, Equation):
                rules.append(self.rule_line(item))
        asked = None
        if self.asked is not None:
            blank = []
            if step.quantity in self.asked:
                asked = self.ask_table(step, self.asked[step.quantity])
        return LatexStep(step.title, lines, blank, rules, asked)

    def ask_table(self, step: Step, ask) -> AskTable:
        """The boxes for the entries ``ask`` selects of the step's result (its last equation's,
        result's or given's: a pooled map is z), an array of more than two axes as the matrices the
        sheet prints it as."""
        from ..errors import HandoutError
        answer = [item for item in step.items if isinstance(item, (Equation, Result, Given))][-1]
        value = answer.result if isinstance(answer, Equation) else answer.value
        shape, axes = np.shape(value), answer.axes or ACTIVATION_AXES
        try:
            (rows, columns), maps = ask.selection(shape, axes), ask.matrices(shape, axes)
        except ValueError as err:
            raise HandoutError(f"--ask {ask.text!r}: {err}") from None
        count = len(maps) * len(rows) * len(columns)
        if count > MAX_ASKED_ENTRIES:
            example = f"{ask.text.split('[')[0].strip()}[{','.join(['0:2'] * len(shape))}]"
            raise HandoutError(f"--ask {ask.text!r}: asks {count} entries, at most "
                               f"{MAX_ASKED_ENTRIES} fit on a sheet: select some, as in {example}")
        per_group = max(1, int(PEN_ROW_WIDTH // (pen_box_width(self.digits) + 3)))
        groups = [columns[k:k + per_group] for k in range(0, len(columns), per_group)]
        lhs = answer.shown_lhs or answer.lhs if isinstance(answer, Equation) else answer.lhs
        return AskTable(lhs, shape_tex(value), rows, groups, maps)

    def item(self, item) -> tuple[list[str], list[str]]:
        """(solution lines, student lines) of one item."""
        if isinstance(item, Equation) and np.ndim(item.result) > 2:
            return self.tensor_equation(item), self.maps(item.shown_lhs or item.lhs, item.result, item.axes,
                                                         blank=True)
        if isinstance(item, Equation):
            return (self.scalar_equation(item) if np.ndim(item.result) == 0 else self.equation(item)), \
                self.equation_blank(item)
        if isinstance(item, Given) and np.ndim(item.value) > 2:
            note = rf"\text{{{item.note}: }} " if item.note else ""
            return self.maps(note + item.lhs, item.value, item.axes, item.marked), []
        if isinstance(item, Given):
            return [self.given(item)], []
        if isinstance(item, EntryForm):
            note = rf" \quad \text{{({item.note})}}" if item.note else ""
            printer = EntryLatexPrinter(item.names, digits=self.digits)
            return [f"{printer.doprint(item.lhs)} = {printer.doprint(item.rule)}{note}"], []
        if isinstance(item, Result):
            return self.result(item), self.result(item, blank=True)
        if isinstance(item, EntrySum):
            return self.entry_sum(item), [rf"{EntryLatexPrinter(item.names).doprint(item.lhs)} = \blank"]
        if isinstance(item, IndexForm):
            return [f"{item.lhs} = {IndexLatexPrinter(self.digits).doprint(item.rule)}"], []
        if isinstance(item, BatchMean):
            return [self.batch_mean(item)], []
        if isinstance(item, ChainRuleItem):
            return ChainRuleLatex(self).lines(item), []
        raise TypeError(f"symbp bug: no LaTeX for a {type(item).__name__}")

    def rule_line(self, eq: Equation) -> str:
        """The equation's first line, ``lhs = rule`` in symbols (no numbers: any shape)."""
        lhs = eq.lhs if eq.via is None else f"{eq.lhs} = {self.symbols(*eq.via)}"
        return f"{lhs} = {self.symbols(eq.rule, eq.names)}"

    def equation(self, eq: Equation) -> list[str]:
        """lhs = rule; its parts worked out; = rule with values; = result (shape)."""
        lines = [self.rule_line(eq)]
        filled_rule = eq.rule if eq.filled_rule is None else eq.filled_rule
        values = self.numbers(eq.values)
        lines += self.parts(eq, values)
        result = self.m(eq.result)
        if values is not None and not filled_rule.has(sp.Piecewise) \
                and filled_rule.free_symbols | filled_rule.atoms(sp.Indexed, sp.MatrixSymbol):
            filled = breakable(self.filled(filled_rule, values, self.numbers(eq.transposed)))
            if filled != breakable(result):   # a rule that only renames (linear: a = z) shows its numbers once
                lines.append(rf"\qquad = {filled}")
        lines.append(rf"\qquad = {result} \quad ({shape_tex(eq.result)})")
        return lines

    def parts(self, eq: Equation, values: dict | None) -> list[str]:
        """Each part on a line of its own; a row sum's column then stands in ``values``."""
        lines = []
        for part in eq.parts:
            lines.append(rf"\qquad \text{{with }} {self.symbols(part.rule, eq.names)} = "
                         rf"{self.filled(part.rule if part.filled_rule is None else part.filled_rule, values)} = {self.m(part.value)}")
            if part.column is not None:
                values[part.column] = self.m(part.value)
        return lines

    def tensor_equation(self, eq: Equation) -> list[str]:
        """lhs = rule in symbols; then the result one feature map a line (each entry's value)."""
        lhs = eq.lhs if eq.via is None else f"{eq.lhs} = {self.symbols(*eq.via)}"
        return [f"{lhs} = {self.symbols(eq.rule, eq.names)}"] + \
            [rf"\qquad {line}" for line in self.maps(eq.lhs, eq.result, eq.axes, eq.marked)]

    def result(self, item: Result, blank: bool = False) -> list[str]:
        """Every entry of a quantity (or, ``blank``, boxes to fill in), with its shape."""
        if np.ndim(item.value) > 2:
            return self.maps(item.lhs, item.value, item.axes, item.marked, blank)
        shown = self.blank(np.shape(item.value)) if blank else self.m(item.value, item.marked)
        return [rf"{item.lhs} = {shown} \quad ({shape_tex(item.value)})"]

    def entry_sum(self, item: EntrySum) -> list[str]:
        """entry = its formula = the terms with the trace's numbers = the trace's entry."""
        symbols = EntryLatexPrinter(item.names, digits=self.digits)
        filled = EntryLatexPrinter(item.names, item.values, self.digits)
        return [f"{symbols.doprint(item.lhs)} = {symbols.doprint(item.rule)}",
                rf"\qquad = {breakable(filled.doprint(item.terms))} = {format_number(item.result, self.digits)}"]

    def scalar_equation(self, eq: Equation) -> list[str]:
        values = self.numbers(eq.values)
        return [f"{eq.lhs} = {self.symbols(eq.rule, eq.names)}",
                rf"\qquad = {self.filled(eq.rule, values)} = {format_number(eq.result, self.digits)}"]

    def equation_blank(self, eq: Equation) -> list[str]:
        """The student's line: ``lhs = blank`` (a matrix of blanks and its shape for a matrix)."""
        lhs = eq.shown_lhs or eq.lhs
        if np.ndim(eq.result) == 0:
            return [rf"{lhs} = \blank"]
        return [f"{lhs} = {self.blank(np.shape(eq.result))} \\quad ({shape_tex(eq.result)})"]

    def given(self, given: Given) -> str:
        note = rf"\text{{{given.note}: }} " if given.note else ""
        shape = rf" \quad ({shape_tex(given.value)})" if given.shape and np.ndim(given.value) else ""
        value = self.number(given.value) if given.marked is None else self.m(given.value, given.marked)
        return f"{note}{given.lhs} = {value}{shape}"

    def batch_mean(self, mean: BatchMean) -> str:
        average = r"\frac{1}{B} " if mean.reduction == "mean" else ""
        total = rf"L = {average}\sum_{{r}} l_{{r}} = {format_number(mean.value, self.digits)}"
        shown = f"{mean.value:.4f}"
        if mean.keras and shown != format_number(mean.value, self.digits):
            total += rf" \approx {shown} \quad \text{{(Keras's progress bar shows 4 digits)}}"
        return total


#: a chain rule of more terms than this writes out SHOWN_TERMS of them (a convolution's kernel
#: entry sums one term per sample and position: 43,264 for a LeNet batch of 64)
MAX_SHOWN_TERMS = 8
SHOWN_TERMS = 4


def shown_rows(products: list[float]) -> list[int]:
    """The terms of a sum written out: all of a short sum; of a long one the first SHOWN_TERMS
    that are not 0 (a ReLU that is off zeroes many), then the first zeros if too few are not."""
    if len(products) <= MAX_SHOWN_TERMS:
        return list(range(len(products)))
    nonzero = [i for i, p in enumerate(products) if p != 0]
    zero = [i for i, p in enumerate(products) if p == 0]
    return sorted((nonzero + zero[:max(SHOWN_TERMS - len(nonzero), 0)])[:SHOWN_TERMS])


class ChainRuleLatex:
    """``--explain``'s lines: the product of partials, each factor with its derived rule and
    numbers, their sum (the module's gradient entry), then the entry's update."""

    def __init__(self, presenter: LatexPresenter):
        self.presenter, self.digits = presenter, presenter.digits

    def lines(self, item: ChainRuleItem) -> list[str]:
        chain, d = item.chain, self.digits
        d_param = rf"\frac{{\partial L}}{{\partial {item.param}}}"
        total = rf"\sum_{{{','.join(chain.summed)}}} " if len(chain.rows) > 1 else ""
        generic = None if len(chain.rows) == 1 else chain.summed
        lines = [rf"{d_param} = {total}" + r" \cdot ".join(self.factor_names(chain.rows[0], item.param, generic))]
        products_of_rows = chain.products
        shown = shown_rows(products_of_rows)
        products = []
        for i in shown:
            lines += self.factor_lines(chain, chain.rows[i], item.param)
            products.append(r" \cdot ".join(number_tex(f.value, d) for f in chain.rows[i]))
        if len(shown) < len(chain.rows):
            zeros = sum(p == 0 for p in products_of_rows)
            over = "sample and position" if len(chain.summed) > 1 else "row"
            lines.append(rf"\quad \vdots \quad \text{{({len(chain.rows) - len(shown)} more terms of the same form, one "
                         rf"per {over}; {zeros} of all {len(chain.rows)} are 0)}}")
            products.append(r"\cdots")
        lines.append(rf"{d_param} = " + " + ".join(products) + f" = {format_number(item.gradient, d)}")
        return lines + [self.update_line(update) for update in item.updates]

    def entry_tex(self, entry, row=None) -> str:
        """An entry as the handout writes it: a_{1}[0,2], W_{1}[2,k] (``row``: names that replace
        the leading indices, the sum's: (r,), or (n, p, q) for a feature map)."""
        base, indices = str(entry.base), [str(i) for i in entry.indices]
        if ParamName.names_one(base):
            return f"{self.presenter.param_tex(base)}[{','.join(indices)}]"
        kind, number = base.rstrip("0123456789"), base[len(base.rstrip("0123456789")):]   # a row: z1, delta2
        tex = {"delta": rf"\delta_{{{number}}}", "win": rf"\mathrm{{win}}_{{{number}}}"}.get(kind, f"{kind}_{{{number}}}")
        if row is not None:
            indices[:len(row)] = row
        return f"{tex}[{','.join(indices)}]"

    def factor_names(self, factors, param: str, row=None) -> list[str]:
        """Each factor as a partial derivative: dL/da[r,c], da/dz[r,c], dz[r,c]/dw."""
        names = []
        for factor in factors:
            top = "L" if factor.by is None else self.entry_tex(factor.of, row)
            bottom = self.entry_tex(factor.of, row) if factor.by is None else \
                (param if factor is factors[-1] else self.entry_tex(factor.by, row))
            names.append(rf"\frac{{\partial {top}}}{{\partial {bottom}}}")
        return names

    def factor_lines(self, chain, factors, param: str) -> list[str]:
        """One row's factors, each: its name = its derived rule (with numbers) = its value."""
        d, names = self.digits, self.factor_names(factors, param)
        lines = []
        for factor, name in zip(factors, names):
            if factor.terms:      # dL/da = sum_k delta[r,k] dz[r,k]/da[r,c], derived at k
                delta, local = factor.terms[0]
                unit = delta.indices[1]
                generic = [self.entry_tex(e).replace(f",{unit}]", ",k]") for e in (delta, local)]
                lines.append(rf"\quad {name} = \sum_{{k}} {generic[0]} \, {generic[1]}")
                terms = " + ".join(rf"{number_tex(chain.entries[delta], d)} \cdot "
                                   rf"{number_tex(chain.entries[local], d)}" for delta, local in factor.terms)
                lines.append(rf"\qquad = {terms} = {format_number(factor.value, d)}")
            elif factor.by is not None and factor is not factors[-1]:   # f'(z), the activation's
                lines.append(self.derivative_line(chain, factor, name))
            elif factor.rule.is_number:
                lines.append(rf"\quad {name} = {sp.latex(factor.rule)}")
            else:
                computed = r" \quad \text{(computed above)}" if factor.by is None else ""
                lines.append(rf"\quad {name} = {self.entry_tex(factor.rule)} = "
                             rf"{format_number(factor.value, d)}{computed}")
        return lines

    def derivative_line(self, chain, factor, name: str) -> str:
        """da/dz = f'(z) at the entry: the rule, its numbers (or the z that picks a branch), value."""
        d, (a, z) = self.digits, (factor.of, factor.by)
        scalar = self.presenter.scalar
        symbolic = scalar(factor.rule, {"a": self.entry_tex(a), "z": self.entry_tex(z)})
        if factor.rule.has(sp.Piecewise):   # the branch follows from z
            return (rf"\quad {name} = {symbolic} = {format_number(factor.value, d)}"
                    rf" \quad ({self.entry_tex(z)} = {format_number(chain.entries[z], d)})")
        filled = scalar(factor.rule, {"a": number_tex(chain.entries[a], d), "z": number_tex(chain.entries[z], d)})
        return rf"\quad {name} = {symbolic} = {filled} = {format_number(factor.value, d)}"

    def update_line(self, update: EntryUpdate) -> str:
        d = self.digits
        values = {**{k: format_number(v, d) for k, v in update.constants.items()},
                  **{k: number_tex(v, d) for k, v in update.entries.items()}}
        return (rf"{update.lhs} = {self.presenter.scalar(update.rule, update.names)} = "
                rf"{self.presenter.scalar(update.rule, values)} = {format_number(update.result, d)}")

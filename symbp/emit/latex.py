"""LaTeX for the handouts: escaping user text, numbers and matrices, and the derivation model.

``escape_latex`` makes any string print literally (it can run no TeX command).
``RowLatexPrinter`` prints the derivation model's row expressions as whole-matrix LaTeX, the way
:class:`symbp.emit.printers.ArrayPrinter` prints them as NumPy: an indexed row ``a[j]`` prints as the
matrix bound to its base, a sum over the unit index as ``rowsum(..)`` (each row summed over its
units), a product of rows with ``\\odot`` (element-wise), and the Dense rule's ``1 b`` as ``b``
(added to every row), ``1^T delta`` as ``\\mathbf{1}^\\top \\delta`` (column sums). Binding a base
to a matrix of numbers instead of its symbol gives "the same rule with the numbers filled in".
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from .printers import BoundNames, PositiveFirst

#: characters with a meaning in TeX, and what prints each one literally
_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "^": r"\textasciicircum{}", "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    "\"": r"\textquotedbl{}", "'": r"\textquotesingle{}", "`": r"\textasciigrave{}",
    "-": "-{}",  # keeps -- and --- from turning into dashes
}


#: characters past Latin-1 that pdflatex prints with the kernel's and textcomp's text commands
#: (T1/TS1 encodings) or, for symbols that exist only in math fonts, in math mode
_TEXT_COMMANDS = {
    "\u2010": "-{}", "\u2011": "-{}", "\u2012": r"\textendash{}", "\u2013": r"\textendash{}",
    "\u2014": r"\textemdash{}", "\u2015": r"\textemdash{}", "\u2018": r"\textquoteleft{}",
    "\u2019": r"\textquoteright{}", "\u201a": r"\quotesinglbase{}", "\u201c": r"\textquotedblleft{}",
    "\u201d": r"\textquotedblright{}", "\u201e": r"\quotedblbase{}", "\u2020": r"\textdagger{}",
    "\u2021": r"\textdaggerdbl{}", "\u2022": r"\textbullet{}", "\u2026": r"\textellipsis{}",
    "\u2030": r"\textperthousand{}", "\u2039": r"\guilsinglleft{}", "\u203a": r"\guilsinglright{}",
    "\u20ac": r"\texteuro{}", "\u2122": r"\texttrademark{}", "\u2116": r"\textnumero{}",
    "\u2190": r"\textleftarrow{}", "\u2191": r"\textuparrow{}", "\u2192": r"\textrightarrow{}",
    "\u2193": r"\textdownarrow{}", "\u2212": r"\textminus{}", "\u221a": r"\textsurd{}",
    "\u2032": r"\ensuremath{\prime}", "\u2202": r"\ensuremath{\partial}", "\u2207": r"\ensuremath{\nabla}",
    "\u2211": r"\ensuremath{\sum}", "\u221e": r"\ensuremath{\infty}", "\u2248": r"\ensuremath{\approx}",
    "\u2260": r"\ensuremath{\neq}", "\u2264": r"\ensuremath{\leq}", "\u2265": r"\ensuremath{\geq}",
    "\u2208": r"\ensuremath{\in}",
    "\u0141": r"\L{}", "\u0142": r"\l{}", "\u0152": r"\OE{}", "\u0153": r"\oe{}",
    "\u0110": r"\DJ{}", "\u0111": r"\dj{}", "\u0131": r"\i{}", "\u0237": r"\j{}",
    "\u014a": r"\NG{}", "\u014b": r"\ng{}",
}
#: Greek letters: math-mode letters (no Greek text font is needed); capitals that look Latin
#: print as the Latin letter
_GREEK_MATH = {
    "\u03b1": "alpha", "\u03b2": "beta", "\u03b3": "gamma", "\u03b4": "delta", "\u03b5": "varepsilon",
    "\u03b6": "zeta", "\u03b7": "eta", "\u03b8": "theta", "\u03b9": "iota", "\u03ba": "kappa",
    "\u03bb": "lambda", "\u03bc": "mu", "\u03bd": "nu", "\u03be": "xi", "\u03c0": "pi", "\u03c1": "rho",
    "\u03c2": "varsigma", "\u03c3": "sigma", "\u03c4": "tau", "\u03c5": "upsilon", "\u03c6": "varphi",
    "\u03c7": "chi", "\u03c8": "psi", "\u03c9": "omega", "\u03d1": "vartheta", "\u03d5": "phi",
    "\u03d6": "varpi", "\u03f1": "varrho", "\u03f5": "epsilon", "\u0393": "Gamma", "\u0394": "Delta",
    "\u0398": "Theta", "\u039b": "Lambda", "\u039e": "Xi", "\u03a0": "Pi", "\u03a3": "Sigma",
    "\u03a5": "Upsilon", "\u03a6": "Phi", "\u03a8": "Psi", "\u03a9": "Omega",
}
_GREEK_LATIN = dict(zip("\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a7\u03bf",
                        "ABEZHIKMNOPTXo"))
#: combining marks (after NFD) and the TeX accent that puts each on a Latin letter
_ACCENTS = {"\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0303": "~", "\u0304": "=", "\u0306": "u",
            "\u0307": ".", "\u0308": '"', "\u030a": "r", "\u030b": "H", "\u030c": "v", "\u0323": "d",
            "\u0327": "c", "\u0328": "k", "\u0331": "b"}
_ACCENTS_BELOW = {"\u0323", "\u0327", "\u0328", "\u0331"}
#: what prints in place of a character no handout font has
NO_GLYPH = "?"


def _beyond_latin1(ch: str) -> str | None:
    """LaTeX for one character past Latin-1, or None when pdflatex has no glyph for it.

    Order: a text command (dashes, curly quotes, the euro), a Greek letter in math mode, then a
    Latin letter with accents (ő, č, ą: NFD into the letter and TeX accents, \\H{o}).
    """
    if ch in _TEXT_COMMANDS:
        return _TEXT_COMMANDS[ch]
    if ch in _GREEK_MATH:
        return rf"\ensuremath{{\{_GREEK_MATH[ch]}}}"
    if ch in _GREEK_LATIN:
        return _GREEK_LATIN[ch]
    base, *marks = unicodedata.normalize("NFD", ch)
    if marks and base.isascii() and base.isalpha() and all(mark in _ACCENTS for mark in marks):
        accent_above = marks[0] not in _ACCENTS_BELOW
        text = {"i": r"\i{}", "j": r"\j{}"}.get(base, base) if accent_above else base  # no dot under it
        for mark in marks:
            text = rf"\{_ACCENTS[mark]}{{{text}}}"
        return text
    return None


def escape_latex(text: object) -> str:
    """``text`` as LaTeX that prints it literally; nothing in it can run a TeX command.

    The text is NFC-normalised; control characters become spaces; printable ASCII and Latin-1
    print as themselves (T1 fonts, utf8 input); beyond that, dashes, quotes, Greek letters and
    accented Latin letters print through :func:`_beyond_latin1`. A character no font of a stock
    pdflatex has (an emoji, CJK) becomes ``?``: :func:`missing_glyphs` lists them, for a warning.
    """
    out = []
    for ch in unicodedata.normalize("NFC", str(text)):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch.isspace() or not ch.isprintable():
            out.append(" ")
        elif ord(ch) < 0x80 or 0xA0 <= ord(ch) <= 0xFF:
            out.append(ch)
        else:
            out.append(_beyond_latin1(ch) or NO_GLYPH)
    return "".join(out)


def missing_glyphs(text: object) -> list[str]:
    """The characters of ``text`` that :func:`escape_latex` prints as ``?`` (each once, in order)."""
    found = []
    for ch in unicodedata.normalize("NFC", str(text)):
        if (ord(ch) > 0xFF and ch.isprintable() and not ch.isspace() and _beyond_latin1(ch) is None
                and ch not in found):
            found.append(ch)
    return found


#: characters a glyph warning names before it counts the rest
GLYPHS_NAMED = 3


def glyph_warnings(text: object, where: str) -> list[str]:
    """One warning naming the characters of ``text`` the LaTeX handouts cannot print (the first
    GLYPHS_NAMED, then how many more: a title in a script the fonts lack is one line, not one
    per character): "title: '\u6f22' (U+6F22 CJK UNIFIED IDEOGRAPH-6F22) has no glyph in ..."."""
    missing = missing_glyphs(text)
    if not missing:
        return []
    named = ", ".join(f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')})"
                      for ch in missing[:GLYPHS_NAMED])
    more = f" and {len(missing) - GLYPHS_NAMED} more characters" if len(missing) > GLYPHS_NAMED else ""
    have = "has" if len(missing) == 1 else "have"
    return [f"{where}: {named}{more} {have} no glyph in the LaTeX handouts' fonts; "
            f"{'it prints' if len(missing) == 1 else 'they print'} there as {NO_GLYPH!r}"]


#: numbers below SMALL keep SIGNIFICANT significant digits however many decimals that takes
#: (Adam's v ~ g^2 would otherwise print as 0.00000004)
SMALL, SIGNIFICANT = 1e-4, 4


def format_number(value: float, digits: int, significant: int = SIGNIFICANT) -> str:
    """``value`` rounded to ``digits`` decimals, trailing zeros dropped (as NumPy prints arrays:
    0.1449019, -0.0028407, 1); below SMALL, to ``significant`` significant digits when that
    needs more decimals (at most 16: 0.0000003702); minus sign for math mode."""
    value = float(value)
    if not np.isfinite(value):
        return {True: r"\infty", False: r"-\infty"}[value > 0] if np.isinf(value) else r"\mathrm{NaN}"
    if 0 < abs(value) < SMALL:
        digits = min(16, max(digits, significant - 1 - int(np.floor(np.log10(abs(value))))))
    text = f"{value:.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text


def as_matrix(values) -> np.ndarray:
    """A 2-D view: a bias vector (units,) is one row, a scalar is 1 x 1."""
    array = np.asarray(values, dtype=np.float64)
    return array.reshape(1, -1) if array.ndim < 2 else array


#: a matrix with more rows (or columns) than this prints its first HEAD and last TAIL ones around
#: dots (\vdots, \cdots): a handout is read, and TeX cannot hold a 1000 x 1000 matrix; the full
#: values are the generated module's
MAX_SHOWN, HEAD, TAIL = 8, 3, 2


def shown_indices(count: int) -> list[int | None]:
    """The rows (or columns) a matrix prints: all up to MAX_SHOWN, else HEAD, None (dots), TAIL."""
    if count <= MAX_SHOWN:
        return list(range(count))
    return list(range(HEAD)) + [None] + list(range(count - TAIL, count))


def _matrix_body(shape: tuple[int, int], cell) -> str:
    """The bmatrix rows of ``cell(r, c)``, elided past MAX_SHOWN rows or columns."""
    rows, cols = shown_indices(shape[0]), shown_indices(shape[1])
    lines = []
    for r in rows:
        if r is None:
            lines.append(" & ".join(r"\vdots" if c is not None else r"\ddots" for c in cols))
        else:
            lines.append(" & ".join(r"\cdots" if c is None else cell(r, c) for c in cols))
    return r" \\ ".join(lines)


def shown_columns(count: int) -> int:
    """How many columns a matrix of ``count`` columns prints (dots included)."""
    return len(shown_indices(count))


def matrix_tex(values, digits: int, marked=None) -> str:
    """A bmatrix of ``values`` (a vector prints as one row), elided past MAX_SHOWN rows or columns;
    the entries where ``marked`` (same shape) is true boxed (max pooling's selected entries)."""
    rows = as_matrix(values)
    marks = None if marked is None else np.asarray(marked, dtype=bool).reshape(rows.shape)

    def cell(r, c):
        text = format_number(rows[r, c], digits)
        return rf"\boxed{{{text}}}" if marks is not None and marks[r, c] else text
    return rf"\begin{{bmatrix}} {_matrix_body(rows.shape, cell)} \end{{bmatrix}}"


#: the axes of a feature map's matrix: an activation (n, rows, columns, c) or (n, positions, c)
#: shows axes 1, 2 per sample (and channel); a kernel (u, v, k, c) or (u, k, c) axes 0, 1
ACTIVATION_AXES, PARAMETER_AXES = (1, 2), (0, 1)


def tensor_slices(shape: tuple, axes: tuple = ACTIVATION_AXES) -> list[tuple[tuple, str]]:
    """The matrices an array of more than two axes prints as: (index with ``axes`` whole, its
    label ``0,:,:,1``), one per entry of the other axes (samples and channels), in C order."""
    others = [i for i in range(len(shape)) if i not in axes]
    out = []
    for fixed in np.ndindex(*(shape[i] for i in others)):
        index = [slice(None)] * len(shape)
        for axis, value in zip(others, fixed):
            index[axis] = value
        out.append((tuple(index), ",".join(":" if isinstance(i, slice) else str(i) for i in index)))
    return out


def blank_matrix_tex(shape: tuple[int, ...]) -> str:
    """A bmatrix of the given shape with an empty box to fill in for every shown entry."""
    body = _matrix_body(as_matrix(np.zeros(shape)).shape, lambda r, c: r"\blank")
    return rf"{{\renewcommand{{\arraystretch}}{{1.7}}\begin{{bmatrix}} {body} \end{{bmatrix}}}}"


def shape_tex(values) -> str:
    if np.ndim(values) > 2:
        return r" \times ".join(str(n) for n in np.shape(values))
    rows, cols = as_matrix(values).shape
    return rf"{rows} \times {cols}"


def _is_row(expr: sp.Basic) -> bool:
    """Does this factor stand for a whole matrix (an indexed row, a row sum, a matrix)?"""
    return expr.has(sp.Indexed) or isinstance(expr, sp.MatrixExpr) or expr.has(sp.MatrixSymbol)


#: the name binding the row of ones in 1^T delta (column sums) to a matrix of numbers
ONES_ROW = "1^T"

#: each comparison and the same one read from its other side
_MIRRORED = {sp.GreaterThan: sp.LessThan, sp.LessThan: sp.GreaterThan,
             sp.StrictGreaterThan: sp.StrictLessThan, sp.StrictLessThan: sp.StrictGreaterThan}


def compared_first(condition: sp.Basic) -> sp.Basic:
    """A piecewise rule's condition with the compared row on the left (huber's
    ``|a - y| <= delta``, as textbooks write it, not SymPy's ``delta >= |a - y|``)."""
    if type(condition) in _MIRRORED and _is_row(condition.rhs) and not _is_row(condition.lhs):
        return _MIRRORED[type(condition)](condition.rhs, condition.lhs, evaluate=False)
    return condition


def cases_tex(printer, pieces, when: str) -> str:
    """A piecewise rule as one ``cases`` layout: each value, then ``when`` its condition (compared
    row first) or ``otherwise``; the printers of the rows and of the index form share it."""
    lines = []
    for value, condition in pieces:
        test = r"\text{otherwise}" if condition == sp.true else \
            rf"\text{{{when} }} {printer._print(compared_first(condition))}"
        lines.append(rf"{printer._print(value)} & {test}")
    return r"\begin{cases} " + r" \\ ".join(lines) + r" \end{cases}"


class RowLatexPrinter(BoundNames, PositiveFirst, LatexPrinter):
    """LaTeX printer for the derivation model's expressions, in whole matrices.

    ``names`` binds an indexed base, matrix symbol or symbol (by name) to its LaTeX: a symbol
    (``a_{2}``) or a matrix of numbers. ``transposed`` binds a matrix symbol to the LaTeX of its
    transpose (so ``a^T`` with numbers prints the transposed matrix itself). Floats print with
    ``digits`` decimals.
    """

    def __init__(self, names: dict | None = None, transposed: dict | None = None, digits: int = 8,
                 filled: bool = False, product: str = r"\odot"):
        super().__init__({"fold_short_frac": False})
        self.bind_names(names)
        self.transposed = {str(k): v for k, v in (transposed or {}).items()}
        self.digits = digits
        self.filled = filled
        self.product = f" {product} "

    # ---- names
    def _print_Symbol(self, expr, style="plain"):
        if expr.name in self.names:
            return self.names[expr.name]
        return super()._print_Symbol(expr, style)

    _print_Dummy = _print_Symbol

    def _print_Float(self, expr):
        return format_number(float(expr), self.digits)

    # ---- rows: sums over units, element-wise products and powers
    def _print_Sum(self, expr):
        return rf"\operatorname{{rowsum}}\left({self._print(expr.function)}\right)"

    def _row_factor(self, factor: sp.Expr) -> str:
        if factor.is_Pow and factor.exp.is_Integer and factor.exp > 1 and _is_row(factor.base):
            base = self.parenthesize(factor.base, 1000) if factor.base.is_Add or factor.base.is_Mul \
                else self._print(factor.base)
            return self.product.join([base] * int(factor.exp)) if factor.exp <= 2 \
                else rf"{base}^{{\circ {int(factor.exp)}}}"
        if factor.is_Add:
            return rf"\left({self._print(factor)}\right)"
        return self._print(factor)

    def _print_Mul(self, expr):
        numerator, denominator = [], []
        args = expr.args if expr.is_Mul else (expr,)   # LatexPrinter sends 1/x here as well
        for factor in args:
            if factor.is_Pow and factor.exp.is_negative:
                denominator.append(sp.Pow(factor.base, -factor.exp))
            elif factor.is_Rational and factor.q != 1:
                numerator.append(sp.Integer(factor.p))
                denominator.append(sp.Integer(factor.q))
            else:
                numerator.append(factor)
        rows_up = [f for f in numerator if _is_row(f)]
        rows_down = [f for f in denominator if _is_row(f)]
        if not rows_up and not rows_down:
            return super()._print_Mul(expr)
        if len(rows_up) == 1 and not rows_down:    # the coefficient first: eta g, mu m
            coefficient = sp.Mul(*[f for f in args if not _is_row(f)])
            sign = ""
            if not coefficient.is_Add and coefficient.could_extract_minus_sign():
                sign, coefficient = "-", -coefficient
            if coefficient == 1:
                return sign + (self._row_factor(rows_up[0]) if sign else self._print(rows_up[0]))
            return rf"{sign}{self._scalar(coefficient)} \, {self._row_factor(rows_up[0])}"
        scalar_up = sp.Mul(*[f for f in numerator if not _is_row(f)])
        scalar_down = sp.Mul(*[f for f in denominator if not _is_row(f)])
        sign = ""
        if scalar_up.could_extract_minus_sign():
            sign, scalar_up = "-", -scalar_up

        def product(scalar, rows):
            parts = [] if scalar == 1 else [self._scalar(scalar) if rows else self._print(scalar)]
            if len(rows) == 1 and not parts:
                parts.append(self._print(rows[0]) if rows[0].is_Add else self._row_factor(rows[0]))
            elif rows:
                parts.append(self.product.join(self._row_factor(f) for f in rows))
            return r" \, ".join(parts) or "1"

        if rows_down:
            return sign + rf"\frac{{{product(scalar_up, rows_up)}}}{{{product(scalar_down, rows_down)}}}"
        rows = self.product.join(self._row_factor(f) for f in rows_up)
        if scalar_up == 1 and scalar_down == 1:
            return sign + rows
        if scalar_down == 1:
            return sign + rf"{self._scalar(scalar_up)} \, {rows}"
        return sign + rf"\frac{{{self._print(scalar_up)}}}{{{self._print(scalar_down)}}} \, {rows}"

    def _scalar(self, factor: sp.Expr) -> str:
        """A scalar coefficient in front of a row: parenthesized when it is a sum."""
        return self.parenthesize(factor, PRECEDENCE["Mul"], strict=True)

    def _print_exp(self, expr, exp=None):
        if self.filled:
            return rf"\exp\left({self._print(expr.args[0])}\right)"
        return super()._print_ExpBase(expr, exp)

    def _print_Pow(self, expr):
        if _is_row(expr.base) and expr.exp.is_Integer and expr.exp > 1:
            return self._row_factor(expr)
        return super()._print_Pow(expr)

    def _print_Piecewise(self, expr):
        return cases_tex(self, expr.args, "where")

    # ---- matrices of the Dense rule
    def _print_MatMul(self, expr):
        factors = list(expr.args)
        if isinstance(factors[0], sp.OneMatrix):
            rest = sp.MatMul(*factors[1:]) if len(factors) > 2 else factors[1]
            if factors[0].shape[1] == 1:          # 1 b: the row b added to every row
                return self._print(rest)
            ones = self.names.get(ONES_ROW, r"\mathbf{1}^{\top}")   # column sums
            return rf"{ones} {self._print(rest)}"
        return r" \, ".join(self.parenthesize(f, 50) for f in factors)

    def _print_Transpose(self, expr):
        name = getattr(expr.arg, "name", None)
        if name in self.transposed:
            return self.transposed[name]
        return rf"{{{self._print(expr.arg)}}}^{{\top}}"

    def _print_MatAdd(self, expr):
        return " + ".join(self._print(arg) for arg in expr.args)


class IndexLatexPrinter(PositiveFirst, LatexPrinter):
    """The derivation's row formulas in index form (``y_{i}``, ``\\sum_{i=0}^{K-1}``), for a
    per-sample loss; floats with ``digits`` decimals. A long numerator over a short denominator
    prints as a factor in front (``\\frac{1}{K} \\sum_{i} ...``, not a sum of cases over K)."""

    def __init__(self, digits: int = 8):
        super().__init__({"fold_short_frac": False, "long_frac_ratio": 4})
        self.digits = digits

    def _print_Piecewise(self, expr):
        return cases_tex(self, expr.args, "if")

    def _print_Indexed(self, expr):
        return f"{self._print(expr.base.label)}_{{{','.join(self._print(i) for i in expr.indices)}}}"

    def _print_Float(self, expr):
        return format_number(float(expr), self.digits)

    def _print_Dummy(self, expr):
        return self._print(sp.Symbol(expr.name))


class EntryLatexPrinter(PositiveFirst, LatexPrinter):
    """An indexed layer's entry formula (:mod:`symbp.rules.layers`) as the handout writes it:
    ``a_{0}[n,p+u,q+v,k]`` (each base by the TeX ``names`` binds it to), sums with their limits;
    with ``values`` (base name -> array), each entry of a bound base prints as its number."""

    def __init__(self, names: dict, values: dict | None = None, digits: int = 8):
        super().__init__({"fold_short_frac": False})
        self.names, self.values, self.digits = names, values or {}, digits

    def _print_Indexed(self, expr):
        base = str(expr.base)
        if base in self.values:
            text = format_number(self.values[base][tuple(int(i) for i in expr.indices)], self.digits)
            return rf"\left({text}\right)" if text.startswith("-") else text
        indices = ",".join(re.sub(r"\s*([+-])\s*", r"\1", self._print(i)) for i in expr.indices)
        return f"{self.names.get(base, base)}[{indices}]"

    def _print_Mul(self, expr):
        if self.values and expr.has(sp.Indexed):
            return r" \cdot ".join(self._print(f) for f in expr.as_ordered_factors())
        return super()._print_Mul(expr)

    def _print_Float(self, expr):
        return format_number(float(expr), self.digits)

    def _print_Symbol(self, expr, style="plain"):
        return self.names.get(expr.name, super()._print_Symbol(expr, style))

    def _print_Dummy(self, expr):
        return self._print(sp.Symbol(expr.name))

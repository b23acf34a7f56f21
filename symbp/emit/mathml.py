"""MathML for the HTML handouts: matrices of numbers written here, rules converted from LaTeX.

A browser shows MathML without any script or font download, so a page stays self-contained.
The rules in symbols come from the LaTeX presenter's lines (one printer of the derivation model,
:class:`symbp.emit.latex.RowLatexPrinter`), converted by ``latex2mathml``; every matrix of
numbers is written by :func:`matrix_mathml` (a ``<mtable>`` between brackets, elided past
``MAX_SHOWN`` rows or columns as the LaTeX handout elides it) and put into the converted line
where the LaTeX line holds its placeholder ``\\text{symbpNk}``. Nothing in a line comes from a
spec's strings: those are escaped by the HTML templates.
"""

from __future__ import annotations

import html
import re

import numpy as np

from .latex import as_matrix, format_number, shown_indices

#: the placeholder a LaTeX line holds where a matrix (or a blank) goes, and what latex2mathml makes of it
PLACEHOLDER = "symbpN{}"
_CONVERTED = re.compile(r"<mtext>(symbpN\d+)</mtext>")
#: a student's empty box to fill in (no number behind it)
BLANK = '<mspace class="blank" width="4em" height="1.1em" depth="0.4em"></mspace>'
#: what latex2mathml makes of the LaTeX handout's \blank macro
_BLANK_MACRO = re.compile(r"<mi>\\blank</mi>")


def number_mathml(text: str) -> str:
    """One number as :func:`format_number` wrote it (``-0.5``, ``\\infty``, ``\\mathrm{NaN}``)."""
    sign = "\u2212" if text.startswith("-") else ""
    body = text.lstrip("-")
    if body == r"\infty":
        return f"<mrow><mo>{sign}</mo><mi>\u221e</mi></mrow>" if sign else "<mi>\u221e</mi>"
    if body == r"\mathrm{NaN}":
        return '<mi mathvariant="normal">NaN</mi>'
    return f"<mn>{sign}{html.escape(body)}</mn>"


def _table(shape: tuple[int, int], cell) -> str:
    """``<mtable>`` of ``cell(r, c)`` with dots where rows or columns are elided."""
    rows, cols = shown_indices(shape[0]), shown_indices(shape[1])
    out = []
    for r in rows:
        cells = []
        for c in cols:
            if r is None:
                cells.append("<mo>\u22f1</mo>" if c is None else "<mo>\u22ee</mo>")
            else:
                cells.append("<mo>\u22ef</mo>" if c is None else cell(r, c))
        out.append("<mtr>" + "".join(f"<mtd>{c}</mtd>" for c in cells) + "</mtr>")
    return "<mtable>" + "".join(out) + "</mtable>"


def bracketed(table: str) -> str:
    return f'<mrow class="matrix"><mo>[</mo>{table}<mo>]</mo></mrow>'


def matrix_mathml(values, digits: int, marked=None) -> str:
    """``values`` (a vector as one row) as a bracketed table of numbers rounded to ``digits``; the
    entries where ``marked`` is true boxed (max pooling's selected entries)."""
    rows = as_matrix(values)
    marks = None if marked is None else np.asarray(marked, dtype=bool).reshape(rows.shape)

    def cell(r, c):
        number = number_mathml(format_number(rows[r, c], digits))
        return f'<menclose notation="box">{number}</menclose>' if marks is not None and marks[r, c] else number
    return bracketed(_table(rows.shape, cell))


def blank_matrix_mathml(shape: tuple[int, ...]) -> str:
    """A bracketed table of empty boxes of ``shape``: the student sheet's answer, withheld."""
    return bracketed(_table(as_matrix(np.zeros(shape)).shape, lambda r, c: BLANK))


def latex_to_mathml(tex: str, inserts: dict[str, str], display: str = "block") -> str:
    """The MathML of a LaTeX math line, its placeholders replaced by ``inserts`` (token -> MathML)."""
    from latex2mathml.converter import convert
    converted = convert(tex, display=display)
    converted = _CONVERTED.sub(lambda m: inserts[m.group(1)], converted)
    return _BLANK_MACRO.sub(BLANK, converted)


#: text-mode LaTeX the handouts' prose uses, and its plain text (escape_latex undone)
_TEXT_ESCAPES = {r"\_": "_", r"\&": "&", r"\%": "%", r"\#": "#", r"\$": "$", r"\{": "{", r"\}": "}",
                 r"\textless{}": "<", r"\textgreater{}": ">", r"\textbackslash{}": "\\", "-{}": "-",
                 r"\textasciitilde{}": "~", r"\textasciicircum{}": "^", r"\textbar{}": "|",
                 r"\textquotedbl{}": '"', r"\textquotesingle{}": "'", r"\textasciigrave{}": "`"}
_TEXT_COMMAND = re.compile(r"\\(?:texttt|emph|textit|textbf)\{([^{}]*)\}")
_INLINE_MATH = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$")


def prose_html(text: str) -> str:
    """A line of the handouts' LaTeX prose as HTML: text escaped, ``$math$`` as inline MathML."""
    out, last = [], 0
    for match in _INLINE_MATH.finditer(text):
        out.append(_plain(text[last:match.start()]))
        out.append(latex_to_mathml(match.group(1), {}, display="inline"))
        last = match.end()
    out.append(_plain(text[last:]))
    return "".join(out)


def _plain(text: str) -> str:
    text = _TEXT_COMMAND.sub(r"\1", text)
    for tex, plain in _TEXT_ESCAPES.items():
        text = text.replace(tex, plain)
    return html.escape(text)

"""How a notebook shows a wide matrix: elided as the handouts elide it (symbp.emit.latex.MAX_SHOWN).

:func:`shown` is written into every notebook (its source, by :func:`shown_source`) and called by
its prints; :func:`symbp.emit.notebook.printed_outputs` calls the same function for the outputs it
shows, so a notebook prints a 64-unit layer as its first 3 and last 2 rows and columns around
``..``, as the handout does (a value that is NaN prints as ``..`` too), and a small matrix exactly as NumPy prints it.
"""

from __future__ import annotations

import inspect

import numpy as np


def shown(values):
    """``values`` to print: itself when no axis is longer than 8; else the first 3 and last 2
    rows and columns around '..' (as the handouts elide a matrix; the full values are the variable's)."""
    values = np.asarray(values)
    if values.ndim not in (1, 2) or max(values.shape) <= 8:
        return values

    def kept(count):   # the indices shown, -1 for the gap
        return list(range(count)) if count <= 8 else [0, 1, 2, -1, count - 2, count - 1]

    rows = kept(values.shape[0]) if values.ndim == 2 else [0]
    columns = kept(values.shape[-1])
    matrix = values.reshape(1, -1) if values.ndim == 1 else values
    picked = matrix[np.ix_([max(r, 0) for r in rows], [max(c, 0) for c in columns])].astype(float)
    picked[np.add.outer(np.array(rows) < 0, np.array(columns) < 0)] = np.nan   # the gap, printed as ..
    text = np.array2string(picked if values.ndim == 2 else picked[0], separator=" ")
    return text.replace("nan", " ..")


def shown_source() -> str:
    """The source of :func:`shown`, as the notebook defines it."""
    return inspect.getsource(shown)

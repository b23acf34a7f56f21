"""The ``[handout]`` table and ``--ask`` entries: what the student sheet asks and how it scaffolds.

```toml
[handout]
ask = ["W1[0:2,0:3]", "delta2"]   # the entries the student sheet asks for, as the handout numbers them
digits = 4                        # decimals for hand work
derivative_table = true           # the SymPy derivative column of the student sheet's layer table
symbolic_rules = false            # the back-propagation rules in symbols on the student sheet
name_line = false                 # a name and ID line at the top of the student sheet
first_index = 0                   # W0 feeds z1 (Keras's order) or W1 (textbooks)
```

Each key has a CLI flag of ``derive`` and ``variants`` that overrides it (:data:`TABLE_OPTIONS`
maps keys to :class:`symbp.emit.handouts.HandoutOptions`' fields). An asked entry is a quantity
the student computes on the way back, by the answer key's names in the handout's numbering
(``delta2``, ``g1``, ``fprime2``, ``dW1``, ``db1``/``dtheta1``, the updated ``W1`` or
``W1_updated``; a CNN's feature and pooled maps ``a1``, ``a2``), with an optional NumPy-style
selection: ``W1[0:2,0:3]`` (rows 0-1, columns 0-2), ``W1[2,0]``, ``W1[:,1]``, ``b1[0:3]``; an
array of more axes (a CNN's kernel, feature maps, deltas) takes up to one index per axis,
``W0[0:2,0:2,0,0]``, ``delta1[0,:,:,2]``. Only the syntax is read here (no spec needed); :meth:`Ask.picked` checks it against the quantity's shape.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Optional

from ..derivation.naming import PARAMETER_CODES, ParamName

#: [handout] key -> the HandoutOptions field (and CLI flag) it sets
TABLE_OPTIONS = {"ask": "ask", "digits": "digits", "derivative_table": "student_derivatives",
                 "symbolic_rules": "student_rules", "name_line": "name_line", "first_index": "first_index"}
HANDOUT_KEYS = set(TABLE_OPTIONS)
#: the quantities a sheet can ask for: the answer key's prefixes before the layer's number
ASK_KINDS = {"delta": "delta", "g": "g", "fprime": "fprime", "a": "a"}
_ASK = re.compile(r"\s*(?P<name>[A-Za-z]+?)(?P<n>\d+)(?P<updated>_updated)?\s*"
                  r"(?:\[(?P<index>[^\[\]]*)\])?\s*\Z")
_INDEX = re.compile(r"\s*(?:(?P<at>\d+)|(?P<start>\d*)\s*:\s*(?P<stop>\d*))\s*\Z")
#: a gradient's name: d and the parameter's letter (dW, db, dtheta)
_GRADIENT = re.compile(r"d([A-Za-z]+)")
#: the quantities' forms, for a message (network-free: what a network has, only its sheet knows)
ASK_FORMS = ("delta<l>, g<l>, fprime<l>, a<l> (a CNN's map), dW<n>, db<n>, W<n> or b<n> (updated); "
             "optionally a selection: [0:2,0:3], [2,0], [:,1]")
#: a quantity of 1 or 2 axes in words (what it is, how many indices it takes), and what each index counts
_AXES_NOUN = {1: ("a vector", "one index"), 2: ("a matrix", "two indices")}
_AXIS_WORDS = {1: ["entries"], 2: ["rows", "columns"]}


@dataclass(frozen=True)
class Ask:
    """One asked quantity: ``kind`` "delta", "g", "fprime", "a" (a layer's, ``number`` the layer)
    or "gradient", "updated" (a parameter: ``letter`` W/b, ``number`` as printed), and its
    selection, one ``(start, stop)`` per index (stop None: to the end); ``()`` asks every entry."""
    text: str
    kind: str
    number: int
    letter: str = ""
    index: tuple[tuple[int, Optional[int]], ...] = ()

    def quantity(self, first_index: int) -> str:
        """The module's (and trace's) name of what is asked: delta2, dW0, W0_updated."""
        if self.kind in ASK_KINDS:
            return f"{self.kind}{self.number}"
        n = self.number - first_index
        if n < 0:
            raise ValueError(f"parameters are numbered from {first_index}")
        return f"d{self.letter}{n}" if self.kind == "gradient" else f"{self.letter}{n}_updated"

    def picked(self, shape: tuple[int, ...]) -> list[list[int]]:
        """The indices asked along each axis of a quantity of ``shape`` (an axis the selection
        does not index: all of it), or ValueError naming the shape when the selection has more
        indices than the quantity has axes or one is outside its axis."""
        size = " x ".join(map(str, shape))
        if len(self.index) > len(shape):
            noun, count = _AXES_NOUN.get(len(shape), (f"an array of {len(shape)} axes", f"{len(shape)} indices"))
            raise ValueError(f"{noun} has at most {count} (shape {size}; {len(self.index)} given)")
        words = _AXIS_WORDS.get(len(shape)) or [f"axis {k}'s indices" for k in range(len(shape))]
        picked = []
        for axis, (start, stop) in enumerate(self.index + ((0, None),) * (len(shape) - len(self.index))):
            stop = shape[axis] if stop is None else stop
            if not start < stop <= shape[axis]:
                raise ValueError(f"{words[axis]} {start}..{stop - 1} are outside 0..{shape[axis] - 1} (shape "
                                 f"{size}; indices count from 0)")
            picked.append(list(range(start, stop)))
        return picked

    def selection(self, shape: tuple[int, ...], axes: tuple[int, int] = (0, 1)) -> tuple[list[int], list[int]]:
        """(rows, columns) asked of the quantity's matrices: a vector is one row, a matrix itself,
        an array of more axes the matrices spanning its ``axes`` (:meth:`matrices` says which)."""
        picked = self.picked(shape)
        if len(shape) == 1:
            return [0], picked[0]
        rows, columns = axes if len(shape) > 2 else (0, 1)
        return picked[rows], picked[columns]

    def matrices(self, shape: tuple[int, ...], axes: tuple[int, int] = (0, 1)) -> list[tuple]:
        """The asked matrices of an array of more than two axes, as the handouts print it (one
        matrix per entry of the axes other than ``axes``): each an index with ``axes`` None, in C
        order; ``[()]`` for a vector or matrix (itself)."""
        if len(shape) <= 2:
            return [()]
        picked = self.picked(shape)
        return list(itertools.product(*(picked[k] if k not in axes else [None] for k in range(len(shape)))))


def _index(text: str) -> tuple[tuple[int, Optional[int]], ...]:
    out = []
    for part in text.split(","):
        match = _INDEX.match(part)
        if match is None:
            raise ValueError(f"index {part.strip()!r} is not a number or a range start:stop")
        if match["at"] is not None:
            out.append((int(match["at"]), int(match["at"]) + 1))
        else:
            out.append((int(match["start"] or 0), int(match["stop"]) if match["stop"] else None))
    return tuple(out)


def parse_ask(text: str) -> Ask:
    """``W1[0:2,0:3]`` -> Ask("updated", 1, "W", ((0, 2), (0, 3))); ValueError saying what is
    expected otherwise (the caller names where the entry came from)."""
    match = _ASK.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a quantity ({ASK_FORMS})")
    name, number = match["name"], int(match["n"])
    index = _index(match["index"]) if match["index"] is not None else ()
    if name in ASK_KINDS and not match["updated"]:
        return Ask(text.strip(), ASK_KINDS[name], number, index=index)
    gradient = _GRADIENT.fullmatch(name) if not match["updated"] else None
    for kind, letter in ((("gradient", gradient[1]),) if gradient else ()) + (("updated", name),):
        try:
            param = ParamName.parse(f"{'b' if letter == 'theta' else letter}{number}")
        except ValueError:
            continue
        return Ask(text.strip(), kind, number, PARAMETER_CODES[param.kind], index)
    raise ValueError(f"{name!r} is not a quantity of the sheet (one of {ASK_FORMS})")

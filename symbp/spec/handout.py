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
``W1_updated``), with an optional NumPy-style selection: ``W1[0:2,0:3]`` (rows 0-1, columns 0-2),
``W1[2,0]``, ``W1[:,1]``, ``b1[0:3]``. Only the syntax is read here (no spec needed);
:meth:`Ask.selection` checks it against the quantity's shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ..derivation.naming import PARAMETER_CODES, ParamName

#: [handout] key -> the HandoutOptions field (and CLI flag) it sets
TABLE_OPTIONS = {"ask": "ask", "digits": "digits", "derivative_table": "student_derivatives",
                 "symbolic_rules": "student_rules", "name_line": "name_line", "first_index": "first_index"}
HANDOUT_KEYS = set(TABLE_OPTIONS)
#: the quantities a sheet can ask for: the answer key's prefixes before the layer's number
ASK_KINDS = {"delta": "delta", "g": "g", "fprime": "fprime"}
_ASK = re.compile(r"\s*(?P<name>[A-Za-z]+?)(?P<n>\d+)(?P<updated>_updated)?\s*"
                  r"(?:\[(?P<index>[^\[\]]*)\])?\s*\Z")
_INDEX = re.compile(r"\s*(?:(?P<at>\d+)|(?P<start>\d*)\s*:\s*(?P<stop>\d*))\s*\Z")
#: a gradient's name: d and the parameter's letter (dW, db, dtheta)
_GRADIENT = re.compile(r"d([A-Za-z]+)")
ASK_FORMS = "delta2, g1, fprime2, dW1, db1, W1 (updated), W1[0:2,0:3], b1[0:3]"


@dataclass(frozen=True)
class Ask:
    """One asked quantity: ``kind`` "delta", "g", "fprime" (a layer's row, ``number`` the layer)
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

    def selection(self, shape: tuple[int, ...]) -> tuple[list[int], list[int]]:
        """(rows, columns) of the quantity as a matrix (a vector is one row) that are asked,
        or ValueError naming the shape when an index is outside it."""
        rows, cols = (1, shape[0]) if len(shape) == 1 else shape
        axes = [(rows, "row"), (cols, "column")] if len(shape) == 2 else [(cols, "entry")]
        if len(self.index) > len(axes):
            raise ValueError(f"has {len(axes)} ind{'ex' if len(axes) == 1 else 'ices'} (shape "
                             f"{' x '.join(map(str, shape))})")
        picked = []
        for (size, what), (start, stop) in zip(axes, self.index + ((0, None),) * (len(axes) - len(self.index))):
            stop = size if stop is None else stop
            if not start < stop <= size:
                raise ValueError(f"{what}s {start}..{stop - 1} are outside 0..{size - 1} (shape "
                                 f"{' x '.join(map(str, shape))}; indices count from 0)")
            picked.append(list(range(start, stop)))
        return (picked[0], picked[1]) if len(axes) == 2 else ([0], picked[0])


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
    if len(out) > 2:
        raise ValueError("a matrix has at most two indices")
    return tuple(out)


def parse_ask(text: str) -> Ask:
    """``W1[0:2,0:3]`` -> Ask("updated", 1, "W", ((0, 2), (0, 3))); ValueError saying what is
    expected otherwise (the caller names where the entry came from)."""
    match = _ASK.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a quantity such as {ASK_FORMS}")
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

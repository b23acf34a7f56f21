"""The problems collector and the checks of single values (a number, a matrix, a registered name)
that every table of :mod:`.validate` is made of.

Each check adds what it finds wrong to a :class:`Problems` (the place, what was expected, what was
found) and returns the value it read, or None when it is unusable, so one pass reports every
problem of a spec at once.
"""

from __future__ import annotations

import math
import re
from typing import Any, Optional

import numpy as np

from ..rules.ranges import FLOAT32_MAX, Interval, finite_in_float32, float32
from ..rules.registry import UnknownName
from ..wording import did_you_mean, plural
from .model import Problem, SpecError


class Problems:
    """Every problem found so far, each once, in the order found."""

    def __init__(self):
        self.found: list[Problem] = []

    def add(self, where: str, message: str) -> None:
        if Problem(where, message) not in self.found:
            self.found.append(Problem(where, message))

    def expected(self, where: str, expected: str, found: str) -> None:
        """'<where>: expected <expected>, found <found>'."""
        self.add(where, f"expected {expected}, found {found}")

    def raise_if_any(self, source: str) -> None:
        if self.found:
            raise SpecError(source, self.found)


# ---------------------------------------------------------------- how values are shown
def shown(value: Any, limit: int = 60) -> str:
    """A value as the message shows it: repr'd, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def key_shown(key: Any) -> str:
    """A table key as a message shows it: bare when it is a plain name, else repr'd and cut."""
    return key if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,40}", key) else shown(key, 40)


def nearest(name: str, options) -> str:
    """' (did you mean ...?)' from symbp.wording: common aliases (lr), then edit distance."""
    return did_you_mean(name, options)


def kind_of(value: Any) -> str:
    """What a value is, as a message says it: 'a string ('3')', 'an array', 'a table'."""
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)
    return f"{kind} ({shown(value, 30)})" if isinstance(value, (str, bool)) else kind


def _as_rows(values: list, count: int = 3) -> str:
    """A flat array as the rows it probably meant, one value per row: [[0], [1], [2]]."""
    rows = ", ".join(f"[{shown(v, 20)}]" for v in values[:count])
    return f"[{rows}{', ...' if len(values) > count else ''}]"


def is_finite_number(value: Any) -> bool:
    """An int or float (not a bool) that is finite as a float64 (huge integers are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


# ---------------------------------------------------------------- tables and keys
def unknown_keys(problems: Problems, table: dict, allowed: set, where: str) -> None:
    for key in table:
        if key not in allowed:
            problems.add(f"{where}{key_shown(key)}", f"unknown key{nearest(str(key), allowed)}")


def table(problems: Problems, data: dict, key: str, required: bool = True) -> dict:
    """``data[key]`` when it is a table; {} (and a problem when it is required or not a table)."""
    value = data.get(key)
    if value is None:
        if required:
            problems.add(key, "missing (required table)")
        return {}
    if not isinstance(value, dict):
        problems.expected(key, "a table", kind_of(value))
        return {}
    return value


def named_table(problems: Problems, data: dict, key: str) -> dict:
    """A required table whose ``name`` key is required too ([loss], [optimizer])."""
    found = table(problems, data, key)
    if key in data and isinstance(data[key], dict) and "name" not in found:
        problems.add(f"{key}.name", "missing (required)")
    return found


def name_in(problems: Problems, registry, value: Any, where: str) -> Optional[str]:
    """The canonical name of ``value`` in a rule registry (aliases resolved), or None."""
    if not isinstance(value, str):
        problems.expected(where, "a name (string)", kind_of(value))
        return None
    try:
        return registry.canonical(value)
    except UnknownName as err:
        hint = f" (did you mean {' or '.join(map(repr, err.suggestions))}?)" if err.suggestions else ""
        problems.add(where, f"unknown {registry.kind} {shown(value)}{hint}")
        return None


# ---------------------------------------------------------------- numbers
def at_most(problems: Problems, value: Any, where: str, limit: int, what: str) -> None:
    if value is not None and value > limit:
        problems.add(where, f"at most {limit} {what}, found {value}")


def number(problems: Problems, value: Any, where: str, *, integer=False, positive=False) -> Optional[float]:
    """A finite int or float (not a bool), an int when ``integer``, above 0 when ``positive``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.expected(where, "an integer" if integer else "a number", kind_of(value))
        return None
    if integer and not isinstance(value, int):
        problems.expected(where, "an integer", repr(value))
        return None
    if not is_finite_number(value):
        problems.expected(where, "a finite number", shown(value))
        return None
    if positive and value <= 0:
        problems.add(where, f"must be positive, found {value!r}")
        return None
    return value


def in_range(problems: Problems, value: Any, where: str, interval: Interval) -> Optional[float]:
    """A rule's argument: a number in ``interval`` that stays finite, and in ``interval``,
    when Keras rounds it to float32 (|x| <= 3.4e38; beta_1 = 0.9999999999 is 1.0 there,
    and Adam's 1 - beta_1^t is 0; see symbp.rules.ranges)."""
    if number(problems, value, where) is None:
        return None
    if not finite_in_float32(value):
        problems.add(where, f"must be at most {FLOAT32_MAX:.4g} in size (Keras rounds it to "
                            f"float32), found {shown(value)}")
        return None
    if value not in interval:
        problems.add(where, f"must be {interval.requirement()}, found {value!r}")
        return None
    if float32(value) not in interval:
        problems.add(where, f"must be {interval.requirement()} also as Keras rounds it to float32 "
                            f"({float32(value)!r}), found {value!r}")
        return None
    return value


# ---------------------------------------------------------------- arrays
def matrix(problems: Problems, value: Any, where: str, rows: Optional[int] = None,
           cols: Optional[int] = None) -> Optional[np.ndarray]:
    """A rectangular array of finite numbers, optionally of a given shape."""
    if isinstance(value, list) and value and not any(isinstance(r, (list, dict)) for r in value):
        problems.add(where, f"must be 2-D, an array of rows (one per sample), found a flat array: "
                            f"write {_as_rows(value)}")
        return None
    if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
        problems.expected(where, "a non-empty 2-D array (an array of rows)", kind_of(value))
        return None
    widths = {len(r) for r in value}
    if len(widths) != 1 or 0 in widths:
        problems.add(where, f"rows must all have the same non-zero length, found lengths {sorted(widths)}")
        return None
    bad = [(r, c) for r, row in enumerate(value) for c, v in enumerate(row) if not is_finite_number(v)]
    if bad:
        r, c = bad[0]
        problems.expected(f"{where}[{r}][{c}]", "a finite number", shown(value[r][c])
                          + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
        return None
    array = np.array(value, dtype=np.float64)
    if (rows is not None and array.shape[0] != rows) or (cols is not None and array.shape[1] != cols):
        problems.expected(where, f"shape ({rows if rows is not None else 'any'} x "
                                 f"{cols if cols is not None else 'any'})",
                          f"{array.shape[0]} x {array.shape[1]}")
        return None
    return array


def first_not_a_number(value: Any, where: str) -> Optional[tuple[str, Any]]:
    """(where, entry) of the first entry of nested arrays ``value`` that is not a finite number
    (a string or a bool too: NumPy would read "0.8" as 0.8 and true as 1.0), None when every
    entry is one."""
    if not isinstance(value, list):
        return None if is_finite_number(value) else (where, value)
    for i, entry in enumerate(value):
        found = first_not_a_number(entry, f"{where}[{i}]")
        if found is not None:
            return found
    return None


def says_not_a_number(problems: Problems, value: Any, where: str) -> bool:
    """Name the first entry of ``value`` that is not a finite number (:func:`first_not_a_number`);
    whether there was one."""
    found = first_not_a_number(value, where)
    if found is not None:
        problems.expected(found[0], "a finite number", shown(found[1]))
    return found is not None


#: the most axes an array of a spec is read with
MAX_AXES = 32


def nesting_depth(value: Any) -> int:
    """How deep ``value``'s first entries nest arrays: 2 for rows of numbers."""
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth


def numbers_array(problems: Problems, value: Any, where: str) -> Optional[np.ndarray]:
    """Nested arrays of finite numbers as one float64 array (any rank, not ragged), or None
    after naming the first entry that is not a number. The shape is the caller's to check."""
    depth = nesting_depth(value)
    if depth > MAX_AXES:   # NumPy takes at most 64; a spec's arrays have at most 4
        problems.add(where, f"arrays nested {depth} deep: at most {MAX_AXES}")
        return None
    if says_not_a_number(problems, value, where):
        return None
    try:
        return np.array(value, dtype=np.float64)
    except ValueError:   # ragged
        problems.add(where, "the arrays at each depth must all have the same length (ragged arrays found)")
        return None


def vector(problems: Problems, value: Any, where: str, length: int) -> Optional[np.ndarray]:
    """A flat array of ``length`` finite numbers (a layer's bias: its units)."""
    if not isinstance(value, list) or any(isinstance(v, list) for v in value):
        problems.expected(where, f"an array of {plural(length, 'number')}", kind_of(value))
        return None
    if says_not_a_number(problems, value, where):
        return None
    if len(value) != length:
        problems.expected(where, f"{plural(length, 'number')} (the layer's units)", str(len(value)))
        return None
    return np.array(value, dtype=np.float64)

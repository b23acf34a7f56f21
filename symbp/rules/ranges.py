"""Ranges of the numbers a rule takes (optimizer and loss arguments), stated with the rule.

Every argument is a finite float64 *and* finite after Keras's float32 rounding
(``ops.cast(x, "float32")``, which Keras applies to hyperparameters even in a float64 model):
|x| <= FLOAT32_MAX = 3.4028234663852886e38. Past that Keras computes with inf, and a printed
module would hold inf. On top of that each argument has an interval (``Interval``): betas in
[0, 1) (at 1, Adam's 1 - beta_1^t is 0; above 1, its bias correction changes sign), a learning
rate above 0, and so on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: the largest finite float32 (numbers above it round to inf when Keras casts them)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def finite_in_float32(value: float) -> bool:
    """True when ``value`` is finite as a float64 and stays finite rounded to float32."""
    try:
        value = float(value)
    except OverflowError:   # an integer past float64
        return False
    if not math.isfinite(value):
        return False
    with np.errstate(over="ignore"):
        return bool(np.isfinite(np.float32(value)))


def float32(value: float) -> float:
    """``value`` rounded to float32, as a Python float (finite values only)."""
    return float(np.float32(value))


@dataclass(frozen=True)
class Interval:
    """low .. high, each end open or closed (``[0, 1)``); ends at +-inf mean no bound."""
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def requirement(self) -> str:
        """What a message asks for: 'positive', '0 or more', 'between 0 and 1', or
        'at least 0 and below 1 (in [0, 1))'."""
        if self.high == math.inf and self.low == 0.0:
            return "positive" if self.low_open else "0 or more"
        if not (self.low_open or self.high_open):
            return f"between {self.low:g} and {self.high:g}"
        return (f"{'above' if self.low_open else 'at least'} {self.low:g} and "
                f"{'below' if self.high_open else 'at most'} {self.high:g} (in {self})")

    def __str__(self) -> str:
        def end(v):
            return f"{v:g}" if math.isfinite(v) else ("-inf" if v < 0 else "inf")
        return (f"{'(' if self.low_open else '['}{end(self.low)}, "
                f"{end(self.high)}{')' if self.high_open else ']'}")


#: x > 0
POSITIVE = Interval(0.0, math.inf, low_open=True)
#: x >= 0
NON_NEGATIVE = Interval(0.0, math.inf)
#: 0 <= x < 1 (a decay rate whose 1 - x^t must stay above 0)
DECAY_RATE = Interval(0.0, 1.0, high_open=True)
#: 0 <= x <= 1 (Keras's own check for SGD's and RMSprop's momentum)
UNIT = Interval(0.0, 1.0)


def require_ranges(what: str, arguments, ranges: dict) -> None:
    """Every numeric argument a rule takes has its interval in ``ranges`` (a switch, a bool,
    needs none): checked where the rule is registered, so a new argument without a range is an
    error at import, never a number the spec checks let through unchecked."""
    unranged = {key for key, value in dict(arguments).items() if not isinstance(value, bool)} - set(ranges)
    if unranged:
        raise ValueError(f"{what}: no range in ARGUMENT_RANGES for {sorted(unranged)}")

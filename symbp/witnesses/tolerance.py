"""How closely symbp must agree with Keras: stated once, for the check, variants' --check and
the notebooks' "They match!" cells.

Two values of one quantity (a parameter, the epoch losses) agree when

    max |keras - symbp| <= relative * max(1, scale),   scale = max |keras value| of the quantity,

so small values are held to an absolute ``relative`` (1e-9 in float64) and large ones to a
relative one: with a learning rate of 1e30 the weights are ~5e29, and their float64 rounding
alone is ~1e14 (an absolute 1e-9 reported a false mismatch). Keras's value is the reference: a
diverging symbp value must not widen its own tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """|keras - symbp| <= relative * max(floor, max |keras|) (per quantity; ``floor`` 1: small
    values held to an absolute ``relative``)."""
    relative: float
    floor: float = 1.0

    def bound(self, reference) -> float:
        """The largest difference allowed for a quantity whose Keras value is ``reference``."""
        reference = np.abs(np.asarray(reference, dtype=np.float64))
        finite = reference[np.isfinite(reference)]
        return self.relative * max(self.floor, float(finite.max()) if finite.size else 1.0)

    def scaled_difference(self, reference, value) -> float:
        """max |reference - value| / max(1, max |reference|): compare with ``relative``
        (inf when the shapes differ or either holds inf or nan)."""
        reference = np.asarray(reference, dtype=np.float64)
        value = np.asarray(value, dtype=np.float64)
        if reference.shape != value.shape or not (np.all(np.isfinite(reference)) and np.all(np.isfinite(value))):
            return float("inf")
        if not reference.size:
            return 0.0
        return float(np.max(np.abs(reference - value))) / (self.bound(reference) / self.relative)

    def agree(self, reference, value) -> bool:
        return self.scaled_difference(reference, value) <= self.relative


#: per dtype of both runs
TOLERANCES = {"float64": Tolerance(1e-9), "float32": Tolerance(1e-5)}

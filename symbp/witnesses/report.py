"""One report for every witness: each parameter, the epoch losses and (where the witness has
them) the initial gradients, compared within :mod:`symbp.witnesses.tolerance`, in the seed's
words ("They match!"), each witness line named by its framework ("Keras:", "PyTorch:")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..derivation.naming import ParamName
from .tolerance import Tolerance

#: a difference past the tolerance is rounding when it is at most this many times the spread a
#: rounding witness measures on symbp's own run (compare.explain_rounding_growth and
#: compare.explain_float32_rounding)
ROUNDING_GROWTH_FACTOR = 10.0


class RoundingWitness(NamedTuple):
    """How the report words a difference one rounding witness excused: the verdict's "They match
    to <verdict>", its evidence (``{spread}``: the spread measured) and the summary's rule."""
    verdict: str
    evidence: str
    rule: str


#: by the key a Comparison's ``rounding_witness`` (and the JSON) records
ROUNDING_WITNESSES = {
    "nudged": RoundingWitness(
        "rounding",
        "nudging every step of symbp's own run by one ulp moves it by {spread}: the difference is "
        "rounding grown over the run, and the first epochs' losses agree",
        "rounding growth when every entry is at most {factor}x what one-ulp nudges of every step make of it"),
    "float64": RoundingWitness(
        "float32 rounding",
        "symbp's own float32 training is {spread} from its float64 training, the same formulas: the "
        "difference is what float32 rounding alone makes",
        "float32 rounding when every entry is at most {factor}x how far symbp's own float32 training "
        "is from its float64 training there"),
}


@dataclass
class Comparison:
    name: str
    witness: np.ndarray    # the witness's value (the reference of the tolerance)
    symbp: np.ndarray
    max_abs_diff: float
    match: bool
    #: the largest difference allowed: tolerance * max(1, max |witness|) (symbp.witnesses.tolerance)
    allowed: float = 0.0
    #: set when a difference past ``allowed`` was found to be rounding: how far rounding alone
    #: moves symbp's own result, as the witness ``rounding_witness`` (a ROUNDING_WITNESSES key) measured it
    rounding_spread: float | None = None
    rounding_witness: str | None = None

    def verdict(self) -> str:
        """The seed's words, and how close: 'They match! (largest difference 1e-12, allowed 1e-9)'."""
        numbers = f"largest difference {self.max_abs_diff:.3g}, allowed {self.allowed:.3g}"
        if self.rounding_spread is not None:
            said = ROUNDING_WITNESSES[self.rounding_witness]
            return (f"They match to {said.verdict} ({numbers}; "
                    f"{said.evidence.format(spread=f'{self.rounding_spread:.3g}')})")
        said = "They match!" if self.match else "They don't match."
        return f"{said} ({numbers})"

    def to_json(self) -> dict:
        return {"max_abs_diff": self.max_abs_diff, "match": self.match, "allowed": self.allowed,
                "rounding_spread": self.rounding_spread, "rounding_witness": self.rounding_witness}


def compare(name: str, witness_value, symbp_value, tolerance: Tolerance, reference=None) -> Comparison:
    """|witness - symbp| against ``tolerance.bound(witness)`` (or ``bound(reference)``: the
    gradients are held to the scale of all of them); never a match when the shapes differ or
    either side holds inf or nan."""
    witness_value = np.asarray(witness_value, dtype=np.float64)
    symbp_value = np.asarray(symbp_value, dtype=np.float64)
    allowed = tolerance.bound(witness_value if reference is None else reference)
    if witness_value.shape != symbp_value.shape:
        return Comparison(name, witness_value, symbp_value, float("inf"), False, allowed)
    with np.errstate(over="ignore", invalid="ignore"):   # 3e38 - (-3e38) in float64 is inf: no match
        diff = float(np.max(np.abs(witness_value - symbp_value))) if witness_value.size else 0.0
    finite = bool(np.all(np.isfinite(witness_value)) and np.all(np.isfinite(symbp_value)))
    return Comparison(name, witness_value, symbp_value, diff, finite and diff <= allowed, allowed)


def _between(n: int, depth: int) -> tuple[str, str]:
    lower = "input layer" if n == 0 else f"hidden layer {n}"
    upper = "output layer" if n + 1 == depth else f"hidden layer {n + 1}"
    return lower, upper


@dataclass
class CheckReport:
    dtype: str
    tolerance: float
    parameters: list[Comparison] = field(default_factory=list)
    losses: Comparison | None = None
    #: when they differ: a value of the training at a kink, or a max-pooling tie (see
    #: ``compare.kink_at_rounding``), the likely why
    kink: object | None = None
    #: the witness, as its lines name it ("Keras"), and its registry key (the JSON's field)
    framework: str = "Keras"
    witness: str = "keras"
    #: dL/dp at the initial parameters, where the witness has them
    gradients: list[Comparison] = field(default_factory=list)

    @property
    def comparisons(self) -> list[Comparison]:
        return self.parameters + ([self.losses] if self.losses is not None else []) + self.gradients

    @property
    def match(self) -> bool:
        return all(c.match for c in self.comparisons)

    def to_json(self) -> dict:
        result = {"match": self.match, "tolerance": self.tolerance, "dtype": self.dtype}
        if self.parameters or not self.gradients:
            result["parameters"] = {c.name: c.to_json() for c in self.parameters}
        if self.losses is not None:
            result["epoch_losses"] = {**self.losses.to_json(), self.witness: self.losses.witness.tolist(),
                                      "symbp": self.losses.symbp.tolist()}
        if self.gradients:
            result["gradients"] = {c.name: c.to_json() for c in self.gradients}
        result["kink"] = None if self.kink is None else self.kink._asdict()
        return result

    def _parameter_block(self, c: Comparison, depth: int, biases: str) -> str:
        param = ParamName.parse(c.name)
        lower, upper = _between(param.layer, depth)
        what = (f"weights between {lower} and {upper}" if param.kind == "kernel"
                else f"{biases} in the {upper}" if param.kind == "bias" else f"{param.kind} of the {upper}")
        return f"Checking {c.name} ({what}):\n\n{self.framework}:\n{c.witness}\nsymbp:\n{c.symbp}\n{c.verdict()}"

    def _summary(self) -> str:
        summary = (f"Everything matches {self.framework}." if self.match
                   else f"Some parameters do NOT match {self.framework}.")
        if not self.match and self.kink is not None:
            summary += (f"\nWhy: {self.kink.describe()}: there the rule's branch depends on rounding "
                        f"(NumPy and {self.framework} can round it to +-1e-17 with different signs and take "
                        f"different branches); move the data or weights off the kink")
        rule = (f"allowed: {self.tolerance:g} x max(1, largest |{self.framework} value|) of each quantity"
                if self.parameters else
                f"allowed: {self.tolerance:g} x the largest |{self.framework} gradient entry| of all parameters")
        for key, said in ROUNDING_WITNESSES.items():
            if any(c.rounding_witness == key for c in self.comparisons):
                rule += f"; differences past that count as {said.rule.format(factor=f'{ROUNDING_GROWTH_FACTOR:g}')}"
        return f"{summary} ({self.dtype}; {rule})"

    def describe(self, spec, bias_symbol: str = "theta") -> str:
        """The seed's section 3: each parameter from the witness, then from symbp, then the verdict.
        The biases are called as the handouts call them (``bias_symbol``: theta or b)."""
        biases = "biases (thetas)" if bias_symbol == "theta" else "biases"
        with np.printoptions(precision=8, suppress=False):
            blocks = [self._parameter_block(c, len(spec.layers), biases) for c in self.parameters]
            if self.losses is not None:
                blocks.append(f"Checking the loss of each epoch:\n\n{self.framework}: {self.losses.witness}\n"
                              f"symbp: {self.losses.symbp}\n{self.losses.verdict()}")
            blocks += [f"Checking dL/d{c.name} at the initial parameters:\n\n{self.framework}:\n{c.witness}\n"
                       f"symbp:\n{c.symbp}\n{c.verdict()}" for c in self.gradients]
        return "\n\n----------\n\n".join(blocks) + f"\n\n==========\n{self._summary()}\n"

"""Names of generated identifiers, in one place (layer l = 1..L; its parameters W{l-1}, b{l-1}).

A parameter's name is typed: :class:`ParamName` (the layer's position, the Keras variable name)
gives its generated name (``W0``), its gradient's (``dW0``) and its TeX; :meth:`ParamName.parse`
is the one reader of the textual form. The letters come from the layer rules' parameters
(:mod:`symbp.rules.layers` registers them here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PRE_ACTIVATION = "z{l}"       # z_l = a_{l-1} W_{l-1} + b_{l-1}
OUTPUT = "a{l}"               # a_l = f_l(z_l); a0 is the input x
UPSTREAM = "g{l}"             # g_l = dL/da_l
DELTA = "delta{l}"            # delta_l = dL/dz_l
DERIVATIVE = "fprime{l}"      # f'(z_l) of an element-wise activation (the trace's)
PARAMETER = "{code}{n}"       # parameter of layer n + 1 (Keras order): W0 the kernel, b0 the bias
GRADIENT = "d{param}"         # dL/d of a parameter: dW0
LABELS = "y"


def hyperparameter(name: str) -> str:
    """Module constant of a hyperparameter: learning_rate -> LEARNING_RATE."""
    return name.upper()


def loss_argument(loss: str, name: str) -> str:
    """Module constant of a loss argument: huber's delta -> HUBER_DELTA."""
    return f"{loss}_{name}".upper()


def layer_names(l: int) -> dict[str, str]:
    """Bindings of the derivation's generic rows and matrices for layer l."""
    return {"z": PRE_ACTIVATION.format(l=l), "a": OUTPUT.format(l=l), "g": UPSTREAM.format(l=l),
            "delta": DELTA.format(l=l), "y": LABELS}


def layer_rule_names(l: int, codes: tuple[str, ...]) -> dict[str, str]:
    """Bindings of a layer rule's matrices for layer l: its input a_{l-1}, its delta, and each
    parameter's MatrixSymbol (named by its letter) as that parameter of layer l (n = l - 1)."""
    return {"a_prev": OUTPUT.format(l=l - 1), "delta": DELTA.format(l=l),
            **{code: PARAMETER.format(code=code, n=l - 1) for code in codes}}


# ---------------------------------------------------------------- parameter names
#: Keras variable name -> letter of its generated name, as the layer rules register them
PARAMETER_CODES: dict[str, str] = {}
_PARAM_NAME = re.compile(r"([A-Za-z]+)(\d+)")


def register_parameter_code(kind: str, code: str) -> None:
    """Name parameters of kind ``kind`` ``{code}{n}``; one letter per kind, one kind per letter."""
    owner = next((k for k, c in PARAMETER_CODES.items() if c == code), kind)
    if PARAMETER_CODES.get(kind, code) != code or owner != kind:
        raise ValueError(f"parameter letter {code!r} for {kind!r} clashes with "
                         f"{PARAMETER_CODES.get(kind) or owner!r}")
    PARAMETER_CODES[kind] = code


@dataclass(frozen=True, order=True)
class ParamName:
    """A parameter: the 0-based position of its layer and its Keras variable name."""
    layer: int
    kind: str

    @property
    def code(self) -> str:
        """Its name in generated code and in ``params``: W0, b0."""
        return PARAMETER.format(code=PARAMETER_CODES[self.kind], n=self.layer)

    @property
    def gradient(self) -> str:
        """The name of dL/d itself: dW0."""
        return GRADIENT.format(param=self.code)

    def tex(self, symbols: dict[str, str] | None = None, first_index: int = 0) -> str:
        """Its TeX, ``W_{0}``; ``symbols`` replaces a kind's letter (the bias as ``\\theta``);
        ``first_index`` 1 counts layers from 1 in print (``W_{1}`` for the first layer)."""
        letter = (symbols or {}).get(self.kind, PARAMETER_CODES[self.kind])
        return f"{letter}_{{{self.layer + first_index}}}"

    def __str__(self) -> str:
        return self.code

    def printed(self, first_index: int = 0) -> str:
        """Its name where layers' parameters are counted from ``first_index`` (1: W1 for the
        first layer, as textbooks write it; the module itself keeps Keras's W0)."""
        return PARAMETER.format(code=PARAMETER_CODES[self.kind], n=self.layer + first_index)

    @classmethod
    def parse(cls, text: str) -> "ParamName":
        """The one reader of a parameter's textual form: ``W1`` -> ParamName(1, "kernel")."""
        match = _PARAM_NAME.fullmatch(text.strip()) if isinstance(text, str) else None
        kinds = {code: kind for kind, code in PARAMETER_CODES.items()}
        if match is None or match[1] not in kinds:
            letters = ", ".join(f"{code}<n>" for code in kinds)
            raise ValueError(f"not a parameter name: {text!r} (expected one of {letters})")
        return cls(int(match[2]), kinds[match[1]])

    @classmethod
    def names_one(cls, text: str) -> bool:
        """``text`` names a parameter (W1, b0), by :meth:`parse`, rather than a row (a1, delta2)."""
        try:
            cls.parse(text)
        except ValueError:
            return False
        return True


def printed_answer_names(param_names, first_index: int) -> dict[str, str]:
    """Answer-key names (dW0, db0, W0_updated) -> as printed from ``first_index`` (dW1, ...)."""
    out = {}
    for name in map(ParamName.parse, param_names):
        shown = name.printed(first_index)
        out[name.gradient] = GRADIENT.format(param=shown)
        out[UPDATED.format(param=name.code)] = UPDATED.format(param=shown)
    return out


# the assignment notebooks (symbp.emit.notebook)
UPDATED = "{param}_updated"   # the parameter after one optimizer step
KERAS_RESULT = "{param}_keras"  # the same parameter after Keras's model.fit
TORCH_RESULT = "{param}_torch"  # the same parameter after torch's optimizer.step()
SLOT = "{slot}_{param}"       # an optimizer slot (momentum, velocity) of one parameter

# indexed layers (symbp.rules.layers' Gather): what layer l reads, its selection weights, dL/d them
WINDOWS = "win{l}"            # the windows of a_{l-1} (or a_{l-1} flattened)
MASK = "mask{l}"              # pooling's selection weights over each window
WINDOW_MAX = "max{l}"         # the entry max pooling's mask selects in each window: z_l
WINDOWS_GRADIENT = "dwin{l}"  # dL/dwin_l, added back into g_{l-1} by the windows' adjoint


def indexed_names(l: int, codes: tuple[str, ...]) -> dict[str, str]:
    """Bindings of an indexed layer rule's arrays for layer l."""
    return {"win": WINDOWS.format(l=l), "mask": MASK.format(l=l), "delta": DELTA.format(l=l),
            **{code: PARAMETER.format(code=code, n=l - 1) for code in codes}}

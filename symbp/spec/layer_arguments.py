"""The [[layers]] tables of the types other than Dense: Keras's arguments, checked one per key.

Each argument a rule accepts (``LayerRule.arguments``: Conv2D's filters, kernel_size, strides,
padding, activation; pooling's pool_size, strides, padding) is checked by the kind of value Keras
takes, sizes as an int or a list of one int per spatial axis; the kernel (``kernel``, or
``weights`` as for Dense) in Keras's layout (kh, kw, in_channels, filters).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..rules import activations
from ..rules.initializers import INITIALIZERS

#: arguments that are sizes (an int, or one int per spatial axis)
SIZE_ARGUMENTS = ("kernel_size", "pool_size", "strides")
PADDINGS = ("valid", "same")


def _size(check, value: Any, where: str, rank: int) -> Optional[list]:
    values = value if isinstance(value, list) else [value]
    if len(values) not in (1, rank) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1024
                                               for v in values):
        check.problem(where, f"expected a positive integer or {rank} of them (one per axis), found {value!r}"[:200])
        return None
    return values * rank if len(values) == 1 else list(values)


def _arguments(check, table: dict, where: str, rule, rank: int) -> Optional[dict]:
    """The rule's Keras arguments from ``table`` (defaults filled in), or None after a problem."""
    out, ok = {}, True
    for key, default in rule.arguments:
        value = table.get(key, default)
        if key == "activation":
            continue
        if value is None and default is None and key in ("filters", "kernel_size"):
            check.problem(f"{where}.{key}", "missing (required)")
            ok = False
        elif key in SIZE_ARGUMENTS and value is not None:
            out[key] = _size(check, value, f"{where}.{key}", rank)
            ok = ok and out[key] is not None
        elif key == "filters":
            ok = check.number(value, f"{where}.filters", integer=True, positive=True) is not None and ok
            if ok and value > 1024:
                check.problem(f"{where}.filters", f"at most 1024 filters, found {value}")
                ok = False
            out[key] = value
        elif key == "padding":
            if value not in PADDINGS:
                check.problem(f"{where}.padding", f"expected \"valid\" or \"same\", found {value!r}"[:120])
                ok = False
            out[key] = value
    return out if ok else None


def _parameters(check, table: dict, where: str, rule, shape: tuple, arguments: dict) -> dict:
    """kernel (alias weights) and bias in Keras's layout, and the initializers of the others."""
    out = {}
    for parameter in rule.parameters:
        expected = tuple(parameter.shape(shape, arguments))
        keys = [k for k in ((parameter.kind, parameter.spec_key) if parameter.kind == "kernel" else (parameter.kind,))
                if k in table]
        if len(keys) > 1:
            check.problem(f"{where}.kernel", "given twice (kernel and weights): give one")
        if keys:
            try:
                values = np.array(table[keys[0]], dtype=np.float64)
            except (ValueError, TypeError, OverflowError):
                values = None
            if values is None or values.shape != expected or not np.all(np.isfinite(values)):
                found = "not an array of finite numbers" if values is None or values.shape == expected \
                    else f"shape {values.shape}"
                check.problem(f"{where}.{keys[0]}", f"expected an array of shape {expected} "
                                                    f"(Keras's layout), found {found}")
            else:
                out["weights" if parameter.kind == "kernel" else "bias"] = values.tolist()
        init = table.get(f"{parameter.kind}_initializer", parameter.initializer)
        if not isinstance(init, str) or init not in INITIALIZERS:
            check.problem(f"{where}.{parameter.kind}_initializer", f"unknown initializer {init!r}"[:120])
        out[f"{parameter.kind}_initializer"] = init
    return out


def check_layer(check, table: dict, where: str, rule, shape: Optional[tuple]):
    """(LayerSpec or None, output shape or None) of one non-Dense [[layers]] table."""
    from .model import LayerSpec
    gather = rule.gather
    rank = gather.spatial if gather is not None else 0
    allowed = {"type"} | {key for key, _ in rule.arguments}
    allowed |= {k for p in rule.parameters for k in (p.kind, p.spec_key, f"{p.kind}_initializer")}
    check.unknown_keys(table, allowed, where + ".")
    if not rule.indexed:
        check.problem(where, f"{rule.name} needs a flat input (samples x features): add a Flatten "
                             f"layer before it")
        return None, None
    arguments = _arguments(check, table, where, rule, rank)
    activation = "linear"
    if rule.parameters:
        activation = check.name_in(activations, table.get("activation", "linear"), f"{where}.activation")
    if arguments is None or activation is None or shape is None:
        return None, None
    if gather.kind == "windows" and len(shape) != rank + 1:
        check.problem(where, f"{rule.name} needs inputs of {rank + 1} axes per sample "
                             f"({'steps' if rank == 1 else 'height, width'}, channels), found shape {shape}")
        return None, None
    output = tuple(rule.output_shape(shape, arguments))
    if any(size <= 0 for size in output):
        check.problem(where, f"its window is larger than its input {shape} (output shape {output}): "
                             f"use a smaller window or padding \"same\"")
        return None, None
    parameters = _parameters(check, table, where, rule, shape, arguments)
    return LayerSpec(int(output[-1]), activation, type=rule.name, arguments=arguments, **parameters), output

"""Building a spec in code, the Python mirror of the TOML file: ``network(..., layers=[dense(...)])``."""

from __future__ import annotations

import numpy as np

from .model import LossSpec, OptimizerSpec, Spec


def dense(units: int, activation: str = "linear", weights=None, bias=None, *, kernel=None,
          **initializers) -> dict:
    """One Dense layer for :func:`network` (Keras names; ``weights`` (inputs, units), also
    accepted as ``kernel``, Keras's variable name; ``bias`` (units,))."""
    if weights is not None and kernel is not None:
        raise TypeError("dense() takes weights or kernel (the same parameter), not both")
    weights = kernel if weights is None else weights
    layer = {"units": units, "activation": activation, **initializers}
    if weights is not None:
        layer["weights"] = np.asarray(weights, dtype=np.float64).tolist()
    if bias is not None:
        layer["bias"] = np.asarray(bias, dtype=np.float64).tolist()
    return layer


def _table(rule) -> dict:
    """A loss or optimizer given by name, as a table, or as a LossSpec / OptimizerSpec."""
    if isinstance(rule, str):
        return {"name": rule}
    return rule.to_dict() if isinstance(rule, (LossSpec, OptimizerSpec)) else dict(rule)


def network(name: str, x, y, layers: list[dict], loss: str | dict | LossSpec,
            optimizer: str | dict | OptimizerSpec,
            *, batch_size: int = 32, epochs: int = 1, title: str = "", seed: int = 0) -> Spec:
    """Build and validate a spec in code: the Python mirror of the TOML file.

    >>> spec = network("tiny", [[1.0, 2.0]], [[1.0]], [dense(1, "sigmoid")], "mse",
    ...                {"name": "sgd", "learning_rate": 0.1}, batch_size=1)
    """
    data = {"name": name, "title": title, "seed": seed,
            "data": {"x": np.asarray(x, dtype=np.float64).tolist(),
                     "y": np.asarray(y, dtype=np.float64).tolist()},
            "layers": layers,
            "loss": _table(loss), "optimizer": _table(optimizer),
            "training": {"batch_size": batch_size, "epochs": epochs, "shuffle": False}}
    return Spec.from_dict(data, source=f"network {name!r}")

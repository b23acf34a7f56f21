"""The fastest SGD step we could write by hand in NumPy, for the benchmark's networks.

Hidden layers tanh or relu, a softmax output with categorical cross-entropy on the logits,
plain SGD. Same contract as the generated ``step``: returns new parameters, changes none of
its inputs; works in the arrays' dtype. Everything else is in place: each layer's output
overwrites its pre-activation, the softmax overwrites the logits, and each delta overwrites
the upstream gradient it came from.
"""

from __future__ import annotations

import numpy as np


def step(params: dict, x: np.ndarray, y: np.ndarray, learning_rate: float, hidden: str) -> dict:
    depth = len(params) // 2
    kernels = [params[f"W{n}"] for n in range(depth)]
    biases = [params[f"b{n}"] for n in range(depth)]
    outputs = [x]
    for n in range(depth):
        z = outputs[-1] @ kernels[n]
        z += biases[n]
        if n < depth - 1:
            if hidden == "relu":
                np.maximum(z, 0, out=z)
            else:
                np.tanh(z, out=z)
        outputs.append(z)
    delta = outputs.pop()                       # z of the output layer, becomes the softmax
    delta -= delta.max(axis=1, keepdims=True)
    np.exp(delta, out=delta)
    delta /= delta.sum(axis=1, keepdims=True)
    delta -= y
    delta *= 1.0 / x.shape[0]                   # (softmax - y) / B
    new = {}
    for n in reversed(range(depth)):
        below = outputs[n]
        kernel_step = below.T @ delta
        bias_step = delta.sum(axis=0)
        if n > 0:
            upstream = delta @ kernels[n].T
            if hidden == "relu":
                np.multiply(upstream, below > 0, out=upstream)
            else:
                slope = np.square(below)
                np.subtract(1, slope, out=slope)
                upstream *= slope
            delta = upstream
        kernel_step *= -learning_rate
        kernel_step += kernels[n]
        bias_step *= -learning_rate
        bias_step += biases[n]
        new[f"W{n}"], new[f"b{n}"] = kernel_step, bias_step
    return {name: new[name] for name in params}

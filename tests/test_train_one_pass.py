"""train() shares one forward pass between each batch's loss and its step: same numbers as
calling loss() and step() separately, batch by batch."""

import numpy as np

from symbp.emit.codegen import module_source
from symbp.witnesses.module import load_module
from symbp.spec import Spec


def test_train_equals_loss_then_step_per_batch():
    rng = np.random.default_rng(3)
    spec = Spec.from_dict({
        "name": "batches", "seed": 2,
        "data": {"x": rng.standard_normal((5, 3)).tolist(), "y": np.eye(2)[[0, 1, 1, 0, 1]].tolist()},
        "layers": [{"units": 4, "activation": "relu"}, {"units": 2, "activation": "softmax"}],
        "loss": {"name": "categorical_crossentropy"},
        "optimizer": {"name": "sgd", "learning_rate": 0.3, "momentum": 0.9},
        "training": {"batch_size": 2, "epochs": 3}})
    module = load_module(module_source(spec), "batches")
    trained, epoch_losses = module.train()

    params, state, expected_losses = module.initial_params(), None, []
    for _ in range(3):
        total = 0.0
        for start in range(0, 5, 2):
            xb, yb = module.X[start:start + 2], module.Y[start:start + 2]
            total += module.loss(params, xb, yb) * len(xb)
            params, state = module.step(params, xb, yb, state)
        expected_losses.append(total / 5)
    assert epoch_losses == expected_losses
    for name in module.PARAM_NAMES:
        np.testing.assert_array_equal(trained[name], params[name])
    assert not np.array_equal(trained["W0"], module.initial_params()["W0"])

"""framework = "torch": every torch.nn loss and torch.optim optimizer symbp states, with their
options, trained by the generated module and by PyTorch (nn.Sequential + torch.optim), agreeing to
1e-9 in float64 and 1e-5 in float32 across depths, activations, short last batches and epochs."""

import json

import numpy as np
import pytest

from symbp.spec.model import Spec, SpecError
from symbp.witnesses.compare import check
from symbp.witnesses.torch import torch_train

pytest.importorskip("torch")  # scripts/test.sh installs it; a clear error here if it did not

X = [[0.9, 1.2, 0.7], [0.1, -0.3, 0.5], [0.4, 0.4, -0.8], [-0.6, 0.2, 0.3], [0.5, -0.9, 0.1]]
INDICES = [[2], [0], [1], [1], [0]]
ONE_HOT = [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0]]
SOFT = [[0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.3, 0.4, 0.3], [0.5, 0.25, 0.25]]
REAL = [[0.3, -1.5, 0.2], [1.1, 0.4, -0.2], [-0.7, 0.0, 0.9], [0.2, 2.5, -0.4], [0.0, 0.6, 0.1]]


def torch_spec(loss, optimizer, y, activations=("tanh", "linear"), units=(4, 3), batch_size=2, epochs=3):
    rng = np.random.default_rng(7)
    layers, inputs = [], 3
    for width, activation in zip(units, activations):
        layers.append({"units": width, "activation": activation,
                       "weight": rng.uniform(-0.8, 0.8, (width, inputs)).round(3).tolist(),
                       "bias": rng.uniform(-0.2, 0.2, width).round(3).tolist()})
        inputs = width
    return Spec.from_dict({"name": "net", "framework": "torch", "data": {"x": X, "y": y}, "layers": layers,
                           "loss": loss if isinstance(loss, dict) else {"name": loss},
                           "optimizer": optimizer, "training": {"batch_size": batch_size, "epochs": epochs}})


def assert_matches(spec, dtype="float64"):
    report = check(spec, dtype)
    assert report.match, report.describe(spec)
    assert report.losses.max_abs_diff <= report.losses.allowed


LOSSES = [
    ({"name": "CrossEntropyLoss"}, INDICES, "linear"),
    ({"name": "CrossEntropyLoss", "label_smoothing": 0.2}, INDICES, "linear"),
    ({"name": "CrossEntropyLoss", "reduction": "sum"}, SOFT, "linear"),
    ({"name": "CrossEntropyLoss", "label_smoothing": 0.1}, ONE_HOT, "linear"),
    ({"name": "NLLLoss"}, INDICES, "linear"),
    ({"name": "MSELoss"}, REAL, "linear"),
    ({"name": "MSELoss", "reduction": "sum"}, REAL, "tanh"),
    ({"name": "L1Loss"}, REAL, "linear"),
    ({"name": "BCELoss"}, SOFT, "sigmoid"),
    ({"name": "BCELoss", "reduction": "sum"}, ONE_HOT, "sigmoid"),
    ({"name": "BCEWithLogitsLoss"}, SOFT, "linear"),
    ({"name": "HuberLoss", "delta": 0.5}, REAL, "linear"),
    ({"name": "HuberLoss"}, REAL, "linear"),
    ({"name": "SmoothL1Loss", "beta": 0.7}, REAL, "linear"),
]


@pytest.mark.parametrize("loss,y,output", LOSSES, ids=lambda v: str(v) if isinstance(v, dict) else None)
def test_every_loss_matches_torch(loss, y, output):
    assert_matches(torch_spec(loss, {"name": "SGD", "lr": 0.1, "momentum": 0.9}, y, ("tanh", output)))


OPTIMIZERS = [
    {"name": "SGD", "lr": 0.1},
    {"name": "SGD", "lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01},
    {"name": "SGD", "lr": 0.1, "momentum": 0.8, "nesterov": True, "weight_decay": 0.001},
    {"name": "Adam"},
    {"name": "Adam", "lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6, "weight_decay": 0.1, "amsgrad": True},
    {"name": "AdamW", "lr": 0.01},
    {"name": "AdamW", "lr": 0.01, "weight_decay": 0.2, "amsgrad": True},
    {"name": "RMSprop"},
    {"name": "RMSprop", "alpha": 0.9, "centered": True, "momentum": 0.5, "weight_decay": 0.01},
    {"name": "Adagrad"},
    {"name": "Adagrad", "lr_decay": 0.1, "initial_accumulator_value": 0.2, "weight_decay": 0.01},
    {"name": "Adamax"},
    {"name": "Adamax", "betas": [0.7, 0.9], "weight_decay": 0.05},
    {"name": "NAdam"},
    {"name": "NAdam", "momentum_decay": 0.01, "weight_decay": 0.01},
    {"name": "RAdam", "lr": 0.01},
    {"name": "RAdam", "lr": 0.01, "betas": [0.5, 0.8], "weight_decay": 0.01},   # rectified from step 7
    {"name": "RAdam", "lr": 0.01, "betas": [0.9, 0.6]},   # rho_inf = 4: never rectified
]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_every_optimizer_matches_torch(optimizer):
    assert_matches(torch_spec("CrossEntropyLoss", optimizer, INDICES, epochs=4))


GRID = [  # depths, activations, short last batches (5 rows), epochs
    (("relu",), (3,), 5, 1),
    (("sigmoid", "linear"), (4, 3), 3, 2),
    (("elu", "softsign", "linear"), (5, 4, 3), 2, 3),
    (("gelu", "silu", "selu", "linear"), (4, 4, 3, 3), 4, 2),
    (("leaky_relu", "softplus", "linear"), (2, 6, 3), 1, 2),
]


@pytest.mark.parametrize("activations,units,batch_size,epochs", GRID)
def test_grid_matches_torch(activations, units, batch_size, epochs):
    spec = torch_spec("MSELoss", {"name": "Adam", "lr": 0.01}, REAL, activations, units, batch_size, epochs)
    assert_matches(spec)


@pytest.mark.parametrize("optimizer", [OPTIMIZERS[2], OPTIMIZERS[4], OPTIMIZERS[8], OPTIMIZERS[14]],
                         ids=lambda o: o["name"])
def test_float32_matches_torch(optimizer):
    spec = torch_spec("CrossEntropyLoss", optimizer, INDICES, epochs=3)
    report = check(spec, "float32")
    assert report.match, report.describe(spec)


def test_torch_layout_and_epoch_losses():
    """Linear.weight is (units x inputs); epoch losses are the batch-size-weighted pre-update mean."""
    spec = torch_spec("MSELoss", {"name": "SGD", "lr": 1e-30}, REAL, batch_size=2, epochs=2)
    params, losses = torch_train(spec)
    assert params["W0"].shape == (4, 3) and params["W1"].shape == (3, 4)
    import torch
    w = {k: torch.as_tensor(v) for k, v in spec.initial_params().items()}
    x, y = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(REAL, dtype=torch.float64)
    out = torch.tanh(x @ w["W0"].T + w["b0"]) @ w["W1"].T + w["b1"]
    rows = ((out - y) ** 2).mean(dim=1)
    weighted = (rows[:2].mean() * 2 + rows[2:4].mean() * 2 + rows[4:].mean() * 1) / 5
    assert losses[0] == pytest.approx(float(weighted), rel=1e-12)


def test_torch_spec_errors_name_the_place():
    with pytest.raises(SpecError) as err:
        Spec.from_dict({"name": "net", "framework": "torch", "data": {"x": X, "y": REAL},
                        "layers": [{"units": 3, "weights": [[0.0] * 3] * 3}],
                        "loss": {"name": "MSELoss", "reduction": "none"},
                        "optimizer": {"name": "SGD", "learning_rate": 0.1, "nesterov": True}})
    text = str(err.value)
    assert "layers[0].weights" in text and "loss.reduction" in text
    assert "optimizer.learning_rate" in text and "optimizer.nesterov" in text


TORCH_SPEC = """
name = "net"
framework = "torch"
[data]
x = [[0.5, -0.2]]
y = [[1]]
[[layers]]
units = 2
weight = [[0.1, 0.2], [0.3, -0.4]]
bias = [0.0, 0.1]
[loss]
name = "CrossEntropyLoss"
[optimizer]
name = "SGD"
lr = 0.1
"""

BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("blocked")
sys.meta_path.insert(0, Block())
from symbp.cli import main
main(["check", sys.argv[1]])
"""


def test_torch_spec_without_torch_is_an_input_error(tmp_path):
    """Without torch installed, checking a torch spec exits 2 naming the extra to install; codegen
    needs no torch."""
    import os
    import subprocess
    import sys
    path = tmp_path / "net.toml"
    path.write_text(TORCH_SPEC)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(__import__("pathlib").Path(__file__).parents[1]),
                                                                     os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-c", BLOCK_TORCH, str(path)], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "symbp[torch]" in run.stderr and "Traceback" not in run.stderr
    codegen = subprocess.run([sys.executable, "-m", "symbp", "codegen", str(path), "-o", str(tmp_path)],
                             capture_output=True, text=True, env=env, cwd=tmp_path)
    assert codegen.returncode == 0 and (tmp_path / "net.py").exists()


def torch_seed_path():
    from pathlib import Path
    import symbp
    return Path(symbp.__file__).parent / "examples" / "cs4820_a7_torch.toml"


def torch_seed():
    from symbp.spec.model import load_spec
    return load_spec(torch_seed_path())


def test_torch_seed_trains_to_the_keras_seed_numbers():
    """The seed network as a torch spec (weights transposed, logits + CrossEntropyLoss) ends where
    the Keras seed (softmax + categorical_crossentropy) ends: the same lesson in two frameworks."""
    from symbp.spec.model import load_spec
    from symbp.witnesses.module import module_train
    torch_params, torch_losses_ = module_train(torch_seed())
    keras_params, keras_losses = module_train(load_spec(None))
    for name in torch_params:
        expected = keras_params[name].T if name.startswith("W") else keras_params[name]
        np.testing.assert_allclose(torch_params[name], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(torch_losses_, keras_losses, rtol=1e-12)
    assert check(torch_seed()).match


def test_symbp_check_of_a_torch_spec_goes_through_the_torch_witness(symbp_cli):
    """`symbp check` on a torch spec: the witness registered under "torch" (no --witness needed),
    compared and reported as Keras's is, every witness line named "PyTorch:"; a Keras witness
    for a torch spec is a usage error (the spec's names are torch's)."""
    from symbp.witnesses.base import BUILT_IN, witness
    from symbp.witnesses.torch import TorchWitness
    assert "torch" in BUILT_IN and isinstance(witness("torch"), TorchWitness)
    seed = str(torch_seed_path())
    run = symbp_cli("check", seed)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("PyTorch:") == len(torch_seed().param_names) + 1
    assert "Everything matches PyTorch." in run.stdout and "Keras" not in run.stdout
    as_json = json.loads(symbp_cli("check", seed, "--json").stdout)
    assert as_json["match"] and "torch" in as_json["epoch_losses"] and "keras" not in as_json["epoch_losses"]
    wrong = symbp_cli("check", seed, "--witness", "keras")
    assert wrong.returncode == 2 and "torch" in wrong.stderr


def test_torch_seed_handout_is_in_pytorch_notation(tmp_path):
    from symbp.emit.outputs import rendered_outputs
    files = rendered_outputs(torch_seed(), tmp_path)
    solution = next(text for path, text in files.items() if path.name.endswith("_solution.tex"))
    assert r"z_{1} = a_{0} \, {W_{0}}^{\top} + \theta_{0}" in solution
    assert r"\frac{\partial L}{\partial W_{0}} = {\delta_{1}}^{\top} \, a_{0}" in solution
    assert "model.fit" not in solution and "Keras" not in solution


def test_torch_seed_notebook_prints_they_match_against_pytorch(tmp_path):
    import nbformat
    from nbclient import NotebookClient
    from symbp.emit.notebook import rendered_notebooks
    spec = torch_seed()
    files = rendered_notebooks(spec, tmp_path)
    solution = nbformat.reads(files[tmp_path / f"{spec.name}_solution.ipynb"], as_version=4)
    sources = "\n".join(c.source for c in solution.cells)
    assert "nn.Sequential(" in sources and "nn.CrossEntropyLoss()" in sources and "optimizer.step()" in sources
    assert "import keras" not in sources
    NotebookClient(solution, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    checks = ["".join(o.get("text", "") for o in c.get("outputs", []))
              for c in solution.cells if "validation" in c.metadata.get("tags", [])]
    assert len(checks) == len(spec.param_names) + 1
    for printed in checks:
        assert printed.count("They match!") == 1 and "They don't match." not in printed, printed


def test_torch_variants_and_answer_keys_are_checked_against_pytorch(tmp_path, symbp_cli):
    """Each student's copy stays a torch spec (torch's layout), and --check trains it with PyTorch."""
    from symbp.spec.model import load_spec
    import json
    import symbp
    from pathlib import Path
    example = Path(symbp.__file__).parent / "examples" / "cs4820_a7_torch.toml"
    run = symbp_cli("variants", str(example), "-n", "2", "--check", "-o", str(tmp_path / "class"))
    assert run.returncode == 0, run.stderr
    assert "PyTorch check: 2 of 2 match" in run.stdout
    key = json.loads((tmp_path / "class" / "answer_key.json").read_text())
    assert len(key) == 2 and all(entry["framework_match"] and entry["framework"] == "torch" and "keras_match" not in entry for entry in key.values())
    variant = load_spec(tmp_path / "class" / "solutions" / "student_01" / "cs4820_a7_torch.toml")
    assert variant.framework == "torch" and np.array(variant.layers[0].weights).shape == (3, 4)
    assert check(variant).match


FROM_TORCH_DATA = """
[data]
x = [[0.9, 1.2, 0.7], [0.1, -0.3, 0.5], [0.4, 0.4, -0.8]]
y = [[2], [0], [1]]
[training]
batch_size = 2
epochs = 2
"""


def test_spec_from_a_torch_state_dict_trains_like_torch(tmp_path, symbp_cli):
    import torch
    from symbp.spec.model import load_spec
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "data.toml").write_text(FROM_TORCH_DATA)
    run = symbp_cli("spec", "--from-torch", str(tmp_path / "weights.pt"), "--layers", "tanh,linear",
                    "--data", str(tmp_path / "data.toml"), "--optimizer", "Adam", "-o", str(tmp_path / "net.toml"))
    assert run.returncode == 0, run.stderr
    spec = load_spec(tmp_path / "net.toml")
    assert spec.framework == "torch" and spec.optimizer.name == "adam"
    np.testing.assert_array_equal(np.array(spec.layers[0].weights), model[0].weight.detach().double().numpy())
    assert check(spec).match


def test_from_torch_never_unpickles_other_objects(tmp_path, symbp_cli):
    """A pickle that would run a command is refused by weights_only=True: exit 2, nothing run."""
    import pickle
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"0.weight": Payload()}))
    run = symbp_cli("spec", "--from-torch", str(tmp_path / "evil.pt"), "--layers", "linear")
    assert run.returncode == 2 and not marker.exists()
    assert "weights_only" in run.stderr and "weights_only=False" not in run.stderr and "Traceback" not in run.stderr


def test_from_torch_names_what_it_cannot_read(tmp_path, symbp_cli):
    import torch
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    torch.save(model.state_dict(), tmp_path / "bn.pt")
    run = symbp_cli("spec", "--from-torch", str(tmp_path / "bn.pt"), "--layers", "relu,linear,linear")
    assert run.returncode == 2 and "running_mean" in run.stderr and "Linear layers" in run.stderr
    torch.save(torch.nn.Sequential(torch.nn.Linear(3, 2)).state_dict(), tmp_path / "one.pt")
    run = symbp_cli("spec", "--from-torch", str(tmp_path / "one.pt"), "--layers", "tanh,linear")
    assert run.returncode == 2 and "1 Linear layer" in run.stderr


def test_param_names_follow_model_parameters_with_torch_names():
    """PARAM_NAMES in model.parameters() order; TORCH_NAMES their state_dict keys (activations count)."""
    import torch
    from symbp.witnesses.module import spec_module
    from symbp.witnesses.torch import build_torch_model
    spec = torch_spec("MSELoss", {"name": "SGD", "lr": 0.1}, REAL, ("relu", "linear", "linear"), (4, 2, 3))
    module = spec_module(spec)
    model = build_torch_model(spec, spec.initial_params(), torch.float64)
    assert list(module.TORCH_NAMES) == list(module.PARAM_NAMES)
    assert list(module.TORCH_NAMES.values()) == list(model.state_dict())
    for name, key in module.TORCH_NAMES.items():
        np.testing.assert_array_equal(model.state_dict()[key].numpy(), spec.initial_params()[name])


def test_torch_layers_without_weights_start_as_torch_s_own_default():
    """nn.Linear's default (kaiming_uniform_(a=sqrt(5)) for the weight, uniform_ for the bias) is
    U(-1/sqrt(inputs), 1/sqrt(inputs)) for both: symbp's draws have that bound, fill it as
    torch's own draws do, and the spec still trains to torch's numbers."""
    import torch
    rng = np.random.default_rng(3)
    inputs, hidden = 300, 200
    spec = Spec.from_dict({"name": "net", "framework": "torch", "seed": 5,
                           "data": {"x": rng.standard_normal((4, inputs)).tolist(), "y": [[0], [1], [2], [1]]},
                           "layers": [{"units": hidden, "activation": "tanh"}, {"units": 3}],
                           "loss": {"name": "CrossEntropyLoss"}, "optimizer": {"name": "SGD", "lr": 0.1}})
    assert [layer.kernel_initializer for layer in spec.layers] == ["torch_default"] * 2
    params = spec.initial_params()
    torch.manual_seed(0)
    for (w, b), fan_in in (((params["W0"], params["b0"]), inputs), ((params["W1"], params["b1"]), hidden)):
        theirs = torch.nn.Linear(fan_in, w.shape[0], dtype=torch.float64)
        bound = 1 / np.sqrt(fan_in)
        for ours, torch_own in ((w, theirs.weight), (b, theirs.bias)):
            torch_own = torch_own.detach().numpy()
            assert np.abs(ours).max() < bound and np.abs(torch_own).max() < bound
            if ours.size >= 200:   # a large draw fills its bound: its max within 3 % of it, its mean |x| about half
                for values in (ours, torch_own):
                    assert np.abs(values).max() > 0.97 * bound
                    assert abs(np.abs(values).mean() / bound - 0.5) < 0.03
    assert_matches(spec)


def test_torch_default_is_a_name_a_spec_may_give():
    spec = Spec.from_dict({"name": "net", "seed": 1, "data": {"x": [[1.0] * 16], "y": [[1.0]]},
                           "layers": [{"units": 4, "activation": "tanh", "bias_initializer": "torch_default"},
                                      {"units": 1, "kernel_initializer": "torch_default"}],
                           "loss": {"name": "mse"}, "optimizer": {"name": "sgd"}})
    params = spec.initial_params()
    assert np.abs(params["b0"]).max() < 1 / 4 and np.abs(params["W1"]).max() < 1 / 2   # Keras's layout: fan-in 16, then 4
    assert np.abs(params["b0"]).max() > 0   # drawn, not zeros


def test_gelu_computes_with_torch_s_double_constant():
    """torch.nn.GELU multiplies by M_SQRT1_2, a double; Keras by f32(1/sqrt 2). On the seed net's
    weights the float32 rounding alone is a 1e-9 mismatch: the torch module must use the double
    (Constant.exact_in), the Keras module the rounding."""
    import math
    import tomllib
    from pathlib import Path
    from symbp.emit.codegen import module_source
    examples = Path(__file__).resolve().parent.parent / "symbp" / "examples"
    sources = {}
    for name in ("cs4820_a7_torch", "cs4820_a7"):
        data = tomllib.loads((examples / f"{name}.toml").read_text())
        for layer in data["layers"][:-1]:
            layer["activation"] = "gelu"
        spec = Spec.from_dict(data)
        sources[spec.framework] = module_source(spec)
        if spec.framework == "torch":
            assert_matches(spec)
    m_sqrt1_2, rounded = repr(math.sqrt(0.5)), repr(float(np.float32(math.sqrt(0.5))))   # C's M_SQRT1_2
    assert m_sqrt1_2 in sources["torch"] and rounded not in sources["torch"]
    assert rounded in sources["keras"] and m_sqrt1_2 not in sources["keras"]

"""The assignment notebooks: the solution runs in a fresh kernel and matches Keras; the student's
copy holds none of the answers; the seed's printed numbers come out of the solution."""

import json

import nbformat
import pytest
from nbclient import NotebookClient

from symbp.emit.notebook import notebooks, rendered_notebooks
from symbp.spec import Spec, load_spec

#: two networks besides the seed: other activations, losses, batch sizes and optimizer rules
OTHER_NETWORKS = {
    "bce_momentum": {
        "name": "bce_momentum", "title": "Binary cross-entropy, three rows, Nesterov momentum",
        "data": {"x": [[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1]], "y": [[1], [0], [1]]},
        "layers": [{"units": 3, "activation": "sigmoid", "weights": [[0.3, -0.2, 0.5], [0.1, 0.4, -0.7]],
                    "bias": [0.1, -0.1, 0.0]},
                   {"units": 1, "activation": "sigmoid", "weights": [[0.6], [-0.4], [0.9]], "bias": [0.2]}],
        "loss": {"name": "binary_crossentropy"},
        "optimizer": {"name": "sgd", "learning_rate": 0.5, "momentum": 0.9, "nesterov": True},
        "training": {"batch_size": 3, "epochs": 1},
    },
    "mse_relu_decay": {
        "name": "mse_relu_decay", "title": "Mean squared error through relu and elu, weight decay",
        "data": {"x": [[1.0, 0.5, -0.5], [0.3, -0.2, 0.9], [0.0, 1.0, 1.0]], "y": [[0.5, -0.2], [0.1, 0.3], [0.0, 0.0]]},
        "layers": [{"units": 4, "activation": "relu",
                    "weights": [[0.2, -0.5, 0.3, 0.1], [0.4, 0.1, -0.2, 0.6], [-0.3, 0.2, 0.5, 0.1]],
                    "bias": [0.1, 0.0, -0.1, 0.2]},
                   {"units": 2, "activation": "elu", "weights": [[0.5, -0.3], [0.2, 0.4], [-0.6, 0.1], [0.3, 0.3]],
                    "bias": [0.0, 0.1]}],
        "loss": {"name": "mse"},
        "optimizer": {"name": "sgd", "learning_rate": 0.1, "weight_decay": 0.01},
        "training": {"batch_size": 2, "epochs": 3},
    },
}

# the seed notebook's printed output of section 1.3 (CS 4820, assignment 7)
SEED_PRINTED = {
    "delta3": "[[ 0.14432633 -0.33878922  0.05013656  0.14432633]]",
    "W2_updated": "[[-1.00817742  1.11919554 -0.0028407  -1.00817742]\n"
                  " [ 0.01083027 -1.0254228   1.10376226  0.01083027]\n"
                  " [ 1.09451232  0.01288169 -1.00190633  1.09451232]]",
    "delta2": "[[-0.44901899  0.17211113  0.22872531]]",
    "W1_updated": "[[-0.98691951 -0.80501381  1.29333694]\n"
                  " [ 1.32074994 -1.00795355 -0.81056979]\n"
                  " [-0.81308049  1.30501381 -0.99333694]]",
    "delta1": "[[ 0.55701915 -0.73832976  0.32417294]]",
    "W0_updated": "[[ 0.94986828  0.06644968 -0.02917556]\n"
                  " [-0.0668423   1.08859957 -1.03890075]\n"
                  " [-1.03899134  0.05168308 -0.02269211]\n"
                  " [-0.04456153 -0.94093362  0.97406616]]",
}


def spec_of(network: str) -> Spec:
    return load_spec() if network == "seed" else Spec.from_dict(OTHER_NETWORKS[network], network)


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"
                   and o.get("name") == "stdout")


def answer_cells(nb):
    return [c for c in nb.cells if "answer" in c.metadata.get("tags", [])]


def assert_answers_blanked(answers, student_text: str) -> None:
    """Every assignment of the solution's answer cells reads ``target = ...`` in the student copy,
    its code nowhere."""
    for cell in answers:
        for line in cell.source.splitlines():
            if " = " in line:
                target, code = line.split("  # ")[0].split(" = ", 1)
                assert f"{target} = {code}" not in student_text
                assert f"{target} = ..." in student_text


def executed_solution(spec, tmp_path):
    """(the spec's solution notebook, valid, run in a fresh kernel; each code cell's stdout as
    written before running, by index)."""
    files = rendered_notebooks(spec, tmp_path)
    solution = nbformat.reads(files[tmp_path / f"{spec.name}_solution.ipynb"], as_version=4)
    nbformat.validate(solution)
    expected = {i: text_of(c) for i, c in enumerate(solution.cells) if c.cell_type == "code"}
    NotebookClient(solution, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return solution, expected


def assert_every_check_matches(solution, spec, expected=None):
    """One validation cell per weight and bias and one for the loss, each printing "They match!"
    once and never "They don't match." (in any stream); ``expected``: the outputs shown before
    running are the ones the kernel prints."""
    printed_all = lambda cell: "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    checks = [printed_all(c) for c in solution.cells if "validation" in c.metadata.get("tags", [])]
    assert len(checks) == len(spec.param_names) + 1
    for printed in checks:
        assert printed.count("They match!") == 1 and "They don't match." not in printed, printed
    for index, shown in (expected or {}).items():
        if shown:
            assert text_of(solution.cells[index]) == shown


@pytest.mark.parametrize("network", ["seed", "bce_momentum", "mse_relu_decay"])
def test_solution_runs_in_a_fresh_kernel_and_matches_keras(network, tmp_path):
    spec = spec_of(network)
    solution, expected = executed_solution(spec, tmp_path)
    assert_every_check_matches(solution, spec, expected)


def test_a_spec_whose_data_goes_to_a_sidecar_file_gets_notebooks_that_run(sidecar_spec, tmp_path):
    """More numbers than a module writes out (codegen.MAX_LITERAL_NUMBERS): the notebook's values
    come from the module loaded with its sidecar .npz (before, the module looked for the .npz in
    the current folder: an internal error, or another spec's file of the same name read)."""
    spec = sidecar_spec
    solution, expected = executed_solution(spec, tmp_path)
    assert_every_check_matches(solution, spec, expected)


def test_seed_solution_prints_the_seed_numbers():
    solution = notebooks(load_spec())["solution"]
    # each answer cell ends print(shown(<name>)): small arrays print as NumPy prints them
    printed = {c.source.splitlines()[-1][len("print(shown("):-2]: text_of(c).strip() for c in answer_cells(solution)}
    for name, seed_text in SEED_PRINTED.items():
        assert printed[name] == seed_text


@pytest.mark.parametrize("network", ["seed", "bce_momentum", "mse_relu_decay"])
def test_student_copy_holds_no_answers(network):
    books = notebooks(spec_of(network))
    student, solution = books["student"], books["solution"]
    student_text = nbformat.writes(student)
    student_outputs = "".join(text_of(c) for c in student.cells)
    answers = answer_cells(solution)
    assert len(answers) == 1 + 3 * len(spec_of(network).layers) - 1  # output delta; dW, db per layer; deltas below
    assert_answers_blanked(answers, student_text)
    for cell in answers:
        assert text_of(cell) and text_of(cell) not in student_outputs
    for cell in answer_cells(student):
        assert not cell.outputs
    # the completed code cells are the same in both copies, outputs included
    for mine, theirs in zip(student.cells, solution.cells, strict=True):
        if mine.cell_type == "code" and "answer" not in mine.metadata.get("tags", []):
            assert mine.source == theirs.source
            assert mine.get("outputs") == theirs.get("outputs")


def test_derivatives_are_printed_from_sympy():
    solution = notebooks(spec_of("bce_momentum"))["solution"]
    sources = "\n".join(c.source for c in solution.cells)
    assert "def derivative_sigmoid(a):" in sources and "return (1 - a)*a" in sources
    relu = "\n".join(c.source for c in notebooks(spec_of("mse_relu_decay"))["solution"].cells)
    assert "def derivative_relu(z):" in relu and "def derivative_elu(z, a):" in relu


def test_gelu_notebook_imports_math_for_its_erfc_helper():
    from symbp.spec import dense, network
    spec = network("gelu_net", [[0.5, -1.0]], [[0.0, 1.0]], [dense(3, "gelu"), dense(2, "softmax")],
                   "categorical_crossentropy", {"name": "sgd", "learning_rate": 0.1}, batch_size=1)
    solution = notebooks(spec)["solution"]   # runs every cell: a missing import raises NameError
    sources = "\n".join(c.source for c in solution.cells)
    assert "import math" in sources and "def _erfc(" in sources


def test_derive_notebook_writes_both(tmp_path, symbp_cli):
    result = symbp_cli("derive", "--notebook", "--no-check", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for kind in ("student", "solution"):
        nb = nbformat.read(tmp_path / f"cs4820_a7_{kind}.ipynb", as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec["name"] == "python3"
    assert json.loads((tmp_path / "cs4820_a7_student.ipynb").read_text())["nbformat"] == 4


def test_identical_runs_give_identical_bytes(tmp_path):
    """Cell ids come from the cell's position, not nbformat's random ids."""
    spec = load_spec()
    first, second = rendered_notebooks(spec, tmp_path), rendered_notebooks(spec, tmp_path)
    assert first == second
    ids = [cell["id"] for cell in json.loads(first[tmp_path / "cs4820_a7_student.ipynb"])["cells"]]
    assert len(set(ids)) == len(ids)


def test_html_and_markdown_in_a_title_show_as_text():
    data = load_spec().to_dict()
    data["title"] = "<img src=x onerror=alert(1)> [link](javascript:alert(2)) *bold* $x$"
    for nb in notebooks(Spec.from_dict(data)).values():
        heading = nb.cells[0].source.splitlines()[0]
        assert "<" not in heading and "&lt;img src=x onerror=alert(1)&gt;" in heading
        assert r"\[link\](javascript:alert(2))" in heading and r"\*bold\*" in heading and r"\$x\$" in heading

"""Textbook conventions (issue 17): E = 1/2 sum of squared errors, fixed biases, W1 for the first
layer, and Mazur's worked example reproduced from the handout's PDF."""

from __future__ import annotations

import numpy as np

from symbp.emit.codegen import module_source
from symbp.spec.model import Spec
from symbp.witnesses.compare import check
from symbp.witnesses.module import load_module


def two_layer(loss="half_sum_squared_error", optimizer=None, bias_trainable=(True, True), epochs=2):
    """A 2-2-2 sigmoid network (Mazur's numbers) on two samples."""
    layers = [{"units": 2, "activation": "sigmoid", "weights": [[0.15, 0.25], [0.20, 0.30]],
               "bias": [0.35, 0.35]},
              {"units": 2, "activation": "sigmoid", "weights": [[0.40, 0.50], [0.45, 0.55]],
               "bias": [0.60, 0.60]}]
    for layer, trainable in zip(layers, bias_trainable):
        if not trainable:
            layer["bias_trainable"] = False
    return Spec.from_dict({"name": "textbook", "data": {"x": [[0.05, 0.10], [0.3, -0.2]],
                                                        "y": [[0.01, 0.99], [0.5, 0.2]]},
                           "layers": layers, "loss": {"name": loss},
                           "optimizer": optimizer or {"name": "sgd", "learning_rate": 0.5},
                           "training": {"batch_size": 2, "epochs": epochs}})


def test_half_sum_squared_error_is_half_the_sum_over_outputs_averaged_over_the_batch():
    spec = two_layer()
    module = load_module(module_source(spec), spec.name)
    params = module.initial_params()
    p = module.forward(params, module.X)[-1]
    expected = np.mean(0.5 * np.sum((p - module.Y) ** 2, axis=1))
    assert abs(module.loss(params, module.X, module.Y) - expected) < 1e-15


def test_half_sum_squared_error_matches_keras_through_a_custom_loss():
    report = check(two_layer(optimizer={"name": "adam", "learning_rate": 0.1}))
    assert report.match, report.describe(two_layer())


def test_fixed_biases_stay_in_param_names_and_come_back_unchanged():
    spec = two_layer(optimizer={"name": "adam", "learning_rate": 0.1}, bias_trainable=(False, True))
    assert spec.fixed_params == ["b0"]
    assert "bias_trainable = false" in spec.to_toml()
    module = load_module(module_source(spec), spec.name)
    params = module.initial_params()
    assert module.PARAM_NAMES == ("W0", "b0", "W1", "b1")
    final, _ = module.train()
    assert np.array_equal(final["b0"], params["b0"])
    assert not np.array_equal(final["b1"], params["b1"]) and not np.array_equal(final["W0"], params["W0"])
    assert np.array_equal(module.trace(params, module.X, module.Y)["updated"]["b0"], params["b0"])


def test_fixed_biases_match_keras_with_frozen_bias_variables():
    for optimizer in ({"name": "sgd", "learning_rate": 0.5, "momentum": 0.5},
                      {"name": "adamw", "learning_rate": 0.1, "weight_decay": 0.1}):
        spec = two_layer(optimizer=optimizer, bias_trainable=(False, False), epochs=3)
        report = check(spec)
        assert report.match, report.describe(spec)


def test_bias_trainable_must_be_a_boolean():
    import pytest
    from symbp.spec.model import SpecError
    data = two_layer().to_dict()
    data["layers"][0]["bias_trainable"] = "no"
    with pytest.raises(SpecError, match=r"layers\[0\]\.bias_trainable"):
        Spec.from_dict(data)


# ---------------------------------------------------------------- Mazur's example, his conventions
MAZUR_PUBLISHED = {"E": "0.298371109", "w5+": "0.35891648", "w1+": "0.149780716"}


def mazur_files(tmp_path, **options):
    from symbp.emit.outputs import rendered_outputs
    from symbp.spec.model import load_spec
    from symbp.spec.model import builtin_spec_path
    spec = load_spec(builtin_spec_path().parent / "mazur.toml")
    return spec, rendered_outputs(spec, tmp_path, **options)


def test_mazur_handout_pdf_shows_his_published_numbers_with_w1_numbering(tmp_path):
    import re
    import subprocess
    from symbp.emit.outputs import compiled_handouts
    spec, files = mazur_files(tmp_path, digits=9, first_index=1)
    pdfs = compiled_handouts(spec, files, tmp_path)
    pdf = tmp_path / "solution.pdf"
    pdf.write_bytes(next(data for path, data in pdfs.items() if path.name == "mazur_solution.pdf"))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    # E before the step; w5 is W2[0,0] (output layer), w1 is W1[0,0] (first layer) after it
    assert re.search(r"L\s*=.*" + re.escape(MAZUR_PUBLISHED["E"]), text)
    updated = text[text.index("Updated parameters"):]
    # the list's lines in order: W1, θ1, W2, θ2 (a matrix's first row is set above its name)
    first_layer = updated[:updated.index("θ1")]
    output_layer = updated[updated.index("θ1"):updated.index("θ2")]
    assert MAZUR_PUBLISHED["w1+"] in first_layer and MAZUR_PUBLISHED["w5+"] in output_layer
    assert "W0" not in text and "θ0" not in text
    # the biases stay as given (he updates the weights only), and the sheet says so
    assert re.search(r"θ1\s*:\s*0\.35 0\.35\s*\S+\s*0\.35 0\.35", updated)
    assert re.search(r"Kept fixed \(not updated\): θ1\s*, θ2", text)


def test_mazur_notebook_matches_keras_with_the_custom_loss_and_frozen_biases(tmp_path):
    import nbformat
    from nbclient import NotebookClient
    _, files = mazur_files(tmp_path, notebook=True)
    notebook = nbformat.reads(files[tmp_path / "mazur_solution.ipynb"], as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    checks = ["".join(o.get("text", "") for o in cell.get("outputs", []))
              for cell in notebook.cells if "validation" in cell.metadata.get("tags", [])]
    assert len(checks) == 5 and all(c.count("They match!") == 1 for c in checks), checks


def test_variants_answer_key_counts_from_the_first_index(tmp_path):
    import json
    from symbp.classroom.variants import render_variants
    from symbp.spec.model import load_spec, builtin_spec_path
    spec = load_spec(builtin_spec_path().parent / "mazur.toml")
    out = render_variants(spec, 2, 0, tmp_path, jobs=1, first_index=1)
    key = json.loads(out.files[tmp_path / "answer_key.json"])
    entry = next(iter(key.values()))
    assert {"dW1", "db1", "W1_updated", "W2_updated", "b2_updated"} <= set(entry) and "W0_updated" not in entry
    assert entry["b1_updated"] == out.specs["student_01"].layers[0].bias
    student = next(text for path, text in out.files.items() if path.name == "mazur_student.tex")
    assert "W_{1}" in student and "W_{0}" not in student


def test_student_sheet_scaffolding_name_line_and_derivative_column(tmp_path):
    from symbp.emit.handouts import HandoutOptions, render_handouts
    spec = two_layer()
    plain = render_handouts(spec)
    tuned = render_handouts(spec, HandoutOptions(name_line=True, student_derivatives=False))
    assert "Name:" in tuned["student"] and "Name:" not in plain["student"] + tuned["solution"]
    column = "derivative $f'(z)$ (SymPy)"
    assert column in plain["student"] and column not in tuned["student"] and column in tuned["solution"]
    assert tuned["solution"] == plain["solution"]


def test_a_linear_layer_shows_its_numbers_once():
    import re
    from symbp.emit.handouts import render_handouts
    data = two_layer().to_dict()
    data["layers"][1]["activation"] = "linear"
    solution = render_handouts(Spec.from_dict(data))["solution"]
    step = solution[solution.index("Layer 2: linear activation"):]
    lines = re.findall(r"^\\mathline\{(.*)\}$", step[:step.index("\\section*")], flags=re.M)
    assert lines[0] == "a_{2} = z_{2}" and len(lines) == 2, lines

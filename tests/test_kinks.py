"""Kinks read off the rules' SymPy formulas, and variants that keep away from them over the
whole training (a z at a kink makes NumPy and Keras take different branches)."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from symbp.classroom import variants

from symbp.witnesses.compare import check
from symbp.witnesses.module import load_module
from symbp.emit.codegen import module_source
from symbp.derivation.kinks import activation_kinks, loss_kinks, nearest_kink, spec_loss_kinks
from symbp.rules import activations, losses
from symbp.spec import LossSpec, Spec, SpecError
from symbp.classroom.variants import KEY_CSV, KEY_JSON, answers, draw_variants, render_variants


def test_kinks_come_from_the_formulas():
    found = {name: activation_kinks(name) for name in activations}
    assert {name for name, kinks in found.items() if kinks} == {"relu", "leaky_relu", "elu", "selu"}
    assert all(found[name] == (0.0,) for name in ("relu", "leaky_relu", "elu", "selu"))
    assert {name: loss_kinks(name) for name in losses if loss_kinks(name)} == {
        "mean_absolute_error": (0.0,), "huber": (-1.0, 1.0)}
    assert spec_loss_kinks(LossSpec("huber", {"delta": 1.5})) == (-1.5, 1.5)  # its argument, not a default


#: a two-layer relu net whose grid draws (x and weights varied, three epochs of batches of 2)
#: put pre-activations at exactly 0 in exact arithmetic
TWO_LAYER_RELU = {
    "name": "two_layer", "seed": 0,
    "data": {"x": [[0.5, -0.2, 0.1, 0.7], [-0.3, 0.8, 0.4, -0.6], [0.2, 0.1, -0.9, 0.3]],
             "y": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
    "layers": [{"units": 5, "activation": "relu"}, {"units": 3, "activation": "softmax"}],
    "loss": {"name": "categorical_crossentropy"}, "optimizer": {"name": "sgd", "learning_rate": 0.1},
    "training": {"batch_size": 2, "epochs": 3},
    "variants": {"vary": ["weights", "x", "y"]},
}


def test_variants_keep_every_pre_activation_of_the_whole_training_off_the_kinks():
    spec = Spec.from_dict(TWO_LAYER_RELU, "t")
    drawn = draw_variants(spec, 25, 1)
    for variant in drawn:
        module = load_module(module_source(variant), variant.name)
        hit = nearest_kink(variant, module)
        assert hit is not None and hit.distance >= 0.05, hit.describe()


def test_huber_arguments_stay_off_plus_minus_delta():
    table = {**TWO_LAYER_RELU, "layers": [{"units": 2, "activation": "tanh"}, {"units": 3, "activation": "linear"}],
             "loss": {"name": "huber", "delta": 0.5},
             "variants": {"vary": ["weights", "y"], "kink_margin": 0.1}}
    spec = Spec.from_dict(table, "t")
    for variant in draw_variants(spec, 10, 3):
        hit = nearest_kink(variant, load_module(module_source(variant), variant.name))
        assert hit.where.startswith("loss (huber)") and hit.distance >= 0.1 and abs(hit.kink) == 0.5


def test_kink_margin_is_validated():
    with pytest.raises(SpecError, match="variants.kink_margin: must be 0 or more"):
        Spec.from_dict({**TWO_LAYER_RELU, "variants": {"kink_margin": -0.1}}, "t")


def test_a_student_keras_disagrees_with_is_drawn_again():
    """With the margin off, student_06 of this class has a relu z at exactly 0 and Keras's
    update differs by 2e-2; --check draws that student again and the class matches."""
    spec = Spec.from_dict({**TWO_LAYER_RELU, "training": {"batch_size": 3, "epochs": 1},
                           "variants": {"vary": ["weights", "x", "y"], "kink_margin": 0}}, "t")
    first_draw = draw_variants(spec, 6, 1)
    assert nearest_kink(first_draw[5], load_module(module_source(first_draw[5]), "t")).distance < 1e-12
    result = render_variants(spec, 6, 1, Path("c"), check=True, jobs=1)
    assert result.match and max(result.witness_diff.values()) <= 1e-9
    assert result.specs["student_06"].x != first_draw[5].x
    assert [s.x for s in list(result.specs.values())[:5]] == [s.x for s in first_draw[:5]]
    key = json.loads(result.files[Path("c") / KEY_JSON])
    assert all(entry["framework_match"] is True for entry in key.values())
    assert key["student_06"]["loss"] != answers(first_draw[5])["loss"]


def test_a_class_keras_still_disagrees_with_says_so_in_its_key(monkeypatch):
    """Redraws are bounded; a student still differing stays, marked in both keys (exit 1)."""
    calls = []
    monkeypatch.setattr(variants, "witness_answers_check", lambda spec, expected: calls.append(spec) or 1e-3)
    spec = Spec.from_dict(TWO_LAYER_RELU, "t")
    result = render_variants(spec, 2, 1, Path("c"), check=True, jobs=1)
    assert not result.match and len(calls) == 2 * (1 + variants.CHECK_REDRAWS)
    key = json.loads(result.files[Path("c") / KEY_JSON])
    assert [(e["framework"], e["framework_match"], e["framework_max_abs_diff"]) for e in key.values()] == [("keras", False, 1e-3)] * 2
    rows = list(csv.DictReader(io.StringIO(result.files[Path("c") / KEY_CSV])))
    assert [(r["framework"], r["framework_match"], float(r["framework_max_abs_diff"])) for r in rows] == [("keras", "false", 1e-3)] * 2


def test_check_says_a_z_at_a_kink_is_why_it_differs(tmp_path, symbp_cli):
    spec = Spec.from_dict({**TWO_LAYER_RELU, "training": {"batch_size": 3, "epochs": 1},
                           "variants": {"vary": ["weights", "x", "y"], "kink_margin": 0}}, "t")
    at_kink = draw_variants(spec, 6, 1)[5]   # a relu z at exactly 0 (see above)
    at_kink.save(tmp_path / "at_kink.toml")
    result = symbp_cli("check", str(tmp_path / "at_kink.toml"))
    assert result.returncode == 1, result.stderr
    assert "Why: layer 0 (relu) z[" in result.stdout and "from the kink at 0" in result.stdout
    report = check(at_kink).to_json()
    assert report["match"] is False and report["kink"]["distance"] < 1e-12 and report["kink"]["epoch"] == 1

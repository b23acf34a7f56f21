"""Witnesses behind one interface: a witness registered here, in the test and nowhere in symbp,
is what `symbp check --witness` trains with, and the one report names it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from symbp.cli import main
from symbp.rules.registry import UnknownName
from symbp.witnesses.base import Run, Witness, register, witness, witnesses
from symbp.witnesses.module import module_train, spec_module


class EchoWitness(Witness):
    """Trains with the generated module itself, then moves one bias entry by ``shift``: the
    report must find exactly that, in its own words."""
    name, framework, shift = "echo", "Echo", 0.0

    def train(self, spec, dtype="float64") -> Run:
        params, losses = module_train(spec, dtype, spec_module(spec))
        params = {k: v.copy() for k, v in params.items()}
        params["b0"][0] += self.shift
        return Run(params, losses)


class OffByOneWitness(EchoWitness):
    name, framework, shift = "off_by_one", "OffByOne", 1.0


for cls in (EchoWitness, OffByOneWitness):
    if cls.name not in witnesses:
        register(cls)


def check(*args):
    return CliRunner().invoke(main, ["check", *args])


def test_check_reports_through_a_registered_witness():
    result = check("--witness", "echo")
    assert result.exit_code == 0, result.output
    assert "\nEcho:\n" in result.output and "Keras" not in result.output
    assert "Everything matches Echo." in result.output
    assert "largest |Echo value|" in result.output


def test_a_witness_that_disagrees_is_reported_by_parameter():
    result = check("--witness", "off_by_one", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    assert [name for name, p in report["parameters"].items() if not p["match"]] == ["b0"]
    assert report["parameters"]["b0"]["max_abs_diff"] == pytest.approx(1.0)
    assert report["epoch_losses"]["match"] is True and "off_by_one" in report["epoch_losses"]


def test_an_unknown_witness_is_an_input_problem():
    result = check("--witness", "kears")
    assert result.exit_code == 2
    assert "unknown witness 'kears'" in result.output and "'keras'" in result.output


def test_keras_is_a_registered_witness_whose_run_has_the_modules_names_and_layout():
    from symbp.spec.model import load_spec
    spec = load_spec(None)
    run = witness("keras").train(spec, "float64")
    module = spec_module(spec)
    assert list(run.params) == list(module.PARAM_NAMES)
    assert all(run.params[k].shape == v.shape for k, v in module.initial_params().items())
    assert len(run.epoch_losses) == spec.epochs and run.gradients is None
    with pytest.raises(UnknownName):
        witness("no_such_framework")


def test_finite_differences_is_a_witness_of_gradients_in_the_same_report():
    result = check("--witness", "finite_differences", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert "parameters" not in report and "epoch_losses" not in report
    assert set(report["gradients"]) == {"W0", "b0", "W1", "b1", "W2", "b2"}
    assert all(g["match"] and 0 < g["max_abs_diff"] < g["allowed"] for g in report["gradients"].values())
    text = check("--finite-differences").output
    assert "\nKeras:\n" in text and "\nCentral differences:\n" in text and "Checking dL/dW0" in text

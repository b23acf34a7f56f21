"""Wide layers stay legible in print (issue 17): no number in a handout's PDF is set below 7 pt.

Font sizes are read from the PDF (``pdftotext -bbox``: a word's box height is proportional to
its font size), against the same number set at 7 pt in the same fonts.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from symbp.emit.outputs import compiled_handouts, rendered_outputs
from symbp.io.pdf import compile_many
from symbp.spec.model import Spec

NUMBER = re.compile(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">([−-]?\d+\.\d+)</word>')
MIN_PT = 7


def number_heights(pdf: bytes, tmp_path) -> list[tuple[float, str]]:
    path = tmp_path / "measured.pdf"
    path.write_bytes(pdf)
    boxes = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True,
                           check=True).stdout
    return [(float(y1) - float(y0), text) for y0, y1, text in NUMBER.findall(boxes)]


@pytest.fixture(scope="module")
def seven_pt(tmp_path_factory):
    """The box height of a number set at MIN_PT in the handouts' fonts (11 pt body, lmodern)."""
    tmp = tmp_path_factory.mktemp("calibration")
    source = ("\\documentclass[11pt]{article}\n\\usepackage[T1]{fontenc}\n"
              "\\IfFileExists{lmodern.sty}{\\usepackage{lmodern}}{}\n\\begin{document}\n"
              f"{{\\fontsize{{{MIN_PT}}}{{9}}\\selectfont $0.12345678$}}\n\\end{{document}}\n")
    pdf = compile_many({tmp / "calibration.tex": source}, 1)[tmp / "calibration.pdf"]
    (height, _), = number_heights(pdf, tmp)
    return height


def wide_spec(units: int) -> Spec:
    rng = np.random.default_rng(units)
    return Spec.from_dict({
        "name": f"wide{units}", "data": {"x": np.round(rng.uniform(-1, 1, (3, 4)), 2).tolist(),
                                         "y": np.eye(3).tolist()},
        "layers": [{"units": units, "activation": "tanh"}, {"units": units, "activation": "relu"},
                   {"units": 3, "activation": "softmax"}],
        "loss": {"name": "categorical_crossentropy"}, "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "training": {"batch_size": 3}})


@pytest.mark.parametrize("units", [16, 32, 64])
def test_no_number_is_set_below_7_pt(units, tmp_path, seven_pt):
    spec = wide_spec(units)
    files = rendered_outputs(spec, tmp_path)
    for path, pdf in compiled_handouts(spec, files, tmp_path).items():
        heights = number_heights(pdf, tmp_path)
        assert len(heights) > 50, path.name          # the matrices' numbers are there to measure
        smallest = min(heights)
        assert smallest[0] >= seven_pt * 0.99, (
            f"{path.name}: {smallest[1]} set at {MIN_PT * smallest[0] / seven_pt:.1f} pt")


def test_the_appendix_prints_every_entry_of_an_elided_given(tmp_path):
    from symbp.emit.handouts import render_handouts
    from symbp.emit.latex import format_number
    spec = wide_spec(16)
    params = spec.initial_params()
    student = render_handouts(spec)["student"]
    body, _, appendix = student.partition("Appendix: the givens in full")
    assert appendix, "no appendix"
    rows = re.findall(r"^(\d+) & (.*) \\\\$", appendix, flags=re.M)
    cells = [cell.strip("$ ") for _, row in rows for cell in row.split(" & ")]
    shown = [format_number(v, 8) for v in params["W1"].ravel()]
    assert all(number in cells for number in shown)
    # the 4 x 16, 16 x 16 and 16 x 3 kernels and both 16-unit thetas: every entry, once
    assert len(cells) == sum(params[n].size for n in ("W0", "b0", "W1", "b1", "W2"))
    assert "\\cdots" in body   # the body still shows them elided

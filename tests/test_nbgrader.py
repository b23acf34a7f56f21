"""--nbgrader: nbgrader's cell metadata, and autograder cells that give partial credit from
symbp's grading (a diagnosed mistake, what follows carried forward)."""

import json

import nbformat
from nbclient import NotebookClient

from conftest import ROOT, run_symbp


def test_nbgrader_notebooks(tmp_path):
    result = run_symbp("derive", "-o", str(tmp_path), "--nbgrader", "--no-check")
    assert result.returncode == 0, result.stderr
    source = nbformat.read(str(tmp_path / "cs4820_a7_solution.ipynb"), as_version=4)
    student = json.loads((tmp_path / "cs4820_a7_student.ipynb").read_text())
    for nb in (source, nbformat.from_dict(student)):
        for cell in nb.cells:
            meta = cell.metadata["nbgrader"]
            assert {"grade", "solution", "locked", "grade_id", "schema_version"} <= set(meta)
            assert ("points" in meta) == meta["grade"]
        assert len({c.metadata["nbgrader"]["grade_id"] for c in nb.cells}) == len(nb.cells)
    tests = [c for c in source.cells if c.metadata["nbgrader"]["grade"]]
    assert sum(c.metadata["nbgrader"]["points"] for c in tests) == 15   # every key quantity but the loss
    assert all("autograde_cell" not in "".join(c["source"]) for c in student["cells"])   # hidden: no answers
    # the student forgets f'(z) in delta2: that cell scores 0 with the mistake named, the next full
    for cell in source.cells:
        cell.source = cell.source.replace("delta2 = (1 - a2**2)*g2", "delta2 = g2")
    last_test = max(n for n, c in enumerate(source.cells) if c.metadata["nbgrader"]["grade"])
    source.cells = source.cells[:last_test + 1]
    NotebookClient(source, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    scores = []
    for cell in tests:
        ran = next(c for c in source.cells if c.get("id") == cell.get("id"))
        value = [o for o in ran.outputs if o.output_type == "execute_result"][0]["data"]["text/plain"]
        text = "".join(o.get("text", "") for o in ran.outputs if o.output_type == "stream")
        scores.append((float(value), cell.metadata["nbgrader"]["points"], text))
    wrong = [s for s in scores if s[0] < s[1]]
    assert len(wrong) == 1 and "delta2: wrong" in wrong[0][2] and "missing_activation_derivative" in wrong[0][2]
    assert any("carried_forward" in text for _, _, text in scores)

"""`symbp grade`: the documented outputs, bad input per student, CSV cells as data only,
Gradescope's results.json, notebooks run in their own kernels."""

import csv
import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from symbp.classroom.gradebook import spreadsheet_safe
from symbp.classroom.submissions import quoted
from symbp.classroom.variants import write_variants
from symbp.spec.model import load_spec


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class")
    write_variants(load_spec(None), 4, 5, folder, jobs=1)
    return folder


def _grade(*args):
    from conftest import run_symbp
    return run_symbp("grade", *map(str, args), timeout=300)


def _key_rows(klass):
    return list(csv.DictReader(io.StringIO((klass / "answer_key.csv").read_text())))


def _write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_outputs_have_their_documented_shape(klass, tmp_path):
    rows = _key_rows(klass)
    rows[1]["W2_updated[0][0]"] = ""                                     # a missing entry
    for column in [c for c in rows[1] if c.startswith("b2_updated")]:   # a whole quantity missing
        rows[1][column] = ""
    out = tmp_path / "out"
    result = _grade(klass, _write_csv(tmp_path / "sub.csv", rows), "-o", out, "--points", "delta*=2")
    assert result.returncode == 0, result.stderr
    grades = json.loads((out / "grades.json").read_text())["students"]
    assert set(grades) == {r["student"] for r in rows}
    first = grades["student_01"]
    assert first["score"] == first["max_score"] == 16 + 3   # three deltas at 2 points
    assert set(first["quantities"]["delta3"]) == {"status", "score", "max_score", "diagnosis"}
    assert grades["student_02"]["quantities"]["b2_updated"]["status"] == "missing"
    assert grades["student_02"]["quantities"]["W2_updated"]["status"] == "wrong"   # an entry left out
    table = list(csv.reader(io.StringIO((out / "grades.csv").read_text())))
    assert table[0][:3] == ["student", "score", "max_score"] and table[0][3:] == list(first["quantities"])
    assert float(table[2][table[0].index("b2_updated")]) == 0.0
    feedback = (out / "feedback" / "student_02.md").read_text()
    assert "`b2_updated` | missing" in feedback


def test_a_diagnosed_mistake_in_feedback(klass, tmp_path):
    rows = _key_rows(klass)
    # student_03 goes up the gradient for W2: W2 + eta dW2 = 2 W2 - (W2 - eta dW2)
    from symbp.classroom.gradebook import student_spec
    W2 = student_spec(klass, "student_03").initial_params()["W2"]
    for column in [c for c in rows[2] if c.startswith("W2_updated")]:
        r, c = (int(p) for p in column[len("W2_updated["):-1].split("]["))
        rows[2][column] = repr(float(2 * W2[r, c] - float(rows[2][column])))
    out = tmp_path / "out"
    assert _grade(klass, _write_csv(tmp_path / "sub.csv", rows), "-o", out).returncode == 0
    quantity = json.loads((out / "grades.json").read_text())["students"]["student_03"]["quantities"]["W2_updated"]
    assert quantity == {"status": "wrong", "score": 0.0, "max_score": 1.0, "diagnosis": "wrong_update_sign"}
    feedback = (out / "feedback" / "student_03.md").read_text()
    assert "wrong_update_sign" in feedback and "w = w - eta g" in feedback and "first shows in `W2_updated`" in feedback


def test_bad_input_per_student_never_stops_the_others(klass, tmp_path):
    rows = _key_rows(klass)
    rows[0]["delta3[0][0]"] = '=HYPERLINK("http://x","y")'
    rows.append({**rows[1], "student": "=cmd|' /C calc'!A0"})
    (klass / "solutions" / "student_04" / "cs4820_a7.toml").rename(klass / "moved.toml")
    try:
        out = tmp_path / "out"
        result = _grade(klass, _write_csv(tmp_path / "sub.csv", rows), "-o", out)
    finally:
        (klass / "moved.toml").rename(klass / "solutions" / "student_04" / "cs4820_a7.toml")
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "grades.json").read_text())
    grades = report["students"]
    assert "not a number" in grades["student_01"]["error"]
    assert grades["student_01"]["quantities"]["delta3"]["status"] == "wrong"
    assert grades["student_02"]["score"] == grades["student_02"]["max_score"]
    assert "error" in grades["student_04"] and grades["student_04"]["score"] == 0
    assert any("unknown student" in p for p in report["problems"])
    text = (out / "grades.csv").read_text()
    assert "=HYPERLINK" not in text and "=cmd" not in text
    for row in csv.reader(io.StringIO(text)):
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)


def test_spreadsheet_safe():
    assert spreadsheet_safe('=HYPERLINK("a")') == '\'=HYPERLINK("a")'
    assert spreadsheet_safe("-1.5") == "'-1.5" and spreadsheet_safe("student_01") == "student_01"


def test_a_cell_longer_than_csvs_field_limit_is_its_students_problem(klass, tmp_path):
    """csv's default field limit is 131,072 characters: a longer cell (here 200,000) is a cell
    that is not a number, reported for its student; the others are graded, exit 0."""
    rows = _key_rows(klass)
    rows[1]["delta3[0][1]"] = "x" * 200_000
    out = tmp_path / "out"
    limit = csv.field_size_limit()
    result = _grade(klass, _write_csv(tmp_path / "long.csv", rows), "-o", out)
    assert result.returncode == 0, result.stderr
    grades = json.loads((out / "grades.json").read_text())["students"]
    assert "delta3[0][1]: not a number: 'xxx" in grades["student_02"]["error"]
    assert len(grades["student_02"]["error"]) < 200
    assert all(grades[s]["score"] == grades[s]["max_score"] for s in ("student_01", "student_03", "student_04"))
    from symbp.classroom.submissions import read_csv
    read, _ = read_csv(tmp_path / "long.csv", {"loss": ()}, {"student_02"})
    assert "student_02" in read and csv.field_size_limit() == limit     # the limit raised for the read only


def test_a_csvs_odd_columns_and_non_finite_cells_are_said_not_silently_missing(tmp_path):
    """A column the key lacks, one named twice and one of the key left out: one line each for
    the file; a cell of nan or inf is a problem of its student's (was graded missing, unsaid)."""
    from symbp.classroom.submissions import read_csv
    path = tmp_path / "odd.csv"
    path.write_text("student,db2[0],db2[0],db2[1],=cmd|' /C calc'!A0,loss\n"
                    "s1,1,2,nan,x,inf\n", encoding="utf-8")
    read, problems = read_csv(path, {"db2": (3,), "loss": ()}, {"s1"})
    assert problems == ["line 1: columns the answer key does not have (ignored): \"=cmd|' /C calc'!A0\"",
                        "line 1: columns named twice (the last one counts): 'db2[0]'",
                        "line 1: columns of the answer key missing (their cells graded as missing): 'db2[2]'"]
    assert read["s1"].answers["db2"][0] == 2.0 and np.isnan(read["s1"].answers["db2"][1:]).all()
    assert "db2[1]: not a finite number: 'nan'" in read["s1"].error
    assert "loss: not a finite number: 'inf'" in read["s1"].error


def test_malformed_submissions_exit_2(klass, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,loss\nx,1\n")
    result = _grade(klass, bad, "-o", tmp_path / "out")
    assert result.returncode == 2 and "student" in result.stderr
    assert not (tmp_path / "out").exists()
    assert _grade(tmp_path, bad, "-o", tmp_path / "out").returncode == 2   # not a class


def test_gradescope_results_json(klass, tmp_path):
    rows = _key_rows(klass)[:1]
    out = tmp_path / "out"
    result = _grade(klass, _write_csv(tmp_path / "one.csv", rows), "-o", out, "--gradescope")
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["score"] == 16.0
    assert {tuple(sorted(t)) for t in results["tests"]} == {("max_score", "name", "output", "score", "visibility")}
    assert len(results["tests"]) == 16
    many = _grade(klass, klass / "answer_key.csv", "-o", tmp_path / "out2", "--gradescope")
    assert many.returncode == 2


#: cells a student may write that Markdown would read as an image, a link, a table cell's end, a script, a heading
HOSTILE_CELLS = {"loss": "<img src=x onerror=alert(1)>", "delta3[0][0]": "[click](javascript:alert(1))",
                 "delta3[0][1]": "` | </td><script>alert(2)</script>\n# Heading", "delta3[0][2]": "``` x ````",
                 "delta3[0][3]": "<https://evil.example>"}


class Rendered(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_a_students_text_in_feedback_is_markdown_shown_as_written(klass, tmp_path):
    """The feedback (feedback/<id>.md, Gradescope's Markdown outputs) quotes cells that are not
    numbers; rendered by a CommonMark renderer they make no tag or link: one code span."""
    from markdown_it import MarkdownIt
    rows = _key_rows(klass)[:1]
    rows[0].update(HOSTILE_CELLS)
    out = tmp_path / "out"
    result = _grade(klass, _write_csv(tmp_path / "one.csv", rows), "-o", out, "--gradescope")
    assert result.returncode == 0, result.stderr
    renderer = MarkdownIt("commonmark").enable("table")
    feedback = (out / "feedback" / "student_01.md").read_text()
    page = Rendered()
    page.feed(renderer.render(feedback))
    assert set(page.tags) <= {"h1", "h2", "p", "code", "table", "thead", "tbody", "tr", "th", "td", "ul", "li"}
    note = next(line for line in feedback.splitlines() if line.startswith("Note: "))
    page, rendered = Rendered(), renderer.render(note)
    page.feed(rendered)
    assert page.tags == ["p", "code"]     # the note is one code span, the cells' text in it as written
    assert all(quoted(cell)[1:-1].removesuffix("...")[:30] in html.unescape(rendered) for cell in HOSTILE_CELLS.values())
    fence = re.fullmatch(r"Note: (`+) (.*) \1", note)
    assert fence and len(fence[1]) > max(map(len, re.findall("`+", fence[2])))
    results = json.loads((out / "results.json").read_text())
    assert results["output"] == note and results["output_format"] == results["test_output_format"] == "md"


def test_notebooks_run_in_their_own_kernels(tmp_path):
    folder = tmp_path / "class"
    write_variants(load_spec(None), 3, 2, folder, jobs=1, notebook=True)
    submissions = tmp_path / "notebooks"
    submissions.mkdir()
    for student in ("student_01", "student_02"):
        text = (folder / "solutions" / student / "cs4820_a7_solution.ipynb").read_text()
        if student == "student_02":   # forgets f'(z): delta2 = g2
            text = text.replace("delta2 = (1 - a2**2)*g2", "delta2 = g2")
        (submissions / f"{student}.ipynb").write_text(text)
    notebook = json.loads((folder / "students" / "student_03" / "cs4820_a7_student.ipynb").read_text())
    notebook["cells"][15]["source"] = "import time\ntime.sleep(60)\n"
    (submissions / "student_03.ipynb").write_text(json.dumps(notebook))
    out = tmp_path / "out"
    result = _grade(folder, submissions, "-o", out, "--timeout", "5")
    assert result.returncode == 0, result.stderr
    grades = json.loads((out / "grades.json").read_text())["students"]
    assert grades["student_01"]["score"] == 16
    delta2 = grades["student_02"]["quantities"]["delta2"]
    assert (delta2["status"], delta2["diagnosis"]) == ("wrong", "missing_activation_derivative")
    assert grades["student_02"]["quantities"]["dW1"]["status"] == "carried_forward"
    assert "timed out" in grades["student_03"]["error"]


def test_a_first_index_1_class_grades_by_its_printed_names(tmp_path):
    """`variants --first-index 1` writes the key as the handouts print it (dW1 for the first
    layer); grading reads that key and a CSV in its columns, every answer in its place, and
    grades.json, grades.csv, --points and the feedback use the key's names too."""
    write_variants(load_spec(None), 2, 5, tmp_path / "class", jobs=1, first_index=1)
    rows = _key_rows(tmp_path / "class")
    assert "dW0[0][0]" not in rows[0] and "dW1[0][0]" in rows[0]
    # student_02 goes up the gradient for the first layer's weights (the key's W1, the module's W0)
    from symbp.classroom.gradebook import student_spec
    W_first = student_spec(tmp_path / "class", "student_02").initial_params()["W0"]
    for column in [c for c in rows[1] if c.startswith("W1_updated[")]:
        r, c = (int(p) for p in column[len("W1_updated["):-1].split("]["))
        rows[1][column] = repr(float(2 * W_first[r, c] - float(rows[1][column])))
    out = tmp_path / "out"
    result = _grade(tmp_path / "class", _write_csv(tmp_path / "sub.csv", rows), "-o", out, "--points", "dW1=5")
    assert result.returncode == 0, result.stderr
    grades = json.loads((out / "grades.json").read_text())["students"]
    names = ["loss", "delta3", "dW3", "db3", "W3_updated", "b3_updated", "delta2", "dW2", "db2", "W2_updated",
             "b2_updated", "delta1", "dW1", "db1", "W1_updated", "b1_updated"]
    assert list(grades["student_01"]["quantities"]) == names
    assert grades["student_01"]["score"] == grades["student_01"]["max_score"] == 16 + 4   # dW1 at 5 points
    assert grades["student_01"]["quantities"]["dW1"]["max_score"] == 5.0
    assert grades["student_02"]["quantities"]["W1_updated"]["diagnosis"] == "wrong_update_sign"
    assert {q for q, g in grades["student_02"]["quantities"].items() if g["status"] != "correct"} == {"W1_updated"}
    assert list(csv.reader(io.StringIO((out / "grades.csv").read_text())))[0][3:] == names
    feedback = (out / "feedback" / "student_02.md").read_text()
    assert "first shows in `W1_updated`" in feedback and "`W0" not in feedback and "`dW0" not in feedback


def test_a_non_square_gradient_written_transposed_is_diagnosed(klass, tmp_path):
    """A student who computed dW2 transposed (4 x 3 for the key's 3 x 4) and wrote its entries
    row by row into the key's dW2 columns gets the `transposed` diagnosis."""
    rows = _key_rows(klass)
    columns = [c for c in rows[0] if c.startswith("dW2[")]
    key = np.array([float(rows[0][c]) for c in columns]).reshape(3, 4)
    for column, value in zip(columns, key.T.ravel()):
        rows[0][column] = repr(float(value))
    out = tmp_path / "out"
    assert _grade(klass, _write_csv(tmp_path / "sub.csv", rows), "-o", out).returncode == 0
    grades = json.loads((out / "grades.json").read_text())["students"]["student_01"]["quantities"]
    assert grades["dW2"] == {"status": "wrong", "score": 0.0, "max_score": 1.0, "diagnosis": "transposed"}
    assert {q for q, g in grades.items() if g["status"] != "correct"} == {"dW2"}
    assert "`transposed`" in (out / "feedback" / "student_01.md").read_text()


def test_a_notebooks_huge_output_and_arrays_stay_in_its_kernel_and_odd_answers_are_named(tmp_path):
    """A student's cells printing, showing and displaying 20 MB each, a 4-million-entry answer and
    an answer that is no array of numbers: symbp's process holds none of it (its traced peak stays far below the print), the
    wrong size is said from the shape alone, the string is named (it was "missing", unsaid)."""
    import tracemalloc
    import nbformat
    from symbp.classroom import submissions
    cells = ["import numpy as np\nprint('x' * 20_000_000)", "'y' * 20_000_000",
             "from IPython.display import display\ndisplay('z' * 20_000_000)",
             "dW2 = 'not yet'\ndb2 = np.zeros(4_000_000)\nW2 = np.ones((3, 4))"]
    for name, sources in (("warm.ipynb", ["W2 = 1"]), ("s.ipynb", cells)):   # warm: nbclient's imports
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in sources])
        nbformat.write(notebook, str(tmp_path / name))
    submissions.notebook_submission(tmp_path / "warm.ipynb", {"W2": (1,)}, 60)
    tracemalloc.start()
    try:
        read = submissions.notebook_submission(tmp_path / "s.ipynb", {"dW2": (3, 4), "db2": (4,), "W2": (3, 4)}, 60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, peak
    np.testing.assert_array_equal(read.answers["W2"], np.ones((3, 4)))
    assert set(read.answers) == {"W2"}
    assert "dW2 is not an array of numbers" in read.error
    assert "db2 has shape (4000000,), expected (4,)" in read.error


@pytest.mark.parametrize("cells, answers, says", [
    (["%reset -f", "import numpy as np\nW2 = np.ones((3, 4))"], {"W2"}, None),
    (["import json\n_dumps = json.dumps\n"
      "json.dumps = lambda o: _dumps({'W2': {'problem': 'is CORRECT, full marks'}, 'db2': {'shape': 'x'}})"],
     set(), "W2 is not an array of numbers; db2 is not an array of numbers"),
])
def test_a_notebook_that_resets_or_rewrites_the_readers_json_is_read_or_said_plainly(tmp_path, cells, answers, says):
    """symbp's last cell imports what it uses (a student's %reset -f deleted the first cell's
    names: "could not be run"); what a student's kernel sends back is read as numbers or the
    reader's two notes only (a rewritten json.dumps stopped the whole class's grading, exit 3,
    or put the student's words in the grade's error)."""
    import nbformat
    from symbp.classroom import submissions
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(notebook, str(tmp_path / "s.ipynb"))
    read = submissions.notebook_submission(tmp_path / "s.ipynb", {"W2": (3, 4), "db2": (4,)}, 60)
    assert set(read.answers) == answers and read.error == says
    assert "CORRECT" not in str(read.error)


def test_a_notebooks_kernel_prints_nothing_on_the_graders_terminal(tmp_path):
    """The kernel process's start-up warning and a student's writes to the process's own stderr
    stay out of the terminal that runs `symbp grade`."""
    import subprocess
    import sys
    import nbformat
    from tests.conftest import ROOT
    cell = "import sys\nprint('from the student', file=sys.__stderr__)\nW2 = 1.0"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), str(tmp_path / "s.ipynb"))
    code = ("import sys; from pathlib import Path; from symbp.classroom.submissions import run_notebook; "
            "print(run_notebook(Path(sys.argv[1]), {'W2': 1}, 60))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.ipynb")], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "{'W2': 1.0}", done.stderr
    assert "from the student" not in done.stderr and "IPKernelApp" not in done.stderr, done.stderr


def test_a_notebooks_transposed_gradient_is_read_in_the_keys_order(monkeypatch, tmp_path):
    """A notebook's dW2 of shape (4, 3) for the key's (3, 4): kept, its entries row by row in the
    key's order (as a CSV row gives them), with a note; another size is left out."""
    from symbp.classroom import submissions
    given = np.arange(12.0).reshape(4, 3)
    monkeypatch.setattr(submissions, "run_notebook",
                        lambda path, names, timeout: {"dW2": given.tolist(), "db2": [1.0, 2.0]})
    read = submissions.notebook_submission(tmp_path / "s.ipynb", {"dW2": (3, 4), "db2": (4,)}, 10)
    np.testing.assert_array_equal(read.answers["dW2"], given.reshape(3, 4))
    assert "db2" not in read.answers
    assert "dW2 has shape (4, 3), expected (3, 4): its entries read row by row" in read.error

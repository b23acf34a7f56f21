"""`symbp variants --pdf`: a class's handouts compiled at once (issue 17)."""

from __future__ import annotations

import subprocess
import time
import pytest

from symbp.classroom.variants import render_variants
from symbp.io.pdf import TexFailed, compile_many
from symbp.spec import load_spec


@pytest.mark.slow  # ~40 s alone on 2 cores; the class's 80 PDFs
def test_a_class_of_40_compiles_every_handout(tmp_path):
    start = time.monotonic()
    out = render_variants(load_spec(), 40, 3, tmp_path, pdf=True)
    elapsed = time.monotonic() - start
    pdfs = {path: data for path, data in out.files.items() if path.suffix == ".pdf"}
    assert len(pdfs) == 80 and all(data.startswith(b"%PDF") for data in pdfs.values())
    for tex in (p for p in out.files if p.suffix == ".tex"):
        assert tex.with_suffix(".pdf") in pdfs   # beside its .tex: students' PDFs under students/
    # each PDF is its own student's: the title names the student
    for student in ("student_01", "student_40"):
        pdf = tmp_path / "check.pdf"
        pdf.write_bytes(pdfs[tmp_path / "students" / student / "cs4820_a7_student.pdf"])
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert f"({student})" in text
    assert elapsed < 300, f"a class of 40 took {elapsed:.0f} s"


def test_a_tex_error_names_the_file_and_writes_nothing(tmp_path):
    good = load_spec()
    sources = {tmp_path / "a.tex": "\\documentclass{article}\\begin{document}fine\\end{document}\n",
               tmp_path / "b.tex": "\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}\n"}
    with pytest.raises(TexFailed, match="b.tex"):
        compile_many(sources, 2)
    assert not list(tmp_path.iterdir()) and good.name


def test_different_preambles_each_get_their_own_format(tmp_path):
    sources = {tmp_path / "a.tex": "\\documentclass{article}\n\\begin{document}\none\n\\end{document}\n",
               tmp_path / "b.tex": "\\documentclass{article}\n\\usepackage{amsmath}\n\\begin{document}\n"
                                   "$\\text{two}$\n\\end{document}\n",
               # \begin{document} not on a line of its own: compiled without a format
               tmp_path / "c.tex": "\\documentclass{article}\\begin{document}three\\end{document}\n"}
    pdfs = compile_many(sources, 2)
    assert set(pdfs) == {tmp_path / "a.pdf", tmp_path / "b.pdf", tmp_path / "c.pdf"}
    for path, data in pdfs.items():
        path.write_bytes(data)
    texts = [subprocess.run(["pdftotext", str(p), "-"], capture_output=True, text=True).stdout
             for p in sorted(pdfs)]
    assert "one" in texts[0] and "two" in texts[1] and "three" in texts[2]

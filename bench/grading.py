"""Time `symbp grade`: a class of 500 CSV submissions, and 30 notebooks.

    python bench/grading.py csv          # 500 students of the built-in example
    python bench/grading.py notebooks    # 30 solution notebooks (one with a mistake each third)

Submissions: a third right, a third with a mistake (every later answer carried forward), a third
with random numbers in one quantity, so the grader's diagnosis search runs too. The class is
written first (not timed); the time is the `symbp grade` command's, start-up included.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from symbp.classroom.variants import write_variants
from symbp.spec.model import load_spec


def _csv_submissions(folder: Path) -> Path:
    rows = list(csv.DictReader(io.StringIO((folder / "answer_key.csv").read_text())))
    rng = np.random.default_rng(0)
    for n, row in enumerate(rows):
        columns = [c for c in row if c.startswith("delta2")]
        if n % 3 == 1:       # g passed down without f'(z): a diagnosis at delta2
            for c in columns:
                row[c] = repr(float(row[c]) * 1.7)
        elif n % 3 == 2:
            for c in columns:
                row[c] = repr(float(rng.uniform(-1, 1)))
    path = folder / "submissions.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _notebook_submissions(folder: Path, count: int) -> Path:
    out = folder / "notebooks"
    out.mkdir()
    for n in range(1, count + 1):
        student = f"student_{n:02d}"
        text = (folder / "solutions" / student / "cs4820_a7_solution.ipynb").read_text()
        if n % 3 == 0:
            text = text.replace("delta2 = (1 - a2**2)*g2", "delta2 = g2")
        (out / f"{student}.ipynb").write_text(text)
    return out


def main(kind: str) -> None:
    count = 500 if kind == "csv" else 30
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "class"
        write_variants(load_spec(None), count, 0, folder, notebook=kind != "csv")
        submissions = _csv_submissions(folder) if kind == "csv" else _notebook_submissions(folder, count)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "symbp", "grade", str(folder), str(submissions),
                        "-o", str(Path(tmp) / "out")], check=True, stderr=subprocess.DEVNULL)
        print(f"{kind}: {count} submissions graded in {time.perf_counter() - start:.1f} s")
        grades = json.loads((Path(tmp) / "out" / "grades.json").read_text())["students"]
        for student, grade in grades.items():
            if "error" in grade:
                print(f"  {student}: {grade['error']}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "csv")

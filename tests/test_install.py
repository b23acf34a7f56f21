"""A wheel-installed symbp works from a folder outside the checkout (templates and examples ship
inside the package), and its outputs honour the umask."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(command: list, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``command`` with no PYTHONPATH, so only what is installed can be imported."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-3000:])
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """symbp's wheel, built from a copy of the checkout (the checkout gets no build/ folder)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for part in ("symbp", "templates"):
        shutil.copytree(ROOT / part, source / part, ignore=ignore)
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, source / part)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", base / "dist", source], cwd=base)
    (built,) = (base / "dist").glob("symbp-*.whl")
    return built


def test_the_wheel_holds_the_templates_and_the_example(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.name for p in (ROOT / "templates").glob("*.j2")}
    assert templates and {f"symbp/templates/{t}" for t in templates} <= names
    assert "symbp/examples/cs4820_a7.toml" in names


def test_a_wheel_install_runs_the_main_commands_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    # the system's packages (TensorFlow, SymPy) without downloading; symbp itself from the wheel
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([python, "-c", "import symbp; print(symbp.__file__)"], cwd=elsewhere).stdout.strip()
    assert Path(where).is_relative_to(venv) and not Path(where).is_relative_to(ROOT), where
    symbp = venv / "bin" / "symbp"
    _run([symbp, "codegen", "-o", "gen"], cwd=elsewhere)
    assert (elsewhere / "gen" / "cs4820_a7.py").read_text() == (ROOT / "generated" / "cs4820_a7.py").read_text()
    derived = _run([symbp, "derive", "-o", "out", "--pdf", "--notebook"], cwd=elsewhere)
    assert "They match!" in derived.stdout and "They don't match" not in derived.stdout
    for name in ("cs4820_a7.py", "cs4820_a7_solution.tex", "cs4820_a7_solution.pdf",
                 "cs4820_a7_student.pdf", "cs4820_a7_solution.ipynb"):
        assert (elsewhere / "out" / name).stat().st_size > 0, name
    _run([symbp, "variants", "-n", "2", "-j", "1", "-o", "class"], cwd=elsewhere)
    assert (elsewhere / "class" / "answer_key.json").is_file()
    assert (elsewhere / "class" / "solutions" / "student_02" / "cs4820_a7.toml").is_file()
    assert (elsewhere / "class" / "students" / "student_02" / "cs4820_a7_student.tex").is_file()

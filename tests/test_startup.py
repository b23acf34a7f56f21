"""Start-up stays light: `symbp --help` loads neither SymPy nor TensorFlow; codegen never loads
TensorFlow or Keras. (Timings belong to bench/run_all.py, not to tests.)"""

import os
import subprocess
import sys

from conftest import ROOT

PROBE = """
import sys
from symbp.cli import main
try:
    main({args!r}, standalone_mode=False)
finally:
    print("LOADED", ",".join(sorted(m for m in {watched!r} if m in sys.modules)), file=sys.stderr)
"""


def modules_loaded_by(args, watched=("tensorflow", "keras", "sympy")) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args), watched=watched)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stderr.splitlines() if l.startswith("LOADED"))
    return set(filter(None, line.split(" ", 1)[1].split(",")))


def test_help_loads_neither_sympy_nor_tensorflow():
    assert modules_loaded_by(["--help"]) == set()


def test_codegen_never_imports_tensorflow(tmp_path):
    loaded = modules_loaded_by(["codegen", "-o", str(tmp_path)])
    assert (tmp_path / "cs4820_a7.py").is_file()
    assert "sympy" in loaded  # the probe sees imports: codegen does derive with SymPy
    assert not loaded & {"tensorflow", "keras"}

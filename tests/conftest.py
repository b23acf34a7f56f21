"""Shared test helpers: run the CLI from this checkout, load specs and generated modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def run_symbp(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m symbp ARGS`` against this checkout (not whatever symbp is installed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "symbp", *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def symbp_cli():
    return run_symbp


@pytest.fixture
def sidecar_spec():
    """The built-in example with its rows repeated past codegen.MAX_LITERAL_NUMBERS: its module
    reads X and Y from a sidecar .npz beside it."""
    import dataclasses
    from symbp.emit.codegen import MAX_LITERAL_NUMBERS
    from symbp.spec import load_spec
    seed = load_spec()
    copies = MAX_LITERAL_NUMBERS // (len(seed.x) * len(seed.x[0])) + 1
    return dataclasses.replace(seed, x=seed.x * copies, y=seed.y * copies)

"""`derive --pdf` and `variants` through real `python -m symbp` processes: PDFs join the one
all-or-nothing write (no fixed temporary name to plant a symlink at, no new .tex beside an old
PDF after a TeX error), Ctrl-C exits 130 and SIGTERM 143 leaving no .tmp file, no symbp-tex-*
folder and no worker process.

A fake ``latexmk`` first on PATH stands in for TeX (fast, and it can fail or hang on demand).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_symbp

NAME = "cs4820_a7"
FAKE_TEX = f"""#!{sys.executable}
import os, sys, time
stem = sys.argv[-1][:-len(".tex")]
behaviour = os.environ.get("FAKE_TEX", "ok")
open("started", "w").close()
if behaviour == "hang":
    time.sleep(120)
if behaviour == "fail":
    open(stem + ".log", "w").write("! Undefined control sequence.")
    sys.exit(1)
open(stem + ".pdf", "wb").write(b"%PDF-fake " + open(stem + ".tex", "rb").read()[:40])
open(stem + ".log", "w").write("fake log")
"""


@pytest.fixture
def fake_tex(tmp_path, monkeypatch):
    """A fake latexmk on PATH and a private TMPDIR; returns a setter for its behaviour."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "latexmk").write_text(FAKE_TEX)
    (bin_dir / "latexmk").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    return lambda behaviour: monkeypatch.setenv("FAKE_TEX", behaviour)


def tree(folder: Path) -> dict[str, bytes]:
    """Every file and symlink under ``folder``, hidden ones included (a symlink as its target)."""
    return {str(p.relative_to(folder)): (os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_symlink() or p.is_file()}


def test_a_planted_symlink_at_the_old_staging_name_is_not_followed(tmp_path, fake_tex):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    for kind in ("solution", "student"):
        (out / f".{NAME}_{kind}.pdf.tmp").symlink_to(Path("..") / "victim")
    result = run_symbp("derive", "-o", str(out), "--no-check", "--pdf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "precious"
    assert (out / f"{NAME}_solution.pdf").read_bytes().startswith(b"%PDF-fake")
    assert not list((tmp_path / "tmpdir").iterdir())


def test_a_tex_error_leaves_the_previous_tex_and_pdf(tmp_path, fake_tex):
    fake_tex("fail")
    out = tmp_path / "out"
    out.mkdir()
    for kind in ("solution", "student"):
        (out / f"{NAME}_{kind}.tex").write_text("old tex")
        (out / f"{NAME}_{kind}.pdf").write_bytes(b"%PDF-old")
    before = tree(out)
    result = run_symbp("derive", "-o", str(out), "--no-check", "--pdf", "--notebook", cwd=tmp_path)
    assert result.returncode == 2 and "Undefined control sequence" in result.stderr, result.stderr
    assert tree(out) == before
    assert not list((tmp_path / "tmpdir").iterdir())


def test_a_folder_where_a_pdf_goes_is_an_input_error_and_writes_nothing(tmp_path, fake_tex):
    out = tmp_path / "out"
    (out / f"{NAME}_student.pdf").mkdir(parents=True)
    result = run_symbp("derive", "-o", str(out), "--no-check", "--pdf", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"{NAME}_student.pdf: it is a folder" in result.stderr and "Traceback" not in result.stderr
    assert tree(out) == {}
    assert sorted(p.name for p in out.iterdir()) == [f"{NAME}_student.pdf"]


def start_symbp(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "symbp", *args], cwd=cwd, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_tex_exits_with_its_status_and_leaves_nothing(tmp_path, fake_tex, signum, status):
    fake_tex("hang")
    out = tmp_path / "out"
    process = start_symbp("derive", "-o", str(out), "--no-check", "--pdf", cwd=tmp_path)
    tmpdir = tmp_path / "tmpdir"
    wait_for(lambda: list(tmpdir.glob("symbp-tex-*/started")) or process.poll() is not None)
    tex = children(process.pid)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr
    assert not out.exists()
    assert not list(tmpdir.iterdir())
    wait_for(lambda: not any(alive(pid) for pid in tex), timeout=10)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_variants_ends_the_workers(tmp_path, signum, status):
    out = tmp_path / "class"
    process = start_symbp("variants", "-n", "60", "-j", "2", "-o", str(out), cwd=tmp_path)
    wait_for(lambda: len(children(process.pid)) >= 2 or process.poll() is not None)
    time.sleep(1)   # the workers are importing symbp or rendering
    workers = children(process.pid)   # the two workers and multiprocessing's resource tracker
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=15)
    assert not out.exists() or tree(out) == {}


def test_workers_die_with_a_parent_killed_outright(tmp_path):
    process = start_symbp("variants", "-n", "60", "-j", "2", "-o", str(tmp_path / "class"), cwd=tmp_path)
    wait_for(lambda: len(children(process.pid)) >= 2 or process.poll() is not None)
    time.sleep(1)
    workers = children(process.pid)
    process.kill()   # SIGKILL: no clean-up runs in the parent
    process.communicate(timeout=60)
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=15)

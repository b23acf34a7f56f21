"""symbp.io.files: all-or-nothing writes (rollback of a rename failing part-way, signals held back
during the renames), the umask honoured, symlinks never followed."""

from __future__ import annotations

import errno
import os
import signal
import stat
from pathlib import Path

import pytest

import symbp.io.files as files_module
from symbp.io.files import OutputError, write_all
from symbp.io.interrupts import Terminated


@pytest.fixture
def umask():
    """Set the umask for one test, then put the previous one back."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def listing(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones included) with its text."""
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o027])
def test_files_and_folders_get_the_umask_modes(tmp_path, umask, mask):
    umask(mask)
    target = tmp_path / "new" / "deeper" / "handout.tex"
    write_all({target: "x", tmp_path / "key.csv": b"y"})
    assert mode(target) == mode(tmp_path / "key.csv") == 0o666 & ~mask
    assert mode(tmp_path / "new") == mode(tmp_path / "new" / "deeper") == 0o777 & ~mask


def failing_nth_replace(monkeypatch, n: int, err: OSError):
    """Make the n-th os.replace of a staged file (1-based) fail with ``err``."""
    real_replace, calls = os.replace, []

    def replace(src, dst):
        if str(src).endswith(".tmp"):
            calls.append(dst)
            if len(calls) == n:
                raise err
        return real_replace(src, dst)
    monkeypatch.setattr(files_module.os, "replace", replace)
    return calls


def test_a_rename_failing_part_way_restores_the_previous_files(tmp_path, monkeypatch):
    old = {"a.py": "old a", "b.tex": "old b", "c.tex": "old c"}
    for name, text in old.items():
        (tmp_path / name).write_text(text)
    new = {tmp_path / name: "new" for name in [*old, "d.pdf"]}
    new[tmp_path / "fresh" / "e.ipynb"] = "new"
    calls = failing_nth_replace(monkeypatch, 5, OSError(errno.EBUSY, "Device or resource busy"))
    with pytest.raises(OutputError, match="Device or resource busy.*no file was changed"):
        write_all(new)
    assert len(calls) == 5   # four files were replaced before the fifth failed
    assert listing(tmp_path) == old
    assert not (tmp_path / "fresh").exists()


def test_a_restore_that_fails_says_which_files_changed(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("old a")
    real_replace = os.replace

    def replace(src, dst):
        if str(src).endswith(".tmp") and Path(dst).name == "b.py":
            raise OSError(errno.EBUSY, "Device or resource busy")
        if str(src).endswith(".old"):
            raise OSError(errno.EIO, "Input/output error")   # putting a.py back fails too
        return real_replace(src, dst)
    monkeypatch.setattr(files_module.os, "replace", replace)
    with pytest.raises(OutputError) as caught:
        write_all({tmp_path / "a.py": "new a", tmp_path / "b.py": "new b"})
    message = str(caught.value)
    assert "b.py" in message and f"{tmp_path / 'a.py'} holds the new file" in message
    kept = next(tmp_path.glob(".a.py.*.old"))
    assert kept.read_text() == "old a" and str(kept) in message


def test_a_full_disk_while_staging_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("old")
    real_fdopen, opened = os.fdopen, []

    class FillsUp:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            opened.append(data)
            if len(opened) == 2:
                self.handle.write(data[:3])
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.handle.write(data)

        def __getattr__(self, name):
            return getattr(self.handle, name)
    monkeypatch.setattr(files_module.os, "fdopen", lambda fd, how: FillsUp(real_fdopen(fd, how)))
    with pytest.raises(OutputError, match="No space left on device"):
        write_all({tmp_path / "a.py": "new", tmp_path / "out" / "b.pdf": b"%PDF" * 100})
    assert listing(tmp_path) == {"a.py": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py"]


def test_signals_wait_until_every_rename_is_done(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("old")
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C between the first and second rename
        return real_replace(src, dst)
    monkeypatch.setattr(files_module.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        write_all({tmp_path / name: "new" for name in ("a.py", "b.tex", "c.pdf")})
    assert listing(tmp_path) == {"a.py": "new", "b.tex": "new", "c.pdf": "new"}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_planted_symlink_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "handout.pdf").symlink_to(victim)
    write_all({out / "handout.pdf": b"%PDF-new"})
    assert victim.read_text() == "precious"
    assert not (out / "handout.pdf").is_symlink() and (out / "handout.pdf").read_bytes() == b"%PDF-new"


def test_sigterm_while_staging_a_class_leaves_no_tmp_and_no_folder(tmp_path, monkeypatch):
    real_fdopen, opened = os.fdopen, []

    def fdopen(fd, how):
        opened.append(fd)
        if len(opened) == 7:
            raise Terminated()   # as symbp's SIGTERM handler raises it
        return real_fdopen(fd, how)
    monkeypatch.setattr(files_module.os, "fdopen", fdopen)
    files = {tmp_path / "class" / f"student_{n}" / f"{kind}.tex": "x" for n in range(5) for kind in "ab"}
    files[tmp_path / "class" / "answer_key.json"] = "{}"
    with pytest.raises(Terminated):
        write_all(files)
    assert list(tmp_path.iterdir()) == []

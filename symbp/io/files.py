"""Writing outputs so that a failure or an interruption leaves the previous files intact.

Every file is first written in full to a temporary file beside its target, created exclusively
under an unpredictable name (``mkstemp``: a symlink planted in the folder is never followed);
only when all of them are written are they renamed into place (``os.replace``, atomic on one
file system). Each previous file is kept (a hard link under an unpredictable name) until every
rename has succeeded, so a rename failing part-way puts the previous files back. A failure
removes the temporary files and any folder this call created: the output folder is exactly as
it was. Ctrl-C and SIGTERM are held back while the renames (or the clean-up) run.

Files get ``0666 & ~umask`` and folders ``0777 & ~umask``, as any other program's.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from pathlib import Path

from .interrupts import signals_deferred


class OutputError(Exception):
    """An output folder or file that cannot be written (the user's setup, not a symbp bug)."""


def _describe(err: OSError, path: Path) -> str:
    """'cannot write PATH: why', naming the part of the path that is in the way."""
    reason = err.strerror or type(err).__name__
    where = Path(err.filename) if err.filename else path
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        blocking = next((p for p in [where, *where.parents] if p.exists() and not p.is_dir()), where)
        return f"cannot write {path}: {blocking} is a file, not a folder"
    if isinstance(err, IsADirectoryError):
        return f"cannot write {path}: it is a folder"
    return f"cannot write {path}: {reason} ({where})"


def _make_folders(folder: Path, created: list[Path]) -> None:
    """Create ``folder`` and missing parents, recording each one created (outermost first)."""
    missing = []
    for candidate in [folder, *folder.parents]:
        if candidate.exists() or candidate.is_symlink():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        candidate.mkdir()
        created.append(candidate)
    if not folder.is_dir():
        raise NotADirectoryError(20, "Not a directory", str(folder))


def current_umask() -> int:
    """The process's umask (Python can only read it by setting it, so it is set back at once)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _stage(path: Path, data: bytes, mode: int, staged: list[tuple[str, Path]]) -> None:
    """Write ``data`` to a new temporary file beside ``path`` (recorded in ``staged`` first)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    staged.append((tmp, path))
    os.fchmod(fd, mode)   # mkstemp makes 0600: give the mode any program's file would have
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _keep_previous(target: Path) -> Path | None:
    """A second name for the file at ``target`` (None if there is none), so it can be put back.

    A hard link leaves ``target`` in place (each file is replaced atomically); on a file
    system without hard links the previous file is moved aside instead.
    """
    if not os.path.lexists(target):
        return None
    backup = target.with_name(f".{target.name}.{secrets.token_hex(8)}.old")
    try:
        os.link(target, backup, follow_symlinks=False)
    except OSError:
        os.rename(target, backup)
    return backup


def _put_back(replaced: list[tuple[Path, Path | None]]) -> list[str]:
    """Undo the renames done (newest first); what could not be undone, one line each."""
    failures = []
    for target, backup in reversed(replaced):
        try:
            if backup is None:
                target.unlink()
            else:
                os.replace(backup, target)
        except OSError as err:
            kept = f"; the previous file is {backup}" if backup else ""
            failures.append(f"{target} holds the new file ({err.strerror}){kept}")
    return failures


def _commit(staged: list[tuple[str, Path]]) -> None:
    """Rename every staged file into place: all of them, or (previous files restored) none."""
    replaced: list[tuple[Path, Path | None]] = []
    try:
        for tmp, target in staged:
            backup = _keep_previous(target)
            try:
                os.replace(tmp, target)
            except BaseException:
                if backup is not None and not os.path.lexists(target):
                    os.replace(backup, target)   # moved aside, not linked: move it back
                elif backup is not None:
                    os.unlink(backup)
                raise
            replaced.append((target, backup))
    except BaseException as err:
        failures = _put_back(replaced)
        if failures:
            raise OutputError(f"{_describe(err, target) if isinstance(err, OSError) else err}; "
                              "files already replaced could not all be restored:\n"
                              + "\n".join(failures)) from err
        if isinstance(err, OSError):
            raise OutputError(f"{_describe(err, target)}; no file was changed") from err
        raise
    for _, backup in replaced:
        if backup is not None:
            backup.unlink(missing_ok=True)


def _clean_up(staged: list[tuple[str, Path]], created: list[Path]) -> None:
    """Remove the temporary files and the folders this call created (innermost first)."""
    for tmp, _ in staged:
        Path(tmp).unlink(missing_ok=True)
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            pass


def write_all(files: dict[Path, str | bytes]) -> None:
    """Write every file or none: stage each as a temporary file, then rename all into place."""
    staged: list[tuple[str, Path]] = []
    created: list[Path] = []
    mode = 0o666 & ~current_umask()
    path = Path()
    try:
        for path, text in files.items():
            path = Path(path)
            _make_folders(path.parent, created)
            if path.is_dir():
                raise IsADirectoryError(21, "Is a directory", str(path))
            _stage(path, text.encode("utf-8") if isinstance(text, str) else text, mode, staged)
        with signals_deferred():
            _commit(staged)
    except BaseException as err:
        with signals_deferred():
            _clean_up(staged, created)
        if isinstance(err, OSError):
            raise OutputError(_describe(err, path)) from err
        raise


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write one file through a temporary file beside it, renamed into place."""
    write_all({Path(path): text})


#: what a path that is not a regular file is, by the kind ``os.stat`` reports
_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def not_a_regular_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as an input file ("no such file", "is a FIFO (named pipe), not
    a file"), or None when it is a regular file.

    Checked with ``stat`` before opening: opening a FIFO blocks until a writer comes, and a
    device can stream forever, so such a path must be refused, never read.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except NotADirectoryError:
        return "no such file (a part of the path is a file, not a folder)"
    except PermissionError:
        return "not readable (permission denied)"
    except OSError as err:
        return f"cannot be read ({err.strerror or type(err).__name__})"
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    return f"is {kind}, not a file"

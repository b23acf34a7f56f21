"""Writing outputs so that a failure or an interruption leaves the previous files intact.

Every file is first written in full to a temporary file beside its target; only when all of
them are written are they renamed into place (``os.replace``, atomic on one file system). A
failure before that removes the temporary files (and any folder this call created), so the
output folder is exactly as it was.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


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


def write_all(files: dict[Path, str | bytes]) -> None:
    """Write every file or none: stage each as a temporary file, then rename all into place."""
    staged: list[tuple[str, Path]] = []
    created: list[Path] = []
    path = Path()
    try:
        for path, text in files.items():
            path = Path(path)
            _make_folders(path.parent, created)
            if path.is_dir():
                raise IsADirectoryError(21, "Is a directory", str(path))
            data = text.encode("utf-8") if isinstance(text, str) else text
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException as err:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass
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

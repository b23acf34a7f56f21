"""Reading a spec file: its kind (a regular file), its size cap, UTF-8 and TOML; then validation.

Every failure is a :class:`~symbp.spec.model.SpecError` naming the file (exit 2), never a traceback.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

from .model import Problem, Spec, SpecError
from .values import shown

BUILTIN_EXAMPLE = "cs4820_a7"
MAX_SPEC_BYTES = 16 * 2**20


def builtin_spec_path() -> Path:
    return Path(str(resources.files("symbp") / "examples" / f"{BUILTIN_EXAMPLE}.toml"))


def load_spec(path: str | Path | None = None) -> Spec:
    """Read and validate a spec file; ``None`` means the built-in example."""
    path = builtin_spec_path() if path is None else Path(path)
    source = str(path)
    return Spec.from_dict(_parsed(_text(path, source), source), source)


def _failure(source: str, message: str) -> SpecError:
    return SpecError(source, [Problem("", message)])


def _text(path: Path, source: str) -> str:
    """The file's text: a regular file of at most MAX_SPEC_BYTES, in UTF-8."""
    from ..io.files import not_a_regular_file
    why = not_a_regular_file(path)
    if why is not None:
        raise _failure(source, why)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
        if len(raw) > MAX_SPEC_BYTES:
            raise _failure(source, f"larger than {MAX_SPEC_BYTES // 2**20} MB: not a spec file")
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise _failure(source, "no such file") from None
    except IsADirectoryError:
        raise _failure(source, "is a directory, not a spec file") from None
    except PermissionError:
        raise _failure(source, "not readable (permission denied)") from None
    except UnicodeDecodeError as err:
        raise _failure(source, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise _failure(source, f"cannot be read ({err.strerror})") from None


def _parsed(text: str, source: str) -> dict:
    """The TOML document, or one problem saying where its syntax fails."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _failure(source, _toml_message(err)) from None
    except ValueError as err:   # Python's limit on converting integers of over 4300 digits
        raise _failure(source, f"a number too long to read ({shown(str(err))})") from None
    except RecursionError:
        raise _failure(source, "not valid TOML: arrays or tables nested too deeply") from None


def _toml_message(err: tomllib.TOMLDecodeError) -> str:
    """tomllib's message with its position first: 'TOML syntax error at line 3, column 5: ...'."""
    message = str(err)
    found = re.fullmatch(r"(.*) \(at (line \d+, column \d+|end of document)\)", message, re.S)
    if found:
        return f"TOML syntax error at {found.group(2)}: {found.group(1)}"
    return f"TOML syntax error: {message}"

"""Errors that are the user's input or setup (TeX), not symbp's bugs: the CLI prints them and exits 2."""

from .io.files import OutputError
from .io.pdf import TexFailed, TexNotFound
from .rules.registry import UnknownName
from .spec import SpecError


class HandoutError(ValueError):
    """A handout option that cannot be honoured (an --explain entry the network does not have)."""


class UnusableInput(ValueError):
    """Input symbp can read but not use: a Keras model it cannot represent, a data file, or
    variants it cannot draw. The message names the layer, file or setting."""


InputError = (SpecError, UnknownName, OutputError, HandoutError, TexNotFound, TexFailed, UnusableInput)


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: every control or invisible character (ESC, BEL,
    a bidirectional override, ...) shown as its escape (``\\x1b``), line breaks kept.

    Messages echo user text (file names, spec keys, class names read from a ``.keras`` file);
    raw, an escape sequence in it could retitle or repaint the user's terminal. Every message the
    CLI prints passes through here.
    """
    return "".join(ch if ch == "\n" or ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))

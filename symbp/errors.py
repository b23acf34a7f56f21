"""Errors that are the user's input, not symbp's bugs: the CLI prints them and exits 2."""

from .rules.registry import UnknownName
from .spec import SpecError


class UnusableInput(ValueError):
    """Input symbp can read but not use: a Keras model it cannot represent, a data file, or
    variants it cannot draw. The message names the layer, file or setting."""


InputError = (SpecError, UnknownName, UnusableInput)

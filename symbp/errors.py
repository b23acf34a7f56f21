"""Errors that are the user's input, not symbp's bugs: the CLI prints them and exits 2."""

from .files import OutputError
from .rules.registry import UnknownName
from .spec import SpecError

InputError = (SpecError, UnknownName, OutputError)

"""``python -m symbp``: the same command as ``symbp``."""

from .cli import main

main()

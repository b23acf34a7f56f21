"""Files written all-or-nothing (umask modes), PDF compilation, signals, model import."""

"""A class's assignment: per-student variants and their answer key."""

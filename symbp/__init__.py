"""symbp: symbolic back-propagation for dense networks.

A spec (TOML, Keras names) -> SymPy derivation of every rule -> a generated NumPy module and
LaTeX handouts -> a check against Keras ``model.fit``. Heavy imports (SymPy, TensorFlow) happen
only in the modules that need them.
"""

__version__ = "0.1.0"

"""symbp: symbolic back-propagation for dense and convolutional networks.

A spec (TOML, Keras names) -> SymPy derivation of every rule -> a generated NumPy module,
handouts, notebooks, variants and grading -> a check against Keras ``model.fit`` or PyTorch. Heavy imports (SymPy, TensorFlow) happen
only in the modules that need them.
"""

__version__ = "0.1.0"

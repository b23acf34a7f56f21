"""Presenters of the derivation model and its trace: the NumPy module, handouts, notebooks."""

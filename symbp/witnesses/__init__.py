"""Independent witnesses of the generated module: Keras, finite differences."""

"""The derivation model: calculus helpers, each rule's derivation, the network composition."""

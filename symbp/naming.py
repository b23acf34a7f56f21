"""Names of generated identifiers, in one place (layer l = 1..L; its parameters W{l-1}, b{l-1})."""

PRE_ACTIVATION = "z{l}"       # z_l = a_{l-1} W_{l-1} + b_{l-1}
OUTPUT = "a{l}"               # a_l = f_l(z_l); a0 is the input x
UPSTREAM = "g{l}"             # g_l = dL/da_l
DELTA = "delta{l}"            # delta_l = dL/dz_l
KERNEL = "W{n}"               # Keras kernel of layer n + 1, shape (inputs, units)
BIAS = "b{n}"                 # Keras bias of layer n + 1, shape (units,)
KERNEL_GRADIENT = "dW{n}"
BIAS_GRADIENT = "db{n}"
LABELS = "y"


def hyperparameter(name: str) -> str:
    """Module constant of a hyperparameter: learning_rate -> LEARNING_RATE."""
    return name.upper()


def loss_argument(loss: str, name: str) -> str:
    """Module constant of a loss argument: huber's delta -> HUBER_DELTA."""
    return f"{loss}_{name}".upper()


def layer_names(l: int) -> dict[str, str]:
    """Bindings of the derivation's generic rows and matrices for layer l."""
    return {"z": PRE_ACTIVATION.format(l=l), "a": OUTPUT.format(l=l), "g": UPSTREAM.format(l=l),
            "delta": DELTA.format(l=l), "y": LABELS}


def dense_names(l: int) -> dict[str, str]:
    """Bindings of the Dense rule's matrices for layer l (input a_{l-1}, parameters n = l - 1)."""
    return {"a_prev": OUTPUT.format(l=l - 1), "W": KERNEL.format(n=l - 1), "b": BIAS.format(n=l - 1),
            "delta": DELTA.format(l=l)}

# the assignment notebooks (symbp.notebook)
UPDATED = "{param}_updated"   # the parameter after one optimizer step
KERAS_RESULT = "{param}_keras"  # the same parameter after Keras's model.fit
SLOT = "{slot}_{param}"       # an optimizer slot (momentum, velocity) of one parameter

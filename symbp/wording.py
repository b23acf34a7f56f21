"""Words in messages: counted nouns, articles, and "did you mean" suggestions from one place.

Every suggestion symbp makes for a name it does not know (a loss, an optimizer argument, a spec
key) comes from :func:`suggest`: first a table of names other frameworks and papers use for the
same thing (``lr`` is Keras's ``learning_rate``, ``cross_entropy`` one of its crossentropies),
then the nearest valid names by edit distance (``learnig_rate``).
"""

from __future__ import annotations

import difflib
from typing import Iterable

#: names from other frameworks, papers and habit -> the Keras names they usually mean (in the
#: order they are suggested); only names valid where the suggestion is made are kept
ALIASES: dict[str, tuple[str, ...]] = {
    # optimizer arguments (PyTorch, papers)
    "lr": ("learning_rate",), "eta": ("learning_rate",), "alpha": ("learning_rate",),
    "step_size": ("learning_rate",), "learningrate": ("learning_rate",),
    "mu": ("momentum",), "beta": ("momentum",), "betas": ("beta_1", "beta_2"),
    "beta1": ("beta_1",), "beta2": ("beta_2",), "eps": ("epsilon",), "wd": ("weight_decay",),
    "gamma": ("rho",),
    # losses (PyTorch, TensorFlow 1, papers)
    "cross_entropy": ("categorical_crossentropy", "sparse_categorical_crossentropy",
                      "binary_crossentropy"),
    "crossentropy": ("categorical_crossentropy", "sparse_categorical_crossentropy",
                     "binary_crossentropy"),
    "ce": ("categorical_crossentropy", "sparse_categorical_crossentropy"),
    "cce": ("categorical_crossentropy",), "scce": ("sparse_categorical_crossentropy",),
    "nll": ("sparse_categorical_crossentropy",), "nll_loss": ("sparse_categorical_crossentropy",),
    "log_loss": ("binary_crossentropy", "categorical_crossentropy"),
    "logloss": ("binary_crossentropy", "categorical_crossentropy"),
    "softmax_cross_entropy": ("categorical_crossentropy",),
    "sigmoid_cross_entropy": ("binary_crossentropy",),
    "bce_loss": ("binary_crossentropy",), "mse_loss": ("mean_squared_error",),
    "l2": ("mean_squared_error",), "l2_loss": ("mean_squared_error",), "l1": ("mean_absolute_error",),
    "l1_loss": ("mean_absolute_error",), "smooth_l1": ("huber",), "smooth_l1_loss": ("huber",),
    "squared_error": ("mean_squared_error",), "absolute_error": ("mean_absolute_error",),
    # activations and training
    "identity": ("linear",), "none": ("linear",), "logistic": ("sigmoid",),
    "batch": ("batch_size",), "batchsize": ("batch_size",), "epoch": ("epochs",),
    "num_epochs": ("epochs",), "n_epochs": ("epochs",),
}


def _normalised(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def suggest(name: object, options: Iterable[str], limit: int = 3) -> list[str]:
    """The valid names ``name`` most likely meant: its aliases (ALIASES) that are among
    ``options``, then the closest options by edit distance (difflib ratio >= 0.6), at most
    ``limit`` in all."""
    options = sorted(set(options))
    key = _normalised(str(name))
    found = [alias for alias in ALIASES.get(key, ()) if alias in options]
    found += [close for close in difflib.get_close_matches(key, options, n=limit, cutoff=0.6)
              if close not in found]
    return found[:limit]


def did_you_mean(name: object, options: Iterable[str]) -> str:
    """' (did you mean 'a' or 'b'?)', or '' when nothing is close."""
    found = suggest(name, options)
    return f" (did you mean {' or '.join(map(repr, found))}?)" if found else ""


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """'1 column', '3 columns', '1 unit', '0 units'."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"


def article(word: str) -> str:
    """'a Sequential', 'an ExponentialDecay', 'an elu': by the first letter (good enough for
    the class and rule names messages show)."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"

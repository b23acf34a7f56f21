"""The notation paragraph of a network with indexed layers (convolutions, pooling, Flatten),
stated once as data and printed by every presenter.

Each sentence is LaTeX prose with ``$math$``: the LaTeX handout prints it as it is, the HTML
handout through :func:`symbp.emit.mathml.prose_html`, the notebook's Markdown as it is (Jupyter
renders ``$math$``). A sentence is printed when the network has a layer it speaks of, so the
paragraph states only the notation that applies. ``{W}`` and ``{b}`` stand for layer l's
parameters (``W_{l-1}``, ``\\theta_{l-1}`` or ``b_{l-1}``: the handout's numbering), ``{L}`` for the
number of layers. The indices are the generated module's (:mod:`symbp.rules.layers`): the window
``win_l[n, p, q, k, u, v]`` is what its trace holds and what the handout's worked entries print.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

#: which layers a sentence speaks of: a predicate on a layer rule (symbp.rules.layers.LayerRule)
Applies = Callable[[object], bool]


def _windows(rule) -> bool:
    return rule.gather is not None and rule.gather.kind == "windows"


def _sliding(rule) -> bool:
    return _windows(rule) and not rule.gather.global_window


def _pooling(mask: str, global_window: bool) -> Applies:
    return lambda rule: _windows(rule) and rule.gather.mask == mask and rule.gather.global_window == global_window


@dataclass(frozen=True)
class Sentence:
    applies: Applies
    text: str


#: every sentence of the paragraph, in the order printed
SENTENCES = (
    Sentence(lambda rule: True,
             r"Layer $l = 1, \dots, {L}$ takes $a_{{l-1}}$ (with $a_0 = x$) to its pre-activation $z_l$ and "
             r"$a_l = f_l(z_l)$; a layer with parameters has weights ${W}$ and {bias_word} ${b}$."),
    Sentence(_windows,
             r"A feature map is indexed $z_l[n,p,q,c]$, $a_l[n,p,q,c]$: sample $n$, row $p$, column $q$ "
             r"(one position $p$ for a one-dimensional layer), channel $c$, every index from 0; it is shown "
             r"as one matrix $a_l[n,:,:,c]$ per sample and channel."),
    Sentence(_windows,
             r"The input window of an entry is $\mathrm{{win}}_l[n,p,q,k,u,v] = "
             r"a_{{l-1}}[n,\ p s + u - \mathrm{{pad}},\ q s + v - \mathrm{{pad}},\ k]$: the entry of input channel "
             r"$k$ at offset $u$ down and $v$ across from the window's first entry, $s$ the stride "
             r"(a pooling's window keeps its channel, $k = c$)."),
    Sentence(_sliding,
             r"Strides and padding are TensorFlow's: along an axis of $H$ entries, a window of $K$ entries "
             r"with stride $s$ takes $P = \lfloor (H - K) / s \rfloor + 1$ positions with valid padding "
             r"($\mathrm{{pad}} = 0$), and $P = \lceil H / s \rceil$ with same padding, which pads "
             r"$\max((P - 1) s + K - H, 0)$ entries, $\mathrm{{pad}}$ (the smaller half) before the first "
             r"entry and the rest after it."),
    Sentence(lambda rule: _windows(rule) and bool(rule.parameters),
             r"A convolution (Keras's, a correlation: the kernel is not flipped) computes "
             r"$z_l[n,p,q,c] = \sum_{{u,v,k}} \mathrm{{win}}_l[n,p,q,k,u,v] \, {W}[u,v,k,c] + {b}[c]$; its "
             r"kernel ${W}[u,v,k,c]$ is laid out as Keras stores it (offset $u$ down, $v$ across, input "
             r"channel $k$, filter $c$) and shown as one matrix ${W}[:,:,k,c]$ per input channel and filter."),
    Sentence(_pooling("first_max", False),
             r"Max pooling selects: $z_l[n,p,q,c] = \sum_{{u,v}} \mathrm{{win}}_l[n,p,q,c,u,v] \, "
             r"\mathrm{{mask}}_l[n,p,q,c,u,v]$ with $\mathrm{{mask}}_l$ 1 at the first maximum of its window "
             r"(TensorFlow's choice on ties) and 0 elsewhere, so its gradient flows back to the selected "
             r"entry only."),
    Sentence(_pooling("mean", False),
             r"Average pooling weighs: $z_l[n,p,q,c] = \sum_{{u,v}} \mathrm{{win}}_l[n,p,q,c,u,v] \, "
             r"\mathrm{{mask}}_l[n,p,q,c,u,v]$ with $\mathrm{{mask}}_l$ 1 / (the input entries in its "
             r"window; padding is not counted)."),
    Sentence(lambda rule: _windows(rule) and rule.gather.global_window,
             r"Global pooling has one window, the whole feature map: $z_l[n,c]$, selected (max) or averaged "
             r"as above."),
    Sentence(_pooling("shared_max", True),
             r"Global max pooling's $\mathrm{{mask}}_l$ is $1/k$ at each of the $k$ maxima of its window "
             r"and 0 elsewhere: tied maxima share the gradient, as TensorFlow's maximum over axes sends it "
             r"(max pooling's windows give it all to the first)."),
    Sentence(lambda rule: rule.gather is not None and rule.gather.kind == "flatten",
             r"Flatten lays a feature map out in one row per sample, in C order as Keras's Flatten: "
             r"$z_l[n,f] = a_{{l-1}}[n,p,q,c]$ with $f = (p Q + q) C + c$ for $Q$ columns and $C$ channels."),
    Sentence(lambda rule: rule.name == "Dense",
             r"A Dense layer computes $z_l = a_{{l-1}} {W} + {b}$, one row per sample."),
    Sentence(lambda rule: rule.name == "Linear",
             r"A Linear layer computes $z_l = a_{{l-1}} {W}^T + {b}$, one row per sample."),
    Sentence(lambda rule: True,
             r"Back-propagation writes $g_l = \partial L / \partial a_l$ and $\delta_l = \partial L / "
             r"\partial z_l$, indexed as $a_l$ and $z_l$: $\delta_l[n,p,q,c] = \partial L / \partial z_l[n,p,q,c]$."),
)


def indexed_notation(rules, depth: int, weights: str, bias: str, bias_word: str) -> list[str]:
    """The sentences of :data:`SENTENCES` that apply to a network of layer ``rules``, filled in:
    ``weights``/``bias`` layer l's parameter symbols (``W_{l-1}``), ``bias_word`` "thetas" or "biases"."""
    rules = list(rules)
    return [sentence.text.format(L=depth, W=weights, b=bias, bias_word=bias_word)
            for sentence in SENTENCES if any(sentence.applies(rule) for rule in rules)]

"""The worked solution as data: sections of steps, each step a list of items a presenter writes.

An item holds what is shown, not how: a rule as the derivation model's SymPy expression with
``names`` binding its rows to the handout's notation, the values filled in as numbers (arrays
or floats), and the result. :mod:`symbp.emit.handout_latex` writes them as LaTeX lines; an HTML or
LMS presenter would write the same items its own way. Nothing here formats a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import sympy as sp

from ..derivation.chain_rule import ChainRule


@dataclass(frozen=True)
class Part:
    """A part of a rule worked out on the way: a row sum (its ``column`` then stands for it in
    the filled-in rule) or a row a piecewise condition compares (``column`` None). ``rule`` is
    what it means, in the rule's own symbols; ``filled_rule`` (default ``rule``) the form the
    numbers go into, where a row sum worked out before stands as its column of values."""
    rule: sp.Expr
    value: object
    column: Optional[str] = None
    filled_rule: Optional[sp.Expr] = None


@dataclass(frozen=True)
class Equation:
    """``lhs = rule = rule with values = result``: for a matrix result its shape follows, the
    student writes ``lhs = [blanks]``; for a scalar result the values and result share a line."""
    lhs: str
    rule: sp.Expr
    names: dict
    values: Optional[dict]              # row or symbol name -> the number filled in
    result: object
    transposed: Optional[dict] = None   # values of rows shown transposed (a^T, W^T)
    filled_rule: Optional[sp.Expr] = None   # the form the values go into (default: rule)
    parts: tuple[Part, ...] = ()
    via: Optional[tuple[sp.Expr, dict]] = None   # a rule shown between lhs and rule (g f'(z))
    shown_lhs: Optional[str] = None     # the student's left-hand side (default: lhs)
    #: an array of more than two axes prints as one matrix per entry of its other axes (samples,
    #: channels): these two axes whole (None: an activation's, :data:`~symbp.emit.latex.ACTIVATION_AXES`)
    axes: Optional[tuple] = None
    marked: object = None               # entries of the result to box (max pooling's selection)


@dataclass(frozen=True)
class Given:
    """``lhs = value`` (a matrix with its shape unless ``shape`` is False), after a ``note``."""
    lhs: str
    value: object
    shape: bool = True
    note: str = ""
    axes: Optional[tuple] = None        # as :class:`Equation`'s
    marked: object = None


@dataclass(frozen=True)
class IndexForm:
    """A per-sample rule in index form (the loss's l = -sum_i y_i log a_i)."""
    lhs: str
    rule: sp.Expr


@dataclass(frozen=True)
class EntryForm:
    """An indexed layer's rule for one generic entry (``z_{1}[n,p,q,c] = sum ...``), printed from
    the derivation's entry formula, its bases bound to the handout's notation by ``names``."""
    lhs: sp.Expr
    rule: sp.Expr
    names: dict
    note: str = ""


@dataclass(frozen=True)
class EntrySum:
    """One entry of an indexed rule worked out: ``lhs = rule = its terms with numbers = result``.

    ``rule`` is the entry formula at that entry (its sums' limits numbers), ``terms`` the same
    sums written out term by term (SymPy's ``doit``, nothing evaluated); ``values`` binds bases
    to the trace's arrays, read entry by entry; ``result`` is the trace's entry."""
    lhs: sp.Expr
    rule: sp.Expr
    terms: sp.Expr
    names: dict
    values: dict
    result: float


@dataclass(frozen=True)
class Result:
    """A quantity's every entry (``lhs = [...]``, feature maps past two axes, as :class:`Equation`'s
    result) after the entry rules that give it; the student sheet's version is blanks."""
    lhs: str
    value: object
    axes: Optional[tuple] = None
    marked: object = None


@dataclass(frozen=True)
class BatchMean:
    """L = 1/B sum_r l_r (torch's reduction="sum": sum_r l_r): the batch loss, and what Keras's
    progress bar shows of it (``keras``)."""
    value: float
    reduction: str = "mean"
    keras: bool = True


@dataclass(frozen=True)
class EntryUpdate:
    """One optimizer assignment at one entry: ``lhs = rule = rule with values = result``."""
    lhs: str
    rule: sp.Expr
    names: dict
    entries: dict       # the parameter's own values (w, g, slots) at the entry
    constants: dict     # hyperparameters and per-step scalars
    result: float


@dataclass(frozen=True)
class ChainRuleItem:
    """``--explain``: the entry's derived chain rule (factors with values), the module's gradient
    entry they sum to, and the entry's update."""
    param: str                  # the entry in the notation: W_{1}[2,0]
    chain: ChainRule
    gradient: float
    updates: tuple[EntryUpdate, ...]


Item = Union[Equation, Given, IndexForm, EntryForm, EntrySum, Result, BatchMean, ChainRuleItem]


@dataclass
class Step:
    """One quantity: its title and what is shown of it; ``quantity`` its name in the module's
    trace and the answer key (delta2, dW0, W0_updated, a CNN's map a1), for a sheet that asks for
    it; ``layer`` the layer a forward step belongs to (a sheet that asks for a map withholds
    that layer's numbers and the later layers')."""
    title: str
    items: list = field(default_factory=list)
    quantity: Optional[str] = None
    layer: Optional[int] = None

    @property
    def numbered(self) -> bool:
        """Does it show numbers (anything but rules in index form)?"""
        return not all(isinstance(item, (EntryForm, IndexForm)) for item in self.items)


@dataclass
class Section:
    title: str
    intro: str
    steps: list

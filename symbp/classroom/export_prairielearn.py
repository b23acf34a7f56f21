"""PrairieLearn of a class: ``symbp export prairielearn CLASS -o COURSE/questions [--spec SPEC]``.

Writes one v3 question, ``OUT/symbp_<name>/``: ``info.json`` (a stable ``uuid`` from the name,
``type: "v3"``, title, topic), ``question.html`` (the givens with ``pl-matrix-latex``, a
``pl-matrix-component-input`` per matrix quantity with partial credit and a ``pl-number-input``
for the loss, :mod:`symbp.classroom.lms`'s tolerance as ``rtol``/``atol``), ``server.py``
(``templates/prairielearn_server.py.j2``), the generated NumPy module of SPEC, ``mistakes.py``
(every catalogued mistake's rule as generated NumPy code, for ``grade(data)``'s feedback),
``standalone_draws.py`` (symbp's own drawing and rejection code, NumPy only, copied verbatim)
and ``draw.json`` (what and how ``symbp variants`` draws: its ``draw`` is the class's DrawRules).
A CNN's quantity or given of more than two axes is shown and asked as the 2-D slices the
handouts print (draw.json's ``slices``: a ``pl-matrix-component-input`` per slice,
``delta1_0_x_x_2`` for ``delta1[0,:,:,2]``). ``server.py`` draws the variant of a PrairieLearn
``variant_seed`` as ``symbp variants --seed`` draws its first student, so CLASS's own students
are PrairieLearn's variants of seeds the instructor kept; SPEC (the one with the [variants] table)
must be the class's (same name, same numbers of units).
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from pathlib import Path

import numpy as np

from .lms import ABSOLUTE, RELATIVE, ClassFolder, describe, slice_axes
from .mistakes import MISTAKES, mistakes_module_source
from .rules_of_step import map_layer, step_rules
from .. import standalone_draws
from .variants import draw_rules
from ..derivation.naming import ParamName
from ..errors import UnusableInput
from ..spec.model import Spec

#: uuid5 namespace of the questions symbp writes (a question keeps its uuid across exports)
NAMESPACE = uuid.UUID("6f1c1f52-3b7e-4a77-9a44-2d9a51b0c0de")
#: the question's NumPy module of mistaken rules (symbp.classroom.mistakes.mistakes_module_source)
MISTAKES_MODULE = "mistakes.py"
#: symbp's NumPy-only drawing and rejection (symbp/standalone_draws.py), written verbatim
DRAWS_MODULE = "standalone_draws.py"


def standalone_draws_source() -> str:
    """The source of :mod:`symbp.standalone_draws`, as the question carries it."""
    return Path(standalone_draws.__file__).read_text(encoding="utf-8")


def draw_config(spec: Spec, klass: ClassFolder, module_file: str, slices: dict[str, list]) -> dict:
    """Everything server.py needs, as plain numbers: what and how ``symbp variants`` draws
    (``draw``: :func:`symbp.classroom.variants.draw_rules`, read by standalone_draws.py), the
    quantities asked, their feedback and ``slices`` (:func:`question_slices`), the mistakes'
    descriptions."""
    from ..derivation.naming import printed_answer_names
    from ..derivation.network import layers_from_spec
    from ..emit.codegen import derive_spec
    built = layers_from_spec(spec)
    return {
        "module": module_file, "draws_module": DRAWS_MODULE, "draw": draw_rules(spec).as_json(),
        "quantities": klass.quantity_names(),
        "feedback": {q: f"Not all of {describe(q)} is right: work it again from its rule on your sheet."
                     for q in klass.quantity_names()},
        "mistakes_module": MISTAKES_MODULE, "rtol": RELATIVE, "atol": ABSOLUTE,
        "order": [rule.quantity for rule in step_rules(derive_spec(spec), spec.fixed_params)],
        "printed": printed_answer_names(spec.param_names, klass.first_index),   # dW0 -> the key's dW1
        "mistakes": {m.id: {"description": m.description, "rule": m.rule} for m in MISTAKES.values()},
        "maps": [layer.number for layer in built if map_layer(layer)],
        "slices": slices,
    }


def matrix_slices(name: str, shape: tuple, axes: tuple) -> list[list]:
    """[answers-name, label, index] of each 2-D slice an array of more than two axes shows as
    (:func:`symbp.emit.latex.tensor_slices`, the handouts' slicing): ``delta1_0_x_x_2``,
    ``delta1[0,:,:,2]``, ``[0, null, null, 2]`` (null: an axis taken whole); [] for at most two axes."""
    from ..emit.latex import tensor_slices
    if len(shape) <= 2:
        return []
    return [[f"{name}_{label.replace(':', 'x').replace(',', '_')}", f"{name}[{label}]",
             [None if isinstance(i, slice) else int(i) for i in index]] for index, label in tensor_slices(shape, axes)]


def answer_slices(klass: ClassFolder) -> dict[str, list]:
    """The slices of each quantity of more than two axes (a CNN's maps, deltas, kernels), as the sheet shows them."""
    first = next(iter(klass.students.values()))
    return {q: slices for q, quantity in first.items()
            if (slices := matrix_slices(q, quantity.shape, slice_axes(q)))}


def given_slices(spec: Spec) -> dict[str, list]:
    """The slices of each given of more than two axes: a kernel per input channel and filter, x per sample and channel."""
    from ..emit.latex import ACTIVATION_AXES, PARAMETER_AXES
    params = spec.initial_params()
    shapes = {**{name: (np.shape(params[name]), PARAMETER_AXES) for name in spec.param_names},
              "x": (np.shape(spec.x[:spec.batch_size]), ACTIVATION_AXES)}
    return {name: slices for name, (shape, axes) in shapes.items() if (slices := matrix_slices(name, shape, axes))}


def question_slices(spec: Spec, klass: ClassFolder) -> dict[str, list]:
    """The 2-D slices of every quantity and given of more than two axes, as the question shows them."""
    return {**answer_slices(klass), **given_slices(spec)}


def check_matches(spec: Spec, klass: ClassFolder) -> None:
    """SPEC must be the class's: its name and its network (:func:`symbp.emit.handouts.architecture`:
    the widths, a CNN's layers and their shapes), both named in the message when not."""
    from ..emit.handouts import architecture
    from ..spec.model import load_spec
    given, drawn = architecture(spec), architecture(load_spec(next(iter(klass.specs.values()))))
    if spec.name != klass.name or given != drawn:
        raise UnusableInput(f"--spec is {spec.name!r} ({given}), the class is {klass.name!r} ({drawn}): "
                            f"give the spec the class was drawn from")


def slice_weights(inputs: dict[str, int]) -> dict[str, int]:
    """The weight of each input of a quantity shown in ``inputs[q]`` inputs (a CNN's quantity in
    2-D slices), so that every quantity weighs the same in the question's score, as each is one
    quantity in ``symbp grade``: PrairieLearn's weights are whole numbers, so the least common
    multiple of the counts, divided by the quantity's own."""
    common = math.lcm(*inputs.values())
    return {q: common // count for q, count in inputs.items()}


def prairielearn_files(spec: Spec, klass: ClassFolder, out: Path) -> dict[Path, str]:
    """The question's files: path -> text (nothing written)."""
    from ..emit.codegen import module_files, module_source
    from ..emit.handouts import architecture
    from ..emit.render import html_env, plain_lms_label, python_env, render
    check_matches(spec, klass)
    base = dataclasses.replace(spec.with_initial_params(), variants=None)
    folder = Path(out) / f"symbp_{spec.name}"
    files = dict(module_files(base, folder, module_source(base)))
    info = {"uuid": str(uuid.uuid5(NAMESPACE, spec.name)), "title": plain_lms_label(klass.title, klass.name),
            "topic": "Back-propagation", "tags": ["symbp"], "type": "v3", "gradingMethod": "Internal", "singleVariant": False}
    files[folder / "info.json"] = json.dumps(info, indent=2) + "\n"
    slices = question_slices(spec, klass)
    files[folder / "draw.json"] = json.dumps(draw_config(spec, klass, f"{spec.name}.py", slices), indent=1) + "\n"
    files[folder / "server.py"] = render(python_env(), "prairielearn_server.py.j2")
    files[folder / MISTAKES_MODULE] = mistakes_module_source(base)
    files[folder / DRAWS_MODULE] = standalone_draws_source()
    weights = slice_weights({q: len(slices.get(q, [])) or 1 for q in klass.quantity_names()})
    quantities = [{"name": q, "description": describe(q), "scalar": q == "loss", "rule": klass.rules.get(q),
                   "weight": weights[q], "matrices": [(name, label) for name, label, _ in slices.get(q, [])] or [(q, q)]}
                  for q in klass.quantity_names()]
    names = [*((name, ParamName.parse(name).printed(klass.first_index)) for name in spec.param_names), ("x", "x"), ("y", "y")]
    givens = [pair for name, printed in names for pair in
              ([(n, printed + label[len(name):]) for n, label, _ in slices[name]] if name in slices else [(name, printed)])]
    files[folder / "question.html"] = render(
        html_env(), "prairielearn_question.html.j2", title=klass.title,
        architecture=architecture(spec), loss_name=spec.loss.name,
        optimizer=spec.optimizer.name, batch_size=spec.batch_size,
        givens=givens, quantities=quantities, rtol=RELATIVE, atol=ABSOLUTE)
    return files

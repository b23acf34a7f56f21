"""The spec: the typed network description (:mod:`.model`), reading a file (:mod:`.load`),
checking a mapping one table at a time (:mod:`.validate`) and building one in code (:mod:`.build`)."""

from .model import (Draw, INITIALIZERS, LayerSpec, LossSpec, OptimizerSpec, Problem, Spec,  # noqa: F401
                    SpecError, TrainingSpec, initialize)
from .load import BUILTIN_EXAMPLE, MAX_SPEC_BYTES, builtin_spec_path, load_spec  # noqa: F401
from .validate import (DATA_KEYS, LAYER_KEYS, LIMITS, MAX_GRID_MULTIPLE, RESERVED_NAMES,  # noqa: F401
                       TOP_KEYS, TRAINING_KEYS, VARIANT_DEFAULTS, VARIANT_ITEMS, VARIANT_KEYS,
                       shadows_a_module, validate_spec)
from .build import dense, network  # noqa: F401

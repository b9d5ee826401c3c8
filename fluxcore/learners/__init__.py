"""Learners behind one interface (see :mod:`fluxcore.learners.base`).

Importing this package registers the built-in learners ``mlr``, ``rf``, ``svm`` and (when
PyTorch is installed) ``lstm`` and ``mlp``; PyTorch itself is imported on the first
``make_learner("lstm")`` or ``make_learner("mlp")``.
"""

import importlib
import importlib.util

from . import mlr, mlr_fast, rf, rf_fast, svm, svm_fast  # noqa: F401  (register learners and their fast strategies)
from ._util import PerTarget
from .base import FluxLearner, available_learners, make_learner, register

#: Neural learners (registry name, module, class): torch is imported only when one is made
#: (keeps ``import fluxcore`` fast); importing the module registers the class itself.
TORCH_LEARNERS = (("lstm", "lstm", "LSTMLearner"), ("tamrl", "tamrl", "TAMRLLearner"),
                  ("pmtl", "pmtl", "PMTLLearner"), ("mlp", "mlp", "MLPLearner"))


def _lazy(name: str, module: str, cls: str) -> None:
    def make(**params):
        return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(**params)

    make.__doc__ = f"Make a {cls} (imports torch on first use)."
    register(name)(make)


if importlib.util.find_spec("torch") is not None:  # PyTorch is optional (extra "lstm")
    for _name, _module, _cls in TORCH_LEARNERS:
        _lazy(_name, _module, _cls)

__all__ = ["FluxLearner", "PerTarget", "available_learners", "make_learner", "register"]

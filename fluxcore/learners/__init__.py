"""Learners behind one interface (see :mod:`fluxcore.learners.base`).

Importing this package registers the built-in learners ``mlr``, ``rf``, ``svm`` and (when
PyTorch is installed) ``lstm``.
"""

import importlib.util

from . import mlr, rf, svm  # noqa: F401  (register)
from ._util import PerTarget
from .base import FluxLearner, available_learners, make_learner, register

if importlib.util.find_spec("torch") is not None:  # PyTorch is optional (extra "lstm")
    from . import lstm  # noqa: F401

__all__ = ["FluxLearner", "PerTarget", "available_learners", "make_learner", "register"]

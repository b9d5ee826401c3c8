"""Learners behind one interface (see :mod:`fluxcore.learners.base`).

Importing this package registers the built-in learners ``mlr``, ``rf``, ``svm`` and (when
PyTorch is installed) ``lstm`` and ``mlp``; PyTorch itself is imported on the first
``make_learner("lstm")`` or ``make_learner("mlp")``.
"""

import importlib.util

from . import mlr, mlr_fast, rf, rf_fast, svm, svm_fast  # noqa: F401  (register learners and their fast strategies)
from ._util import PerTarget
from .base import FluxLearner, available_learners, make_learner, register

if importlib.util.find_spec("torch") is not None:  # PyTorch is optional (extra "lstm")

    @register("lstm")
    def _make_lstm(**params):
        """Import torch only when an LSTM is made (keeps ``import fluxcore`` fast)."""
        from .lstm import LSTMLearner  # registers the class itself under "lstm"

        return LSTMLearner(**params)

    @register("mlp")
    def _make_mlp(**params):
        """Import torch only when an MLP is made (keeps ``import fluxcore`` fast)."""
        from .mlp import MLPLearner  # registers the class itself under "mlp"

        return MLPLearner(**params)

__all__ = ["FluxLearner", "PerTarget", "available_learners", "make_learner", "register"]

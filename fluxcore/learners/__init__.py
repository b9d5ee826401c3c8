"""Learners behind one interface (see :mod:`fluxcore.learners.base`).

Importing this package registers the built-in learners ``mlr``, ``rf``, ``svm`` and (when
PyTorch is installed) ``lstm``; PyTorch itself is imported on the first ``make_learner("lstm")``.
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

    @register("tamrl")
    def _make_tamrl(**params):
        """Import torch only when a TAM-RL learner is made."""
        from .tamrl import TAMRLLearner  # registers the class itself under "tamrl"

        return TAMRLLearner(**params)

    @register("pmtl")
    def _make_pmtl(**params):
        """Import torch only when a pmtl learner (the LSTM under its own name) is made."""
        from .pmtl import PMTLLearner  # registers the class itself under "pmtl"

        return PMTLLearner(**params)

__all__ = ["FluxLearner", "PerTarget", "available_learners", "make_learner", "register"]

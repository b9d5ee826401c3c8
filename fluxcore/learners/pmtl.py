"""``pmtl``: the LSTM under its own name, for process-model-guided transfer learning.

Guan et al. (2025), doi:10.1016/j.agrformet.2025.110678, pre-train a learner on a process
model's fluxes and fine-tune it on tower fluxes. In fluxcore the pre-training is a run stage
(``RunConfig.pretrain``, :mod:`fluxcore.pretrain`); this class is an
:class:`~fluxcore.learners.lstm.LSTMLearner` with identical hyperparameters and defaults,
registered as ``pmtl`` so that one run can hold the tower-only ``lstm`` and the pre-trained
``pmtl`` side by side on identical folds and seeds, with ``pretrain.learners: [pmtl]``.
Without a pre-training stage it *is* the LSTM.
"""

from __future__ import annotations

from .base import register
from .lstm import LSTMLearner

__all__ = ["PMTLLearner"]


@register("pmtl")
class PMTLLearner(LSTMLearner):
    """LSTM pre-trained on the process model, then fine-tuned on towers (see the module docstring)."""

    name = "pmtl"
    description = "transfer learning (LSTM pre-trained on the process model)"

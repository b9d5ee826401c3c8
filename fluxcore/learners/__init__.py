"""Learners behind one interface (see :mod:`fluxcore.learners.base`)."""

from .base import FluxLearner, available_learners, make_learner, register

__all__ = ["FluxLearner", "available_learners", "make_learner", "register"]

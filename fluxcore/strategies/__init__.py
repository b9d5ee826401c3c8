"""Fast leave-one-site-out strategies (registry, generic strategies); see :mod:`.base`.

Importing this package registers the generic strategies ``group_holdout`` and
``group_finetune``; the learner-specific ones (``mlr_exact``, ``rf_site_oob``, ``svm_group``)
register with their learners in :mod:`fluxcore.learners`.
"""

from . import group_finetune, group_holdout  # noqa: F401  (register)
from .base import (
    Pools,
    Strategy,
    StrategyContext,
    available_strategies,
    get_strategy,
    register_strategy,
    strategy_for,
)

__all__ = ["Pools", "Strategy", "StrategyContext", "available_strategies", "get_strategy",
           "register_strategy", "strategy_for"]

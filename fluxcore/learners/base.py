"""The learner contract and the learner registry.

Every learner follows scikit-learn's estimator contract:

* ``__init__`` only stores its keyword hyperparameters (no validation, no work);
* ``fit(X, y, *, sites, dates, sample_weight=None)`` returns ``self``; fitted state ends in
  ``_``; a second ``fit`` starts from scratch (unless ``warm_start=True`` is a parameter and set);
* ``predict(X, *, sites, dates)`` returns an array of shape ``(n_rows, n_targets)``;
* randomness only through ``random_state``; inputs are never modified;
* every fitted transform (scalers, imputers...) lives inside the learner, so it is fitted on
  the rows given to ``fit`` only. Early stopping draws its validation *sites* from the sites
  passed to ``fit``.

Inputs
------
X : pandas.DataFrame
    Feature columns only (rows are site-days), numeric, may contain NaN.
y : pandas.DataFrame
    Target columns (``GPP``, ``ER``, ``NEE`` ...); rows with NaN in a target are ignored for
    that target. A learner with ``multi_target = True`` fits all columns in one model;
    otherwise one model per column is fitted (the runner does it, or
    :class:`fluxcore.learners.PerTarget`).
sites : numpy.ndarray of str
    Site id of each row (used by sequence learners and by site-level validation).
dates : numpy.ndarray of datetime64[ns]
    Day of each row. Rows of one site are in date order.

Extension points (for the methods that plug in later)
-----------------------------------------------------
* multi-target learners and carbon-balance losses: ``multi_target = True`` and ``y`` with
  several columns (e.g. GPP and ER with NEE = ER - GPP);
* pre-train / fine-tune: :meth:`FluxLearner.fine_tune` continues from the fitted state on new
  rows (process-model-guided transfer learning); learners that cannot, raise
  ``NotImplementedError``;
* gridded prediction: ``predict`` only needs features, site/grid-cell ids and dates.

Register a new learner with :func:`register`; the runner looks learners up by name only.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import ConfigError

_REGISTRY: dict[str, Callable[..., FluxLearner]] = {}


def register(name: str) -> Callable:
    """Class decorator (or factory decorator) that registers a learner under ``name``."""

    def deco(obj):
        _REGISTRY[name] = obj
        return obj

    return deco


def available_learners() -> list[str]:
    """Names of the registered learners."""
    _import_builtin()
    return sorted(_REGISTRY)


def make_learner(name: str, **params: Any) -> FluxLearner:
    """Instantiate a registered learner by name with hyperparameters."""
    _import_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown learner {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**params)


def _import_builtin() -> None:
    # importing the package registers the built-in learners
    from .. import learners  # noqa: F401


class FluxLearner:
    """Base class with scikit-learn style ``get_params`` / ``set_params`` / ``clone``."""

    #: registry name, set by subclasses
    name: ClassVar[str] = "base"
    #: fits several targets in one model
    multi_target: ClassVar[bool] = False
    #: uses the temporal order of each site's days (needs ``sites`` and ``dates``)
    sequence: ClassVar[bool] = False

    # ---------------------------------------------------------- params API
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return [p for p, par in sig.parameters.items() if p != "self" and par.kind in kinds]

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names()}

    def set_params(self, **params: Any) -> FluxLearner:
        for k, v in params.items():
            if k not in self._param_names():
                raise ConfigError(f"{type(self).__name__} has no parameter {k!r}")
            setattr(self, k, v)
        return self

    def clone(self) -> FluxLearner:
        """Unfitted copy with the same hyperparameters."""
        return type(self)(**copy.deepcopy(self.get_params()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------ contract
    def fit(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
            sample_weight: np.ndarray | None = None) -> FluxLearner:
        raise NotImplementedError

    def predict(self, X: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fine_tune(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
                  sample_weight: np.ndarray | None = None, **kwargs: Any) -> FluxLearner:
        """Continue training a fitted learner on new rows (pre-train / fine-tune)."""
        raise NotImplementedError(f"{type(self).__name__} does not support fine-tuning")

    def _check_fitted(self) -> None:
        if not any(k.endswith("_") and not k.startswith("_") for k in vars(self)):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")

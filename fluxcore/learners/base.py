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
List the allowed values of its hyperparameters in ``_parameter_constraints`` (checked by
:func:`check_params` at config validation and at the start of ``fit``).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..params import Boolean, Interval, Options, Pattern, Seed, check_constraints

__all__ = ["Boolean", "Interval", "Options", "Pattern", "Seed", "check_params", "register",
           "available_learners", "make_learner", "FluxLearner"]

_REGISTRY: dict[str, Callable[..., FluxLearner]] = {}


# ------------------------------------------------------------ parameter constraints
# (defined in fluxcore.params, re-exported here for learner authors)
def check_params(learner: FluxLearner, label: str | None = None) -> None:
    """Raise :class:`ConfigError` naming the first hyperparameter outside its constraints.

    Constraints are the learner's ``_parameter_constraints`` (as in scikit-learn: parameter
    name -> list of allowed :class:`Interval`, :class:`Options`, ... or ``None``). The
    message starts with ``label`` (default: the learner's name).
    """
    check_constraints(learner.get_params(), type(learner)._parameter_constraints,
                      label or learner.name)


def register(name: str) -> Callable:
    """Class decorator (or factory decorator) that registers a learner under ``name``."""

    def deco(obj):
        _REGISTRY[name] = obj
        return obj

    return deco


def available_learners() -> list[str]:
    """Names of the registered learners.

    The built-in ones register when the package :mod:`fluxcore.learners` is imported, which
    Python does before any of its modules (this one included) runs.
    """
    return sorted(_REGISTRY)


def make_learner(name: str, **params: Any) -> FluxLearner:
    """Instantiate a registered learner by name with hyperparameters."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown learner {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**params)


class FluxLearner:
    """Base class with scikit-learn style ``get_params`` / ``set_params`` / ``clone``."""

    #: registry name, set by subclasses
    name: ClassVar[str] = "base"
    #: one line for front ends (the Train page's learner list)
    description: ClassVar[str] = ""
    #: the hyperparameters front ends offer first, each with a short help text
    main_params: ClassVar[dict[str, str]] = {}
    #: capability tags (as in sktime): a subclass sets only the keys it changes; they are
    #: merged along the class hierarchy by :meth:`get_class_tags`. Keys:
    #:
    #: * ``multi_target``: fits several targets in one model (else one model per target);
    #: * ``sequence``: uses the temporal order of each site's records (needs ``sites``, ``dates``);
    #: * ``fine_tune``: :meth:`fine_tune` continues training a fitted model;
    #: * ``sample_weight``: ``fit`` honours ``sample_weight`` (fuzzy site weights);
    #: * ``fast_strategy``: name of the fast leave-one-site-out strategy in
    #:   :mod:`fluxcore.strategies` (``None``: one fit per fold);
    #: * ``time_resolution``: time steps it learns from (``"daily"``, ``"monthly"``);
    #: * ``few_shot``: ``predict`` accepts ``context=`` (the held-out site's first k months of
    #:   fluxes, :mod:`fluxcore.fewshot`), and the runner leaves those rows out of the scores.
    _tags: ClassVar[dict[str, Any]] = {
        "multi_target": False,
        "sequence": False,
        "fine_tune": False,
        "sample_weight": True,
        "fast_strategy": None,
        "time_resolution": ("daily",),
    }
    #: allowed values per hyperparameter, checked by :func:`check_params` (at config
    #: validation and at the start of ``fit``)
    _parameter_constraints: ClassVar[dict[str, list]] = {}

    # ------------------------------------------------------------------ tags
    @classmethod
    def get_class_tags(cls) -> dict[str, Any]:
        """All capability tags of the class (``_tags`` merged along the MRO).

        A class attribute ``multi_target = True`` or ``sequence = True`` (the older way of
        declaring them) is read as that tag.
        """
        tags: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            tags.update(klass.__dict__.get("_tags", {}))
            for legacy in ("multi_target", "sequence"):
                v = klass.__dict__.get(legacy)
                if isinstance(v, (bool, np.bool_)):
                    tags[legacy] = bool(v)
        return tags

    @classmethod
    def get_class_tag(cls, name: str, default: Any = None) -> Any:
        """One capability tag of the class (``default`` when it is not declared)."""
        return cls.get_class_tags().get(name, default)

    def get_tag(self, name: str, default: Any = None) -> Any:
        """One capability tag of this learner (see :attr:`_tags`)."""
        return type(self).get_class_tag(name, default)

    @property
    def multi_target(self) -> bool:
        """Tag ``multi_target``: several targets in one model."""
        return bool(self.get_tag("multi_target", False))

    @property
    def sequence(self) -> bool:
        """Tag ``sequence``: uses each site's temporal order."""
        return bool(self.get_tag("sequence", False))

    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict[str, Any]]:
        """Hyperparameter sets for tests (as sktime's ``get_test_params``).

        ``parameter_set="default"``: small and fast, for the conformance checks
        (:mod:`fluxcore.testing`); ``"skill"``: still fast, but trained enough that the learner
        beats a mean predictor on the checks' synthetic problem (the default when no learner
        needs more).
        """
        return [{}]

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

"""Multiple linear regression (ordinary least squares), multi-target.

Equivalent to :class:`sklearn.linear_model.LinearRegression` fitted after
:class:`sklearn.impute.SimpleImputer` (``strategy="mean"``) on the same rows: the features are
(weighted-)centred, the centred system is solved by LAPACK least squares
(:func:`scipy.linalg.lstsq`, minimum-norm solution when rank deficient) and the intercept is
recovered from the means. Each target uses only the rows where that target is finite.

References
----------
Gao et al. (2025) use MLR as the linear baseline of the four learners.
Golub, G. H., Van Loan, C. F. (2013). Matrix Computations, 4th ed., ch. 5 (least squares).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import linalg

from ..variables import is_site_level
from ._util import tabular_fit_inputs, tabular_predict_inputs
from .base import Boolean, FluxLearner, Seed, check_params, register


@register("mlr")
class MLRLearner(FluxLearner):
    """Ordinary least squares regression of every target on all features.

    Parameters
    ----------
    fit_intercept : bool, default True
        Fit an intercept.
    site_level : bool, default False
        Use the derived site-level features (site means, catalogue attributes, IGBP one-hot;
        :func:`fluxcore.variables.is_site_level`). Off by default: with few training sites they
        are (nearly) collinear and a linear model extrapolates them wildly; their coefficients
        are then 0.
    random_state : int or None, default 0
        Unused (OLS is deterministic); kept so that every learner takes it.

    Attributes
    ----------
    coef_ : numpy.ndarray, shape (n_targets, n_features)
    intercept_ : numpy.ndarray, shape (n_targets,)
    impute_values_ : numpy.ndarray, shape (n_features,)
        Training column means that replace NaN in X (unweighted, over all rows given to fit).
    feature_names_in_, target_names_ : list of str
    n_train_ : numpy.ndarray, shape (n_targets,)
        Rows used for each target.

    Notes
    -----
    NaN in X is replaced by the training column mean (an all-NaN column by 0, which gets a
    zero coefficient); rows with NaN in a target, or with weight 0, are ignored for that target.
    """

    name = "mlr"
    description = "linear regression"
    main_params = {"fit_intercept": "fit an intercept (needed by the exact fast strategy)"}
    _tags = {"multi_target": True, "sample_weight": True, "fast_strategy": "mlr_exact",
             "time_resolution": ("daily", "monthly")}
    _parameter_constraints = {
        "fit_intercept": [Boolean()],
        "site_level": [Boolean()],
        "random_state": [None, Seed()],
    }

    def __init__(self, fit_intercept: bool = True, site_level: bool = False,
                 random_state: int | None = 0):
        self.fit_intercept = fit_intercept
        self.site_level = site_level
        self.random_state = random_state

    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict]:
        """Small, fast settings for the conformance checks (:mod:`fluxcore.testing`)."""
        return [{}, {"site_level": True}]

    def fit(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
            sample_weight: np.ndarray | None = None) -> MLRLearner:
        check_params(self)
        Xi, ya, imp, masks, fnames, tnames, w = tabular_fit_inputs(X, y, sites, dates, sample_weight)
        k, p = ya.shape[1], Xi.shape[1]
        use = used_columns(fnames, self.site_level)
        coef = np.zeros((k, p))
        intercept = np.zeros(k)
        n_train = np.zeros(k, dtype=int)
        for j in range(k):
            m = masks[:, j]
            coef[j, use], intercept[j] = _ols(Xi[m][:, use], ya[m, j], None if w is None else w[m],
                                              self.fit_intercept)
            n_train[j] = int(m.sum())
        self.coef_ = coef
        self.intercept_ = intercept
        self.impute_values_ = imp
        self.feature_names_in_ = fnames
        self.target_names_ = tnames
        self.n_train_ = n_train
        return self

    def predict(self, X: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return tabular_predict_inputs(self, X, sites, dates) @ self.coef_.T + self.intercept_[None, :]


def used_columns(names, site_level: bool) -> np.ndarray:
    """Positions of the feature columns an MLR with ``site_level`` uses."""
    return np.array([i for i, n in enumerate(names) if site_level or not is_site_level(str(n))],
                    dtype=int)


def _ols(X: np.ndarray, y: np.ndarray, w: np.ndarray | None, fit_intercept: bool
         ) -> tuple[np.ndarray, float]:
    """Weighted least squares as in scikit-learn's LinearRegression (centre, then lstsq)."""
    if fit_intercept:
        if w is None:
            xm, ym = X.mean(axis=0), y.mean()
        else:
            xm, ym = np.average(X, axis=0, weights=w), np.average(y, weights=w)
        Xc, yc = X - xm, y - ym
    else:
        xm, ym = np.zeros(X.shape[1]), 0.0
        Xc, yc = X, y
    if w is not None:
        sw = np.sqrt(w)
        Xc, yc = Xc * sw[:, None], yc * sw
    coef = linalg.lstsq(Xc, yc)[0]
    intercept = float(ym - xm @ coef) if fit_intercept else 0.0
    return coef, intercept

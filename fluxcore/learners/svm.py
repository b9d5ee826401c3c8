"""Support vector regression with an RBF kernel, scalable to ~500,000 site-days.

Exact kernel SVR (libsvm) costs O(n^2) to O(n^3) in the number of rows and cannot be fitted on
all site-days of a leave-one-site-out fold. Three methods:

``"nystroem"`` (default)
    Nystroem low-rank approximation of the RBF kernel (Williams & Seeger 2001) with
    ``n_components`` landmark rows drawn from the training rows, followed by a *linear*
    epsilon-insensitive SVR (:class:`sklearn.svm.LinearSVR`, liblinear dual coordinate descent;
    Ho & Lin 2012) or, with ``linear_solver="sgd"``, :class:`sklearn.linear_model.SGDRegressor`
    with ``loss="epsilon_insensitive"``. Fitted on a seeded sample of at most
    ``max_fit_rows`` rows; cost O(max_fit_rows * n_components^2) whatever the data size.
``"subsample"``
    Exact :class:`sklearn.svm.SVR` on a random subset of at most ``max_rows`` training rows.
``"exact"``
    Exact :class:`sklearn.svm.SVR` on all rows (only for small problems).

In all methods features are imputed with training means and standardised with training
statistics, and each target is standardised (so that ``epsilon`` and ``C`` mean the same for
GPP and ER); ``gamma="scale"`` means ``1 / n_features`` on the standardised features, the same
value scikit-learn's ``gamma="scale"`` gives for unit-variance data. One single-output model
is fitted per target on the rows where that target is finite; the Nystroem feature map is
shared by the targets. ``sample_weight`` is rescaled to mean 1 over the rows with weight > 0
(so that it redistributes, and ``C`` keeps its meaning) and multiplies each row's ``C``;
Nystroem landmarks are drawn uniformly, ignoring weights.

References
----------
Drucker, H. et al. (1997). Support vector regression machines. NIPS 9, 155-161.
Williams, C. K. I., Seeger, M. (2001). Using the Nystroem method to speed up kernel machines.
NIPS 13, 682-688.
Ho, C.-H., Lin, C.-J. (2012). Large-scale linear support vector regression. JMLR 13, 3323-3348.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pandas as pd
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import SGDRegressor
from sklearn.svm import SVR, LinearSVR

from ..errors import ConfigError
from ._util import (
    scale_stats,
    seed_from,
    tabular_fit_inputs,
    tabular_predict_inputs,
    target_stats,
)
from .base import FluxLearner, Interval, Options, Seed, check_params, register

METHODS = ("nystroem", "subsample", "exact")

#: scikit-learn's liblinear keeps its random generator in one process-wide variable (seeded
#: by ``random_state`` at the start of each fit) and trains without the GIL, so two
#: ``LinearSVR`` fits in two threads (the fast LOSO path fits groups in threads) draw from one
#: stream and give different models from run to run. Fits hold this lock.
_LIBLINEAR_LOCK = threading.Lock()


@register("svm")
class SVMLearner(FluxLearner):
    """RBF support vector regression, one model per target.

    Parameters
    ----------
    method : {"nystroem", "subsample", "exact"}, default "nystroem"
        How the kernel machine is made affordable (see module docstring).
    C : float, default 1.0
        Regularisation (on standardised targets).
    epsilon : float, default 0.1
        Half width of the insensitive tube [standardised target units].
    gamma : float or "scale", default "scale"
        RBF kernel width on standardised features; ``"scale"`` = 1 / n_features.
    n_components : int, default 500
        Nystroem landmarks (``method="nystroem"``); capped at the number of training rows.
    linear_solver : {"linearsvr", "sgd"}, default "linearsvr"
        Linear epsilon-insensitive solver on the Nystroem features.
    max_iter : int, default 1000
        Iteration cap of the linear solver (epochs for SGD).
    tol : float, default 1e-3
        Tolerance of the linear solver / SVR.
    max_rows : int, default 5000
        Row cap of ``method="subsample"``.
    max_fit_rows : int or None, default 30000
        Row cap of ``method="nystroem"``: the feature map and the linear SVR are fitted on a
        seeded random sample of at most this many training rows (None: all rows). With 500
        components, 30,000 rows estimate the 500 weights well and bound memory (~120 MB) and
        time (about 10-20 s per target on one core).
    cache_size : float, default 500
        libsvm kernel cache [MB] for exact SVR.
    random_state : int or None, default 0
        Seed of landmark / subsample selection and of the linear solver.

    Attributes
    ----------
    impute_values_, x_mean_, x_scale_ : numpy.ndarray
        Training imputation values and scaling of X.
    y_mean_, y_scale_ : numpy.ndarray
        Training target scaling.
    feature_map_ : Nystroem or None
    models_ : list
        One fitted regressor per target.
    gamma_ : float
        The kernel width used.
    n_train_ : numpy.ndarray
        Rows used per target.
    """

    name = "svm"
    # handles several targets itself (one model per target)
    description = "support vector machine"
    main_params = {"C": "regularisation (larger = less)", "epsilon": "insensitive band [gC m-2 d-1]",
                   "n_components": "Nystroem kernel features"}
    _tags = {"multi_target": True, "sample_weight": True, "fast_strategy": "svm_group",
             "time_resolution": ("daily", "monthly")}
    _parameter_constraints = {
        "method": [Options(*METHODS)],
        "C": [Interval(float, 0, None, closed="neither")],
        "epsilon": [Interval(float, 0)],
        "gamma": [Interval(float, 0, None, closed="neither"), Options("scale")],
        "n_components": [Interval(int, 1)],
        "linear_solver": [Options("linearsvr", "sgd")],
        "max_iter": [Interval(int, 1)],
        "tol": [Interval(float, 0, None, closed="neither")],
        "max_rows": [Interval(int, 1)],
        "max_fit_rows": [None, Interval(int, 1)],
        "cache_size": [Interval(float, 0, None, closed="neither")],
        "random_state": [None, Seed()],
    }

    def __init__(self, method: str = "nystroem", C: float = 1.0, epsilon: float = 0.1,
                 gamma: float | str = "scale", n_components: int = 500,
                 linear_solver: str = "linearsvr", max_iter: int = 1000, tol: float = 1e-3,
                 max_rows: int = 5000, max_fit_rows: int | None = 30000,
                 cache_size: float = 500.0,
                 random_state: int | None = 0):
        self.method = method
        self.C = C
        self.epsilon = epsilon
        self.gamma = gamma
        self.n_components = n_components
        self.linear_solver = linear_solver
        self.max_iter = max_iter
        self.tol = tol
        self.max_rows = max_rows
        self.max_fit_rows = max_fit_rows
        self.cache_size = cache_size
        self.random_state = random_state

    def _gamma(self, p: int) -> float:
        if isinstance(self.gamma, str):
            if self.gamma != "scale":
                raise ConfigError(f"svm: gamma must be a number or 'scale', got {self.gamma!r}")
            return 1.0 / max(p, 1)
        return float(self.gamma)

    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict]:
        """Small, fast settings for the conformance checks (:mod:`fluxcore.testing`)."""
        return [{"n_components": 150}]

    def fit(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
            sample_weight: np.ndarray | None = None) -> SVMLearner:
        check_params(self)
        Xi, ya, imp, masks, fnames, tnames, w = tabular_fit_inputs(X, y, sites, dates, sample_weight)
        seed = seed_from(self.random_state)
        xm, xs = scale_stats(Xi)
        Z = (Xi - xm) / xs
        ym, ys = target_stats(ya)
        Y = (ya - ym) / ys
        if w is not None:
            w = w / w[w > 0].mean()  # weights redistribute; C keeps its meaning
        gamma = self._gamma(Z.shape[1])
        rng = np.random.default_rng(seed)

        fmap = None
        models = []
        if self.method == "nystroem":
            # one seeded row sample (<= max_fit_rows) shared by the targets bounds time and memory
            rows = np.flatnonzero(masks.any(axis=1))
            if self.max_fit_rows is not None and len(rows) > self.max_fit_rows:
                rows = np.sort(rng.choice(rows, size=int(self.max_fit_rows), replace=False))
            n_comp = int(min(self.n_components, len(rows)))
            fmap = Nystroem(kernel="rbf", gamma=gamma, n_components=n_comp, random_state=seed)
            F = fmap.fit_transform(Z[rows])
            n_lin = len(rows)
            for j in range(Y.shape[1]):
                m = masks[rows, j]
                wj = None if w is None else w[rows][m]
                lin = self._linear(seed, n_lin)
                # see _LIBLINEAR_LOCK: same seed, same model (SGD has its own generator)
                with _LIBLINEAR_LOCK if isinstance(lin, LinearSVR) else contextlib.nullcontext():
                    models.append(lin.fit(F[m], Y[rows, j][m], sample_weight=wj))
        else:
            for j in range(Y.shape[1]):
                rows = np.flatnonzero(masks[:, j])
                if self.method == "subsample" and len(rows) > self.max_rows:
                    rows = np.sort(rng.choice(rows, size=int(self.max_rows), replace=False))
                svr = SVR(kernel="rbf", C=self.C, epsilon=self.epsilon, gamma=gamma, tol=self.tol,
                          cache_size=self.cache_size)
                models.append(svr.fit(Z[rows], Y[rows, j],
                                      sample_weight=None if w is None else w[rows]))
        self.impute_values_ = imp
        self.x_mean_, self.x_scale_ = xm, xs
        self.y_mean_, self.y_scale_ = ym, ys
        self.gamma_ = gamma
        self.feature_map_ = fmap
        self.models_ = models
        self.feature_names_in_ = fnames
        self.target_names_ = tnames
        self.n_train_ = masks.sum(axis=0)
        return self

    def _linear(self, seed: int, n: int):
        if self.linear_solver == "sgd":
            # alpha = 1 / (C n) gives the same objective as SVR's C (per-row mean loss)
            return SGDRegressor(loss="epsilon_insensitive", epsilon=self.epsilon,
                                alpha=1.0 / (max(self.C, 1e-12) * max(n, 1)), penalty="l2",
                                max_iter=min(self.max_iter, 50), tol=self.tol, random_state=seed,
                                learning_rate="optimal", average=True)
        return LinearSVR(loss="epsilon_insensitive", epsilon=self.epsilon, C=self.C, dual=True,
                         fit_intercept=True, intercept_scaling=1.0, max_iter=self.max_iter,
                         tol=self.tol, random_state=seed)

    def predict(self, X: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray) -> np.ndarray:
        self._check_fitted()
        Z = (tabular_predict_inputs(self, X, sites, dates) - self.x_mean_) / self.x_scale_
        F = self.feature_map_.transform(Z) if self.feature_map_ is not None else Z
        out = np.column_stack([m.predict(F) for m in self.models_])
        return out * self.y_scale_[None, :] + self.y_mean_[None, :]

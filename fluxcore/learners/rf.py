"""Random-forest regression (Breiman 2001; extremely randomized splits, Geurts et al. 2006), multi-output.

Wraps :class:`sklearn.ensemble.RandomForestRegressor` (default, ``splitter="best"``) or
:class:`sklearn.ensemble.ExtraTreesRegressor` (``splitter="random"``), both with bootstrap
row samples. Targets that share the same rows with
finite values (usually GPP and ER, both from the same flux partitioning) are fitted by one
multi-output forest; a target with a different missing-value pattern gets its own forest.

Defaults are chosen for leave-one-site-out runs on ~500,000 site-days on 2 cores:
``n_estimators=100`` trees, each grown on a bootstrap sample of ``max_samples=0.1`` of the
rows (~36,600 rows of GPP on FLUXNET2015; bagging many small samples is as accurate for smooth
daily fluxes and far faster than full ones), at most ``max_tree_rows=40000`` rows per tree
(binds only on larger networks), ``max_features=0.5`` of the features per split (decorrelates
trees, halves split search cost), ``min_samples_leaf=5`` (smaller trees and predictions
averaged over at least 5 days). ``n_jobs=1`` because the runner parallelises folds; set
``n_jobs=2`` (or -1) for a single big fit.

``max_samples`` was 0.05 (with a cap of 20,000 rows) from issue 21's second session to its
seventh, to halve the fast forest's time on all 204 towers; that kept W's skill (paired per-site
R² -0.004 GPP, -0.002 ER) but cost skill on the arid zone (paired GPP -0.013 over five seeds,
``benchmarks/README.md``). The fast strategy's compiled lazy trees
(:mod:`fluxcore.learners.lazytree`) grow the 10 % forest in the time the 5 % forest took, so
the defaults are the previous release's forest again. Earlier, 0.3 instead of 0.1 had moved
the medians by +0.008 / -0.002 at 3.4 times the cost.

``splitter="random"`` draws each candidate split's threshold at random instead of searching
every threshold: extremely randomized trees (Geurts et al. 2006), grown on the same bootstrap
row samples, about three times faster per tree. It is an option, not the default: on all 204
towers (``max_features=1.0``) it kept the median per-site R² (GPP 0.541 / ER 0.431 against
0.527 / 0.435) in a third of the time, but it lost badly at some arid towers (AU-ASM GPP
0.57 -> -0.21, ER 0.60 -> -0.28) and on the arid zone's median (``benchmarks/README.md``).

References
----------
Breiman, L. (2001). Random forests. Machine Learning 45, 5-32. doi:10.1023/A:1010933404324

Geurts, P., Ernst, D., Wehenkel, L. (2006). Extremely randomized trees. Machine Learning 63,
3-42. doi:10.1007/s10994-006-6226-1
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

from ._util import mask_groups, seed_from, tabular_fit_inputs, tabular_predict_inputs
from .base import FluxLearner, Interval, Options, Seed, check_params, register


def tree_rows(n: int, max_samples: float, min_tree_rows: int, max_tree_rows: int | None = None) -> int:
    """Rows of one tree's bootstrap sample from ``n`` training rows.

    ``max_samples * n`` rows, but at least ``min_tree_rows`` (and never more than ``n``) and at
    most ``max_tree_rows`` (None: no cap). The cap bounds the cost of a tree on large pools: a
    tree's cost grows faster than its rows (about ``k log^2 k`` for ``k`` rows), so without it
    the forest's time would grow faster than the number of towers.
    """
    k = max(round(float(max_samples) * n), int(min_tree_rows))
    if max_tree_rows is not None:
        k = min(k, max(int(max_tree_rows), int(min_tree_rows)))
    return int(max(1, min(n, k)))


@register("rf")
class RFLearner(FluxLearner):
    """Random forest regression of all targets.

    Parameters
    ----------
    n_estimators : int, default 100
        Number of trees.
    min_samples_leaf : int, default 5
        Minimum rows per leaf.
    max_features : float, int or str, default 0.5
        Features considered per split (fraction, count, ``"sqrt"``...); with
        ``splitter="random"`` 1.0 is the usual choice.
    max_samples : float or None, default 0.1
        Bootstrap sample size per tree as a fraction of the rows (None: all rows).
    min_tree_rows : int, default 5000
        Each tree's bootstrap sample has at least this many rows (all rows when there are
        fewer): a small pool (a few towers, a classroom zone) keeps trees of a useful size
        while ``max_samples`` sets the size on large pools. No effect on the 204-tower runs
        (10 % of their rows is about 36,000).
    max_tree_rows : int or None, default 40000
        Each tree's bootstrap sample has at most this many rows (None: no cap), so that the
        forest's cost stops growing with the pool's rows once trees are this large (networks
        of 1,000 towers). No effect on FLUXNET2015 at the default ``max_samples`` (10 % of its
        365,696 rows with GPP and ER is 36,570).
    max_depth : int or None, default None
        Maximum tree depth.
    splitter : {"best", "random"}, default "best"
        ``"best"``: Breiman's forest, the best threshold of each candidate feature;
        ``"random"``: one random threshold per candidate feature (extremely randomized trees,
        :class:`sklearn.ensemble.ExtraTreesRegressor` with the same bootstrap).
    n_jobs : int or None, default 1
        Parallel jobs for fitting and prediction.
    random_state : int or None, default 0
        Seed of the bootstrap and feature sampling.

    Attributes
    ----------
    forests_ : list of (list of int, RandomForestRegressor)
        One forest per group of targets with the same finite rows.
    impute_values_ : numpy.ndarray
        Training column means replacing NaN in X.
    feature_names_in_, target_names_ : list of str

    Notes
    -----
    NaN in X is replaced by the training column mean; rows with NaN in a target (or weight 0)
    are left out of that target's forest. ``sample_weight`` is passed to the forest (weighted
    bootstrap and weighted impurity); constant weights are treated as no weights.
    """

    name = "rf"
    description = "random forest"
    main_params = {"n_estimators": "number of trees", "min_samples_leaf": "minimum days per leaf",
                   "max_features": "fraction of features tried at each split", "max_depth": "0 = unlimited",
                   "splitter": "best: exact split search; random: random thresholds (faster)"}
    _tags = {"multi_target": True, "sample_weight": True, "fast_strategy": "rf_site_oob",
             "time_resolution": ("daily", "monthly")}
    _parameter_constraints = {
        "n_estimators": [Interval(int, 1)],
        "min_samples_leaf": [Interval(int, 1)],
        "max_features": [Interval(float, 0, 1, closed="right"), Interval(int, 1), Options("sqrt", "log2")],
        "max_samples": [None, Interval(float, 0, 1, closed="right")],
        "min_tree_rows": [Interval(int, 1)],
        "max_tree_rows": [None, Interval(int, 1)],
        "max_depth": [None, Interval(int, 1)],
        "splitter": [Options("best", "random")],
        "n_jobs": [None, Interval(int)],
        "random_state": [None, Seed()],
    }

    def __init__(self, n_estimators: int = 100, min_samples_leaf: int = 5,
                 max_features: float | int | str = 0.5, max_samples: float | None = 0.1,
                 min_tree_rows: int = 5000, max_tree_rows: int | None = 40000,
                 max_depth: int | None = None, splitter: str = "best", n_jobs: int | None = 1,
                 random_state: int | None = 0):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_samples = max_samples
        self.min_tree_rows = min_tree_rows
        self.max_tree_rows = max_tree_rows
        self.max_depth = max_depth
        self.splitter = splitter
        self.n_jobs = n_jobs
        self.random_state = random_state

    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict]:
        """Small, fast settings for the conformance checks (:mod:`fluxcore.testing`)."""
        return [{"n_estimators": 20, "max_samples": 0.5, "min_samples_leaf": 3}]

    def fit(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
            sample_weight: np.ndarray | None = None) -> RFLearner:
        check_params(self)
        Xi, ya, imp, masks, fnames, tnames, w = tabular_fit_inputs(X, y, sites, dates, sample_weight)
        if w is not None and np.all(w == w[0]):
            w = None  # constant weights change nothing but sklearn's weighted bootstrap draw
        seed = seed_from(self.random_state)
        forests = []
        for g in mask_groups(masks):
            m = masks[:, g[0]]
            n = int(m.sum())
            ms = None if self.max_samples is None else float(self.max_samples)  # a fraction, even if 1
            if ms is not None:
                ms = tree_rows(n, ms, self.min_tree_rows, self.max_tree_rows)  # a row count (sklearn: int)
                if ms >= n:
                    ms = None  # small data: whole bootstrap
            forest = ExtraTreesRegressor if self.splitter == "random" else RandomForestRegressor
            rf = forest(
                n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
                max_features=self.max_features, max_samples=ms, max_depth=self.max_depth,
                bootstrap=True, n_jobs=self.n_jobs, random_state=seed,
            )
            yy = ya[m][:, g]
            rf.fit(Xi[m], yy[:, 0] if len(g) == 1 else yy, sample_weight=None if w is None else w[m])
            forests.append((list(g), rf))
        self.forests_ = forests
        self.impute_values_ = imp
        self.feature_names_in_ = fnames
        self.target_names_ = tnames
        return self

    def predict(self, X: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray) -> np.ndarray:
        self._check_fitted()
        Xi = tabular_predict_inputs(self, X, sites, dates)
        out = np.empty((Xi.shape[0], len(self.target_names_)))
        for g, rf in self.forests_:
            p = rf.predict(Xi)
            out[:, g] = p.reshape(len(Xi), -1)
        return out

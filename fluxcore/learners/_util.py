"""Helpers shared by the built-in learners: input checks, imputation, scaling, target masks.

Everything here is a small pure function or a tiny fitted-statistics container; learners keep
the returned statistics as their own fitted attributes (names ending in ``_``), so that every
transform is fitted on the rows passed to ``fit`` only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError


def check_inputs(
    X: Any,
    y: Any | None,
    sites: Any,
    dates: Any,
    sample_weight: Any | None = None,
    *,
    what: str = "fit",
) -> tuple[np.ndarray, np.ndarray | None, list[str], list[str] | None, np.ndarray, np.ndarray,
           np.ndarray | None]:
    """Validate and convert learner inputs to float arrays, never modifying the originals.

    Parameters
    ----------
    X : pandas.DataFrame or array_like, shape (n, p)
        Features; NaN allowed.
    y : pandas.DataFrame, pandas.Series, array_like or None
        Targets, shape (n,) or (n, k); NaN allowed.
    sites : array_like of str, shape (n,)
        Site id per row.
    dates : array_like of datetime64, shape (n,)
        Day per row.
    sample_weight : array_like, shape (n,), optional
        Non-negative, finite row weights.
    what : str
        Name of the calling method, used in error messages.

    Returns
    -------
    tuple
        ``(Xa, ya, feature_names, target_names, sites, dates, weights)``; ``Xa`` and ``ya`` are
        new float64 arrays (``ya`` 2-D), ``sites`` a str array, ``dates`` datetime64[ns].

    Raises
    ------
    fluxcore.errors.DataError
        When shapes disagree, X is not numeric, or weights are negative / not finite.
    """
    if isinstance(X, pd.DataFrame):
        feature_names = [str(c) for c in X.columns]
        try:
            Xa = X.to_numpy(dtype=float, na_value=np.nan, copy=True)
        except (TypeError, ValueError) as exc:
            raise DataError(None, f"{what}: X must be numeric ({exc})") from exc
    else:
        Xa = np.array(X, dtype=float, copy=True)
        if Xa.ndim == 1:
            Xa = Xa[:, None]
        feature_names = [f"x{i}" for i in range(Xa.shape[1])]
    if Xa.ndim != 2:
        raise DataError(None, f"{what}: X must be 2-D, got shape {Xa.shape}")
    n = Xa.shape[0]
    if n == 0:
        raise DataError(None, f"{what}: X has no rows")
    Xa[~np.isfinite(Xa)] = np.nan

    ya = None
    target_names = None
    if y is not None:
        if isinstance(y, pd.DataFrame):
            target_names = [str(c) for c in y.columns]
            ya = y.to_numpy(dtype=float, na_value=np.nan, copy=True)
        elif isinstance(y, pd.Series):
            target_names = [str(y.name) if y.name is not None else "y0"]
            ya = y.to_numpy(dtype=float, na_value=np.nan, copy=True)[:, None]
        else:
            ya = np.array(y, dtype=float, copy=True)
            if ya.ndim == 1:
                ya = ya[:, None]
            target_names = [f"y{i}" for i in range(ya.shape[1])]
        if ya.ndim != 2 or ya.shape[0] != n:
            raise DataError(None, f"{what}: y has shape {ya.shape} but X has {n} rows")
        if ya.shape[1] == 0:
            raise DataError(None, f"{what}: y has no target columns")
        ya[~np.isfinite(ya)] = np.nan

    sites_a = np.asarray(sites).astype(str)
    if sites_a.shape != (n,):
        raise DataError(None, f"{what}: sites has shape {sites_a.shape} but X has {n} rows")
    dates_a = np.asarray(dates)
    if dates_a.shape != (n,):
        raise DataError(None, f"{what}: dates has shape {dates_a.shape} but X has {n} rows")
    try:
        dates_a = dates_a.astype("datetime64[ns]")
    except (TypeError, ValueError) as exc:
        raise DataError(None, f"{what}: dates must be datetimes ({exc})") from exc

    w = None
    if sample_weight is not None:
        w = np.array(sample_weight, dtype=float, copy=True).reshape(-1)
        if w.shape != (n,):
            raise DataError(None, f"{what}: sample_weight has shape {w.shape} but X has {n} rows")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise DataError(None, f"{what}: sample_weight must be finite and >= 0")
        if not np.any(w > 0):
            raise DataError(None, f"{what}: every sample_weight is 0")
    return Xa, ya, feature_names, target_names, sites_a, dates_a, w


def check_columns(fitted: list[str], given: list[str], what: str = "predict") -> None:
    """Raise :class:`DataError` when the feature columns differ from those seen in ``fit``."""
    if list(fitted) != list(given):
        raise DataError(None, f"{what}: feature columns {given} differ from those seen in fit {fitted}")


def impute_values(Xa: np.ndarray) -> np.ndarray:
    """Column means of the training rows, ignoring NaN (0 for an all-NaN column).

    Parameters
    ----------
    Xa : numpy.ndarray, shape (n, p)

    Returns
    -------
    numpy.ndarray, shape (p,)
    """
    ok = np.isfinite(Xa)
    cnt = ok.sum(axis=0)
    tot = np.where(ok, Xa, 0.0).sum(axis=0)
    return np.where(cnt > 0, tot / np.maximum(cnt, 1), 0.0)


def impute(Xa: np.ndarray, values: np.ndarray) -> np.ndarray:
    """New array with NaN replaced by the per-column ``values``."""
    return np.where(np.isnan(Xa), values[None, :], Xa)


def scale_stats(Xa: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per column of a NaN-free array (std 0 -> 1).

    Parameters
    ----------
    Xa : numpy.ndarray, shape (n, p)
    weights : numpy.ndarray, optional
        Not used for scaling (kept for symmetry); scaling statistics are unweighted.

    Returns
    -------
    mean, std : numpy.ndarray, shape (p,)
    """
    mean = Xa.mean(axis=0)
    std = Xa.std(axis=0)
    std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return mean, std


def target_stats(ya: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware mean and standard deviation per target column (std 0 or NaN -> 1)."""
    ok = np.isfinite(ya)
    cnt = ok.sum(axis=0)
    if np.any(cnt == 0):
        raise DataError(None, "fit: a target column has no finite value")
    mean = np.where(ok, ya, 0.0).sum(axis=0) / cnt
    var = np.where(ok, (ya - mean) ** 2, 0.0).sum(axis=0) / cnt
    std = np.sqrt(var)
    std = np.where(std > 1e-12, std, 1.0)
    return mean, std


def target_row_masks(ya: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Boolean (n, k): rows usable for each target (finite y and weight > 0)."""
    m = np.isfinite(ya)
    if w is not None:
        m &= (w > 0)[:, None]
    for j in range(ya.shape[1]):
        if not m[:, j].any():
            raise DataError(None, f"fit: target column {j} has no usable row (all NaN or weight 0)")
    return m


def tabular_fit_inputs(X, y, sites, dates, sample_weight=None):
    """Checked inputs of a tabular learner's ``fit``, NaN features imputed with training means.

    Returns
    -------
    Xi : numpy.ndarray, shape (n, p)
        Features with NaN replaced by ``imp``.
    ya : numpy.ndarray, shape (n, k)
        Targets (NaN kept).
    imp : numpy.ndarray, shape (p,)
        Training column means (:func:`impute_values`), to store as ``impute_values_``.
    masks : numpy.ndarray of bool, shape (n, k)
        Usable rows per target (:func:`target_row_masks`).
    fnames, tnames : list of str
        Feature and target names.
    w : numpy.ndarray or None
        Sample weights.
    """
    Xa, ya, fnames, tnames, _, _, w = check_inputs(X, y, sites, dates, sample_weight)
    imp = impute_values(Xa)
    return impute(Xa, imp), ya, imp, target_row_masks(ya, w), fnames, tnames, w


def tabular_predict_inputs(learner, X, sites, dates) -> np.ndarray:
    """Checked features of a fitted tabular learner's ``predict``, imputed with its training
    means (``learner.impute_values_``); the columns must be those seen in ``fit``."""
    Xa, _, fnames, _, _, _, _ = check_inputs(X, None, sites, dates, what="predict")
    check_columns(learner.feature_names_in_, fnames)
    return impute(Xa, learner.impute_values_)


def mask_groups(masks: np.ndarray) -> list[list[int]]:
    """Group target columns that share exactly the same row mask (order preserved)."""
    groups: list[list[int]] = []
    for j in range(masks.shape[1]):
        for g in groups:
            if np.array_equal(masks[:, g[0]], masks[:, j]):
                g.append(j)
                break
        else:
            groups.append([j])
    return groups


def seed_from(random_state: Any) -> int:
    """An int seed from ``random_state`` (int, None -> 0, or numpy Generator/RandomState)."""
    if random_state is None:
        return 0
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise TypeError(f"random_state must be an int or None, got {type(random_state).__name__}")


class PerTarget:
    """One clone of a single-output learner per target column (rows with NaN target dropped).

    The built-in learners handle several targets themselves (``multi_target = True``); this
    wrapper is for single-output plug-ins (``multi_target = False``), so that they can be used
    where one multi-target model is expected.

    Parameters
    ----------
    learner : FluxLearner
        Unfitted template; cloned for every target.

    Attributes
    ----------
    estimators_ : list of FluxLearner
        One fitted clone per target column.
    target_names_ : list of str
    """

    _tags = {"multi_target": True}

    def __init__(self, learner):
        self.learner = learner

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        return {"learner": self.learner}

    def fit(self, X, y, *, sites, dates, sample_weight=None) -> PerTarget:
        _, ya, _, tnames, _, _, w = check_inputs(X, y, sites, dates, sample_weight)
        masks = target_row_masks(ya, w)
        ests = []
        for j, t in enumerate(tnames):
            m = masks[:, j]
            yj = pd.DataFrame({t: ya[m, j]})
            Xj = X[m] if isinstance(X, pd.DataFrame) else np.asarray(X)[m]
            ests.append(self.learner.clone().fit(
                Xj, yj, sites=np.asarray(sites)[m], dates=np.asarray(dates)[m],
                sample_weight=None if w is None else w[m]))
        self.estimators_ = ests
        self.target_names_ = tnames
        return self

    def predict(self, X, *, sites, dates) -> np.ndarray:
        if not hasattr(self, "estimators_"):
            raise RuntimeError("PerTarget is not fitted; call fit first")
        cols = [np.asarray(e.predict(X, sites=sites, dates=dates), dtype=float).reshape(len(X), -1)[:, 0]
                for e in self.estimators_]
        return np.column_stack(cols)

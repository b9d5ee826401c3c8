"""The process model as a learner (``processmodel``): the raw process-model arm of a run.

:class:`ProcessModelLearner` predicts GPP, ER and NEE by running :mod:`fluxcore.processmodel`
on the drivers found in the feature table, with the literature parameters of
:mod:`fluxcore.pmparams` (``calibrate=False``, default: ``fit`` learns nothing) or with
``eps_max, r_ref, k_gpp`` calibrated per IGBP class on the fit rows (``calibrate=True``: the
training sites of the fold only).

What it reads from the feature table (:func:`drivers_from_features`), by column name:

* required: ``SW_IN`` [W m-2] and ``TA`` [degC] (or ``TMIN`` and ``TMAX``);
* used when present: ``TMIN, TMAX`` [degC], ``P`` [mm d-1], ``VPD`` [hPa], ``LAI`` [m2 m-2]
  (drivers), ``LAT`` [deg] (feature option ``latitude: true``; needed for the soil bucket),
  ``WHC_MM`` [mm] and the one-hot ``IGBP_<class>`` columns (feature option ``igbp``, on by
  default; no IGBP column: the generic parameters).

Everything it reads is a driver or a site attribute of the same rows; it never reads another
site. The model needs each site's continuous record (state variables): pass whole sites, as
the fold runner does. Registered (with its fast strategy ``pm_calibrate``) when this module
is imported; :mod:`fluxcore.pretrain` imports it, so every run configuration knows it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError
from .learners.base import Boolean, FluxLearner, register
from .pmparams import (
    calibrate,
    check_targets,
    fluxes_from_basis,
    literature_params,
    process_basis,
    site_statistics,
)
from .strategies.base import Strategy, check_pools, register_strategy

__all__ = ["ProcessModelLearner", "drivers_from_features", "PMCalibrate", "DRIVER_COLUMNS"]

#: Driver columns the learner reads when present.
DRIVER_COLUMNS = ("SW_IN", "TA", "TMIN", "TMAX", "P", "VPD", "LAI")


def drivers_from_features(X: pd.DataFrame, sites: np.ndarray, dates: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily driver table and site table of the process model, from feature columns.

    Returns
    -------
    (daily, site_table)
        ``daily``: ``SITE_ID, DATE`` and the driver columns of :data:`DRIVER_COLUMNS` that
        ``X`` has (same row order as ``X``, index 0..n-1); ``site_table``: ``SITE_ID`` and
        ``IGBP`` (from the one-hot ``IGBP_<class>`` columns), ``LAT``, ``WHC_MM`` when present.

    Raises
    ------
    fluxcore.errors.DataError
        When ``SW_IN`` or a temperature is missing (naming the columns the learner needs).
    """
    cols = set(X.columns)
    if "SW_IN" not in cols or not ("TA" in cols or {"TMIN", "TMAX"} <= cols):
        raise DataError(None, "processmodel: the feature table needs the driver columns SW_IN and TA "
                              "(or TMIN and TMAX); keep them in features.variables")
    sites = np.asarray(sites).astype(str)
    daily = pd.DataFrame({"SITE_ID": sites, "DATE": pd.to_datetime(np.asarray(dates))})
    for c in DRIVER_COLUMNS:
        if c in cols:
            daily[c] = X[c].to_numpy(dtype=float)
    uniq, first = np.unique(sites, return_index=True)
    table = pd.DataFrame({"SITE_ID": uniq})
    onehot = [c for c in X.columns if c.startswith("IGBP_")]
    if onehot:
        m = X[onehot].to_numpy(dtype=float)[first]
        best = np.nanargmax(np.where(np.isfinite(m), m, -1.0), axis=1)
        has = np.nanmax(np.where(np.isfinite(m), m, 0.0), axis=1) > 0.5
        table["IGBP"] = [onehot[j][5:] if h else None for j, h in zip(best, has, strict=True)]
    for c in ("LAT", "WHC_MM"):
        if c in cols:
            v = pd.Series(X[c].to_numpy(dtype=float)).groupby(sites).first()
            table[c] = v.reindex(uniq).to_numpy()
    return daily, table


def _basis(X, sites, dates) -> tuple[np.ndarray, list[str | None], np.ndarray, np.ndarray]:
    """Basis rows, class per unique site, unique sites, site code per row."""
    daily, table = drivers_from_features(X, sites, dates)
    basis = process_basis(daily, table).to_numpy(dtype=float)
    uniq = table["SITE_ID"].to_numpy(dtype=str)
    cls = list(table["IGBP"]) if "IGBP" in table else [None] * len(uniq)
    codes = np.searchsorted(uniq, np.asarray(sites).astype(str))
    return basis, cls, uniq, codes


def _predict_from(basis: np.ndarray, cls_rows: list, params: dict[str, dict], targets: list[str]) -> np.ndarray:
    def get(name):
        return np.array([params.get(c or "", {}).get(name, getattr(literature_params(c), name))
                         for c in cls_rows], dtype=float)

    out = fluxes_from_basis(basis, get("eps_max"), get("r_ref"), get("k_gpp"))
    return out[list(targets)].to_numpy(dtype=float)


@register("processmodel")
class ProcessModelLearner(FluxLearner):
    """fluxcore's process model as a leave-one-site-out arm (see the module docstring).

    Parameters
    ----------
    calibrate : bool, default False
        Calibrate ``eps_max, r_ref, k_gpp`` per IGBP class on the fit rows' fluxes (bounded
        least squares, :func:`fluxcore.pmparams.calibrate`); False: literature parameters.

    Attributes
    ----------
    params_ : dict
        IGBP class (``""``: unknown) -> ``{"eps_max", "r_ref", "k_gpp"}`` used for prediction
        (classes calibrated in ``fit``; others fall back to the literature at predict time).
    calibration_ : dict
        Output of :func:`fluxcore.pmparams.calibrate` (empty without calibration).
    target_names_ : list of str
    """

    name = "processmodel"
    description = "process model"
    main_params = {"calibrate": "fit eps_max, r_ref, k_gpp per IGBP class on the training sites"}
    _tags = {"multi_target": True, "sequence": True, "sample_weight": False,
             "fast_strategy": "pm_calibrate", "time_resolution": ("daily",)}
    _parameter_constraints = {"calibrate": [Boolean()]}

    def __init__(self, calibrate: bool = False):
        self.calibrate = calibrate

    @classmethod
    def get_test_params(cls, parameter_set: str = "default") -> list[dict[str, Any]]:
        return [{}, {"calibrate": True}]

    def fit(self, X: pd.DataFrame, y: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray,
            sample_weight: np.ndarray | None = None) -> ProcessModelLearner:
        """Record the targets; with ``calibrate`` fit the class parameters on these rows only."""
        targets = list(y.columns)
        check_targets(targets, "processmodel")
        self.target_names_ = targets
        self.params_ = {}
        self.calibration_ = {}
        if bool(self.calibrate):
            basis, cls, uniq, codes = _basis(X, sites, dates)
            stats = site_statistics(basis, y, codes, len(uniq))
            self.calibration_ = calibrate(stats, cls, np.arange(len(uniq)))
            self.params_ = {c: r["params"] for c, r in self.calibration_.items()}
        return self

    def predict(self, X: pd.DataFrame, *, sites: np.ndarray, dates: np.ndarray) -> np.ndarray:
        """GPP / ER / NEE [gC m-2 d-1] of every row, shape (n, n_targets)."""
        self._check_fitted()
        basis, cls, _, codes = _basis(X, sites, dates)
        return _predict_from(basis, [cls[i] or "" for i in codes], self.params_, self.target_names_)


def pool_digest(pool) -> str:
    """Short stable name of a set of training sites."""
    return hashlib.sha1("\n".join(sorted(map(str, pool))).encode()).hexdigest()[:12]


class PMCalibrate(Strategy):
    """All folds of ``processmodel`` from one run of the model per site (exact).

    The basis of every site (its own drivers only) is computed once; a fold's calibration uses
    the per-site statistics of its training sites only; predictions are the basis of the
    test site times the fold's parameters. Identical to fitting fold by fold. The parameters
    of each fold go to the run manifest (``fold_info[fold]["pm_params"]``).
    """

    name = "pm_calibrate"
    description = "process model run once per site; per-fold calibration from training-site statistics"
    plain_description = "the process model for every site at once"
    exact = True

    def supports(self, learner, weighted: bool = False) -> bool:
        return not weighted and isinstance(learner, ProcessModelLearner)

    def run(self, learner, X, Y, sites, dates, pools, options, context):
        pools = check_pools(np.asarray(sites).astype(str), pools)
        targets = list(Y.columns)
        check_targets(targets, "processmodel")
        basis, cls, uniq, codes = _basis(X, sites, dates)
        stats = site_statistics(basis, Y, codes, len(uniq)) if learner.calibrate else None
        pos = {s: i for i, s in enumerate(uniq)}
        cache: dict[str, dict] = {}
        out = {}
        for n, (test, pool) in enumerate(sorted(pools.items())):
            params: dict[str, dict] = {}
            if stats is not None:
                key = pool_digest(pool)
                if key not in cache:
                    cache[key] = calibrate(stats, cls, np.array([pos[s] for s in pool], dtype=int))
                params = {c: r["params"] for c, r in cache[key].items()}
            rows = np.flatnonzero(codes == pos[test])
            out[test] = _predict_from(basis[rows], [cls[pos[test]] or ""] * len(rows), params, targets)
            c = cls[pos[test]] or ""
            context.info[test] = {"pm_params": params.get(c, {k: getattr(literature_params(c or None), k)
                                                           for k in ("eps_max", "r_ref", "k_gpp")}),
                                  "pm_class": c, "pm_calibrated": stats is not None}
            if context.progress is not None:
                context.progress((n + 1) / len(pools))
        return out


register_strategy(PMCalibrate())

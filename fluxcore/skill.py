"""Predicted skill: the expected R² of a site from its heterogeneity distance.

A finished leave-one-site-out run gives, for every test site, an observed skill (R²) and a
distance to its fold's training set (:func:`fluxcore.heterogeneity.run_distances`). Gao et
al. (2025) found the two significantly negatively correlated. fluxcore turns that relation
into a prediction for any site, including sites with drivers but no flux observations and a
new site described only by its descriptor values.

Model (default ``method="ols"``): ordinary least squares ``R2_i = a + b d_i + e_i`` over the
run's test sites, with the observed R² clipped to [-1, 1] before fitting (a few very negative
R² would otherwise dominate the line). The prediction at distance d is
``yhat = a + b d`` with the classical OLS prediction interval

``yhat +- t_{n-2, (1 + level) / 2} s sqrt(1 + 1/n + (d - dbar)^2 / Sxx)``

(s: residual standard deviation with n - 2 degrees of freedom, Sxx = sum (d_i - dbar)^2),
and prediction and bounds are clipped to [-1, 1]. ``method="isotonic"`` fits a
non-increasing isotonic regression instead (Barlow et al. 1972) with an interval from the
empirical residual quantiles (a rough, distribution-free band).

Extrapolation is refused: the line is only trusted between the smallest and the largest
distance it was fitted on (``SkillModel.x_range``), and only for the aridity zones of the
fitted sites. :func:`predicted_skill` marks every other site ``inside = False`` with the
reason (``"beyond the fitted distances"``, ``"below the fitted distances"``, ``"zone not in
the fit"``, ``"no distance"``) and gives no prediction for it unless ``extrapolate=True``.

The distance of a site to "the" training set is measured against the full training set of
a model trained on every run site with observations of the target (all of them for
``pool="all"``, those of the site's zone for ``pool="zone"``), excluding the site itself, so
that a run site's predicted skill is comparable with its observed LOSO skill.

References
----------
Montgomery, D. C., Peck, E. A., Vining, G. G. (2012) Introduction to Linear Regression
Analysis, 5th ed., Wiley, Sect. 2.4.2 (prediction interval of a new observation).
Barlow, R. E., Bartholomew, D. J., Bremner, J. M., Brunk, H. D. (1972) Statistical Inference
under Order Restrictions. Wiley (isotonic regression).
Meyer, H., Pebesma, E. (2021) doi:10.1111/2041-210X.13650 (relating dissimilarity to
expected performance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError
from .heterogeneity import (
    _config_get,
    _load_run_parts,
    comprehensive_distance,
    dissimilarity_index,
    run_distances,
    site_descriptors,
)

_METHOD_OF = {"D_mean": "mean", "D_centroid": "centroid", "D_knn": "knn"}


@dataclass
class SkillModel:
    """Fitted relation between distance and skill for one learner and target.

    Attributes
    ----------
    learner, target, distance, metric, method : str
    n : int
        Sites used.
    slope, intercept : float
        OLS line (also reported for ``method="isotonic"``).
    resid_sd : float
        Residual standard deviation [metric units].
    x_mean, sxx : float
        Mean and sum of squared deviations of the distances.
    clip : tuple of float
        Range of the metric (R²: [-1, 1]).
    zones : tuple of str
        Aridity zones of the fitted sites (empty when unknown).
    """

    learner: str
    target: str
    distance: str
    metric: str
    method: str
    n: int
    slope: float
    intercept: float
    resid_sd: float
    x_mean: float
    sxx: float
    clip: tuple[float, float] = (-1.0, 1.0)
    x: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    y: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    _iso: Any = field(default=None, repr=False)
    zones: tuple[str, ...] = ()

    @property
    def x_range(self) -> tuple[float, float]:
        """Smallest and largest fitted distance [-]: the line is not used outside them."""
        if self.x.size == 0:
            return float("nan"), float("nan")
        return float(self.x.min()), float(self.x.max())

    def inside(self, d) -> np.ndarray:
        """True where distance ``d`` lies within :attr:`x_range` (NaN: False)."""
        d = np.atleast_1d(np.asarray(d, dtype=float))
        lo, hi = self.x_range
        with np.errstate(invalid="ignore"):
            return np.isfinite(d) & (d >= lo) & (d <= hi)

    def predict(self, d, level: float = 0.9) -> pd.DataFrame:
        """Expected metric and prediction interval at distance(s) ``d``.

        Returns
        -------
        pandas.DataFrame
            ``distance, pred, lo, hi`` (clipped to ``clip``); NaN where d is NaN.
        """
        from scipy import stats

        if not 0 < level < 1:
            raise ConfigError(f"prediction-interval level must be in (0, 1), got {level!r}")
        d = np.atleast_1d(np.asarray(d, dtype=float))
        if self.method == "isotonic":
            pred = self._iso.predict(np.where(np.isfinite(d), d, self.x_mean))
            resid = self.y - self._iso.predict(self.x)
            lo_q, hi_q = np.quantile(resid, [(1 - level) / 2, (1 + level) / 2])
            lo, hi = pred + lo_q, pred + hi_q
        else:
            pred = self.intercept + self.slope * d
            t = stats.t.ppf((1 + level) / 2, max(self.n - 2, 1))
            half = t * self.resid_sd * np.sqrt(1 + 1 / self.n + (d - self.x_mean) ** 2 / self.sxx)
            lo, hi = pred - half, pred + half
        a, b = self.clip
        out = pd.DataFrame({"distance": d, "pred": np.clip(pred, a, b), "lo": np.clip(lo, a, b),
                            "hi": np.clip(hi, a, b)})
        out.loc[~np.isfinite(d), ["pred", "lo", "hi"]] = np.nan
        return out

    def summary(self) -> dict:
        """Plain dict of the fit (for tables and JSON)."""
        lo, hi = self.x_range
        return {"learner": self.learner, "target": self.target, "distance": self.distance,
                "metric": self.metric, "method": self.method, "n": self.n, "slope": self.slope,
                "intercept": self.intercept, "resid_sd": self.resid_sd, "x_min": lo, "x_max": hi,
                "zones": ",".join(self.zones)}


def fit_skill_model(metrics: pd.DataFrame, distances: pd.DataFrame, learner: str, target: str,
                    distance: str = "D_mean", metric: str = "R2", method: str = "ols",
                    clip: tuple[float, float] = (-1.0, 1.0)) -> SkillModel:
    """Fit the distance-skill relation of one learner and target (see module docstring).

    Parameters
    ----------
    metrics : pandas.DataFrame
        A run's ``metrics.parquet``.
    distances : pandas.DataFrame
        :func:`fluxcore.heterogeneity.run_distances` of the same run.
    learner, target : str
    distance : str
        ``D_mean`` (default), ``D_centroid``, ``D_knn`` or ``DI``.
    metric : str
        Skill column (``R2`` default; ``r2`` works too).
    method : {"ols", "isotonic"}
    clip : tuple of float
        Range the metric is clipped to before fitting and in predictions.

    Raises
    ------
    ConfigError
        Unknown learner/target/method, or fewer than 3 sites with finite values.
    """
    if method not in ("ols", "isotonic"):
        raise ConfigError(f"unknown skill model {method!r}; use 'ols' or 'isotonic'")
    m = metrics[(metrics["learner"] == learner) & (metrics["target"] == target)]
    if m.empty:
        raise ConfigError(f"run has no metrics for learner {learner!r} and target {target!r}; "
                          f"learners: {sorted(metrics['learner'].unique())}, "
                          f"targets: {sorted(metrics['target'].unique())}")
    if distance not in distances.columns:
        raise ConfigError(f"distance table has no column {distance!r}")
    j = m[["SITE_ID", metric, *(["zone"] if "zone" in m.columns else [])]].merge(
        distances[["SITE_ID", distance]], on="SITE_ID")
    x = j[distance].to_numpy(dtype=float)
    y = j[metric].to_numpy(dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    zones = tuple(sorted(map(str, j.loc[ok, "zone"].dropna().unique()))) if "zone" in j.columns else ()
    x, y = x[ok], np.clip(y[ok], *clip)
    n = int(x.size)
    if n < 3 or np.ptp(x) == 0:
        raise ConfigError(f"need at least 3 sites with distinct distances to fit skill for "
                          f"{learner}/{target}, got {n}")
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    resid_sd = float(np.sqrt(np.sum(resid ** 2) / max(n - 2, 1)))
    iso = None
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(increasing=False, out_of_bounds="clip").fit(x, y)
        resid_sd = float(np.sqrt(np.mean((y - iso.predict(x)) ** 2)))
    return SkillModel(learner=learner, target=target, distance=distance, metric=metric,
                      method=method, n=n, slope=float(slope), intercept=float(intercept),
                      resid_sd=resid_sd, x_mean=float(x.mean()), sxx=float(np.sum((x - x.mean()) ** 2)),
                      clip=clip, x=x, y=y, _iso=iso, zones=zones)


def _data_sites(dataset, target: str) -> list[str]:
    d = dataset.daily
    if target not in d.columns:
        return []
    n = d.groupby("SITE_ID")[target].count()
    return sorted(map(str, n.index[n > 0]))


def _distance_to(desc: pd.DataFrame, train: list[str], site: str, distance: str, k: int,
                 weights) -> float:
    train = [t for t in train if t != site and t in desc.index]
    if len(train) < 2 or site not in desc.index:
        return float("nan")
    if distance == "DI":
        return float(dissimilarity_index(desc, train, site).iloc[0]["DI"])
    if distance not in _METHOD_OF:
        raise ConfigError(f"unknown distance {distance!r}; use D_mean, D_centroid, D_knn or DI")
    return comprehensive_distance(desc, train, site, _METHOD_OF[distance], k=k, weights=weights)


def predicted_skill(run, dataset, learner: str, target: str, distance: str = "D_mean",
                    method: str = "ols", level: float = 0.9, k: int = 5, weights=None,
                    distances: pd.DataFrame | None = None,
                    descriptors: pd.DataFrame | None = None,
                    train_sites: Sequence[str] | None = None,
                    extrapolate: bool = False) -> pd.DataFrame:
    """Expected R² (with prediction interval) of every site of the catalogue.

    Parameters
    ----------
    run : str, Path or RunResult
        A finished run.
    dataset : fluxcore.dataset.FluxDataset
        The run's dataset; may hold sites without flux observations (drivers only).
    learner, target : str
    distance : str
        Distance the skill model uses (``D_mean`` default).
    method : {"ols", "isotonic"}
    level : float
        Prediction-interval level (0.9 = 5-95 %).
    k, weights :
        As :func:`fluxcore.heterogeneity.comprehensive_distance`.
    distances, descriptors : pandas.DataFrame, optional
        Precomputed :func:`run_distances` / :func:`site_descriptors`.
    train_sites : sequence of str, optional
        The full training set (default: every site of ``dataset`` with observations of
        ``target``). Give it when ``dataset`` holds more sites than the run was trained on,
        e.g. the whole catalogue for a run made on a subset.
    extrapolate : bool
        Also predict outside the fitted distance range and zones (default False: those
        sites get NaN predictions and ``inside = False``).

    Returns
    -------
    pandas.DataFrame
        ``SITE_ID, zone, has_flux, in_run, distance, inside, outside_reason, R2_pred, R2_lo,
        R2_hi, R2_observed``, one row per site. ``attrs["skill_model"]`` holds the fit
        (:meth:`SkillModel.summary`, with ``x_min``/``x_max`` and ``level``).
    """
    config, metrics, _ = _load_run_parts(run)
    desc = site_descriptors(dataset) if descriptors is None else descriptors
    dist = run_distances(run, dataset, k=k, weights=weights, descriptors=desc) if distances is None else distances
    model = fit_skill_model(metrics, dist, learner, target, distance=distance, method=method)
    pool_sites = _data_sites(dataset, target)
    if train_sites is not None:
        pool_sites = [s for s in map(str, train_sites) if s in set(pool_sites)]
    pool = _config_get(config, "pool", "all") or "all"
    obs = metrics[(metrics["learner"] == learner) & (metrics["target"] == target)].set_index("SITE_ID")["R2"]
    rows = []
    for s in desc.index:
        zone = dataset.zone_of(s)
        train = pool_sites if pool != "zone" else [t for t in pool_sites if dataset.zone_of(t) == zone]
        d = _distance_to(desc, train, s, distance, k, weights)
        rows.append({"SITE_ID": s, "zone": zone, "has_flux": s in pool_sites, "in_run": s in obs.index,
                     "distance": d})
    out = pd.DataFrame(rows)
    dvals = out["distance"].to_numpy(dtype=float)
    reason = _outside_reasons(model, dvals, out["zone"].to_numpy(dtype=object))
    out["inside"] = reason == ""
    out["outside_reason"] = reason
    p = model.predict(dvals, level=level)
    keep = np.ones(len(out), dtype=bool) if extrapolate else out["inside"].to_numpy()
    for col, src in (("R2_pred", "pred"), ("R2_lo", "lo"), ("R2_hi", "hi")):
        out[col] = np.where(keep, p[src].to_numpy(), np.nan)
    out["R2_observed"] = out["SITE_ID"].map(obs).astype(float)
    out.attrs["skill_model"] = {**model.summary(), "level": level}
    return out


def _outside_reasons(model: SkillModel, d: np.ndarray, zones: np.ndarray) -> np.ndarray:
    """Why each distance / zone is outside what the model was fitted on ("" = inside)."""
    lo, hi = model.x_range
    out = np.full(d.size, "", dtype=object)
    with np.errstate(invalid="ignore"):
        out[d > hi] = "beyond the fitted distances"
        out[d < lo] = "below the fitted distances"
    if model.zones:
        bad_zone = np.array([z is not None and str(z) not in model.zones for z in zones], dtype=bool)
        out[bad_zone & (out == "")] = "zone not in the fit"
    out[~np.isfinite(d)] = "no distance"
    return out


def descriptor_row(descriptors: pd.DataFrame, values: Mapping[str, float]) -> pd.Series:
    """A descriptor row for a new site from user values.

    Keys are descriptor columns (``TA_mean``, ``P_amp``, ``ELEV`` ...) or, for convenience,
    a driver name meaning its mean (``TA`` -> ``TA_mean``) and ``ASPECT`` [deg] (converted to
    ``ASPECT_sin`` / ``ASPECT_cos``). Descriptors not given are NaN (left out of distances).

    Raises
    ------
    ConfigError
        For an unknown key or when no key matches a descriptor of the run.
    """
    row = pd.Series(np.nan, index=descriptors.columns, dtype=float)
    for key, val in values.items():
        if key in row.index:
            row[key] = float(val)
        elif key == "ASPECT" and "ASPECT_sin" in row.index:
            row["ASPECT_sin"] = np.sin(np.deg2rad(float(val)))
            row["ASPECT_cos"] = np.cos(np.deg2rad(float(val)))
        elif f"{key}_mean" in row.index:
            row[f"{key}_mean"] = float(val)
        else:
            raise ConfigError(f"unknown site descriptor {key!r}; known: {', '.join(descriptors.columns)}")
    if not row.notna().any():
        raise ConfigError("describe the new site by at least one descriptor value")
    return row


def predict_skill_for_descriptor(run, dataset, learner: str, target: str, values: Mapping[str, float],
                                 distance: str = "D_mean", method: str = "ols", level: float = 0.9,
                                 zone: str | None = None, k: int = 5, weights=None,
                                 distances: pd.DataFrame | None = None,
                                 descriptors: pd.DataFrame | None = None,
                                 train_sites: Sequence[str] | None = None,
                                 extrapolate: bool = False) -> dict:
    """Expected R² of a new site described by its descriptor values.

    Parameters
    ----------
    run, dataset, learner, target, distance, method, level, k, weights, train_sites :
        As :func:`predicted_skill`.
    values : mapping
        Descriptor values of the new site (see :func:`descriptor_row`), e.g.
        ``{"TA": 12.0, "P": 2.1, "VPD": 6.0, "ELEV": 350}``.
    zone : str, optional
        The new site's aridity zone (used only for ``pool="zone"`` runs).
    extrapolate : bool
        Predict even outside the fitted distance range (default False: NaN there).

    Returns
    -------
    dict
        ``distance, R2_pred, R2_lo, R2_hi, inside, outside_reason, n_descriptors``
        (descriptors given), ``n_train``.
    """
    config, metrics, _ = _load_run_parts(run)
    desc = site_descriptors(dataset) if descriptors is None else descriptors
    dist = run_distances(run, dataset, k=k, weights=weights, descriptors=desc) if distances is None else distances
    model = fit_skill_model(metrics, dist, learner, target, distance=distance, method=method)
    row = descriptor_row(desc, values)
    new_id = "__new_site__"
    full = pd.concat([desc, row.to_frame(new_id).T])
    train = _data_sites(dataset, target)
    if train_sites is not None:
        train = [s for s in map(str, train_sites) if s in set(train)]
    if (_config_get(config, "pool", "all") or "all") == "zone":
        if zone is None:
            raise ConfigError("this run trains within aridity zones (pool='zone'): give the new site's zone")
        train = [t for t in train if dataset.zone_of(t) == zone]
    d = _distance_to(full, train, new_id, distance, k, weights)
    p = model.predict([d], level=level).iloc[0]
    why = str(_outside_reasons(model, np.array([d], dtype=float), np.array([zone], dtype=object))[0])
    keep = extrapolate or why == ""
    val = {k: (float(p[c]) if keep else float("nan")) for k, c in (("R2_pred", "pred"), ("R2_lo", "lo"),
                                                                      ("R2_hi", "hi"))}
    return {"distance": d, **val, "inside": why == "", "outside_reason": why,
            "n_descriptors": int(row.notna().sum()), "n_train": len(train)}


__all__ = ["SkillModel", "fit_skill_model", "predicted_skill", "descriptor_row",
           "predict_skill_for_descriptor"]

"""Site heterogeneity: the comprehensive Euclidean distance and the dissimilarity index.

Gao et al. (2025) measure how different a test site is from its training sites with a
"comprehensive Euclidean distance" over the driver variables and report that it is
significantly negatively correlated with the leave-one-site-out R². The paper gives no
formula; fluxcore defines it as follows (see ``docs/heterogeneity.md``).

Site descriptors
    :func:`site_descriptors`: one row per site with the multi-year mean and the seasonal
    amplitude of every daily driver present (meteorology ``TA, TMIN, TMAX, P, WS, VPD``,
    remote sensing ``SW_IN, LAI``) and the static site variables present (``ELEV, SLOPE,
    CLAY, SAND, SILT``; ``ASPECT`` as its sine and cosine). Fluxes are never used.

Normalisation
    z-scores with the mean and standard deviation (ddof = 1) of the *training* sites only:
    ``z_sv = (x_sv - mean_train(x_v)) / sd_train(x_v)``. A descriptor that is constant or
    unknown among the training sites carries no information and is left out.

Group distances
    for sites a, b and a variable group g (meteo, rs, static) with descriptor set V_g,
    ``d_g(a, b)^2 = 1/|V_g| * sum_{v in V_g} (z_av - z_bv)^2`` (root-mean-square per
    variable, so that a group with more variables does not dominate); descriptors missing at
    a or b are skipped (the mean is over the variables known at both sites).

Comprehensive distance
    ``D(a, b) = sqrt( sum_g w_g d_g(a, b)^2 / sum_g w_g )`` with group weights w_g (default
    equal); groups with no usable descriptor for the pair are left out of both sums.

Site-to-training-set distance (:func:`comprehensive_distance`)
    ``"mean"`` (default): mean of D(test, j) over the training sites j; ``"centroid"``: D
    between the test site and the training centroid (z = 0 for every descriptor by
    construction); ``"knn"``: mean of the k smallest D(test, j).

Dissimilarity index (:func:`dissimilarity_index`)
    the DI and area of applicability (AOA) of Meyer & Pebesma (2021): importance-weighted,
    standardised Euclidean distance to the nearest training site divided by the mean pairwise
    distance among training sites; the AOA threshold is the upper whisker of the boxplot of
    the training sites' cross-validated DI (as CAST's ``trainDI``).

References
----------
Gao, Y. et al. (2025) Inversion of carbon fluxes at eddy-covariance sites with machine
learning across aridity zones (LSTM, RF, SVM, MLR; comprehensive Euclidean distance;
fuzzy mathematics).
Meyer, H., Pebesma, E. (2021) Predicting into unknown space? Estimating the area of
applicability of spatial prediction models. Methods in Ecology and Evolution 12, 1620-1633.
doi:10.1111/2041-210X.13650
Tukey, J. W. (1977) Exploratory Data Analysis. Addison-Wesley (boxplot whiskers).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError
from .folds import config_value as _config_get
from .folds import fold_train_sites
from .runstore import load_run
from .variables import DAILY_DRIVERS, STATIC, VARIABLES

#: Descriptor groups in a fixed order.
GROUPS: tuple[str, ...] = ("meteo", "rs", "static")

#: Minimum number of distinct calendar months of a site's climatology for its mean and
#: amplitude to be defined (fewer months would bias both towards the observed season).
MIN_MONTHS = 9

#: Distance columns of :func:`run_distances`.
DISTANCE_COLUMNS: tuple[str, ...] = ("D_mean", "D_centroid", "D_knn", "DI")


# --------------------------------------------------------------------------- descriptors
def descriptor_group(column: str) -> str:
    """Variable group (``"meteo"``, ``"rs"`` or ``"static"``) of a descriptor column.

    ``TA_mean`` and ``TA_amp`` belong to the group of ``TA``; ``ASPECT_sin`` to the group of
    ``ASPECT``; a static variable's column is its own name.

    Raises
    ------
    ConfigError
        For a column that is not derived from a canonical driver or static variable.
    """
    base = column
    if column not in VARIABLES and "_" in column:
        base = column.rsplit("_", 1)[0]
    v = VARIABLES.get(base)
    if v is None or v.group not in GROUPS:
        raise ConfigError(f"descriptor column {column!r} is not derived from a driver or static variable")
    return v.group


def descriptor_groups(columns: Iterable[str]) -> dict[str, list[str]]:
    """Map group -> descriptor columns (only groups with at least one column)."""
    out: dict[str, list[str]] = {}
    for c in columns:
        out.setdefault(descriptor_group(str(c)), []).append(str(c))
    return {g: out[g] for g in GROUPS if g in out}


def site_descriptors(dataset, seasonal: bool = True, min_months: int = MIN_MONTHS) -> pd.DataFrame:
    """Climate, remote-sensing and static descriptors of every site (drivers only).

    For each daily driver present, the monthly climatology of each site (mean of the values
    of each calendar month over all years) gives

    * ``<VAR>_mean``: mean of the monthly climatology (each calendar month counts once, so
      that uneven seasonal coverage does not bias the mean) [unit of VAR];
    * ``<VAR>_amp`` (when ``seasonal``): seasonal amplitude, maximum minus minimum of the
      monthly climatology (warmest minus coldest month for TA) [unit of VAR].

    Both are NaN for a site whose climatology has fewer than ``min_months`` calendar months.
    Static variables present are copied from the catalogue; ``ASPECT`` [deg] becomes
    ``ASPECT_sin`` and ``ASPECT_cos`` (a circular variable: 359 deg is next to 1 deg).
    Targets (GPP, ER, NEE) are never used.

    Parameters
    ----------
    dataset : fluxcore.dataset.FluxDataset
    seasonal : bool
        Add seasonal amplitudes.
    min_months : int
        Calendar months needed for a defined mean / amplitude.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``SITE_ID`` (every site of the catalogue and of the daily table, sorted),
        numeric descriptor columns only. ``df.attrs["groups"]`` maps ``meteo`` / ``rs`` /
        ``static`` to their columns (also available from :func:`descriptor_groups`).
    """
    daily = dataset.daily
    drivers = [v for v in DAILY_DRIVERS if v in daily.columns and daily[v].notna().any()]
    site_index = sorted(set(map(str, dataset.sites.index)) | set(map(str, daily["SITE_ID"].unique())))
    out = pd.DataFrame(index=pd.Index(site_index, name="SITE_ID"))
    if drivers and len(daily):
        month = pd.DatetimeIndex(daily["DATE"]).month
        tmp = daily[["SITE_ID", *drivers]].assign(_month=np.asarray(month))
        clim = tmp.groupby(["SITE_ID", "_month"])[drivers].mean()
        n_months = clim.notna().groupby(level="SITE_ID").sum()
        g = clim.groupby(level="SITE_ID")
        means = g.mean().where(n_months >= min_months)
        amps = (g.max() - g.min()).where(n_months >= min_months)
        for v in drivers:
            out[f"{v}_mean"] = means[v].reindex(out.index).astype(float)
            if seasonal:
                out[f"{v}_amp"] = amps[v].reindex(out.index).astype(float)
    sites = dataset.sites
    for v in STATIC:
        if v not in sites.columns:
            continue
        vals = pd.to_numeric(pd.Series(sites[v].to_numpy(), index=sites.index.astype(str)),
                             errors="coerce").reindex(out.index)
        if not vals.notna().any():
            continue
        if v == "ASPECT":
            rad = np.deg2rad(vals.to_numpy(dtype=float))
            out["ASPECT_sin"] = np.sin(rad)
            out["ASPECT_cos"] = np.cos(rad)
        else:
            out[v] = vals.to_numpy(dtype=float)
    out.attrs["groups"] = descriptor_groups(out.columns)
    return out


# --------------------------------------------------------------------------- normalisation
def _check_sites(descriptors: pd.DataFrame, sites: Sequence[str], what: str) -> list[str]:
    sites = [str(s) for s in sites]
    missing = [s for s in sites if s not in descriptors.index]
    if missing:
        raise ConfigError(f"{what} site(s) without descriptors: {', '.join(missing[:10])}")
    return sites


def training_scaler(descriptors: pd.DataFrame, train_sites: Sequence[str]) -> tuple[pd.Series, pd.Series]:
    """Mean and standard deviation (ddof = 1) of each descriptor over the training sites.

    Descriptors with fewer than two known training values or zero spread are dropped (they
    cannot be standardised and carry no information about the training set).

    Returns
    -------
    (mean, sd) : tuple of pandas.Series
        Indexed by the usable descriptor columns.
    """
    train_sites = _check_sites(descriptors, train_sites, "training")
    if len(train_sites) < 2:
        raise ConfigError("at least two training sites are needed to standardise descriptors")
    tr = descriptors.loc[train_sites].astype(float)
    mu = tr.mean()
    sd = tr.std(ddof=1)
    ok = (tr.notna().sum() >= 2) & np.isfinite(sd) & (sd > 0)
    return mu[ok], sd[ok]


def standardize(descriptors: pd.DataFrame, train_sites: Sequence[str]) -> pd.DataFrame:
    """z-scores of all sites' descriptors with the statistics of ``train_sites`` only."""
    mu, sd = training_scaler(descriptors, train_sites)
    return (descriptors[mu.index].astype(float) - mu) / sd


def _group_weights(groups: Mapping[str, list[str]], weights: Mapping[str, float] | None) -> dict[str, float]:
    w = {g: 1.0 for g in groups}
    if weights is not None:
        bad = sorted(set(weights) - set(GROUPS))
        if bad:
            raise ConfigError(f"unknown descriptor group(s) {bad} in distance weights; use {list(GROUPS)}")
        for g, val in weights.items():
            if g in w:
                if not np.isfinite(val) or val < 0:
                    raise ConfigError(f"distance weight of group {g!r} must be >= 0, got {val!r}")
                w[g] = float(val)
    return w


def _distance_matrix(za: np.ndarray, zb: np.ndarray, col_groups: Mapping[str, np.ndarray],
                     gweights: Mapping[str, float]) -> np.ndarray:
    """D between each row of ``za`` (m, p) and each row of ``zb`` (n, p); see module doc."""
    m, n = za.shape[0], zb.shape[0]
    num = np.zeros((m, n))
    den = np.zeros((m, n))
    for g, idx in col_groups.items():
        w = gweights.get(g, 1.0)
        if len(idx) == 0 or w == 0:
            continue
        diff2 = (za[:, None, idx] - zb[None, :, idx]) ** 2  # (m, n, p_g)
        known = np.isfinite(diff2)
        cnt = known.sum(axis=2)
        s = np.where(known, diff2, 0.0).sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            dg2 = np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)
        ok = np.isfinite(dg2)
        num += np.where(ok, w * dg2, 0.0)
        den += np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, np.sqrt(num / np.where(den > 0, den, 1.0)), np.nan)


def _prepare(descriptors: pd.DataFrame, train_sites: Sequence[str], weights):
    z = standardize(descriptors, train_sites)
    groups = descriptor_groups(z.columns)
    cols = list(z.columns)
    col_groups = {g: np.array([cols.index(c) for c in cs], dtype=int) for g, cs in groups.items()}
    return z, col_groups, _group_weights(groups, weights)


def pairwise_distances(descriptors: pd.DataFrame, train_sites: Sequence[str],
                       sites_a: Sequence[str] | None = None, sites_b: Sequence[str] | None = None,
                       weights: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Comprehensive distance D between sites, normalised with ``train_sites`` statistics.

    Parameters
    ----------
    descriptors : pandas.DataFrame
        From :func:`site_descriptors` (indexed by site).
    train_sites : sequence of str
        Sites whose mean / sd standardise the descriptors.
    sites_a, sites_b : sequence of str, optional
        Rows and columns of the result (default: ``train_sites``).
    weights : mapping, optional
        Group weights ``{"meteo": w, "rs": w, "static": w}`` (default equal).

    Returns
    -------
    pandas.DataFrame
        D [-] (dimensionless: root-mean-square z-score difference), rows ``sites_a``,
        columns ``sites_b``. NaN where two sites share no usable descriptor.
    """
    train_sites = [str(s) for s in train_sites]
    sites_a = train_sites if sites_a is None else _check_sites(descriptors, sites_a, "")
    sites_b = train_sites if sites_b is None else _check_sites(descriptors, sites_b, "")
    z, col_groups, gw = _prepare(descriptors, train_sites, weights)
    za = z.loc[list(sites_a)].to_numpy(dtype=float)
    zb = z.loc[list(sites_b)].to_numpy(dtype=float)
    return pd.DataFrame(_distance_matrix(za, zb, col_groups, gw), index=list(sites_a), columns=list(sites_b))


def site_distances(descriptors: pd.DataFrame, train_sites: Sequence[str], test_site: str,
                   weights: Mapping[str, float] | None = None) -> pd.Series:
    """D between ``test_site`` and each training site (normalisation from training sites).

    The test site is removed from ``train_sites`` if it is listed there.
    """
    test_site = str(test_site)
    train = [str(s) for s in train_sites if str(s) != test_site]
    _check_sites(descriptors, [test_site], "test")
    d = pairwise_distances(descriptors, train, [test_site], train, weights)
    return d.iloc[0].rename(test_site)


def comprehensive_distance(descriptors: pd.DataFrame, train_sites: Sequence[str], test_site: str,
                           method: str = "mean", k: int = 5,
                           weights: Mapping[str, float] | None = None) -> float:
    """Comprehensive Euclidean distance of a test site to its training set.

    Parameters
    ----------
    descriptors : pandas.DataFrame
        From :func:`site_descriptors`.
    train_sites : sequence of str
        The fold's training sites (the test site is excluded if listed). Their statistics,
        and only theirs, standardise the descriptors.
    test_site : str
    method : {"mean", "centroid", "knn"}
        ``"mean"``: mean D to the training sites; ``"centroid"``: D to the training centroid
        (the all-zero z vector); ``"knn"``: mean D to the ``k`` nearest training sites.
    k : int
        Neighbours for ``"knn"`` (capped at the number of training sites).
    weights : mapping, optional
        Group weights (default equal).

    Returns
    -------
    float
        Distance [-]; NaN when the test site shares no usable descriptor with the training
        sites.
    """
    test_site = str(test_site)
    train = [str(s) for s in train_sites if str(s) != test_site]
    if method not in ("mean", "centroid", "knn"):
        raise ConfigError(f"unknown distance method {method!r}; use 'mean', 'centroid' or 'knn'")
    if method == "centroid":
        _check_sites(descriptors, [test_site], "test")
        z, col_groups, gw = _prepare(descriptors, train, weights)
        za = z.loc[[test_site]].to_numpy(dtype=float)
        zb = np.zeros_like(za)
        return float(_distance_matrix(za, zb, col_groups, gw)[0, 0])
    d = site_distances(descriptors, train, test_site, weights).to_numpy(dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    if method == "mean":
        return float(d.mean())
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    return float(np.sort(d)[: min(k, d.size)].mean())


# --------------------------------------------------------------- dissimilarity index / AOA
def _fivenum(x: np.ndarray) -> np.ndarray:
    """Tukey's five-number summary (R ``fivenum``): min, lower hinge, median, upper hinge, max."""
    x = np.sort(x[np.isfinite(x)])
    n = x.size
    if n == 0:
        return np.full(5, np.nan)
    n4 = np.floor((n + 3) / 2) / 2
    d = np.array([1, n4, (n + 1) / 2, n + 1 - n4, n]) - 1
    return 0.5 * (x[np.floor(d).astype(int)] + x[np.ceil(d).astype(int)])


def aoa_threshold(train_di: Sequence[float], rule: str = "whisker", coef: float = 1.5) -> float:
    """Area-of-applicability threshold from the training sites' cross-validated DI.

    Parameters
    ----------
    train_di : sequence of float
        DI of each training site with respect to the training sites of the other folds.
    rule : {"whisker", "fence"}
        ``"whisker"`` (default, as CAST ``trainDI``: ``boxplot.stats(TrainDI)$stats[5]``):
        the largest training DI not above ``upper hinge + coef * (upper hinge - lower
        hinge)`` (Tukey hinges), i.e. the outlier-removed maximum of Meyer & Pebesma (2021);
        ``"fence"``: the fence value ``Q75 + coef * IQR`` itself (linear quantiles).
    coef : float
        Whisker length in interquartile ranges.

    Returns
    -------
    float
        Threshold [-]; NaN with no finite training DI.
    """
    x = np.asarray(train_di, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan")
    if rule == "fence":
        q25, q75 = np.quantile(x, [0.25, 0.75])
        return float(q75 + coef * (q75 - q25))
    if rule != "whisker":
        raise ConfigError(f"unknown AOA threshold rule {rule!r}; use 'whisker' or 'fence'")
    f = _fivenum(x)
    fence = f[3] + coef * (f[3] - f[1])
    return float(x[x <= fence].max())


def _importance_vector(columns: Sequence[str], importance: Mapping[str, float] | None) -> np.ndarray:
    w = np.ones(len(columns))
    if importance is None:
        return w
    for i, c in enumerate(columns):
        base = c if c in importance else (c.rsplit("_", 1)[0] if "_" in c else c)
        if c in importance:
            w[i] = float(importance[c])
        elif base in importance:
            w[i] = float(importance[base])
    return np.clip(w, 0.0, None)


def _euclid(za: np.ndarray, zb: np.ndarray) -> np.ndarray:
    """Euclidean distance over descriptors known at both points, rescaled to all p columns."""
    diff2 = (za[:, None, :] - zb[None, :, :]) ** 2
    known = np.isfinite(diff2)
    cnt = known.sum(axis=2)
    s = np.where(known, diff2, 0.0).sum(axis=2)
    p = za.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, np.sqrt(s * p / np.maximum(cnt, 1)), np.nan)


def dissimilarity_index(descriptors: pd.DataFrame, train_sites: Sequence[str],
                        test_sites: Sequence[str] | str, importance: Mapping[str, float] | None = None,
                        threshold_rule: str = "whisker") -> pd.DataFrame:
    """Dissimilarity index (DI) and area of applicability (Meyer & Pebesma 2021).

    With descriptors standardised by the training sites and multiplied by importance weights
    ``w_v`` (default 1): ``d_k = min_j ||x_k - x_j||`` over training sites j (Euclidean),
    ``dbar`` = mean pairwise distance among training sites, ``DI_k = d_k / dbar``. The
    training sites' own DI uses, for each training site, the nearest *other* training site
    (each site is its own cross-validation fold, as in leave-one-site-out); the AOA threshold
    is :func:`aoa_threshold` of those, and a site is inside the AOA when ``DI <= threshold``.

    Missing descriptors: a distance is computed over the descriptors known at both sites and
    rescaled by ``sqrt(p / p_known)``.

    Parameters
    ----------
    descriptors : pandas.DataFrame
    train_sites : sequence of str
    test_sites : str or sequence of str
        Sites to evaluate (a test site listed in ``train_sites`` is removed from them for its
        own evaluation only when there is a single test site).
    importance : mapping, optional
        Weight per descriptor column or per variable (``{"TA": 2.0}`` applies to ``TA_mean``
        and ``TA_amp``); negative weights are set to 0 (as CAST).
    threshold_rule : {"whisker", "fence"}

    Returns
    -------
    pandas.DataFrame
        Indexed by test site: ``DI`` [-], ``AOA`` (bool), ``threshold`` [-].
    """
    if isinstance(test_sites, str):
        test_sites = [test_sites]
    test_sites = _check_sites(descriptors, test_sites, "test")
    train = [str(s) for s in train_sites]
    if len(test_sites) == 1:
        train = [s for s in train if s != test_sites[0]]
    z = standardize(descriptors, train)
    w = _importance_vector(list(z.columns), importance)
    zt = z.loc[train].to_numpy(dtype=float) * w
    zx = z.loc[test_sites].to_numpy(dtype=float) * w
    dtt = _euclid(zt, zt)
    n = len(train)
    off = ~np.eye(n, dtype=bool)
    dbar = float(np.nanmean(dtt[off])) if n > 1 else float("nan")
    dtt_min = np.where(off, dtt, np.nan)
    with np.errstate(all="ignore"):
        train_di = np.nanmin(np.where(np.isfinite(dtt_min), dtt_min, np.inf), axis=1) / dbar
    train_di[~np.isfinite(train_di)] = np.nan
    thr = aoa_threshold(train_di, threshold_rule)
    dx = _euclid(zx, zt)
    with np.errstate(all="ignore"):
        dmin = np.nanmin(np.where(np.isfinite(dx), dx, np.inf), axis=1)
    di = np.where(np.isfinite(dmin), dmin / dbar, np.nan) if dbar > 0 else np.full(len(test_sites), np.nan)
    return pd.DataFrame({"DI": di, "AOA": np.asarray(di <= thr, dtype=bool), "threshold": thr},
                        index=pd.Index(test_sites, name="SITE_ID"))


# --------------------------------------------------------------------------- runs
def _load_run_parts(run) -> tuple[Any, pd.DataFrame, Path | None]:
    """(config, metrics, run_dir) from a run folder or a RunResult-like object."""
    if isinstance(run, (str, Path)):
        run_dir = Path(run)
        try:
            res = load_run(run_dir)
            return res.config, res.metrics, run_dir
        except ConfigError:
            # a folder with only config.json + metrics.parquet (exported run); a run folder
            # (manifest.json) whose config.json is missing or invalid is reported as such
            if (run_dir / "manifest.json").is_file() or not (run_dir / "metrics.parquet").exists():
                raise
        cfg_path = run_dir / "config.json"
        met_path = run_dir / "metrics.parquet"
        if not met_path.exists():
            raise DataError(met_path, "run folder has no metrics.parquet (run not finished?)")
        config = json.loads(cfg_path.read_text()) if cfg_path.exists() else {}
        return config, pd.read_parquet(met_path), run_dir
    config = getattr(run, "config", None)
    metrics = getattr(run, "metrics", None)
    if metrics is None:
        raise ConfigError("run must be a run folder or a RunResult with .config and .metrics")
    rd = getattr(run, "run_dir", None) or getattr(run, "path", None)
    return config, metrics, Path(rd) if rd else None


def sites_with_targets(dataset, targets: Sequence[str]) -> set[str] | None:
    """Sites with at least one finite value of any of ``targets`` (None: no target column).

    A pool site without any flux observation contributes no training row, so it is not part
    of the training set whose distance is measured.
    """
    cols = [t for t in targets if t in dataset.daily.columns]
    if not cols:
        return None
    has = dataset.daily[cols].notna().any(axis=1)
    return set(map(str, dataset.daily.loc[has, "SITE_ID"].unique()))


def run_distances(run, dataset, k: int = 5, weights: Mapping[str, float] | None = None,
                  importance: Mapping[str, float] | None = None,
                  descriptors: pd.DataFrame | None = None) -> pd.DataFrame:
    """Heterogeneity of every test site of a finished run with respect to its fold.

    Each test site's training set is exactly its fold's (:func:`fold_train_sites`) less the
    pool sites without any observation of the run's targets (they give no training row), and
    each fold's normalisation uses only that training set.

    Parameters
    ----------
    run : str, Path or RunResult
        Run folder (``config.json`` + ``metrics.parquet``) or the result of
        :func:`fluxcore.loso.load_run`.
    dataset : fluxcore.dataset.FluxDataset
        The run's dataset.
    k : int
        Neighbours of ``D_knn``.
    weights, importance : mapping, optional
        Group weights of D and importance weights of DI.
    descriptors : pandas.DataFrame, optional
        Precomputed :func:`site_descriptors` (computed from ``dataset`` when None).

    Returns
    -------
    pandas.DataFrame
        One row per test site: ``SITE_ID, D_mean, D_centroid, D_knn, DI, AOA, AOA_threshold,
        n_train, zone``.
    """
    config, metrics, _ = _load_run_parts(run)
    desc = site_descriptors(dataset) if descriptors is None else descriptors
    test_sites = sorted(map(str, pd.unique(metrics["SITE_ID"])))
    targets = _config_get(config, "targets", None) or sorted(map(str, pd.unique(metrics["target"])))
    with_data = sites_with_targets(dataset, targets)
    rows = []
    for s in test_sites:
        if s not in desc.index:
            continue
        train = [t for t in fold_train_sites(config, dataset, s)
                 if t in desc.index and t != s and (with_data is None or t in with_data)]
        row: dict[str, Any] = {"SITE_ID": s, "n_train": len(train), "zone": dataset.zone_of(s)}
        if len(train) < 2:
            row.update({c: np.nan for c in DISTANCE_COLUMNS})
            row.update({"AOA": False, "AOA_threshold": np.nan})
        else:
            d = site_distances(desc, train, s, weights).to_numpy(dtype=float)
            d = d[np.isfinite(d)]
            row["D_mean"] = float(d.mean()) if d.size else np.nan
            row["D_centroid"] = comprehensive_distance(desc, train, s, "centroid", weights=weights)
            row["D_knn"] = float(np.sort(d)[: min(k, d.size)].mean()) if d.size else np.nan
            di = dissimilarity_index(desc, train, s, importance=importance).iloc[0]
            row["DI"] = float(di["DI"])
            row["AOA"] = bool(di["AOA"])
            row["AOA_threshold"] = float(di["threshold"])
        rows.append(row)
    cols = ["SITE_ID", *DISTANCE_COLUMNS, "AOA", "AOA_threshold", "n_train", "zone"]
    out = pd.DataFrame(rows, columns=cols)
    out["AOA"] = out["AOA"].astype(bool)
    return out


# ------------------------------------------------------------------- distance versus skill
#: Largest sample for which correlation p-values are exact (all n! pairings enumerated).
EXACT_MAX_N = 10

#: Below this many sites a correlation is flagged as a small sample.
SMALL_SAMPLE_N = 8

#: Sign of the distance-R² relation reported by Gao et al. (2025): negative.
PAPER_SIGN = -1


@lru_cache(maxsize=EXACT_MAX_N + 1)
def _permutations(n: int) -> np.ndarray:
    """All n! permutations of ``range(n)`` as an ``(n!, n)`` int8 array (built by insertion)."""
    perms = np.zeros((1, 0), dtype=np.int8)
    for k in range(n):
        m = perms.shape[0]
        out = np.empty((m * (k + 1), k + 1), dtype=np.int8)
        for pos in range(k + 1):
            block = out[pos * m:(pos + 1) * m]
            block[:, :pos] = perms[:, :pos]
            block[:, pos] = k
            block[:, pos + 1:] = perms[:, pos:]
        perms = out
    perms.setflags(write=False)
    return perms


def exact_permutation_p(x: np.ndarray, y: np.ndarray, chunk: int = 400_000) -> float:
    """Exact two-sided permutation p-value of the Pearson correlation of ``x`` and ``y``.

    Every one of the n! pairings of ``y`` with ``x`` is equally likely under the null
    hypothesis of no association (exchangeability); the p-value is the share of pairings
    whose ``|r|`` is at least the observed ``|r|`` (the observed pairing included, so
    ``p >= 1/n!``). Applied to ranks it is the exact p-value of Spearman's rho (ties keep
    their mid-ranks). With n = 3 and a perfect rank correlation, p = 2/6 = 0.33.

    Parameters
    ----------
    x, y : numpy.ndarray
        Finite values, same length n (2 <= n <= :data:`EXACT_MAX_N`).
    chunk : int
        Pairings evaluated at a time (memory bound).

    Returns
    -------
    float
        p in (0, 1]; NaN when x or y is constant.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.size
    if n != y.size or n < 2:
        raise ConfigError(f"exact permutation p needs two samples of equal length >= 2, got {x.size} and {y.size}")
    if n > EXACT_MAX_N:
        raise ConfigError(f"exact permutation p enumerates n! pairings; n = {n} > {EXACT_MAX_N}")
    xc = x - x.mean()
    yc = y - y.mean()
    if not (np.any(xc) and np.any(yc)):
        return float("nan")
    obs = abs(float(xc @ yc))
    tol = 1e-9 * float(np.sqrt((xc @ xc) * (yc @ yc)))
    perms = _permutations(n)
    hits = 0
    for s0 in range(0, perms.shape[0], chunk):
        sums = yc[perms[s0:s0 + chunk]] @ xc
        hits += int(np.count_nonzero(np.abs(sums) >= obs - tol))
    return hits / perms.shape[0]


def correlation_test(x, y, method: str = "spearman", exact_max_n: int = EXACT_MAX_N) -> tuple[float, float, str]:
    """Correlation coefficient with an honest two-sided p-value.

    Parameters
    ----------
    x, y : array-like
        Paired values; pairs with a non-finite value are dropped.
    method : {"spearman", "pearson"}
    exact_max_n : int
        Up to this many pairs the p-value is exact (:func:`exact_permutation_p`); above it,
        scipy's asymptotic p-value (t distribution).

    Returns
    -------
    (statistic, p, p_method) : tuple
        ``p_method`` is ``"exact"`` or ``"asymptotic"``; ``(nan, nan, "n/a")`` with fewer than
        three pairs or a constant variable.
    """
    from scipy import stats

    if method not in ("spearman", "pearson"):
        raise ConfigError(f"unknown correlation {method!r}; use 'spearman' or 'pearson'")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = x.size
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan"), "n/a"
    if method == "spearman":
        x, y = stats.rankdata(x), stats.rankdata(y)
    r = float(np.clip(np.corrcoef(x, y)[0, 1], -1.0, 1.0))
    if n <= exact_max_n:
        return r, exact_permutation_p(x, y), "exact"
    return r, float(stats.pearsonr(x, y).pvalue), "asymptotic"


def _line_stats(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    from scipy import stats

    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    out: dict[str, Any] = {"n": n, "pearson_r": np.nan, "pearson_p": np.nan, "spearman_rho": np.nan,
                           "spearman_p": np.nan, "p_method": "n/a", "small_sample": n < SMALL_SAMPLE_N,
                           "slope": np.nan, "intercept": np.nan, "x_min": np.nan, "x_max": np.nan}
    if n:
        out.update(x_min=float(x.min()), x_max=float(x.max()))
    if n >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
        pr, pp, how = correlation_test(x, y, "pearson")
        sr, sp, _ = correlation_test(x, y, "spearman")
        lr = stats.linregress(x, y)
        out.update(pearson_r=pr, pearson_p=pp, spearman_rho=sr, spearman_p=sp, p_method=how,
                   slope=float(lr.slope), intercept=float(lr.intercept))
    elif n >= 2 and np.ptp(x) > 0:
        lr = np.polyfit(x, y, 1)
        out.update(slope=float(lr[0]), intercept=float(lr[1]))
    return out


# ------------------------------------------------------------------- words for people
def _sig(v: float, digits: int = 2) -> str:
    """``v`` rounded to ``digits`` significant digits (at least 2 decimals below 1), no sign."""
    v = abs(float(v))
    if v == 0:
        return "0"
    mag = int(np.floor(np.log10(v)))
    decimals = max(digits - 1 - mag, 0)
    if v < 1:
        decimals = max(decimals, 2)
    return f"{v:.{decimals}f}"


def format_p(p: float, p_method: str = "asymptotic") -> str:
    """A p-value as a person reads it: ``"exact p = 0.33"``, ``"p < 0.001"``, ``"p n/a"``."""
    if p is None or not np.isfinite(p):
        return "p n/a"
    tag = "exact p" if p_method == "exact" else "p"
    if p < 0.001:
        return f"{tag} < 0.001"
    return f"{tag} = {p:.2g}" if p < 0.1 else f"{tag} = {p:.2f}"


def format_correlation(row: Mapping[str, Any], method: str = "spearman") -> str:
    """One correlation of a :func:`distance_skill` row in words and numbers.

    ``"ρ = -1.00 (exact p = 0.33, n = 3, small sample)"``; ``"n/a (1 site)"`` when there
    are fewer than three sites (no correlation is defined).
    """
    n = int(row.get("n", 0) or 0)
    key, sym = ("spearman_rho", "ρ") if method == "spearman" else ("pearson_r", "r")
    val = row.get(key, np.nan)
    if n < 3 or val is None or not np.isfinite(val):
        return f"n/a ({n} site{'s' if n != 1 else ''})"
    p = row.get("spearman_p" if method == "spearman" else "pearson_p", np.nan)
    small = ", small sample" if n < SMALL_SAMPLE_N else ""
    return f"{sym} = {val:+.2f} ({format_p(p, str(row.get('p_method', 'asymptotic')))}, n = {n}{small})"


def fit_formula(intercept: float, slope: float, distance: str = "D", metric: str = "R2") -> str:
    """The fitted line as a person reads it.

    ``fit_formula(0.712, -0.268, "D_mean")`` gives ``"R² ≈ 0.71 − 0.27 × D_mean (per unit of
    distance)"``: two significant digits, the sign written once (``−`` for a negative slope).
    """
    if intercept is None or slope is None or not (np.isfinite(intercept) and np.isfinite(slope)):
        return "no line (fewer than two sites with distinct distances)"
    name = {"R2": "R²", "r2": "r²"}.get(metric, metric)
    a = ("−" if intercept < 0 else "") + _sig(intercept)
    op = "−" if slope < 0 else "+"
    return f"{name} ≈ {a} {op} {_sig(slope)} × {distance} (per unit of distance)"


def _strength(r: float) -> str:
    a = abs(r)
    return "no" if a < 0.1 else "a weak" if a < 0.3 else "a moderate" if a < 0.5 else "a strong"


def paper_comparison_sentence(row: Mapping[str, Any], alpha: float = 0.05) -> str:
    """One plain sentence comparing an observed distance-skill relation with the paper's.

    Gao et al. (2025) report a significant *negative* correlation: towers unlike their
    training towers are predicted worse. The sentence uses Spearman's rho (robust to a few
    very negative R²), names the zone, the strength, the significance and whether the sign
    agrees with the paper.

    Parameters
    ----------
    row : mapping
        A row of :func:`distance_skill` (``zone, n, spearman_rho, spearman_p, p_method``).
    alpha : float
        Significance level.
    """
    zone = row.get("zone", "all")
    where = "Across all zones" if zone in (None, "all") else f"In the {zone} zone"
    n = int(row.get("n", 0) or 0)
    rho = row.get("spearman_rho", np.nan)
    if n < 3 or rho is None or not np.isfinite(rho):
        return (f"{where} there are {n} site{'s' if n != 1 else ''} with scores: too few to compare with "
                "the paper's negative relation.")
    p = float(row.get("spearman_p", np.nan))
    sig = np.isfinite(p) and p < alpha
    direction = "falls" if rho < 0 else "rises"
    small = " (a small sample: read with care)" if n < SMALL_SAMPLE_N else ""
    stat = f"Spearman ρ = {rho:+.2f}, {format_p(p, str(row.get('p_method', 'asymptotic')))}, n = {n}"
    if abs(rho) < 0.1:
        verdict = "no relation, where the paper found a negative one"
        return f"{where}, skill shows {verdict} ({stat}){small}."
    agree = ("the same sign as the paper's negative relation" if np.sign(rho) == PAPER_SIGN
             else "the opposite sign to the paper's negative relation")
    sig_word = "significant" if sig else "not significant"
    return (f"{where}, skill {direction} with distance: {_strength(rho)}, {sig_word} relation ({stat}), "
            f"{agree}{small}.")


def readable_table(table: pd.DataFrame, distance: str | None = None) -> pd.DataFrame:
    """A :func:`distance_skill` table in words for a page or report (no NaN, no "None").

    Returns
    -------
    pandas.DataFrame
        The grouping columns present (``learner, target``) and ``zone, n, Spearman,
        Pearson, fit, compared with the paper`` as strings (:func:`format_correlation`,
        :func:`fit_formula`, :func:`paper_comparison_sentence`).
    """
    recs = table.to_dict("records")
    keep = [c for c in ("learner", "target") if c in table.columns]
    out = table[keep + ["zone", "n"]].copy()
    out["n"] = out["n"].astype(int)
    out["Spearman"] = [format_correlation(r, "spearman") for r in recs]
    out["Pearson"] = [format_correlation(r, "pearson") for r in recs]
    out["fit"] = [fit_formula(r["intercept"], r["slope"], distance or str(r.get("distance", "D")),
                              str(r.get("metric", "R2"))) if r["n"] >= 3 else "n/a" for r in recs]
    out["compared with the paper"] = [paper_comparison_sentence(r) for r in recs]
    return out.reset_index(drop=True)


def relation_sentences(table: pd.DataFrame, learner: str | None = None, target: str | None = None,
                       alpha: float = 0.05) -> list[str]:
    """:func:`paper_comparison_sentence` for each zone of a :func:`distance_skill` table."""
    t = table
    if learner is not None and "learner" in t.columns:
        t = t[t["learner"] == learner]
    if target is not None and "target" in t.columns:
        t = t[t["target"] == target]
    return [paper_comparison_sentence(r, alpha) for r in t.to_dict("records")]


def distance_skill(metrics: pd.DataFrame, distances: pd.DataFrame,
                   by: Sequence[str] = ("learner", "target"), distance: str = "D_mean",
                   metric: str = "R2") -> pd.DataFrame:
    """Correlation and linear fit between site distance and site skill (the paper's figure).

    For every group of ``by`` and every aridity zone (plus ``zone="all"``): number of sites,
    Pearson r and two-sided p-value, Spearman rho and p-value, and the least-squares line
    ``metric = intercept + slope * distance``. Statistics need at least three sites with
    finite values (NaN otherwise). Up to :data:`EXACT_MAX_N` sites the p-values are exact
    permutation p-values (:func:`correlation_test`), above it asymptotic; ``p_method`` says
    which, and ``small_sample`` flags fewer than :data:`SMALL_SAMPLE_N` sites.

    Parameters
    ----------
    metrics : pandas.DataFrame
        ``metrics.parquet`` of a run (``SITE_ID, learner, target, zone, R2, ...``).
    distances : pandas.DataFrame
        :func:`run_distances` output (``SITE_ID`` + distance columns).
    by : sequence of str
        Grouping columns of ``metrics``.
    distance : str
        Distance column (``D_mean``, ``D_centroid``, ``D_knn``, ``DI``).
    metric : str
        Skill column (``R2``, ``r2``, ``RMSE``, ...).

    Returns
    -------
    pandas.DataFrame
        ``*by, zone, distance, metric, n, pearson_r, pearson_p, spearman_rho, spearman_p,
        p_method, small_sample, slope, intercept, x_min, x_max`` (``x_min``/``x_max``: range of
        the fitted distances).
    """
    by = list(by)
    for c in [*by, metric, "SITE_ID"]:
        if c not in metrics.columns:
            raise ConfigError(f"metrics table has no column {c!r}")
    if distance not in distances.columns:
        raise ConfigError(f"distance table has no column {distance!r}")
    dist = distances[["SITE_ID", distance]].drop_duplicates("SITE_ID")
    m = metrics.drop(columns=[distance], errors="ignore").merge(dist, on="SITE_ID", how="inner")
    if "zone" not in m.columns:
        m = m.assign(zone=None)
    rows = []
    groups = m.groupby(by, sort=True, dropna=False) if by else [((), m)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        zone_items = [("all", g)] + [(z, gz) for z, gz in g.groupby("zone", sort=False, dropna=True)]
        for zone, gz in zone_items:
            st = _line_stats(gz[distance].to_numpy(dtype=float), gz[metric].to_numpy(dtype=float))
            rows.append({**dict(zip(by, key, strict=True)), "zone": zone, "distance": distance, "metric": metric, **st})
    out = pd.DataFrame(rows)
    if len(out):
        from .variables import ZONES

        order = {z: i for i, z in enumerate(("all", *ZONES))}
        out = out.assign(_o=out["zone"].map(order).fillna(99)).sort_values([*by, "_o"]).drop(columns="_o")
    return out.reset_index(drop=True)


__all__ = [
    "GROUPS", "DISTANCE_COLUMNS", "site_descriptors", "descriptor_group", "descriptor_groups",
    "training_scaler", "standardize", "pairwise_distances", "site_distances",
    "comprehensive_distance", "aoa_threshold", "dissimilarity_index", "fold_train_sites",
    "run_distances", "distance_skill", "sites_with_targets", "EXACT_MAX_N", "SMALL_SAMPLE_N",
    "PAPER_SIGN", "exact_permutation_p", "correlation_test", "format_p", "format_correlation",
    "fit_formula", "paper_comparison_sentence", "relation_sentences", "readable_table",
]

"""Skill scores of predicted fluxes and their per-site / per-zone summaries.

All scores compare observed values :math:`o_i` with predicted values :math:`p_i` over the
days where both are finite (NaN days are left out; ``n`` says how many were used).

* coefficient of determination (Nash-Sutcliffe efficiency form)
  :math:`R^2 = 1 - \\sum_i (o_i - p_i)^2 / \\sum_i (o_i - \\bar o)^2`; it can be negative
  (worse than the mean of the observations) and is what Gao et al. (2025) report as R²;
* squared Pearson correlation :math:`r^2 = \\mathrm{cov}(o, p)^2 / (\\mathrm{var}(o)\\,\\mathrm{var}(p))`,
  in [0, 1]; it ignores bias and scale errors, so :math:`r^2 \\ge R^2` is common;
* root-mean-square error :math:`RMSE = \\sqrt{\\frac{1}{n}\\sum_i (p_i - o_i)^2}`;
* mean absolute error :math:`MAE = \\frac{1}{n}\\sum_i |p_i - o_i|`;
* bias :math:`\\frac{1}{n}\\sum_i (p_i - o_i)` (positive = overestimation).

Units of RMSE, MAE and bias are those of the flux [gC m-2 d-1].

References
----------
Nash, J. E., Sutcliffe, J. V. (1970). River flow forecasting through conceptual models
part I. Journal of Hydrology 10(3), 282-290. doi:10.1016/0022-1694(70)90255-6
Legates, D. R., McCabe, G. J. (1999). Evaluating the use of "goodness-of-fit" measures in
hydrologic and hydroclimatic model validation. Water Resources Research 35(1), 233-241.
doi:10.1029/1998WR900018
Gao et al. (2025). Ecosystem carbon flux inversion method combining LSTM and fuzzy
mathematics (Table 3: mean and variance of per-site RMSE by aridity zone).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from .variables import ZONES

#: Columns of the per-site metrics table.
METRIC_COLUMNS = ["SITE_ID", "learner", "target", "zone", "R2", "r2", "RMSE", "MAE", "bias", "n"]
#: Columns of the zone summary (paper Table 3, long form).
ZONE_SUMMARY_COLUMNS = ["target", "zone", "learner", "rmse_mean", "rmse_var", "n_sites"]
#: Degrees of freedom used for the variance of per-site RMSE in the zone summary
#: (sample variance, ``ddof=1``; a zone with a single site has NaN variance).
ZONE_VAR_DDOF = 1


def _pair(observed, predicted) -> tuple[np.ndarray, np.ndarray]:
    o = np.asarray(observed, dtype=float).ravel()
    p = np.asarray(predicted, dtype=float).ravel()
    if o.shape != p.shape:
        raise ValueError(f"observed and predicted differ in length: {o.size} vs {p.size}")
    ok = np.isfinite(o) & np.isfinite(p)
    return o[ok], p[ok]


def r2_score(observed, predicted) -> float:
    """Coefficient of determination :math:`R^2 = 1 - SSE/SST` [-].

    Parameters
    ----------
    observed, predicted : array_like
        Same length; pairs with a NaN are ignored.

    Returns
    -------
    float
        R² (can be negative); NaN with fewer than 2 pairs or constant observations.

    References
    ----------
    Nash and Sutcliffe (1970), doi:10.1016/0022-1694(70)90255-6
    """
    o, p = _pair(observed, predicted)
    if o.size < 2:
        return float("nan")
    sst = float(np.sum((o - o.mean()) ** 2))
    if sst == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((o - p) ** 2)) / sst


def pearson_r2(observed, predicted) -> float:
    """Squared Pearson correlation coefficient :math:`r^2` [-].

    Returns NaN with fewer than 2 pairs or when either series is constant.

    References
    ----------
    Legates and McCabe (1999), doi:10.1029/1998WR900018
    """
    o, p = _pair(observed, predicted)
    if o.size < 2:
        return float("nan")
    do, dp = o - o.mean(), p - p.mean()
    den = float(np.sum(do**2) * np.sum(dp**2))
    if den == 0.0:
        return float("nan")
    return float(np.sum(do * dp)) ** 2 / den


def rmse(observed, predicted) -> float:
    """Root-mean-square error [unit of the flux]; NaN when no pair is finite."""
    o, p = _pair(observed, predicted)
    return float(np.sqrt(np.mean((p - o) ** 2))) if o.size else float("nan")


def mae(observed, predicted) -> float:
    """Mean absolute error [unit of the flux]; NaN when no pair is finite."""
    o, p = _pair(observed, predicted)
    return float(np.mean(np.abs(p - o))) if o.size else float("nan")


def bias(observed, predicted) -> float:
    """Mean error ``mean(predicted - observed)`` [unit of the flux]; positive = overestimate."""
    o, p = _pair(observed, predicted)
    return float(np.mean(p - o)) if o.size else float("nan")


def scores(observed, predicted) -> dict[str, float]:
    """All scores at once: ``{"R2", "r2", "RMSE", "MAE", "bias", "n"}``."""
    o, p = _pair(observed, predicted)
    return {
        "R2": r2_score(o, p),
        "r2": pearson_r2(o, p),
        "RMSE": rmse(o, p),
        "MAE": mae(o, p),
        "bias": bias(o, p),
        "n": int(o.size),
    }


def site_metrics(predictions: pd.DataFrame, zones: pd.Series | dict | None = None) -> pd.DataFrame:
    """Scores per (site, learner, target) from a long predictions table.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Columns ``SITE_ID, learner, target, observed, predicted`` (``DATE`` optional).
    zones : pandas.Series or dict, optional
        Aridity zone per ``SITE_ID``; missing sites get ``None``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`METRIC_COLUMNS`, one row per (site, learner, target), sorted.
    """
    rows = []
    if len(predictions):
        grouped = predictions.groupby(["SITE_ID", "learner", "target"], sort=True, observed=True)
        for (site, learner, target), g in grouped:
            s = scores(g["observed"].to_numpy(), g["predicted"].to_numpy())
            rows.append({"SITE_ID": str(site), "learner": str(learner), "target": str(target), **s})
    out = pd.DataFrame(rows, columns=[c for c in METRIC_COLUMNS if c != "zone"])
    zmap = dict(zones) if zones is not None else {}
    out.insert(3, "zone", [zmap.get(s) for s in out["SITE_ID"]])
    out["n"] = out["n"].astype("int64")
    return out[METRIC_COLUMNS]


def zone_summary(metrics: pd.DataFrame, ddof: int = ZONE_VAR_DDOF) -> pd.DataFrame:
    """Mean and variance of per-site RMSE by target, aridity zone and learner (paper Table 3).

    Parameters
    ----------
    metrics : pandas.DataFrame
        Output of :func:`site_metrics`.
    ddof : int
        Delta degrees of freedom of the variance (default 1: sample variance).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ZONE_SUMMARY_COLUMNS`; zones in the order arid..humid, then an
        ``all`` row per target and learner over every site. Sites with NaN RMSE are skipped.
    """
    rows = []
    m = metrics[np.isfinite(metrics["RMSE"].astype(float))] if len(metrics) else metrics
    targets = list(dict.fromkeys(m["target"])) if len(m) else []
    learners = list(dict.fromkeys(m["learner"])) if len(m) else []
    present = [z for z in ZONES if z in set(m["zone"].dropna())] if len(m) else []
    for target in targets:
        for zone in present + ["all"]:
            for learner in learners:
                sel = (m["target"] == target) & (m["learner"] == learner)
                if zone != "all":
                    sel &= m["zone"] == zone
                r = m.loc[sel, "RMSE"].astype(float).to_numpy()
                if r.size == 0:
                    continue
                var = float(np.var(r, ddof=ddof)) if r.size > ddof else float("nan")
                rows.append({"target": target, "zone": zone, "learner": learner,
                             "rmse_mean": float(r.mean()), "rmse_var": var, "n_sites": int(r.size)})
    return pd.DataFrame(rows, columns=ZONE_SUMMARY_COLUMNS)


def table3(zone_summary_df: pd.DataFrame, target: str) -> pd.DataFrame:
    """Wide Table-3 view for one target: rows = zones, columns = ``(learner, mean|var)``."""
    z = zone_summary_df[zone_summary_df["target"] == target]
    if z.empty:
        return pd.DataFrame()
    wide = z.pivot(index="zone", columns="learner", values=["rmse_mean", "rmse_var"])
    wide = wide.swaplevel(0, 1, axis=1).sort_index(axis=1, level=0)
    order = [zz for zz in list(ZONES) + ["all"] if zz in wide.index]
    return wide.loc[order]


#: Columns of :func:`skill_summary`.
SKILL_COLUMNS = ["n_sites", "R2_median", "R2_mean", "r2_median", "r2_mean", "RMSE_mean"]


def skill_summary(metrics: pd.DataFrame, by: Sequence[str] = ("learner", "target"),
                  sites: Iterable[str] | None = None) -> pd.DataFrame:
    """Per-site skill summarised over sites: the one definition used by every report.

    Parameters
    ----------
    metrics : pandas.DataFrame
        Per-site scores (:func:`site_metrics`: ``SITE_ID, learner, target, R2, r2, RMSE``...).
    by : sequence of str
        Grouping columns (default one row per learner and target); ``()`` for one row.
    sites : iterable of str, optional
        Only these sites (e.g. the US sites, or the sites common with a published benchmark).

    Returns
    -------
    pandas.DataFrame
        ``*by, n_sites, R2_median, R2_mean, r2_median, r2_mean, RMSE_mean``: medians and means
        over sites of R² (1 - SSE/SST) and r² (squared Pearson correlation), mean RMSE
        [gC m-2 d-1]; ``n_sites`` counts sites with a finite R². Groups in first-seen order.
        A missing ``r2`` or ``RMSE`` column gives NaN in its summaries.
    """
    m = metrics
    if sites is not None:
        m = m[m["SITE_ID"].astype(str).isin(set(map(str, sites)))]
    by = list(by)

    def block(g: pd.DataFrame) -> dict:
        # a column a table lacks (published scores may have R2 only) summarises to NaN
        r2, pr2, rm = (g[c].astype(float) if c in g else pd.Series(np.nan, index=g.index) for c in ("R2", "r2", "RMSE"))
        return {"n_sites": int(r2.notna().sum()), "R2_median": float(r2.median()), "R2_mean": float(r2.mean()),
                "r2_median": float(pr2.median()), "r2_mean": float(pr2.mean()), "RMSE_mean": float(rm.mean())}

    if not by:
        return pd.DataFrame([block(m)], columns=SKILL_COLUMNS)
    rows = [{**dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)), **block(g)}
            for key, g in m.groupby(by, sort=False, observed=True)]
    return pd.DataFrame(rows, columns=[*by, *SKILL_COLUMNS])

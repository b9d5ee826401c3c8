"""Monthly leaf area index (LAI) brought to daily values.

The prepared FLUXNET2015 folder has LAI only as monthly MODIS means (``monthly_rs.csv``),
while the learners work on days. :func:`monthly_to_daily` turns one monthly series per site
into a daily series with the method below (described by :func:`method_text` in
``dataset.meta["lai_method"]``).

Method
------
1. Each monthly mean is placed at the middle of its month (day ``(n_days + 1) / 2``, i.e.
   the 16th at noon for a 31-day month, the 15th for a 30-day month).
2. Days between two consecutive mid-month anchors are linearly interpolated, per site, when
   the two anchors are at most ``max_gap_days`` apart (default 62 days: a single missing
   month is bridged, two or more missing months leave a gap of NaN, because MODIS LAI can
   change a lot in two months, e.g. green-up).
3. Before the first and after the last valid monthly value of each site (and at the edges of
   an un-bridged gap), the value is held constant for at most half a month, i.e. up to the
   first/last day of that value's own month. Nothing further is extrapolated.
4. Optionally (``climatology_fill=True``, used by the FLUXNET2015 loader) the days still
   uncovered, e.g. tower years before MODIS (2000), get the site's *mean seasonal cycle*:
   the mean of each calendar month over the site's available years, placed at mid-month and
   interpolated linearly and cyclically over the year (:func:`climatology_by_day`). It uses
   only the remote-sensing series of the same site, never fluxes.

Why: linear interpolation between mid-month means is continuous (no step at month
boundaries that a learner could mistake for a signal), uses no information from more than
one month away, is local (a bad month only affects its neighbours) and, unlike splines,
never overshoots below 0. It approximately preserves monthly means: the mean of the
interpolated days of month *m* differs from the monthly value by about
``(v[m-1] - 2 v[m] + v[m+1]) / 8``, i.e. it flattens peaks and troughs by one eighth of the
local curvature; for a smooth seasonal cycle that is a few percent (tested in
``tests/test_sources.py``). A mean-preserving scheme would need iteration and can go
negative, which LAI cannot.

Reference for MODIS LAI: Myneni, R. et al. (2015) MOD15A2H MODIS/Terra Leaf Area Index/FPAR
8-Day L4 Global 500 m SIN Grid V006. NASA EOSDIS LP DAAC. doi:10.5067/MODIS/MOD15A2H.006
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def method_text(variable: str = "MODIS LAI", climatology_fill: bool = False) -> str:
    """Human-readable description of :func:`monthly_to_daily`, for ``dataset.meta``.

    Parameters
    ----------
    variable : str
        What was interpolated, e.g. ``"MODIS LAI"`` or ``"P_F"``.
    climatology_fill : bool
        Whether uncovered days got the site's mean seasonal cycle (step 4).
    """
    text = (f"monthly {variable} placed at mid-month and linearly interpolated per site between "
            "consecutive monthly values at most 62 days apart; held constant to the edges of the "
            "first/last (or gap-bounding) month, never extrapolated further (fluxcore.lai)")
    if climatology_fill:
        text += ("; days still uncovered (e.g. before MODIS, 2000) get the site's mean seasonal cycle "
                 "(calendar-month means over its available years, interpolated cyclically between "
                 "mid-months)")
    return text

def month_start(year_month: pd.Series) -> pd.Series:
    """First day of each month from ``YYYYMM`` integers (or strings).

    Values that are missing, not whole ``YYYYMM`` numbers, or not a month of the years
    1678-2261 (the days datetime64[ns] holds) give NaT: such a month covers no day of a daily
    record.
    """
    ym = pd.to_numeric(pd.Series(year_month), errors="coerce").to_numpy(dtype=float)
    year = np.floor(ym / 100.0)
    month = ym - 100.0 * year
    with np.errstate(invalid="ignore"):
        ok = (np.isfinite(ym) & (ym == np.floor(ym)) & (month >= 1) & (month <= 12)
              & (year >= 1678) & (year <= 2261))
    out = np.full(ym.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    months = ((year[ok] - 1970.0) * 12.0 + month[ok] - 1.0).astype(np.int64)
    out[ok] = months.astype("datetime64[M]").astype("datetime64[ns]")
    return pd.Series(out, index=getattr(year_month, "index", None))


#: Day of year of each calendar month's middle in a 365-day year.
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)
_MID_DOY = np.cumsum(_MONTH_DAYS) - _MONTH_DAYS / 2.0


def climatology_by_day(month_means: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Mean seasonal cycle at given days from 12 calendar-month means.

    Parameters
    ----------
    month_means : array_like of float, shape (12,)
        Mean of January .. December over the available years (NaN for a month never seen).
    doy : array_like of int
        Day of year (1-366) of the days wanted.

    Returns
    -------
    numpy.ndarray
        Values interpolated linearly between mid-month anchors, cyclically over a 365-day year
        (December to January wraps); NaN when fewer than 6 months are known.
    """
    mm = np.asarray(month_means, dtype=float)
    ok = np.isfinite(mm)
    d = np.minimum(np.asarray(doy, dtype=float), 365.0)
    if ok.sum() < 6:
        return np.full(d.shape, np.nan)
    return np.interp(d, _MID_DOY[ok], mm[ok], period=365.0)


def monthly_to_daily(
    monthly: pd.DataFrame,
    days: pd.DataFrame,
    value: str = "LAI",
    *,
    max_gap_days: float = 62.0,
    climatology_fill: bool = False,
) -> pd.Series:
    """Daily values of a monthly-mean variable by mid-month linear interpolation.

    Parameters
    ----------
    monthly : pandas.DataFrame
        Columns ``SITE_ID``, ``YEAR_MONTH`` (``YYYYMM``) and ``value`` (monthly mean, e.g.
        LAI [m2 m-2]). NaN values are skipped (they become gaps, see module docstring).
    days : pandas.DataFrame
        Columns ``SITE_ID``, ``DATE`` (datetime64) of the days wanted.
    value : str, optional
        Name of the monthly column (default ``"LAI"``).
    max_gap_days : float, optional
        Largest distance [d] between two mid-month anchors that is bridged by interpolation
        (default 62: one missing month is bridged).
    climatology_fill : bool, optional
        Fill days still uncovered with the site's mean seasonal cycle (step 4 of the module
        docstring). Default False.

    Returns
    -------
    pandas.Series
        Daily values aligned with ``days`` (same index), NaN where not covered.
    """
    out = np.full(len(days), np.nan)
    if len(days) == 0 or len(monthly) == 0:
        return pd.Series(out, index=days.index, name=value)
    m = pd.DataFrame({
        "SITE_ID": monthly["SITE_ID"].astype(str).to_numpy(),
        "START": month_start(monthly["YEAR_MONTH"]).to_numpy(),
        "V": pd.to_numeric(monthly[value], errors="coerce").to_numpy(dtype=float),
    })
    m = m.dropna(subset=["START", "V"])
    m = m.drop_duplicates(["SITE_ID", "START"], keep="first")
    if m.empty:
        return pd.Series(out, index=days.index, name=value)
    ndays = m["START"].dt.days_in_month.to_numpy(dtype=float)
    day_ns = 86400e9
    start = m["START"].to_numpy(dtype="datetime64[ns]").astype("int64") / day_ns  # days since epoch
    m = m.assign(MID=start + (ndays - 1.0) / 2.0, LO=start, HI=start + ndays - 1.0)
    m = m.sort_values(["SITE_ID", "MID"])

    codes, uniques = pd.factorize(days["SITE_ID"].astype(str))
    rows_of = dict(zip(uniques, np.split(np.argsort(codes, kind="stable"),
                                        np.cumsum(np.bincount(codes, minlength=len(uniques)))[:-1]),
                       strict=True))
    t = days["DATE"].to_numpy(dtype="datetime64[ns]").astype("int64") / day_ns
    t = np.floor(t)
    for sid, g in m.groupby("SITE_ID", sort=False):
        sel = rows_of.get(sid)
        if sel is None or sel.size == 0:
            continue
        mid, v = g["MID"].to_numpy(), g["V"].to_numpy()
        lo, hi = g["LO"].to_numpy(), g["HI"].to_numpy()
        tt = t[sel]
        res = np.full(tt.shape, np.nan)
        # 2. interpolation between consecutive anchors not too far apart
        if mid.size >= 2:
            k = np.searchsorted(mid, tt, side="right") - 1  # anchor at or before tt
            inside = (k >= 0) & (k < mid.size - 1)
            kk = np.clip(k, 0, mid.size - 2)
            gap = mid[kk + 1] - mid[kk]
            ok = inside & (gap <= max_gap_days)
            w = (tt - mid[kk]) / gap
            res = np.where(ok, v[kk] + w * (v[kk + 1] - v[kk]), res)
        # exact anchors (also single-anchor sites)
        # 3. hold constant within each value's own month where still uncovered
        j = np.searchsorted(lo, tt, side="right") - 1
        jj = np.clip(j, 0, lo.size - 1)
        own = (j >= 0) & (tt >= lo[jj]) & (tt <= hi[jj])
        res = np.where(np.isnan(res) & own, v[jj], res)
        if climatology_fill and np.isnan(res).any():
            month = pd.DatetimeIndex(g["START"].to_numpy()).month.to_numpy()
            means = np.array([v[month == k].mean() if (month == k).any() else np.nan
                              for k in range(1, 13)])
            gap = np.isnan(res)
            doy = pd.DatetimeIndex((tt[gap] * day_ns).astype("int64")).day_of_year.to_numpy()
            res[gap] = climatology_by_day(means, doy)
        out[sel] = res
    return pd.Series(out, index=days.index, name=value)


__all__ = ["climatology_by_day", "method_text", "month_start", "monthly_to_daily"]

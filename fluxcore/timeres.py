"""Time resolution and grid cells: monthly aggregation, monthly drivers, cell datasets.

A :class:`~fluxcore.dataset.FluxDataset` has a time step, ``dataset.time_step``:
``"daily"`` (one row per site-day, the default) or ``"monthly"`` (one row per site-month,
``DATE`` = the first day of the month). A "site" may be a tower or a grid cell.

Monthly aggregation (:func:`to_monthly`)
----------------------------------------
Every numeric column of the daily table is aggregated per site and calendar month:

* **sums** for the fluxes ``GPP, ER, NEE`` [gC m-2 month-1] and precipitation ``P``
  [mm month-1]: the canonical variables whose daily unit is a rate per day
  (``gC m-2 d-1``, ``mm d-1``), i.e. amounts that add up over days;
* **means** for everything else: the state variables ``TA`` [degC], ``TMIN``, ``TMAX``
  [degC] (the monthly mean of the daily minimum / maximum, as in gridded climate products
  such as CRU TS, not the month's extreme), ``VPD`` [hPa], ``SW_IN`` [W m-2], ``WS``
  [m s-1], ``LAI`` [m2 m-2], ``EVI`` [-], the monthly-mean rates ``P_MONTHLY`` [mm d-1]
  and ``WS_MONTHLY`` [m s-1], the QC helper columns and any other numeric column.

:data:`MONTHLY_AGGREGATION` holds the rule of each canonical variable and
:func:`aggregation_of` the rule of any column; :func:`unit_of` gives the monthly unit.

**Valid fraction.** For each aggregated column ``VAR`` the monthly table has
``VAR_FRAC_VALID`` [-]: the number of days of the month with a finite value divided by the
number of calendar days of the month (28-31; 29 in February of leap years). A month with
fewer rows than calendar days (the first and last month of a record, gaps) counts the absent
days as not valid. A month whose fraction is below ``min_valid_fraction`` gets NaN (the
fraction column keeps its value, so users see why).

**Sums from incomplete months** are ``mean of the valid days x days in the month``, not the
plain sum of the valid days. Reason: quality control removes about 30 % of flux days at the
FLUXNET2015 towers (``docs/data.md``, section 4); a plain sum would then be biased low by the
missing fraction and a month with 20 valid days would look a third smaller than the same
month with 30. Scaling assumes that the missing days are like the valid ones; the
``min_valid_fraction`` threshold (default 0.5) limits how far that assumption is stretched.
Months with all days valid are the plain sum.

**Which months.** For each site every calendar month from the month of its first row to the
month of its last row gets a row (months without any row inside that span get NaN values and
fraction 0), so monthly sequences stay continuous, as daily ones do.

Monthly drivers (``monthly_rs.csv``)
------------------------------------
The prepared FLUXNET2015 loader already merges ``monthly_rs.csv`` into the daily table
(``LAI``, ``EVI``, ``P_MONTHLY``, ``WS_MONTHLY`` interpolated to days by
:func:`fluxcore.lai.monthly_to_daily`), so :func:`to_monthly` aggregates them with the rest.
Averaging the interpolated days does not give the original monthly value back exactly (it
differs by an eighth of the local curvature, ``docs/data.md`` section 3), and the file also
holds monthly tower precipitation and wind and ERA-Interim drivers that the daily table
lacks. ``to_monthly(..., monthly_drivers="…/monthly_rs.csv")`` therefore puts the file's own
monthly values in (:func:`read_monthly_drivers`): ``LAI``, ``EVI`` (replacing the aggregated
values where the file has a value), ``P`` [mm month-1] and ``WS`` [m s-1] from the tower's
``P_F``, ``WS_F`` (then ``P_MONTHLY`` and ``WS_MONTHLY``, their interpolated copies, are
dropped), and ``TA_ERA, SW_IN_ERA, VPD_ERA, P_ERA, WS_ERA`` (extra columns; they are not
canonical variables, so features do not use them).

Grid cells (:func:`cells_dataset`)
----------------------------------
A dataset of cells has a catalogue with ``SITE_ID, LAT, LON`` only (the other catalogue
columns are NaN: no land cover, no aridity zone, no static soil variables) and drivers,
usually without targets. :func:`fluxcore.features.build_features` with ``targets=[]`` builds
its features; a learner fitted on tower features predicts it with the same
``predict(X, sites=, dates=)`` when the feature columns match (choose features both datasets
have, e.g. ``igbp=False, site_attributes=()``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .dataset import TIME_STEPS, FluxDataset, make_sites_frame
from .errors import ConfigError, DataError
from .features import FeatureConfig
from .lai import month_start
from .validation import blank_ids, not_numbers
from .variables import STATIC, VARIABLES

#: Suffix of the valid-fraction columns of a monthly table (``GPP_FRAC_VALID``).
FRAC_SUFFIX = "_FRAC_VALID"

#: Monthly aggregation rule of each canonical time-varying variable: ``"sum"`` for amounts
#: per day (fluxes, precipitation), ``"mean"`` for states and monthly-mean rates.
MONTHLY_AGGREGATION: dict[str, str] = {
    name: ("sum" if v.unit.endswith(" d-1") and not name.endswith("_MONTHLY") else "mean")
    for name, v in VARIABLES.items() if name not in STATIC
}

#: ``monthly_rs.csv`` column -> (fluxcore column, multiply by days in month?)
MONTHLY_RS_COLUMNS: dict[str, tuple[str, bool]] = {
    "LAI": ("LAI", False), "EVI": ("EVI", False),
    "P_F": ("P", True), "WS_F": ("WS", False),
    "TA_ERA": ("TA_ERA", False), "SW_IN_ERA": ("SW_IN_ERA", False), "VPD_ERA": ("VPD_ERA", False),
    "P_ERA": ("P_ERA", True), "WS_ERA": ("WS_ERA", False),
}

_MISSING = -9990.0  # FLUXNET -9999 (and anything below -9990) means missing


def aggregation_of(column: str) -> str:
    """Monthly aggregation rule of a column: ``"sum"`` or ``"mean"``.

    Canonical variables follow :data:`MONTHLY_AGGREGATION`; ``P_ERA`` is a sum; any other
    column (QC fractions, extra drivers) is averaged.
    """
    if column == "P_ERA":
        return "sum"
    return MONTHLY_AGGREGATION.get(column, "mean")


def unit_of(name: str, time_step: str = "daily") -> str:
    """Unit of a canonical variable at a time step.

    ``unit_of("GPP", "monthly") -> "gC m-2 month-1"``, ``unit_of("P", "monthly") ->
    "mm month-1"``, ``unit_of("TA", "monthly") -> "degC"``.

    Raises
    ------
    ConfigError
        Unknown time step; KeyError for an unknown variable.
    """
    _check_step(time_step)
    unit = VARIABLES[name].unit
    if time_step == "monthly" and aggregation_of(name) == "sum":
        return unit[: -len("d-1")] + "month-1"
    return unit


def _check_step(time_step: str) -> None:
    if time_step not in TIME_STEPS:
        raise ConfigError(f"unknown time_step {time_step!r}; choose from {list(TIME_STEPS)}")


# ------------------------------------------------------------------ aggregation
def to_monthly(dataset: FluxDataset, min_valid_fraction: float = 0.5, *,
               monthly_drivers: str | Path | pd.DataFrame | None = None) -> FluxDataset:
    """Aggregate a daily dataset to calendar months.

    Parameters
    ----------
    dataset : FluxDataset
        A daily dataset (``time_step == "daily"``).
    min_valid_fraction : float, default 0.5
        Smallest fraction [-] of a month's calendar days with a valid value for the month to
        get a value (0 to 1; 0 keeps every month with at least one valid day, 1 needs every
        day).
    monthly_drivers : path or DataFrame, optional
        Monthly drivers to put in: a ``monthly_rs.csv``-style file (read by
        :func:`read_monthly_drivers`) or a DataFrame ``SITE_ID, DATE, <columns>`` already in
        monthly units. Their values replace aggregated ones where present (fraction 1).

    Returns
    -------
    FluxDataset
        ``time_step="monthly"``, name ``"<name>-monthly"``, the same catalogue, QC report
        (of the daily values) and problems. ``daily`` has one row per site and month
        (``DATE`` = month start) with the aggregated columns: sums [gC m-2 month-1],
        [mm month-1] for ``GPP, ER, NEE, P``; means for the others (units as daily); and
        ``<VAR>_FRAC_VALID`` [-] per column (see the module docstring for the rules).
        ``meta["monthly"]`` records the rules and the threshold.

    Raises
    ------
    ConfigError
        The dataset is not daily, or ``min_valid_fraction`` is outside [0, 1].
    DataError
        Duplicated site-days, or bad monthly drivers.
    """
    if dataset.time_step != "daily":
        raise ConfigError(f"dataset {dataset.name!r} is already {dataset.time_step}; "
                          "to_monthly needs daily data")
    try:
        frac_min = float(min_valid_fraction)
    except (TypeError, ValueError):
        frac_min = np.nan
    if isinstance(min_valid_fraction, bool) or not 0.0 <= frac_min <= 1.0:
        raise ConfigError(f"min_valid_fraction must be a number in [0, 1], got {min_valid_fraction!r}")

    d = dataset.daily
    label = dataset.source or dataset.name
    value_cols = [c for c in d.columns if c not in ("SITE_ID", "DATE") and not str(c).endswith(FRAC_SUFFIX)
                  and (pd.api.types.is_numeric_dtype(d[c]) or pd.api.types.is_bool_dtype(d[c]))]
    site = d["SITE_ID"].astype(str).to_numpy()
    day = pd.to_datetime(d["DATE"]).to_numpy().astype("datetime64[D]")
    dup = pd.DataFrame({"S": site, "D": day}).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(label, f"{int(dup.sum())} duplicated site-day(s) (e.g. site {site[i]} on "
                               f"{day[i]}); cannot aggregate to months")
    month = day.astype("datetime64[M]")
    full_site, full_month = _month_grid(site, month)
    vals = d[value_cols].apply(pd.to_numeric, errors="coerce").astype(float)
    keys = [site, month.astype("datetime64[ns]")]
    grp = vals.groupby(keys, sort=True)
    idx = pd.MultiIndex.from_arrays([full_site, full_month.astype("datetime64[ns]")])
    total = grp.sum().reindex(idx)
    count = grp.count().reindex(idx, fill_value=0)
    ndays = ((full_month + 1).astype("datetime64[D]") - full_month.astype("datetime64[D]")).astype(float)

    out: dict[str, Any] = {"SITE_ID": full_site, "DATE": full_month.astype("datetime64[ns]")}
    fracs: dict[str, np.ndarray] = {}
    rules: dict[str, str] = {}
    for c in value_cols:
        s = total[c].to_numpy(dtype=float)
        n = count[c].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s / n
        rule = aggregation_of(c)
        rules[c] = rule
        v = np.where(n == ndays, s, mean * ndays) if rule == "sum" else mean
        frac = n / ndays
        out[c] = np.where((n > 0) & (frac >= frac_min), v, np.nan)
        fracs[c + FRAC_SUFFIX] = frac
    monthly = pd.DataFrame({**out, **fracs})
    monthly["SITE_ID"] = monthly["SITE_ID"].astype(str)
    drivers_note = None
    if monthly_drivers is not None:
        monthly, drivers_note = _merge_monthly_drivers(monthly, monthly_drivers)
        rules.update({c: ("sum" if aggregation_of(c) == "sum" else "mean") for c in monthly.columns
                      if c not in rules and c not in ("SITE_ID", "DATE") and not c.endswith(FRAC_SUFFIX)})
    meta = dict(dataset.meta)
    meta["monthly"] = {
        "from": "daily",
        "min_valid_fraction": frac_min,
        "aggregation": rules,
        "sums": "mean of the valid days x days in the month; NaN below min_valid_fraction",
        "monthly_drivers": drivers_note,
    }
    return FluxDataset(sites=dataset.sites, daily=monthly, name=f"{dataset.name}-monthly",
                       source=dataset.source, synthetic=dataset.synthetic, qc=dataset.qc,
                       problems=list(dataset.problems), meta=meta, time_step="monthly")


def _month_grid(site: np.ndarray, month: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (site, month) from each site's first to last month, sorted by site then month."""
    if len(site) == 0:
        return np.array([], dtype=object), np.array([], dtype="datetime64[M]")
    m = month.astype(np.int64)
    span = pd.DataFrame({"S": site, "M": m}).groupby("S", sort=True)["M"].agg(["min", "max"])
    n = (span["max"] - span["min"] + 1).to_numpy()
    start = np.repeat(span["min"].to_numpy(), n)
    offset = np.arange(int(n.sum())) - np.repeat(np.r_[0, np.cumsum(n)[:-1]], n)
    return np.repeat(span.index.to_numpy().astype(str), n).astype(object), (start + offset).astype("datetime64[M]")


def read_monthly_drivers(path: str | Path) -> pd.DataFrame:
    """Monthly drivers of a ``monthly_rs.csv``-style file, in fluxcore names and monthly units.

    Parameters
    ----------
    path : str or Path
        CSV or Parquet with ``SITE_ID``, ``YEAR_MONTH`` (``YYYYMM``) and any of ``LAI``
        [m2 m-2], ``EVI`` [-], ``P_F`` [mm d-1], ``WS_F`` [m s-1], ``TA_ERA`` [degC],
        ``SW_IN_ERA`` [W m-2], ``VPD_ERA`` [hPa], ``P_ERA`` [mm d-1], ``WS_ERA`` [m s-1]
        (monthly means; values below -9990 are missing).

    Returns
    -------
    pandas.DataFrame
        ``SITE_ID`` (str), ``DATE`` (month start) and ``LAI, EVI, P, WS, TA_ERA, SW_IN_ERA,
        VPD_ERA, P_ERA, WS_ERA`` (those present): ``P`` and ``P_ERA`` as monthly sums
        [mm month-1] = mean rate x days in the month, the others unchanged.

    Raises
    ------
    DataError
        Unreadable file, missing ``SITE_ID`` / ``YEAR_MONTH``, bad ``YEAR_MONTH`` values,
        duplicated site-months, or none of the driver columns.
    """
    from .sources import _read_table

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "does not exist (expected a monthly_rs.csv-style file)")
    raw = _read_table(path)
    missing = [c for c in ("SITE_ID", "YEAR_MONTH") if c not in raw.columns]
    if missing:
        raise DataError(path, f"missing required column(s) {', '.join(missing)}")
    have = [c for c in MONTHLY_RS_COLUMNS if c in raw.columns]
    if not have:
        raise DataError(path, f"none of the monthly driver columns {list(MONTHLY_RS_COLUMNS)}")
    # NaT: not a YYYYMM month of the years 1678-2261 (the months datetime64[ns] holds)
    start = month_start(raw["YEAR_MONTH"])
    bad = start.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(path, f"{int(bad.sum())} YEAR_MONTH value(s) are not YYYYMM months "
                              f"of the years 1678-2261 "
                              f"(e.g. {raw['YEAR_MONTH'].iloc[i]!r} in data row {i + 1})")
    sid, no_id = blank_ids(raw["SITE_ID"])
    if no_id.any():
        raise DataError(path, f"{int(no_id.sum())} row(s) without a site id in column 'SITE_ID' "
                              f"(e.g. data row {int(np.flatnonzero(no_id)[0]) + 1})")
    for src in have:  # text in a driver column would silently become missing
        lost = not_numbers(raw[src])
        if lost.any():
            i = int(np.flatnonzero(lost)[0])
            raise DataError(path, f"column {src}: {int(lost.sum())} value(s) are not numbers "
                                  f"(e.g. {str(raw[src].iloc[i])!r} in data row {i + 1})")
    out = pd.DataFrame({"SITE_ID": sid.astype(str).to_numpy(), "DATE": start.to_numpy()})
    dup = out.duplicated(["SITE_ID", "DATE"])
    if dup.any():
        first = out.loc[dup].iloc[0]
        raise DataError(path, f"{int(dup.sum())} duplicated site-month(s) (e.g. site {first['SITE_ID']} "
                              f"in {pd.Timestamp(first['DATE']):%Y-%m}); one row per site and month")
    ndays = start.dt.days_in_month.to_numpy(dtype=float)
    for src in have:
        name, per_day = MONTHLY_RS_COLUMNS[src]
        x = pd.to_numeric(raw[src], errors="coerce").to_numpy(dtype=float)
        x = np.where(x > _MISSING, x, np.nan)
        out[name] = x * ndays if per_day else x
    return out.sort_values(["SITE_ID", "DATE"]).reset_index(drop=True)


def _merge_monthly_drivers(monthly: pd.DataFrame,
                           drivers: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if isinstance(drivers, pd.DataFrame):
        md = _check_frame(drivers, "monthly_drivers table", ("SITE_ID", "DATE"))
        md = md.assign(SITE_ID=md["SITE_ID"].astype(str),
                       DATE=_parse_dates(md["DATE"], "monthly_drivers table").dt.to_period("M")
                       .dt.start_time.astype("datetime64[ns]"))
        dup = md.duplicated(["SITE_ID", "DATE"])
        if dup.any():
            raise DataError("monthly_drivers table", f"{int(dup.sum())} duplicated site-month(s)")
        note = "DataFrame"
    else:
        md = read_monthly_drivers(drivers)
        note = str(drivers)
    cols = [c for c in md.columns if c not in ("SITE_ID", "DATE")]
    merged = monthly[["SITE_ID", "DATE"]].merge(md, on=["SITE_ID", "DATE"], how="left")
    out = monthly.copy()
    for c in cols:
        x = pd.to_numeric(merged[c], errors="coerce").to_numpy(dtype=float)
        has = np.isfinite(x)
        if c in out.columns:
            out[c] = np.where(has, x, out[c].to_numpy(dtype=float))
            out[c + FRAC_SUFFIX] = np.where(has, 1.0, out[c + FRAC_SUFFIX].to_numpy(dtype=float))
        else:
            out[c] = x
            out[c + FRAC_SUFFIX] = has.astype(float)
    for real, copy in (("P", "P_MONTHLY"), ("WS", "WS_MONTHLY")):
        if real in cols and copy in out.columns:
            out = out.drop(columns=[copy, copy + FRAC_SUFFIX], errors="ignore")
    values = [c for c in out.columns if c not in ("SITE_ID", "DATE") and not c.endswith(FRAC_SUFFIX)]
    fracs = [c for c in out.columns if c.endswith(FRAC_SUFFIX)]
    return out[["SITE_ID", "DATE", *values, *fracs]], note


# ------------------------------------------------------------------------ cells
def cells_dataset(cells: pd.DataFrame, drivers: pd.DataFrame, time_step: str = "monthly", *,
                  name: str = "cells", source: str = "", synthetic: bool = False,
                  meta: dict | None = None) -> FluxDataset:
    """A dataset whose "sites" are grid cells (or any points given by id and position).

    Parameters
    ----------
    cells : pandas.DataFrame
        One row per cell: ``SITE_ID`` (unique), ``LAT`` [deg north, -90..90], ``LON``
        [deg east, -180..360; values of 180 and more are stored as ``LON - 360``]. Other
        columns (``NAME``, ``AREA_M2``, ...) are kept in the catalogue.
    drivers : pandas.DataFrame
        One row per cell and time step: ``SITE_ID``, ``DATE`` and numeric columns, named as
        in :mod:`fluxcore.variables` for the features to use them (``TA`` [degC], ``P``
        [mm month-1] for monthly data, ...); targets (``GPP``...) may be present (e.g. an
        inversion product) or absent. For monthly data ``DATE`` may be any day of the month:
        it is stored as the month start. No quality control is applied.
    time_step : {"monthly", "daily"}, default "monthly"
    name, source : str
        Shown to users / provenance.
    synthetic : bool, default False
        True for generated data.
    meta : dict, optional
        Provenance.

    Returns
    -------
    FluxDataset
        Catalogue ``SITE_ID, NAME, LAT, LON`` (+ the extra columns; ``IGBP``,
        ``ARIDITY_INDEX``, ``ARIDITY_ZONE`` NaN), ``daily`` sorted by ``SITE_ID, DATE``.

    Raises
    ------
    ConfigError
        Unknown ``time_step``.
    DataError
        One problem per message, naming ``cells table`` or ``drivers table``: not a table,
        missing columns, missing or duplicate ids, LAT outside [-90, 90], LON outside
        [-180, 360), no rows, unparseable dates, duplicated cell-steps, non-numeric values,
        drivers for cells not in the cells table.
    """
    _check_step(time_step)
    c_lab, d_lab = "cells table", "drivers table"
    cells = _check_frame(cells, c_lab, ("SITE_ID", "LAT", "LON"))
    drivers = _check_frame(drivers, d_lab, ("SITE_ID", "DATE"))
    if cells["SITE_ID"].isna().any():
        raise DataError(c_lab, f"{int(cells['SITE_ID'].isna().sum())} cell(s) without SITE_ID")
    cells = cells.assign(SITE_ID=cells["SITE_ID"].astype(str))
    dup = cells["SITE_ID"].duplicated()
    if dup.any():
        raise DataError(c_lab, f"{int(dup.sum())} duplicated cell id(s) (e.g. "
                               f"{cells.loc[dup, 'SITE_ID'].iloc[0]!r}); each cell needs one row")
    for col, lo, hi, hi_open in (("LAT", -90.0, 90.0, False), ("LON", -180.0, 360.0, True)):
        x = pd.to_numeric(cells[col], errors="coerce")
        if x.isna().any():
            i = int(np.flatnonzero(x.isna().to_numpy())[0])
            raise DataError(c_lab, f"{int(x.isna().sum())} {col} value(s) missing or not numbers "
                                   f"(e.g. cell {cells['SITE_ID'].iloc[i]!r}: {cells[col].iloc[i]!r})")
        bad = (x < lo) | ((x >= hi) if hi_open else (x > hi))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            rng = f"[{lo:g}, {hi:g})" if hi_open else f"[{lo:g}, {hi:g}]"
            raise DataError(c_lab, f"{col} outside {rng} for {int(bad.sum())} cell(s) "
                                   f"(e.g. cell {cells['SITE_ID'].iloc[i]!r}: {float(x.iloc[i]):g})")
        cells[col] = x.astype(float)
    cells["LON"] = np.where(cells["LON"] >= 180.0, cells["LON"] - 360.0, cells["LON"])

    if len(drivers) == 0:
        raise DataError(d_lab, "has no rows")
    if drivers["SITE_ID"].isna().any():
        raise DataError(d_lab, f"{int(drivers['SITE_ID'].isna().sum())} row(s) without SITE_ID")
    drivers = drivers.assign(SITE_ID=drivers["SITE_ID"].astype(str))
    unknown = sorted(set(drivers["SITE_ID"]) - set(cells["SITE_ID"]))
    if unknown:
        raise DataError(d_lab, f"rows for {len(unknown)} cell(s) not in the cells table "
                               f"(e.g. {unknown[0]!r})")
    date = _parse_dates(drivers["DATE"], d_lab)
    if time_step == "monthly":
        date = date.dt.to_period("M").dt.start_time
    drivers["DATE"] = date.astype("datetime64[ns]").to_numpy()
    dup = drivers.duplicated(["SITE_ID", "DATE"])
    if dup.any():
        first = drivers.loc[dup].iloc[0]
        when = f"{pd.Timestamp(first['DATE']):%Y-%m}" if time_step == "monthly" else \
            f"{pd.Timestamp(first['DATE']).date()}"
        step = "month" if time_step == "monthly" else "day"
        raise DataError(d_lab, f"{int(dup.sum())} duplicated cell-{step}(s) (e.g. cell "
                               f"{first['SITE_ID']!r} in {when}); one row per cell and {step}")
    for col in [c for c in drivers.columns if c not in ("SITE_ID", "DATE")]:
        x = pd.to_numeric(drivers[col], errors="coerce")
        bad = x.isna() & drivers[col].notna()
        if bad.any():
            raise DataError(d_lab, f"column {col}: {int(bad.sum())} non-numeric value(s) "
                                   f"(e.g. {drivers.loc[bad, col].iloc[0]!r})")
        drivers[col] = x.astype(float)
    drivers = drivers.sort_values(["SITE_ID", "DATE"]).reset_index(drop=True)
    return FluxDataset(sites=make_sites_frame(cells), daily=drivers, name=name, source=source,
                       synthetic=synthetic, meta=dict(meta or {}, kind="cells"), time_step=time_step)


def _check_frame(df: Any, label: str, required: tuple[str, ...]) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise DataError(label, f"must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(label, f"missing required column(s) {', '.join(missing)}")
    return pd.DataFrame(df).reset_index(drop=True).copy()


def _parse_dates(values: pd.Series, label: str) -> pd.Series:
    from .sources import parse_dates

    return parse_dates(values.reset_index(drop=True), label, "DATE")


# --------------------------------------------------------------------- features
def monthly_feature_config(**overrides: Any) -> FeatureConfig:
    """Feature options suited to monthly data.

    Same as :class:`~fluxcore.features.FeatureConfig` except ``rolling_windows=(3, 12)``
    (trailing 3- and 12-month means: the season so far and the past year); keyword
    arguments override any option.
    """
    return FeatureConfig.from_dict({"rolling_windows": (3, 12), **overrides})


__all__ = ["FRAC_SUFFIX", "MONTHLY_AGGREGATION", "MONTHLY_RS_COLUMNS", "TIME_STEPS", "aggregation_of",
           "cells_dataset", "monthly_feature_config", "read_monthly_drivers", "to_monthly", "unit_of"]

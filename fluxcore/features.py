"""Feature table for the learners: paper variables plus derived driver features.

:func:`build_features` turns a :class:`~fluxcore.dataset.FluxDataset` into a
:class:`FeatureTable` (``X``, ``y``, ``sites``, ``dates``, ``zones``) aligned row by row with
``dataset.daily`` (one row per site and time step: day or month, ``dataset.time_step``;
the table records it as ``FeatureTable.time_step``). Nothing here is fitted on data (no scaling, no selection by skill): every
feature of a row is a fixed function of the drivers of the *same site* on the *same or
earlier days* (daily and trailing features), of all days of the same site (site means), or of
the site catalogue. Targets are never used. So the table can be built
once for a whole dataset and then split by leave-one-site-out folds without leakage; scaling
happens inside each learner, on its training rows.

Features
--------
Paper variables (Gao et al. 2025): the daily drivers ``TA, TMIN, TMAX, P, WS, VPD, SW_IN,
LAI`` and the static ``ELEV, SLOPE, ASPECT, CLAY, SAND, SILT`` that the dataset has (statics
broadcast from the catalogue by :meth:`FluxDataset.frame`).

Derived (default on; each only when its inputs exist):

``DOY_SIN``, ``DOY_COS`` [-]
    ``sin / cos(2 pi doy / 365.25)``, the seasonal phase (daily data).
``MONTH_SIN``, ``MONTH_COS`` [-]
    ``sin / cos(2 pi (month - 0.5) / 12)`` for monthly data instead of the day of year: the
    phase of the middle of the month (mid-January 0.26 rad, as ``DOY`` on 16 January).
``SW_IN_POT`` [W m-2]
    Daily mean extraterrestrial (top-of-atmosphere) shortwave radiation from the site
    latitude and day of year, FAO-56 Eqs. 21-25 (Allen et al. 1998) via
    :func:`fluxcore.aridity.extraterrestrial_radiation`, converted from MJ m-2 d-1 by
    ``1e6 / 86400``. NaN where the latitude is unknown. Monthly data: the mean of the
    daily values over all days of the row's month (:func:`monthly_potential_radiation`).
``DTR`` [degC]
    Diurnal temperature range ``TMAX - TMIN``.
``<VAR>_MEAN<w>D`` (daily), ``<VAR>_MEAN<w>M`` (monthly)
    Trailing mean of ``VAR`` over the ``w`` time steps of the dataset (calendar days for
    daily data, calendar months for monthly data) ending on the row's step (same step
    included), within the site; NaN values are skipped and at least ``rolling_min_periods``
    values are needed. Defaults: ``TA, VPD, SW_IN, P`` over 7 and 30 steps, i.e. 7 and 30
    days on daily data. On monthly data the same numbers would mean 7 and 30 months: use
    :func:`fluxcore.timeres.monthly_feature_config` (3 and 12 months) or set
    ``rolling_windows`` yourself.

``APAR_LAI`` [W m-2]
    Shortwave absorbed by the canopy after Beer's law with extinction coefficient 0.5,
    ``SW_IN * (1 - exp(-0.5 LAI))`` (Monsi & Saeki 1953, doi:10.1093/aob/mci052): the
    light-use-efficiency driver of GPP (Monteith 1972, doi:10.2307/2401901).
``SW_IN_EVI`` [W m-2]
    ``SW_IN * EVI``, the MODIS-GPP style greenness-times-light product (Running et al. 2004,
    doi:10.1641/0006-3568(2004)054[0547:ACSMOG]2.0.CO;2).
``SITE_MEAN_<VAR>``
    Mean of a daily driver over all days of the row's site in the dataset (the site's
    climate and mean greenness); the same value on every row of a site. Defaults: ``TA, VPD,
    SW_IN, P, LAI, EVI``. Drivers only: a test site's own meteorology and remote sensing are
    known when it is predicted, its fluxes never enter.
``<ATTR>`` from the catalogue
    ``site_attributes``: default ``ARIDITY_INDEX`` [-] (P / PET), ``WHC_MM`` [mm] (soil water
    holding capacity) and ``MAP_MM`` [mm yr-1] (mean annual precipitation), each when the
    catalogue has it.
``IGBP_<class>`` [0/1]
    One-hot land cover (IGBP class of the site) for the classes that occur in the dataset.

Optional site-level feature (default off): ``LAT`` [deg] from the catalogue.

Optional water-balance features (daily data only; ``water_balance=True``, default off; measured to
add little skill, 0 to +0.013 median R², on the FLUXNET2015 towers with the random forest,
see ``docs/learners.md``):

``PET_HG`` [mm d-1]
    Hargreaves reference evapotranspiration, FAO-56 Eq. 52
    (:func:`fluxcore.aridity.hargreaves_pet`; Hargreaves & Samani 1985,
    doi:10.13031/2013.26773), from ``TMIN``, ``TMAX``, ``TA`` and the site latitude.
``SWC_REL`` [-]
    Relative water content ``W / C`` of a single soil bucket per site (:func:`bucket_water`):
    capacity ``C`` = the catalogue's ``WHC_MM`` (``bucket_capacity_mm`` where unknown), filled
    by precipitation (daily ``P``, else the monthly-mean ``P_MONTHLY``) and emptied by
    ``PET_HG * W / C`` (Manabe 1969, doi:10.1175/1520-0493(1969)097<0739:CATO>2.3.CO;2).
``WB_MEAN30D`` [mm d-1]
    Trailing 30-day mean of ``P - PET_HG`` (climatic water balance).

References
----------
Allen, R. G., Pereira, L. S., Raes, D., Smith, M. (1998). Crop evapotranspiration. FAO
Irrigation and Drainage Paper 56, Rome (Eqs. 21-25).
Gao et al. (2025), the 14 predictor variables (see :mod:`fluxcore.variables`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from .aridity import extraterrestrial_radiation, hargreaves_pet
from .dataset import FluxDataset
from .errors import ConfigError
from .schema import FLAG, integer, integers, names, number, option, raise_problems, show
from .schema import problems as schema_problems
from .variables import EXTRA_DRIVERS, PAPER_VARIABLES, SITE_ATTRIBUTES, TARGETS, is_site_level

#: Longest trailing window [time steps] (about 27 years of days): longer ones are mistakes.
MAX_WINDOW = 10_000

#: MJ m-2 d-1 -> W m-2 (daily mean)
MJ_PER_DAY_TO_W = 1e6 / 86400.0


@dataclass
class FeatureConfig:
    """Which features :func:`build_features` makes.

    Every option is typed (:mod:`fluxcore.schema`): a value of the wrong type or range, or an
    unknown variable / attribute name, raises :class:`ConfigError` at construction, one line
    per problem (``features.<option>: must be ..., got ...``).

    Parameters
    ----------
    variables : tuple of str or None, default None
        Paper variables to use; None = all 14 that the dataset has. Naming a variable the
        dataset lacks raises :class:`ConfigError`.
    doy : bool, default True
        Add the calendar features: ``DOY_SIN`` and ``DOY_COS`` (daily data), ``MONTH_SIN``
        and ``MONTH_COS`` (monthly data).
    potential_radiation : bool, default True
        Add ``SW_IN_POT`` [W m-2] (needs site latitude).
    temperature_range : bool, default True
        Add ``DTR = TMAX - TMIN`` [degC] (needs both).
    rolling_variables : tuple of str, default ("TA", "VPD", "SW_IN", "P")
        Drivers that get trailing means (those absent from the dataset are skipped).
    rolling_windows : tuple of int, default (7, 30)
        Trailing window lengths [time steps of the dataset: days for daily data, months for
        monthly data], each 1 to :data:`MAX_WINDOW`.
    rolling_min_periods : int, default 1
        Minimum non-NaN steps in a window for a value (else NaN), 1 to :data:`MAX_WINDOW`.
    aridity_index : bool, default False
        Add the site's ``ARIDITY_INDEX`` [-] (also added by ``site_attributes``).
    latitude : bool, default False
        Add the site's ``LAT`` [deg].
    absorbed_radiation : bool, default True
        Add ``APAR_LAI`` and ``SW_IN_EVI`` [W m-2] (each when its inputs exist).
    site_means : tuple of str, default ("TA", "VPD", "SW_IN", "P", "LAI", "EVI")
        Drivers whose per-site mean is added as ``SITE_MEAN_<VAR>`` (absent ones skipped).
    site_attributes : tuple of str, default ("ARIDITY_INDEX", "WHC_MM", "MAP_MM")
        Numeric catalogue columns added as features (absent ones skipped).
    igbp : bool, default True
        Add one-hot ``IGBP_<class>`` columns.
    water_balance : bool, default False
        Add ``PET_HG``, ``SWC_REL`` and ``WB_MEAN30D`` (each when its inputs exist; daily
        data only).
    bucket_capacity_mm : float, default 150.0
        Bucket capacity [mm] (> 0) for sites whose catalogue has no ``WHC_MM``.
    """

    variables: tuple[str, ...] | None = option(None, names("a list of variable names", optional=True))
    doy: bool = option(True, FLAG)
    potential_radiation: bool = option(True, FLAG)
    temperature_range: bool = option(True, FLAG)
    rolling_variables: tuple[str, ...] = option(("TA", "VPD", "SW_IN", "P"), names("a list of variable names"))
    rolling_windows: tuple[int, ...] = option((7, 30), integers(ge=1, le=MAX_WINDOW))
    rolling_min_periods: int = option(1, integer(ge=1, le=MAX_WINDOW))
    aridity_index: bool = option(False, FLAG)
    latitude: bool = option(False, FLAG)
    absorbed_radiation: bool = option(True, FLAG)
    site_means: tuple[str, ...] = option(("TA", "VPD", "SW_IN", "P", "LAI", "EVI"), names("a list of variable names"))
    site_attributes: tuple[str, ...] = option(("ARIDITY_INDEX", "WHC_MM", "MAP_MM"), names("a list of attribute names"))
    igbp: bool = option(True, FLAG)
    water_balance: bool = option(False, FLAG)
    bucket_capacity_mm: float = option(150.0, number(gt=0))

    def __post_init__(self) -> None:
        raise_problems(self.problems())

    def problems(self) -> list[str]:
        """One line per bad option (``features.<name>: ...``): types and ranges, unknown names."""
        lines = schema_problems(FeatureConfig, self, prefix="features.")
        bad = {ln.split(":", 1)[0].removeprefix("features.") for ln in lines}
        allowed = PAPER_VARIABLES + EXTRA_DRIVERS
        for key, label, known in (("variables", "feature variable(s)", allowed),
                                  ("rolling_variables", "variable(s)", allowed),
                                  ("site_means", "variable(s)", allowed),
                                  ("site_attributes", "site attribute(s)", SITE_ATTRIBUTES)):
            given = getattr(self, key)
            unknown = [] if key in bad or given is None else [v for v in given if v not in known]
            if unknown:
                lines.append(f"features.{key}: unknown {label} {unknown}; choose from {list(known)}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists for tuples), for JSON/YAML run configs."""
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> FeatureConfig:
        """Build from a dict (lists become tuples).

        Raises
        ------
        ConfigError
            One line per problem: unknown keys, values of the wrong type or range, unknown
            variable names (:meth:`problems`).
        """
        if d is None:
            return cls()
        if isinstance(d, FeatureConfig):
            return d
        if not isinstance(d, dict):
            raise ConfigError(f"features: must be a mapping of feature options, got {show(d)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted((k for k in d if k not in known), key=str)
        lines = [f"features: unknown feature option(s) {unknown}; known: {sorted(known)}"] if unknown else []
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
        try:
            cfg = cls(**kw)
        except ConfigError as exc:
            lines += str(exc).splitlines()
        raise_problems(lines)
        return cfg


@dataclass
class FeatureTable:
    """Features and targets aligned row by row with ``dataset.daily``.

    Attributes
    ----------
    X : pandas.DataFrame
        Feature columns (float), same index as ``dataset.daily``.
    y : pandas.DataFrame
        Target columns, same index.
    sites : numpy.ndarray of str
    dates : numpy.ndarray of datetime64[ns]
    zones : numpy.ndarray of object
        Aridity zone of each row's site (None when unknown).
    feature_names : list of str
    time_step : {"daily", "monthly"}, default "daily"
        The dataset's time step: what one row is (site-day or site-month).
    """

    X: pd.DataFrame
    y: pd.DataFrame
    sites: np.ndarray
    dates: np.ndarray
    zones: np.ndarray
    feature_names: list[str]
    time_step: str = "daily"

    def __len__(self) -> int:
        return len(self.X)

    def rows(self, mask: np.ndarray) -> FeatureTable:
        """Sub-table of the rows where ``mask`` is True."""
        mask = np.asarray(mask, dtype=bool)
        return FeatureTable(self.X[mask], self.y[mask], self.sites[mask], self.dates[mask],
                            self.zones[mask], list(self.feature_names), self.time_step)


#: numpy calendar unit of one time step
_STEP_UNIT = {"daily": "datetime64[D]", "monthly": "datetime64[M]"}


def _step_unit(step: str) -> str:
    if step not in _STEP_UNIT:
        raise ConfigError(f"unknown time step {step!r}; choose from {list(_STEP_UNIT)}")
    return _STEP_UNIT[step]


def _site_day_order(sites: np.ndarray, dates: np.ndarray,
                    step: str = "daily") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Site codes, step numbers (days or months) and the order sorting rows by site, then step."""
    codes, _ = pd.factorize(np.asarray(sites), sort=True)
    day = np.asarray(dates).astype("datetime64[ns]").astype(_step_unit(step)).astype(np.int64)
    return codes, day, np.lexsort((day, codes))


def trailing_mean(values: np.ndarray, sites: np.ndarray, dates: np.ndarray, window: int,
                  min_periods: int = 1, step: str = "daily") -> np.ndarray:
    """Mean of the last ``window`` calendar steps (same step included) within each site.

    A step is a calendar day (``step="daily"``) or a calendar month (``"monthly"``);
    steps without a row count as missing, so a window never reaches further back than
    ``window`` steps.

    Parameters
    ----------
    values : array_like of float, shape (n,)
        Daily values; NaN skipped.
    sites : array_like of str, shape (n,)
        Site of each row (rows of other sites never enter a window).
    dates : array_like of datetime64, shape (n,)
        Day of each row (one row per site and step; for monthly steps any day of the month).
    window : int
        Window length [steps: days or months].
    min_periods : int, default 1
        Minimum non-NaN values for a result.
    step : {"daily", "monthly"}, default "daily"
        The time step.

    Returns
    -------
    numpy.ndarray, shape (n,)
        Trailing means in the input row order.
    """
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n == 0:
        return v.copy()
    codes, day, order = _site_day_order(sites, dates, step)
    c, d, x = codes[order], day[order], v[order]
    first = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    counts = np.diff(np.r_[first, n])
    sid = np.repeat(np.arange(len(first)), counts)
    dmin = d[first]
    span = d[first + counts - 1] - dmin + 1
    offset = np.r_[0, np.cumsum(span)[:-1]]
    pos = offset[sid] + (d - dmin[sid])
    total = int(span.sum())
    cal = np.zeros(total)
    ok = np.zeros(total)
    good = np.isfinite(x)
    cal[pos[good]] = x[good]
    ok[pos[good]] = 1.0
    # cumulative sums restart at each site: a sum running over all sites would let one site's
    # values change another's means in the last bits (rounding), which a network can amplify
    cs = np.zeros(total + 1)
    ck = np.zeros(total + 1)
    for o, sp in zip(offset.tolist(), span.tolist(), strict=True):
        cs[o + 1:o + sp + 1] = np.cumsum(cal[o:o + sp])
        ck[o + 1:o + sp + 1] = np.cumsum(ok[o:o + sp])
    lo = np.maximum(pos - int(window) + 1, offset[sid])  # never before the site's first day
    inside = lo > offset[sid]
    s = cs[pos + 1] - np.where(inside, cs[lo], 0.0)
    k = ck[pos + 1] - np.where(inside, ck[lo], 0.0)
    res = np.where(k >= max(int(min_periods), 1), s / np.maximum(k, 1), np.nan)
    out = np.empty(n)
    out[order] = res
    return out


def bucket_water(precip: np.ndarray, pet: np.ndarray, sites: np.ndarray, dates: np.ndarray,
                 capacity: np.ndarray) -> np.ndarray:
    """Water content of a single soil bucket per site, day by day [mm].

    ``W_t = min(C, max(0, W_{t-1} + P_t - PET_t W_{t-1} / C))``: precipitation fills the
    bucket up to its capacity ``C`` (runoff beyond), evapotranspiration is the potential rate
    scaled by the relative water content (Manabe 1969,
    doi:10.1175/1520-0493(1969)097<0739:CATO>2.3.CO;2). Each site starts full on its first
    day; days are taken in date order within the site, and a missing ``P`` or ``PET`` counts
    as 0 on that day. Only the same site's past and present drivers enter a day's value.

    Parameters
    ----------
    precip : array_like of float, shape (n,)
        Precipitation [mm d-1].
    pet : array_like of float, shape (n,)
        Potential evapotranspiration [mm d-1].
    sites, dates : array_like, shape (n,)
        Site and day of each row (any row order).
    capacity : array_like of float, shape (n,)
        Bucket capacity [mm] of each row's site (> 0).

    Returns
    -------
    numpy.ndarray, shape (n,)
        ``W`` [mm] in the input row order, between 0 and the capacity.
    """
    p = np.nan_to_num(np.asarray(precip, dtype=float), nan=0.0)
    e = np.nan_to_num(np.asarray(pet, dtype=float), nan=0.0)
    cap = np.asarray(capacity, dtype=float)
    n = len(p)
    if n == 0:
        return np.empty(0)
    codes, _, order = _site_day_order(sites, dates)
    prev, w = -1, 0.0
    c_sorted, p_sorted, e_sorted, cap_sorted = codes[order], p[order], e[order], cap[order]
    res = np.empty(n)
    for i in range(n):  # sequential by nature; ~0.5 s for 500,000 site-days
        c = cap_sorted[i]
        if c_sorted[i] != prev:
            prev, w = c_sorted[i], c
        w = min(c, max(0.0, w + p_sorted[i] - e_sorted[i] * w / c))
        res[i] = w
    out = np.empty(n)
    out[order] = res
    return out


def site_mean(values: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over each site's rows (NaN skipped), broadcast back to the rows.

    Parameters
    ----------
    values : array_like of float, shape (n,)
    sites : array_like of str, shape (n,)

    Returns
    -------
    numpy.ndarray, shape (n,)
        NaN for a site without any finite value.
    """
    v = pd.Series(np.asarray(values, dtype=float))
    return v.groupby(np.asarray(sites)).transform("mean").to_numpy(dtype=float)


def build_features(dataset: FluxDataset, config: FeatureConfig | dict | None = None,
                   targets: tuple[str, ...] | list[str] = ("GPP", "ER")) -> FeatureTable:
    """Feature table of a dataset (see the module docstring for the features).

    Parameters
    ----------
    dataset : FluxDataset
    config : FeatureConfig or dict, optional
        Default :class:`FeatureConfig()`.
    targets : sequence of str, default ("GPP", "ER")
        Target columns of ``y``; each must be in ``dataset.daily``. Empty (``[]``) for data
        without fluxes (grid cells to predict): ``y`` then has no columns.

    Returns
    -------
    FeatureTable
        Rows in the order (and with the index) of ``dataset.daily``; ``time_step`` is the
        dataset's.

    Raises
    ------
    fluxcore.errors.ConfigError
        Unknown or absent variables or targets, bad window lengths, water-balance features
        asked of monthly data.
    """
    cfg = FeatureConfig.from_dict(config) if not isinstance(config, FeatureConfig) else config
    targets = list(targets)
    bad_t = [t for t in targets if t not in TARGETS]
    if bad_t:
        raise ConfigError(f"unknown target(s) {bad_t}; choose from {list(TARGETS)}")
    absent_t = [t for t in targets if t not in dataset.daily.columns]
    if absent_t:
        raise ConfigError(f"dataset {dataset.name!r} has no target column(s) {absent_t}")
    allowed = PAPER_VARIABLES + EXTRA_DRIVERS
    present = [v for v in dataset.variables if v in allowed]
    if cfg.variables is None:
        variables = present
    else:
        variables = list(cfg.variables)
        unknown = [v for v in variables if v not in allowed]
        if unknown:
            raise ConfigError(f"unknown feature variable(s) {unknown}; choose from {list(allowed)}")
        missing = [v for v in variables if v not in present]
        if missing:
            raise ConfigError(f"dataset {dataset.name!r} lacks variable(s) {missing}; it has {present}")
    bad_attr = [a for a in cfg.site_attributes if a not in SITE_ATTRIBUTES]
    if bad_attr:
        raise ConfigError(f"unknown site attribute(s) {bad_attr}; choose from {list(SITE_ATTRIBUTES)}")
    for w in cfg.rolling_windows:
        if int(w) < 1:
            raise ConfigError(f"rolling window must be >= 1 day, got {w}")
    if cfg.water_balance and not cfg.bucket_capacity_mm > 0:
        raise ConfigError(f"bucket_capacity_mm must be > 0, got {cfg.bucket_capacity_mm}")
    step = getattr(dataset, "time_step", "daily")
    _step_unit(step)
    monthly = step == "monthly"
    if monthly and cfg.water_balance:
        raise ConfigError(f"dataset {dataset.name!r} is monthly: the water-balance features "
                          "(water_balance=True) are defined for daily data only")

    frame = dataset.frame(with_static=True)
    daily = dataset.daily
    sites = daily["SITE_ID"].astype(str).to_numpy()
    dates = pd.to_datetime(daily["DATE"]).to_numpy().astype("datetime64[ns]")
    doy = pd.DatetimeIndex(dates).day_of_year.to_numpy()
    cat = dataset.sites

    cols: dict[str, np.ndarray] = {}
    for v in variables:
        cols[v] = pd.to_numeric(frame[v], errors="coerce").to_numpy(dtype=float)
    if cfg.doy and monthly:
        ang = 2.0 * np.pi * (pd.DatetimeIndex(dates).month.to_numpy() - 0.5) / 12.0
        cols["MONTH_SIN"] = np.sin(ang)
        cols["MONTH_COS"] = np.cos(ang)
    elif cfg.doy:
        ang = 2.0 * np.pi * doy / 365.25
        cols["DOY_SIN"] = np.sin(ang)
        cols["DOY_COS"] = np.cos(ang)
    lat = _site_attr(cat, "LAT", sites)
    if cfg.potential_radiation and monthly:
        cols["SW_IN_POT"] = monthly_potential_radiation(lat, dates)
    elif cfg.potential_radiation:
        ra = extraterrestrial_radiation(np.nan_to_num(lat), doy) * MJ_PER_DAY_TO_W
        cols["SW_IN_POT"] = np.where(np.isfinite(lat), ra, np.nan)
    if cfg.temperature_range and {"TMIN", "TMAX"} <= set(daily.columns):
        cols["DTR"] = (daily["TMAX"].to_numpy(dtype=float) - daily["TMIN"].to_numpy(dtype=float))
    for v in cfg.rolling_variables:
        if v not in daily.columns or not daily[v].notna().any():
            continue
        x = daily[v].to_numpy(dtype=float)
        for w in cfg.rolling_windows:
            cols[f"{v}_MEAN{int(w)}{'M' if monthly else 'D'}"] = trailing_mean(
                x, sites, dates, int(w), cfg.rolling_min_periods, step=step)
    if cfg.absorbed_radiation and "SW_IN" in daily.columns:
        sw = daily["SW_IN"].to_numpy(dtype=float)
        if "LAI" in daily.columns and daily["LAI"].notna().any():
            cols["APAR_LAI"] = sw * (1.0 - np.exp(-0.5 * daily["LAI"].to_numpy(dtype=float)))
        if "EVI" in daily.columns and daily["EVI"].notna().any():
            cols["SW_IN_EVI"] = sw * daily["EVI"].to_numpy(dtype=float)
    for v in cfg.site_means:
        if v in daily.columns and daily[v].notna().any():
            cols[f"SITE_MEAN_{v}"] = site_mean(daily[v].to_numpy(dtype=float), sites)
    attrs = list(cfg.site_attributes) + (["ARIDITY_INDEX"] if cfg.aridity_index else [])
    for a in dict.fromkeys(attrs):
        vals = _site_attr(cat, a, sites)
        if np.isfinite(vals).any():
            cols[a] = vals
    if cfg.igbp and "IGBP" in cat:
        igbp = pd.Series(sites).map(cat["IGBP"]).astype(object)
        for cls in sorted({str(c) for c in igbp.dropna().unique() if str(c).strip()}):
            cols[f"IGBP_{cls}"] = (igbp == cls).to_numpy(dtype=float)
    if cfg.latitude:
        cols["LAT"] = lat
    if cfg.water_balance:
        cols.update(_water_balance(daily, cfg, cat, sites, dates, doy, lat))

    X = pd.DataFrame(cols, index=daily.index, dtype=float)
    y = daily[targets].astype(float)
    zone_map = cat["ARIDITY_ZONE"] if "ARIDITY_ZONE" in cat else pd.Series(dtype=object)
    zones = np.array([None if (z is None or (isinstance(z, float) and np.isnan(z))) else str(z)
                      for z in pd.Series(sites).map(zone_map)], dtype=object)
    return FeatureTable(X=X, y=y, sites=sites, dates=dates, zones=zones,
                        feature_names=list(X.columns), time_step=step)


def monthly_potential_radiation(lat: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Monthly mean extraterrestrial shortwave radiation [W m-2].

    The mean, over every day of the row's calendar month, of the daily FAO-56 value
    (:func:`fluxcore.aridity.extraterrestrial_radiation`, Eqs. 21-25), converted from
    MJ m-2 d-1 by ``1e6 / 86400``. Leap years count 29 February.

    Parameters
    ----------
    lat : array_like of float, shape (n,)
        Latitude [deg north]; NaN gives NaN.
    dates : array_like of datetime64, shape (n,)
        Any day of each row's month.

    Returns
    -------
    numpy.ndarray, shape (n,)
    """
    lat = np.asarray(lat, dtype=float)
    month = np.asarray(dates).astype("datetime64[ns]").astype("datetime64[M]")
    n = len(lat)
    if n == 0:
        return np.empty(0)
    start = month.astype("datetime64[D]")
    first_doy = (start - start.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) + 1
    ndays = ((month + 1).astype("datetime64[D]") - start).astype(np.int64)
    key = np.stack([np.nan_to_num(lat, nan=-999.0), first_doy.astype(float), ndays.astype(float)], axis=1)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    offs = np.arange(31)
    doy = uniq[:, 1][:, None] + offs[None, :]
    inside = offs[None, :] < uniq[:, 2][:, None]
    ra = extraterrestrial_radiation(uniq[:, 0][:, None], doy)
    mean = (ra * inside).sum(axis=1) / uniq[:, 2] * MJ_PER_DAY_TO_W
    out = mean[np.ravel(inverse)]
    return np.where(np.isfinite(lat), out, np.nan)


def _water_balance(daily: pd.DataFrame, cfg: FeatureConfig, cat: pd.DataFrame, sites: np.ndarray,
                   dates: np.ndarray, doy: np.ndarray, lat: np.ndarray) -> dict[str, np.ndarray]:
    """``PET_HG``, ``SWC_REL``, ``WB_MEAN30D`` (see the module docstring), those computable."""
    out: dict[str, np.ndarray] = {}
    if not {"TMIN", "TMAX"} <= set(daily.columns):
        return out
    tmean = daily["TA"].to_numpy(dtype=float) if "TA" in daily.columns else None
    pet = hargreaves_pet(daily["TMIN"].to_numpy(dtype=float), daily["TMAX"].to_numpy(dtype=float),
                         np.nan_to_num(lat), doy, tmean=tmean)
    pet = np.where(np.isfinite(lat) & np.isfinite(pet), pet, np.nan)
    out["PET_HG"] = pet
    precip = next((daily[c].to_numpy(dtype=float) for c in ("P", "P_MONTHLY")
                   if c in daily.columns and daily[c].notna().any()), None)
    if precip is None:
        return out
    cap = _site_attr(cat, "WHC_MM", sites)
    cap = np.where(np.isfinite(cap) & (cap > 0), cap, float(cfg.bucket_capacity_mm))
    out["SWC_REL"] = bucket_water(precip, pet, sites, dates, cap) / cap
    out["WB_MEAN30D"] = trailing_mean(precip - pet, sites, dates, 30, cfg.rolling_min_periods)
    return out


def _site_attr(cat: pd.DataFrame, col: str, sites: np.ndarray) -> np.ndarray:
    """Catalogue column broadcast to rows (NaN where unknown)."""
    if col not in cat:
        return np.full(len(sites), np.nan)
    s = pd.to_numeric(cat[col], errors="coerce")
    return pd.Series(sites).map(s).to_numpy(dtype=float)


__all__ = ["FeatureConfig", "FeatureTable", "SITE_ATTRIBUTES", "build_features", "is_site_level",
           "bucket_water", "monthly_potential_radiation", "site_mean", "trailing_mean", "MJ_PER_DAY_TO_W"]

"""Potential evapotranspiration, aridity index and aridity zones.

References
----------
Allen, R. G., Pereira, L. S., Raes, D., Smith, M. (1998). Crop evapotranspiration:
guidelines for computing crop water requirements. FAO Irrigation and Drainage Paper 56
(FAO-56), Rome. Equations 21-25 (extraterrestrial radiation) and 52 (Hargreaves).
Hargreaves, G. H., Samani, Z. A. (1985). Reference crop evapotranspiration from temperature.
Applied Engineering in Agriculture 1(2), 96-99. doi:10.13031/2013.26773
UNEP (1992) World Atlas of Desertification: aridity classes of AI = P / PET.
Zomer, R. J. et al. (2022) Version 3 of the Global Aridity Index and Potential
Evapotranspiration Database. Scientific Data 9, 409. doi:10.1038/s41597-022-01493-1
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .variables import ZONES

#: Solar constant [MJ m-2 min-1] (FAO-56 Eq. 21).
GSC = 0.0820
#: Conversion of radiation [MJ m-2 d-1] to equivalent evaporation [mm d-1] (FAO-56 Eq. 20).
MJ_TO_MM = 0.408

#: Upper bounds of the zones (AI < bound); humid has none. Hyper-arid (AI < 0.05) counts as arid.
ZONE_BOUNDS: dict[str, float] = {"arid": 0.2, "semi-arid": 0.5, "semi-humid": 0.65}


def extraterrestrial_radiation(lat_deg, doy) -> np.ndarray:
    """Daily extraterrestrial radiation Ra [MJ m-2 d-1] (FAO-56 Eqs. 21-25).

    Parameters
    ----------
    lat_deg : array_like
        Latitude [deg], positive north.
    doy : array_like
        Day of the year [1-366].

    Returns
    -------
    numpy.ndarray
        Ra [MJ m-2 d-1]; polar night gives 0; NaN where the latitude is outside -90..90.
    """
    lat = np.asarray(lat_deg, dtype=float)
    phi = np.deg2rad(np.where(np.abs(lat) <= 90.0, lat, np.nan))  # no latitude beyond the poles
    j = np.asarray(doy, dtype=float)
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * j / 365.0)  # Eq. 23
    delta = 0.409 * np.sin(2.0 * np.pi * j / 365.0 - 1.39)  # Eq. 24
    x = np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0)
    ws = np.arccos(x)  # Eq. 25 (clipped for polar day / night)
    ra = (24.0 * 60.0 / np.pi) * GSC * dr * (
        ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws)
    )  # Eq. 21
    return np.where(np.isnan(ra), np.nan, np.maximum(ra, 0.0))


def hargreaves_pet(tmin, tmax, lat_deg, doy, tmean=None) -> np.ndarray:
    """Reference evapotranspiration by Hargreaves [mm d-1] (FAO-56 Eq. 52).

    ``ET0 = 0.0023 (Tmean + 17.8) (Tmax - Tmin)^0.5 * 0.408 Ra``

    Parameters
    ----------
    tmin, tmax : array_like
        Daily minimum and maximum air temperature [degC].
    lat_deg : array_like
        Latitude [deg].
    doy : array_like
        Day of the year [1-366].
    tmean : array_like, optional
        Daily mean temperature [degC]; FAO-56 uses (Tmax + Tmin) / 2, the default.

    Returns
    -------
    numpy.ndarray
        ET0 [mm d-1], never negative.
    """
    tmin = np.asarray(tmin, dtype=float)
    tmax = np.asarray(tmax, dtype=float)
    if tmean is None:
        tmean = (tmax + tmin) / 2.0
    trange = np.maximum(tmax - tmin, 0.0)
    ra = extraterrestrial_radiation(lat_deg, doy)
    et0 = 0.0023 * (np.asarray(tmean, dtype=float) + 17.8) * np.sqrt(trange) * MJ_TO_MM * ra
    return np.maximum(et0, 0.0)


def aridity_index(p, pet) -> float:
    """Aridity index AI = sum(P) / sum(PET) over days where both are known [-].

    Parameters
    ----------
    p : array_like
        Precipitation [mm d-1].
    pet : array_like
        Potential evapotranspiration [mm d-1].

    Returns
    -------
    float
        AI, or NaN when no day has both values or PET sums to zero.
    """
    p = np.asarray(p, dtype=float)
    pet = np.asarray(pet, dtype=float)
    ok = np.isfinite(p) & np.isfinite(pet)
    if not ok.any() or pet[ok].sum() <= 0:
        return float("nan")
    return float(p[ok].sum() / pet[ok].sum())


def aridity_zone(ai) -> np.ndarray | str | None:
    """Aridity zone of an aridity index (UNEP 1992 classes, hyper-arid merged into arid).

    arid: AI < 0.2; semi-arid: 0.2 <= AI < 0.5; semi-humid: 0.5 <= AI < 0.65; humid: AI >= 0.65.

    Parameters
    ----------
    ai : float or array_like
        Aridity index [-].

    Returns
    -------
    str or None, or numpy.ndarray of object
        Zone name(s); None where AI is NaN, infinite or negative (not an aridity index).
    """
    scalar = np.ndim(ai) == 0
    a = np.atleast_1d(np.asarray(ai, dtype=float))
    a = np.where(np.isfinite(a) & (a >= 0.0), a, np.nan)  # negative or infinite AI: unknown
    out = np.full(a.shape, None, dtype=object)
    out[a >= 0.65] = "humid"
    out[(a >= 0.5) & (a < 0.65)] = "semi-humid"
    out[(a >= 0.2) & (a < 0.5)] = "semi-arid"
    out[a < 0.2] = "arid"
    return out[0] if scalar else out


def site_aridity_from_daily(daily: pd.DataFrame, lat: pd.Series) -> pd.Series:
    """Aridity index of each site from its daily P, TMIN and TMAX (Hargreaves PET).

    Parameters
    ----------
    daily : pandas.DataFrame
        Columns ``SITE_ID, DATE, P, TMIN, TMAX`` [mm d-1, degC].
    lat : pandas.Series
        Latitude [deg] indexed by site id.

    Returns
    -------
    pandas.Series
        AI per site (NaN where P, temperatures or latitude are missing).
    """
    need = {"P", "TMIN", "TMAX"}
    if not need <= set(daily.columns):
        return pd.Series(np.nan, index=pd.Index(daily["SITE_ID"].unique()), dtype=float)
    d = daily[["SITE_ID", "DATE", "P", "TMIN", "TMAX"]]
    la = d["SITE_ID"].map(lat).to_numpy(dtype=float)
    pet = hargreaves_pet(d["TMIN"], d["TMAX"], la, d["DATE"].dt.day_of_year)
    pet = np.where(np.isfinite(la), pet, np.nan)
    tmp = pd.DataFrame({"SITE_ID": d["SITE_ID"].to_numpy(), "P": d["P"].to_numpy(), "PET": pet})
    return tmp.groupby("SITE_ID").apply(lambda g: aridity_index(g["P"], g["PET"]), include_groups=False)


__all__ = [
    "ZONES", "ZONE_BOUNDS", "extraterrestrial_radiation", "hargreaves_pet", "aridity_index",
    "aridity_zone", "site_aridity_from_daily",
]

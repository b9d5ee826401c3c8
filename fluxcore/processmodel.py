"""A simple, documented ecosystem process model: daily GPP, ER and NEE from drivers.

The model is a public function of a daily driver table, so that it can generate the targets
of the synthetic demo world (:mod:`fluxcore.demo`) *and* be run on real tower drivers, e.g. as
the source domain of process-model-guided transfer learning.

Model
-----
Gross primary production (light-use efficiency, Monteith 1972; MOD17 scalars, Running et
al. 2004)::

    GPP = eps_max * fAPAR * PAR * f_T(TA) * f_VPD(VPD) * f_W(soil water)      [gC m-2 d-1]
    PAR   = 0.45 * SW_IN * 0.0864                                             [MJ m-2 d-1]
    fAPAR = 1 - exp(-k * LAI)                                                 [-]

``f_T`` is the Terrestrial Ecosystem Model temperature scalar (Raich et al. 1991) with a
minimum, optimum and maximum temperature; ``f_VPD`` the MOD17 linear ramp between
``vpd_open`` and ``vpd_close``; ``f_W`` the trailing mean (time constant ``tau_w``) of a ramp of relative soil water
``W / WHC`` from a daily single-layer bucket model fed by P and Hargreaves reference evapotranspiration
(FAO-56 Eq. 52, :func:`fluxcore.aridity.hargreaves_pet`).

Ecosystem respiration (Lloyd & Taylor 1994 temperature response plus a productivity-linked
part, in the spirit of Reichstein et al. 2005 and Migliavacca et al. 2011)::

    ER = R_ref * exp(E0 * (1 / (T_ref - T0) - 1 / (TA + 273.15 - T0))) * f_RW(W)
         + k_gpp * trailing_mean(GPP, tau_gpp)                                 [gC m-2 d-1]

and ``NEE = ER - GPP`` exactly (negative = uptake).

Fallbacks (each site's fallbacks are listed in ``result.attrs["fallbacks"]``):

* no ``LAI`` column (or no LAI value at a site): ``fAPAR = fapar_max * g`` with ``g`` a
  growing-season index from the 10-day trailing mean temperature (linear ramp between
  ``t_green - 5`` and ``t_green + 5`` degC, after the GSI of Jolly et al. 2005);
* no ``P`` (or no ``TMIN``/``TMAX`` or no latitude, so no PET): no bucket, ``f_W = 1`` and
  water stress acts through ``f_VPD`` only ("VPD-only");
* no ``VPD``: ``f_VPD = 1``;
* no ``TA`` but ``TMIN`` and ``TMAX``: ``TA = (TMIN + TMAX) / 2``;
* ``SW_IN`` and a temperature are required (:class:`fluxcore.errors.DataError` otherwise).

Gaps: state variables (soil water, trailing mean GPP) need continuous series, so inside
the model each site's drivers are put on a complete daily calendar and gaps are filled by
linear interpolation in time (missing P days count as the site's mean P). Outputs are NaN on
days whose own ``SW_IN`` or temperature is missing. Snow is not modelled.

References
----------
Monteith, J. L. (1972). Solar radiation and productivity in tropical ecosystems. Journal of
Applied Ecology 9, 747-766. doi:10.2307/2401901
Running, S. W. et al. (2004). A continuous satellite-derived measure of global terrestrial
primary production. BioScience 54, 547-560.
doi:10.1641/0006-3568(2004)054[0547:ACSMOG]2.0.CO;2
Raich, J. W. et al. (1991). Potential net primary productivity in South America: application
of a global model. Ecological Applications 1, 399-429. doi:10.2307/1941899
Lloyd, J., Taylor, J. A. (1994). On the temperature dependence of soil respiration.
Functional Ecology 8, 315-323. doi:10.2307/2389824
Reichstein, M. et al. (2005). On the separation of net ecosystem exchange into assimilation
and ecosystem respiration. Global Change Biology 11, 1424-1439.
doi:10.1111/j.1365-2486.2005.001002.x
Migliavacca, M. et al. (2011). Semiempirical modeling of abiotic and biotic factors
controlling ecosystem respiration across eddy covariance sites. Global Change Biology 17,
390-409. doi:10.1111/j.1365-2486.2010.02243.x
Jolly, W. M., Nemani, R., Running, S. W. (2005). A generalized, bioclimatic index to predict
foliar phenology. Global Change Biology 11, 619-632. doi:10.1111/j.1365-2486.2005.00930.x
Allen, R. G. et al. (1998). FAO Irrigation and Drainage Paper 56 (FAO-56), Eq. 52.
Hargreaves, G. H., Samani, Z. A. (1985). doi:10.13031/2013.26773
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from .aridity import hargreaves_pet
from .errors import DataError

#: Fraction of shortwave radiation that is photosynthetically active [-].
PAR_FRACTION = 0.45
#: Converts a daily mean flux density [W m-2] to a daily sum [MJ m-2 d-1].
W_TO_MJ_PER_DAY = 0.0864
#: 0 degC in kelvin.
KELVIN = 273.15


@dataclass(frozen=True)
class ProcessModelParams:
    """Parameters of the process model (one set per site).

    Parameters
    ----------
    eps_max : float
        Maximum light-use efficiency [gC MJ-1 of absorbed PAR].
    k_ext : float
        Light extinction coefficient of Beer's law for fAPAR [-].
    t_min, t_opt, t_max : float
        Minimum, optimum and maximum temperature of photosynthesis [degC].
    vpd_open, vpd_close : float
        VPD [hPa] below which there is no VPD limitation, and at which GPP stops (MOD17).
    whc : float
        Soil water holding capacity [mm], used when the site table has no ``WHC_MM``.
    w_crit, w_wilt : float
        Relative soil water ``W / WHC`` [-] below which GPP is limited, and at which it stops.
    tau_w : float
        Response time of the vegetation to soil water [d]: GPP sees the trailing mean of the
        daily water scalar (a pulse of rain is not used at full speed the same day).
    kc_min : float
        Evapotranspiration coefficient of bare ground [-]: the bucket loses
        ``(kc_min + (1 - kc_min) * fAPAR) * PET * f_W`` per day.
    fapar_max : float
        fAPAR at full canopy when LAI is unknown [-] (fallback).
    t_green : float
        Mid-point of the temperature ramp of the fallback phenology [degC].
    r_ref : float
        Temperature-driven respiration at ``t_ref`` and wet soil [gC m-2 d-1].
    e0 : float
        Lloyd-Taylor activation-energy-like parameter [K].
    t_ref : float
        Reference temperature [K] (288.15 K = 15 degC, as Reichstein et al. 2005).
    t0 : float
        Lloyd-Taylor temperature where respiration vanishes [K] (227.13 K).
    k_gpp : float
        Productivity-linked respiration: fraction of the trailing mean GPP [-].
    tau_gpp : float
        Time constant of the trailing (exponential) mean of GPP [d].
    er_w_min : float
        Temperature-driven respiration of a dry soil relative to a wet one [-].
    t_resp_min : float
        Floor of the temperature used for respiration [degC]: soils (under snow) stay warmer
        than the air in cold spells.
    """

    eps_max: float = 1.2
    k_ext: float = 0.5
    t_min: float = -2.0
    t_opt: float = 20.0
    t_max: float = 40.0
    vpd_open: float = 6.5
    vpd_close: float = 40.0
    whc: float = 150.0
    w_crit: float = 0.5
    w_wilt: float = 0.05
    tau_w: float = 5.0
    kc_min: float = 0.3
    fapar_max: float = 0.8
    t_green: float = 5.0
    r_ref: float = 1.4
    e0: float = 308.56
    t_ref: float = 288.15
    t0: float = 227.13
    k_gpp: float = 0.4
    tau_gpp: float = 7.0
    er_w_min: float = 0.4
    t_resp_min: float = -3.0

    def to_dict(self) -> dict:
        """Plain ``dict`` of the parameters (JSON friendly)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> ProcessModelParams:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in d.items() if k in names})


#: Per-IGBP overrides of :class:`ProcessModelParams`. Illustrative values, not a
#: calibration: eps_max follows the ordering of the MOD17 biome table (Running et al. 2004)
#: scaled up by ~1.2 (MOD17 tends to underestimate tower GPP); temperature and VPD limits
#: are wider and the soil-water threshold lower for dryland classes.
IGBP_DEFAULTS: dict[str, dict[str, float]] = {
    "ENF": {"eps_max": 1.1, "t_opt": 17.0, "t_min": -4.0, "t_max": 38.0, "vpd_close": 32.0, "r_ref": 1.3},
    "EBF": {"eps_max": 1.3, "t_opt": 25.0, "t_min": 2.0, "t_max": 42.0, "vpd_close": 40.0, "r_ref": 2.0},
    "DNF": {"eps_max": 1.1, "t_opt": 16.0, "t_min": -4.0, "t_max": 36.0, "vpd_close": 32.0, "r_ref": 1.2},
    "DBF": {"eps_max": 1.35, "t_opt": 21.0, "t_min": -1.0, "t_max": 40.0, "vpd_close": 38.0, "r_ref": 1.6},
    "MF": {"eps_max": 1.2, "t_opt": 19.0, "t_min": -3.0, "t_max": 39.0, "vpd_close": 35.0, "r_ref": 1.5},
    "CSH": {"eps_max": 1.1, "t_opt": 22.0, "t_min": 0.0, "t_max": 42.0, "vpd_close": 45.0, "r_ref": 1.1,
            "w_crit": 0.4},
    "OSH": {"eps_max": 1.0, "t_opt": 24.0, "t_min": 0.0, "t_max": 46.0, "vpd_close": 55.0, "r_ref": 0.8,
            "w_crit": 0.3},
    "WSA": {"eps_max": 1.2, "t_opt": 24.0, "t_min": 1.0, "t_max": 44.0, "vpd_close": 45.0, "r_ref": 1.2,
            "w_crit": 0.4},
    "SAV": {"eps_max": 1.2, "t_opt": 25.0, "t_min": 2.0, "t_max": 45.0, "vpd_close": 48.0, "r_ref": 1.0,
            "w_crit": 0.3},
    "GRA": {"eps_max": 1.15, "t_opt": 20.0, "t_min": -1.0, "t_max": 42.0, "vpd_close": 42.0, "r_ref": 1.2,
            "w_crit": 0.35},
    "CRO": {"eps_max": 1.5, "t_opt": 22.0, "t_min": 0.0, "t_max": 40.0, "vpd_close": 40.0, "r_ref": 1.4},
    "WET": {"eps_max": 1.1, "t_opt": 20.0, "t_min": -2.0, "t_max": 38.0, "vpd_close": 40.0, "r_ref": 1.7,
            "w_crit": 0.3},
}


def default_params(igbp: str | None = None) -> ProcessModelParams:
    """Default parameters, with the per-IGBP overrides of :data:`IGBP_DEFAULTS` if known.

    Parameters
    ----------
    igbp : str, optional
        IGBP land-cover class (``"ENF"``, ``"GRA"``...). Unknown or None gives the generic
        defaults.

    Returns
    -------
    ProcessModelParams
    """
    over = IGBP_DEFAULTS.get(str(igbp).upper(), {}) if igbp is not None else {}
    return replace(ProcessModelParams(), **over)


# ----------------------------------------------------------------------------- GPP parts
def par_from_sw(sw_in) -> np.ndarray:
    """Daily photosynthetically active radiation [MJ m-2 d-1] from mean SW_IN [W m-2].

    ``PAR = 0.45 * SW_IN * 0.0864`` (0.45 = PAR fraction of global radiation; Monteith 1972,
    doi:10.2307/2401901).

    Parameters
    ----------
    sw_in : array_like
        Daily mean downward shortwave radiation [W m-2].

    Returns
    -------
    numpy.ndarray
        PAR [MJ m-2 d-1].
    """
    return PAR_FRACTION * np.asarray(sw_in, dtype=float) * W_TO_MJ_PER_DAY


def fapar_from_lai(lai, k_ext: float = 0.5) -> np.ndarray:
    """Fraction of absorbed PAR from LAI by Beer's law: ``fAPAR = 1 - exp(-k LAI)`` [-].

    Parameters
    ----------
    lai : array_like
        Leaf area index [m2 m-2]; negative values count as 0.
    k_ext : float or array_like
        Extinction coefficient [-].

    Returns
    -------
    numpy.ndarray
        fAPAR in [0, 1).

    References
    ----------
    Monsi & Saeki (1953), as used by Running et al. (2004),
    doi:10.1641/0006-3568(2004)054[0547:ACSMOG]2.0.CO;2
    """
    lai = np.maximum(np.asarray(lai, dtype=float), 0.0)
    return 1.0 - np.exp(-np.asarray(k_ext, dtype=float) * lai)


def temperature_scalar(ta, t_min=-2.0, t_opt=20.0, t_max=40.0) -> np.ndarray:
    """Temperature scalar of photosynthesis in [0, 1] (Terrestrial Ecosystem Model form).

    ``f = (T - Tmin)(T - Tmax) / [(T - Tmin)(T - Tmax) - (T - Topt)^2]`` for Tmin < T < Tmax,
    0 outside; f(Topt) = 1 (Raich et al. 1991, doi:10.2307/1941899).

    Parameters
    ----------
    ta : array_like
        Daily mean air temperature [degC].
    t_min, t_opt, t_max : float or array_like
        Limits and optimum [degC], ``t_min < t_opt < t_max``.

    Returns
    -------
    numpy.ndarray
        Scalar [-].
    """
    t = np.asarray(ta, dtype=float)
    a = (t - t_min) * (t - t_max)
    den = a - (t - t_opt) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(den != 0, a / den, 0.0)
    inside = (t > t_min) & (t < t_max)
    return np.where(inside, np.clip(f, 0.0, 1.0), np.where(np.isnan(t), np.nan, 0.0))


def vpd_scalar(vpd, vpd_open=6.5, vpd_close=40.0) -> np.ndarray:
    """VPD scalar of the MOD17 algorithm in [0, 1]: 1 below ``vpd_open``, 0 above ``vpd_close``.

    Parameters
    ----------
    vpd : array_like
        Daily mean vapour pressure deficit [hPa].
    vpd_open, vpd_close : float or array_like
        Thresholds [hPa] (MOD17: 650 and 3000-4500 Pa).

    Returns
    -------
    numpy.ndarray
        Linear ramp in between (Running et al. 2004,
        doi:10.1641/0006-3568(2004)054[0547:ACSMOG]2.0.CO;2).
    """
    v = np.asarray(vpd, dtype=float)
    return np.clip((vpd_close - v) / (np.asarray(vpd_close) - vpd_open), 0.0, 1.0)


def water_stress_scalar(rel_w, w_crit=0.5, w_wilt=0.05) -> np.ndarray:
    """Soil-water scalar in [0, 1]: a linear ramp of relative soil water ``W / WHC``.

    0 at or below ``w_wilt``, 1 at or above ``w_crit`` (the FAO-56 Eq. 84 form of the
    water-stress coefficient Ks with ``w_crit = 1 - p``).

    Parameters
    ----------
    rel_w : array_like
        Relative soil water [-] in [0, 1].
    w_crit, w_wilt : float or array_like
        Thresholds [-].

    Returns
    -------
    numpy.ndarray
        Scalar [-].
    """
    r = np.asarray(rel_w, dtype=float)
    return np.clip((r - w_wilt) / (np.asarray(w_crit) - w_wilt), 0.0, 1.0)


def water_balance(p, pet, whc, w_crit=0.5, w_wilt=0.05, w0=None, spinup_days: int = 365, kc=1.0):
    """Daily single-layer bucket model of soil water.

    For each day: ``W <- min(W + P, WHC)`` (the excess runs off), then actual
    evapotranspiration ``AET = min(kc * PET * f_W(W / WHC), W)`` is removed, with ``f_W`` from
    :func:`water_stress_scalar`. Works on a 1-D series or a 2-D array ``(sites, days)``
    (vectorised over sites, sequential over days). The initial state is the state after
    running the first ``spinup_days`` days once, starting from ``w0`` (default: full bucket).

    Parameters
    ----------
    p : array_like
        Precipitation [mm d-1], no NaN (fill gaps first).
    pet : array_like
        Potential evapotranspiration [mm d-1], e.g. Hargreaves (FAO-56 Eq. 52), no NaN.
    whc : float or array_like
        Water holding capacity [mm] (per site: shape ``(sites,)`` for 2-D input).
    w_crit, w_wilt : float or array_like
        Stress thresholds of relative soil water [-] (per site allowed).
    w0 : float or array_like, optional
        Initial soil water [mm]; default ``whc``.
    spinup_days : int
        Days of the series run once before the real run (0 disables spin-up).
    kc : float or array_like
        Evapotranspiration coefficient [-] (FAO-56 crop coefficient): a scalar, one value per
        site, or one per site and day (same shape as ``p``).

    Returns
    -------
    rel_w : numpy.ndarray
        Relative soil water after rain, before the day's evapotranspiration [-], same shape as
        ``p`` (the value the day's plants see).
    aet : numpy.ndarray
        Actual evapotranspiration [mm d-1].

    References
    ----------
    Allen et al. (1998), FAO-56, chapter 8 (water stress coefficient).
    """
    p = np.asarray(p, dtype=float)
    pet = np.asarray(pet, dtype=float)
    one_d = p.ndim == 1
    p2 = np.atleast_2d(p)
    kc = np.asarray(kc, dtype=float)
    if kc.ndim == 1 and p.ndim == 2:  # one value per site
        kc = kc[:, None]
    e2 = np.atleast_2d(pet * kc)
    n_sites, n_days = p2.shape
    whc = np.broadcast_to(np.asarray(whc, dtype=float), (n_sites,)).astype(float)
    wc = np.broadcast_to(np.asarray(w_crit, dtype=float), (n_sites,))
    ww = np.broadcast_to(np.asarray(w_wilt, dtype=float), (n_sites,))
    w = whc.copy() if w0 is None else np.broadcast_to(np.asarray(w0, dtype=float), (n_sites,)).copy()
    rel = np.empty_like(p2)
    aet = np.empty_like(p2)
    denom = np.maximum(wc - ww, 1e-9)
    safe_whc = np.maximum(whc, 1e-9)

    def step(t: int, w: np.ndarray, store: bool) -> np.ndarray:
        w = np.minimum(w + p2[:, t], whc)
        r = w / safe_whc
        f = np.clip((r - ww) / denom, 0.0, 1.0)
        e = np.minimum(e2[:, t] * f, w)
        if store:
            rel[:, t] = r
            aet[:, t] = e
        return w - e

    for t in range(min(int(spinup_days), n_days)):
        w = step(t, w, False)
    for t in range(n_days):
        w = step(t, w, True)
    if one_d:
        return rel[0], aet[0]
    return rel, aet


def lue_gpp(par, fapar, f_t=1.0, f_vpd=1.0, f_w=1.0, eps_max=1.2) -> np.ndarray:
    """Gross primary production of a light-use-efficiency model [gC m-2 d-1].

    ``GPP = eps_max * fAPAR * PAR * f_T * f_VPD * f_W`` (Monteith 1972, doi:10.2307/2401901;
    Running et al. 2004, doi:10.1641/0006-3568(2004)054[0547:ACSMOG]2.0.CO;2).

    Parameters
    ----------
    par : array_like
        Photosynthetically active radiation [MJ m-2 d-1].
    fapar : array_like
        Fraction of absorbed PAR [-].
    f_t, f_vpd, f_w : array_like
        Temperature, VPD and soil water scalars [-] in [0, 1].
    eps_max : float or array_like
        Maximum light-use efficiency [gC MJ-1].

    Returns
    -------
    numpy.ndarray
        GPP [gC m-2 d-1], never negative.
    """
    g = np.asarray(eps_max, dtype=float) * np.asarray(fapar, dtype=float) * np.asarray(par, dtype=float)
    g = g * np.asarray(f_t, dtype=float) * np.asarray(f_vpd, dtype=float) * np.asarray(f_w, dtype=float)
    return np.maximum(g, 0.0)


# ------------------------------------------------------------------------------ ER parts
def lloyd_taylor(ta, r_ref=1.4, e0=308.56, t_ref=288.15, t0=227.13) -> np.ndarray:
    """Lloyd & Taylor (1994) respiration [same unit as ``r_ref``, here gC m-2 d-1].

    ``R = R_ref * exp(E0 * (1 / (T_ref - T0) - 1 / (T - T0)))`` with T = TA + 273.15 [K];
    temperatures at or below T0 give 0 (Lloyd & Taylor 1994, doi:10.2307/2389824;
    Reichstein et al. 2005, doi:10.1111/j.1365-2486.2005.001002.x).

    Parameters
    ----------
    ta : array_like
        Air (or soil) temperature [degC].
    r_ref : float or array_like
        Respiration at the reference temperature [gC m-2 d-1].
    e0 : float or array_like
        Activation-energy-like parameter [K] (308.56 K in Lloyd & Taylor 1994).
    t_ref : float or array_like
        Reference temperature [K].
    t0 : float or array_like
        Temperature where respiration vanishes [K] (227.13 K).

    Returns
    -------
    numpy.ndarray
        Respiration [gC m-2 d-1].
    """
    tk = np.asarray(ta, dtype=float) + KELVIN
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        r = np.asarray(r_ref, dtype=float) * np.exp(e0 * (1.0 / (t_ref - t0) - 1.0 / (tk - t0)))
    return np.where(tk > t0, r, np.where(np.isnan(tk), np.nan, 0.0))


def trailing_mean(x, tau: float | np.ndarray = 7.0) -> np.ndarray:
    """Exponential trailing mean along the last axis (past and present only).

    ``m_t = a m_(t-1) + (1 - a) x_t`` with ``a = exp(-1 / tau)`` and ``m_0 = x_0``.

    Parameters
    ----------
    x : array_like
        Series, 1-D or 2-D ``(sites, days)``, no NaN.
    tau : float or array_like
        Time constant [d]; per site allowed for 2-D input (then shape ``(sites,)``).

    Returns
    -------
    numpy.ndarray
        Trailing mean, same shape as ``x``.
    """
    x = np.asarray(x, dtype=float)
    if x.shape[-1] == 0:
        return x.copy()
    taus = np.atleast_1d(np.asarray(tau, dtype=float))
    if taus.size == 1:
        a = float(np.exp(-1.0 / max(taus[0], 1e-9)))
        zi = (a * x[..., :1])
        return lfilter([1.0 - a], [1.0, -a], x, axis=-1, zi=zi)[0]
    x2 = np.atleast_2d(x)
    out = np.empty_like(x2)
    for i, t in enumerate(np.broadcast_to(taus, (x2.shape[0],))):
        out[i] = trailing_mean(x2[i], float(t))
    return out.reshape(x.shape)


def growing_season_index(ta_mean, t_green=5.0, width=10.0) -> np.ndarray:
    """Temperature ramp of a growing-season index in [0, 1] (after Jolly et al. 2005).

    0 below ``t_green - width/2``, 1 above ``t_green + width/2`` (Jolly et al. 2005,
    doi:10.1111/j.1365-2486.2005.00930.x).

    Parameters
    ----------
    ta_mean : array_like
        Trailing mean air temperature [degC].
    t_green : float or array_like
        Mid-point [degC].
    width : float
        Width of the ramp [K].

    Returns
    -------
    numpy.ndarray
        Index [-].
    """
    t = np.asarray(ta_mean, dtype=float)
    return np.clip((t - (np.asarray(t_green) - width / 2.0)) / width, 0.0, 1.0)


# --------------------------------------------------------------------------- the model
_PARAM_NAMES = tuple(f.name for f in fields(ProcessModelParams))


def _site_params(site_ids: list[str], sites: pd.DataFrame | None, params) -> dict[str, np.ndarray]:
    """Per-site parameter arrays of shape (n_sites, 1)."""
    igbp = {}
    if sites is not None and "IGBP" in sites:
        ids = sites["SITE_ID"].astype(str) if "SITE_ID" in sites else sites.index.astype(str)
        igbp = dict(zip(ids, sites["IGBP"], strict=False))
    plist = []
    for s in site_ids:
        if isinstance(params, ProcessModelParams):
            plist.append(params)
        elif isinstance(params, Mapping) and s in params:
            p = params[s]
            plist.append(p if isinstance(p, ProcessModelParams) else ProcessModelParams.from_dict(p))
        else:
            g = igbp.get(s)
            plist.append(default_params(None if g is None or (isinstance(g, float) and np.isnan(g)) else g))
    return {n: np.array([getattr(p, n) for p in plist], dtype=float)[:, None] for n in _PARAM_NAMES}


def _site_column(sites: pd.DataFrame | None, col: str, site_ids: list[str]) -> np.ndarray:
    if sites is None or col not in sites:
        return np.full(len(site_ids), np.nan)
    ids = sites["SITE_ID"].astype(str) if "SITE_ID" in sites else sites.index.astype(str)
    m = pd.Series(pd.to_numeric(sites[col], errors="coerce").to_numpy(dtype=float), index=ids.to_numpy())
    m = m[~m.index.duplicated()]
    return m.reindex(site_ids).to_numpy(dtype=float)


def _fill_time(a: np.ndarray, fill: np.ndarray | float | None = None) -> np.ndarray:
    """Linear interpolation over NaN along axis 1 (edges: nearest value).

    Rows without any value get ``fill`` (per row or scalar) or stay NaN.
    """
    out = a.copy()
    x = np.arange(a.shape[1])
    fills = np.broadcast_to(np.asarray(np.nan if fill is None else fill, dtype=float), (a.shape[0],))
    for i in range(a.shape[0]):
        ok = np.isfinite(a[i])
        if ok.all():
            continue
        if ok.any():
            out[i] = np.interp(x, x[ok], a[i, ok])
        else:
            out[i] = fills[i]
    return out


def run_process_model(
    daily: pd.DataFrame,
    sites: pd.DataFrame | None = None,
    params: ProcessModelParams | Mapping[str, ProcessModelParams] | None = None,
    *,
    diagnostics: bool = False,
) -> pd.DataFrame:
    """Run the process model on a daily driver table.

    Parameters
    ----------
    daily : pandas.DataFrame
        ``SITE_ID, DATE`` and drivers: ``SW_IN`` [W m-2] and ``TA`` [degC] (or ``TMIN`` and
        ``TMAX``) are required; ``TMIN, TMAX`` [degC], ``P`` [mm d-1], ``VPD`` [hPa] and
        ``LAI`` [m2 m-2] are used when present (see the module docstring for fallbacks).
        Several sites and gaps (missing rows or NaN) are allowed; one row per site and day.
    sites : pandas.DataFrame, optional
        Site table indexed by ``SITE_ID`` (or with a ``SITE_ID`` column); uses ``LAT`` [deg]
        (needed for Hargreaves PET), ``IGBP`` (per-class defaults) and ``WHC_MM`` [mm].
    params : ProcessModelParams or mapping of SITE_ID to ProcessModelParams, optional
        One set for all sites, or one per site (sites not in the mapping get the IGBP
        defaults); default: :func:`default_params` of each site's IGBP class.
    diagnostics : bool
        Also return the intermediate terms ``PAR, FAPAR, F_T, F_VPD, F_W, REL_W, PET, ER_T,
        ER_GPP``.

    Returns
    -------
    pandas.DataFrame
        Same index as ``daily``; ``GPP, ER, NEE`` [gC m-2 d-1] with ``NEE = ER - GPP``;
        NaN on days without ``SW_IN`` or temperature. ``attrs["fallbacks"]`` maps each site
        to the list of fallbacks used (``"no LAI"``, ``"VPD-only water stress"``...).

    Raises
    ------
    fluxcore.errors.DataError
        When a required column is missing or a site has the same date twice.
    """
    if not isinstance(daily, pd.DataFrame):
        raise DataError(None, "process model: drivers must be a pandas DataFrame")
    missing = [c for c in ("SITE_ID", "DATE", "SW_IN") if c not in daily]
    has_t = "TA" in daily or {"TMIN", "TMAX"} <= set(daily.columns)
    if missing or not has_t:
        need = missing + ([] if has_t else ["TA (or TMIN and TMAX)"])
        raise DataError(None, f"process model: driver table lacks column(s) {', '.join(need)}")
    out_cols = ["GPP", "ER", "NEE"]
    if len(daily) == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in out_cols}, index=daily.index)

    sid = daily["SITE_ID"].astype(str).to_numpy()
    dates = pd.to_datetime(daily["DATE"]).dt.normalize()
    if dates.isna().any():
        raise DataError(None, "process model: DATE has missing or unreadable values")
    codes, site_ids = pd.factorize(sid, sort=True)
    site_ids = [str(s) for s in site_ids]
    n_sites = len(site_ids)
    day_num = (dates.to_numpy().astype("datetime64[D]").astype(np.int64))
    first = np.full(n_sites, np.iinfo(np.int64).max)
    np.minimum.at(first, codes, day_num)
    offset = day_num - first[codes]
    n_days = int(offset.max()) + 1
    flat = codes.astype(np.int64) * n_days + offset
    if len(np.unique(flat)) != len(flat):
        raise DataError(None, "process model: some site has the same DATE twice")

    def grid(col: str) -> np.ndarray:
        g = np.full(n_sites * n_days, np.nan)
        if col in daily:
            g[flat] = pd.to_numeric(daily[col], errors="coerce").to_numpy(dtype=float)
        return g.reshape(n_sites, n_days)

    fallbacks: dict[str, list[str]] = {s: [] for s in site_ids}

    def has(g: np.ndarray) -> np.ndarray:
        return np.isfinite(g).any(axis=1)

    # calendar of every grid cell (for day of year)
    cal = (first[:, None] + np.arange(n_days)[None, :]).astype("datetime64[D]")
    doy = (cal - cal.astype("datetime64[Y]")).astype(np.int64) + 1

    sw = grid("SW_IN")
    ta = grid("TA")
    tmin, tmax = grid("TMIN"), grid("TMAX")
    ta = np.where(np.isfinite(ta), ta, (tmin + tmax) / 2.0)
    valid = np.isfinite(sw) & np.isfinite(ta)
    sw_f = _fill_time(sw, 0.0)
    ta_f = _fill_time(ta, 10.0)
    pp = _site_params(site_ids, sites, params)

    # light and canopy
    par = par_from_sw(np.maximum(sw_f, 0.0))
    lai = grid("LAI")
    lai_ok = has(lai)
    ta10 = trailing_mean(ta_f, 10.0)
    fapar_fb = pp["fapar_max"] * growing_season_index(ta10, pp["t_green"])
    fapar = np.where(lai_ok[:, None], fapar_from_lai(_fill_time(lai, 0.0), pp["k_ext"]), fapar_fb)
    for s, ok in zip(site_ids, lai_ok, strict=True):
        if not ok:
            fallbacks[s].append("no LAI: fAPAR from temperature phenology")

    f_t = temperature_scalar(ta_f, pp["t_min"], pp["t_opt"], pp["t_max"])
    vpd = grid("VPD")
    vpd_ok = has(vpd)
    f_vpd = np.where(vpd_ok[:, None], vpd_scalar(_fill_time(vpd, 0.0), pp["vpd_open"], pp["vpd_close"]), 1.0)
    for s, ok in zip(site_ids, vpd_ok, strict=True):
        if not ok:
            fallbacks[s].append("no VPD: f_VPD = 1")

    # water balance
    lat = _site_column(sites, "LAT", site_ids)
    whc = _site_column(sites, "WHC_MM", site_ids)
    whc = np.where(np.isfinite(whc) & (whc > 0), whc, pp["whc"][:, 0])
    p = grid("P")
    bucket_ok = has(p) & has(tmin) & has(tmax) & np.isfinite(lat)
    pet = np.full((n_sites, n_days), np.nan)
    rel_w = np.ones((n_sites, n_days))
    f_w = np.ones((n_sites, n_days))
    if bucket_ok.any():
        b = bucket_ok
        tmin_f = _fill_time(tmin[b], None)
        tmax_f = _fill_time(tmax[b], None)
        pet_b = hargreaves_pet(tmin_f, tmax_f, lat[b][:, None], doy[b])
        p_b = p[b]
        p_mean = np.nanmean(p_b, axis=1)
        p_b = np.where(np.isfinite(p_b), np.maximum(p_b, 0.0), p_mean[:, None])
        kc = pp["kc_min"][b] + (1.0 - pp["kc_min"][b]) * fapar[b]
        r, _ = water_balance(p_b, pet_b, whc[b], pp["w_crit"][b, 0], pp["w_wilt"][b, 0], kc=kc)
        rel_w[b] = r
        pet[b] = pet_b
        f_w[b] = trailing_mean(water_stress_scalar(r, pp["w_crit"][b], pp["w_wilt"][b]), pp["tau_w"][b, 0])
    for s, ok in zip(site_ids, bucket_ok, strict=True):
        if not ok:
            fallbacks[s].append("VPD-only water stress (no P, TMIN/TMAX or LAT for the bucket)")

    gpp = lue_gpp(par, fapar, f_t, f_vpd, f_w, pp["eps_max"])
    er_t = lloyd_taylor(np.maximum(ta_f, pp["t_resp_min"]), pp["r_ref"], pp["e0"], pp["t_ref"], pp["t0"])
    er_t = er_t * (pp["er_w_min"] + (1.0 - pp["er_w_min"]) * f_w)
    er_g = pp["k_gpp"] * trailing_mean(gpp, pp["tau_gpp"][:, 0])
    er = er_t + er_g

    def back(g: np.ndarray) -> np.ndarray:
        return np.where(valid, g, np.nan).reshape(-1)[flat]

    out = pd.DataFrame({"GPP": back(gpp), "ER": back(er)}, index=daily.index)
    out["NEE"] = out["ER"] - out["GPP"]
    if diagnostics:
        for name, g in (("PAR", par), ("FAPAR", fapar), ("F_T", f_t), ("F_VPD", f_vpd),
                        ("F_W", f_w), ("REL_W", rel_w), ("PET", pet), ("ER_T", er_t),
                        ("ER_GPP", er_g)):
            out[name] = back(g)
    out.attrs["fallbacks"] = {s: v for s, v in fallbacks.items() if v}
    return out


__all__ = [
    "ProcessModelParams", "IGBP_DEFAULTS", "default_params", "par_from_sw", "fapar_from_lai",
    "temperature_scalar", "vpd_scalar", "water_stress_scalar", "water_balance", "lue_gpp",
    "lloyd_taylor", "trailing_mean", "growing_season_index", "run_process_model",
]

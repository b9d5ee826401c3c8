"""Process-model parameters without peeking: literature values per IGBP class, and calibration.

Literature parameters
---------------------
:func:`literature_params` gives the parameters of :mod:`fluxcore.processmodel` for an IGBP
class from published tables only (no tower flux of this repository was used to choose them):

``eps_max`` [gC MJ-1], ``vpd_open`` / ``vpd_close`` [hPa], ``t_min`` [degC]
    The MOD17 Collection 6 biome property look-up table (BPLUT: ``LUEmax``, ``VPD_min``,
    ``VPD_max``, ``Tmin_min``; Running & Zhao 2015, MOD17 User's Guide V6; algorithm: Running
    et al. 2004, doi:10.1641/0006-3568(2004)054[0547:ACSMOG]2.0.CO;2; look-up table approach:
    Zhao et al. 2005, doi:10.1016/j.rse.2004.12.011). Units converted: kgC -> gC, Pa -> hPa.
    MOD17 applies its temperature ramp to the daily *minimum* temperature; fluxcore's
    temperature scalar uses the daily mean, so ``Tmin_min`` is used as the lower limit of
    the mean temperature (a documented approximation: slightly more permissive in cold spells).
``t_opt = 20``, ``t_max = 40`` [degC]
    The Terrestrial Ecosystem Model form of the temperature scalar (Raich et al. 1991,
    doi:10.2307/1941899) with the optimum and maximum of the VPM light-use-efficiency model
    (Xiao et al. 2004, doi:10.1016/j.rse.2003.11.008); the same for every class.
``e0 = 308.56`` K, ``t0 = 227.13`` K
    Lloyd & Taylor (1994), doi:10.2307/2389824, as used for ecosystem respiration by
    Reichstein et al. (2005), doi:10.1111/j.1365-2486.2005.001002.x.
``r_ref``, ``k_gpp`` and the soil-water and phenology parameters
    Not class-specific: the generic values of :class:`fluxcore.processmodel.ProcessModelParams`
    (``r_ref = 1.4`` gC m-2 d-1 at 15 degC, ``k_gpp = 0.4``, after the productivity-linked
    respiration of Migliavacca et al. 2011, doi:10.1111/j.1365-2486.2010.02243.x). These are
    what the calibration adjusts.

Classes outside the MOD17 table: ``WET`` (wetlands) takes the grassland (``GRA``) values
(FLUXNET wetlands are mostly herbaceous); any other class (``SNO``, ``URB``, ``BSV``...) or
an unknown class takes the generic :class:`ProcessModelParams`.

Note: the *demo world* (:mod:`fluxcore.demo`) generates its fluxes with
:data:`fluxcore.processmodel.IGBP_DEFAULTS`, a different, illustrative table; skill of the
process model (or of anything pre-trained on it) on the demo world says nothing about real
towers.

Calibration
-----------
Three parameters enter the model *linearly*: with ``G0`` the GPP at ``eps_max = 1``, ``E1``
the temperature-driven respiration at ``r_ref = 1`` and ``T1`` the trailing mean of ``G0``,

    GPP = eps_max * G0,    ER = r_ref * E1 + k_gpp * eps_max * T1,    NEE = ER - GPP.

:func:`process_basis` runs the model once per site (its own drivers only) to get the basis
``G0, E1, T1``; :func:`site_statistics` reduces a site's basis and observed fluxes to a few
sums; :func:`calibrate` fits ``eps_max, r_ref, k_gpp`` per IGBP class by bounded least
squares (:func:`scipy.optimize.least_squares`) from the statistics of the *training* sites
only (each site weighted equally, GPP and ER squared errors added). A class with no training
site keeps its literature values. The calibration is exact for the sum of squared daily
errors: the quadratic objective is written as the squared norm of a 3-element residual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from .errors import ConfigError
from .processmodel import ProcessModelParams, run_process_model

__all__ = [
    "MOD17_BPLUT", "CALIBRATED", "BOUNDS", "literature_params", "literature_table",
    "process_basis", "fluxes_from_basis", "site_statistics", "calibrate", "class_of_sites", "check_targets",
]

#: MOD17 Collection 6 BPLUT (MOD17 User's Guide V6, Running & Zhao 2015): LUEmax [kgC m-2 d-1
#: MJ-1 -> here gC MJ-1], Tmin_min [degC], VPD_min and VPD_max [Pa -> here hPa].
MOD17_BPLUT: dict[str, dict[str, float]] = {
    "ENF": {"eps_max": 1.211, "t_min": -8.0, "vpd_open": 6.5, "vpd_close": 30.0},
    "EBF": {"eps_max": 1.405, "t_min": -8.0, "vpd_open": 10.0, "vpd_close": 40.0},
    "DNF": {"eps_max": 1.227, "t_min": -8.0, "vpd_open": 6.5, "vpd_close": 35.0},
    "DBF": {"eps_max": 1.526, "t_min": -6.0, "vpd_open": 6.5, "vpd_close": 29.0},
    "MF": {"eps_max": 1.226, "t_min": -7.0, "vpd_open": 6.5, "vpd_close": 29.0},
    "CSH": {"eps_max": 1.495, "t_min": -8.0, "vpd_open": 6.5, "vpd_close": 43.0},
    "OSH": {"eps_max": 1.027, "t_min": -8.0, "vpd_open": 6.5, "vpd_close": 44.0},
    "WSA": {"eps_max": 1.498, "t_min": -8.0, "vpd_open": 6.5, "vpd_close": 35.0},
    "SAV": {"eps_max": 1.454, "t_min": -8.0, "vpd_open": 6.5, "vpd_close": 36.0},
    "GRA": {"eps_max": 1.215, "t_min": -8.0, "vpd_open": 6.5, "vpd_close": 42.0},
    "CRO": {"eps_max": 1.300, "t_min": -8.0, "vpd_open": 6.5, "vpd_close": 45.0},
}
#: Classes outside the MOD17 table that borrow a class's values.
BORROWED = {"WET": "GRA"}
#: Class-independent literature values (see the module docstring).
COMMON = {"t_opt": 20.0, "t_max": 40.0, "e0": 308.56, "t0": 227.13}

#: Parameters the calibration adjusts, and their bounds.
CALIBRATED = ("eps_max", "r_ref", "k_gpp")
BOUNDS: dict[str, tuple[float, float]] = {"eps_max": (0.2, 4.0), "r_ref": (0.05, 10.0), "k_gpp": (0.0, 1.5)}

#: Columns of :func:`process_basis`.
BASIS = ("G0", "E1", "T1")


def literature_params(igbp: str | None = None) -> ProcessModelParams:
    """Process-model parameters of an IGBP class from the literature (module docstring).

    Parameters
    ----------
    igbp : str, optional
        IGBP class (``"ENF"``...); None or a class outside the table gives the generic
        :class:`~fluxcore.processmodel.ProcessModelParams` with the Lloyd-Taylor constants.

    Returns
    -------
    ProcessModelParams
    """
    cls = None if igbp is None else str(igbp).upper()
    cls = BORROWED.get(cls, cls)
    over = {**COMMON, **MOD17_BPLUT.get(cls, {})} if cls in MOD17_BPLUT else {"e0": COMMON["e0"], "t0": COMMON["t0"]}
    return replace(ProcessModelParams(), **over)


def literature_table() -> pd.DataFrame:
    """The literature parameters of every class of :data:`MOD17_BPLUT` and ``WET``, one row each."""
    classes = list(MOD17_BPLUT) + list(BORROWED)
    return pd.DataFrame([literature_params(c).to_dict() for c in classes], index=pd.Index(classes, name="IGBP"))


def class_of_sites(site_ids: Sequence[str], sites: pd.DataFrame | None) -> dict[str, str | None]:
    """IGBP class per site id from a site table (``IGBP`` column; missing -> None)."""
    out: dict[str, str | None] = {str(s): None for s in site_ids}
    if sites is None or "IGBP" not in sites:
        return out
    ids = sites["SITE_ID"].astype(str) if "SITE_ID" in sites else sites.index.astype(str)
    for s, g in zip(ids, sites["IGBP"], strict=False):
        if s in out and isinstance(g, str) and g.strip():
            out[s] = g.strip().upper()
    return out


def _unit_params(p: ProcessModelParams) -> ProcessModelParams:
    return replace(p, eps_max=1.0, r_ref=1.0, k_gpp=1.0)


def process_basis(daily: pd.DataFrame, sites: pd.DataFrame | None = None,
                  params: Mapping[str, ProcessModelParams] | None = None) -> pd.DataFrame:
    """Linear basis ``G0, E1, T1`` of the process model (module docstring), row by row.

    Parameters
    ----------
    daily : pandas.DataFrame
        Driver table as for :func:`fluxcore.processmodel.run_process_model`.
    sites : pandas.DataFrame, optional
        Site table (``IGBP``, ``LAT``, ``WHC_MM``).
    params : mapping of SITE_ID to ProcessModelParams, optional
        Parameters per site; default :func:`literature_params` of the site's class. Their
        ``eps_max``, ``r_ref`` and ``k_gpp`` are ignored (set to 1).

    Returns
    -------
    pandas.DataFrame
        ``G0`` [gC m-2 d-1 per gC MJ-1], ``E1`` [-, gC m-2 d-1 per gC m-2 d-1], ``T1``
        (trailing mean of ``G0``), same index as ``daily``; NaN where the model gives none.
    """
    ids = daily["SITE_ID"].astype(str).unique() if "SITE_ID" in daily else []
    classes = class_of_sites(ids, sites)
    per_site = {}
    for s in ids:
        p = params.get(s) if params is not None else None
        per_site[s] = _unit_params(p if p is not None else literature_params(classes[s]))
    out = run_process_model(daily, sites, per_site, diagnostics=True)
    return pd.DataFrame({"G0": out["GPP"], "E1": out["ER_T"], "T1": out["ER_GPP"]}, index=daily.index)


def fluxes_from_basis(basis: pd.DataFrame | np.ndarray, eps_max, r_ref, k_gpp) -> pd.DataFrame:
    """``GPP, ER, NEE`` [gC m-2 d-1] from the basis and (per-row or scalar) parameters."""
    b = np.asarray(basis, dtype=float).reshape(-1, 3)
    eps, r, k = (np.asarray(v, dtype=float) for v in (eps_max, r_ref, k_gpp))
    gpp = eps * b[:, 0]
    er = r * b[:, 1] + k * eps * b[:, 2]
    index = basis.index if isinstance(basis, pd.DataFrame) else None
    return pd.DataFrame({"GPP": gpp, "ER": er, "NEE": er - gpp}, index=index)


def site_statistics(basis: np.ndarray, obs: pd.DataFrame, site_codes: np.ndarray, n_sites: int) -> dict[str, np.ndarray]:
    """Per-site sums that the calibration needs (means over the site's usable days).

    Parameters
    ----------
    basis : ndarray (n, 3)
        ``G0, E1, T1`` per row.
    obs : pandas.DataFrame
        Observed fluxes of the same rows (``GPP`` and / or ``ER`` columns; others ignored).
    site_codes : ndarray of int (n,)
        Site index of each row in ``0 .. n_sites - 1``.
    n_sites : int

    Returns
    -------
    dict
        ``gg`` (mean G0^2), ``gy`` (mean G0 GPP), ``ng`` (GPP days), ``ee`` (2 x 2 mean of
        [E1, T1] outer products), ``ey`` (mean [E1, T1] ER), ``ne`` (ER days), per site.
    """
    b = np.asarray(basis, dtype=float)
    codes = np.asarray(site_codes)
    out = {"gg": np.zeros(n_sites), "gy": np.zeros(n_sites), "ng": np.zeros(n_sites),
           "ee": np.zeros((n_sites, 2, 2)), "ey": np.zeros((n_sites, 2)), "ne": np.zeros(n_sites)}
    if "GPP" in obs:
        y = obs["GPP"].to_numpy(dtype=float)
        ok = np.isfinite(y) & np.isfinite(b[:, 0])
        c = codes[ok]
        out["ng"] = np.bincount(c, minlength=n_sites).astype(float)
        n = np.maximum(out["ng"], 1.0)
        out["gg"] = np.bincount(c, b[ok, 0] ** 2, minlength=n_sites) / n
        out["gy"] = np.bincount(c, b[ok, 0] * y[ok], minlength=n_sites) / n
    if "ER" in obs:
        y = obs["ER"].to_numpy(dtype=float)
        ok = np.isfinite(y) & np.isfinite(b[:, 1]) & np.isfinite(b[:, 2])
        c = codes[ok]
        out["ne"] = np.bincount(c, minlength=n_sites).astype(float)
        n = np.maximum(out["ne"], 1.0)
        m = b[ok][:, 1:3]
        for i in range(2):
            out["ey"][:, i] = np.bincount(c, m[:, i] * y[ok], minlength=n_sites) / n
            for j in range(2):
                out["ee"][:, i, j] = np.bincount(c, m[:, i] * m[:, j], minlength=n_sites) / n
    return out


def _sqrt_form(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(R, t)`` with ``|R x - t|^2 = x'Ax - 2b'x + const`` (A symmetric positive semi-definite)."""
    lam, Q = np.linalg.eigh(np.atleast_2d(A))
    keep = lam > max(float(lam.max(initial=0.0)), 1e-300) * 1e-10
    lam, Q = lam[keep], Q[:, keep]
    R = np.sqrt(lam)[:, None] * Q.T
    t = (Q.T @ np.atleast_1d(b)) / np.sqrt(lam)
    return R, t


def calibrate(stats: Mapping[str, np.ndarray], site_class: Sequence[str | None], train: np.ndarray,
              base: Mapping[str, ProcessModelParams] | None = None) -> dict[str, dict]:
    """Calibrate ``eps_max, r_ref, k_gpp`` per IGBP class on the training sites' statistics.

    Parameters
    ----------
    stats : mapping
        Output of :func:`site_statistics` (all sites of the run).
    site_class : sequence of str or None
        IGBP class of each site (same order as the statistics).
    train : ndarray of bool or int
        The training sites (mask or positions). Statistics of other sites are never read.
    base : mapping of class to ProcessModelParams, optional
        Starting values (default :func:`literature_params`); also the result of classes
        without training data.

    Returns
    -------
    dict
        Class -> ``{"params": {eps_max, r_ref, k_gpp}, "n_sites": int, "calibrated": bool}``
        for every class present in ``site_class`` (including classes without training sites).
    """
    train = np.asarray(train)
    idx = np.flatnonzero(train) if train.dtype == bool else train.astype(int)
    cls = np.array([c if c is not None else "" for c in site_class], dtype=object)
    out: dict[str, dict] = {}
    for c in sorted(set(cls.tolist())):
        start = (base or {}).get(c) or literature_params(c or None)
        x0 = np.array([getattr(start, n) for n in CALIBRATED], dtype=float)
        members = idx[cls[idx] == c]
        g_ok = members[stats["ng"][members] > 0]
        e_ok = members[stats["ne"][members] > 0]
        rec = {"params": dict(zip(CALIBRATED, map(float, x0), strict=True)),
               "n_sites": int(len(members)), "calibrated": False}
        if len(g_ok) == 0 and len(e_ok) == 0:
            out[c] = rec
            continue
        Rg, tg = _sqrt_form(np.array([[stats["gg"][g_ok].sum()]]), np.array([stats["gy"][g_ok].sum()]))
        Re, te = _sqrt_form(stats["ee"][e_ok].sum(axis=0), stats["ey"][e_ok].sum(axis=0))

        def residual(x, Rg=Rg, tg=tg, Re=Re, te=te):
            eps, r, k = x
            return np.concatenate([Rg @ np.array([eps]) - tg, Re @ np.array([r, k * eps]) - te])

        lo = np.array([BOUNDS[n][0] for n in CALIBRATED])
        hi = np.array([BOUNDS[n][1] for n in CALIBRATED])
        if len(g_ok) == 0:  # no GPP: eps_max stays, only respiration is fitted
            lo[0] = hi[0] = np.nan
        fixed = ~np.isfinite(lo)
        x_start = np.clip(x0, np.nan_to_num(lo, nan=-np.inf), np.nan_to_num(hi, nan=np.inf))
        if fixed.any():
            free = ~fixed

            def res_free(z, free=free, x_start=x_start):
                x = x_start.copy()
                x[free] = z
                return residual(x)

            sol = least_squares(res_free, x_start[free], bounds=(lo[free], hi[free]), method="trf")
            x = x_start.copy()
            x[free] = sol.x
        else:
            sol = least_squares(residual, x_start, bounds=(lo, hi), method="trf")
            x = sol.x
        if len(e_ok) == 0:  # no ER: respiration parameters stay
            x[1:] = x0[1:]
        rec["params"] = dict(zip(CALIBRATED, map(float, x), strict=True))
        rec["calibrated"] = True
        out[c] = rec
    return out


def check_targets(targets: Sequence[str], what: str) -> None:
    """The process model gives GPP, ER and NEE only."""
    bad = [t for t in targets if t not in ("GPP", "ER", "NEE")]
    if bad:
        raise ConfigError(f"{what}: the process model gives GPP, ER and NEE, not {bad}")

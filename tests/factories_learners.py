"""Seeded synthetic site-day data for learner tests (no dependency on fluxcore.demo)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_synthetic(n_sites: int = 8, n_days: int = 200, seed: int = 0, noise: float = 0.3,
                   start: str = "2010-01-01"):
    """Site-day features and targets with a known nonlinear relation.

    Drivers per site: TA (seasonal cycle + site offset) [degC], SW_IN [W m-2], VPD [hPa],
    P [mm d-1], a 10-day trailing mean of TA is *not* given (so that memory helps sequence
    models), and two static columns ELEV [m] and CLAY [%].

    GPP = light-use and temperature response, reduced by VPD; ER = exponential in TA (Q10) with
    a carry-over of the last 10 days of GPP; NEE = ER - GPP.

    Returns
    -------
    X : pandas.DataFrame, y : pandas.DataFrame (GPP, ER, NEE), sites : ndarray of str,
    dates : ndarray of datetime64[ns]
    """
    rng = np.random.default_rng(seed)
    rows_X, rows_y, sites, dates = [], [], [], []
    day = np.arange(n_days)
    d = pd.date_range(start, periods=n_days, freq="D").to_numpy()
    for s in range(n_sites):
        sid = f"S{s:02d}"
        t_off = rng.normal(0.0, 4.0)
        elev = rng.uniform(0.0, 1500.0)
        clay = rng.uniform(5.0, 50.0)
        season = np.sin(2 * np.pi * (day + 80) / 365.0)
        ta = 10 + t_off + 12 * season + rng.normal(0, 2.0, n_days) - elev / 300.0
        sw = np.clip(180 + 120 * season + rng.normal(0, 40, n_days), 5, None)
        vpd = np.clip(0.4 * np.maximum(ta, 0) + rng.normal(0, 1.5, n_days), 0, None)
        p = rng.gamma(0.4, 5.0, n_days)
        ws = np.clip(rng.normal(3, 1, n_days), 0, None)
        gpp = (0.03 * sw * np.clip((ta + 2) / 20, 0, 1.3) * np.exp(-vpd / 15)
               * (1 + clay / 100))
        kernel = np.ones(10) / 10
        gpp_mem = np.convolve(gpp, kernel)[:n_days]
        er = 0.8 * 2.0 ** ((ta - 10) / 10) + 0.4 * gpp_mem
        gpp = gpp + rng.normal(0, noise, n_days)
        er = er + rng.normal(0, noise, n_days)
        rows_X.append(pd.DataFrame({"TA": ta, "SW_IN": sw, "VPD": vpd, "P": p, "WS": ws,
                                    "ELEV": elev, "CLAY": clay}))
        rows_y.append(pd.DataFrame({"GPP": gpp, "ER": er, "NEE": er - gpp}))
        sites.append(np.full(n_days, sid))
        dates.append(d)
    X = pd.concat(rows_X, ignore_index=True)
    y = pd.concat(rows_y, ignore_index=True)
    return X, y, np.concatenate(sites).astype(str), np.concatenate(dates).astype("datetime64[ns]")

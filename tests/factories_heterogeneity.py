"""Seeded synthetic FluxDatasets for the heterogeneity / fuzzy / skill / report tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fluxcore.aridity import aridity_zone
from fluxcore.dataset import FluxDataset, make_sites_frame


def make_world(n_sites: int = 12, years: int = 2, seed: int = 0, start: str = "2010-01-01",
               with_static: bool = True, prefix: str | list[str] = "S") -> FluxDataset:
    """A small synthetic world: sites differ in temperature, wetness and LAI.

    ``prefix`` may be a list, cycled over the sites (e.g. ``["US-", "DE-"]``).
    Drivers follow seasonal cycles whose mean / amplitude vary by site; GPP and ER are simple
    functions of the drivers plus noise. Aridity index spans arid .. humid.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=365 * years, freq="D")
    doy = dates.day_of_year.to_numpy()
    season = np.sin(2 * np.pi * (doy - 105) / 365.0)
    ai = np.exp(rng.uniform(np.log(0.08), np.log(2.0), n_sites))
    rows, cat = [], []
    for i in range(n_sites):
        pre = prefix[i % len(prefix)] if isinstance(prefix, list) else prefix
        sid = f"{pre}{i:02d}"
        t_mean = rng.uniform(0, 22)
        t_amp = rng.uniform(4, 15)
        ta = t_mean + t_amp * season + rng.normal(0, 2, len(dates))
        p = rng.gamma(0.5, 2.0 * ai[i] * 2, len(dates))
        sw = 180 + 100 * season + rng.normal(0, 20, len(dates))
        vpd = np.clip(5 + 0.5 * ta - 3 * ai[i] + rng.normal(0, 1, len(dates)), 0, None)
        lai = np.clip(0.5 + 3 * min(ai[i], 1.5) * (0.6 + 0.4 * season), 0, None)
        ws = np.abs(rng.normal(3, 1, len(dates)))
        gpp = np.clip(0.02 * sw * lai / (1 + vpd / 10) + rng.normal(0, 0.5, len(dates)), 0, None)
        er = 0.4 * gpp + 0.8 * np.exp(0.05 * ta) + rng.normal(0, 0.3, len(dates))
        rows.append(pd.DataFrame({
            "SITE_ID": sid, "DATE": dates, "TA": ta, "TMIN": ta - rng.uniform(3, 7, len(dates)),
            "TMAX": ta + rng.uniform(3, 7, len(dates)), "P": p,
            "WS": ws, "VPD": vpd, "SW_IN": sw, "LAI": lai, "GPP": gpp, "ER": er, "NEE": er - gpp,
        }))
        c = {"SITE_ID": sid, "LAT": rng.uniform(-40, 60), "LON": rng.uniform(-120, 120),
             "IGBP": "GRA", "ARIDITY_INDEX": ai[i], "ARIDITY_ZONE": aridity_zone(ai[i])}
        if with_static:
            sand = rng.uniform(10, 70)
            clay = rng.uniform(5, 100 - sand - 5)
            c.update(ELEV=rng.uniform(0, 2000), SLOPE=rng.uniform(0, 10),
                     ASPECT=rng.uniform(0, 360), SAND=sand, CLAY=clay, SILT=100 - sand - clay)
        cat.append(c)
    daily = pd.concat(rows, ignore_index=True).sort_values(["SITE_ID", "DATE"]).reset_index(drop=True)
    return FluxDataset(sites=make_sites_frame(pd.DataFrame(cat)), daily=daily, name="synthetic-test",
                       source="tests", synthetic=True)

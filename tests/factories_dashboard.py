"""Small seeded tables in the run formats, for the dashboard's plot/map/job tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

ZONE_LIST = ["arid", "semi-arid", "semi-humid", "humid"]


def make_sites(n: int = 12, seed: int = 0) -> pd.DataFrame:
    """Site catalogue: ``SITE_ID, NAME, LAT, LON, IGBP, ARIDITY_INDEX, ARIDITY_ZONE``."""
    rng = np.random.default_rng(seed)
    ids = [f"XX-S{i:02d}" for i in range(n)]
    zones = [ZONE_LIST[i % 4] for i in range(n)]
    ai = {"arid": 0.1, "semi-arid": 0.35, "semi-humid": 0.6, "humid": 1.2}
    df = pd.DataFrame({
        "SITE_ID": ids, "NAME": [f"Site {i}" for i in range(n)],
        "LAT": np.round(rng.uniform(-40, 60, n), 3), "LON": np.round(rng.uniform(-120, 140, n), 3),
        "IGBP": [["ENF", "GRA", "CRO"][i % 3] for i in range(n)],
        "ARIDITY_INDEX": [ai[z] for z in zones], "ARIDITY_ZONE": zones,
    })
    df.index = pd.Index(ids, name="site")
    return df


def make_predictions(n_sites: int = 4, n_days: int = 100, learners=("rf", "mlr"),
                     targets=("GPP", "ER"), seed: int = 0) -> pd.DataFrame:
    """Long predictions table ``SITE_ID, DATE, learner, target, observed, predicted``."""
    rng = np.random.default_rng(seed)
    rows = []
    dates = pd.date_range("2010-01-01", periods=n_days, freq="D")
    for i in range(n_sites):
        sid = f"XX-S{i:02d}"
        for t in targets:
            obs = 5 + 3 * np.sin(np.arange(n_days) / 20.0 + i) + rng.normal(0, 0.5, n_days)
            for j, lrn in enumerate(learners):
                pred = obs + rng.normal(0.2 * j, 0.8 + 0.3 * j, n_days)
                rows.append(pd.DataFrame({"SITE_ID": sid, "DATE": dates, "learner": lrn, "target": t,
                                          "observed": obs, "predicted": pred}))
    return pd.concat(rows, ignore_index=True)

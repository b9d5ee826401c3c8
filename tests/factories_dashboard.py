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


def write_fake_run(runs_dir, dataset, sites, learners=("mlr", "rf"), targets=("GPP", "ER"), seed=0,
                   key="fakerun000000001", data="demo", params=None):
    """A finished run folder in the documented run-store format, with made-up predictions
    (observed = the dataset's values, predicted = observed + seeded noise). For page tests
    that need results without training anything."""
    import json
    from pathlib import Path

    from fluxcore.config import RunConfig
    from fluxcore.metrics import site_metrics, zone_summary

    rng = np.random.default_rng(seed)
    run = Path(runs_dir) / key
    run.mkdir(parents=True, exist_ok=True)
    d = dataset.daily[dataset.daily["SITE_ID"].isin(sites)]
    rows = []
    for j, lrn in enumerate(learners):
        for t in targets:
            g = d[["SITE_ID", "DATE", t]].dropna()
            rows.append(pd.DataFrame({"SITE_ID": g["SITE_ID"].astype(str), "DATE": g["DATE"], "learner": lrn,
                                      "target": t, "observed": g[t].to_numpy(float),
                                      "predicted": g[t].to_numpy(float) + rng.normal(0.1 * j, 1.0 + j, len(g))}))
    pred = pd.concat(rows, ignore_index=True)
    zones = {s: dataset.zone_of(s) for s in sites}
    met = site_metrics(pred, zones)
    cfg = RunConfig(data=str(data), learners=list(learners), targets=list(targets), sites=list(sites), seed=seed,
                    params=params or {})
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    manifest = {"key": key, "status": "done", "created": "2026-01-01T00:00:00", "finished": "2026-01-01T00:01:00",
                "data": {"source": str(data), "name": dataset.name, "synthetic": bool(dataset.synthetic),
                         "fingerprint": "fake"},
                "n_test_sites": len(sites), "n_folds": len(sites) * len(learners),
                "folds_done": len(sites) * len(learners), "zones": zones, "skipped": [], "code_version": "test"}
    (run / "manifest.json").write_text(json.dumps(manifest))
    pred.to_parquet(run / "predictions.parquet", index=False)
    met.to_parquet(run / "metrics.parquet", index=False)
    zone_summary(met).to_csv(run / "zone_summary.csv", index=False)
    return run

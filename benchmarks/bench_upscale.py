"""Upscaling benchmark: time and peak memory of `fluxcore.upscale.upscale` on two grids.

Cases (each measured in its own child process, so the peak resident memory [MB] is that of
the upscaling alone: reading the drivers, building features per block, predicting, writing):

* ``demo1``: the SYNTHETIC 1° North-American demo grid (``fluxcore.demogrid``), one year
  (2013), ``(time, lat, lon)`` layout, with an ``rf`` (60 trees) and an ``mlr`` final model
  trained on the demo grid's SYNTHETIC inversion (target: within 10 s);
* ``global025``: a SYNTHETIC global-size grid in the cell layout, every cell of the global 0.25°
  lattice (1440 x 720 = 1,036,800 cells, all treated as land) x 12 months, drivers ``TA, TMIN, TMAX, P, WS, VPD, SW_IN, LAI`` from smooth
  functions of latitude and month plus noise; ``mlr`` model (target: within 5 minutes and
  4 GB peak memory on 2 cores). The models use drivers-only features (no statics).

The big case must run under the shared lock::

    flock /work/bench.lock python benchmarks/bench_upscale.py --out benchmarks/results/upscale_DATE.json

Writes JSON (nothing asserted; targets reported as met or not).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DRIVERS = ("TA", "TMIN", "TMAX", "P", "WS", "VPD", "SW_IN", "LAI")


def _features() -> dict:
    from fluxcore.timeres import monthly_feature_config

    return monthly_feature_config(igbp=False, site_attributes=(), variables=DRIVERS).to_dict()


def make_model(learner: str, folder: Path):
    """A FinalModel of ``learner`` fitted on every cell-month of the 1° demo grid (SYNTHETIC)."""
    from fluxcore.demogrid import demo_grid_dataset
    from fluxcore.features import FeatureConfig, build_features
    from fluxcore.learners import make_learner
    from fluxcore.upscale import FinalModel

    ds = demo_grid_dataset(1.0)
    feats = _features()
    ft = build_features(ds, FeatureConfig.from_dict(feats), ["GPP", "ER", "NEE"])
    params = {"n_estimators": 60, "n_jobs": 2} if learner == "rf" else {}
    m = make_learner(learner, **params).fit(ft.X, ft.y, sites=np.asarray(ft.sites), dates=np.asarray(ft.dates))
    return FinalModel(models=[m], learner=learner, targets=["GPP", "ER", "NEE"], features=feats,
                      feature_names=list(ft.X.columns),
                      provenance={"run_key": "bench (no run)", "time_step": "monthly", "synthetic": True,
                                  "data_fingerprint": ds.fingerprint(), "n_sites": ds.n_sites})


def demo_one_year(folder: Path) -> Path:
    import xarray as xr

    from fluxcore.demogrid import demo_grid_path

    p = folder / "demo1_2013.nc"
    if not p.exists():
        with xr.open_dataset(demo_grid_path(1.0), engine="h5netcdf") as f:
            f.sel(time=slice("2013-01-01", "2013-12-31")).load().to_netcdf(p, engine="h5netcdf")
    return p


def global_grid(folder: Path, n_cells: int = 1440 * 720, seed: int = 0) -> Path:
    """SYNTHETIC global-size cell grid (written block by block; float32)."""
    import h5py  # noqa: F401  (h5netcdf backend)
    import pandas as pd
    import xarray as xr

    p = folder / f"global025_{n_cells}.nc"
    if p.exists():
        return p
    rng = np.random.default_rng(seed)
    nlon = 1440
    k = np.arange(n_cells)
    lat = -90.0 + 0.125 + 0.25 * (k // nlon)
    lon = -180.0 + 0.125 + 0.25 * (k % nlon)
    t = pd.date_range("2013-01-01", periods=12, freq="MS")
    season = np.cos(2 * np.pi * (t.month.to_numpy() - 7) / 12.0)[:, None] * np.sign(lat + 1e-9)[None, :]
    base = 27 - 0.45 * np.abs(lat)
    amp = 1 + 0.25 * np.abs(lat)
    ta = (base[None, :] + amp[None, :] * season + rng.normal(0, 1, (12, n_cells))).astype(np.float32)
    out = {"TA": ta, "TMIN": ta - 5, "TMAX": ta + 5}
    out["P"] = rng.gamma(2.0, 30.0, (12, n_cells)).astype(np.float32)
    out["WS"] = rng.uniform(1, 5, (12, n_cells)).astype(np.float32)
    out["VPD"] = np.clip(5 + 0.4 * ta + rng.normal(0, 1, ta.shape), 0.1, None).astype(np.float32)
    out["SW_IN"] = np.clip(200 + 80 * season - 1.2 * np.abs(lat)[None, :], 5, None).astype(np.float32)
    out["LAI"] = np.clip(2 + 1.5 * season + rng.normal(0, 0.3, ta.shape), 0.05, None).astype(np.float32)
    units = {"TA": "degC", "TMIN": "degC", "TMAX": "degC", "P": "mm month-1", "WS": "m s-1", "VPD": "hPa",
             "SW_IN": "W m-2", "LAI": "m2 m-2"}
    ds = xr.Dataset({v: (("time", "cell"), a, {"units": units[v]}) for v, a in out.items()},
                    coords={"time": t, "lat": ("cell", lat, {"units": "degrees_north"}),
                            "lon": ("cell", lon, {"units": "degrees_east"})})
    ds.attrs = {"title": "SYNTHETIC global-size 0.25 deg benchmark grid", "geospatial_lat_resolution": 0.25,
                "geospatial_lon_resolution": 0.25}
    enc = {v: {"chunksizes": (12, 50_000)} for v in out}
    ds.to_netcdf(p, engine="h5netcdf", encoding=enc)
    return p


def child(case: str, learner: str, folder: Path, chunk: int, workers: int) -> dict:
    """Run one case in this process (the parent measures the child's peak memory)."""
    from fluxcore.upscale import upscale

    grid = demo_one_year(folder) if case == "demo1" else global_grid(folder)
    model = make_model(learner, folder)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    out = upscale(model, grid, folder / f"out_{case}_{learner}.nc", chunk_cells=chunk, workers=workers)
    sec = time.perf_counter() - t0
    import xarray as xr

    with xr.open_dataset(out, engine="h5netcdf") as f:
        n_cells = int(np.prod([s for d, s in f["GPP"].sizes.items() if d != "time"]))
        finite = int(np.isfinite(f["GPP"].values).any(axis=0).sum())
        n_months = int(f.sizes["time"])
    return {"case": case, "learner": learner, "seconds": round(sec, 2), "rss_before_upscale_MB": round(rss0, 1),
            "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "cells": n_cells, "land_cells_predicted": finite, "months": n_months, "chunk_cells": chunk,
            "workers": workers, "grid_file_MB": round(Path(grid).stat().st_size / 1e6, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--cases", default="demo1:rf,demo1:mlr,global025:mlr")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=20_000)
    ap.add_argument("--folder", default=None, help="work folder for grids (default: a temporary one)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    folder = Path(a.folder or tempfile.mkdtemp(prefix="bench_upscale_"))
    folder.mkdir(parents=True, exist_ok=True)
    if a.child:
        case, learner = a.child.split(":")
        print(json.dumps(child(case, learner, folder, a.chunk, a.workers)))
        return 0
    # grids first (not timed), then each case in a fresh process
    from fluxcore.demogrid import demo_grid_path

    t0 = time.perf_counter()
    demo_grid_path(1.0)
    gen = {"demo_grid_generation_or_cache_s": round(time.perf_counter() - t0, 1)}
    results = []
    for spec in a.cases.split(","):
        cmd = [sys.executable, __file__, "--child", spec, "--folder", str(folder), "--workers", str(a.workers),
               "--chunk", str(a.chunk)]
        r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if r.returncode != 0:
            results.append({"case": spec, "error": r.stderr[-2000:]})
            continue
        res = json.loads(r.stdout.strip().splitlines()[-1])
        if res["case"] == "demo1":
            res["target"] = "within 10 s"
            res["met"] = res["seconds"] <= 10
        else:
            res["target"] = "within 300 s and 4096 MB peak on 2 cores"
            res["met"] = res["seconds"] <= 300 and res["peak_rss_MB"] <= 4096
        results.append(res)
        print(json.dumps(res), flush=True)
    report = {
        "benchmark": "bench_upscale", "date": time.strftime("%Y-%m-%d"), "data": "SYNTHETIC grids only",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "note": "shared machine (2 cores, several helpers and a long benchmark running); "
                            "timings taken under flock /work/bench.lock"},
        "setup": {"workers": a.workers, "chunk_cells": a.chunk,
                  "peak_rss_MB": "peak resident memory of the child process (model fit included; the "
                                 "'rss_before_upscale_MB' figure is the part before upscaling)"},
        **gen, "results": results,
    }
    text = json.dumps(report, indent=2)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

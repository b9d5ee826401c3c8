"""Small synthetic NetCDF grids and runs on them (tests of fluxcore.grid / fluxcore.upscale)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxcore.grid import read_grid
from fluxcore.runner import run_loso
from fluxcore.timeres import monthly_feature_config

#: Features a grid of cells can give (no IGBP, no catalogue attributes).
CELL_FEATURES = monthly_feature_config(igbp=False, site_attributes=()).to_dict()


def make_grid(path: Path, *, n_months: int = 24, lat=(40.5, 41.5, 42.5), lon=(-100.5, -99.5, -98.5),
              seed: int = 0, targets: bool = True, sea: bool = True) -> Path:
    """A small (time, lat, lon) grid: drivers in CF-style units, GPP/ER from a simple rule."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2010-01-01", periods=n_months, freq="MS")
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    shape = (n_months, len(lat), len(lon))
    season = np.sin(2 * np.pi * (t.month.to_numpy() - 4) / 12.0)[:, None, None]
    ta = 10 + 12 * season + rng.normal(0, 1, shape) - (lat[None, :, None] - 41)
    sw = np.clip(180 + 100 * season + rng.normal(0, 10, shape), 5, None)
    lai = np.clip(2 + 1.5 * season + rng.normal(0, 0.2, shape), 0.1, None)
    p = rng.gamma(2, 1.2, shape)  # mm d-1
    ds = xr.Dataset({
        "tas": (("time", "lat", "lon"), ta + 273.15, {"units": "K"}),
        "TMIN": (("time", "lat", "lon"), ta - 6, {"units": "degC"}),
        "TMAX": (("time", "lat", "lon"), ta + 6, {"units": "degC"}),
        "pr": (("time", "lat", "lon"), p, {"units": "mm d-1"}),
        "rsds": (("time", "lat", "lon"), sw, {"units": "W m-2"}),
        "LAI": (("time", "lat", "lon"), lai, {"units": "m2 m-2"}),
        "ELEV": (("lat", "lon"), rng.uniform(200, 800, shape[1:]), {"units": "m"}),
    }, coords={"time": t, "lat": ("lat", lat, {"units": "degrees_north"}),
               "lon": ("lon", lon, {"units": "degrees_east"})})
    if targets:
        gpp = np.clip(0.02 * sw * lai * (ta > 0), 0, None) + rng.normal(0, 0.1, shape)  # gC m-2 d-1
        er = 0.5 + 0.3 * np.exp(0.07 * ta)
        ds["GPP"] = (("time", "lat", "lon"), gpp, {"units": "gC m-2 d-1"})
        ds["ER"] = (("time", "lat", "lon"), er, {"units": "gC m-2 d-1"})
        ds["NEE"] = (("time", "lat", "lon"), er - gpp, {"units": "gC m-2 d-1"})
    if sea:
        for v in ds.data_vars:
            if "time" in ds[v].dims:
                ds[v][:, 0, 0] = np.nan
            else:
                ds[v][0, 0] = np.nan
    ds.attrs["title"] = "SYNTHETIC test grid"
    ds.to_netcdf(path, engine="h5netcdf")
    return path



def small_run(tmp_path: Path, grid_path: Path, learners=("mlr",), params=None) -> Path:
    """A finished leave-one-site-out run on the cells of ``grid_path`` (2 test cells)."""
    ds = read_grid(grid_path)
    cfg = {"data": str(grid_path), "learners": list(learners), "targets": ["GPP", "ER", "NEE"],
           "sites": list(ds.sites.index[:2]), "features": CELL_FEATURES,
           "params": {k: v for k, v in dict(params or {}).items() if k in learners}}
    return run_loso(cfg, dataset=ds, runs_dir=tmp_path / "runs")

"""fluxcore.grid: the CF NetCDF layout, unit conversion, and the bad-input catalogue (one clear
message naming the file and the problem; no traceback through the CLI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from factories_grid import make_grid, small_run

from fluxcore import grid
from fluxcore.cli import main
from fluxcore.errors import DataError


@pytest.fixture()
def good(tmp_path) -> Path:
    return make_grid(tmp_path / "drivers.nc")


def test_open_grid_canonical_names_units_and_cells(good):
    ds = grid.open_grid(good)
    assert ds.sizes == {"time": 24, "cell": 9}
    assert {"TA", "P", "SW_IN", "LAI", "TMIN", "TMAX", "ELEV", "GPP", "cell_area"} <= set(ds.data_vars)
    raw = xr.open_dataset(good, engine="h5netcdf")
    # K -> degC; mm d-1 -> mm month-1 (x days of the month); gC m-2 d-1 -> gC m-2 month-1
    np.testing.assert_allclose(ds["TA"].values[:, 4], raw["tas"].values[:, 1, 1] - 273.15)
    nd = pd.DatetimeIndex(raw["time"].values).days_in_month.to_numpy()
    np.testing.assert_allclose(ds["P"].values[:, 4], raw["pr"].values[:, 1, 1] * nd)
    np.testing.assert_allclose(ds["GPP"].values[:, 4], raw["GPP"].values[:, 1, 1] * nd)
    assert ds["P"].attrs["units"] == "mm month-1" and ds["GPP"].attrs["units"] == "gC m-2 month-1"
    # row-major cells: cell 4 = (lat index 1, lon index 1)
    assert float(ds["lat"][4]) == 41.5 and float(ds["lon"][4]) == -99.5
    # a 1 deg cell at 41.5 N: R^2 dlon (sin(42) - sin(41)) ~ 9,240 km2
    assert 9.0e9 < float(ds["cell_area"][4]) < 9.5e9


def test_read_grid_gives_a_monthly_cells_dataset_without_sea(good):
    d = grid.read_grid(good)
    assert d.time_step == "monthly" and d.synthetic
    assert d.n_sites == 8  # the sea cell (no driver value) is left out
    assert "C0000000" not in set(d.sites.index)
    assert {"TA", "P", "GPP", "ER", "NEE"} <= set(d.daily.columns)
    assert "ELEV" in d.sites.columns and "AREA_M2" in d.sites.columns


def test_cell_layout_is_read_too(tmp_path):
    t = pd.date_range("2001-01-01", periods=12, freq="MS")
    ds = xr.Dataset({"TA": (("time", "cell"), np.ones((12, 4)), {"units": "degC"}),
                     "lat": ("cell", [10.0, 20.0, 30.0, 40.0]), "lon": ("cell", [0.0, 190.0, 5.0, 6.0])},
                    coords={"time": t})
    ds.attrs.update(geospatial_lat_resolution=0.25, geospatial_lon_resolution=0.25)
    ds.to_netcdf(tmp_path / "c.nc", engine="h5netcdf")
    g = grid.open_grid(tmp_path / "c.nc")
    assert g.attrs["fluxcore_layout"] == "cells"
    assert float(g["lon"][1]) == -170.0  # >= 180 stored as lon - 360
    np.testing.assert_allclose(g["cell_area"].values, grid.cell_area_m2(g["lat"].values, 0.25, 0.25))


def test_cell_zones_from_p_and_hargreaves_pet(good):
    ai, zone = grid.cell_zones(grid.open_grid(good))
    assert np.isnan(ai[0]) and zone[0] == "unknown"
    assert np.all(np.isfinite(ai[1:])) and set(zone[1:]) <= {"arid", "semi-arid", "semi-humid", "humid"}


# ------------------------------------------------------------------- bad-input catalogue
def _rewrite(src: Path, dst: Path, fn) -> Path:
    ds = xr.open_dataset(src, engine="h5netcdf").load()
    fn(ds).to_netcdf(dst, engine="h5netcdf")
    return dst


def _drop_lat(ds):
    return ds.rename({"lat": "y"}).drop_vars("y").assign_coords(y=np.arange(3))


def _transpose(ds):
    return ds.assign(tas=ds["tas"].transpose("lat", "lon", "time"))


def _wrong_units(ds):
    ds["pr"].attrs["units"] = "inches"
    return ds


def _no_units(ds):
    del ds["rsds"].attrs["units"]
    return ds


def _not_monthly(ds):
    return ds.isel(time=[0, 1, 3, 4])


BAD = [
    ("missing variable", None, ("TA", "SW_IN", "VPD"), "missing variable(s): VPD"),
    ("wrong units", _wrong_units, (), "variable 'pr' (P) has units 'inches'"),
    ("no units", _no_units, (), "variable 'rsds' has no 'units' attribute"),
    ("no coordinates", _drop_lat, (), "has no lat/lon coordinates"),
    ("wrong dimension order", _transpose, (), "has dimensions ('lat', 'lon', 'time'); expected ('time', 'lat', "
                                              "'lon') in this order"),
    ("time not monthly", _not_monthly, (), "time is not monthly"),
]


@pytest.mark.parametrize(("case", "fn", "require", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_netcdf_one_clear_message_naming_the_file(good, tmp_path, case, fn, require, message):
    path = good if fn is None else _rewrite(good, tmp_path / f"{case.replace(' ', '_')}.nc", fn)
    with pytest.raises(DataError) as ei:
        grid.open_grid(path, require=require)
    text = str(ei.value)
    assert text.startswith(str(path)) and message in text, text
    assert "\n" not in text


def test_non_netcdf_file(tmp_path):
    p = tmp_path / "drivers.nc"
    p.write_text("SITE_ID,DATE,TA\nX,2010-01-01,3\n")
    with pytest.raises(DataError, match="is not a NetCDF file") as ei:
        grid.open_grid(p)
    assert ei.value.path == str(p)
    with pytest.raises(DataError, match="does not exist"):
        grid.open_grid(tmp_path / "absent.nc")


def test_damaged_hdf5_file(good, tmp_path):
    p = tmp_path / "cut.nc"
    p.write_bytes(good.read_bytes()[:600])
    with pytest.raises(DataError, match="cannot be read as NetCDF"):
        grid.open_grid(p)


@pytest.mark.parametrize("fn", [_wrong_units, _transpose, _drop_lat], ids=["units", "order", "coords"])
def test_cli_bad_grid_no_traceback(good, tmp_path, capsys, fn):
    """`fluxcore upscale` on a bad grid: exit 2, one line naming the file, no traceback."""
    run_dir = small_run(tmp_path, good)
    bad = _rewrite(good, tmp_path / "bad.nc", fn)
    rc = main(["upscale", str(run_dir), "--grid", str(bad), "--out", str(tmp_path / "o.nc"), "--learner", "mlr"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err and str(bad) in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.nc").exists()


def test_cli_non_netcdf_no_traceback(good, tmp_path, capsys):
    run_dir = small_run(tmp_path, good)
    p = tmp_path / "x.nc"
    p.write_bytes(b"PK\x03\x04 not netcdf")
    rc = main(["upscale", str(run_dir), "--grid", str(p), "--out", str(tmp_path / "o.nc")])
    err = capsys.readouterr().err
    assert rc == 2 and "is not a NetCDF file" in err and "Traceback" not in err


def test_write_grid_is_atomic_and_float32(good, tmp_path):
    ds = grid.open_grid(good)[["TA"]].compute()
    out = grid.write_grid(xr.Dataset({"TA": (("time", "cell"), ds["TA"].values)}), tmp_path / "w.nc")
    assert out is None and (tmp_path / "w.nc").is_file() and not (tmp_path / "w.nc.tmp").exists()
    with xr.open_dataset(tmp_path / "w.nc", engine="h5netcdf") as f:
        assert f["TA"].dtype == np.float32


def _no_lat(ds):
    return ds.isel(lat=slice(0, 0))


def _all_missing(ds):
    return ds.assign(**{v: ds[v] * np.nan for v in ds.data_vars if "time" in ds[v].dims})


@pytest.mark.parametrize(("fn", "message"), [(_no_lat, "has no cells: dimension 'lat' has length 0"),
                                             (_all_missing, "no cell has a value")],
                         ids=["zero-length lat", "every value missing"])
def test_grid_without_cells_is_one_clear_error(good, tmp_path, fn, message):
    """A 0-length lat dimension (was IndexError) or a grid of NaN only (was a numpy ValueError)."""
    path = _rewrite(good, tmp_path / "empty_grid.nc", fn)
    with pytest.raises(DataError) as ei:
        grid.read_grid(path)
    text = str(ei.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text, text

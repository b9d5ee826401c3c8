"""Gridded drivers and targets in NetCDF (CF layout): read, validate, write.

The layout fluxcore reads and writes is described in ``docs/regional.md``. In short:

* **grid layout**: time-varying variables with dimensions ``(time, lat, lon)`` in that order
  and 1-D coordinates ``lat`` [degrees_north], ``lon`` [degrees_east] (``latitude`` /
  ``longitude`` are accepted too);
* **cell layout**: time-varying variables with dimensions ``(time, cell)`` and the
  coordinates ``lat(cell)``, ``lon(cell)``;
* static variables (``ELEV``, ``CLAY`` ..., ``cell_area``) have the dimensions without ``time``;
* ``time`` is monthly: one value per calendar month, consecutive months, CF-encoded
  (``units = "days since ..."``) or already datetimes;
* every data variable has a ``units`` attribute; its name is a fluxcore canonical name
  (:mod:`fluxcore.variables`) or a known alias (:data:`NAME_MAP`: ``tas``, ``pr``, ``gpp``
  ...); its unit is one of :data:`UNITS` for that variable and is converted to fluxcore's
  monthly unit (:func:`fluxcore.timeres.unit_of` with ``"monthly"``).

Every problem raises :class:`fluxcore.errors.DataError` naming the file and the problem in
one sentence: missing file, a file that is not NetCDF, no ``lat``/``lon`` coordinates, no
``time``, time not monthly, a variable with the wrong dimension order, without units or with
units that cannot be converted, a required variable missing.

Public API: :func:`open_grid` (lazy, validated, canonical names and units; cells stacked on
one ``cell`` dimension), :func:`read_grid` (a monthly cells
:class:`~fluxcore.dataset.FluxDataset` through :func:`fluxcore.timeres.cells_dataset`),
:func:`grid_cells` and :func:`grid_frames` (the tables behind it), :func:`cell_area_m2`,
:func:`cell_zones` (aridity zone of each cell), :func:`write_grid` (CF NetCDF writer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .aridity import aridity_zone, hargreaves_pet
from .dataset import FluxDataset
from .errors import DataError
from .timeres import cells_dataset, unit_of
from .variables import STATIC, TARGETS, VARIABLES

#: Earth radius used for cell areas [m] (authalic sphere).
EARTH_RADIUS_M = 6_371_007.2

#: Accepted variable names (lower case) -> canonical fluxcore name. Canonical names map to
#: themselves (any case).
NAME_MAP: dict[str, str] = {
    **{k.lower(): k for k in VARIABLES},
    "tas": "TA", "t2m": "TA", "tair": "TA", "tasmin": "TMIN", "tmn": "TMIN", "tasmax": "TMAX",
    "tmx": "TMAX", "pr": "P", "pre": "P", "precip": "P", "sfcwind": "WS", "wind": "WS",
    "rsds": "SW_IN", "swdown": "SW_IN", "srad": "SW_IN", "vpd": "VPD", "lai": "LAI", "evi": "EVI",
    "gpp": "GPP", "reco": "ER", "er": "ER", "ter": "ER", "nee": "NEE", "nep_neg": "NEE",
    "elevation": "ELEV", "orog": "ELEV",
}

#: Names of the cell-area variable (static, [m2] or [km2]).
AREA_NAMES = ("cell_area", "area", "AREA_M2")

# unit conversion: canonical -> {unit string: (scale, offset, per_day?)}; per_day=True means the
# value is multiplied by the days of its month after scaling (rates -> monthly sums).
_TEMP = {"degC": (1.0, 0.0, False), "degree_Celsius": (1.0, 0.0, False), "celsius": (1.0, 0.0, False),
         "C": (1.0, 0.0, False), "K": (1.0, -273.15, False), "kelvin": (1.0, -273.15, False)}
_FLUX = {"gC m-2 month-1": (1.0, 0.0, False), "g m-2 month-1": (1.0, 0.0, False),
         "gC m-2 d-1": (1.0, 0.0, True), "g m-2 d-1": (1.0, 0.0, True), "gC m-2 day-1": (1.0, 0.0, True),
         "kg m-2 s-1": (86400e3, 0.0, True), "kgC m-2 s-1": (86400e3, 0.0, True),
         "umol m-2 s-1": (12.011e-6 * 86400.0, 0.0, True), "mol m-2 s-1": (12.011 * 86400.0, 0.0, True)}
_ONE = {"1": (1.0, 0.0, False), "-": (1.0, 0.0, False), "": (1.0, 0.0, False)}
UNITS: dict[str, dict[str, tuple[float, float, bool]]] = {
    "TA": _TEMP, "TMIN": _TEMP, "TMAX": _TEMP,
    "P": {"mm month-1": (1.0, 0.0, False), "mm d-1": (1.0, 0.0, True), "mm day-1": (1.0, 0.0, True),
          "kg m-2 s-1": (86400.0, 0.0, True), "kg m-2 month-1": (1.0, 0.0, False)},
    "WS": {"m s-1": (1.0, 0.0, False), "m/s": (1.0, 0.0, False)},
    "VPD": {"hPa": (1.0, 0.0, False), "kPa": (10.0, 0.0, False), "Pa": (0.01, 0.0, False)},
    "SW_IN": {"W m-2": (1.0, 0.0, False), "W/m2": (1.0, 0.0, False)},
    "LAI": {"m2 m-2": (1.0, 0.0, False), **_ONE},
    "EVI": dict(_ONE),
    "P_MONTHLY": {"mm d-1": (1.0, 0.0, False)}, "WS_MONTHLY": {"m s-1": (1.0, 0.0, False)},
    "ELEV": {"m": (1.0, 0.0, False)}, "SLOPE": {"deg": (1.0, 0.0, False), "degree": (1.0, 0.0, False)},
    "ASPECT": {"deg": (1.0, 0.0, False), "degree": (1.0, 0.0, False)},
    "CLAY": {"%": (1.0, 0.0, False), "percent": (1.0, 0.0, False)},
    "SAND": {"%": (1.0, 0.0, False), "percent": (1.0, 0.0, False)},
    "SILT": {"%": (1.0, 0.0, False), "percent": (1.0, 0.0, False)},
    "GPP": _FLUX, "ER": _FLUX, "NEE": _FLUX,
}
_AREA_UNITS = {"m2": 1.0, "m^2": 1.0, "km2": 1e6, "km^2": 1e6}

_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "longitude")


# ----------------------------------------------------------------------------- opening
def _open(path: Path, chunks: Any) -> xr.Dataset:
    if not path.exists():
        raise DataError(path, "does not exist (expected a NetCDF file)")
    if path.is_dir():
        raise DataError(path, "is a folder, not a NetCDF file")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        engine = "h5netcdf"
    elif head[:3] == b"CDF":
        engine = "scipy"
    else:
        raise DataError(path, "is not a NetCDF file (neither NetCDF-4/HDF5 nor NetCDF-3 signature; "
                              "give a .nc file in the layout of docs/regional.md)")
    try:
        return xr.open_dataset(path, engine=engine, chunks=chunks)
    except ImportError as exc:
        raise DataError(path, f"cannot be read: a Python package is missing ({exc}); NetCDF-4 files need "
                              "h5netcdf and h5py (pip install h5py)") from None
    except Exception as exc:  # noqa: BLE001 - xarray/h5py raise many types for damaged files
        raise DataError(path, f"cannot be read as NetCDF ({type(exc).__name__}: {str(exc)[:160]})") from None


def _coord_name(ds: xr.Dataset, names: tuple[str, ...]) -> str | None:
    for n in (*names, *(x.upper() for x in names), *(x.capitalize() for x in names)):
        if n in ds.variables:
            return n
    return None


def _canonical(name: str, name_map: Mapping[str, str] | None) -> str | None:
    if name_map and name in name_map:
        return name_map[name]
    return NAME_MAP.get(name.lower())


def _month_index(path: Path, ds: xr.Dataset) -> pd.DatetimeIndex:
    if "time" not in ds.variables:
        raise DataError(path, "has no 'time' coordinate (monthly time steps expected)")
    t = ds["time"].values
    if t.ndim != 1 or t.size == 0:
        raise DataError(path, "the 'time' coordinate must be 1-D and not empty")
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(np.asarray(t, dtype="datetime64[ns]")))
    except (TypeError, ValueError):
        try:
            idx = pd.DatetimeIndex([pd.Timestamp(str(x)) for x in t])
        except (TypeError, ValueError):
            raise DataError(path, f"time values cannot be read as dates (e.g. {t[0]!r}); give CF units "
                                  "such as 'days since 2000-01-01'") from None
    months = idx.to_period("M")
    step = np.diff(months.asi8)
    if len(idx) > 1 and not np.all(step == 1):
        i = int(np.flatnonzero(step != 1)[0])
        raise DataError(path, f"time is not monthly: {idx[i]:%Y-%m-%d} is followed by {idx[i + 1]:%Y-%m-%d} "
                              "(one value per calendar month, consecutive months expected)")
    return months.to_timestamp()


def open_grid(path: str | Path, *, require: Iterable[str] = (), name_map: Mapping[str, str] | None = None,
              chunks: int | None = None) -> xr.Dataset:
    """Open a gridded NetCDF file lazily, check it, and return it in fluxcore's form.

    Parameters
    ----------
    path : str or Path
        NetCDF-4 (HDF5) or NetCDF-3 file in the layout of ``docs/regional.md``.
    require : iterable of str
        Canonical names that must be present (e.g. the drivers a model needs).
    name_map : mapping, optional
        Extra ``{name in the file: canonical name}`` entries (take precedence over
        :data:`NAME_MAP`).
    chunks : int, optional
        Cells per Dask chunk (default: one chunk per 50,000 cells).

    Returns
    -------
    xarray.Dataset
        Dimensions ``(time, cell)``; coordinates ``time`` (month starts), ``lat(cell)``,
        ``lon(cell)`` [deg], ``cell`` (0..n-1, the position in the flattened grid); data
        variables named canonically in fluxcore's monthly units (``float64``, Dask-backed),
        static ones on ``cell`` only, ``cell_area`` [m2] when known. ``attrs`` keep the file's
        global attributes plus ``fluxcore_layout`` (``"grid"`` or ``"cells"``),
        ``fluxcore_source`` (the path) and, for the grid layout, ``fluxcore_lat`` /
        ``fluxcore_lon`` (the 1-D axes, for writing maps back).

    Raises
    ------
    DataError
        One problem per message naming the file (see the module docstring).
    """
    path = Path(path)
    ds = _open(path, chunks={})
    lat_n, lon_n = _coord_name(ds, _LAT_NAMES), _coord_name(ds, _LON_NAMES)
    if lat_n is None or lon_n is None:
        raise DataError(path, "has no lat/lon coordinates (expected variables 'lat' [degrees_north] and "
                              "'lon' [degrees_east], 1-D on the grid axes or on the 'cell' dimension)")
    months = _month_index(path, ds)
    lat, lon = ds[lat_n], ds[lon_n]
    if lat.ndim != 1 or lon.ndim != 1:
        raise DataError(path, f"coordinates {lat_n}/{lon_n} must be 1-D (got {lat.ndim}-D and {lon.ndim}-D)")
    if lat.size == 0 or lon.size == 0:
        empty = ", ".join(f"{c.dims[0]!r}" for c in (lat, lon) if c.size == 0)
        raise DataError(path, f"has no cells: dimension {empty} has length 0")
    gridded = lat.dims != lon.dims
    if gridded:
        ydim, xdim = lat.dims[0], lon.dims[0]
        tdims, sdims = ("time", ydim, xdim), (ydim, xdim)
    else:
        cdim = lat.dims[0]
        tdims, sdims = ("time", cdim), (cdim,)
    data: dict[str, tuple[str, Any, bool]] = {}
    found: dict[str, str] = {}
    for name, var in ds.data_vars.items():
        name = str(name)
        canon = "cell_area" if name in AREA_NAMES else _canonical(name, name_map)
        if canon is None:
            continue
        if canon in found:
            raise DataError(path, f"variables {found[canon]!r} and {name!r} both map to {canon}; keep one")
        found[canon] = name
        static = "time" not in var.dims
        want = sdims if static else tdims
        if tuple(var.dims) != want:
            if set(var.dims) == set(want):
                raise DataError(path, f"variable {name!r} has dimensions {tuple(var.dims)}; expected "
                                      f"{want} in this order (transpose it, e.g. with "
                                      f"'ncpdq -a {','.join(want)}')")
            raise DataError(path, f"variable {name!r} has dimensions {tuple(var.dims)}; expected {want}")
        if static and canon not in STATIC and canon != "cell_area":
            raise DataError(path, f"variable {name!r} ({canon}) has no time dimension; it varies in time "
                                  f"and needs dimensions {tdims}")
        if "units" not in var.attrs:
            raise DataError(path, f"variable {name!r} has no 'units' attribute (expected one of "
                                  f"{_unit_list(canon)})")
        data[canon] = (name, var, static)
    missing = [c for c in require if c not in data]
    if missing:
        alias = {c: sorted(k for k, v in NAME_MAP.items() if v == c and k != c.lower()) for c in missing}
        hint = "; ".join(f"{c} ({VARIABLES[c].long_name}; names {[c, *alias[c]]})" if c in VARIABLES else c
                         for c in missing)
        raise DataError(path, f"missing variable(s): {hint}")
    if not any(not s for _, _, s in data.values()):
        raise DataError(path, "has no time-varying variable fluxcore knows (names as in fluxcore.variables, "
                              f"e.g. TA, P, SW_IN, GPP, or aliases {sorted(NAME_MAP)[:8]}...)")

    ndays = xr.DataArray(months.days_in_month.to_numpy(dtype=float), dims="time")
    out: dict[str, xr.DataArray] = {}
    for canon, (name, var, static) in data.items():
        v = var.astype("float64")
        unit = str(var.attrs["units"]).strip()
        if canon == "cell_area":
            if unit not in _AREA_UNITS:
                raise DataError(path, f"variable {name!r} (cell area) has units {unit!r}; expected one of "
                                      f"{sorted(_AREA_UNITS)}")
            v = v * _AREA_UNITS[unit]
        else:
            table = UNITS.get(canon, {VARIABLES[canon].unit: (1.0, 0.0, False)})
            if unit not in table:
                raise DataError(path, f"variable {name!r} ({canon}) has units {unit!r}; expected one of "
                                      f"{_unit_list(canon)} (converted to {_target_unit(canon)})")
            scale, offset, per_day = table[unit]
            if scale != 1.0 or offset != 0.0:
                v = v * scale + offset
            if per_day:
                v = v * ndays
        v = v.variable.copy()
        if gridded:
            v = xr.Variable(("time", "cell") if not static else ("cell",),
                            v.data.reshape((len(months), -1) if not static else (-1,)))
        else:
            v = xr.Variable(("time", "cell") if not static else ("cell",), v.data)
        out[canon] = xr.DataArray(v, attrs={"units": "m2" if canon == "cell_area" else _target_unit(canon),
                                            "fluxcore_source_name": name, "fluxcore_source_units": unit})
    latv = np.asarray(lat.values, dtype=float)
    lonv = np.asarray(lon.values, dtype=float)
    if gridded:
        lat_c = np.repeat(latv, len(lonv))
        lon_c = np.tile(lonv, len(latv))
    else:
        lat_c, lon_c = latv, lonv
    bad = ~np.isfinite(lat_c) | (np.abs(lat_c) > 90) | ~np.isfinite(lon_c) | (lon_c < -180) | (lon_c >= 360)
    if bad.any():
        raise DataError(path, f"{int(bad.sum())} cell(s) with lat outside [-90, 90] or lon outside "
                              "[-180, 360) (or missing)")
    lon_c = np.where(lon_c >= 180.0, lon_c - 360.0, lon_c)
    res = xr.Dataset(out, coords={"time": ("time", months.to_numpy()), "cell": ("cell", np.arange(len(lat_c))),
                                  "lat": ("cell", lat_c), "lon": ("cell", lon_c)})
    attrs = {k: v for k, v in ds.attrs.items()}
    attrs.update(fluxcore_layout="grid" if gridded else "cells", fluxcore_source=str(path))
    if gridded:
        attrs.update(fluxcore_lat=latv, fluxcore_lon=lonv)
    res.attrs = attrs
    if "cell_area" not in res and gridded:
        res["cell_area"] = xr.DataArray(_grid_area(latv, lonv).reshape(-1), dims="cell", attrs={"units": "m2"})
    if "cell_area" not in res:
        area = _area_from_resolution(attrs, lat_c)
        if area is not None:
            res["cell_area"] = xr.DataArray(area, dims="cell", attrs={"units": "m2"})
    n = chunks or 50_000
    return res.chunk({"cell": n, "time": -1})


def _unit_list(canon: str) -> list[str]:
    if canon == "cell_area":
        return sorted(_AREA_UNITS)
    return list(UNITS.get(canon, {VARIABLES[canon].unit: None}))


def _target_unit(canon: str) -> str:
    return unit_of(canon, "monthly") if canon not in STATIC else VARIABLES[canon].unit


# ------------------------------------------------------------------------------- areas
def _edges(c: np.ndarray) -> np.ndarray:
    if len(c) == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2.0
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def _grid_area(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Area [m2] of each cell of a regular lat/lon grid, shape (lat, lon)."""
    ye = np.clip(_edges(np.asarray(lat, float)), -90.0, 90.0)
    xe = _edges(np.asarray(lon, float))
    band = np.abs(np.sin(np.radians(ye[1:])) - np.sin(np.radians(ye[:-1])))
    width = np.abs(np.radians(xe[1:] - xe[:-1]))
    return EARTH_RADIUS_M ** 2 * band[:, None] * width[None, :]


def cell_area_m2(lat: np.ndarray, dlat: float, dlon: float) -> np.ndarray:
    """Area [m2] of cells of ``dlat`` x ``dlon`` degrees centred at latitudes ``lat`` [deg]."""
    lat = np.asarray(lat, dtype=float)
    hi = np.radians(np.clip(lat + dlat / 2.0, -90.0, 90.0))
    lo = np.radians(np.clip(lat - dlat / 2.0, -90.0, 90.0))
    return EARTH_RADIUS_M ** 2 * np.radians(dlon) * np.abs(np.sin(hi) - np.sin(lo))


def _area_from_resolution(attrs: dict, lat: np.ndarray) -> np.ndarray | None:
    try:
        dy = float(attrs["geospatial_lat_resolution"])
        dx = float(attrs["geospatial_lon_resolution"])
    except (KeyError, TypeError, ValueError):
        return None
    return cell_area_m2(lat, dy, dx)


# ------------------------------------------------------------------------------ tables
def land_cells(ds: xr.Dataset) -> np.ndarray:
    """Positions (``cell`` values) of the cells with at least one finite time-varying driver."""
    drivers = [v for v in ds.data_vars if "time" in ds[v].dims and v not in TARGETS]
    if not drivers:
        drivers = [v for v in ds.data_vars if "time" in ds[v].dims]
    ok = None
    for v in drivers:
        f = np.isfinite(ds[v]).any("time")
        ok = f if ok is None else (ok | f)
    return np.flatnonzero(np.asarray(ok.values))


def cell_ids(cells: np.ndarray) -> np.ndarray:
    """``SITE_ID`` of cells (``"C0000123"``: the position in the flattened grid)."""
    return np.char.add("C", np.char.zfill(np.asarray(cells).astype(str), 7))


def grid_cells(ds: xr.Dataset) -> pd.DataFrame:
    """Catalogue of the cells of an opened grid: ``SITE_ID, LAT, LON`` (+ statics, ``AREA_M2``)."""
    out = pd.DataFrame({"SITE_ID": cell_ids(ds["cell"].values), "LAT": ds["lat"].values,
                        "LON": ds["lon"].values})
    for v in ds.data_vars:
        if "time" not in ds[v].dims:
            out["AREA_M2" if v == "cell_area" else str(v)] = np.asarray(ds[v].values, dtype=float)
    return out


def grid_frames(ds: xr.Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(cells, drivers)`` tables of an opened grid (all cells given; compute what you pass).

    ``drivers`` has ``SITE_ID, DATE`` and every time-varying variable, one row per cell and
    month (cell-major order).
    """
    cells = grid_cells(ds)
    nt, nc = ds.sizes["time"], ds.sizes["cell"]
    frame = {"SITE_ID": np.repeat(cells["SITE_ID"].to_numpy(), nt),
             "DATE": np.tile(ds["time"].values.astype("datetime64[ns]"), nc)}
    for v in ds.data_vars:
        if "time" in ds[v].dims:
            frame[str(v)] = np.asarray(ds[v].transpose("cell", "time").values, dtype=float).reshape(-1)
    return cells, pd.DataFrame(frame)


def read_grid(path: str | Path, *, require: Iterable[str] = (), name_map: Mapping[str, str] | None = None,
              land_only: bool = True, name: str | None = None) -> FluxDataset:
    """Read a gridded NetCDF file as a monthly cells dataset.

    Parameters
    ----------
    path : str or Path
        NetCDF file in the layout of ``docs/regional.md``.
    require, name_map
        As in :func:`open_grid`.
    land_only : bool, default True
        Keep only cells with at least one finite driver value (drops the sea of a lat/lon grid).
    name : str, optional
        Dataset name (default: the file's stem).

    Returns
    -------
    FluxDataset
        ``time_step="monthly"``, made by :func:`fluxcore.timeres.cells_dataset`: catalogue
        ``SITE_ID, LAT, LON`` (+ statics and ``AREA_M2`` [m2]), one row per cell and month with
        the drivers and any targets in monthly units (``GPP`` [gC m-2 month-1] ...).
        ``synthetic`` is True when the file's ``title`` or ``comment`` says ``SYNTHETIC``.

    Raises
    ------
    DataError
        Any problem of the file (see :func:`open_grid`).
    """
    path = Path(path)
    ds = open_grid(path, require=require, name_map=name_map)
    if land_only:
        land = land_cells(ds)
        if land.size == 0:
            raise DataError(path, "no cell has a value: every time-varying variable is missing "
                                  "(NaN or _FillValue) in every cell and month")
        ds = ds.isel(cell=land)
    cells, drivers = grid_frames(ds)
    text = f"{ds.attrs.get('title', '')} {ds.attrs.get('comment', '')}"
    meta = {"grid": {"path": str(path), "layout": ds.attrs["fluxcore_layout"], "n_cells": int(len(cells))}}
    return cells_dataset(cells, drivers, "monthly", name=name or path.stem, source=str(path),
                         synthetic="SYNTHETIC" in text.upper(), meta=meta)


# --------------------------------------------------------------------------- aridity
def cell_zones(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Aridity index [-] and zone of every cell of an opened grid.

    ``ARIDITY_INDEX`` as a static variable is used when present; otherwise
    ``AI = sum(P) / sum(PET)`` over the whole record with monthly PET = Hargreaves PET
    (:func:`fluxcore.aridity.hargreaves_pet`) of the monthly mean TMIN, TMAX on the
    month's middle day times the days of the month. Cells without the inputs get NaN and
    zone ``"unknown"``.
    """
    n = ds.sizes["cell"]
    if "ARIDITY_INDEX" in ds:
        ai = np.asarray(ds["ARIDITY_INDEX"].values, dtype=float)
    elif all(v in ds for v in ("P", "TMIN", "TMAX")):
        t = pd.DatetimeIndex(ds["time"].values)
        mid = (t.day_of_year + t.days_in_month // 2 - 1).to_numpy(dtype=float)
        nd = t.days_in_month.to_numpy(dtype=float)
        tmin = np.asarray(ds["TMIN"].values, float)
        tmax = np.asarray(ds["TMAX"].values, float)
        lat = np.asarray(ds["lat"].values, float)[None, :]
        pet = hargreaves_pet(tmin, tmax, lat, mid[:, None]) * nd[:, None]
        p = np.asarray(ds["P"].values, float)
        ok = np.isfinite(p) & np.isfinite(pet)
        with np.errstate(invalid="ignore", divide="ignore"):
            ai = np.where(ok, p, 0).sum(0) / np.where(ok, pet, 0).sum(0)
        ai = np.where(ok.any(0), ai, np.nan)
    else:
        ai = np.full(n, np.nan)
    zone = np.asarray(aridity_zone(ai)).astype(object)
    zone = np.where(np.isfinite(ai), zone, "unknown").astype(str)
    return ai, zone


# ---------------------------------------------------------------------------- writing
def write_grid(ds: xr.Dataset, path: str | Path, *, compute: bool = True) -> Any:
    """Write a Dataset as NetCDF-4 (h5netcdf) with zlib compression of the data variables.

    Writes to ``<path>.tmp`` first and renames, so a failed write leaves no partial file.
    Returns what :meth:`xarray.Dataset.to_netcdf` returns (a Dask delayed when
    ``compute=False``; then the caller renames ``<path>.tmp`` itself).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    enc = {v: {"zlib": True, "complevel": 1, "dtype": "float32", "_FillValue": np.float32(np.nan)}
           for v in ds.data_vars if np.issubdtype(ds[v].dtype, np.floating)}
    out = ds.to_netcdf(tmp, engine="h5netcdf", encoding=enc, compute=compute)
    if compute:
        tmp.replace(path)
    return out


__all__ = ["AREA_NAMES", "EARTH_RADIUS_M", "NAME_MAP", "UNITS", "cell_area_m2", "cell_ids", "cell_zones",
           "grid_cells", "grid_frames", "land_cells", "open_grid", "read_grid", "write_grid"]

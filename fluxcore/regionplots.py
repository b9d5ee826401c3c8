"""Figures of the regional workflow (plotly, offline; tested without Streamlit).

* :func:`map_field`: one field to map, a month [gC m-2 month-1] or the annual mean
  [gC m-2 yr-1], from upscaled fluxes;
* :func:`flux_map`: that field as a plotly heat map on the lat/lon grid with the country
  outlines of the packaged basemap (no map tiles, nothing fetched);
* :func:`monthly_cycle`: regional totals [PgC yr-1] per month (per aridity zone), optionally
  beside a reference (e.g. the SYNTHETIC inversion);
* :func:`holdout_scatter`: predicted against reference on the held-out period, with
  Pearson r, R² and RMSE;
* :func:`map_png`: the field as a PNG raster (Pillow; no browser or kaleido needed).
"""

from __future__ import annotations

import io
import json
from functools import lru_cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import xarray as xr

from .metrics import r2_score, rmse
from .plots import figure_html
from .resources import asset_path

#: Colour scale of each target (NEE diverging around 0: uptake blue, release red).
COLORSCALES = {"GPP": "Greens", "ER": "Oranges", "NEE": "RdBu_r"}
ANNUAL = "annual mean"


def map_field(fluxes: xr.Dataset, target: str, month: str | pd.Timestamp | None = None) -> tuple[xr.DataArray, str]:
    """The 2-D field to map and its unit.

    Parameters
    ----------
    fluxes : xarray.Dataset
        Upscaled monthly sums [gC m-2 month-1] on ``(time, lat, lon)``.
    target : str
    month : str or Timestamp or None
        A month (any day in it) or None / ``"annual mean"`` for the mean annual total
        (sum over the record / number of years) [gC m-2 yr-1].

    Returns
    -------
    (xarray.DataArray, str)
        Field on ``(lat, lon)`` and its unit.
    """
    v = fluxes[target]
    if month is None or month == ANNUAL:
        years = v.sizes["time"] / 12.0
        field = v.sum("time", min_count=1) / years
        return field, "gC m-2 yr-1"
    m = pd.Timestamp(month).to_period("M").to_timestamp()
    t = pd.DatetimeIndex(v["time"].values).to_period("M").to_timestamp()
    hit = np.flatnonzero(t == m)
    if not hit.size:
        raise KeyError(f"{m:%Y-%m} is not a month of the fluxes ({t[0]:%Y-%m} to {t[-1]:%Y-%m})")
    return v.isel(time=int(hit[0])), "gC m-2 month-1"


@lru_cache(maxsize=4)
def _outlines(lat0: float, lat1: float, lon0: float, lon1: float) -> tuple[np.ndarray, np.ndarray]:
    """Country outlines inside a box, as x/y arrays separated by NaN."""
    feats = json.loads(asset_path("basemap", "countries.geojson").read_text())["features"]
    xs: list = []
    ys: list = []
    for f in feats:
        g = f["geometry"]
        polys = g["coordinates"] if g["type"] == "MultiPolygon" else [g["coordinates"]]
        for poly in polys:
            for ring in poly:
                a = np.asarray(ring, dtype=float)
                if not ((a[:, 0] >= lon0) & (a[:, 0] <= lon1) & (a[:, 1] >= lat0) & (a[:, 1] <= lat1)).any():
                    continue
                xs.extend([*a[:, 0], np.nan])
                ys.extend([*a[:, 1], np.nan])
    return np.asarray(xs), np.asarray(ys)


def _limits(z: np.ndarray, target: str) -> tuple[float | None, float | None]:
    finite = z[np.isfinite(z)]
    if not finite.size:
        return None, None
    if target == "NEE":
        m = float(np.nanpercentile(np.abs(finite), 99)) or 1.0
        return -m, m
    return float(np.nanpercentile(finite, 1)), float(np.nanpercentile(finite, 99))


def flux_map(field: xr.DataArray, target: str, unit: str, title: str | None = None,
             synthetic: bool = False) -> go.Figure:
    """Heat map of a ``(lat, lon)`` field with country outlines (offline).

    Parameters
    ----------
    field : xarray.DataArray
        Values on ``(lat, lon)`` (NaN: no land / no value).
    target : str
        ``GPP``, ``ER`` or ``NEE`` (chooses the colour scale; NEE is centred on 0).
    unit : str
        Unit shown on the colour bar.
    title : str, optional
    synthetic : bool
        Put "SYNTHETIC" in the title.
    """
    lat = np.asarray(field["lat"].values, dtype=float)
    lon = np.asarray(field["lon"].values, dtype=float)
    z = np.asarray(field.transpose("lat", "lon").values, dtype=float)
    lo, hi = _limits(z, target)
    fig = go.Figure(go.Heatmap(x=lon, y=lat, z=z, colorscale=COLORSCALES.get(target, "Viridis"), zmin=lo, zmax=hi,
                               colorbar={"title": {"text": f"{target}<br>[{unit}]"}},
                               hovertemplate="lat %{y:.2f}, lon %{x:.2f}<br>%{z:.1f} " + unit + "<extra></extra>"))
    pad = float(np.nanmax(np.abs(np.diff(lat)))) if len(lat) > 1 else 1.0
    xs, ys = _outlines(float(lat.min() - pad), float(lat.max() + pad), float(lon.min() - pad), float(lon.max() + pad))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": "rgba(60,60,60,0.6)", "width": 0.7},
                             hoverinfo="skip", showlegend=False))
    t = title or f"{target} [{unit}]"
    fig.update_layout(title=("SYNTHETIC · " if synthetic else "") + t, margin={"l": 40, "r": 10, "t": 50, "b": 40},
                      xaxis={"title": "longitude [deg]", "range": [lon.min() - pad / 2, lon.max() + pad / 2]},
                      yaxis={"title": "latitude [deg]", "range": [lat.min() - pad / 2, lat.max() + pad / 2],
                             "scaleanchor": "x", "scaleratio": 1.0 / max(np.cos(np.radians(np.nanmean(lat))), 0.2)},
                      plot_bgcolor="white", height=520)
    return fig


def monthly_cycle(totals: pd.DataFrame, target: str, reference: pd.DataFrame | None = None,
                  zones: list[str] | None = None, synthetic: bool = False) -> go.Figure:
    """Regional totals [PgC yr-1] per month, one line per zone (``"all"`` first).

    ``totals`` and ``reference`` come from :func:`fluxcore.upscale.regional_totals`; the
    reference (e.g. the inversion the model was trained on) is drawn dashed.
    """
    d = totals[totals["target"] == target]
    zs = zones or ["all", *sorted(z for z in d["zone"].unique() if z != "all")]
    fig = go.Figure()
    for i, z in enumerate(zs):
        s = d[d["zone"] == z].sort_values("DATE")
        fig.add_trace(go.Scatter(x=s["DATE"], y=s["total_PgC_yr"], mode="lines+markers", name=f"{z} (model)",
                                 line={"width": 3 if z == "all" else 1.5}, legendgroup=z))
        if reference is not None:
            r = reference[(reference["target"] == target) & (reference["zone"] == z)].sort_values("DATE")
            if len(r):
                fig.add_trace(go.Scatter(x=r["DATE"], y=r["total_PgC_yr"], mode="lines", name=f"{z} (reference)",
                                         line={"dash": "dash", "width": 1.5}, legendgroup=z, visible=None if i == 0
                                         else "legendonly"))
    fig.update_layout(title=("SYNTHETIC · " if synthetic else "") + f"Regional {target}: monthly totals",
                      yaxis_title=f"{target} [PgC yr-1]", xaxis_title="month", height=420,
                      margin={"l": 50, "r": 10, "t": 50, "b": 40})
    return fig


def holdout_stats(observed, predicted) -> dict:
    """``n``, Pearson ``r``, ``R2`` and ``RMSE`` of finite pairs."""
    o = np.asarray(observed, dtype=float)
    p = np.asarray(predicted, dtype=float)
    ok = np.isfinite(o) & np.isfinite(p)
    o, p = o[ok], p[ok]
    r = float(np.corrcoef(o, p)[0, 1]) if len(o) > 1 and o.std() > 0 and p.std() > 0 else float("nan")
    return {"n": int(len(o)), "r": r, "R2": r2_score(o, p), "RMSE": rmse(o, p)}


def holdout_scatter(df: pd.DataFrame, target: str, title: str | None = None, synthetic: bool = False,
                    max_points: int = 20_000, seed: int = 0) -> go.Figure:
    """Predicted against reference for ``target`` (``df``: ``target, observed, predicted``).

    Pearson r, R² and RMSE [gC m-2 month-1] in the title are computed on every pair; above
    ``max_points`` a random subset (fixed ``seed``) is drawn.
    """
    d = df[df["target"] == target]
    s = holdout_stats(d["observed"], d["predicted"])
    if len(d) > max_points:
        d = d.sample(max_points, random_state=seed)
    lo = float(np.nanmin([d["observed"].min(), d["predicted"].min()])) if len(d) else 0.0
    hi = float(np.nanmax([d["observed"].max(), d["predicted"].max()])) if len(d) else 1.0
    fig = go.Figure(go.Scattergl(x=d["observed"], y=d["predicted"], mode="markers",
                                 marker={"size": 4, "opacity": 0.4}, name=target))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line={"color": "grey", "dash": "dot"},
                             name="1:1", hoverinfo="skip"))
    t = title or f"{target}: held-out period"
    fig.update_layout(title=("SYNTHETIC · " if synthetic else "") +
                      f"{t} (n = {s['n']}, r = {s['r']:.2f}, R² = {s['R2']:.2f}, RMSE = {s['RMSE']:.1f})",
                      xaxis_title=f"reference {target} [gC m-2 month-1]",
                      yaxis_title=f"predicted {target} [gC m-2 month-1]", height=440, showlegend=False,
                      margin={"l": 50, "r": 10, "t": 50, "b": 40})
    return fig


def _ramp(target: str) -> np.ndarray:
    """256 x 3 uint8 colour ramp (white-green, white-orange, blue-white-red)."""
    x = np.linspace(0, 1, 256)[:, None]
    if target == "NEE":
        blue, white, red = np.array([33, 102, 172]), np.array([247, 247, 247]), np.array([178, 24, 43])
        c = np.where(x < 0.5, blue + (white - blue) * (x / 0.5), white + (red - white) * ((x - 0.5) / 0.5))
    else:
        end = np.array([0, 109, 44]) if target != "ER" else np.array([166, 54, 3])
        c = np.array([247, 252, 245]) + (end - np.array([247, 252, 245])) * x
    return np.clip(c, 0, 255).astype(np.uint8)


def map_png(field: xr.DataArray, target: str, unit: str, scale: int = 4, synthetic: bool = False) -> bytes:
    """PNG of a ``(lat, lon)`` field: ``scale`` pixels per cell, north up, grey where NaN, a
    colour bar with its range and unit below (Pillow only; no browser needed)."""
    from PIL import Image, ImageDraw

    z = np.asarray(field.transpose("lat", "lon").values, dtype=float)
    lat = np.asarray(field["lat"].values, dtype=float)
    if len(lat) > 1 and lat[0] < lat[-1]:
        z = z[::-1]
    lo, hi = _limits(z, target)
    lo = 0.0 if lo is None else lo
    hi = 1.0 if hi is None or hi == lo else hi
    idx = np.clip(((z - lo) / (hi - lo) * 255), 0, 255)
    rgb = _ramp(target)[np.nan_to_num(idx, nan=0).astype(int)]
    rgb[~np.isfinite(z)] = (215, 215, 215)
    img = Image.fromarray(rgb.astype(np.uint8), "RGB").resize((z.shape[1] * scale, z.shape[0] * scale),
                                                               Image.NEAREST)
    w, h = img.size
    canvas = Image.new("RGB", (max(w, 360), h + 46), "white")
    canvas.paste(img, (0, 0))
    bar = Image.fromarray(np.repeat(_ramp(target)[None, :, :], 12, axis=0), "RGB").resize((256, 12))
    canvas.paste(bar, (10, h + 6))
    d = ImageDraw.Draw(canvas)
    d.text((10, h + 20), f"{lo:.1f}", fill="black")
    d.text((220, h + 20), f"{hi:.1f}", fill="black")
    d.text((275, h + 4), f"{target} [{unit}]", fill="black")
    if synthetic:
        d.text((275, h + 20), "SYNTHETIC", fill=(178, 24, 43))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


__all__ = ["ANNUAL", "COLORSCALES", "figure_html", "flux_map", "holdout_scatter", "holdout_stats", "map_field",
           "map_png", "monthly_cycle"]

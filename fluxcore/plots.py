"""Plotly figures of fluxcore results (used by the dashboard, tested without Streamlit).

Every function takes plain DataFrames in the documented run formats
(``predictions.parquet``: ``SITE_ID, DATE, learner, target, observed, predicted``;
``metrics.parquet``: ``SITE_ID, learner, target, zone, R2, r2, RMSE, MAE, bias, n``;
``zone_summary.csv``) and returns a :class:`plotly.graph_objects.Figure`.

Scores shown in figures come from :func:`fluxcore.metrics.scores` (R² = 1 - SSE/SST, the
coefficient of determination, and r² = squared Pearson correlation; they differ whenever
predictions are biased or scaled; see Gao et al. 2025 and Pastorello et al. 2020,
doi:10.1038/s41597-020-0534-3, for the variables). Correlations between heterogeneity
distance and skill come from :func:`fluxcore.heterogeneity.distance_skill`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go

#: Colours of the aridity zones (ColorBrewer BrBG, colour-blind safe), dry = brown, wet = teal.
ZONE_COLORS: dict[str, str] = {
    "arid": "#a6611a",
    "semi-arid": "#dfc27d",
    "semi-humid": "#80cdc1",
    "humid": "#018571",
    "unknown": "#9e9e9e",
}
#: Colours of the learners (Okabe-Ito palette); other names cycle through FALLBACK_COLORS.
LEARNER_COLORS: dict[str, str] = {
    "lstm": "#0072B2",
    "rf": "#009E73",
    "svm": "#D55E00",
    "mlr": "#CC79A7",
    "lstm_fuzzy": "#56B4E9",
}
FALLBACK_COLORS = ["#E69F00", "#F0E442", "#000000", "#999999", "#882255", "#44AA99"]
#: Above this many points a scatter plot becomes a 2-D histogram (density view).
DENSITY_THRESHOLD = 20_000
FLUX_UNIT = "gC m⁻² d⁻¹"
TEMPLATE = "plotly_white"


def learner_color(name: str, i: int = 0) -> str:
    """Colour of a learner (fixed for the paper's four, cycling otherwise)."""
    return LEARNER_COLORS.get(name, FALLBACK_COLORS[i % len(FALLBACK_COLORS)])


def _scores(obs, pred) -> dict:
    from .metrics import scores

    return scores(np.asarray(obs, dtype=float), np.asarray(pred, dtype=float))


def stats_text(s: Mapping, unit: str = FLUX_UNIT) -> str:
    """``R² = …<br>r² = …<br>RMSE = … unit<br>n = …`` for a figure annotation."""
    def f(v, fmt):
        return "n/a" if v is None or not np.isfinite(v) else format(v, fmt)

    return (f"R² = {f(s['R2'], '.3f')}<br>r² = {f(s['r2'], '.3f')}<br>"
            f"RMSE = {f(s['RMSE'], '.3f')} {unit}<br>n = {int(s['n']):,}")


def _with_zone(pred: pd.DataFrame, zones: Mapping | pd.Series | None) -> pd.DataFrame:
    if "zone" in pred.columns or zones is None:
        return pred
    zone = pred["SITE_ID"].astype(object).map(dict(zones))  # missing sites -> NaN
    return pred.assign(zone=zone.to_numpy(dtype=object))


def _unique(values: pd.Series) -> list[str]:
    """Distinct values in order of appearance (fast on large and categorical columns)."""
    return [str(v) for v in pd.unique(values.to_numpy(dtype=object))] if len(values) else []


def scatter_pred_obs(
    predictions: pd.DataFrame,
    *,
    target: str | None = None,
    learners: Sequence[str] | None = None,
    color_by: str | None = "zone",
    zones: Mapping | pd.Series | None = None,
    density: bool | None = None,
    threshold: int = DENSITY_THRESHOLD,
    title: str | None = None,
    unit: str = FLUX_UNIT,
) -> go.Figure:
    """Predicted against observed values with a 1:1 line and R², r², RMSE, n in the figure.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``SITE_ID, learner, target, observed, predicted`` (+ ``zone`` optional).
    target : str, optional
        Keep this target only (e.g. ``"GPP"``).
    learners : sequence of str, optional
        Keep these learners only.
    color_by : {"zone", "learner", None}
        Colour of the points (scatter mode). With several learners the annotation has one
        line of scores per learner; otherwise the scores of all points.
    zones : mapping, optional
        Zone per ``SITE_ID`` when ``predictions`` has no ``zone`` column.
    density : bool, optional
        Force (True) or forbid (False) the density view; by default it is used when there
        are more than ``threshold`` points.
    threshold : int
        Number of points above which the density view is used.
    title, unit : str
        Figure title and flux unit for axis labels.

    Returns
    -------
    plotly.graph_objects.Figure
        Scatter traces (``go.Scattergl``), or in density view one ``go.Heatmap`` of counts
        binned on the server (:func:`density_grid`), plus a dashed ``"1:1"`` line trace and one
        annotation with the scores (always from all points).
    """
    df = predictions
    if target is not None:
        df = df[df["target"] == target]
    if learners is not None:
        df = df[df["learner"].isin(list(learners))]
    df = df[np.isfinite(df["observed"].astype(float)) & np.isfinite(df["predicted"].astype(float))]
    n = len(df)
    use_density = (n > threshold) if density is None else bool(density)
    if not use_density and color_by == "zone":
        df = _with_zone(df, zones)
    fig = go.Figure()
    learner_list = _unique(df["learner"])
    if use_density and n:
        # binned on the server ("datashading by binning"): the browser gets a bins x bins
        # grid of counts instead of every point
        counts, xe, ye = density_grid(df["observed"].to_numpy(float), df["predicted"].to_numpy(float))
        z = np.where(counts > 0, counts, np.nan).T  # rows = y bins
        fig.add_trace(go.Heatmap(
            x=0.5 * (xe[:-1] + xe[1:]), y=0.5 * (ye[:-1] + ye[1:]), z=z, name="density",
            colorscale="Viridis", colorbar={"title": {"text": "days"}}, hoverongaps=False,
            hovertemplate="observed %{x:.2f}<br>predicted %{y:.2f}<br>%{z} days<extra></extra>",
        ))
    elif n:
        if color_by == "learner":
            groups = [(lrn, df[df["learner"] == lrn], learner_color(lrn, i)) for i, lrn in enumerate(learner_list)]
        elif color_by == "zone" and "zone" in df.columns:
            zcol = df["zone"].where(df["zone"].notna(), "unknown").astype(str)
            groups = [(z, df[zcol == z], ZONE_COLORS.get(z, "#777")) for z in ZONE_COLORS if (zcol == z).any()]
        else:
            groups = [("points", df, "#1f77b4")]
        for name, g, color in groups:
            fig.add_trace(go.Scattergl(
                x=g["observed"].to_numpy(float), y=g["predicted"].to_numpy(float), mode="markers",
                name=str(name), marker={"color": color, "size": 4, "opacity": 0.55, "line": {"width": 0}},
                text=g["SITE_ID"].astype(str).to_numpy(),
                hovertemplate="%{text}<br>observed %{x:.2f}<br>predicted %{y:.2f}<extra>" + str(name) + "</extra>",
            ))
    # 1:1 line over the data range
    if n:
        lo = float(min(df["observed"].min(), df["predicted"].min()))
        hi = float(max(df["observed"].max(), df["predicted"].max()))
    else:
        lo, hi = 0.0, 1.0
    pad = 0.02 * (hi - lo if hi > lo else 1.0)
    fig.add_trace(go.Scatter(x=[lo - pad, hi + pad], y=[lo - pad, hi + pad], mode="lines", name="1:1",
                             line={"color": "#333", "dash": "dash", "width": 1.2}, hoverinfo="skip"))
    # annotation with scores
    if len(learner_list) > 1:
        lines = []
        for lrn in learner_list:
            g = df[df["learner"] == lrn]
            s = _scores(g["observed"], g["predicted"])
            lines.append(f"<b>{lrn}</b>: R² {s['R2']:.3f}, r² {s['r2']:.3f}, RMSE {s['RMSE']:.3f}, n {s['n']:,}")
        text = "<br>".join(lines) + f"<br>RMSE in {unit}"
    else:
        s = _scores(df["observed"], df["predicted"]) if n else {"R2": np.nan, "r2": np.nan, "RMSE": np.nan, "n": 0}
        text = stats_text(s, unit)
    fig.add_annotation(x=0.02, y=0.98, xref="paper", yref="paper", xanchor="left", yanchor="top",
                       text=text, showarrow=False, align="left", name="scores",
                       bgcolor="rgba(255,255,255,0.85)", bordercolor="#bbb", borderwidth=1,
                       font={"size": 12})
    tname = target or "flux"
    fig.update_layout(
        template=TEMPLATE, showlegend=True,
        title=title or f"{tname}: predicted vs observed" + (" (density)" if use_density else ""),
        xaxis_title=f"observed {tname} [{unit}]", yaxis_title=f"predicted {tname} [{unit}]",
        legend={"title": {"text": color_by or ""}, "itemsizing": "constant", "orientation": "h",
                "y": -0.18, "x": 0},
        margin={"l": 60, "r": 20, "t": 50, "b": 60}, height=520,
    )
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def density_grid(x: np.ndarray, y: np.ndarray, bins: int = 150) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of (x, y) pairs on a common square grid (same edges on both axes).

    Returns
    -------
    counts : numpy.ndarray
        ``(bins, bins)``, ``counts[i, j]`` = points with x in bin i and y in bin j.
    xedges, yedges : numpy.ndarray
        Bin edges (``bins + 1``).
    """
    lo = float(min(np.nanmin(x), np.nanmin(y)))
    hi = float(max(np.nanmax(x), np.nanmax(y)))
    if not hi > lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    counts, xe, ye = np.histogram2d(x, y, bins=[edges, edges])
    return counts, xe, ye


def timeseries(
    predictions: pd.DataFrame,
    site: str,
    target: str,
    *,
    learners: Sequence[str] | None = None,
    unit: str = FLUX_UNIT,
) -> go.Figure:
    """Observed and each learner's predicted daily series at one (held-out) site.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``"observed"`` trace and one trace per learner, x = ``DATE``.
    """
    df = predictions[(predictions["SITE_ID"].astype(str) == str(site)) & (predictions["target"] == target)]
    if learners is not None:
        df = df[df["learner"].isin(list(learners))]
    df = df.sort_values("DATE")
    fig = go.Figure()
    obs = df.drop_duplicates("DATE")
    fig.add_trace(go.Scattergl(x=obs["DATE"], y=obs["observed"], mode="markers", name="observed",
                               marker={"color": "#222", "size": 3}))
    for i, lrn in enumerate(_unique(df["learner"])):
        g = df[df["learner"] == lrn]
        s = _scores(g["observed"], g["predicted"])
        fig.add_trace(go.Scattergl(x=g["DATE"], y=g["predicted"], mode="lines",
                                   name=f"{lrn} (R² {s['R2']:.2f})",
                                   line={"color": learner_color(lrn, i), "width": 1.3}))
    fig.update_layout(template=TEMPLATE, title=f"{site}: {target}, observed and predicted (site held out)",
                      xaxis_title="date", yaxis_title=f"{target} [{unit}]", height=380,
                      margin={"l": 60, "r": 20, "t": 50, "b": 40}, legend={"orientation": "h", "y": -0.2})
    return fig


def metric_box(metrics: pd.DataFrame, target: str, metric: str = "R2", by: str = "zone") -> go.Figure:
    """Distribution of a per-site score by learner, grouped by aridity zone (box plot)."""
    from .variables import ZONES

    m = metrics[metrics["target"] == target]
    fig = go.Figure()
    for i, lrn in enumerate(_unique(m["learner"])):
        g = m[m["learner"] == lrn]
        fig.add_trace(go.Box(x=g[by].fillna("unknown") if by in g else None, y=g[metric], name=lrn,
                             marker_color=learner_color(lrn, i), boxpoints="all", jitter=0.3,
                             pointpos=0, customdata=g["SITE_ID"],
                             hovertemplate="%{customdata}: %{y:.3f}<extra>" + lrn + "</extra>"))
    order = [z for z in ZONES if z in set(m.get(by, pd.Series(dtype=str)).dropna())]
    fig.update_layout(template=TEMPLATE, boxmode="group", title=f"{target}: {metric} per site by {by}",
                      yaxis_title=metric, height=380, margin={"l": 60, "r": 20, "t": 50, "b": 40},
                      xaxis={"categoryorder": "array", "categoryarray": order})
    return fig


def table3_frame(zone_summary: pd.DataFrame, target: str, decimals: int = 3) -> pd.DataFrame:
    """Paper Table 3 for one target: rows = zone, columns = ``"<learner> RMSE mean|var"``.

    Flat column names (easy to show and to download); values rounded.
    """
    from .metrics import table3

    t = table3(zone_summary, target)
    if t.empty:
        return t
    stat = {"rmse_mean": "RMSE mean", "rmse_var": "RMSE var"}
    t = t.copy()
    t.columns = [f"{lrn} {stat.get(s, s)}" for lrn, s in t.columns]
    t.index.name = "zone"
    return t.round(decimals)


def distance_skill_figure(
    metrics: pd.DataFrame,
    distances: pd.DataFrame,
    *,
    learner: str,
    target: str,
    distance: str = "D_mean",
    metric: str = "R2",
    zones: Sequence[str] | None = None,
) -> go.Figure:
    """Each test site's heterogeneity distance against its skill, with fitted line and
    Pearson/Spearman correlations (with p-values) from
    :func:`fluxcore.heterogeneity.distance_skill`.

    Returns
    -------
    plotly.graph_objects.Figure
        One marker trace per zone, a ``"fit"`` line trace, and an annotation with n, Pearson r
        (p) and Spearman ρ (p) for all shown sites.
    """
    from .heterogeneity import SMALL_SAMPLE_N, distance_skill, fit_formula, format_correlation

    m = metrics[(metrics["learner"] == learner) & (metrics["target"] == target)]
    if zones:
        m = m[m["zone"].isin(list(zones))]
    dist = distances[["SITE_ID", distance]].drop_duplicates("SITE_ID")
    d = m.drop(columns=[distance], errors="ignore").merge(dist, on="SITE_ID", how="inner")
    d = d[np.isfinite(d[distance].astype(float)) & np.isfinite(d[metric].astype(float))]
    fig = go.Figure()
    zcol = d["zone"].where(d["zone"].notna(), "unknown").astype(str) if len(d) else pd.Series(dtype=str)
    for z in ZONE_COLORS:
        g = d[zcol == z] if len(d) else d
        if not len(g):
            continue
        fig.add_trace(go.Scatter(x=g[distance], y=g[metric], mode="markers", name=z,
                                 marker={"color": ZONE_COLORS[z], "size": 9, "line": {"color": "#333", "width": 0.6}},
                                 customdata=g["SITE_ID"],
                                 hovertemplate="%{customdata}<br>" + distance + " %{x:.3f}<br>" + metric + " %{y:.3f}<extra></extra>"))
    st = distance_skill(d, d[["SITE_ID", distance]], by=[], distance=distance, metric=metric) if len(d) else pd.DataFrame()
    row = st[st["zone"] == "all"].iloc[0].to_dict() if len(st) else None
    if row is not None and np.isfinite(row["slope"]):
        xs = np.linspace(float(d[distance].min()), float(d[distance].max()), 50)
        fig.add_trace(go.Scatter(x=xs, y=row["intercept"] + row["slope"] * xs, mode="lines", name="fit",
                                 line={"color": "#333", "width": 1.5}, hoverinfo="skip"))
    if row is None:
        text = "n = 0 sites"
    else:
        text = (f"Pearson {format_correlation(row, 'pearson')}<br>Spearman {format_correlation(row, 'spearman')}"
                f"<br>{fit_formula(row['intercept'], row['slope'], distance, metric)}")
        if row["n"] < SMALL_SAMPLE_N:
            text += (f"<br><b>Small sample</b> ({int(row['n'])} sites, fewer than {SMALL_SAMPLE_N}): "
                     "a correlation this small can easily arise by chance.")
    # below the plotting area, so that it never hides points or the line
    fig.add_annotation(x=0.0, y=-0.2, xref="paper", yref="paper", xanchor="left", yanchor="top", text=text,
                       showarrow=False, align="left", bgcolor="rgba(255,255,255,0.85)", bordercolor="#bbb",
                       borderwidth=1, font={"size": 12}, name="correlation")
    fig.update_layout(template=TEMPLATE, title=f"{learner}, {target}: heterogeneity {distance} vs {metric}",
                      xaxis_title=f"{distance} (comprehensive Euclidean distance, standardised)",
                      yaxis_title=f"{metric} of the held-out site", height=540,
                      margin={"l": 60, "r": 20, "t": 50, "b": 160}, legend={"title": {"text": "zone"}})
    return fig


#: Fixed colour scale of skill maps [R²]: comparable between runs; lower values are clipped.
SKILL_RANGE: tuple[float, float] = (-0.5, 1.0)
OUTSIDE_COLOR = "#bdbdbd"


@lru_cache(maxsize=1)
def _country_lines() -> tuple[list, list]:
    """Longitudes and latitudes of country outlines (None between rings), from the bundled
    Natural-Earth-derived basemap (no network)."""
    import json

    from .resources import asset_path

    gj = json.loads(asset_path("basemap", "countries.geojson").read_text(encoding="utf-8"))
    xs: list = []
    ys: list = []
    for f in gj.get("features", []):
        geom = f.get("geometry") or {}
        polys = geom.get("coordinates", [])
        if geom.get("type") == "Polygon":
            polys = [polys]
        for poly in polys:
            for ring in poly:
                xs.extend([p[0] for p in ring] + [None])
                ys.extend([p[1] for p in ring] + [None])
    return xs, ys


def skill_map_figure(
    predicted: pd.DataFrame,
    sites: pd.DataFrame,
    *,
    title: str | None = None,
    r2_range: tuple[float, float] = SKILL_RANGE,
    outlines: bool = True,
) -> go.Figure:
    """Map of predicted skill on a fixed R² scale, with its uncertainty and no extrapolation.

    Parameters
    ----------
    predicted : pandas.DataFrame
        :func:`fluxcore.skill.predicted_skill` output (``SITE_ID, R2_pred, R2_lo, R2_hi,
        inside, outside_reason, distance``; ``R2_observed`` optional).
    sites : pandas.DataFrame
        ``SITE_ID, LAT, LON`` of the sites.
    title : str, optional
    r2_range : tuple of float
        Fixed colour range [R²] (default -0.5..1): the same colour means the same R² in every
        map. Predictions below the lower end are drawn at it and counted in the note.
    outlines : bool
        Draw country outlines from the bundled basemap.

    Returns
    -------
    plotly.graph_objects.Figure
        Longitude/latitude axes (works offline, no map tiles); traces ``"predicted R²"``
        (colour = prediction, hover = interval), ``"outside the fit"`` (grey: distance or zone
        outside what the line was fitted on, no prediction) and ``"no distance"``; an
        annotation (name ``"skill_note"``) with the interval level, its typical width and the
        number of clipped and outside sites.
    """
    lo, hi = r2_range
    p = predicted.merge(sites[["SITE_ID", "LAT", "LON"]].drop_duplicates("SITE_ID"), on="SITE_ID", how="left")
    p = p[np.isfinite(p["LAT"].astype(float)) & np.isfinite(p["LON"].astype(float))]
    fig = go.Figure()
    if outlines:
        xs, ys = _country_lines()
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="countries", hoverinfo="skip", showlegend=False,
                                 line={"color": "#c8cdd2", "width": 0.6}))
    has_pred = np.isfinite(p["R2_pred"].astype(float))
    inside = p["inside"].astype(bool) if "inside" in p.columns else has_pred
    ok = p[has_pred & inside]
    val = ok["R2_pred"].astype(float)
    clipped = int((val < lo).sum())
    obs = ok["R2_observed"] if "R2_observed" in ok.columns else pd.Series(np.nan, index=ok.index)
    hover = [f"{s}<br>predicted R² {v:.2f}<br>interval {a:.2f} .. {b:.2f}" + (
        f"<br>observed R² {o:.2f}" if np.isfinite(o) else "")
        for s, v, a, b, o in zip(ok["SITE_ID"], val, ok["R2_lo"].astype(float), ok["R2_hi"].astype(float),
                                 obs.astype(float), strict=True)]
    fig.add_trace(go.Scatter(
        x=ok["LON"], y=ok["LAT"], mode="markers", name="predicted R²", text=hover, hoverinfo="text",
        marker={"color": np.clip(val, lo, hi), "cmin": lo, "cmax": hi, "colorscale": "Viridis", "size": 9,
                "line": {"color": "#333", "width": 0.6},
                "colorbar": {"title": {"text": "predicted R²"}, "tickvals": list(np.round(np.linspace(lo, hi, 4), 2)),
                             "ticktext": [f"≤ {lo:g}"] + [f"{t:.2f}" for t in np.linspace(lo, hi, 4)[1:]]}}))
    out = p[~(has_pred & inside)]
    reason = out["outside_reason"].astype(str) if "outside_reason" in out.columns else pd.Series("", index=out.index)
    nodist = reason == "no distance"
    for name, g, sym in (("outside the fit", out[~nodist], "x"), ("no distance", out[nodist], "circle-open")):
        if len(g):
            why = reason[g.index]
            fig.add_trace(go.Scatter(
                x=g["LON"], y=g["LAT"], mode="markers", name=name, hoverinfo="text",
                text=[f"{s}<br>no prediction: {w or 'outside the fit'}" for s, w in zip(g["SITE_ID"], why, strict=True)],
                marker={"color": OUTSIDE_COLOR, "size": 8, "symbol": sym, "line": {"color": "#777", "width": 1}}))
    width = (ok["R2_hi"].astype(float) - ok["R2_lo"].astype(float)).median() if len(ok) else np.nan
    meta = predicted.attrs.get("skill_model", {}) if hasattr(predicted, "attrs") else {}
    level = meta.get("level", 0.9)
    note = [f"Colour scale fixed at {lo:g}..{hi:g} R²."]
    if np.isfinite(width):
        note.append(f"Typical {level:.0%} prediction interval: ±{width / 2:.2f} R².")
    if clipped:
        note.append(f"{clipped} site{'s' if clipped != 1 else ''} predicted below {lo:g} drawn at {lo:g}.")
    n_out = int((~nodist).sum())
    if n_out:
        rng = ""
        if np.isfinite(meta.get("x_min", np.nan)):
            rng = f" (fitted distances {meta['x_min']:.2f}..{meta['x_max']:.2f})"
        note.append(f"{n_out} site{'s' if n_out != 1 else ''} outside the fit{rng}: grey, no prediction.")
    fig.add_annotation(x=0.0, y=-0.12, xref="paper", yref="paper", xanchor="left", yanchor="top",
                       text=" ".join(note), showarrow=False, align="left", font={"size": 12}, name="skill_note")
    fig.update_layout(template=TEMPLATE, title=title or "Predicted skill (R²) from heterogeneity distance",
                      xaxis={"title": "longitude [°]", "range": [-180, 180], "showgrid": False, "zeroline": False},
                      yaxis={"title": "latitude [°]", "range": [-60, 85], "showgrid": False, "zeroline": False,
                             "scaleanchor": "x", "scaleratio": 1},
                      height=520, margin={"l": 50, "r": 20, "t": 50, "b": 90},
                      legend={"orientation": "h", "y": 1.02, "x": 0, "yanchor": "bottom"})
    return fig


def zone_bar(zone_counts: Mapping[str, int]) -> go.Figure:
    """Bar chart of sites per aridity zone."""
    zs = list(zone_counts)
    fig = go.Figure(go.Bar(x=zs, y=[zone_counts[z] for z in zs], text=[zone_counts[z] for z in zs],
                           marker_color=[ZONE_COLORS.get(z, "#777") for z in zs], textposition="outside"))
    fig.update_layout(template=TEMPLATE, title="Sites per aridity zone", yaxis_title="sites", height=300,
                      margin={"l": 50, "r": 20, "t": 50, "b": 40})
    return fig


def figure_html(fig: go.Figure, offline: bool = True) -> str:
    """Interactive HTML of a figure; ``offline=True`` embeds plotly.js (no CDN, ~4.6 MB)."""
    return fig.to_html(include_plotlyjs=True if offline else "cdn", full_html=True)

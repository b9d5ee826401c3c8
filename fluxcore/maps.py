"""Folium maps of flux sites that work without internet, and the map-selection logic.

Offline design
--------------
Leaflet 1.9.4 and Leaflet.draw 1.0.4 are shipped as package data in ``fluxcore/assets/leaflet``
and ``fluxcore/assets/leaflet-draw`` (the top-level ``assets`` links there; built by
``scripts/build_offline_assets.py``; licences in ``assets/README.md``; located with
:func:`fluxcore.resources.asset_path`). Every map built here replaces folium's CDN links (``default_js`` /
``default_css`` of the map and of the Draw plugin) by links under ``asset_url`` (the Streamlit
dashboard serves ``assets/`` at ``/app/static/`` through ``static -> assets`` and
``server.enableStaticServing``), or inlines the files' text with :func:`standalone_html`.
jQuery 3.7.1 (``assets/jquery``) is kept because folium's popups use ``$()``; Bootstrap and
awesome-markers, which folium also loads by default, are not needed (sites are ``CircleMarker``)
and are dropped. The basemap is a GeoJSON of country outlines
(Natural Earth 1:110m via world-atlas) drawn under the markers; online tiles are optional
(``tiles=True``) and off by default.

Selection logic (pure functions, no Streamlit): :func:`filter_sites`,
:func:`sites_in_drawings`, :func:`site_from_click`, :func:`merge_selection` and
:func:`selection_from_map_state` turn what ``streamlit_folium.st_folium`` returns into a list
of site ids.
"""

from __future__ import annotations

import base64
import html as _html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import folium
import folium.plugins
import numpy as np
import pandas as pd

from .plots import ZONE_COLORS
from .resources import ASSETS_DIR as PACKAGED_ASSETS_DIR
from .resources import asset_path

#: Packaged assets folder ``fluxcore/assets/`` (Leaflet, Leaflet.draw, basemap); files are
#: located with :func:`fluxcore.resources.asset_path`, which says clearly when one is missing.
ASSETS_DIR = PACKAGED_ASSETS_DIR
#: URL prefix under which Streamlit serves ``static/`` (= ``assets/``) when
#: ``server.enableStaticServing`` is on.
STATIC_URL = "/app/static"
#: Online tile layer offered as an option (needs internet).
ONLINE_TILES = "OpenStreetMap"

SELECTED_COLOR = "#111111"
#: Width of the map legend [px]; the fitted view keeps this much room on the right.
LEGEND_WIDTH_PX = 150


# --------------------------------------------------------------------------- assets
def asset_links(asset_url: str = STATIC_URL, draw: bool = True) -> dict[str, list[tuple[str, str]]]:
    """JS and CSS links of the local Leaflet (and Leaflet.draw) files.

    Parameters
    ----------
    asset_url : str
        URL prefix where ``assets/`` is served (no trailing slash).
    draw : bool
        Include Leaflet.draw.

    Returns
    -------
    dict
        ``{"js": [(name, url)...], "css": [(name, url)...]}`` in folium's format.
    """
    base = asset_url.rstrip("/")
    js = [("leaflet", f"{base}/leaflet/leaflet.js"), ("jquery", f"{base}/jquery/jquery.min.js")]
    css = [("leaflet_css", f"{base}/leaflet/leaflet.css")]
    if draw:
        js.append(("leaflet_draw_js", f"{base}/leaflet-draw/leaflet.draw.js"))
        css.append(("leaflet_draw_css", f"{base}/leaflet-draw/leaflet.draw.css"))
    return {"js": js, "css": css}


@lru_cache(maxsize=1)
def _basemap_geojson() -> dict:
    return json.loads(asset_path("basemap", "countries.geojson").read_text(encoding="utf-8"))


BASEMAP_STYLE = {"fillColor": "#eef0f2", "color": "#9aa3ab", "weight": 0.6, "fillOpacity": 1.0}


class _FetchedBasemap(folium.MacroElement):
    """Country outlines fetched by the browser from the local assets (not embedded in the
    map's script: the script stays small, the file is fetched once and cached)."""

    _template = __import__("jinja2").Template("""
        {% macro script(this, kwargs) %}
        fetch({{ this.url|tojson }}).then(function (r) { return r.json(); }).then(function (d) {
            L.geoJson(d, {style: {{ this.style|tojson }}, interactive: false, pane: "tilePane"})
             .addTo({{ this._parent.get_name() }});
        });
        {% endmacro %}
    """)

    def __init__(self, url: str):
        super().__init__()
        self._name = "FetchedBasemap"
        self.url = url
        self.style = BASEMAP_STYLE


def _base_map(asset_url: str, tiles: bool, draw: bool, height: int | str = "100%",
              location: Sequence[float] = (20.0, 0.0), zoom_start: int = 2,
              embed_basemap: bool = True) -> folium.Map:
    m = folium.Map(location=list(location), zoom_start=zoom_start, tiles=None,
                   control_scale=True, height=height, prefer_canvas=False,
                   world_copy_jump=True, min_zoom=1)
    links = asset_links(asset_url, draw=False)
    # instance attributes override folium's CDN class attributes (read by folium's
    # render and by streamlit-folium, which loads default_js/default_css itself)
    m.default_js = links["js"]
    m.default_css = links["css"]
    if embed_basemap:
        folium.GeoJson(
            _basemap_geojson(), name="Countries (offline basemap)",
            style_function=lambda _f: BASEMAP_STYLE,
            control=True, overlay=True, smooth_factor=1.0,
            interactive=False,  # clicks go to the site markers, never to a country
        ).add_to(m)
    else:
        m.add_child(_FetchedBasemap(f"{asset_url.rstrip('/')}/basemap/countries.geojson"))
    if tiles:
        folium.TileLayer(ONLINE_TILES, name="OpenStreetMap tiles (online)", overlay=False,
                         control=True).add_to(m)
    if draw:
        d = folium.plugins.Draw(
            export=False, position="topleft",
            draw_options={"polyline": False, "circle": False, "circlemarker": False,
                          "marker": False, "rectangle": {"shapeOptions": {"color": "#333"}},
                          "polygon": {"shapeOptions": {"color": "#333"}}},
            edit_options={"edit": False},
        )
        dl = asset_links(asset_url, draw=True)
        d.default_js = dl["js"][2:]
        d.default_css = dl["css"][1:]
        d.add_to(m)
    return m


def _legend(title: str, items: Sequence[tuple[str, str]], position: str = "bottomright") -> folium.Element:
    vert, horiz = ("bottom", "right") if position == "bottomright" else ("bottom", "left")
    def swatch(c: str) -> str:
        if c == SELECTED_COLOR:  # selection: a dark ring, as drawn on the map
            return "background:#fff;border:3px solid " + c
        return f"background:{c};border:1px solid #555"

    rows = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;border-radius:6px;box-sizing:border-box;'
        f'{swatch(c)};margin-right:6px;vertical-align:middle"></span>'
        f"{_html.escape(str(lab))}</div>"
        for lab, c in items
    )
    box = (f'<div class="fluxcore-legend" style="position:absolute;{vert}:24px;{horiz}:10px;z-index:9999;'
           f'max-width:{LEGEND_WIDTH_PX}px;box-sizing:border-box;overflow-wrap:anywhere;'
           f'background:rgba(255,255,255,0.92);padding:6px 9px;border:1px solid #bbb;border-radius:4px;'
           f'font:12px/1.5 sans-serif;color:#222"><b>{_html.escape(title)}</b>{rows}</div>')
    return folium.Element(box)


def _add_legend(m: folium.Map, title: str, items: Sequence[tuple[str, str]]) -> None:
    m.get_root().html.add_child(_legend(title, items))


# --------------------------------------------------------------------------- site maps
def years_of_data(daily: pd.DataFrame) -> pd.Series:
    """Years of data per site: number of distinct calendar years with at least one day.

    Parameters
    ----------
    daily : pandas.DataFrame
        With ``SITE_ID`` and ``DATE``.

    Returns
    -------
    pandas.Series
        Indexed by ``SITE_ID``.
    """
    if daily is None or len(daily) == 0:
        return pd.Series(dtype="int64")
    yrs = pd.DatetimeIndex(daily["DATE"]).year
    return pd.Series(yrs, index=daily["SITE_ID"].to_numpy()).groupby(level=0).nunique()


def _zone(v) -> str:
    return "unknown" if v is None or (isinstance(v, float) and np.isnan(v)) or pd.isna(v) else str(v)


def popup_html(row: Mapping, years: float | int | None = None) -> str:
    """Popup text of one site: id, name, IGBP class, zone, aridity index, years of data."""
    ai = row.get("ARIDITY_INDEX")
    ai_s = "n/a" if ai is None or pd.isna(ai) else f"{float(ai):.2f}"
    yrs = "n/a" if years is None or pd.isna(years) else f"{int(years)}"
    name = row.get("NAME")
    name_s = "" if name is None or pd.isna(name) or str(name) == str(row["SITE_ID"]) else (
        f"<br>{_html.escape(str(name))}")
    return (f"<b>{_html.escape(str(row['SITE_ID']))}</b>{name_s}<br>IGBP: {_html.escape(str(row.get('IGBP', 'n/a')))}"
            f"<br>zone: {_html.escape(_zone(row.get('ARIDITY_ZONE')))}<br>aridity index: {ai_s}"
            f"<br>years of data: {yrs}")


def sites_map(
    sites: pd.DataFrame,
    *,
    selected: Iterable[str] = (),
    years: pd.Series | None = None,
    tiles: bool = False,
    draw: bool = True,
    asset_url: str = STATIC_URL,
    height: int | str = "100%",
    selection_legend: bool = False,
    embed_basemap: bool = True,
) -> folium.Map:
    """Map of sites as circle markers coloured by aridity zone, with legend and popups.

    Parameters
    ----------
    sites : pandas.DataFrame
        Site catalogue (``SITE_ID, LAT, LON, IGBP, ARIDITY_INDEX, ARIDITY_ZONE``). Sites
        without a position are left out.
    selected : iterable of str
        Sites drawn with a thick dark outline.
    years : pandas.Series, optional
        Years of data per site (:func:`years_of_data`), shown in the popup.
    tiles : bool
        Add the online OpenStreetMap tile layer (needs internet). Off by default.
    draw : bool
        Add the rectangle/polygon drawing tool (Leaflet.draw) for selecting many sites.
    asset_url : str
        URL prefix of the local ``assets/`` files.
    height : int or str
        Map height.
    selection_legend : bool
        Always list "selected" in the legend (for maps whose selection is drawn by
        :func:`selection_layer`, which leaves the map itself unchanged).
    embed_basemap : bool
        Embed the country outlines in the map (self-contained HTML), or let the browser fetch
        them from ``asset_url`` (smaller map script; used by the dashboard).

    Returns
    -------
    folium.Map
    """
    sel = {str(s) for s in selected}
    m = _base_map(asset_url, tiles=tiles, draw=draw, height=height, embed_basemap=embed_basemap)
    fg = folium.FeatureGroup(name="Sites", control=True).add_to(m)
    pos = sites.dropna(subset=["LAT", "LON"])
    for _, row in pos.iterrows():
        sid = str(row["SITE_ID"])
        zone = _zone(row.get("ARIDITY_ZONE"))
        is_sel = sid in sel
        folium.CircleMarker(
            location=[float(row["LAT"]), float(row["LON"])],
            radius=8 if is_sel else 6,
            color=SELECTED_COLOR if is_sel else "#ffffff",
            weight=3 if is_sel else 1,
            fill=True, fill_color=ZONE_COLORS.get(zone, ZONE_COLORS["unknown"]), fill_opacity=0.95,
            tooltip=sid, class_name="fluxcore-site",
            popup=folium.Popup(popup_html(row, None if years is None else years.get(sid)), max_width=260),
        ).add_to(fg)
    present = [z for z in ZONE_COLORS if (pos["ARIDITY_ZONE"].map(_zone) == z).any()] if len(pos) else []
    items = [(z, ZONE_COLORS[z]) for z in present]
    if sel:
        items.append((f"selected ({len(sel & set(pos['SITE_ID'].astype(str)))})", SELECTED_COLOR))
    elif selection_legend:
        items.append(("selected", SELECTED_COLOR))
    _add_legend(m, "Aridity zone", items)
    if len(pos):
        _fit(m, pos)
    folium.LayerControl(collapsed=True).add_to(m)
    return m


def selection_layer(sites: pd.DataFrame, selected: Iterable[str], name: str = "Selected sites") -> folium.FeatureGroup:
    """Dark rings around the selected sites, as a layer that does not catch clicks.

    Meant for ``st_folium(..., feature_group_to_add=selection_layer(...))``: the component then
    updates the rings without redrawing the map (zoom, position and drawings are kept).
    """
    sel = {str(s) for s in selected}
    fg = folium.FeatureGroup(name=name, control=False)
    pos = sites.dropna(subset=["LAT", "LON"])
    pos = pos[pos["SITE_ID"].astype(str).isin(sel)]
    for _, row in pos.iterrows():
        ring = folium.CircleMarker(
            location=[float(row["LAT"]), float(row["LON"])], radius=9, color=SELECTED_COLOR, weight=3,
            fill=False, class_name="fluxcore-selected",
        )
        ring.options["interactive"] = False  # folium drops this option: set it on the Leaflet options
        ring.add_to(fg)
    return fg


def _fit(m: folium.Map, pos: pd.DataFrame) -> None:
    """Fit the map to the sites, keeping a column free on the right for the legend.

    The legend sits at the bottom right: without the padding the easternmost sites (eastern
    Australia, New Zealand on a world map) would lie under it.
    """
    lat0, lat1 = float(pos["LAT"].min()), float(pos["LAT"].max())
    lon0, lon1 = float(pos["LON"].min()), float(pos["LON"].max())
    pad_lat = max(2.0, 0.1 * (lat1 - lat0))
    pad_lon = max(2.0, 0.1 * (lon1 - lon0))
    m.fit_bounds([[lat0 - pad_lat, lon0 - pad_lon], [lat1 + pad_lat, lon1 + pad_lon]],
                 padding_bottom_right=(LEGEND_WIDTH_PX + 20, 0))


#: Sequential colour ramp (viridis, 5 stops) used for continuous values such as skill.
RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]


def ramp_color(value: float, vmin: float, vmax: float, ramp: Sequence[str] = RAMP) -> str:
    """Hex colour of ``value`` on a linear ramp between ``vmin`` and ``vmax`` (grey if NaN)."""
    if value is None or not np.isfinite(value):
        return "#bbbbbb"
    t = 0.5 if vmax <= vmin else float(np.clip((value - vmin) / (vmax - vmin), 0.0, 1.0))
    x = t * (len(ramp) - 1)
    i = min(int(np.floor(x)), len(ramp) - 2)
    f = x - i
    a = np.array([int(ramp[i][k:k + 2], 16) for k in (1, 3, 5)], dtype=float)
    b = np.array([int(ramp[i + 1][k:k + 2], 16) for k in (1, 3, 5)], dtype=float)
    c = np.rint(a + f * (b - a)).astype(int)
    return "#{:02x}{:02x}{:02x}".format(*c)


def value_map(
    sites: pd.DataFrame,
    values: pd.Series,
    *,
    label: str = "value",
    vmin: float | None = None,
    vmax: float | None = None,
    tiles: bool = False,
    asset_url: str = STATIC_URL,
    height: int | str = "100%",
    embed_basemap: bool = True,
) -> folium.Map:
    """Map of sites coloured by a continuous value (e.g. predicted or observed skill R²).

    Parameters
    ----------
    sites : pandas.DataFrame
        Site catalogue with ``SITE_ID, LAT, LON``.
    values : pandas.Series
        Value per ``SITE_ID``; sites without a value are grey.
    label : str
        Legend title.
    vmin, vmax : float, optional
        Colour range (default: 5th and 95th percentiles of ``values``).
    """
    v = pd.to_numeric(values, errors="coerce")
    fin = v[np.isfinite(v)]
    lo = float(fin.quantile(0.05)) if vmin is None and len(fin) else (0.0 if vmin is None else vmin)
    hi = float(fin.quantile(0.95)) if vmax is None and len(fin) else (1.0 if vmax is None else vmax)
    m = _base_map(asset_url, tiles=tiles, draw=False, height=height, embed_basemap=embed_basemap)
    fg = folium.FeatureGroup(name=label).add_to(m)
    pos = sites.dropna(subset=["LAT", "LON"])
    for _, row in pos.iterrows():
        sid = str(row["SITE_ID"])
        val = v.get(sid, np.nan)
        txt = "n/a" if not np.isfinite(val) else f"{val:.3f}"
        folium.CircleMarker(
            location=[float(row["LAT"]), float(row["LON"])], radius=7, color="#333", weight=1,
            fill=True, fill_color=ramp_color(val, lo, hi), fill_opacity=0.95,
            tooltip=f"{sid}: {txt}", class_name="fluxcore-site",
            popup=folium.Popup(popup_html(row) + f"<br>{_html.escape(label)}: {txt}", max_width=260),
        ).add_to(fg)
    stops = np.linspace(lo, hi, 5)
    _add_legend(m, label, [(f"{s:.2f}", ramp_color(s, lo, hi)) for s in stops[::-1]]
                + ([("no value", "#bbbbbb")] if v.reindex(pos["SITE_ID"]).isna().any() else []))
    if len(pos):
        _fit(m, pos)
    return m


# --------------------------------------------------------------------------- standalone HTML
def _css_inline_images(css: str, folder: Path) -> str:
    def repl(mt: re.Match) -> str:
        rel = mt.group(1).strip("'\"")
        p = folder / rel
        if not p.is_file():
            return mt.group(0)
        mime = "image/svg+xml" if p.suffix == ".svg" else "image/png"
        return f"url(data:{mime};base64,{base64.b64encode(p.read_bytes()).decode()})"

    return re.sub(r"url\(([^)]+?\.(?:png|svg))\)", repl, css)


def standalone_html(m: folium.Map) -> str:
    """Self-contained HTML of a map built here: Leaflet JS/CSS and images inlined.

    The page needs no server and no internet (except the optional tile layer).
    """
    html = m.get_root().render()
    for sub in ("leaflet", "jquery", "leaflet-draw"):
        folder = asset_path(sub)
        for f in sorted(folder.glob("*.js")):
            html = re.sub(
                r'<script src="[^"]*/' + re.escape(sub) + "/" + re.escape(f.name) + r'"></script>',
                lambda _m, f=f: "<script>" + f.read_text() + "</script>", html)
        for f in sorted(folder.glob("*.css")):
            css = _css_inline_images(f.read_text(), folder)
            html = re.sub(
                r'<link rel="stylesheet" href="[^"]*/' + re.escape(sub) + "/" + re.escape(f.name) + r'"/>',
                lambda _m, css=css: "<style>" + css + "</style>", html)
    return html


def external_urls(html: str) -> list[str]:
    """``http(s)://`` URLs of scripts and stylesheets in an HTML page (tiles excluded)."""
    srcs = re.findall(r'<script[^>]+src="([^"]+)"', html)
    hrefs = re.findall(r'<link[^>]+href="([^"]+)"', html)
    return [u for u in srcs + hrefs if re.match(r"^(https?:)?//", u)]


# --------------------------------------------------------------------------- selection
def filter_sites(sites: pd.DataFrame, zones: Iterable[str] | None = None,
                 igbp: Iterable[str] | None = None) -> pd.DataFrame:
    """Sites in the given aridity zones and IGBP classes (``None`` or empty = no filter)."""
    out = sites
    zones = list(zones) if zones is not None else []
    igbp = list(igbp) if igbp is not None else []
    if zones:
        out = out[out["ARIDITY_ZONE"].map(_zone).isin(zones)]
    if igbp:
        out = out[out["IGBP"].astype(str).isin(igbp)]
    return out


def _geometries(drawings) -> list:
    from shapely.geometry import shape

    geoms = []
    if not drawings:
        return geoms
    if isinstance(drawings, Mapping):
        drawings = drawings.get("features", [drawings]) if drawings.get("type") == "FeatureCollection" else [drawings]
    for d in drawings:
        if not d:
            continue
        g = d.get("geometry", d) if isinstance(d, Mapping) else None
        if not g or g.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        try:
            geoms.append(shape(g))
        except Exception:  # noqa: BLE001 - a malformed drawing selects nothing
            continue
    return geoms


def sites_in_drawings(sites: pd.DataFrame, drawings) -> list[str]:
    """Site ids inside any drawn rectangle or polygon.

    Parameters
    ----------
    sites : pandas.DataFrame
        With ``SITE_ID, LAT, LON``.
    drawings : list of GeoJSON Feature dicts, a FeatureCollection, or a geometry dict
        As returned by ``st_folium(...)["all_drawings"]`` (Leaflet.draw, lon/lat order).
        Points on the boundary count as inside.

    Returns
    -------
    list of str
        Sorted site ids.
    """
    from shapely import covers, points

    geoms = _geometries(drawings)
    pos = sites.dropna(subset=["LAT", "LON"])
    if not geoms or not len(pos):
        return []
    pts = points(pos["LON"].to_numpy(float), pos["LAT"].to_numpy(float))
    inside = np.zeros(len(pos), dtype=bool)
    for g in geoms:
        inside |= covers(g, pts)
    return sorted(pos["SITE_ID"].astype(str)[inside].tolist())


def site_from_click(sites: pd.DataFrame, lat: float | None = None, lon: float | None = None,
                    tooltip: str | None = None, tol_deg: float = 0.5) -> str | None:
    """Site id of a clicked marker.

    The marker tooltip is the site id; when it is missing the nearest site within ``tol_deg``
    degrees of the clicked position is used.
    """
    ids = set(sites["SITE_ID"].astype(str))
    if tooltip is not None:
        t = str(tooltip).strip()
        if t in ids:
            return t
        first = t.split(":")[0].strip()
        if first in ids:
            return first
    if lat is None or lon is None:
        return None
    pos = sites.dropna(subset=["LAT", "LON"])
    if not len(pos):
        return None
    d = np.hypot(pos["LAT"].to_numpy(float) - lat, pos["LON"].to_numpy(float) - lon)
    i = int(np.argmin(d))
    return str(pos["SITE_ID"].iloc[i]) if d[i] <= tol_deg else None


def merge_selection(current: Iterable[str], *, add: Iterable[str] = (), remove: Iterable[str] = (),
                    toggle: str | None = None, valid: Iterable[str] | None = None) -> list[str]:
    """New selection from the current one: add ids, remove ids, toggle one id.

    Ids not in ``valid`` (when given) are dropped. Returns a sorted list without duplicates.
    """
    sel = {str(s) for s in current}
    sel |= {str(s) for s in add}
    sel -= {str(s) for s in remove}
    if toggle is not None:
        sel ^= {str(toggle)}
    if valid is not None:
        sel &= {str(s) for s in valid}
    return sorted(sel)


def selection_from_map_state(state: Mapping | None, sites: pd.DataFrame) -> dict:
    """What a ``st_folium`` return value asks for: a clicked site and sites in drawings.

    Only a click with a position (``last_object_clicked`` with ``lat``/``lng``) counts as a
    click: streamlit-folium also counts a finished drawing as a click (the counter grows, the
    position is null) but keeps the tooltip of the marker clicked before, which must not
    toggle that marker again.

    Returns
    -------
    dict
        ``{"clicked": site id or None, "drawn": [site ids], "click_key": hashable}``; the
        ``click_key`` changes with every new click so a page can act on each click once.
    """
    if not state:
        return {"clicked": None, "drawn": [], "click_key": None}
    obj = state.get("last_object_clicked") or {}
    clicked = None
    if isinstance(obj, Mapping) and obj.get("lat") is not None and obj.get("lng") is not None:
        clicked = site_from_click(sites, obj.get("lat"), obj.get("lng"),
                                  state.get("last_object_clicked_tooltip"))
    key = (clicked, obj.get("lat") if obj else None, obj.get("lng") if obj else None,
           state.get("last_object_clicked_count"))
    return {"clicked": clicked, "drawn": sites_in_drawings(sites, state.get("all_drawings")),
            "click_key": key if clicked else None}


def apply_map_state(state: Mapping | None, sites: pd.DataFrame, current: Iterable[str],
                    seen: tuple | None, map_id) -> tuple[list[str], tuple]:
    """New selection after a ``st_folium`` change, acting on each click and drawing once.

    streamlit-folium repeats its last click and its drawings in every value: a click is new
    when its counter grew on the same map (a map mounted anew starts at 0), a drawing when
    the number of drawings grew.

    Parameters
    ----------
    state : mapping or None
        The ``st_folium`` value (``last_object_clicked``, ``last_object_clicked_tooltip``,
        ``last_object_clicked_count``, ``all_drawings``).
    sites : pandas.DataFrame
        The sites on the map (``SITE_ID, LAT, LON``).
    current : iterable of str
        The selection before the change.
    seen : tuple or None
        What the previous call returned as its second value (None at first).
    map_id : hashable
        Identifies the map (filters, mount); a new id resets the counters.

    Returns
    -------
    (list of str, tuple)
        The new selection (sorted) and the ``seen`` value to pass next time.
    """
    state = state or {}
    seen = seen or (None, 0, 0)
    same_map = seen[0] == map_id
    new = sorted({str(s) for s in current})
    event = selection_from_map_state(state, sites)
    count = int(state.get("last_object_clicked_count") or 0)
    prev_count = seen[1] if same_map and count else 0
    if event["clicked"] is not None and count > prev_count:
        new = merge_selection(new, toggle=event["clicked"])
    drawings = list(state.get("all_drawings") or [])
    prev_draw = min(seen[2], len(drawings)) if same_map else 0
    if len(drawings) > prev_draw:
        new = merge_selection(new, add=sites_in_drawings(sites, drawings[prev_draw:]))
    return new, (map_id, count, len(drawings))

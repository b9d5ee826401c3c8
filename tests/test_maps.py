"""fluxcore.maps: offline asset links, legend, popups, and the selection logic."""

from __future__ import annotations

import re

import pandas as pd

from fluxcore import maps
from tests.factories_dashboard import make_sites


def _render(m) -> str:
    return m.get_root().render()


def _script_and_css_urls(html: str) -> list[str]:
    return re.findall(r'<script[^>]+src="([^"]+)"', html) + re.findall(r'<link[^>]+href="([^"]+)"', html)


def test_map_uses_local_leaflet_and_no_cdn():
    m = maps.sites_map(make_sites(), draw=True)
    html = _render(m)
    urls = _script_and_css_urls(html)
    assert "/app/static/leaflet/leaflet.js" in urls
    assert "/app/static/leaflet-draw/leaflet.draw.js" in urls
    assert "/app/static/leaflet/leaflet.css" in urls
    assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    assert maps.external_urls(html) == []
    # no online tiles unless asked for
    assert "tile.openstreetmap" not in html


def test_streamlit_folium_links_are_local():
    """streamlit-folium loads each element's default_js/default_css itself: check those."""
    m = maps.sites_map(make_sites(), draw=True)
    links = []

    def walk(e):
        links.extend(u for _, u in getattr(e, "default_js", []))
        links.extend(u for _, u in getattr(e, "default_css", []))
        for c in getattr(e, "_children", {}).values():
            walk(c)

    walk(m)
    assert links and all(u.startswith("/app/static/") for u in links), links


def test_local_asset_files_exist():
    for rel in ("leaflet/leaflet.js", "leaflet/leaflet.css", "leaflet/LICENSE",
                "leaflet-draw/leaflet.draw.js", "leaflet-draw/leaflet.draw.css", "leaflet-draw/LICENSE",
                "basemap/countries.geojson"):
        assert (maps.ASSETS_DIR / rel).is_file(), rel
    assert (maps.ASSETS_DIR / "basemap/countries.geojson").stat().st_size < 500_000


def test_online_tiles_optional():
    html = _render(maps.sites_map(make_sites(), tiles=True))
    assert "tile.openstreetmap.org" in html
    assert maps.external_urls(html) == []  # tiles are not script/css links


def test_legend_popup_and_markers():
    sites = make_sites(8)
    years = pd.Series({s: 3 for s in sites.SITE_ID})
    html = _render(maps.sites_map(sites, selected=["XX-S01"], years=years))
    assert "fluxcore-legend" in html and "Aridity zone" in html
    for z in ("arid", "semi-arid", "semi-humid", "humid"):
        assert z in html
    assert "selected (1)" in html
    assert html.count("L.circleMarker(") == 8 and html.count('"className": "fluxcore-site"') == 8
    assert '"interactive": false' in html  # the basemap does not catch clicks
    assert "years of data: 3" in html and "IGBP: ENF" in html and "aridity index: 0.10" in html
    assert "Countries (offline basemap)" in html


def test_standalone_html_inlines_everything():
    html = maps.standalone_html(maps.sites_map(make_sites(4)))
    urls = _script_and_css_urls(html)
    assert urls == [], urls
    assert "leaflet" in html and "L.map(" in html and len(html) > 150_000


def test_value_map_colours():
    sites = make_sites(5)
    vals = pd.Series([0.1, 0.3, 0.5, 0.7, float("nan")], index=sites.SITE_ID)
    html = _render(maps.value_map(sites, vals, label="predicted R²", vmin=0, vmax=1))
    assert "predicted R²" in html and "no value" in html
    assert maps.ramp_color(0, 0, 1) == maps.RAMP[0] and maps.ramp_color(1, 0, 1) == maps.RAMP[-1]
    assert maps.ramp_color(float("nan"), 0, 1) == "#bbbbbb"


def test_filter_sites():
    s = make_sites(12)
    assert set(maps.filter_sites(s, zones=["arid"]).ARIDITY_ZONE) == {"arid"}
    assert set(maps.filter_sites(s, igbp=["GRA"]).IGBP) == {"GRA"}
    assert len(maps.filter_sites(s, zones=[], igbp=None)) == 12
    both = maps.filter_sites(s, zones=["arid", "humid"], igbp=["ENF"])
    assert set(both.ARIDITY_ZONE) <= {"arid", "humid"} and set(both.IGBP) == {"ENF"}


def _rect(lon0, lat0, lon1, lat1):
    return {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[
        [lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]}}


def test_sites_in_drawings_rectangle_polygon_and_union():
    s = pd.DataFrame({"SITE_ID": ["A", "B", "C", "D"], "LAT": [10.0, 20.0, -30.0, float("nan")],
                      "LON": [5.0, 50.0, -60.0, 0.0]})
    assert maps.sites_in_drawings(s, [_rect(0, 0, 10, 15)]) == ["A"]
    assert maps.sites_in_drawings(s, [_rect(40, 15, 60, 25), _rect(-70, -40, -50, -20)]) == ["B", "C"]
    tri = {"type": "Polygon", "coordinates": [[[0, 0], [60, 0], [60, 30], [0, 0]]]}
    assert maps.sites_in_drawings(s, tri) == ["B"]  # A (5, 10) is above the diagonal
    assert maps.sites_in_drawings(s, {"type": "FeatureCollection", "features": [_rect(0, 0, 10, 15)]}) == ["A"]
    assert maps.sites_in_drawings(s, None) == [] and maps.sites_in_drawings(s, []) == []
    # a point on the boundary counts; lines and junk are ignored
    assert maps.sites_in_drawings(s, [_rect(5, 10, 6, 11)]) == ["A"]
    assert maps.sites_in_drawings(s, [{"geometry": {"type": "LineString", "coordinates": [[0, 0], [9, 9]]}}]) == []


def test_site_from_click_and_merge():
    s = make_sites(6)
    row = s.iloc[2]
    assert maps.site_from_click(s, tooltip=row.SITE_ID) == row.SITE_ID
    assert maps.site_from_click(s, row.LAT + 0.01, row.LON - 0.01) == row.SITE_ID
    assert maps.site_from_click(s, row.LAT + 30, row.LON + 30, tol_deg=0.5) in (None, *s.SITE_ID)
    assert maps.site_from_click(s, None, None) is None
    assert maps.merge_selection(["A", "B"], add=["C", "A"]) == ["A", "B", "C"]
    assert maps.merge_selection(["A", "B"], toggle="B") == ["A"]
    assert maps.merge_selection(["A"], toggle="B") == ["A", "B"]
    assert maps.merge_selection(["A", "Z"], valid=["A", "B"]) == ["A"]
    assert maps.merge_selection(["A", "B"], remove=["A"]) == ["B"]


def test_selection_from_map_state():
    s = make_sites(6)
    row = s.iloc[3]
    state = {"last_object_clicked": {"lat": row.LAT, "lng": row.LON},
             "last_object_clicked_tooltip": row.SITE_ID,
             "all_drawings": [_rect(-180, -90, 180, 90)]}
    out = maps.selection_from_map_state(state, s)
    assert out["clicked"] == row.SITE_ID
    assert out["drawn"] == sorted(s.SITE_ID)
    assert out["click_key"] is not None
    empty = maps.selection_from_map_state(None, s)
    assert empty == {"clicked": None, "drawn": [], "click_key": None}


def test_years_of_data():
    d = pd.DataFrame({"SITE_ID": ["A"] * 3 + ["B"], "DATE": pd.to_datetime(
        ["2001-01-01", "2001-06-01", "2003-01-01", "2005-01-01"])})
    y = maps.years_of_data(d)
    assert y["A"] == 2 and y["B"] == 1


def test_selection_layer_rings_do_not_catch_clicks():
    sites = make_sites(6)
    fg = maps.selection_layer(sites, ["XX-S01", "XX-S03", "nope"])
    m = maps.sites_map(sites, selection_legend=True)
    fg.add_to(m)
    html = _render(m)
    assert html.count('"className": "fluxcore-selected"') == 2
    assert html.count('"interactive": false') >= 3  # basemap + 2 rings
    assert "<b>Aridity zone</b>" in html and ">selected</div>" in html


def test_basemap_fetched_from_local_assets_when_not_embedded():
    embedded = _render(maps.sites_map(make_sites(4)))
    fetched = _render(maps.sites_map(make_sites(4), embed_basemap=False, asset_url="/base/app/static"))
    assert 'fetch("/base/app/static/basemap/countries.geojson")' in fetched
    assert "interactive: false" in fetched
    assert len(fetched) < len(embedded) - 100_000  # the outlines are not in the script
    assert maps.external_urls(fetched) == []


def test_a_drawing_does_not_toggle_the_site_clicked_before():
    """streamlit-folium counts a finished drawing as a click (count + 1, position null) and
    keeps the old tooltip: that must not unselect the site clicked before."""
    s = make_sites(6)
    row = s.iloc[3]
    click = {"last_object_clicked": {"lat": row.LAT, "lng": row.LON},
             "last_object_clicked_tooltip": row.SITE_ID, "last_object_clicked_count": 1, "all_drawings": None}
    sel, seen = maps.apply_map_state(click, s, [], None, "m")
    assert sel == [row.SITE_ID]
    drawn = {"last_object_clicked": None, "last_object_clicked_tooltip": row.SITE_ID,
             "last_object_clicked_count": 2, "all_drawings": [_rect(-180, -90, 180, 90)]}
    assert maps.selection_from_map_state(drawn, s)["clicked"] is None
    sel, seen = maps.apply_map_state(drawn, s, sel, seen, "m")
    assert sel == sorted(s.SITE_ID)  # the clicked site stays selected, the drawing adds all
    # the same value again (a rerun) changes nothing; a new click on the same site toggles it
    assert maps.apply_map_state(drawn, s, sel, seen, "m")[0] == sel
    again = {**drawn, "last_object_clicked": {"lat": row.LAT, "lng": row.LON}, "last_object_clicked_count": 3}
    sel2, _ = maps.apply_map_state(again, s, sel, seen, "m")
    assert row.SITE_ID not in sel2 and len(sel2) == len(sel) - 1


def test_legend_keeps_the_easternmost_sites_visible():
    sites = make_sites(8)
    html = _render(maps.sites_map(sites))
    # the fitted view leaves a column on the right for the legend (bottom right)
    assert f'"paddingBottomRight": [{maps.LEGEND_WIDTH_PX + 20}, 0]' in html, html[html.find("fitBounds"):][:300]
    assert f"max-width:{maps.LEGEND_WIDTH_PX}px" in html

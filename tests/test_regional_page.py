"""Regional maps: the figure functions (no Streamlit) and the page under AppTest on the
SYNTHETIC demo grid (5° cells, so that it runs in seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxcore import regionplots

ROOT = Path(__file__).resolve().parents[1]


def _fluxes() -> xr.Dataset:
    t = pd.date_range("2013-01-01", periods=24, freq="MS")
    lat, lon = np.array([40.5, 41.5]), np.array([-100.5, -99.5, -98.5])
    a = np.arange(24 * 6, dtype=float).reshape(24, 2, 3)
    a[:, 0, 0] = np.nan
    return xr.Dataset({"GPP": (("time", "lat", "lon"), a), "NEE": (("time", "lat", "lon"), a - 70)},
                      coords={"time": t, "lat": lat, "lon": lon})


def test_map_field_month_and_annual_mean():
    f = _fluxes()
    m, unit = regionplots.map_field(f, "GPP", "2013-03-15")
    assert unit == "gC m-2 month-1" and float(m.sel(lat=41.5, lon=-98.5)) == 2 * 6 + 5
    a, unit = regionplots.map_field(f, "GPP", regionplots.ANNUAL)
    assert unit == "gC m-2 yr-1"
    # annual mean = sum of 24 months / 2 years
    assert float(a.sel(lat=41.5, lon=-98.5)) == pytest.approx(f["GPP"].values[:, 1, 2].sum() / 2)
    assert np.isnan(float(a.sel(lat=40.5, lon=-100.5)))
    with pytest.raises(KeyError, match="not a month"):
        regionplots.map_field(f, "GPP", "2020-01")


def test_flux_map_offline_and_nee_centred():
    field, unit = regionplots.map_field(_fluxes(), "NEE", "2013-01")
    fig = regionplots.flux_map(field, "NEE", unit, synthetic=True)
    assert fig.data[0].type == "heatmap" and fig.data[0].zmin == -fig.data[0].zmax
    assert fig.layout.title.text.startswith("SYNTHETIC")
    assert "mapbox" not in fig.to_json() and "tile" not in fig.to_json().lower()
    html = regionplots.figure_html(fig)
    assert '<script src="http' not in html and "plotly.js" in html.lower() or "Plotly" in html


def test_png_is_a_png_with_cells_scaled():
    field, unit = regionplots.map_field(_fluxes(), "GPP", None)
    png = regionplots.map_png(field, "GPP", unit, scale=10)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(png))
    assert img.size[0] >= 30 and img.size[1] == 2 * 10 + 46
    # north up: the NaN cell (lat 40.5, lon -100.5) is the bottom-left one, grey
    assert img.getpixel((1, 18)) == (215, 215, 215) and img.getpixel((1, 1)) != (215, 215, 215)


def test_holdout_scatter_stats_in_title():
    df = pd.DataFrame({"target": "GPP", "observed": [1.0, 2.0, 3.0, 4.0], "predicted": [1.0, 2.0, 3.0, 5.0]})
    s = regionplots.holdout_stats(df["observed"], df["predicted"])
    assert s["n"] == 4 and s["RMSE"] == pytest.approx(0.5) and s["R2"] == pytest.approx(1 - 1 / 5)
    fig = regionplots.holdout_scatter(df, "GPP")
    assert f"r = {s['r']:.2f}" in fig.layout.title.text and "RMSE = 0.5" in fig.layout.title.text


def test_monthly_cycle_lines_per_zone_and_reference():
    from fluxcore.upscale import regional_totals

    f = _fluxes()
    tot = regional_totals(f, np.full(6, 1e9), ["humid", "arid", "arid", "humid", "humid", "arid"])
    fig = regionplots.monthly_cycle(tot, "GPP", reference=tot)
    names = [d.name for d in fig.data]
    assert names[0] == "all (model)" and "all (reference)" in names and "arid (model)" in names


@pytest.mark.slow
def test_regional_page_on_the_demo_grid(tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FLUXCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FLUXCORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FLUXCORE_DEMOGRID_RES", "5.0")
    monkeypatch.delenv("FLUXCORE_DATA", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/regional.py")
    at.run()
    at.selectbox(key="reg_learner").set_value("mlr")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Regional maps"
    assert any("SYNTHETIC" in w.value for w in at.warning)
    charts = at.get("plotly_chart")
    assert len(charts) == 3
    assert len(at.get("download_button")) == 3
    at.radio(key="reg_target").set_value("NEE")
    at.select_slider(key="reg_month").set_value("2014-07")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "NEE, 2014-07" in at.get("plotly_chart")[0].proto.spec
    # a stored-run source with no run yet: a clear hint, no error
    at.radio(key="reg_source").set_value("A stored run")
    at.run()
    assert not at.exception and any("No finished run" in i.value for i in at.info)

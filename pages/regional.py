"""Regional maps: a model upscaled onto a grid (the SYNTHETIC demo grid or a NetCDF file):
predicted GPP / ER / NEE map for a month or the annual mean, the regional monthly cycle, a
held-out scatter, and downloads (NetCDF, PNG, HTML). Thin: widgets -> fluxcore -> render."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from fluxcore import regionplots, upscale
from fluxcore.learners import available_learners
from pages import _common as common

PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
RESOLUTIONS = [1.0, 2.5, 5.0]
DEMO, RUN = "SYNTHETIC demo grid", "A stored run"


@st.cache_resource(show_spinner=False, max_entries=4)
def _demo(learner: str, resolution: float) -> upscale.RegionalResult:
    params = {"n_estimators": 60} if learner == "rf" else None
    return upscale.demo_grid_result(learner, resolution=resolution, params=params)


@st.cache_resource(show_spinner=False, max_entries=4)
def _run(path: str, learner: str, grid: str, stamp: float) -> upscale.RegionalResult:
    return upscale.run_result(path, learner, grid)


st.title("Regional maps")
st.caption("A model predicts every cell and month of a grid; maps, regional totals [PgC yr-1] per month and "
           "aridity zone, and a held-out check. Layout of grid files: docs/regional.md.")
source = st.radio("Model and grid", [DEMO, RUN], horizontal=True, key="reg_source")
default_res = float(os.environ.get("FLUXCORE_DEMOGRID_RES", "1.0"))
res_opts = sorted({*RESOLUTIONS, default_res})
c1, c2 = st.columns(2)
resolution = c2.selectbox("Demo grid cell size [deg]", res_opts, index=res_opts.index(default_res), key="reg_res")

result = None
try:
    if source == DEMO:
        usable = [lrn for lrn in ("rf", "mlr", "mlp") if lrn in available_learners()]
        learner = c1.selectbox("Learner", usable, key="reg_learner")
        st.warning("**SYNTHETIC** demo grid: drivers from the demo world's weather generator, 'inversion' fluxes "
                   "from the process model plus noise. The learner is trained on the SYNTHETIC inversion of the "
                   "first year and maps both years.", icon=":material/science:")
        with st.spinner("Generating the demo grid (first use only) and training..."):
            result = _demo(learner, float(resolution))
    else:
        path = common.pick_run(key="reg_run")
        if path is not None:
            run = common.load_run_cached(path)
            learner = c1.selectbox("Learner", list(run.learners), key="reg_run_learner")
            from fluxcore.demogrid import demo_grid_path

            grid = st.text_input("Drivers grid (NetCDF)", value="", key="reg_grid",
                                 placeholder=f"empty: the SYNTHETIC demo grid at {resolution:g} deg")
            if st.button("Upscale", key="reg_go", type="primary"):
                g = grid.strip() or str(demo_grid_path(float(resolution)))
                stamp = Path(path, "manifest.json").stat().st_mtime
                with st.spinner("Fitting the final model on all the run's sites and upscaling..."):
                    st.session_state["reg_result"] = _run(path, learner, g, stamp)
            result = st.session_state.get("reg_result")
except Exception as exc:  # noqa: BLE001 - shown, the app stays usable
    common.show_error(exc, "Cannot make the regional maps")
    st.stop()

if result is None:
    st.info("Choose a run and press **Upscale**.")
    st.stop()

st.subheader(result.label)
targets = [t for t in ("GPP", "ER", "NEE") if t in result.fluxes]
months = [str(m)[:7] for m in result.fluxes["time"].values]
c1, c2 = st.columns([1, 2])
target = c1.radio("Flux", targets, horizontal=True, key="reg_target")
when = c2.select_slider("Month", [regionplots.ANNUAL, *months], value=regionplots.ANNUAL, key="reg_month")
field, unit = regionplots.map_field(result.fluxes, target, None if when == regionplots.ANNUAL else when)
title = f"{target}, {when} ({result.label})"
fig = regionplots.flux_map(field, target, unit, title=title, synthetic=result.synthetic)
st.plotly_chart(fig, width="stretch", key="reg_map", config=PLOTLY_CONFIG)

d1, d2, d3 = st.columns(3)
d1.download_button("Download NetCDF (all months)", result.netcdf.read_bytes(), result.netcdf.name,
                   "application/x-netcdf", key="reg_dl_nc", on_click="ignore")
d2.download_button("Download map (PNG)", regionplots.map_png(field, target, unit, synthetic=result.synthetic),
                   f"{target}_{when.replace(' ', '_')}.png", "image/png", key="reg_dl_png", on_click="ignore")
d3.download_button("Download map (HTML, offline)", regionplots.figure_html(fig).encode(),
                   f"{target}_{when.replace(' ', '_')}.html", "text/html", key="reg_dl_html", on_click="ignore")

st.plotly_chart(regionplots.monthly_cycle(result.totals, target, result.reference_totals,
                                          synthetic=result.synthetic), width="stretch", key="reg_cycle")
st.caption("Area-weighted totals over the grid's cells with a value: monthly sum x area, as a yearly rate "
           "(x days in the year / days in the month) [PgC yr-1]; zones from each cell's aridity index "
           "(sum P / sum Hargreaves PET). Dashed: the grid's own fluxes (reference), when it has them.")
if len(result.holdout):
    st.plotly_chart(regionplots.holdout_scatter(result.holdout, target, title=f"{target}: {result.holdout_label}",
                                                synthetic=result.synthetic), width="stretch", key="reg_scatter")
else:
    st.info("No held-out predictions for this flux.")

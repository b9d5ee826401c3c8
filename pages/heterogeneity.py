"""Heterogeneity: each held-out site's distance from its training sites against its skill
(fitted line, Pearson and Spearman with p-values), and a map of predicted skill."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from fluxcore import plots
from fluxcore.errors import FluxcoreError
from fluxcore.variables import ZONES
from pages import _common as common

DIST_HELP = {
    "D_mean": "mean standardised Euclidean distance to the training sites (comprehensive distance)",
    "D_centroid": "distance to the centroid of the training sites",
    "D_knn": "mean distance to the 5 nearest training sites",
    "DI": "dissimilarity index (area of applicability, Meyer & Pebesma 2021)",
}


@st.cache_data(show_spinner="Predicting skill at every site…", max_entries=16)
def _predicted_skill(run_path: str, stamp: float, src: str, learner: str, target: str, distance: str) -> pd.DataFrame:
    from fluxcore.skill import predicted_skill

    d = common.distances(run_path, stamp, src)
    return predicted_skill(common.load_run_cached(run_path), common.dataset(src), learner, target,
                           distance=distance, distances=d)


st.title("Heterogeneity and skill")
common.sync_url()  # the address keeps data source, selection and run (reload-safe)
st.markdown("Is a tower predicted badly because it is **unlike the towers the model learned from**? "
            "Each point is one held-out site: its distance from the training sites (standardised "
            "meteorology, remote sensing and site variables) against its score.")
path = common.pick_run(key="het_run")
if path is None:
    st.stop()
run = common.load_run_cached(path)
src = str(run.config.data)
try:
    ds = common.dataset(src)
except Exception as exc:  # noqa: BLE001
    common.show_error(exc, f"The run's data ({src}) cannot be loaded")
    st.stop()
if ds.synthetic:
    st.warning("**SYNTHETIC** data (demo world).", icon=":material/science:")
common.dataset_attribution(ds)
# choices made for one run never carry over to another
common.reset_on_change("heterogeneity", str(path), ["het_learner", "het_target", "het_distance", "het_metric",
                                                    "het_zones"])
stamp = (Path(path) / "manifest.json").stat().st_mtime
try:
    dist = common.distances(path, stamp, src)
except Exception as exc:  # noqa: BLE001
    common.show_error(exc, "Distances could not be computed")
    st.stop()

metrics = run.metrics
c1, c2, c3, c4, c5 = st.columns(5)
learner = c1.selectbox("Learner", [lrn for lrn in run.learners if lrn in set(metrics["learner"])], key="het_learner")
target = c2.selectbox("Target", [t for t in run.targets if t in set(metrics["target"])], key="het_target")
dcols = [c for c in ("D_mean", "D_centroid", "D_knn", "DI") if c in dist.columns]
distance = c3.selectbox("Distance", dcols, key="het_distance", help="; ".join(f"{k}: {v}" for k, v in DIST_HELP.items()))
metric = c4.selectbox("Score", ["R2", "r2", "RMSE"], key="het_metric")
zones_present = [z for z in ZONES if z in set(metrics["zone"].dropna())]
zones = c5.multiselect("Zones", zones_present, key="het_zones", placeholder="all zones")

fig = plots.distance_skill_figure(metrics, dist, learner=learner, target=target, distance=distance,
                                  metric=metric, zones=zones or None)
st.plotly_chart(fig, width="stretch", key="dist_fig", config={"displaylogo": False})
st.download_button("Download this figure (HTML, works offline)", lambda: plots.figure_html(fig).encode(),
                   f"{run.key}_{learner}_{target}_{distance}_{metric}.html", "text/html", key="dl_het_fig",
                   on_click="ignore")

from fluxcore import heterogeneity as het  # noqa: E402
from fluxcore.heterogeneity import distance_skill  # noqa: E402

table = distance_skill(metrics[metrics["zone"].isin(zones)] if zones else metrics, dist,
                       by=("learner", "target"), distance=distance, metric=metric)
st.markdown("**Correlations per learner, target and zone** (Spearman ρ and Pearson r with two-sided "
            "p-values, exact for up to 10 sites)")
st.dataframe(het.readable_table(table, distance), hide_index=True, width="stretch")
said = het.relation_sentences(table, learner, target)
if said:
    st.info(" ".join(said), icon=":material/lightbulb:")
c1, c2 = st.columns(2)
c1.download_button("Correlations CSV", lambda: table.to_csv(index=False).encode(), f"{run.key}_correlations.csv",
                   "text/csv", key="dl_corr", on_click="ignore")
c2.download_button("Site distances CSV", lambda: dist.to_csv(index=False).encode(), f"{run.key}_distances.csv",
                   "text/csv", key="dl_dist", on_click="ignore")
if int(table["n"].max() if len(table) else 0) < 3:
    st.info("Correlations need at least three test sites with scores; train on more sites.")

st.subheader("Map of predicted skill")
st.caption("Expected R² of every site of the dataset from a line fitted to R² against distance "
           "(fluxcore.skill), on a fixed colour scale; sites outside the fitted distances or zones are "
           "grey: the line is not extrapolated. Held-out sites also show their observed R².")
try:
    sk = _predicted_skill(path, stamp, src, learner, target, distance)
except FluxcoreError as exc:
    st.info(f"No skill map for this choice: {exc}")
else:
    st.plotly_chart(plots.skill_map_figure(sk, common.site_table(src), title=f"predicted R² ({learner}, {target})"),
                    width="stretch", key="skill_map_fig", config={"displaylogo": False})

"""Results: predicted vs observed per learner and target, per-site scores, the paper's
Table 3 (RMSE mean and variance by zone and learner), skill beside published results
(paper, CarbonFluxBench, FLUXCOM), site time series, downloads."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from fluxcore import plots, report
from fluxcore.anchors import (
    CFB_CAVEAT,
    PUBLISHED_CAVEAT,
    common_site_comparison,
    default_anchor_dir,
)
from fluxcore.errors import FluxcoreError
from fluxcore.fewshot import few_shot_note
from fluxcore.jobs import read_run_name, skipped_problem
from fluxcore.metrics import skill_summary
from fluxcore.presets import preset_of
from fluxcore.variables import ZONES
from fluxcore.viewrange import robust_range, score_range
from pages import _common as common

PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}

st.title("Results")
common.sync_url()  # the address keeps data source, selection and run (reload-safe)
path = common.pick_run()
if path is None:
    st.stop()
try:
    run = common.load_run_cached(path)
except Exception as exc:  # noqa: BLE001 - shown, the app stays usable
    common.show_error(exc, "This run cannot be read")
    st.stop()

m = run.manifest
data = m.get("data", {})
# filters chosen for one run never carry over to another
common.reset_on_change("results", str(path), ["res_target", "res_learners", "res_color", "res_zones", "res_view",
                                              "box_metric", "ts_site", "res_published"])
name = read_run_name(path)
if name:
    st.subheader(name)
if data.get("synthetic"):
    st.warning("**SYNTHETIC** data (demo world): illustrates the method, not observations.",
               icon=":material/science:")
preset = preset_of(run.config)
sample_note = (f" (a sample of {run.config.pool_sample} training sites)" if run.config.pool_sample
               else (f" ({run.config.pool_fraction:.0%} of the sites train)" if run.config.pool_fraction != 1 else ""))
if preset is not None:
    st.info(preset.description, icon=":material/speed:")
shot_note = few_shot_note(run.config)
if shot_note:
    st.info(shot_note, icon=":material/info:")
st.caption(f"Data `{data.get('name')}` ({data.get('source')}) · {m.get('n_test_sites')} test sites · "
           f"{m.get('n_folds')} folds · pool: {run.config.pool}{sample_note} · seed {run.config.seed} · "
           f"code {m.get('code_version', '')[:12]} · finished {str(m.get('finished') or '')[:19]}")
if not data.get("synthetic") and common.data_src() == "demo":
    st.caption("This run used real data; the data source chosen for new runs is the demo world.")
common.attribution(bool(data.get("synthetic")), data.get("name"), data.get("source"))
nothing, some_skipped = skipped_problem(m)
if nothing is not None or run.metrics.empty:
    st.error(f"This run has no results: {nothing or 'no test site has scores'}", icon=":material/error:")
    st.page_link("pages/train.py", label="Back to Train", icon=":material/model_training:")
    st.stop()
if some_skipped:
    st.warning(some_skipped, icon=":material/warning:")

pred = run.predictions
metrics = run.metrics
learners_all = [lrn for lrn in run.learners if lrn in set(metrics["learner"])]
targets_all = [t for t in run.targets if t in set(metrics["target"])]
zones_present = [z for z in ZONES if z in set(metrics["zone"].dropna())]
zone_map = m.get("zones") or metrics.drop_duplicates("SITE_ID").set_index("SITE_ID")["zone"].to_dict()
VIEWS = ["Per-site scores", "Table 3 (RMSE by zone)", "Scores by zone", "Beside published results",
         "Site time series"]
NUM3 = {c: st.column_config.NumberColumn(format="%.3f")
        for c in ("R2_median", "r2_median", "R2_mean", "r2_mean", "median_R2", "mean_R2", "paper_R2",
                  "tamrl_R2_median", "fluxcom_R2")}


def published(mt: pd.DataFrame) -> None:
    """Median and US skill beside the published figures; CarbonFluxBench on the common sites.

    Beside synthetic results the published figures (real towers) are hidden unless asked for,
    and then marked as not comparable.
    """
    if data.get("synthetic"):
        st.info("The published figures (Gao et al. 2025, CarbonFluxBench TAM-RL, FLUXCOM) come from real "
                "towers; this run used the SYNTHETIC demo world, so they are **not comparable** and hidden.",
                icon=":material/block:")
        if not st.checkbox("Show them anyway (not comparable)", key="res_published"):
            return
        st.caption("NOT COMPARABLE: synthetic skill beside skill published for real towers.")
    st.dataframe(report.published_skill(mt), hide_index=True, width="stretch", column_config=NUM3)
    st.caption("Median over test sites of the per-site R² and r². `tamrl_R2_median`: CarbonFluxBench "
               f"TAM-RL; `fluxcom_R2`: FLUXCOM site-level R² (lower bound). {PUBLISHED_CAVEAT}")
    us = report.us_skill(mt)
    if len(us):
        st.dataframe(us, hide_index=True, width="stretch", column_config=NUM3)
        st.caption("US sites: mean R² and r² beside Gao et al. (2025), mean R² 0.72.")
    cmp_, why_not = common_site_comparison(
        mt, synthetic=bool(data.get("synthetic")),
        anchors=lambda: common.carbonfluxbench(str(default_anchor_dir())))
    if cmp_ is None:
        st.info(f"{why_not[:1].upper()}{why_not[1:]}: no CarbonFluxBench comparison.")
        return
    st.dataframe(cmp_, hide_index=True, width="stretch", column_config=NUM3)
    st.caption(f"On the {int(cmp_['n_sites'].max())} test site(s) both have. {CFB_CAVEAT}")


@st.fragment
def analysis() -> None:
    """Filters, scatter plots and the chosen table/figure (reruns alone when a filter changes)."""
    c1, c2, c3, c4 = st.columns([1, 2, 1.3, 2])
    target = c1.selectbox("Target", targets_all, key="res_target")
    learners = c2.multiselect("Learners", learners_all, default=learners_all, key="res_learners")
    color_by = c3.radio("Colour by", ["zone", "learner"], key="res_color", horizontal=True)
    zones = c4.multiselect("Zones", zones_present, key="res_zones", placeholder="all zones")
    if not learners:
        st.info("Choose at least one learner.")
        return
    p = pred[(pred["target"] == target) & pred["learner"].isin(learners)]
    mt = metrics[(metrics["target"] == target) & metrics["learner"].isin(learners)]
    if zones:
        keep = {s for s, z in zone_map.items() if z in zones}
        p = p[p["SITE_ID"].isin(keep)]
        mt = mt[mt["zone"].isin(zones)]

    st.subheader(f"{target}: predicted vs observed")
    # the axes follow the data (0.5-99.5 % of observed and predicted), not one wild prediction
    rng = robust_range(pd.concat([p["observed"], p["predicted"]]))

    def _fit_axes(f):
        f.update_xaxes(range=[rng.lo, rng.hi])
        f.update_yaxes(range=[rng.lo, rng.hi])
        return f

    if color_by == "learner":
        fig = _fit_axes(plots.scatter_pred_obs(p, target=target, color_by="learner", zones=zone_map))
        figs_first = fig
        st.plotly_chart(fig, width="stretch", key="scatter_all", config=PLOTLY_CONFIG)
    else:
        cols = st.columns(min(2, len(learners)))
        for i, lrn in enumerate(learners):
            fig = _fit_axes(plots.scatter_pred_obs(p, target=target, learners=[lrn], color_by="zone",
                                                   zones=zone_map, title=f"{lrn}: {target} predicted vs observed"))
            if i == 0:
                figs_first = fig
            with cols[i % len(cols)]:
                st.plotly_chart(fig, width="stretch", key=f"scatter_{lrn}", config=PLOTLY_CONFIG)
    st.caption("Each point is one day of a held-out site. R² = 1 − SSE/SST (can be negative); r² = squared "
               "Pearson correlation. Above 20,000 points the plot shows point density."
               + (" " + rng.note("value") if rng.n_outside else ""))
    first = figs_first
    st.download_button("Download this scatter plot (HTML, works offline)", lambda: plots.figure_html(first).encode(),
                       f"{run.key}_{target}_scatter.html", "text/html", key="dl_fig", on_click="ignore",
                       help="Interactive figure with plotly.js embedded: opens without internet.")

    view = st.segmented_control("Show", VIEWS, default=VIEWS[0], key="res_view") or VIEWS[0]
    if view == VIEWS[0]:
        show = mt[["SITE_ID", "learner", "zone", "R2", "r2", "RMSE", "MAE", "bias", "n"]].sort_values(
            ["learner", "SITE_ID"])
        st.dataframe(show, hide_index=True, width="stretch", height=360,
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("R2", "r2", "RMSE", "MAE", "bias")})
        agg = skill_summary(mt, by=["learner"])
        st.caption("Medians over sites: " + "; ".join(
            f"{r.learner}: R² {r.R2_median:.3f}, r² {r.r2_median:.3f}; mean RMSE {r.RMSE_mean:.3f}"
            for r in agg.itertuples(index=False)))
    elif view == VIEWS[1]:
        t3 = plots.table3_frame(run.zone_summary[run.zone_summary["learner"].isin(learners)], target)
        if t3.empty:
            st.info("No zone summary for this target.")
        else:
            st.dataframe(t3, width="stretch")
            st.download_button("Table 3 CSV", lambda: t3.to_csv().encode(), f"{run.key}_{target}_table3.csv",
                               "text/csv", key="dl_t3", on_click="ignore")
            st.caption("Mean and variance over the sites of each zone of the per-site RMSE "
                       f"[{plots.FLUX_UNIT}] (layout of Table 3 in Gao et al. 2025); 'all' = every test site.")
    elif view == VIEWS[2]:
        metric = st.radio("Score", ["R2", "r2", "RMSE"], horizontal=True, key="box_metric")
        box = plots.metric_box(mt, target, metric)
        rng = score_range(mt[metric], metric)
        box.update_yaxes(range=[rng.lo, rng.hi])
        st.plotly_chart(box, width="stretch", key="box", config=PLOTLY_CONFIG)
        if rng.n_outside:
            st.caption(f"Axis clipped at {rng.lo:.2f}–{rng.hi:.2f}: " + rng.note("site"))
    elif view == VIEWS[3]:
        published(mt)
    else:
        site_ids = sorted(mt["SITE_ID"].astype(str).unique())
        if site_ids:
            site = st.selectbox("Site", site_ids, key="ts_site",
                                format_func=lambda s: f"{s} ({zone_map.get(s) or 'zone unknown'})")
            st.plotly_chart(plots.timeseries(pred, site, target, learners=learners), width="stretch", key="ts",
                            config=PLOTLY_CONFIG)


analysis()

# ------------------------------------------------------------------ downloads (built on click)
st.subheader("Downloads")


def _csv(df: pd.DataFrame):
    return lambda: df.to_csv(index=False).encode()


def _parquet(df: pd.DataFrame):
    def f():
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()
    return f


key = run.key
d1, d2, d3, d4 = st.columns(4)
d1.download_button("Predictions CSV", _csv(pred), f"{key}_predictions.csv", "text/csv", key="dl_pred_csv",
                   on_click="ignore")
d2.download_button("Predictions Parquet", _parquet(pred), f"{key}_predictions.parquet",
                   "application/octet-stream", key="dl_pred_pq", on_click="ignore")
d3.download_button("Metrics CSV", _csv(metrics), f"{key}_metrics.csv", "text/csv", key="dl_met_csv",
                   on_click="ignore")
d4.download_button("Metrics Parquet", _parquet(metrics), f"{key}_metrics.parquet", "application/octet-stream",
                   key="dl_met_pq", on_click="ignore")

# ------------------------------------------------------------ the new methods' own figures
from fluxcore import embeddings as emb  # noqa: E402
from fluxcore.plots_transfer import delta_r2_by_zone, paired_delta  # noqa: E402

if "tamrl" in learners_all:
    with st.expander("TAM-RL: site embeddings (from each site's drivers only)", icon=":material/scatter_plot:"):
        try:
            run_ds = common.dataset(run.config.data)
            e = emb.run_embeddings(run, run_ds, "tamrl")
        except FluxcoreError as exc:
            e = None
            st.info(f"The run's data cannot be loaded for the embeddings: {exc}")
        if e is not None and len(e):
            st.plotly_chart(emb.embedding_figure(e, run_ds.sites["ARIDITY_ZONE"], run_ds.sites["IGBP"]),
                            key="res_tamrl_emb")
            st.caption("Each point is a site's task embedding, computed by a stored TAM-RL group model from the "
                       "site's meteorology and static attributes (never its fluxes), projected on two principal "
                       "components; colour: aridity zone, symbol: IGBP class.")
        elif e is not None:
            st.info("This run stored no TAM-RL model (only the fast strategy keeps group models).")
if "pmtl" in learners_all and "lstm" in learners_all:
    with st.expander("Transfer learning: pre-trained minus tower-only, per site", icon=":material/compare_arrows:"):
        for tgt in targets_all:
            d = paired_delta(metrics, "pmtl", "lstm", tgt)
            if len(d):
                st.plotly_chart(delta_r2_by_zone(d, title=f"{tgt}: R²(pmtl) − R²(lstm)"), key=f"res_pmtl_{tgt}")
        st.caption("Per-site differences on identical folds and seeds; positive: the process-model "
                   "pre-training helped that site.")

from fluxcore.report_html import html_report_bytes  # noqa: E402

st.download_button("Download report (HTML)", lambda: html_report_bytes(run.path), f"{key}_report.html", "text/html",
                   key="dl_report_html", on_click="ignore", icon=":material/description:",
                   help="One self-contained HTML file (figures inline, works offline) to hand to a review.")

"""Compare methods: two learners of a run, or two runs on the same sites, paired by site
(fluxcore.compare does the statistics and the figures)."""

from __future__ import annotations

import streamlit as st

from fluxcore import compare
from pages import _common as common

st.title("Compare methods")
st.markdown("Which method predicts held-out towers better, and is the difference larger than chance? "
            "Each tower is scored by both methods; the **paired** difference per tower removes what makes a "
            "tower hard for every method. The interval is a 95 % bootstrap interval over towers.")

path_a = common.pick_run("Run", key="cmp_run_a")
if path_a is None:
    st.stop()
run_a = common.load_run_cached(path_a)
learners_a = sorted(map(str, run_a.metrics["learner"].unique()))
two_runs = st.toggle("Compare with another run (same sites)", key="cmp_two_runs",
                     help="e.g. the same learner with another seed, or a new learner's run")
c1, c2, c3, c4 = st.columns(4)
learner_a = c1.selectbox("Method A: learner", learners_a, key="cmp_learner_a")
run_b = None
if two_runs:
    table = common.runs_table(str(common.runs_dir()))
    table = table[(table["status"] == "done") & (table["path"] != path_a)] if len(table) else table
    if not len(table):
        st.info("No other finished run to compare with.")
        st.stop()
    labels = {r["path"]: common.run_label(r) for _, r in table.iterrows()}
    path_b = st.selectbox("Run B", table["path"].tolist(), format_func=lambda p: labels.get(p, p), key="cmp_run_b")
    run_b = common.load_run_cached(path_b)
    learners_b = sorted(map(str, run_b.metrics["learner"].unique()))
else:
    learners_b = [lrn for lrn in learners_a if lrn != learner_a]
if not learners_b:
    st.info("This run has a single learner: switch on *Compare with another run*.")
    st.stop()
learner_b = c2.selectbox("Method B: learner", learners_b, key="cmp_learner_b")
targets = sorted(map(str, run_a.metrics["target"].unique()))
target = c3.selectbox("Target", targets, key="cmp_target")
metric = c4.selectbox("Score", ["R2", "r2", "RMSE"], key="cmp_metric")

try:
    ds = common.dataset(str(run_a.config.data))
    synthetic = bool(ds.synthetic)
except Exception:  # noqa: BLE001 - only decides whether the benchmark applies
    synthetic = None
if synthetic:
    st.warning("**SYNTHETIC** data (demo world).", icon=":material/science:")
try:
    cmp_ = compare.compare(run_a, learner_a, learner_b, run_b, metric=metric, target=target, synthetic=synthetic,
                           anchors=lambda: common.carbonfluxbench(str(compare.default_anchor_dir())))
except Exception as exc:  # noqa: BLE001
    common.show_error(exc, "The two methods cannot be compared")
    st.stop()

st.info(cmp_.sentence(target))
st.plotly_chart(compare.paired_difference_figure(cmp_, target), width="stretch", key="cmp_pairs",
                config={"displaylogo": False})
st.plotly_chart(compare.zone_difference_figure(cmp_, target), width="stretch", key="cmp_zones",
                config={"displaylogo": False})
st.markdown("**By zone** (A − B; *unpaired* interval shown for contrast: it ignores that both methods saw the "
            "same towers)")
st.dataframe(cmp_.summary, hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.3f") for c in
                            ("mean_a", "mean_b", "mean_diff", "ci_lo", "ci_hi", "median_diff", "unpaired_lo",
                             "unpaired_hi")} | {"p_wilcoxon": st.column_config.NumberColumn(format="%.3g")})
if cmp_.benchmark is not None:
    st.markdown("**CarbonFluxBench on the common sites** (median per-site R²)")
    st.caption(compare.CFB_CAVEAT)
    st.dataframe(cmp_.benchmark, hide_index=True, width="stretch")
for note in cmp_.notes:
    st.caption(note)
st.download_button("Per-site differences CSV", lambda: cmp_.pairs.to_csv(index=False).encode(),
                   f"compare_{learner_a}_{learner_b}_{target}.csv", "text/csv", key="dl_cmp", on_click="ignore")

with st.expander("Seed spread: how much does a learner move between seeds?"):
    table = common.runs_table(str(common.runs_dir()))
    table = table[table["status"] == "done"] if len(table) else table
    labels = {r["path"]: common.run_label(r) for _, r in table.iterrows()}
    reps = st.multiselect("Runs that differ only by seed (two or more)", table["path"].tolist() if len(table) else [],
                          format_func=lambda p: labels.get(p, p), key="cmp_seed_runs")
    if len(reps) >= 2:
        try:
            st.dataframe(compare.seed_spread([common.load_run_cached(p).metrics for p in reps], learner_a,
                                             metric=metric), hide_index=True, width="stretch")
        except Exception as exc:  # noqa: BLE001
            common.show_error(exc, "Seed spread unavailable")

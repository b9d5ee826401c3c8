"""Overview: what the tool does, which data are in use, where to go next."""

from __future__ import annotations

import streamlit as st

from pages import _common as common

st.title("fluxcore: carbon fluxes from weather, satellites and site data")
common.sync_url()  # the address keeps data source, selection and run (reload-safe)
st.markdown(
    """
**What it does.** Eddy-covariance towers measure how much carbon an ecosystem takes up
(gross primary production, **GPP**) and releases (ecosystem respiration, **ER**; their
difference is the net exchange **NEE**). fluxcore trains four machine-learning methods on
daily weather, remote sensing and site descriptors (**LSTM** neural network, **random
forest**, **support vector machine**, **multiple linear regression**, plus fuzzy variants)
and tests them the hard way: **leave-one-site-out**, i.e. every tower is predicted by a model
that never saw it. It then asks *why* some towers are predicted badly: sites that differ more
from the training sites (a larger heterogeneity distance) tend to get a lower R²
(after Gao et al. 2025).
"""
)

def _data_section(ds) -> None:
    from fluxcore import plots  # plotly: imported after the page text is on screen

    common.dataset_banner(ds)
    s = ds.summary()
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Sites", s["n_sites"])
    c2.metric("Site-days", f"{s['n_site_days']:,}")
    c3.metric("Aridity zones", sum(1 for z, n in s["zones"].items() if n and z != "unknown"))
    c4.metric("Targets", ", ".join(ds.targets) or "none")
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(plots.zone_bar(s["zones"]), width="stretch", key="zone_bar",
                        config={"displaylogo": False})
    with right:
        st.markdown("**Data in use**")
        st.markdown(f"- name: `{ds.name}`" + (" (SYNTHETIC)" if ds.synthetic else "")
                    + f"\n- source: `{common.display_path(ds.source) if ds.source else ds.name}`"
                    + f"\n- variables: {', '.join(s['variables'])}"
                    + f"\n- quality control removed {s['qc']['n_removed']:,} values at "
                    f"{s['qc']['n_sites_affected']} sites")
        if s["problems"]:
            st.markdown(f"- {len(s['problems'])} file(s) skipped (see **Data**)")
        st.markdown("Aridity zones follow UNEP (1992): aridity index P/PET < 0.2 arid, "
                    "< 0.5 semi-arid, < 0.65 semi-humid, otherwise humid.")


@st.fragment(run_every=0.5)
def _wait_for_data(fut) -> None:
    if fut.done():
        st.rerun()
    st.caption("Loading the data summary…")


fut = common.dataset_future(common.data_src())
if fut.done():
    ds = common.current_dataset()
    if ds is not None:
        _data_section(ds)
else:
    _wait_for_data(fut)

st.subheader("Where to go next")
NEXT_STEPS = [
    ("pages/sites.py", "1. Pick sites on the map", ":material/map:",
     "Filter by aridity zone and vegetation class; click markers or draw a box."),
    ("pages/train.py", "2. Train leave-one-site-out", ":material/model_training:",
     "Choose methods, targets and settings; runs go on in the background."),
    ("pages/results.py", "3. Compare predictions", ":material/scatter_plot:",
     "Predicted vs observed, per-site scores, the paper's Table 3, time series."),
    ("pages/heterogeneity.py", "4. Heterogeneity and skill", ":material/hub:",
     "Does distance from the training sites explain poor predictions?"),
    ("pages/data.py", "Data: demo, FLUXNET folder or upload", ":material/database:",
     "See the site summary and the quality-control report."),
]
for start in range(0, len(NEXT_STEPS), 3):  # rows of three columns
    for col, (page, label, icon, caption) in zip(st.columns(3), NEXT_STEPS[start:start + 3], strict=False):
        with col:
            st.page_link(page, label=label, icon=icon)
            st.caption(caption)
st.caption("Works without internet: maps, figures and downloads use local files only.")

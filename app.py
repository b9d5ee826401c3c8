"""fluxcore dashboard: ``streamlit run app.py``.

Pages live in ``pages/`` and are routed with ``st.navigation``; figures come from
``fluxcore.plots``, maps from ``fluxcore.maps``, runs from ``fluxcore.loso`` through the
background job manager ``fluxcore.jobs``. Works offline (see docs/dashboard.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fluxcore.resources import asset_path  # noqa: E402

st.set_page_config(page_title="fluxcore", page_icon=str(asset_path("favicon.png")), layout="wide",
                   initial_sidebar_state="expanded")
st.logo(str(asset_path("logo.svg")))
st.html(f"<style>{asset_path('style.css').read_text()}</style>")

pages = [
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/sites.py", title="Sites map", icon=":material/map:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/results.py", title="Results", icon=":material/scatter_plot:"),
    st.Page("pages/heterogeneity.py", title="Heterogeneity", icon=":material/hub:"),
    st.Page("pages/compare.py", title="Compare methods", icon=":material/compare_arrows:"),
    st.Page("pages/regional.py", title="Regional maps", icon=":material/public:"),
    st.Page("pages/data.py", title="Data", icon=":material/database:"),
]
nav = st.navigation(pages)

from pages import _common as common  # noqa: E402

common.restore_from_url()  # a reload keeps the data source, the selection and the run
common.dataset_future(common.data_src())  # start loading the data in the background

with st.sidebar:
    src = common.data_src()
    st.caption("Data: **SYNTHETIC demo world**" if src == "demo" else f"Data: `{Path(src).name}`")
    if st.session_state.get("_url_problem"):
        st.caption(st.session_state["_url_problem"])
    n_sel = len(common.selected_sites())
    st.caption(f"Selected sites: **{n_sel}**" if n_sel else "Selected sites: none (all)")
    active = common.job_manager(str(common.runs_dir())).active()
    if active:
        j = active[0]
        st.caption(f"Run in progress: {j.progress_text()}")

common.sync_url()
nav.run()

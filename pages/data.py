"""Data: choose the data source (demo, a FLUXNET folder, an uploaded tidy file) and see the
summary and the quality-control report."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from fluxcore import plots
from fluxcore.errors import FluxcoreError
from pages import _common as common

st.title("Data")
current = common.data_src()
options = ["demo", "real", "folder", "upload"]
labels = {"demo": "Demo world (synthetic, built in)",
          "real": f"FLUXNET2015 ({common.REAL_DATA})" if common.REAL_DATA.is_dir() else "FLUXNET2015 (not found)",
          "folder": "A folder of FLUXNET files", "upload": "Upload a tidy CSV / Parquet file"}
if not common.REAL_DATA.is_dir():
    options.remove("real")
if current == "demo":
    default = "demo"
elif Path(current) == common.REAL_DATA:
    default = "real"
elif Path(current).parent == common.uploads_dir():
    default = "upload"
else:
    default = "folder"
kind = st.radio("Data source", options, index=options.index(default) if default in options else 0,
                format_func=labels.get, key="data_kind")


def _use(src: str) -> bool:
    """Load ``src``; on success make it the session's data source."""
    try:
        with st.spinner("Loading and checking the data…"):
            common.dataset_future(src, retry=True).result()
    except FluxcoreError as exc:
        st.error(f"This data cannot be used. {exc}", icon=":material/error:")
        return False
    except Exception as exc:  # noqa: BLE001 - never a traceback on the page
        st.error(f"This data cannot be used: {type(exc).__name__}: {exc}", icon=":material/error:")
        return False
    if src != current:
        st.session_state["data_src"] = src
        st.session_state["selected_sites"] = []
        st.session_state.pop("run_path", None)
        st.rerun()
    return True


if kind == "demo" and current != "demo":
    _use("demo")
elif kind == "real" and current != str(common.REAL_DATA):
    _use(str(common.REAL_DATA))
elif kind == "folder":
    st.caption("Prepared layout (`daily.parquet` + `sites.csv`) or official `FLX_*_DD_*.csv` / "
               "`AMF_*_FLUXNET_*_DD_*.csv` files.")
    folder = st.text_input("Folder path on the server", value="" if current == "demo" else current, key="folder")
    if st.button("Load folder", key="load_folder") and folder.strip():
        _use(folder.strip())
elif kind == "upload":
    st.caption(f"One row per site and day: `SITE_ID`, `DATE` and FLUXNET / canonical variable names "
               f"(e.g. `TA`, `SW_IN`, `VPD`, `GPP`); up to {common.MAX_UPLOAD_MB} MB.")
    up = st.file_uploader("Tidy CSV or Parquet file", type=["csv", "parquet"], key="upload")
    if up is not None:
        if up.size > common.MAX_UPLOAD_MB * 1024 * 1024:
            st.error(f"{up.name}: the file is larger than {common.MAX_UPLOAD_MB} MB.")
        else:
            raw = up.getvalue()
            digest = hashlib.sha256(raw).hexdigest()[:16]
            suffix = Path(up.name).suffix.lower()
            dst = common.uploads_dir() / f"{Path(up.name).stem[:40]}_{digest}{suffix}"
            if not dst.exists():
                dst.write_bytes(raw)
            if str(dst) != current:
                _use(str(dst))

ds = common.require_dataset()
s = ds.summary()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Sites", s["n_sites"])
c2.metric("Site-days", f"{s['n_site_days']:,}")
c3.metric("Values removed by QC", f"{s['qc']['n_removed']:,}")
c4.metric("Files/sites skipped", len(s["problems"]))
left, right = st.columns([2, 3])
with left:
    st.plotly_chart(plots.zone_bar(s["zones"]), width="stretch", key="data_zone_bar", config={"displaylogo": False})
with right:
    st.markdown("**Variables present:** " + ", ".join(s["variables"]))
    absent = [v for v in ("TA", "TMIN", "TMAX", "P", "WS", "VPD", "SW_IN", "LAI", "ELEV", "SLOPE", "ASPECT",
                          "CLAY", "SAND", "SILT", "GPP", "ER", "NEE") if v not in s["variables"]]
    if absent:
        st.markdown("**Absent:** " + ", ".join(absent))
    if s["qc"]["by_reason"]:
        st.markdown("**QC removed, by reason:**\n" + "\n".join(f"- {k}: {v:,}" for k, v in s["qc"]["by_reason"].items()))
    if s["sites_without_position"]:
        st.markdown(f"**No position:** {', '.join(s['sites_without_position'][:20])}")
if s["problems"]:
    with st.expander(f"Skipped files or sites ({len(s['problems'])})", expanded=True):
        for prob in s["problems"]:
            st.markdown(f"- {prob}")
with st.expander("Quality-control report (per site and reason)"):
    qc = ds.qc
    if len(qc):
        st.dataframe(qc[qc["n_removed"] > 0] if (qc["n_removed"] > 0).any() else qc, hide_index=True, width="stretch")
    else:
        st.caption("Nothing removed.")
with st.expander("Site catalogue"):
    st.dataframe(pd.DataFrame(common.site_table(common.data_src())), hide_index=True, width="stretch")

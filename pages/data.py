"""Data: choose the data source (demo, a FLUXNET folder, an uploaded tidy file) and see the
summary and the quality-control report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from fluxcore import plots
from fluxcore.columnmap import (
    FIELD_GROUPS,
    field_label,
    mapping_from_choices,
    plan_columns,
    prepare_upload,
    read_columns,
)
from fluxcore.dataroots import (
    UploadStore,
    data_roots,
    display_path,
    list_data_sources,
    new_session_id,
    public_message,
    resolve_server_path,
)
from fluxcore.errors import FluxcoreError
from pages import _common as common

st.title("Data")
current = common.data_src()
roots = data_roots()
#: {server path of a stored upload: the file name the user gave it}, for messages
names: dict = st.session_state.setdefault("upload_names", {})
try:
    store: UploadStore | None = UploadStore.from_env(common.runs_dir())
except FluxcoreError as exc:
    st.error(f"Uploads are switched off: {exc}", icon=":material/error:")
    store = None
session_id = st.session_state.setdefault("upload_session", new_session_id())
if store is not None:
    store.cleanup()  # session folders older than FLUXCORE_UPLOAD_MAX_AGE_HOURS
    store.touch(session_id)


def _msg(exc: BaseException) -> str:
    """The error text without server paths (uploads by the user's file name)."""
    return public_message(str(exc), names, roots)


def _kind_of(src: str) -> str:
    if src == "demo":
        return "demo"
    if common.REAL_DATA.is_dir() and Path(src).resolve() == common.REAL_DATA.resolve():
        return "real"
    if store is not None and store.contains(src):
        return "upload"
    return "folder"


options = ["demo", "real", "folder", "upload"]
labels = {"demo": "Demo world (synthetic, built in)",
          "real": f"FLUXNET2015 ({display_path(common.REAL_DATA, roots)})" if common.REAL_DATA.is_dir()
          else "FLUXNET2015 (not found)",
          "folder": "A data folder of this server", "upload": "Upload a tidy CSV / Parquet file"}
if not common.REAL_DATA.is_dir():
    options.remove("real")
if store is None:
    options.remove("upload")
default = _kind_of(current)
kind = st.radio("Data source", options, index=options.index(default) if default in options else 0,
                format_func=labels.get, key="data_kind")


def _use(src: str, on_fail=None) -> bool:
    """Load ``src``; on success make it the session's data source, else call ``on_fail``."""
    try:
        with st.spinner("Loading and checking the data…"):
            common.dataset_future(src, retry=True).result()
    except Exception as exc:  # noqa: BLE001 - never a traceback on the page
        text = _msg(exc) if isinstance(exc, FluxcoreError) else f"{type(exc).__name__}: {_msg(exc)}"
        st.error(f"This data cannot be used. {text}", icon=":material/error:")
        if on_fail is not None:
            on_fail(text)
        return False
    if src != current:
        st.session_state["data_src"] = src
        st.session_state["selected_sites"] = []
        st.session_state.pop("run_path", None)
        st.rerun()
    return True


def _folder_choice() -> None:
    """Folders and files below the data roots; a typed path is checked against the roots."""
    if not roots:
        st.warning("This server offers no data folders. Its administrator can add some with "
                   "FLUXCORE_DATA_ROOTS (see docs/dashboard.md).")
        return
    st.caption(f"Data folders of this server: {', '.join(r.label for r in roots)}. A folder in the "
               "prepared layout (`daily.parquet` + `sites.csv`), a folder of official `FLX_*_DD_*.csv` / "
               "`AMF_*_FLUXNET_*_DD_*.csv` files, or a tidy CSV / Parquet file.")
    sources = [str(p) for p in list_data_sources(roots)]
    shown = {p: display_path(p, roots) for p in sources}
    if sources:
        pick = st.selectbox("Data folder or file", sources, index=sources.index(current) if current in sources else 0,
                            format_func=shown.get, key="folder_pick")
        if st.button("Load", key="load_pick", type="primary"):
            _use(pick)
    typed_default = display_path(current, roots) if _kind_of(current) == "folder" and current not in shown else ""
    with st.expander("Another path below a data folder", expanded=not sources):
        typed = st.text_input("Path (relative to a data folder)", value=typed_default, key="folder")
        if st.button("Load path", key="load_folder") and typed.strip():
            try:
                path = resolve_server_path(typed, roots)
            except FluxcoreError as exc:
                st.error(f"This data cannot be used. {_msg(exc)}", icon=":material/error:")
            else:
                _use(str(path))


GROUP_TITLES = {"required": "Site and day (required)", "targets": "Fluxes (at least one)",
                "drivers": "Drivers", "site": "Site description (one value per site)"}
NONE = "(not in the file)"


def _column_choices(columns: list[str], plan, tag: str) -> tuple[dict, bool]:
    """Selection boxes mapping the user's columns to fluxcore's names; (choices, apply pressed)."""
    with st.expander("Columns: which of your columns holds what", expanded=not plan.automatic):
        if plan.missing:
            st.info("Choose which of your columns holds " + ", ".join(plan.missing)
                    + ", then press **Use these columns**.")
        elif not plan.automatic:
            st.info("Some columns were matched by a similar name: check them, then press **Use these columns**.")
        choices: dict = {}
        opts = [NONE, *columns]
        for group, fields in FIELD_GROUPS.items():
            st.markdown(f"**{GROUP_TITLES[group]}**")
            cells = st.columns(3)
            for i, f in enumerate(fields):
                sugg = plan.suggested.get(f)
                val = cells[i % 3].selectbox(field_label(f), opts, index=opts.index(sugg) if sugg in opts else 0,
                                             key=f"map_{tag}_{f}")
                choices[f] = None if val == NONE else val
        apply = st.button("Use these columns", key="apply_map", type="primary")
    return choices, apply


def _upload_choice() -> None:
    assert store is not None
    st.caption(f"One row per site and day: a site column, a date column and variables such as air "
               f"temperature or GPP (your own names can be matched below); up to {store.max_mb:g} MB. "
               "Optionally a site catalogue gives the towers a position, zone and map marker.")
    limit = max(1, round(store.max_mb))
    up = st.file_uploader("Tidy CSV or Parquet file", type=["csv", "parquet"], key="upload", max_upload_size=limit)
    cat = st.file_uploader("Site catalogue (optional): CSV with SITE_ID, LAT, LON [, IGBP, ARIDITY_INDEX, ELEV]",
                           type=["csv"], key="upload_sites", max_upload_size=limit)
    if up is None:
        return
    rejected: dict = st.session_state.setdefault("upload_rejected", {})
    data_path = sites_path = None
    try:
        store.check_size(up.name, up.size)  # before reading it into memory
        data_path = store.save(session_id, up.name, up.getvalue())
        names[str(data_path)] = up.name
        if cat is not None:
            sites_path = store.save(session_id, cat.name, cat.getvalue())
            names[str(sites_path)] = cat.name
        columns = read_columns(data_path, up.name)
    except FluxcoreError as exc:
        st.error(f"This data cannot be used. {_msg(exc)}", icon=":material/error:")
        store.discard(data_path, sites_path)
        return
    plan = plan_columns(columns)
    if plan.problem:
        st.error(f"This data cannot be used. {up.name}: {plan.problem}", icon=":material/error:")
        store.discard(data_path, sites_path)
        return
    choices, apply = _column_choices(columns, plan, data_path.parent.name)
    prepared: dict = st.session_state.setdefault("upload_prepared", {})  # key -> (file, notes)
    for note in next((n for f, n in prepared.values() if f == current), []):
        st.info(note)
    automatic = plan.automatic and all(choices[f] == plan.suggested.get(f) for f in choices)
    if not (automatic or apply):
        return
    try:
        column_map = mapping_from_choices(choices)
    except FluxcoreError as exc:
        st.error(f"{up.name}: {_msg(exc)}", icon=":material/error:")
        return
    key = repr((getattr(up, "file_id", up.name), getattr(cat, "file_id", None), sorted(column_map.items())))
    if key in rejected:  # the same file and choices failed before: say so, keep nothing
        st.error(f"This data cannot be used. {rejected[key]}", icon=":material/error:")
        store.discard(data_path, sites_path)
        return
    notes: list[str] = []
    try:
        if automatic and sites_path is None:
            src = data_path
        elif key in prepared and Path(prepared[key][0]).is_file():  # prepared at an earlier rerun
            src = Path(prepared[key][0])
        else:
            src, notes = prepare_upload(data_path, column_map=column_map, sites=sites_path, data_name=up.name,
                                        sites_name=None if cat is None else cat.name)
            prepared[key] = (str(src), notes)
    except FluxcoreError as exc:
        rejected[key] = _msg(exc)
        st.error(f"This data cannot be used. {rejected[key]}", icon=":material/error:")
        store.discard(data_path, sites_path)
        return
    names[str(src)] = up.name
    if str(src) != current:
        def _reject(text: str) -> None:
            rejected[key] = text
            store.discard(src, data_path, sites_path)

        _use(str(src), on_fail=_reject)


if kind == "demo" and current != "demo":
    _use("demo")
elif kind == "real" and current != str(common.REAL_DATA):
    _use(str(common.REAL_DATA))
elif kind == "folder":
    _folder_choice()
elif kind == "upload":
    _upload_choice()

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
            st.markdown(f"- {public_message(prob, names, roots)}")
with st.expander("Quality-control report (per site and reason)"):
    qc = ds.qc
    if len(qc):
        st.dataframe(qc[qc["n_removed"] > 0] if (qc["n_removed"] > 0).any() else qc, hide_index=True, width="stretch")
    else:
        st.caption("Nothing removed.")
with st.expander("Site catalogue"):
    st.dataframe(pd.DataFrame(common.site_table(common.data_src())), hide_index=True, width="stretch")
